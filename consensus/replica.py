"""`Replica`: the public face of the consensus core, a sans-io PBFT state machine.

Inputs (each takes the current local time `now` and returns a list of actions, see
`consensus.actions` for the ordering contract):

* `on_message(message, now)`: a consensus message from a peer (decode bytes with
  `consensus.messages.decode_message`). Invalid input raises a `MessageRejected` subclass naming
  the rule and changes nothing; `error.benign` tells whether the peer deserves a penalty.
* `on_tick(now)`: the timer set by the last `SetTimer` fired (extra ticks are harmless).
* `on_pending_transactions(now)`: the application has something to propose.
* `on_catch_up_block(seq, digest, payload, certificate, now)`: a block fetched for
  `RequestCatchUp`; accepted only if its certificate verifies against the validator set.
* `on_validator_set(committed_height, effective_height, validators, now)`: a change committed
  in block `committed_height`; report it right after executing that `CommitBlock`.

Nothing here reads a clock, draws randomness, or does I/O; the same object runs under the asyncio
driver and in the deterministic simulator.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import assert_never

from consensus import checkpoints, normal, view_change
from consensus.actions import Action, Broadcast
from consensus.app import Application, Proposal
from consensus.config import ReplicaConfig, ValidatorSchedule
from consensus.crypto import ED25519, MessageSigner, SignatureScheme
from consensus.errors import (
    DuplicateMessage,
    InvalidProposal,
    MessageRejected,
    OutOfWindow,
    RestoreError,
    ValidatorScheduleError,
    ViewTooFarAhead,
)
from consensus.messages import (
    Certify,
    Checkpoint,
    CheckpointProof,
    Commit,
    Message,
    NewView,
    Prepare,
    PrePrepare,
    ViewChange,
)
from consensus.proofs import Verifier
from consensus.records import CheckpointRecord, PreparedRecord, Record, SignedRecord
from consensus.state import ReplicaState, Status, Where, signed_key
from ledger.certificates import CommitCertificate
from ledger.keys import Address
from ledger.validators import ValidatorSet

MAX_SETTLE_ROUNDS = 64
"""Bound on the internal fix-point loop after one input (each round makes progress)."""


@dataclass(frozen=True, slots=True)
class ResourceUsage:
    """Sizes of the replica's bounded structures (the simulator checks them)."""

    buffered: int
    """Early messages buffered (<= max_future_total)."""
    buffered_largest_share: int
    """Most early messages of one sender (<= max_future_per_peer)."""
    slots: int
    """Heights in the log (<= watermark_window + 1)."""
    view_changes: int
    """View-change messages held (<= validators x (max_view_ahead + 1))."""
    signed: int
    """Own signed messages kept for re-sending and restart safety."""
    catch_up_blocks: int
    """Fetched blocks waiting for their height (<= max_catch_up_blocks)."""
    answered: int = 0
    """Help already sent, remembered per (peer, height or view) (<= n x (watermark_window + 4))."""
    peer_views: int = 0
    """Validators whose latest view is known (<= validators)."""


