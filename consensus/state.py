"""The replica's state, shared by the handler modules (normal case, view change, checkpoints).

Theory of operation (details in docs/consensus.md):

* Heights are sequence numbers. A block is *decided* at a height once 2f+1 COMMITs of one view
  agree on it (or a commit certificate proves it); it is *delivered* (`CommitBlock`) once a quorum
  of CERTIFY signatures forms its certificate and its payload is known, strictly in order.
* Ordered prefix: a replica sends COMMIT for height n only when n-1 is decided and n's parent is
  the decided block n-1. So decisions form a chain without gaps.
* Everything a replica signs goes through `publish`, which records it in `signed` and emits
  `Persist` before `Broadcast`; `publish` refuses to sign a second, different message for the
  same (kind, view, seq), which is what makes restarts safe.

The state changes only through the handler functions; each checks its input completely before
changing anything, so a rejected message leaves no trace.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import TypeVar

from consensus.actions import Action, Broadcast, Persist, Send, SetTimer
from consensus.app import Application
from consensus.buffer import FutureBuffer
from consensus.config import ReplicaConfig, ValidatorSchedule
from consensus.crypto import MessageSigner
from consensus.errors import OutOfWindow, ViewTooFarAhead
from consensus.log import MessageLog
from consensus.messages import (
    Certify,
    Checkpoint,
    CheckpointProof,
    Message,
    NewView,
    ViewChange,
)
from consensus.proofs import Verifier, primary_of
from consensus.records import SignedRecord
from ledger.certificates import CommitCertificate
from ledger.keys import Address
from ledger.validators import ValidatorSet

M = TypeVar("M", bound=Message)

MIN_TIMER_DELAY = 0.001
"""Seconds: the earliest a timer is set after the current input."""


class Status(enum.Enum):
    NORMAL = "normal"
    VIEW_CHANGE = "view-change"


class Where(enum.Enum):
    """Where a message falls relative to the replica's view and watermarks."""

    STALE = "stale"
    CURRENT = "current"
    FUTURE = "future"


def signed_key(message: Message) -> tuple[str, int, int]:
    """(kind, view, seq): a replica signs at most one message per key."""
    if isinstance(message, Certify | Checkpoint):
        return (message.KIND, 0, message.seq)
    if isinstance(message, ViewChange | NewView):
        return (message.KIND, message.view, 0)
    return (message.KIND, message.view, message.seq)


class Proposer:
    """The primary's proposal pipeline (`normal.try_propose`).

    Invariants: `tip` is the digest of the block at `next_seq - 1` that the next proposal builds
    on; before proposing, `try_propose` lifts `next_seq` above the delivered height and the
    stable checkpoint. The next proposal is due `batch_wait` after `last_proposal` if
    `work_pending`, else `empty_block_interval` after it; earlier, if `work_pending` and the
    application has a full block ready. That needs no timer: a block only becomes full when
    transactions arrive or a decision opens the window, and both are inputs that run
    `try_propose`.
    """

    __slots__ = ("last_proposal", "next_seq", "tip", "work_pending")

    def __init__(self, height: int, digest: bytes, now: float) -> None:
        self.next_seq = height + 1
        """Next height to propose."""
        self.tip = digest
        """Digest of the block at `next_seq - 1`."""
        self.last_proposal = now
        """When the last proposal was made, or the application had none to make."""
        self.work_pending = False
        """The application reported transactions since `last_proposal`."""


class Votes:
    """The normal case's votes and the decisions they made.

    Invariants: every height up to `decided_through` is decided (delivered, in `decided`, or
    at or below the stable checkpoint), so decisions form a chain without gaps; `decided`
    holds heights above the delivered one only. `log` and `checkpoints` hold heights above
    the stable checkpoint only; so does `certificates`, except for heights between the
    delivered one and the checkpoint, kept until delivered (`checkpoints.make_stable`).
    """

    __slots__ = ("certificates", "checkpoints", "decided", "decided_through", "log")

    def __init__(self, height: int) -> None:
        self.log = MessageLog()
        """Per height: pre-prepares, PREPAREs, COMMITs, CERTIFYs, prepared proof, payloads."""
        self.checkpoints: dict[int, dict[bytes, Checkpoint]] = {}
        """CHECKPOINT votes by height and sender."""
        self.decided: dict[int, bytes] = {}
        """Decided digests above the delivered height."""
        self.decided_through = height
        """Every height up to this one is decided."""
        self.certificates: dict[int, CommitCertificate] = {}
        """Certificates known above the stable checkpoint (delivered or not)."""


