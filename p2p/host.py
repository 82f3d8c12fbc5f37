"""`P2PHost`: the node's one object for networking - listen, dial, gossip, send, request.

Theory of operation. `run()` listens and owns every task in one TaskGroup: a dial loop per
configured peer (which also drives that peer's outbound connection), and a task per inbound
connection (handshake, then drive). Inbound connections wait for their handshake in a bounded
pool with a per-source share (p2p/admission.py), so strangers holding idle sockets cannot keep
an allowlisted peer out. Authenticated connections live in the registry (p2p/registry.py: one
per peer, with a tie-break both ends agree on). Inbound payloads go to the node's `Handlers`
(p2p/handlers.py); transactions pass the gossip seen-cache first (p2p/gossip.py). Nothing the
node calls waits on a peer except `request` and `wait_sent`; a peer that cannot keep up is
dropped instead (p2p/peer.py).

Invariants: only keys on the allowlist in force (`set_allowed_keys`) and not banned are ever
registered, and a key taken off it loses its connection; after `stop()` no new connection is
registered and `run()` returns once every connection has said goodbye (or after a grace
period); a bug in a handler ends one connection, never the host.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Final

from ledger.keys import PublicKey
from p2p.admission import HandshakePool, PendingHandshake, source_of
from p2p.backoff import Backoff
from p2p.channel import STREAM_LIMIT, accept, confirm, dial
from p2p.config import P2PConfig, PeerAddress, check_allowlist
from p2p.errors import (
    ConnectionReplaced,
    HandlerFailed,
    HandshakeAborted,
    HandshakeError,
    HostLifecycleError,
    HostStopping,
    MisbehavingPeer,
    P2PError,
    PeerBanned,
    PeerNoLongerAllowed,
    PeerNotConnected,
    RemoteClosed,
    UnknownPeer,
)
from p2p.frames import consensus_frame, transaction_frame
from p2p.gossip import SeenCache, transaction_digest
from p2p.handlers import Handlers
from p2p.handshake import NodeIdentity, describe_key
from p2p.peer import PeerConnection, PeerInfo
from p2p.registry import Adoption, PeerRegistry
from p2p.score import BanList, Offense

log = logging.getLogger(__name__)

_STOP_GRACE: Final = 2.0
"""Seconds `run()` waits for connections to say goodbye before cancelling what is left."""


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
    handshakes_evicted: int = 0
    """Pending inbound handshakes closed to make room for a newer connection (admission.py)."""
    peers_dropped: int = 0
    """Connections we closed because the peer was slow, dead, misbehaving or corrupted the
    stream, or a handler failed (not counting clean closes, replacements and shutdown)."""
    peers_banned: int = 0
    """Peers banned for misbehaviour (each ban, including one that extends a ban)."""
    closed_traffic: dict[PublicKey, tuple[int, int]] = field(default_factory=dict)
    """Per peer key: (bytes received, bytes sent) on its connections that have closed (live
    ones are added by `P2PHost.traffic`); bounded by the allowlist."""


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
        self._handlers = handlers or Handlers()
        self._rng = rng or random.Random()
        self._registry = PeerRegistry(identity.public_key)
        self._seen = SeenCache(self._tuning.seen_cache_size)
        self._bans = BanList()
        self._handshakes: set[asyncio.Task[None]] = set()
        self._pending: HandshakePool[asyncio.WriteTransport] = HandshakePool(
            self._tuning.max_pending_handshakes, self._tuning.max_pending_handshakes_per_source
        )
        self._allowed = config.allowed_keys
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
        return self._identity.public_key

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

        The event loop's clock (`loop.time`) is the host's clock. Raises OSError if the port
        cannot be bound, HostLifecycleError if run twice."""
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
                    describe_key(self.public_key),
                    self._config.listen_host,
                    self._listen_port,
                )
                self._listening.set()
                await self._stop_requested.wait()
                self._stopping = True
                server.close()
                for connection in self._registry.connections():
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
        return self._registry.keys()

    def is_connected(self, peer: PublicKey) -> bool:
        return peer in self._registry

    async def wait_for_peer(self, peer: PublicKey) -> None:
        """Return once `peer` is connected (at once if it already is)."""
        await self._registry.wait_up(peer)

    def peers(self) -> list[PeerInfo]:
        """A snapshot of every connection, sorted by key."""
        return sorted(
            (connection.info() for connection in self._registry.connections()),
            key=lambda info: info.public_key,
        )

    def traffic(self) -> dict[PublicKey, tuple[int, int]]:
        """Per peer key: (bytes received, bytes sent) since start, closed and live connections
        together (encrypted record bytes; the handshake is not counted)."""
        totals = dict(self.stats.closed_traffic)
        for connection in self._registry.connections():
            received, sent = totals.get(connection.peer_id, (0, 0))
            channel = connection.channel
            totals[connection.peer_id] = (
                received + channel.bytes_received,
                sent + channel.bytes_sent,
            )
        return totals

    def broadcast_transaction(self, transaction: bytes) -> int:
        """Gossip a transaction to every connected peer (each relays it on); returns how many
        peers it was queued for - 0 if it was already gossiped. Raises MessageTooLarge."""
        frame = transaction_frame(transaction, self._tuning.max_frame_size)
        digest = transaction_digest(transaction)
        self._seen.observe(digest, None)
        return self._relay(digest, frame)

    def send_transaction(self, peer: PublicKey, transaction: bytes) -> bool:
        """Send one transaction to one peer, bypassing the seen-cache: for re-syncing pending
        transactions with a peer that (re)connected. False if the peer is not connected.
        Mind the peer's send-queue caps (overflowing them drops the peer as slow)."""
        connection = self._registry.get(peer)
        if connection is None:
            return False
        frame = transaction_frame(transaction, self._tuning.max_frame_size)
        sent = connection.enqueue(frame)
        self.stats.transaction_frames_sent += int(sent)
        return sent

    def broadcast_consensus(self, payload: bytes) -> int:
        """Send a consensus message to every connected peer; returns how many. Not relayed:
        validators are expected to be fully meshed. Raises MessageTooLarge."""
        frame = consensus_frame(payload, self._tuning.max_frame_size)
        return sum(1 for connection in self._registry.connections() if connection.enqueue(frame))

    def send_consensus(self, peer: PublicKey, payload: bytes) -> None:
        """Send a consensus message to one peer. Raises PeerNotConnected, MessageTooLarge.
        Queued, not awaited: if the peer cannot keep up it is dropped (and reconnected)."""
        frame = consensus_frame(payload, self._tuning.max_frame_size)
        connection = self._connection(peer)
        if not connection.enqueue(frame):
            raise PeerNotConnected(f"{connection.name} is disconnecting: {connection.close_reason}")

    async def request(self, peer: PublicKey, payload: bytes) -> bytes:
        """Ask `peer` (catch-up: blocks, certificates) and return its response bytes.

        Waits at most `request_timeout`. Raises PeerNotConnected, RequestTimeout, RequestFailed
        (the peer's handler refused, with its reason), PeerDisconnected, MessageTooLarge."""
        return await self._connection(peer).request(payload)

    async def wait_sent(self, peer: PublicKey) -> None:
        """Wait until everything queued for `peer` is written to its socket. Use it to pace bulk
        transfers under the send-queue caps. Raises PeerNotConnected or PeerDisconnected."""
        await self._connection(peer).wait_sent()

    @property
    def allowed_keys(self) -> frozenset[PublicKey]:
        """The keys allowed to connect now (the config's, until `set_allowed_keys`)."""
        return self._allowed

    def set_allowed_keys(self, keys: frozenset[PublicKey]) -> list[PublicKey]:
        """Replace the allowlist at runtime and close the connections of peers no longer on it;
        returns their keys, sorted. Handshakes already under way are checked again against the
        new list before they are registered, so a removed key never gets in afterwards.

        Raises InvalidConfig (and changes nothing) if a key is malformed or a configured peer's
        key is missing: the host keeps dialling its configured peers, so they must stay allowed."""
        check_allowlist(keys, self._config.peers)
        self._allowed = keys
        removed = [key for key in self.connected_peers() if key not in keys]
        for key in removed:
            connection = self._registry.get(key)
            if connection is not None:
                connection.close(
                    PeerNoLongerAllowed(f"{describe_key(key)} was taken off the allowlist")
                )
        if removed:
            log.info(
                "p2p allowlist now has %d keys; closing %s",
                len(keys),
                ", ".join(describe_key(key) for key in removed),
            )
        return removed

    def penalize(
        self, peer: PublicKey, detail: str, offense: Offense = Offense.INVALID_PAYLOAD
    ) -> None:
        """Charge a peer for a payload the node found invalid after its handler returned."""
        connection = self._registry.get(peer)
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

    # --- connections ---------------------------------------------------------------------------

    def _relay(self, digest: bytes, frame: bytes) -> int:
        send, origin = self._seen.claim_relay(digest)
        if not send:
            return 0
        sent = 0
        for connection in self._registry.connections():
            if connection.peer_id != origin and connection.enqueue(frame):
                sent += 1
        self.stats.transaction_frames_sent += sent
        return sent

    def _connection(self, peer: PublicKey) -> PeerConnection:
        connection = self._registry.get(peer)
        if connection is None:
            raise PeerNotConnected(f"no connection to {describe_key(peer)}")
        return connection

    def _on_accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks = self._tasks
        if tasks is None or self._stopping:
            writer.transport.abort()
            return
        origin = writer.get_extra_info("peername")
        entry, victim = self._pending.admit(source_of(origin), writer.transport)
        if victim is not None:  # DEBUG, not INFO: under a flood, logging would be the cost
            log.debug(
                "p2p closed a pending handshake from %s to admit %s (%d pending)",
                victim.source,
                origin,
                len(self._pending),
            )
            self.stats.handshakes_evicted += 1
            victim.handle.abort()
        task = tasks.create_task(self._serve_inbound(reader, writer, entry), name="p2p inbound")
        self._handshakes.add(task)
        task.add_done_callback(self._handshakes.discard)

    async def _serve_inbound(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        entry: PendingHandshake[asyncio.WriteTransport],
    ) -> None:
        config = self._config
        origin = writer.get_extra_info("peername")
        try:
            channel = await accept(
                reader,
                writer,
                self._identity,
                config.chain_id,
                self._allowed,
                self._tuning,
                on_first_message=lambda: self._pending.mark_spoke(entry),
            )
        except HandshakeError as exc:
            if not entry.evicted:  # an evicted one was counted in stats.handshakes_evicted
                self._log_refusal(f"inbound connection from {origin}", exc)
            return
        except OSError as exc:
            log.info("p2p inbound handshake from %s failed: %s", origin, exc)
            return
        finally:
            self._pending.release(entry)
        current = asyncio.current_task()
        if current is not None:  # authenticated: no longer counts as a pending handshake
            self._handshakes.discard(current)
        until = self._bans.banned_until(channel.remote_key, self._clock())
        if until is not None:
            remaining = until - self._clock()
            banned = PeerBanned(
                f"{describe_key(channel.remote_key)} is banned {remaining:.0f} s more"
            )
            self._log_refusal(f"inbound connection from {channel.remote_address}", banned)
            channel.abort()
            await channel.wait_closed()
            return
        connection = PeerConnection(channel, self._tuning, self, self._clock)
        adoption = self._adopt(connection)
        if adoption is Adoption.REFUSED:
            channel.abort()
            await channel.wait_closed()
            return
        confirm(channel, self._tuning)
        await self._drive(connection, adoption)

    async def _dial_loop(self, peer: PeerAddress) -> None:
        tuning = self._tuning
        backoff = Backoff(
            tuning.reconnect_initial_delay,
            tuning.reconnect_max_delay,
            tuning.reconnect_jitter,
            self._rng,
        )
        target = f"{describe_key(peer.public_key)}@{peer.host}:{peer.port}"
        while not self._stopping:
            await self._registry.wait_down(peer.public_key)
            until = self._bans.banned_until(peer.public_key, self._clock())
            if until is not None:
                await asyncio.sleep(until - self._clock())
                continue
            try:
                channel = await dial(
                    peer, self._identity, self._config.chain_id, self._allowed, tuning
                )
            except HandshakeAborted as exc:
                log.info("p2p dial %s: %s", target, exc)
            except HandshakeError as exc:
                self._log_refusal(f"dialled peer {target}", exc)
            except OSError as exc:
                log.info("p2p cannot reach %s (attempt %d): %s", target, backoff.attempts + 1, exc)
            else:
                connection = PeerConnection(channel, tuning, self, self._clock)
                adoption = self._adopt(connection)
                if adoption is Adoption.REFUSED:
                    channel.abort()
                    await channel.wait_closed()
                else:
                    backoff.reset()
                    await self._drive(connection, adoption)
            await asyncio.sleep(backoff.next_delay())

    def _adopt(self, connection: PeerConnection) -> Adoption:
        """Register an authenticated connection unless the host stops or the tie-break refuses."""
        if self._stopping:
            return Adoption.REFUSED
        if connection.peer_id not in self._allowed:  # removed while its handshake ran
            refused = UnknownPeer(f"node key {connection.name} is no longer on the allowlist")
            self._log_refusal(f"connection with {connection.name}", refused)
            return Adoption.REFUSED
        adoption = self._registry.adopt(connection)
        if adoption is Adoption.REFUSED:
            log.info("p2p keeps its existing connection to %s over a new one", connection.name)
        else:
            direction = "outbound" if connection.outbound else "inbound"
            log.info("p2p connected to %s (%s)", connection.name, direction)
        return adoption

    async def _drive(self, connection: PeerConnection, adoption: Adoption) -> None:
        """The top of one connection's driver: announce it, run it, release it.

        Exceptions from the node's handlers are bugs; they are logged with their traceback and
        end this connection only (`HandlerFailed`), so one bad message cannot stop the node."""
        self._drivers += 1
        self._no_drivers.clear()
        peer = connection.peer_id
        try:
            if adoption is Adoption.NEW_PEER:
                self._announce(connection)
            try:
                reason = await connection.run()
            except Exception:  # driver top: see the docstring
                log.exception("p2p connection to %s failed", connection.name)
                reason = connection.close_reason or HandlerFailed("connection driver failed")
        finally:
            self._drivers -= 1
            if self._drivers == 0:
                self._no_drivers.set()
        received, sent = self.stats.closed_traffic.get(peer, (0, 0))
        channel = connection.channel
        self.stats.closed_traffic[peer] = (
            received + channel.bytes_received,
            sent + channel.bytes_sent,
        )
        if isinstance(reason, MisbehavingPeer):
            self._bans.ban(peer, self._clock() + self._tuning.ban_duration)
            self.stats.peers_banned += 1
            log.warning(
                "p2p banned %s for %s s: %s", connection.name, self._tuning.ban_duration, reason
            )
        if not isinstance(reason, HostStopping | ConnectionReplaced | RemoteClosed):
            self.stats.peers_dropped += 1
        if self._registry.release(connection):
            log.info("p2p disconnected from %s: %s", connection.name, reason)
            self._announce(connection, reason)

    def _announce(self, connection: PeerConnection, reason: P2PError | None = None) -> None:
        """Tell the node a peer connected (no reason) or disconnected; part of `_drive`."""
        peer = connection.peer_id
        try:
            if reason is None:
                self._handlers.on_peer_connected(peer)
            else:
                self._handlers.on_peer_disconnected(peer, str(reason))
        except Exception as exc:  # driver top (see `_drive`): a handler bug ends one connection
            log.exception("p2p peer event handler failed for %s", connection.name)
            connection.close(HandlerFailed(f"peer event handler raised {type(exc).__name__}"))

    def _log_refusal(self, what: str, error: HandshakeError) -> None:
        self.stats.handshakes_refused += 1
        log.warning("p2p refused %s: %s: %s", what, type(error).__name__, error)


def _unstarted_clock() -> float:
    raise HostLifecycleError("the host has no clock before run() starts")