class Replica:
    """One validator's PBFT state machine (see the module docstring for its inputs)."""

    __slots__ = ("_state",)

    def __init__(
        self,
        config: ReplicaConfig,
        signer: MessageSigner,
        app: Application,
        validators: ValidatorSchedule | ValidatorSet,
        *,
        scheme: SignatureScheme = ED25519,
        now: float = 0.0,
    ) -> None:
        """A replica starting from genesis (height 0). Use `restore` after a restart."""
        schedule = (
            validators
            if isinstance(validators, ValidatorSchedule)
            else ValidatorSchedule.of(validators)
        )
        genesis = CheckpointProof(0, config.genesis_digest, ())
        self._state = ReplicaState(
            config,
            signer,
            app,
            Verifier(config.chain_id, scheme),
            schedule,
            0,
            config.genesis_digest,
            genesis,
            now,
        )

    @classmethod
    def restore(
        cls,
        config: ReplicaConfig,
        signer: MessageSigner,
        app: Application,
        validators: ValidatorSchedule | ValidatorSet,
        *,
        height: int,
        digest: bytes,
        records: Iterable[Record],
        certificates: Iterable[CommitCertificate] = (),
        scheme: SignatureScheme = ED25519,
        now: float = 0.0,
    ) -> Replica:
        """A replica after a restart: `height`/`digest` is the last block the application stored,
        `records` what earlier `Persist` actions stored, `certificates` the stored certificates
        of blocks above the last stable checkpoint. Raise `RestoreError` if they conflict.
        """
        replica = cls(config, signer, app, validators, scheme=scheme, now=now)
        st = replica._state
        records = list(records)
        stable = st.stable
        for record in records:
            if isinstance(record, CheckpointRecord) and record.proof.seq > stable.seq:
                stable = record.proof
        st.stable = stable
        st.delivered_height, st.delivered_digest = height, digest
        st.executed_height = height
        st.votes.decided_through = max(height, stable.seq)
        st.proposer.next_seq, st.proposer.tip = height + 1, digest
        st.horizon = height + config.min_validator_change_delay
        st.update_high()
        for record in records:
            if isinstance(record, SignedRecord):
                _restore_signed(st, record.message)
            elif isinstance(record, PreparedRecord):
                _restore_prepared(st, record)
        for certificate in certificates:
            if stable.seq < certificate.height <= height:
                st.votes.certificates[certificate.height] = certificate
        for key, message in st.signed.items():
            if isinstance(message, Certify) and message.seq > st.votes.decided_through:
                st.votes.decided[message.seq] = message.digest
            elif isinstance(message, Checkpoint) and key[2] > stable.seq:
                st.votes.checkpoints.setdefault(message.seq, {})[st.me] = message
        while st.votes.decided_through + 1 in st.votes.decided:
            st.votes.decided_through += 1
        _restore_view(st)
        st.view_change.normal_view = max(
            (k[1] for k in st.signed if k[0] in ("pre-prepare", "prepare", "commit", "new-view")),
            default=0,
        )
        st.view_change.highest_signed = max(
            (key[1] for key in st.signed if key[0] == "view-change"), default=0
        )
        if stable.seq > height:
            signers = tuple(Address(v.sender) for v in stable.votes)
            checkpoints.note_behind(st, stable.seq, signers)
        return replica

    # --- inputs --------------------------------------------------------------------------------

    def start(self, now: float) -> list[Action]:
        """First call after construction or restore: sets the timer, re-sends restored state."""
        st = self._begin(now)
        st.dirty = True
        st.progress()  # time spent loading before start must not count as a stalled primary
        if st.signed:
            _resend(st)
        return self._settle()

    def on_message(self, message: Message, now: float) -> list[Action]:
        """Handle a peer's message; raise `MessageRejected` (state unchanged) if it is refused."""
        st = self._begin(now)
        try:
            _dispatch(st, message)
        except ViewTooFarAhead:
            _note_far_view(st, message)
            st.count("rejected:ViewTooFarAhead")
            raise
        except MessageRejected as exc:
            st.count(f"rejected:{type(exc).__name__}")
            raise
        return self._settle()

    def on_tick(self, now: float) -> list[Action]:
        """Timers: view change on stall, re-sending, proposals, catch-up retries."""
        st = self._begin(now)
        st.dirty = True
        deadline = st.view_deadline()
        if deadline is not None and now >= deadline:
            normal.request_view_change(st, st.view + 1)
        _check_request_timer(st)
        view_change.try_return(st)
        if now >= st.resend_at:
            _resend(st)
            st.resend_at = now + st.config.resend_interval
        checkpoints.retry_catch_up(st)
        return self._settle()

    def on_pending_transactions(self, now: float) -> list[Action]:
        """The application has transactions: a primary with room will ask `make_proposal`."""
        st = self._begin(now)
        st.proposer.work_pending = True
        st.dirty = True
        return self._settle()

    def on_catch_up_block(
        self, seq: int, digest: bytes, payload: bytes, certificate: CommitCertificate, now: float
    ) -> list[Action]:
        """A fetched block; raise `MessageRejected` if its certificate or payload is wrong."""
        st = self._begin(now)
        checkpoints.accept_catch_up_block(st, seq, digest, payload, certificate)
        return self._settle()

    def on_validator_set(
        self, committed_height: int, effective_height: int, validators: ValidatorSet, now: float
    ) -> list[Action]:
        """`validators` replace the set from `effective_height` on (committed at that height)."""
        st = self._state
        if committed_height > st.delivered_height:
            raise ValidatorScheduleError(
                f"change committed at {committed_height} reported before that block was delivered"
            )
        if effective_height < committed_height + st.config.min_validator_change_delay:
            raise ValidatorScheduleError(
                f"effective height {effective_height} is less than "
                f"{st.config.min_validator_change_delay} after {committed_height}"
            )
        if effective_height <= st.horizon:
            raise ValidatorScheduleError(
                f"effective height {effective_height} reported after heights up to "
                f"{st.horizon} were processed with the old set"
            )
        st.schedule = st.schedule.with_change(effective_height, validators)
        st.dirty = True
        st.update_high()
        self._begin(now)
        return self._settle()

    # --- inspection ----------------------------------------------------------------------------

    @property
    def address(self) -> Address:
        return self._state.me

    @property
    def view(self) -> int:
        return self._state.view

    @property
    def group_view(self) -> int | None:
        """The highest view at least f+1 validators (this one included) are known to be in,
        from verified messages; None until f+1 validators' views are known."""
        return self._state.group_view()

    @property
    def view_in_sync(self) -> bool:
        """False when this replica is known to be in another view than the group's."""
        group = self._state.group_view()
        return group is None or group == self._state.view

    @property
    def in_view_change(self) -> bool:
        return self._state.status is Status.VIEW_CHANGE

    @property
    def height(self) -> int:
        """Last delivered height."""
        return self._state.delivered_height

    @property
    def decided_height(self) -> int:
        """Every height up to this one is decided here (delivered or awaiting its certificate)."""
        return self._state.votes.decided_through

    @property
    def stable_checkpoint(self) -> int:
        return self._state.low

    @property
    def primary(self) -> Address:
        return self._state.current_primary()

    @property
    def schedule(self) -> ValidatorSchedule:
        return self._state.schedule

    @property
    def stats(self) -> dict[str, int]:
        """Counters of notable events (rejections by type, refused conflicting signatures...)."""
        return dict(self._state.stats)

    def take_marks(self) -> list[tuple[str, int, float]]:
        """The stage instants (stage, seq, now) noted since the last call: a height accepted
        ("pre_prepare"), prepared, decided. The first call starts the recording (the simulator
        never calls it, so it records nothing)."""
        st = self._state
        marks = [] if st.marks is None else st.marks
        st.marks = []
        return marks

    def resource_usage(self) -> ResourceUsage:
        st = self._state
        return ResourceUsage(
            buffered=len(st.buffer),
            buffered_largest_share=st.buffer.largest_share(),
            slots=len(st.votes.log),
            view_changes=sum(len(c) for c in st.view_change.messages.values()),
            signed=len(st.signed),
            catch_up_blocks=len(st.catch_up.blocks),
            answered=len(st.answered),
            peer_views=len(st.view_change.peer_views),
        )

    # --- internals -----------------------------------------------------------------------------

    def _begin(self, now: float) -> ReplicaState:
        st = self._state
        st.now = max(st.now, now)  # the injected clock never goes backwards here
        horizon = st.delivered_height + st.config.min_validator_change_delay
        if horizon != st.horizon:
            st.horizon = horizon
            st.update_high()
        if st.executed_height < st.delivered_height:
            # The driver executed the blocks delivered by earlier inputs (contract rule 3).
            st.executed_height = st.delivered_height
            st.dirty = True
            child = st.votes.log.peek(st.delivered_height + 1)
            if child is not None and child.pending is not None:
                st.retry_child = True
        return st

    def _settle(self) -> list[Action]:
        """Run the consequences of an input to a fix point, then return the actions."""
        st = self._state
        if not (st.dirty or st.buffer_dirty or st.retry_child or st.requested_view > st.view):
            return st.finish()  # the input only stored a vote or a buffered message
        st.dirty = False
        if st.retry_child:
            st.retry_child = False
            child = st.votes.log.peek(st.delivered_height + 1)
            if child is not None:
                normal.retry_pending(st, child)
        for _ in range(MAX_SETTLE_ROUNDS):
            view_change.join_if_overtaken(st)
            if st.requested_view > st.view:
                view_change.start_view_change(st, st.requested_view)
            normal.try_commit(st, st.votes.decided_through + 1)
            normal.try_deliver(st)
            normal.try_propose(st)
            st.dirty = False
            if not st.buffer_dirty:
                break
            st.buffer_dirty = False
            for message in st.buffer.take(lambda m: _ready(st, m)):
                try:
                    _dispatch(st, message)
                except MessageRejected as exc:
                    st.count(f"rejected:{type(exc).__name__}")
        return st.finish()


