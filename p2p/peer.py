"""One authenticated peer connection: its tasks, send queue, score and rate limits.

Theory of operation. `PeerConnection.run()` owns three tasks in a TaskGroup:

* the **reader** reads a record, splits it into frames, strictly decodes each and dispatches it
  (transactions and consensus messages to the owner, requests to a task, responses to waiters);
  a bad frame is dropped and charged to the peer's score; afterwards it pauses as long as the
  token buckets say (backpressure, never buffering);
* the **writer** waits for queued frames and coalesces as many as fit `record_target_bytes` into
  one sealed record and one write, so the per-record costs (AEAD call, syscall, await) are shared
  by many small frames;
* the **watchdog** sends a keepalive when we have been quiet for `keepalive_interval`, declares
  the peer dead after `idle_timeout` of silence, and ends the TaskGroup once `close()` is called.

Invariants:

* Senders never wait: `enqueue` appends or, when the queue would exceed its frame or byte cap,
  closes the connection as `SlowPeer`. A stalled peer therefore costs at most the queue caps plus
  the transport's high-water mark, and never delays other peers (each has its own writer).
* A write that cannot drain within `write_timeout` closes the connection as `SlowPeer`.
* After `close(reason)` nothing more is dispatched or queued; the first reason wins and is what
  `run()` returns; outstanding requests fail with `PeerDisconnected`.
* Errors from the peer (`RemoteProtocolError`) never escape `run()`; fatal ones close, frame
  errors are scored. Exceptions from the node's handlers other than `InvalidPayload` are bugs:
  they end this connection and propagate to the host's driver, which logs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol, TypeVar

from ledger.keys import PublicKey
from p2p.channel import SecureChannel
from p2p.config import Tuning
from p2p.errors import (
    ConnectionReplaced,
    DeadPeer,
    FrameError,
    HandlerFailed,
    HostStopping,
    InvalidPayload,
    MessageTooLarge,
    MisbehavingPeer,
    P2PError,
    PeerDisconnected,
    RemoteClosed,
    RequestFailed,
    RequestRejected,
    RequestTimeout,
    SlowPeer,
)
from p2p.frames import (
    ConsensusMessage,
    Goodbye,
    Keepalive,
    Message,
    Request,
    RequestFailure,
    Response,
    TransactionGossip,
    decode_message,
    encode_frame,
    split_frames,
    truncate_reason,
)
from p2p.handshake import describe_key
from p2p.ratelimit import TokenBucket
from p2p.score import Offense, PeerScore, offense_of

log = logging.getLogger(__name__)

_GOODBYE_GRACE: Final = 1.0
"""Seconds a clean close may take to flush before the socket is aborted."""

# Closing for these reasons says goodbye and flushes; any other reason aborts the socket at once,
# because the peer is stalled, dead or has corrupted the stream.
_GRACEFUL: Final = (ConnectionReplaced, HostStopping, MisbehavingPeer, RemoteClosed)


class ConnectionOwner(Protocol):
    """What a connection needs from its host: where inbound payloads go."""

    def deliver_transaction(self, peer: PeerConnection, transaction: bytes) -> None:
        """A gossiped transaction arrived (may raise InvalidPayload)."""

    def deliver_consensus(self, peer: PeerConnection, payload: bytes) -> None:
        """A consensus message arrived (may raise InvalidPayload)."""

    async def serve_request(self, peer: PeerConnection, payload: bytes) -> bytes:
        """Answer a request (may raise RequestRejected or InvalidPayload)."""


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """A snapshot of one connection, for status pages and metrics."""

    public_key: PublicKey
    """The peer's node key."""
    address: str
    """`host:port` of the other end."""
    outbound: bool
    """True if we dialled it."""
    score: float
    """Current score (0 is clean; the disconnect threshold is negative)."""
    queued_frames: int
    """Frames waiting in its send queue."""
    queued_bytes: int
    """Bytes waiting in its send queue."""
    frames_received: int
    """Frames received (keepalives and rejected frames included)."""
    frames_rejected: int
    """Frames received and rejected (malformed, oversized, truncated, unknown, invalid)."""