class ViewChangeState:
    """View changes (Castro-Liskov §4.4) and the views the other validators are known to be in.

    Invariants: `messages` holds verified VIEW-CHANGEs, at most one per sender and view, and
    drops views below the current one when a view change starts or a view is entered;
    `armed_at` is set only in view-change status, once a quorum for the target view is held;
    `peer_views` has one entry per validator seen, none for others, and sheds former
    validators before it outgrows the current set; `parked_new_views` is empty outside a
    view change.
    """

    __slots__ = (
        "armed_at",
        "attempt",
        "highest_signed",
        "messages",
        "new_view",
        "normal_view",
        "parked_new_views",
        "payloads",
        "peer_views",
        "view_started",
    )

    def __init__(self, now: float) -> None:
        self.attempt = 0
        """Consecutive view changes without a delivered block (timeout backoff exponent)."""
        self.armed_at: float | None = None
        """When a quorum of view changes for the target view was first seen."""
        self.view_started = now
        """When the current view (or the view change to it) began: the request timer's floor."""
        self.messages: dict[int, dict[bytes, ViewChange]] = {}
        """Verified VIEW-CHANGEs by view and sender."""
        self.payloads: dict[bytes, bytes] = {}
        """Unverified block attachments of view changes, by digest (current view change)."""
        self.new_view: NewView | None = None
        """The NEW-VIEW that started the current view (none for view 0)."""
        self.parked_new_views: dict[bytes, NewView] = {}
        """Alone in a view change: the latest lower-view NEW-VIEW each validator sent us before
        we could go back (not caught up, or not yet patient), unverified; at most one per
        sender, verified when used (`view_change.try_return`), cleared on entering a view."""
        self.peer_views: dict[bytes, int] = {}
        """Highest view each validator of the current set was seen in, from a verified message."""
        self.highest_signed = 0
        """Highest view this replica signed a VIEW-CHANGE for: it sends no COMMIT in a lower
        view (docs/consensus.md, "Coming back from a lone view change")."""
        self.normal_view = 0
        """The last view this replica worked in (normal status). It may come back to it (see
        `view_change.return_to_group`), so its signed messages of that view are kept until
        their heights are stable: it must never sign a different one for the same slot."""


class CatchUp:
    """Fetching blocks decided elsewhere (`checkpoints.note_behind`, `retry_catch_up`).

    Invariants: the replica is behind while `target` is above its delivered height; then a
    `RequestCatchUp` up to `target` goes out at `retry_at`, which each request moves forward.
    `blocks` holds fetched blocks whose certificate verified, above the delivered height and
    at most `max_catch_up_blocks` beyond it.
    """

    __slots__ = ("blocks", "peer_checkpoints", "peers", "retry_at", "target")

    def __init__(self) -> None:
        self.target = 0
        """Highest height known to be decided elsewhere."""
        self.peers: tuple[Address, ...] = ()
        """Validators that showed they hold the blocks up to `target` (ask any)."""
        self.retry_at = 0.0
        """When the next `RequestCatchUp` goes out, while behind."""
        self.blocks: dict[int, tuple[bytes, bytes, CommitCertificate]] = {}
        """Fetched blocks by height: (digest, payload, certificate) awaiting delivery."""
        self.peer_checkpoints: dict[bytes, Checkpoint] = {}
        """Each validator's highest verified checkpoint beyond our horizon (catch-up hints)."""