def _dispatch(st: ReplicaState, message: Message) -> None:
    if message.sender == st.me:
        raise DuplicateMessage("a replica ignores messages signed with its own key")
    match message:
        case Prepare():
            normal.handle_prepare(st, message)
        case Commit():
            normal.handle_commit(st, message)
        case Certify():
            normal.handle_certify(st, message)
        case PrePrepare():
            normal.handle_pre_prepare(st, message)
        case Checkpoint():
            checkpoints.handle_checkpoint(st, message)
        case ViewChange():
            view_change.handle_view_change(st, message)
        case NewView():
            view_change.handle_new_view(st, message)
        case _:
            assert_never(message)


def _check_request_timer(st: ReplicaState) -> None:
    """PBFT's request timer (Castro-Liskov §4.5.2): a backup in normal operation that has held
    an executable transaction for `request_timer` seconds of the current view votes for the
    next view. The clock starts again when a view begins, so one vote per view and age window;
    a transaction the blocks include leaves the application's pool and stops counting."""
    if st.status is not Status.NORMAL or st.current_primary() == st.me:
        return
    if not st.is_member(st.low + 1) or st.now < st.request_check_at:
        return
    st.request_check_at = st.now + st.config.resend_interval  # bounds the application's cost
    if st.catch_up.target > st.delivered_height + st.config.max_in_flight:
        return  # behind: the pool may hold what the group already committed
    since = st.app.oldest_waiting_since()
    if since is None:
        return
    if st.now >= max(since, st.view_change.view_started) + st.config.request_timer:
        st.count("request_timer_expired")
        normal.request_view_change(st, st.view + 1)