class PeerConnection:
    """The live state of one authenticated connection; see the module docstring."""

    def __init__(
        self,
        channel: SecureChannel,
        tuning: Tuning,
        owner: ConnectionOwner,
        clock: Callable[[], float],
    ) -> None:
        now = clock()
        self.channel = channel
        self.peer_id: PublicKey = channel.remote_key
        self.name = f"{describe_key(self.peer_id)}@{channel.remote_address}"
        """How logs name this peer: its address and where it connects from."""
        self._tuning = tuning
        self._owner = owner
        self._clock = clock
        self._queue: deque[bytes] = deque()
        self._queued_bytes = 0
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = asyncio.Event()
        self._close_reason: P2PError | None = None
        self._score = PeerScore(tuning.score_disconnect_threshold, tuning.score_half_life, now)
        self._message_bucket = TokenBucket(
            tuning.rate_messages_per_second, tuning.rate_message_burst, now
        )
        self._byte_bucket = TokenBucket(tuning.rate_bytes_per_second, tuning.rate_byte_burst, now)
        self._pending: dict[int, asyncio.Future[bytes]] = {}
        self._request_ids = itertools.count()
        self._inflight = 0
        self._tasks: asyncio.TaskGroup | None = None
        self._last_sent = now
        self._last_received = now
        self._keepalive_frame = encode_frame(Keepalive(), tuning.max_frame_size)
        self.frames_received = 0
        self.frames_rejected = 0

    # --- sending -------------------------------------------------------------------------------

    @property
    def outbound(self) -> bool:
        return self.channel.outbound

    @property
    def close_reason(self) -> P2PError | None:
        """Why the connection closed (or is closing); None while it is open."""
        return self._close_reason

    def enqueue(self, frame: bytes) -> bool:
        """Queue an encoded frame; False if closed or just closed for overflowing (never waits)."""
        if self._close_reason is not None:
            return False
        size = len(frame)
        tuning = self._tuning
        if (
            len(self._queue) >= tuning.send_queue_max_messages
            or self._queued_bytes + size > tuning.send_queue_max_bytes
        ):
            self.close(
                SlowPeer(
                    f"send queue to {self.name} is full: {len(self._queue)} frames and "
                    f"{self._queued_bytes} bytes queued, caps {tuning.send_queue_max_messages} "
                    f"frames and {tuning.send_queue_max_bytes} bytes"
                )
            )
            return False
        if not self._queue:  # the writer waits only on an empty queue
            self._idle.clear()
            self._wakeup.set()
        self._queue.append(frame)
        self._queued_bytes += size
        return True

    async def wait_sent(self) -> None:
        """Wait until everything queued has been written to the socket; PeerDisconnected if the
        connection closes first."""
        await self._idle.wait()
        if self._close_reason is not None:
            raise PeerDisconnected(f"{self.name} disconnected: {self._close_reason}")

    async def request(self, payload: bytes) -> bytes:
        """Send a request and wait `request_timeout` for its response; raise a RequestError."""
        timeout = self._tuning.request_timeout
        request_id = next(self._request_ids)
        frame = encode_frame(Request(request_id, payload), self._tuning.max_frame_size)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            if not self.enqueue(frame):
                raise PeerDisconnected(f"{self.name} disconnected: {self._close_reason}")
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            raise RequestTimeout(
                f"request {request_id} to {self.name} got no response within {timeout} s"
            ) from None
        finally:
            del self._pending[request_id]

    # --- scoring and closing -------------------------------------------------------------------

    def penalize(self, offense: Offense, detail: str) -> None:
        """Charge `offense` to the peer; close it as misbehaving at the threshold."""
        self.frames_rejected += 1
        now = self._clock()
        log.info("peer %s: %s (-%d points): %s", self.name, offense.name, offense.points, detail)
        if self._score.penalize(offense, now):
            self.close(
                MisbehavingPeer(
                    f"{self.name} score {self._score.value(now):.0f} reached the threshold "
                    f"{self._tuning.score_disconnect_threshold:.0f}; last offense "
                    f"{offense.name}: {detail}"
                )
            )

    def close(self, reason: P2PError) -> None:
        """Begin closing for `reason` (the first reason wins); `run()` then returns it."""
        if self._close_reason is not None:
            return
        self._close_reason = reason
        self._queue.clear()
        self._queued_bytes = 0
        self._idle.set()
        self._closed.set()

    def info(self) -> PeerInfo:
        return PeerInfo(
            public_key=self.peer_id,
            address=self.channel.remote_address,
            outbound=self.outbound,
            score=self._score.value(self._clock()),
            queued_frames=len(self._queue),
            queued_bytes=self._queued_bytes,
            frames_received=self.frames_received,
            frames_rejected=self.frames_rejected,
        )

    # --- the driver ----------------------------------------------------------------------------

    async def run(self) -> P2PError:
        """Serve the connection until it closes; return why. The socket is closed on return."""
        try:
            async with asyncio.TaskGroup() as tasks:
                self._tasks = tasks
                tasks.create_task(self._read_loop(), name=f"p2p read {self.name}")
                tasks.create_task(self._write_loop(), name=f"p2p write {self.name}")
                tasks.create_task(self._watchdog(), name=f"p2p watchdog {self.name}")
        except* P2PError as group:
            self.close(_first(group))  # no-op if close() was called first
        except* OSError as group:
            self.close(RemoteClosed(f"connection to {self.name} failed: {_first(group)}"))
        except* Exception as group:  # a bug in a handler: close, and let the host's driver log it
            bug = _first(group)
            self.close(HandlerFailed(f"handler raised {type(bug).__name__}: {bug}"))
            raise
        finally:
            self._tasks = None
            reason = self._close_reason or HostStopping(f"connection to {self.name} cancelled")
            self.close(reason)
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(PeerDisconnected(f"{self.name} disconnected: {reason}"))
            await self._close_socket(reason)
        return reason

    async def _close_socket(self, reason: P2PError) -> None:
        channel = self.channel
        if not isinstance(reason, _GRACEFUL):
            channel.abort()
            await channel.wait_closed()
            return
        try:
            if not isinstance(reason, RemoteClosed):
                goodbye = Goodbye(truncate_reason(str(reason)))
                channel.write_record(encode_frame(goodbye, self._tuning.max_frame_size))
            channel.close()
            async with asyncio.timeout(_GOODBYE_GRACE):
                await channel.wait_closed()
        except (TimeoutError, OSError):
            channel.abort()
        except asyncio.CancelledError:
            channel.abort()
            raise

    async def _watchdog(self) -> None:
        interval = self._tuning.keepalive_interval
        idle_timeout = self._tuning.idle_timeout
        while self._close_reason is None:
            now = self._clock()
            silent = now - self._last_received
            if silent >= idle_timeout:
                raise DeadPeer(
                    f"nothing received from {self.name} for {silent:.1f} s "
                    f"(idle timeout {idle_timeout} s)"
                )
            if now - self._last_sent >= interval:
                self._last_sent = now
                self.enqueue(self._keepalive_frame)
            wake = min(self._last_sent + interval, self._last_received + idle_timeout)
            with contextlib.suppress(TimeoutError):  # the timer is the point: wake up and check
                async with asyncio.timeout(max(wake - now, 0.001)):
                    await self._closed.wait()
        raise self._close_reason

    async def _write_loop(self) -> None:
        queue = self._queue
        target = self._tuning.record_target_bytes
        channel = self.channel
        while True:
            if not queue:
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            first = queue.popleft()
            size = len(first)
            if not queue or size + len(queue[0]) > target:
                record = first
            else:
                batch = [first]
                while queue and size + len(queue[0]) <= target:
                    frame = queue.popleft()
                    batch.append(frame)
                    size += len(frame)
                record = b"".join(batch)
            self._queued_bytes -= size
            channel.write_record(record)
            self._last_sent = self._clock()
            if channel.needs_drain():
                try:
                    async with asyncio.timeout(self._tuning.write_timeout):
                        await channel.drain()
                except TimeoutError:
                    raise SlowPeer(
                        f"{self.name} accepted nothing for {self._tuning.write_timeout} s "
                        f"({channel.write_buffer_size()} bytes unsent)"
                    ) from None

    async def _read_loop(self) -> None:
        max_frame = self._tuning.max_frame_size
        channel = self.channel
        while self._close_reason is None:
            plaintext = await channel.read_record()
            now = self._clock()
            self._last_received = now
            frames = 0
            try:
                for body in split_frames(plaintext, max_frame):
                    frames += 1
                    try:
                        self._dispatch(decode_message(body, max_frame))
                    except FrameError as exc:
                        self.penalize(offense_of(exc), str(exc))
                    except InvalidPayload as exc:
                        self.penalize(Offense.INVALID_PAYLOAD, str(exc))
                    if self._close_reason is not None:
                        return
            except FrameError as exc:  # the rest of the record cannot be delimited
                self.penalize(offense_of(exc), str(exc))
            self.frames_received += frames
            delay = max(
                self._message_bucket.take(frames, now),
                self._byte_bucket.take(len(plaintext), now),
            )
            if delay > 0:
                # We stop reading on purpose: the peer is not silent, so the watchdog must not
                # count this pause against the idle timeout.
                self._last_received = now + delay
                await asyncio.sleep(delay)

    def _dispatch(self, message: Message) -> None:
        if type(message) is ConsensusMessage:  # the hot path, before the general match
            self._owner.deliver_consensus(self, message.payload)
            return
        match message:
            case ConsensusMessage(payload):
                self._owner.deliver_consensus(self, payload)
            case TransactionGossip(transaction):
                self._owner.deliver_transaction(self, transaction)
            case Keepalive():
                pass
            case Request(request_id, payload):
                self._start_request(request_id, payload)
            case Response(request_id, payload):
                future = self._pending.get(request_id)
                if future is not None and not future.done():
                    future.set_result(payload)
            case RequestFailure(request_id, reason):
                future = self._pending.get(request_id)
                if future is not None and not future.done():
                    future.set_exception(
                        RequestFailed(f"{self.name} refused request {request_id}: {reason}")
                    )
            case Goodbye(reason):
                self.close(RemoteClosed(f"{self.name} said goodbye: {reason}"))

    def _start_request(self, request_id: int, payload: bytes) -> None:
        if self._inflight >= self._tuning.max_inflight_requests:
            self.penalize(
                Offense.TOO_MANY_REQUESTS,
                f"request {request_id} beyond {self._tuning.max_inflight_requests} in flight",
            )
            self._answer(RequestFailure(request_id, "too many requests in flight"))
            return
        if self._tasks is None:
            return
        self._inflight += 1
        self._tasks.create_task(self._serve(request_id, payload))

    async def _serve(self, request_id: int, payload: bytes) -> None:
        try:
            response = await self._owner.serve_request(self, payload)
            answer: Message = Response(request_id, response)
            self._answer(answer)
        except RequestRejected as exc:
            self._answer(RequestFailure(request_id, truncate_reason(str(exc))))
        except InvalidPayload as exc:
            self.penalize(Offense.INVALID_PAYLOAD, str(exc))
            self._answer(RequestFailure(request_id, truncate_reason(f"invalid request: {exc}")))
        finally:
            self._inflight -= 1

    def _answer(self, message: Message) -> None:
        try:
            frame = encode_frame(message, self._tuning.max_frame_size)
        except MessageTooLarge as exc:
            if not isinstance(message, Response):
                raise
            log.warning("response to %s too large: %s", self.name, exc)
            failure = RequestFailure(message.request_id, truncate_reason(str(exc)))
            frame = encode_frame(failure, self._tuning.max_frame_size)
        self.enqueue(frame)


_E = TypeVar("_E", bound=BaseException)


def _first(group: BaseExceptionGroup[_E]) -> _E:
    """The first leaf exception of a (possibly nested) exception group."""
    first = group.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first
