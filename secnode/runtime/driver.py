"""The asyncio shell around the sans-io PBFT replica.

Every input to the replica goes through `ConsensusDriver.feed`, which runs the replica
synchronously on the event loop and carries out the returned actions in order, honouring the
contract of `consensus.actions`: consecutive `Persist`s are written as one synced LevelDB batch
before any later action; a `CommitBlock` is stored (and a validator change reported) before the
next input; `SetTimer` replaces the one timer handle. Catch-up fetches run as tasks owned by the
node's TaskGroup and feed their blocks back through `feed`.

Failure rules (docs/consensus.md, "What the driver does with a failing step"): nothing a peer
sends can end the node. A refused message or catch-up answer is charged to its sender
(`host.penalize`) and dropped; a catch-up peer that answers badly is dropped for the round and
the next peer is asked. A consensus step that raises anything else is a bug: it is logged with
its traceback and the input that caused it, its input is dropped (like a lost message, which
PBFT tolerates), a retry tick keeps the replica's timers alive, and the node goes on. Failing to
carry out actions the replica already counts as done (a store write, a certified block that
does not execute) is fail-stop: the driver stops and `on_fatal` stops the node, which restarts
from its durable store. `except Exception` appears only at these task and callback tops, and
never catches `CancelledError`.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol, assert_never

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
from consensus.errors import MessageRejected, RestoreError, ValidatorScheduleError
from consensus.messages import decode_message, encode_message
from consensus.records import decode_record, encode_record, record_is_obsolete
from consensus.replica import Replica
from contracts import TX_TYPES
from ledger.blocks import Block, decode_block
from ledger.certificates import CommitCertificate
from ledger.encoding import decode, encode
from ledger.errors import LedgerError
from ledger.keys import PublicKey, address_of, format_address
from ledger.validator_state import pending_validator_changes
from ledger.validators import ValidatorSet
from p2p import InvalidPayload, P2PError, RequestRejected
from secnode.runtime.app import Committed, LedgerApp
from secnode.runtime.metrics import Metrics

log = logging.getLogger("secnode.driver")

CATCH_UP_MAX_BLOCKS = 32
CATCH_UP_MAX_BYTES = 3 * 1024 * 1024
STEP_RETRY_S = 1.0
"""After a failed step, the replica is ticked again this soon (its own timer may be lost)."""

Step = Callable[[float], list[Action]]


class CatchUpFailed(Exception):
    """A peer's catch-up answer was malformed or refused (the peer is charged and skipped)."""


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
        on_fatal: Callable[[str], None] | None = None,
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
        self.on_fatal = on_fatal
        self.step_failures = 0
        """Consensus steps that raised (bugs); each is logged with its traceback."""
        self.failure: str | None = None
        """Why the driver stopped the node (fail-stop), if it did."""
        self._timer: asyncio.TimerHandle | None = None
        self._retry: asyncio.TimerHandle | None = None
        self._feeding = False
        self._queue: list[tuple[Step, PublicKey | None]] = []
        self._known_changes = {h for h, _ in pending_validator_changes(app.state)}
        self._pending_scheduled = False
        self._stopped = False
        """Called (once) when the node must stop rather than diverge from the ledger."""

    # --- inputs ------------------------------------------------------------------------------

    def feed(self, step: Step, origin: PublicKey | None = None) -> None:
        """Run one replica input now (or right after the input being processed).

        Never raises (see the module docstring): this is what timers, `call_soon` callbacks,
        p2p handlers and catch-up tasks call. `origin` names the peer whose data the step
        carries, for the log."""
        if self._stopped:
            return
        self._queue.append((step, origin))
        if self._feeding:
            return
        self._feeding = True
        try:
            while self._queue and not self._stopped:
                current, source = self._queue.pop(0)
                self._run(current, source)
        finally:
            self._feeding = False

    def _run(self, step: Step, origin: PublicKey | None) -> None:
        try:
            actions = step(self.clock())
        except Exception:  # top of a consensus step: a bug (peer faults are MessageRejected)
            self.step_failures += 1
            log.exception(
                "consensus step %s failed (input from %s); input dropped, node goes on",
                _describe(step),
                "this node" if origin is None else _name(origin),
            )
            self._schedule_retry()
            return
        self.metrics.observe_marks(self.replica.take_marks())
        try:
            self._carry_out(actions)
        except Exception as exc:  # the store may now lag the replica's view of it: fail-stop
            log.critical("carrying out consensus actions failed", exc_info=True)
            self._fail(f"carrying out consensus actions failed: {type(exc).__name__}: {exc}")

    def _schedule_retry(self) -> None:
        """Tick the replica soon: the failed step may have lost its SetTimer (extra ticks are
        harmless, a missing one would stall this node for good)."""
        if self._retry is not None and not self._retry.cancelled():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a synchronous caller): nothing to schedule on
            return

        def retry() -> None:
            self._retry = None
            self.feed(self.replica.on_tick)

        self._retry = loop.call_later(STEP_RETRY_S, retry)

    def _fail(self, reason: str) -> None:
        """Fail-stop: stop feeding the replica and ask the node to stop."""
        if self._stopped:
            return
        self.failure = reason
        log.critical("stopping the node: %s", reason)
        self.stop()
        self._queue.clear()
        if self.on_fatal is not None:
            self.on_fatal(reason)

    def start(self) -> None:
        self.feed(self.replica.start)

    def stop(self) -> None:
        self._stopped = True
        for handle in (self._timer, self._retry):
            if handle is not None:
                handle.cancel()

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

        self.feed(step, peer)

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
        persist: list[Persist] = []
        for action in actions:
            if isinstance(action, Persist):
                persist.append(action)
                continue
            if persist:
                self._persist(persist)
                persist = []
            self._carry_out_one(action)
        if persist:
            self._persist(persist)

    def _persist(self, actions: list[Persist]) -> None:
        """Write `actions`' records as one synced batch (consecutive `Persist`s go together)."""
        rows: list[tuple[bytes, bytes | None]] = []
        for action in actions:
            encoded = encode_record(action.record)
            rows.append((record_key(encoded), encoded))
        self.app.store.put_records(rows)

    def _carry_out_one(self, action: Action) -> None:
        """One action; every kind of `Action` has its case (mypy fails on a new, unhandled one)."""
        match action:
            case Send() | Broadcast():
                try:
                    self._send(action)
                except P2PError as exc:  # a message not sent is a message lost: PBFT resends
                    log.warning("could not send %s: %s", type(action.message).__name__, exc)
            case SetTimer():
                self._set_timer(action.deadline)
            case CommitBlock():
                self._commit(action)
            case DiscardRecords():
                self._discard(action)
            case RequestCatchUp():
                if not self.syncing:
                    self.syncing = True
                    self.tasks.create_task(self._catch_up(action))
            case FaultDetected():
                log.warning("fault by %s: %s", format_address(action.validator), action.reason)
            case EnteredView():
                if action.view > 0:
                    self.view_changes += 1
                    self.metrics.record_view_change()
                self.app.view = action.view
                self.metrics.set_view(action.view)
                log.info(
                    "entered view %d (primary %s)", action.view, format_address(action.primary)
                )
            case Persist():  # `_carry_out` batches these; one alone is its own batch
                self._persist([action])
            case _:
                assert_never(action)

    def _send(self, action: Send | Broadcast) -> None:
        if isinstance(action, Broadcast):
            self.host.broadcast_consensus(encode_message(action.message))
            return
        public_key = self._public_key(action.to)
        if public_key is not None and self.host.is_connected(public_key):
            self.host.send_consensus(public_key, encode_message(action.message))

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
        self.metrics.observe_marks((("delivered", action.seq, self.clock()),))
        committed = self.app.commit(action.seq, action.digest, action.payload, action.certificate)
        now = self.clock()
        try:
            self.on_commit(committed, now)
        except Exception:  # top of the node's commit callback: the block is stored regardless
            log.exception("commit callback failed for block %d", action.seq)
        latency = now - committed.block.header.timestamp_ms / 1000
        self.metrics.observe_commit(max(latency, 0.0), len(committed.block.transactions))
        self.metrics.set_height(action.seq)
        for effective, validators in pending_validator_changes(self.app.state):
            if effective not in self._known_changes:
                self._known_changes.add(effective)
                change = functools.partial(self._report_change, action.seq, effective, validators)
                self._queue.append((change, None))

    def _report_change(
        self, committed: int, effective: int, validators: ValidatorSet, now: float
    ) -> list[Action]:
        log.info("validator set changes at height %d (%d validators)", effective, validators.size)
        try:
            return self.replica.on_validator_set(committed, effective, validators, now)
        except ValidatorScheduleError as exc:
            # The ledger switches sets at `effective`; a replica on the old set would diverge.
            self._fail(
                f"cannot apply the validator change committed at height {committed} "
                f"(effective at {effective}): {exc}"
            )
            return []

    def _discard(self, action: DiscardRecords) -> None:
        obsolete: list[tuple[bytes, bytes | None]] = []
        for key, value in self.app.store.records():
            try:
                record = decode_record(value)
            except RestoreError:  # an unreadable record is garbage by definition
                obsolete.append((key, None))
                continue
            if record_is_obsolete(record, action.through_seq, action.before_view):
                obsolete.append((key, None))
        if obsolete:
            self.app.store.put_records(obsolete)

    # --- catch-up ----------------------------------------------------------------------------

    async def _catch_up(self, request: RequestCatchUp) -> None:
        """Fetch the missing blocks from the named peers in turn; the replica checks each
        certificate, so no single peer is trusted. A peer whose answer is malformed or refused
        is charged and dropped for this round; the next one is asked."""
        try:
            await self._catch_up_round(request)
        except Exception:  # top of the catch-up task: nothing may end the node's task group
            log.exception("catch-up to height %d failed", request.to_height)
        finally:
            self.syncing = False

    async def _catch_up_round(self, request: RequestCatchUp) -> None:
        others = [a for a in request.peers if a != self.app.proposer]  # never ask ourselves
        peers = [k for a in others if (k := self._public_key(a)) is not None]
        next_height = max(request.from_height, self.app.head.height + 1)
        attempts = 0
        while next_height <= request.to_height and peers and attempts < 3 * len(peers):
            peer = peers[attempts % len(peers)]
            attempts += 1
            try:
                await self._catch_up_from(peer, next_height, request.to_height)
            except P2PError as exc:  # unreachable or slow: not the peer's fault, try the next
                log.info("catch-up from %s failed: %s", _name(peer), exc)
                continue
            except CatchUpFailed as exc:
                log.warning("catch-up from %s refused: %s", _name(peer), exc)
                self.host.penalize(peer, f"catch-up: {exc}")
                peers.remove(peer)
                attempts = 0
                continue
            except Exception:  # top of handling one peer's answer: drop it, ask the next
                log.exception("catch-up answer from %s could not be handled", _name(peer))
                peers.remove(peer)
                attempts = 0
                continue
            if self._stopped:
                return
            if self.app.head.height + 1 > next_height:
                attempts = 0
            next_height = self.app.head.height + 1

    async def _catch_up_from(self, peer: PublicKey, first: int, last: int) -> None:
        """Fetch one batch from `peer` and feed it; raise CatchUpFailed if the peer is at fault."""
        for height, block, payload, certificate in await self._fetch(peer, first, last):
            refused: list[MessageRejected] = []
            self.feed(
                functools.partial(
                    self._accept_catch_up, height, block.hash(), payload, certificate, refused
                ),
                peer,
            )
            if not refused:
                continue
            if not refused[0].benign:
                raise CatchUpFailed(f"block {height}: {refused[0]}")
            if height > self.app.head.height:  # early (out of window) rather than late
                return

    def _accept_catch_up(
        self,
        height: int,
        digest: bytes,
        payload: bytes,
        certificate: CommitCertificate,
        refused: list[MessageRejected],
        now: float,
    ) -> list[Action]:
        try:
            return self.replica.on_catch_up_block(height, digest, payload, certificate, now)
        except MessageRejected as exc:
            refused.append(exc)
            return []

    async def _fetch(
        self, peer: PublicKey, first: int, last: int
    ) -> list[tuple[int, Block, bytes, CommitCertificate]]:
        """Ask `peer` for blocks `first..` and parse the whole answer before using any of it:
        consecutive heights from `first` within the request, each block decodable."""
        last = min(last, first + CATCH_UP_MAX_BLOCKS - 1)
        answer = await self.host.request(peer, encode({"from": first, "to": last}))
        try:
            response = decode(answer, max_size=CATCH_UP_MAX_BYTES * 2)
        except LedgerError as exc:
            raise CatchUpFailed(f"catch-up answer does not decode: {exc}") from None
        if not isinstance(response, list):
            raise CatchUpFailed("catch-up answer is not a list")
        if len(response) > last - first + 1:
            raise CatchUpFailed(f"{len(response)} blocks answered for {last - first + 1} asked")
        blocks = []
        for expected, item in enumerate(response, start=first):
            if not isinstance(item, list) or len(item) != 3:
                raise CatchUpFailed("catch-up entry is not [height, block, certificate]")
            height, payload, wire_certificate = item
            if not isinstance(payload, bytes) or height != expected or isinstance(height, bool):
                raise CatchUpFailed(f"catch-up entry {height!r} is not a block at {expected}")
            try:
                block = decode_block(payload, TX_TYPES)
                certificate = CommitCertificate.from_wire(wire_certificate)
            except LedgerError as exc:
                raise CatchUpFailed(f"catch-up block {height}: {exc}") from None
            blocks.append((height, block, payload, certificate))
        return blocks

    def serve_catch_up(self, request: bytes) -> bytes:
        """Answer a peer's catch-up request with stored blocks and their certificates.

        A request that is not canonical bytes of {from, to} raises `InvalidPayload` (the p2p
        layer charges the peer); a well-formed but unusable range raises `RequestRejected`."""
        try:
            value = decode(request, max_size=1024)
        except LedgerError as exc:
            raise InvalidPayload(f"catch-up request does not decode: {exc}") from None
        if not isinstance(value, dict) or set(value) != {"from", "to"}:
            raise InvalidPayload("catch-up request must be {from, to}")
        first, last = value["from"], value["to"]
        if (
            not isinstance(first, int)
            or not isinstance(last, int)
            or isinstance(first, bool)
            or isinstance(last, bool)
            or first < 1
            or last < first
        ):
            raise RequestRejected(f"catch-up request has a bad range {first!r}..{last!r}")
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


def _describe(step: Step) -> str:
    """A step's name for the log (`on_tick`, `_accept_catch_up`, ...)."""
    target = step.func if isinstance(step, functools.partial) else step
    return getattr(target, "__name__", repr(target))