def _note_far_view(st: ReplicaState, message: Message) -> None:
    """A message too far ahead in view to handle still shows where its sender is, once its
    signature verifies: a replica restored into a view far below the group's (more than
    `max_view_ahead`) would otherwise never learn the group's view, and f+1 such validators
    make it join them (`join_if_overtaken`, carried out when the next input settles). Checked
    at most once per sender and view increase."""
    if not isinstance(message, PrePrepare | Prepare | Commit | ViewChange | NewView):
        return
    sender, view = message.sender, message.view
    if sender == st.me or view <= st.view_change.peer_views.get(sender, -1):
        return
    validators = st.validators(st.low + 1)
    if sender not in validators:
        return
    try:
        st.verifier.check_message(validators, message)
    except MessageRejected:
        return
    st.saw_view(sender, view)
    view_change.join_if_overtaken(st)


def _ready(st: ReplicaState, message: Message) -> bool:
    """A buffered message is released once it is no longer early (or must be dropped)."""
    if isinstance(message, ViewChange | NewView):
        return True
    view = None if isinstance(message, Certify | Checkpoint) else message.view
    try:
        return st.where(view, message.seq) is not Where.FUTURE
    except (OutOfWindow, ViewTooFarAhead):
        return True


def _resend(st: ReplicaState) -> None:
    """No progress for a while: re-send our own current messages (they may have been lost)."""
    latest_checkpoint: Message | None = None
    current = st.status is Status.NORMAL
    for (kind, view, seq), message in st.signed.items():
        if kind == "checkpoint":
            if latest_checkpoint is None or seq > latest_checkpoint.seq:  # type: ignore[union-attr]
                latest_checkpoint = message
            continue
        if seq <= st.delivered_height:
            continue
        if kind == "certify" or (current and view == st.view and kind != "new-view"):
            st.emit(Broadcast(message))
    if latest_checkpoint is not None:
        st.emit(Broadcast(latest_checkpoint))
    if st.status is Status.VIEW_CHANGE:
        view_change.send_view_change(st)


def _restore_signed(st: ReplicaState, message: Message) -> None:
    messages: list[Message] = [message]
    if isinstance(message, NewView):
        messages.extend(message.pre_prepares)
    for item in messages:
        key = signed_key(item)
        existing = st.signed.get(key)
        if existing is not None and existing != item:
            raise RestoreError(f"records hold two different signed {key[0]} for {key[1:]}")
        st.signed[key] = item


def _restore_prepared(st: ReplicaState, record: PreparedRecord) -> None:
    proof = record.proof
    if proof.seq <= max(st.delivered_height, st.low):
        return
    slot = st.votes.log.slot(proof.seq)
    if slot.prepared is None or proof.view > slot.prepared.view:
        slot.prepared = proof
        slot.prepared_payload = record.payload


def _restore_view(st: ReplicaState) -> None:
    """Resume in the highest view we signed anything for; in view change if only that."""
    view = max((key[1] for key in st.signed), default=0)
    st.view = view
    normal_in_view = any(
        key[1] == view and key[0] in ("pre-prepare", "prepare", "commit", "new-view")
        for key in st.signed
    )
    if ("view-change", view, 0) in st.signed and not normal_in_view:
        st.status = Status.VIEW_CHANGE
        return
    new_view = st.signed.get(("new-view", view, 0))
    if isinstance(new_view, NewView):
        st.view_change.new_view = new_view
    if st.current_primary() != st.me:
        return
    own = sorted(
        (m for k, m in st.signed.items() if k[0] == "pre-prepare" and k[1] == view),
        key=lambda m: m.seq,  # type: ignore[union-attr]
    )
    for proposal in own:
        if not isinstance(proposal, PrePrepare) or proposal.seq <= st.delivered_height:
            continue
        if proposal.seq != st.proposer.next_seq or proposal.parent != st.proposer.tip:
            break
        try:
            st.app.validate_proposal(
                Proposal(proposal.seq, proposal.parent, proposal.digest, proposal.payload), st.now
            )
        except InvalidProposal:
            break
        slot = st.votes.log.slot(proposal.seq)
        slot.pre_prepare = proposal
        slot.payloads[proposal.digest] = proposal.payload
        st.proposer.next_seq, st.proposer.tip = proposal.seq + 1, proposal.digest
