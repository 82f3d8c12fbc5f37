"""The asyncio shell around the sans-io PBFT replica.

Every input to the replica goes through `ConsensusDriver.feed`, which runs the replica
synchronously on the event loop and carries out the returned actions in order, honouring the
contract of `consensus.actions`: consecutive `Persist`s are written as one synced LevelDB batch
before any later action; a `CommitBlock` is stored (and a validator change reported) before the
next input; `SetTimer` replaces the one timer handle. Catch-up fetches run as tasks owned by the
node's TaskGroup and feed their blocks back through `feed`.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from consensus.actions import (
    Action,
    Broadcast,
    CommitBlock,
    DiscardRecords,
    EnteredView,
    FaultDetected,
    Persist,
    RequestCatchUp,
    Send,
    SetTimer,
)
from consensus.errors import MessageRejected
from consensus.messages import decode_message, encode_message
from consensus.records import decode_record, encode_record, record_is_obsolete
from consensus.replica import Replica
from ledger.blocks import decode_block
from ledger.certificates import CommitCertificate
from ledger.encoding import decode, encode
from ledger.errors import LedgerError
from ledger.keys import PublicKey, address_of, format_address
from ledger.validator_state import pending_validator_changes
from ledger.validators import ValidatorSet
from p2p import P2PError, RequestRejected
from secnode.app import Committed, LedgerApp
from secnode.metrics import Metrics

log = logging.getLogger("secnode.driver")

CATCH_UP_MAX_BLOCKS = 32
CATCH_UP_MAX_BYTES = 3 * 1024 * 1024


class CatchUpFailed(Exception):
    """A peer's catch-up response was malformed (the peer is skipped)."""


class PeerHost(Protocol):
    """What the driver needs from the p2p layer (`p2p.P2PHost` implements it)."""

    def is_connected(self, peer: PublicKey) -> bool: ...

    def send_consensus(self, peer: PublicKey, payload: bytes) -> None: ...

    def broadcast_consensus(self, payload: bytes) -> int: ...

    async def request(self, peer: PublicKey, payload: bytes) -> bytes: ...

    def penalize(self, peer: PublicKey, detail: str) -> None: ...


def record_key(encoded: bytes) -> bytes:
    return b"rec:" + hashlib.sha256(encoded).digest()