class ReplicaState:
    """All mutable state of one replica (see the module docstring for the invariants): its
    position (view, status, delivered height, stable checkpoint, watermarks), its own signed
    messages, the settle-loop flags, and one sub-record per concern: `proposer`, `votes`,
    `view_change`, `catch_up`."""

    __slots__ = (
        "_primary",
        "_timeouts",
        "answered",
        "app",
        "buffer",
        "buffer_dirty",
        "catch_up",
        "config",
        "delivered_digest",
        "delivered_height",
        "dirty",
        "executed_height",
        "help",
        "high",
        "horizon",
        "last_progress",
        "marks",
        "me",
        "now",
        "outbox",
        "proposer",
        "request_check_at",
        "requested_view",
        "resend_at",
        "retry_child",
        "schedule",
        "signed",
        "signer",
        "stable",
        "stats",
        "status",
        "timer",
        "verifier",
        "view",
        "view_change",
        "votes",
    )

    def __init__(
        self,
        config: ReplicaConfig,
        signer: MessageSigner,
        app: Application,
        verifier: Verifier,
        schedule: ValidatorSchedule,
        height: int,
        digest: bytes,
        stable: CheckpointProof,
        now: float,
    ) -> None:
        self.config = config
        self.signer = signer
        self.me: Address = signer.address
        self.app = app
        self.verifier = verifier
        self.schedule = schedule
        self._primary: tuple[int, ValidatorSet | None, Address] = (-1, None, signer.address)
        """Memo of the last primary lookup: (view, validator set, primary)."""
        self._timeouts = tuple(
            config.timeout(attempt) for attempt in range(config.max_timeout_doublings + 1)
        )
        """View timeout by attempt (`view_change.attempt`)."""
        self.now = now
        self.view = 0
        self.status = Status.NORMAL
        self.delivered_height = height
        self.delivered_digest = digest
        self.executed_height = height
        """Delivered before the current input began: the application has executed these."""
        self.horizon = height + config.min_validator_change_delay
        """Highest height whose validator set is surely known (fixed at each input's start)."""
        self.stable = stable
        self.signed: dict[tuple[str, int, int], Message] = {}
        """Everything this replica signed and may still need, by `signed_key`."""
        self.buffer = FutureBuffer(config.max_future_per_peer, config.max_future_total)
        self.proposer = Proposer(height, digest, now)
        self.votes = Votes(height)
        self.view_change = ViewChangeState(now)
        self.catch_up = CatchUp()
        self.last_progress = now
        self.resend_at = now + config.resend_interval
        self.request_check_at = now
        """The request timer asks the application at most once per `resend_interval`."""
        self.timer: float | None = None
        self.outbox: list[Action] = []
        self.help: list[Action] = []
        """Replies to peers that are behind, sent with the next action list."""
        self.answered: set[tuple[bytes, int]] = set()
        self.stats: dict[str, int] = {}
        self.marks: list[tuple[str, int, float]] | None = None
        """Stage instants (stage, seq, now) for the driver's metrics; None until it asks."""
        self.requested_view = 0
        """A view change asked for by a handler, carried out when the input settles."""
        self.dirty = True
        """Something happened that may let the replica commit, deliver or propose."""
        self.buffer_dirty = False
        """Buffered messages may have become processable (view, watermark or horizon moved)."""
        self.retry_child = False
        """A pending pre-prepare waits on a block the application has now executed."""
        self.high = 0
        """Highest height processed now: watermark window, known sets, epoch fence."""
        self.update_high()

    # --- validator sets ----------------------------------------------------------------------

    def validators(self, seq: int) -> ValidatorSet:
        return self.schedule.at(seq)

    def primary(self, view: int, seq: int) -> Address:
        validators = self.schedule.at(seq)
        cached = self._primary
        if cached[0] == view and cached[1] is validators:
            return cached[2]
        address = primary_of(validators, view)
        self._primary = (view, validators, address)
        return address

    def current_primary(self) -> Address:
        return self.primary(self.view, self.stable.seq + 1)

    def is_member(self, seq: int) -> bool:
        return self.me in self.schedule.at(seq)

    # --- watermarks ----------------------------------------------------------------------------

    @property
    def low(self) -> int:
        return self.stable.seq

    def update_high(self) -> None:
        """Recompute `high` after the stable checkpoint, horizon or schedule changed."""
        high = min(self.low + self.config.watermark_window, self.horizon)
        fence = self.schedule.next_change_after(self.low + 1)
        if fence is not None:
            high = min(high, fence - 1)
        self.high = high
        self.buffer_dirty = True

    def where(self, view: int | None, seq: int) -> Where:
        """Classify a message; raise `ViewTooFarAhead` / `OutOfWindow` for ones to drop."""
        if seq <= self.delivered_height or seq <= self.low:
            return Where.STALE
        if view is not None:
            if view < self.view:
                return Where.STALE
            if view > self.view + self.config.max_view_ahead:
                raise ViewTooFarAhead(
                    f"view {view} is more than {self.config.max_view_ahead} ahead of {self.view}"
                )
        high = self.high
        if seq > high:
            if seq <= min(high + self.config.watermark_window, self.horizon):
                return Where.FUTURE
            raise OutOfWindow(f"seq {seq} is beyond the high watermark {high}")
        if view is not None and (view > self.view or self.status is Status.VIEW_CHANGE):
            return Where.FUTURE
        return Where.CURRENT

    # --- output --------------------------------------------------------------------------------

    def emit(self, action: Action) -> None:
        self.outbox.append(action)

    def count(self, name: str) -> None:
        self.stats[name] = self.stats.get(name, 0) + 1

    def mark(self, stage: str, seq: int) -> None:
        """Note that height `seq` reached `stage` at the input's `now` (a pure observation:
        nothing in the replica reads it back; recorded only once a driver takes marks)."""
        if self.marks is not None:
            self.marks.append((stage, seq, self.now))

    def publish(self, make: Callable[[bytes], M], to: Address | None = None) -> M | None:
        """Sign, persist, then send a message; None if it would conflict with one signed before.

        `make(signature)` builds the message. A message identical to one already signed is sent
        again without a new record.
        """
        draft = make(b"")
        key = signed_key(draft)
        existing = self.signed.get(key)
        if existing is not None:
            if _same_content(existing, draft):
                self._send(existing, to)
                return existing  # type: ignore[return-value]  # same key and content => same type
            self.count("refused_conflicting_signature")
            return None
        message = make(self.signer.sign(draft.signing_bytes(self.config.chain_id)))
        self.signed[key] = message
        self.emit(Persist(SignedRecord(message)))
        self._send(message, to)
        return message

    def _send(self, message: Message, to: Address | None) -> None:
        self.emit(Broadcast(message) if to is None else Send(to, message))

    def help_laggard(self, message: Message, seq: int, *, verified: bool = False) -> None:
        """A peer sent a message for a height we are past: send it what lets it catch up.

        Our CERTIFY for a delivered height (with 2f others it forms the certificate), or our
        stable CHECKPOINT (f+1 of them make it fetch blocks, 2f+1 give it a stable checkpoint).
        Once per (peer, height); sent with the next action list, since the stale message itself
        is rejected. Only a validator is helped, and only after its signature verified
        (`InvalidSignature` / `NotAValidator` otherwise), so forged senders leave no trace.
        """
        sender = message.sender
        if sender == self.me:
            return
        if seq <= self.low:
            key, marker = ("checkpoint", 0, self.low), -1 - self.low
        else:
            key, marker = ("certify", 0, seq), seq
        if (sender, marker) in self.answered:
            return
        reply = self.signed.get(key)
        if reply is None:
            return
        if not verified:  # the caller checked `message` already: one signature check, not L
            self.verify_sender(message, seq)
        self.answer(sender, marker, reply)

    def help_lower_view(self, message: Message, view: int, seq: int) -> None:
        """`message` shows a validator in `view`, below ours: note where it is, and send it our
        NEW-VIEW (or our VIEW-CHANGE while changing view) once per sender and view of ours, so a
        replica that restarted into an old view learns the view the others are in."""
        sender = message.sender
        if sender == self.me:
            return
        marker = -(2**62) - self.view
        reply = (
            self.view_change.new_view
            if self.status is Status.NORMAL
            else self.signed.get(("view-change", self.view, 0))
        )
        answer = reply is not None and (sender, marker) not in self.answered
        if view <= self.view_change.peer_views.get(sender, -1) and not answer:
            return
        self.verify_sender(message, seq)
        self.saw_view(sender, view)
        if answer and reply is not None:
            self.answer(sender, marker, reply)

    def verify_sender(self, message: Message, seq: int) -> None:
        """Raise `NotAValidator` / `InvalidSignature` unless a validator of `seq` signed it."""
        self.verifier.check_message(self.validators(seq), message)

    def answer(self, sender: bytes, marker: int, reply: Message) -> None:
        """Send `reply` to `sender` once per `marker`; the memo of answers stays bounded."""
        cap = self.validators(self.low + 1).size * (self.config.watermark_window + 4)
        if len(self.answered) >= cap:
            self.answered.clear()  # worst case: a peer is helped twice
        self.answered.add((sender, marker))
        self.help.append(Send(Address(sender), reply))

    def saw_view(self, sender: bytes, view: int) -> None:
        """A verified message shows validator `sender` in `view` (or moving to it)."""
        if view <= self.view_change.peer_views.get(sender, -1):
            return
        validators = self.validators(self.low + 1)
        if sender not in validators:
            return
        if len(self.view_change.peer_views) >= validators.size:
            for old in [s for s in self.view_change.peer_views if s not in validators]:
                del self.view_change.peer_views[old]
        self.view_change.peer_views[sender] = view

    def group_view(self) -> int | None:
        """The highest view at least f+1 validators (this one included) are known to be in.

        Views only increase for an honest replica, so each peer's latest view is a lower bound
        of where it is now. None while fewer than f+1 validators' views are known.
        """
        validators = self.validators(self.low + 1)
        views = [
            v for s, v in self.view_change.peer_views.items() if s != self.me and s in validators
        ]
        if self.me in validators:
            views.append(self.view)
        needed = validators.max_faulty + 1
        if len(views) < needed:
            return None
        return sorted(views, reverse=True)[needed - 1]

    # --- time ----------------------------------------------------------------------------------

    def progress(self) -> None:
        """A block was delivered or a view entered: reset the stall and re-send timers."""
        self.last_progress = self.now
        self.resend_at = self.now + self.config.resend_interval

    def view_deadline(self) -> float | None:
        timeouts = self._timeouts
        timeout = timeouts[min(self.view_change.attempt, len(timeouts) - 1)]
        if self.status is Status.NORMAL:
            return self.last_progress + timeout
        if self.view_change.armed_at is None:
            return None
        return self.view_change.armed_at + timeout

    def proposal_deadline(self) -> float | None:
        proposer = self.proposer
        if (
            self.status is not Status.NORMAL
            or self.primary(self.view, proposer.next_seq) != self.me
        ):
            return None
        if proposer.next_seq > min(
            self.high, self.votes.decided_through + self.config.max_in_flight
        ):
            return None  # window full: deciding a block re-runs the proposal step
        if proposer.work_pending:
            return proposer.last_proposal + self.config.batch_wait
        return proposer.last_proposal + self.config.empty_block_interval

    def next_deadline(self) -> float:
        deadlines = [self.resend_at]
        for deadline in (self.view_deadline(), self.proposal_deadline()):
            if deadline is not None:
                deadlines.append(deadline)
        if self.catch_up.target > self.delivered_height:
            deadlines.append(self.catch_up.retry_at)
        if self.executed_height < self.delivered_height:
            deadlines.append(self.now)  # build on the new blocks as soon as they are executed
        return min(deadlines)

    def finish(self) -> list[Action]:
        """Close an input: add a timer if the earliest deadline changed, return the actions.

        Every deadline that fires is moved forward by its handler; the floor below only guards
        against a handler that could not act (the timer must never stay in the past).
        """
        deadline = max(self.next_deadline(), self.now + MIN_TIMER_DELAY)
        if deadline != self.timer:
            self.timer = deadline
            self.outbox.append(SetTimer(deadline))
        actions, self.outbox = self.outbox, []
        if self.help:
            actions.extend(self.help)
            self.help = []
        return actions


def _same_content(existing: Message, draft: Message) -> bool:
    if type(existing) is not type(draft):
        return False
    if isinstance(existing, ViewChange | NewView):
        return False  # a view change is never re-signed with new content
    return getattr(existing, "digest", None) == getattr(draft, "digest", None)
