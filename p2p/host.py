"""`P2PHost`: the node's one object for networking - listen, dial, gossip, send, request.

Theory of operation. `run()` listens and owns every task in one TaskGroup: a dial loop per
configured peer (which also drives that peer's outbound connection), and a task per inbound
connection (handshake, then drive). Authenticated connections live in a registry keyed by the
peer's node key; there is at most one per peer. When two exist - both sides dialled at once, or a
peer reconnected before we noticed the old connection die - the tie-break keeps the newer one if
both have the same direction, else the one dialled by the node with the smaller key; both ends
apply the same rule, so they keep the same connection.

Inbound payloads go to the node's `Handlers`; transactions pass through the gossip seen-cache
first (p2p/gossip.py). Everything the node calls is synchronous and never waits on a peer except
`request` and `wait_sent`; a peer that cannot keep up is dropped instead (p2p/peer.py).

Invariants: only allowlisted, non-banned keys are ever registered; `on_peer_connected` and
`on_peer_disconnected` alternate per peer (a replaced connection fires neither); after `stop()`
no new connection is registered and `run()` returns once every connection has said goodbye.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

from ledger.keys import PublicKey
from p2p.backoff import Backoff
from p2p.channel import STREAM_LIMIT, accept, confirm, dial
from p2p.config import P2PConfig, PeerAddress
from p2p.errors import (
    ConnectionReplaced,
    HandshakeAborted,
    HandshakeError,
    HostLifecycleError,
    HostStopping,
    MisbehavingPeer,
    P2PError,
    PeerBanned,
    PeerNotConnected,
    RemoteClosed,
    RequestRejected,
)
from p2p.frames import consensus_frame, transaction_frame
from p2p.gossip import SeenCache, transaction_digest
from p2p.handshake import NodeIdentity, describe_key
from p2p.peer import PeerConnection, PeerInfo
from p2p.score import BanList, Offense

log = logging.getLogger(__name__)

_STOP_GRACE: Final = 2.0
"""Seconds `run()` waits for connections to say goodbye before cancelling what is left."""

TransactionHandler = Callable[[PublicKey, bytes], bool]
ConsensusHandler = Callable[[PublicKey, bytes], None]
RequestHandler = Callable[[PublicKey, bytes], Awaitable[bytes]]
PeerConnectedHandler = Callable[[PublicKey], None]
PeerDisconnectedHandler = Callable[[PublicKey, str], None]


def _relay_every_transaction(peer: PublicKey, transaction: bytes) -> bool:
    return True


def _ignore_consensus(peer: PublicKey, payload: bytes) -> None:
    return None


async def _refuse_requests(peer: PublicKey, payload: bytes) -> bytes:
    raise RequestRejected("this node serves no requests")


def _ignore_connected(peer: PublicKey) -> None:
    return None


def _ignore_disconnected(peer: PublicKey, reason: str) -> None:
    return None


@dataclass(frozen=True, slots=True)
class Handlers:
    """The node's callbacks. All but `on_request` are synchronous and must not block: hand the
    payload to your own queue. Raise `InvalidPayload` from any of them to penalise the sender."""

    on_transaction: TransactionHandler = _relay_every_transaction
    """A new (not yet seen) gossiped transaction. Return True to relay it to our other peers
    (it is valid or at least admissible), False to stop it here; to relay it later, call
    `broadcast_transaction` with the same bytes."""

    on_consensus: ConsensusHandler = _ignore_consensus
    """A consensus message sent to us directly (never relayed by p2p)."""

    on_request: RequestHandler = _refuse_requests
    """A catch-up request; return the response bytes, or raise `RequestRejected(reason)`.
    Runs as its own task; at most `max_inflight_requests` at once per peer."""

    on_peer_connected: PeerConnectedHandler = _ignore_connected
    """A peer now has an authenticated connection."""

    on_peer_disconnected: PeerDisconnectedHandler = _ignore_disconnected
    """A peer lost its last connection; the reason is human-readable."""


@dataclass(slots=True)
class HostStats:
    """Counters since start, for metrics."""

    transactions_delivered: int = 0
    """Gossiped transactions handed to `on_transaction` (first copies)."""
    transactions_duplicate: int = 0
    """Gossiped copies dropped by the seen-cache."""
    transaction_frames_sent: int = 0
    """Transaction frames queued to peers (own broadcasts and relays)."""
    handshakes_refused: int = 0
    """Inbound or outbound handshakes that failed or were refused."""
    peers_dropped: int = 0
    """Connections we closed because the peer was slow, dead, misbehaving or corrupted the
    stream (not counting clean closes, replacements and shutdown)."""


@dataclass(slots=True)
class _PeerSlot:
    """Per-peer connection state events, for dial loops and `wait_for_peer`."""

    up: asyncio.Event = field(default_factory=asyncio.Event)
    down: asyncio.Event = field(default_factory=asyncio.Event)


class P2PHost:
    """Authenticated encrypted transport and gossip for one node. See p2p/__init__.py."""

    def __init__(
        self,
        config: P2PConfig,
        identity: NodeIdentity,
        handlers: Handlers | None = None,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self._config = config
        self._tuning = config.tuning
        self._identity = identity
        self._own_key = identity.public_key
        self._handlers = handlers or Handlers()
        self._rng = rng or random.Random()
        self._connections: dict[PublicKey, PeerConnection] = {}
        self._slots: dict[PublicKey, _PeerSlot] = {}
        self._seen = SeenCache(self._tuning.seen_cache_size)
        self._bans = BanList()
        self._handshakes: set[asyncio.Task[None]] = set()
        self._drivers = 0
        self._no_drivers = asyncio.Event()
        self._no_drivers.set()
        self._listening = asyncio.Event()
        self._stop_requested = asyncio.Event()
        self._stopping = False
        self._started = False
        self._listen_port: int | None = None
        self._tasks: asyncio.TaskGroup | None = None
        self._clock: Callable[[], float] = _unstarted_clock
        self.stats = HostStats()

    # --- lifecycle -----------------------------------------------------------------------------

    def set_handlers(self, handlers: Handlers) -> None:
        """Replace the node's callbacks (e.g. once the consensus driver exists)."""
        self._handlers = handlers

    @property
    def public_key(self) -> PublicKey:
        """Our node key: how peers identify us."""
        return self._own_key

    @property
    def listen_port(self) -> int:
        """The bound TCP port (useful with `listen_port=0`); only after listening started."""
        if self._listen_port is None:
            raise HostLifecycleError("the host is not listening yet")
        return self._listen_port

    async def wait_listening(self) -> None:
        """Return once `run()` has bound its listening socket."""
        await self._listening.wait()

    def stop(self) -> None:
        """Ask `run()` to say goodbye to every peer and return. Idempotent."""
        self._stop_requested.set()

    async def run(self) -> None:
        """Listen, dial and serve until `stop()`; run it inside the node's TaskGroup.

        Raises OSError if the port cannot be bound, HostLifecycleError if run twice."""
        if self._started:
            raise HostLifecycleError("a P2PHost runs only once; create a new one")
        self._started = True
        self._clock = asyncio.get_running_loop().time
        server = await asyncio.start_server(
            self._on_accept, self._config.listen_host, self._config.listen_port, limit=STREAM_LIMIT
        )
        try:
            self._listen_port = server.sockets[0].getsockname()[1]
            async with asyncio.TaskGroup() as tasks:
                self._tasks = tasks
                dialers = [
                    tasks.create_task(self._dial_loop(peer), name=f"p2p dial {peer.host}")
                    for peer in self._config.peers
                ]
                log.info(
                    "p2p %s listening on %s:%d",
                    describe_key(self._own_key),
                    self._config.listen_host,
                    self._listen_port,
                )
                self._listening.set()
                await self._stop_requested.wait()
                self._stopping = True
                server.close()
                for connection in list(self._connections.values()):
                    connection.close(HostStopping("host stopping"))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_STOP_GRACE):
                        await self._no_drivers.wait()
                for task in [*dialers, *self._handshakes]:
                    task.cancel()
        finally:
            self._tasks = None
            self._stopping = True
            server.close()
            await server.wait_closed()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[P2PHost]:
        """`async with host.running():` - run the host for the block's duration (tests, tools).

        The node should call `run()` in its own TaskGroup instead; this helper owns the one task
        itself and awaits it on exit, so failures surface there rather than as task groups."""
        runner = asyncio.create_task(self.run(), name="p2p host")
        try:
            listening = asyncio.ensure_future(self._listening.wait())
            await asyncio.wait({runner, listening}, return_when=asyncio.FIRST_COMPLETED)
            listening.cancel()
            if runner.done():
                runner.result()
            yield self
        finally:
            self.stop()
            await runner

    # --- what the node calls -------------------------------------------------------------------

    def connected_peers(self) -> list[PublicKey]:
        """Keys of the peers with an authenticated connection, sorted."""
        return sorted(self._connections)

    def is_connected(self, peer: PublicKey) -> bool:
        return peer in self._connections

    async def wait_for_peer(self, peer: PublicKey) -> None:
        """Return once `peer` is connected (at once if it already is)."""
        await self._slot(peer).up.wait()

    def peers(self) -> list[PeerInfo]:
        """A snapshot of every connection, sorted by key."""
        return [self._connections[key].info() for key in sorted(self._connections)]

    def broadcast_transaction(self, transaction: bytes) -> int:
        """Gossip a transaction to every connected peer (each relays it on); returns how many
        peers it was queued for - 0 if it was already gossiped. Raises MessageTooLarge."""
        frame = transaction_frame(transaction, self._tuning.max_frame_size)
        digest = transaction_digest(transaction)
        self._seen.observe(digest, None)
        return self._relay(digest, frame)

    def broadcast_consensus(self, payload: bytes) -> int:
        """Send a consensus message to every connected peer; returns how many. Not relayed:
        validators are expected to be fully meshed. Raises MessageTooLarge."""
        frame = consensus_frame(payload, self._tuning.max_frame_size)
        return sum(
            1 for connection in list(self._connections.values()) if connection.enqueue(frame)
        )

    def send_consensus(self, peer: PublicKey, payload: bytes) -> None:
        """Send a consensus message to one peer. Raises PeerNotConnected, MessageTooLarge.
        Queued, not awaited: if the peer cannot keep up it is dropped (and reconnected)."""
        frame = consensus_frame(payload, self._tuning.max_frame_size)
        if not self._connection(peer).enqueue(frame):
            raise PeerNotConnected(f"{describe_key(peer)} was dropped as too slow")

    async def request(self, peer: PublicKey, payload: bytes) -> bytes:
        """Ask `peer` (catch-up: blocks, certificates) and return its response bytes.

        Waits at most `request_timeout`. Raises PeerNotConnected, RequestTimeout, RequestFailed
        (the peer's handler refused, with its reason), PeerDisconnected, MessageTooLarge."""
        connection = self._connection(peer)
        return await connection.request(payload)

    async def wait_sent(self, peer: PublicKey) -> None:
        """Wait until everything queued for `peer` is written to its socket. Use it to pace bulk
        transfers under the send-queue caps. Raises PeerNotConnected or PeerDisconnected."""
        await self._connection(peer).wait_sent()

    def penalize(
        self, peer: PublicKey, detail: str, offense: Offense = Offense.INVALID_PAYLOAD
    ) -> None:
        """Charge a peer for a payload the node found invalid after the handler returned."""
        connection = self._connections.get(peer)
        if connection is not None:
            connection.penalize(offense, detail)

    # --- ConnectionOwner: inbound payloads -----------------------------------------------------

    def deliver_transaction(self, peer: PeerConnection, transaction: bytes) -> None:
        digest = transaction_digest(transaction)
        if not self._seen.observe(digest, peer.peer_id):
            self.stats.transactions_duplicate += 1
            return
        self.stats.transactions_delivered += 1
        if self._handlers.on_transaction(peer.peer_id, transaction):
            self._relay(digest, transaction_frame(transaction, self._tuning.max_frame_size))

    def deliver_consensus(self, peer: PeerConnection, payload: bytes) -> None:
        self._handlers.on_consensus(peer.peer_id, payload)

    async def serve_request(self, peer: PeerConnection, payload: bytes) -> bytes:
        return await self._handlers.on_request(peer.peer_id, payload)

    # --- internals -----------------------------------------------------------------------------

    def _relay(self, digest: bytes, frame: bytes) -> int:
        send, origin = self._seen.claim_relay(digest)
        if not send:
            return 0
        sent = 0
        for key, connection in list(self._connections.items()):
            if key != origin and connection.enqueue(frame):
                sent += 1
        self.stats.transaction_frames_sent += sent
        return sent

    def _connection(self, peer: PublicKey) -> PeerConnection:
        connection = self._connections.get(peer)
        if connection is None:
            raise PeerNotConnected(f"no connection to {describe_key(peer)}")
        return connection

    def _slot(self, peer: PublicKey) -> _PeerSlot:
        slot = self._slots.get(peer)
        if slot is None:
            slot = self._slots[peer] = _PeerSlot()
            slot.down.set()
        return slot

    def _on_accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks = self._tasks
        if tasks is None or self._stopping:
            writer.transport.abort()
            return
        if len(self._handshakes) >= self._tuning.max_pending_handshakes:
            log.warning(
                "p2p refused a connection from %s: %d handshakes already pending",
                writer.get_extra_info("peername"),
                len(self._handshakes),
            )
            self.stats.handshakes_refused += 1
            writer.transport.abort()
            return
        task = tasks.create_task(self._serve_inbound(reader, writer), name="p2p inbound")
        self._handshakes.add(task)
        task.add_done_callback(self._handshakes.discard)

    async def _serve_inbound(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        config = self._config
        try:
            channel = await accept(
                reader, writer, self._identity, config.chain_id, config.allowed_keys, self._tuning
            )
        except HandshakeError as exc:
            self._log_refusal(f"inbound connection from {writer.get_extra_info('peername')}", exc)
            return
        except OSError as exc:
            log.info(
                "p2p inbound handshake from %s failed: %s", writer.get_extra_info("peername"), exc
            )
            return
        current = asyncio.current_task()
        if current is not None:  # authenticated: no longer counts as a pending handshake
            self._handshakes.discard(current)
        until = self._bans.banned_until(channel.remote_key, self._clock())
        if until is not None:
            remaining = until - self._clock()
            ban = PeerBanned(
                f"{describe_key(channel.remote_key)} is banned for {remaining:.0f} s more"
            )
            self._log_refusal(f"inbound connection from {channel.remote_address}", ban)
            channel.abort()
            await channel.wait_closed()
            return
        connection = PeerConnection(channel, self._tuning, self, self._clock)
        if not self._register(connection):
            channel.abort()
            await channel.wait_closed()
            return
        confirm(channel, self._tuning)
        await self._drive(connection)

    async def _dial_loop(self, peer: PeerAddress) -> None:
        tuning = self._tuning
        backoff = Backoff(
            tuning.reconnect_initial_delay,
            tuning.reconnect_max_delay,
            tuning.reconnect_jitter,
            self._rng,
        )
        slot = self._slot(peer.public_key)
        target = f"{describe_key(peer.public_key)}@{peer.host}:{peer.port}"
        while not self._stopping:
            await slot.down.wait()
            until = self._bans.banned_until(peer.public_key, self._clock())
            if until is not None:
                await asyncio.sleep(until - self._clock())
                continue
            try:
                channel = await dial(
                    peer, self._identity, self._config.chain_id, self._config.allowed_keys, tuning
                )
            except HandshakeAborted as exc:
                log.info("p2p dial %s: %s", target, exc)
            except HandshakeError as exc:
                self._log_refusal(f"dialled peer {target}", exc)
            except OSError as exc:
                log.info("p2p cannot reach %s (attempt %d): %s", target, backoff.attempts + 1, exc)
            else:
                connection = PeerConnection(channel, tuning, self, self._clock)
                if self._register(connection):
                    backoff.reset()
                    await self._drive(connection)
                else:
                    channel.abort()
                    await channel.wait_closed()
            await asyncio.sleep(backoff.next_delay())

    def _register(self, connection: PeerConnection) -> bool:
        """Adopt an authenticated connection unless the host stops or the tie-break refuses it."""
        if self._stopping:
            return False
        peer = connection.peer_id
        existing = self._connections.get(peer)
        if existing is not None:
            if not self._prefer(connection, existing):
                log.info(
                    "p2p keeps the existing connection to %s, closing %s",
                    existing.name,
                    connection.name,
                )
                return False
            existing.close(ConnectionReplaced(f"{existing.name} replaced by {connection.name}"))
        self._connections[peer] = connection
        log.info(
            "p2p connected to %s (%s)",
            connection.name,
            "outbound" if connection.outbound else "inbound",
        )
        if existing is None:
            slot = self._slot(peer)
            slot.down.clear()
            slot.up.set()
            self._handlers.on_peer_connected(peer)
        return True

    def _prefer(self, new: PeerConnection, existing: PeerConnection) -> bool:
        """The tie-break between two connections to one peer (the same answer at both ends)."""
        if new.outbound == existing.outbound:
            return True
        new_dialler = self._own_key if new.outbound else new.peer_id
        return new_dialler == min(self._own_key, new.peer_id)

    async def _drive(self, connection: PeerConnection) -> None:
        self._drivers += 1
        self._no_drivers.clear()
        reason: P2PError
        try:
            reason = await connection.run()
        except Exception:  # driver top: a handler bug ends this connection, not the node
            log.exception("p2p connection to %s failed", connection.name)
            reason = connection.close_reason or P2PError("internal error")
        finally:
            self._drivers -= 1
            if self._drivers == 0:
                self._no_drivers.set()
        self._unregister(connection, reason)

    def _unregister(self, connection: PeerConnection, reason: P2PError) -> None:
        peer = connection.peer_id
        if isinstance(reason, MisbehavingPeer):
            self._bans.ban(peer, self._clock() + self._tuning.ban_duration)
            log.warning(
                "p2p banned %s for %s s: %s", connection.name, self._tuning.ban_duration, reason
            )
        if not isinstance(reason, HostStopping | ConnectionReplaced | RemoteClosed):
            self.stats.peers_dropped += 1
        if self._connections.get(peer) is not connection:
            return
        del self._connections[peer]
        log.info("p2p disconnected from %s: %s", connection.name, reason)
        slot = self._slot(peer)
        slot.up.clear()
        slot.down.set()
        self._handlers.on_peer_disconnected(peer, str(reason))

    def _log_refusal(self, what: str, error: HandshakeError) -> None:
        self.stats.handshakes_refused += 1
        log.warning("p2p refused %s: %s: %s", what, type(error).__name__, error)


def _unstarted_clock() -> float:
    raise HostLifecycleError("the host has no clock before run() starts")