class ConsensusDriver:
    """Feeds the replica and carries out its actions."""

    def __init__(
        self,
        replica: Replica,
        app: LedgerApp,
        host: PeerHost,
        metrics: Metrics,
        tasks: asyncio.TaskGroup,
        on_commit: Callable[[Committed, float], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.replica = replica
        self.app = app
        self.host = host
        self.metrics = metrics
        self.tasks = tasks
        self.on_commit = on_commit
        self.clock = clock
        self.view_changes = 0
        self.syncing = False
        self._timer: asyncio.TimerHandle | None = None
        self._feeding = False
        self._queue: list[Callable[[float], list[Action]]] = []
        self._known_changes = {h for h, _ in pending_validator_changes(app.state)}
        self._pending_scheduled = False
        self._stopped = False

    # --- inputs ------------------------------------------------------------------------------

    def feed(self, step: Callable[[float], list[Action]]) -> None:
        """Run one replica input now (or right after the input being processed)."""
        if self._stopped:
            return
        self._queue.append(step)
        if self._feeding:
            return
        self._feeding = True
        try:
            while self._queue:
                current = self._queue.pop(0)
                actions = current(self.clock())
                self._carry_out(actions)
        finally:
            self._feeding = False

    def start(self) -> None:
        self.feed(self.replica.start)

    def stop(self) -> None:
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()

    def on_consensus_bytes(self, peer: PublicKey, payload: bytes) -> None:
        """p2p handler: decode and feed; a refused message is logged and charged to the peer."""
        try:
            message = decode_message(payload)
        except MessageRejected as exc:
            self.host.penalize(peer, f"consensus message: {exc}")
            return

        def step(now: float) -> list[Action]:
            try:
                return self.replica.on_message(message, now)
            except MessageRejected as exc:
                if not exc.benign:
                    log.info("refused consensus message from %s: %s", _name(peer), exc)
                    self.host.penalize(peer, f"consensus: {exc}")
                return []

        self.feed(step)

    def on_transactions_pending(self) -> None:
        """Tell the replica there is work, once per event-loop iteration however many
        transactions arrived in it (each notification runs the replica's proposal logic)."""
        if self._pending_scheduled or self._stopped:
            return
        self._pending_scheduled = True
        asyncio.get_running_loop().call_soon(self._notify_pending)

    def _notify_pending(self) -> None:
        self._pending_scheduled = False
        self.feed(self.replica.on_pending_transactions)

    # --- actions -----------------------------------------------------------------------------

    def _carry_out(self, actions: list[Action]) -> None:
        persist: list[tuple[bytes, bytes | None]] = []
        for action in actions:
            if isinstance(action, Persist):
                encoded = encode_record(action.record)
                persist.append((record_key(encoded), encoded))
                continue
            if persist:
                self.app.store.put_records(persist)
                persist = []
            self._carry_out_one(action)
        if persist:
            self.app.store.put_records(persist)

    def _carry_out_one(self, action: Action) -> None:
        if isinstance(action, Send):
            public_key = self._public_key(action.to)
            if public_key is not None and self.host.is_connected(public_key):
                self.host.send_consensus(public_key, encode_message(action.message))
        elif isinstance(action, Broadcast):
            self.host.broadcast_consensus(encode_message(action.message))
        elif isinstance(action, SetTimer):
            self._set_timer(action.deadline)
        elif isinstance(action, CommitBlock):
            self._commit(action)
        elif isinstance(action, DiscardRecords):
            self._discard(action)
        elif isinstance(action, RequestCatchUp):
            if not self.syncing:
                self.syncing = True
                self.tasks.create_task(self._catch_up(action))
        elif isinstance(action, FaultDetected):
            log.warning("fault by %s: %s", format_address(action.validator), action.reason)
        elif isinstance(action, EnteredView):
            if action.view > 0:
                self.view_changes += 1
                self.metrics.record_view_change()
            self.app.view = action.view
            self.metrics.set_view(action.view)
            log.info("entered view %d (primary %s)", action.view, format_address(action.primary))

    def _public_key(self, address: bytes) -> PublicKey | None:
        for height in (self.app.head.height + 1, self.app.head.height):
            key = self.replica.schedule.at(max(height, 1)).public_key_of(address)
            if key is not None:
                return key
        return None

    def _set_timer(self, deadline: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        delay = max(deadline - self.clock(), 0.0)
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(delay, lambda: self.feed(self.replica.on_tick))

    def _commit(self, action: CommitBlock) -> None:
        committed = self.app.commit(action.seq, action.digest, action.payload, action.certificate)
        now = self.clock()
        self.on_commit(committed, now)
        latency = now - committed.block.header.timestamp_ms / 1000
        self.metrics.observe_commit(max(latency, 0.0), len(committed.block.transactions))
        self.metrics.set_height(action.seq)
        for effective, validators in pending_validator_changes(self.app.state):
            if effective not in self._known_changes:
                self._known_changes.add(effective)
                self._queue.append(
                    functools.partial(self._report_change, action.seq, effective, validators)
                )

    def _report_change(
        self, committed: int, effective: int, validators: ValidatorSet, now: float
    ) -> list[Action]:
        log.info("validator set changes at height %d (%d validators)", effective, validators.size)
        return self.replica.on_validator_set(committed, effective, validators, now)

    def _discard(self, action: DiscardRecords) -> None:
        obsolete: list[tuple[bytes, bytes | None]] = []
        for key, value in self.app.store.records():
            try:
                record = decode_record(value)
            except Exception:  # an unreadable record is garbage by definition
                obsolete.append((key, None))
                continue
            if record_is_obsolete(record, action.through_seq, action.before_view):
                obsolete.append((key, None))
        if obsolete:
            self.app.store.put_records(obsolete)

    # --- catch-up ----------------------------------------------------------------------------

    async def _catch_up(self, request: RequestCatchUp) -> None:
        """Fetch the missing blocks from the named peers in turn; the replica checks each
        certificate, so no single peer is trusted."""
        try:
            others = [a for a in request.peers if a != self.app.proposer]  # never ask ourselves
            peers = [k for a in others if (k := self._public_key(a)) is not None]
            next_height = max(request.from_height, self.app.head.height + 1)
            attempts = 0
            while next_height <= request.to_height and peers and attempts < 3 * len(peers):
                peer = peers[attempts % len(peers)]
                attempts += 1
                try:
                    blocks = await self._fetch(peer, next_height, request.to_height)
                except (P2PError, LedgerError, CatchUpFailed) as exc:
                    log.info("catch-up from %s failed: %s", _name(peer), exc)
                    continue
                for height, payload, certificate in blocks:
                    digest = decode_block(payload).hash()
                    self.feed(
                        functools.partial(
                            self._accept_catch_up, height, digest, payload, certificate
                        )
                    )
                next_height = self.app.head.height + 1
                if blocks:
                    attempts = 0
        finally:
            self.syncing = False

    def _accept_catch_up(
        self, height: int, digest: bytes, payload: bytes, certificate: CommitCertificate, now: float
    ) -> list[Action]:
        try:
            return self.replica.on_catch_up_block(height, digest, payload, certificate, now)
        except MessageRejected as exc:
            log.warning("refused catch-up block %d: %s", height, exc)
            return []

    async def _fetch(
        self, peer: PublicKey, first: int, last: int
    ) -> list[tuple[int, bytes, CommitCertificate]]:
        request = encode({"from": first, "to": min(last, first + CATCH_UP_MAX_BLOCKS - 1)})
        response = decode(await self.host.request(peer, request), max_size=CATCH_UP_MAX_BYTES * 2)
        if not isinstance(response, list):
            raise CatchUpFailed("catch-up response is not a list")
        blocks = []
        for item in response:
            if not isinstance(item, list) or len(item) != 3:
                raise CatchUpFailed("catch-up entry is not [height, block, certificate]")
            height, payload, certificate = item
            if not isinstance(height, int) or not isinstance(payload, bytes):
                raise CatchUpFailed("catch-up entry has a bad height or block")
            blocks.append((height, payload, CommitCertificate.from_wire(certificate)))
        return blocks

    def serve_catch_up(self, request: bytes) -> bytes:
        """Answer a peer's catch-up request with stored blocks and their certificates."""
        value = decode(request, max_size=1024)
        if not isinstance(value, dict) or set(value) != {"from", "to"}:
            raise RequestRejected("catch-up request must be {from, to}")
        first, last = value["from"], value["to"]
        if not isinstance(first, int) or not isinstance(last, int) or first < 1 or last < first:
            raise RequestRejected("catch-up request has a bad range")
        out: list[Any] = []
        size = 0
        for height in range(first, min(last, first + CATCH_UP_MAX_BLOCKS - 1) + 1):
            payload = self.app.store.get_block_bytes(height)
            certificate = self.app.store.get_certificate(height)
            if payload is None or certificate is None:
                break
            size += len(payload)
            if out and size > CATCH_UP_MAX_BYTES:
                break
            out.append([height, payload, certificate.to_wire()])
        return encode(out)


def _name(peer: PublicKey) -> str:
    return format_address(address_of(peer))
