"""View change (Castro-Liskov §4.4) with the ordered-prefix rule for chained blocks.

A replica whose timer expires (no block delivered for `timeout(attempt)`), or that sees proof of
an equivocating primary, or f+1 view changes for higher views, moves to view v+1: it stops
accepting normal-case messages and broadcasts VIEW-CHANGE(v+1, stable checkpoint proof,
commit certificates above it, its latest prepared proof per undecided height). The timer that
moves it further (to v+2, with doubled timeout) starts only once it holds 2f+1 view changes for
v+1, so a partitioned replica does not run ahead. The primary of v+1 collects 2f+1 and
broadcasts NEW-VIEW with them and its re-proposals; every replica recomputes the plan from the
view changes and enters v+1 only if the re-proposals match exactly. Views only increase.

The plan (`plan_new_view`): start at the highest stable checkpoint s among the view changes;
for s+1, s+2, ... take the block a commit certificate names, else the prepared proof of the
highest view; stop at the first height with neither, or whose proof does not chain onto the
block chosen below it. Everything after the stop is dropped (no null requests: blocks are
chained, a gap cannot be filled).

Why this is safe. Suppose block d is decided at height n, i.e. 2f+1 replicas sent COMMIT for
(v, n, d) in some view v. At least f+1 of them are honest. An honest replica sends that COMMIT
only after n-1 was decided with d's parent, and before it had sent COMMIT for n-1 it was
prepared at n-1, and so on down: each of the f+1 holds, for every height above its stable
checkpoint up to n, a certificate or a prepared proof (persisted before the COMMIT, so a restart
does not lose it). Any 2f+1 view changes include one of them, so in every later view the plan
has no gap up to n (it starts at the highest checkpoint, whose 2f+1 signatures imply f+1 honest
replicas delivered it). At height n the plan takes d: a certificate names d (certificates are
unique, see `consensus.normal`), or by the PBFT lemma every prepared proof of a view >= v is
for d and the intersecting honest replica reports one. Chained consistency holds below n since
all those heights are decided too, so the chain check never stops the plan before n. Hence
decided blocks survive every view change, and only undecided heights are ever dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from consensus.actions import Broadcast, EnteredView
from consensus.app import Proposal
from consensus.checkpoints import is_checkpoint_height, make_stable, note_behind
from consensus.errors import (
    DuplicateMessage,
    Equivocation,
    InvalidNewView,
    InvalidProof,
    InvalidProposal,
    MalformedMessage,
    MessageRejected,
    MessageTooLarge,
    OutOfWindow,
    StaleMessage,
    ViewTooFarAhead,
    WrongPrimary,
)
from consensus.messages import (
    CheckpointProof,
    NewView,
    PreparedProof,
    PrePrepare,
    ViewChange,
    pre_prepare_signing_bytes,
)
from consensus.normal import decide, find_payload, offer_pre_prepare, request_view_change
from consensus.proofs import primary_of, short
from consensus.state import ReplicaState, Status
from ledger.certificates import CommitCertificate
from ledger.keys import Address

# --- the plan (pure) ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlanEntry:
    """One height of a new view's prefix: decided (certificate) or re-proposed (proof)."""

    seq: int
    """Height."""
    digest: bytes
    """Block at that height."""
    certificate: CommitCertificate | None
    """Set if the block is decided."""
    proof: PreparedProof | None
    """Set if the block is re-proposed in the new view."""


@dataclass(frozen=True, slots=True)
class NewViewPlan:
    """What a NEW-VIEW must contain, computed from its view changes."""

    checkpoint: CheckpointProof
    """The highest stable checkpoint among the view changes: the new view starts above it."""
    entries: tuple[PlanEntry, ...]
    """The contiguous, chained prefix above the checkpoint."""

    @property
    def reproposals(self) -> tuple[PlanEntry, ...]:
        return tuple(e for e in self.entries if e.proof is not None)

    @property
    def end(self) -> tuple[int, bytes]:
        """(height, digest) of the last block of the prefix."""
        if self.entries:
            return self.entries[-1].seq, self.entries[-1].digest
        return self.checkpoint.seq, self.checkpoint.digest


def plan_new_view(
    view_changes: Sequence[ViewChange],
    window: int,
    next_change_after: Callable[[int], int | None],
) -> NewViewPlan:
    """The deterministic new-view plan for `view_changes` (see the module docstring)."""
    checkpoint = view_changes[0].checkpoint
    for change in view_changes[1:]:
        if change.checkpoint.seq > checkpoint.seq:
            checkpoint = change.checkpoint
    start = checkpoint.seq
    limit = start + window
    fence = next_change_after(start + 1)
    if fence is not None:
        limit = min(limit, fence - 1)
    certificates: dict[int, CommitCertificate] = {}
    proofs: dict[int, PreparedProof] = {}
    for change in view_changes:
        for certificate in change.certificates:
            if certificate.height > start:
                certificates.setdefault(certificate.height, certificate)
        for proof in change.prepared:
            best = proofs.get(proof.seq)
            if proof.seq > start and (best is None or proof.view > best.view):
                proofs[proof.seq] = proof
    entries: list[PlanEntry] = []
    previous = checkpoint.digest
    for seq in range(start + 1, limit + 1):
        decided = certificates.get(seq)
        prepared = proofs.get(seq)
        if decided is not None:
            entries.append(PlanEntry(seq, decided.block_hash, decided, None))
        elif prepared is not None and prepared.parent == previous:
            entries.append(PlanEntry(seq, prepared.digest, None, prepared))
        else:
            break
        previous = entries[-1].digest
    return NewViewPlan(checkpoint, tuple(entries))


# --- starting a view change -----------------------------------------------------------------------


def start_view_change(st: ReplicaState, view: int) -> None:
    """Move to `view` (> current) in view-change status and broadcast VIEW-CHANGE."""
    if view <= st.view:
        return
    st.view = view
    st.dirty = True
    st.status = Status.VIEW_CHANGE
    st.view_change.attempt += 1
    st.view_change.armed_at = None
    st.view_change.view_started = st.now
    st.view_change.new_view = None
    st.votes.log.reset_view()
    for old in [v for v in st.view_change.messages if v < view]:
        del st.view_change.messages[old]
    st.view_change.payloads = {}
    for change in st.view_change.messages.get(view, {}).values():
        _index_payloads(st, change)
    send_view_change(st)
    st.buffer_dirty = True
    check_quorum(st)


def _index_payloads(st: ReplicaState, change: ViewChange) -> None:
    for proof, payload in zip(change.prepared, change.payloads, strict=False):
        st.view_change.payloads.setdefault(proof.digest, payload)


def send_view_change(st: ReplicaState) -> None:
    existing = st.signed.get(("view-change", st.view, 0))
    if isinstance(existing, ViewChange):
        st.emit(Broadcast(existing))
        st.view_change.messages.setdefault(st.view, {})[st.me] = existing
        st.view_change.highest_signed = max(st.view_change.highest_signed, st.view)
        return
    if not st.is_member(st.low + 1):
        return
    # Certificates beyond the window of our checkpoint (blocks fetched by catch-up) would only
    # make peers drop the message: the plan never looks past that window.
    limit = window_limit(st, st.low)
    certificates = tuple(
        st.votes.certificates[h] for h in sorted(st.votes.certificates) if st.low < h <= limit
    )
    certified = {c.height for c in certificates}
    proofs: list[PreparedProof] = []
    payloads: list[bytes] = []
    for height in st.votes.log.heights():
        slot = st.votes.log.peek(height)
        if slot is None or slot.prepared is None or height <= st.low or height in certified:
            continue
        if height > limit:
            break
        proofs.append(slot.prepared)
        payloads.append(slot.prepared_payload)
    view, stable = st.view, st.stable
    change = st.publish(
        lambda s: ViewChange(view, stable, tuple(proofs), certificates, tuple(payloads), st.me, s)
    )
    if change is not None:
        st.view_change.messages.setdefault(view, {})[st.me] = change
        st.view_change.highest_signed = max(st.view_change.highest_signed, view)


def window_limit(st: ReplicaState, checkpoint: int) -> int:
    """Highest height a view change from stable checkpoint `checkpoint` may speak for."""
    limit = checkpoint + st.config.watermark_window
    fence = st.schedule.next_change_after(checkpoint + 1)
    return limit if fence is None else min(limit, fence - 1)


# --- receiving view changes ---------------------------------------------------------------------


def handle_view_change(st: ReplicaState, m: ViewChange) -> None:
    if m.view < st.view or (m.view == st.view and st.status is Status.NORMAL):
        _help_with_view(st, m)
        raise StaleMessage(f"view change to {m.view} from {short(m.sender)}; we are in {st.view}")
    if m.view > st.view + st.config.max_view_ahead:
        raise ViewTooFarAhead(f"view change to {m.view}; current view is {st.view}")
    existing = st.view_change.messages.get(m.view, {}).get(m.sender)
    if existing is not None:
        if existing.without_payloads() == m.without_payloads():
            _show_our_view(st, m.sender)
            raise DuplicateMessage(f"view change to {m.view} from {short(m.sender)} seen before")
        verify_view_change(st, m)  # a forgery must not blame the claimed sender
        raise Equivocation(f"{short(m.sender)} sent two different view changes for {m.view}")
    try:
        verify_view_change(st, m)
    except OutOfWindow:
        _note_view_of_peer_ahead(st, m)
        raise
    _note_certified(st, m)
    # Attachments are kept only for the views this replica may soon need (memory bound).
    stored = m if m.view <= st.view + 1 else m.without_payloads()
    st.view_change.messages.setdefault(m.view, {})[m.sender] = stored
    st.saw_view(m.sender, m.view)
    _show_our_view(st, m.sender)
    _help_behind(st, m)
    if m.view == st.view:
        _index_payloads(st, stored)
    join_if_overtaken(st)
    if m.view == st.view and st.status is Status.VIEW_CHANGE:
        check_quorum(st)


def verify_view_change(st: ReplicaState, m: ViewChange) -> None:
    """Raise unless `m` is signed by a validator and every proof in it verifies."""
    checkpoint = m.checkpoint
    if checkpoint.seq > st.horizon:
        raise OutOfWindow(f"view change from checkpoint {checkpoint.seq}; this replica is behind")
    if checkpoint.seq and not is_checkpoint_height(st, checkpoint.seq):
        if checkpoint.seq == st.horizon:  # an epoch end we cannot know yet (see checkpoints)
            raise OutOfWindow(f"view change from checkpoint {checkpoint.seq} at the horizon")
        raise InvalidProof(f"{checkpoint.seq} is not a checkpoint height")
    validators = st.validators(checkpoint.seq + 1)
    st.verifier.check_message(validators, m)
    st.verifier.check_checkpoint_proof(
        st.validators(checkpoint.seq), checkpoint, st.config.genesis_digest
    )
    limit = window_limit(st, checkpoint.seq)
    heights = [p.seq for p in m.prepared]
    if heights != sorted(set(heights)) or (heights and not checkpoint.seq < heights[0]):
        raise InvalidProof("prepared proofs must be for ascending heights above the checkpoint")
    certified = [c.height for c in m.certificates]
    if certified != sorted(set(certified)) or (certified and not checkpoint.seq < certified[0]):
        raise InvalidProof("certificates must be for ascending heights above the checkpoint")
    if set(heights) & set(certified):
        raise InvalidProof("a height has both a prepared proof and a certificate")
    highest = max(heights[-1:] + certified[-1:], default=checkpoint.seq)
    if highest > limit:
        # Honest: a replica that fetched blocks past its own window may report them (older
        # versions did). Ignored, never punished; the sender re-sends a trimmed one.
        raise OutOfWindow(f"height {highest} is beyond the window of checkpoint {checkpoint.seq}")
    if highest > st.horizon:
        # Honest, but this replica is too far behind to know the validators of those heights.
        raise OutOfWindow(f"view change reaches height {highest}; this replica is behind")
    for proof in m.prepared:
        if proof.view >= m.view:
            raise InvalidProof(f"prepared proof of view {proof.view} in a change to {m.view}")
        st.verifier.check_prepared_proof(st.validators(proof.seq), proof)
    for certificate in m.certificates:
        st.verifier.check_certificate(st.validators(certificate.height), certificate)
    if m.payloads and len(m.payloads) != len(m.prepared):
        raise MalformedMessage("a view change attaches one payload per prepared proof")
    if any(len(p) > st.config.max_payload_bytes for p in m.payloads):
        raise MessageTooLarge("view-change payload above max_payload_bytes")


def _help_with_view(st: ReplicaState, m: ViewChange) -> None:
    """A peer asks for a view we are past: send our NEW-VIEW (or our higher view change), and
    our certificate signatures for the heights it shows it has no certificate for."""
    sender = m.sender
    marker = -(2**62) - st.view
    if sender == st.me or (sender, marker) in st.answered:
        return
    st.verify_sender(m, m.checkpoint.seq + 1)  # membership and signature before any change
    st.saw_view(sender, m.view)
    message = (
        st.view_change.new_view
        if st.status is Status.NORMAL
        else st.signed.get(("view-change", st.view, 0))
    )
    st.answered.add((sender, marker))
    if message is not None:
        st.answer(sender, marker, message)
    _help_with_blocks(st, m)


def _note_view_of_peer_ahead(st: ReplicaState, m: ViewChange) -> None:
    """A view change this replica is too far behind to check in full still shows, once its
    signature verifies, that its sender is moving to `m.view`: a replica that is catching up
    then knows the group's view (and joins f+1 of them) instead of trusting stale views. It
    also shows how far its sender got: heights beyond our horizon, whose certificates we cannot
    check yet, are fetched from it (each fetched block is checked against its certificate as
    the horizon advances, so a lie costs only a refused catch-up). One signature check per new
    view or new claimed height of a sender."""
    claimed = _held_height(m)
    behind = claimed > max(st.delivered_height, st.catch_up.target)
    if m.view <= st.view_change.peer_views.get(m.sender, -1) and not behind:
        return
    validators = st.validators(st.low + 1)
    if m.sender not in validators:
        return  # perhaps a member of a set we do not know yet: not its fault
    st.verifier.check_message(validators, m)
    st.saw_view(m.sender, m.view)
    if behind:
        note_behind(st, claimed, (Address(m.sender),))


def _note_certified(st: ReplicaState, m: ViewChange) -> None:
    """A verified view change carries commit certificates: heights above ours among them are
    decided, so fetch those blocks (its sender holds them). Without this a replica that caught
    up to a checkpoint while the others decided more, and then changed view with them, waited
    for a stable checkpoint it could not help form (seen in the e2e suite)."""
    if m.certificates and m.certificates[-1].height > st.delivered_height:
        note_behind(st, m.certificates[-1].height, (Address(m.sender),))


def _help_behind(st: ReplicaState, m: ViewChange) -> None:
    """A verified view change to a view above ours shows what its sender holds: if it lacks
    blocks we delivered, send our CERTIFY for each (once per peer and height, `help_laggard`),
    so a backup that fell behind by less than a checkpoint, and timed out because nobody
    proposes those heights again, learns that it must fetch them. Without this it could only
    learn at the next stable checkpoint, which may need its own vote."""
    if st.status is not Status.NORMAL or m.sender == st.me:
        return
    _help_with_blocks(st, m)


def _help_with_blocks(st: ReplicaState, m: ViewChange) -> None:
    """`m` (verified) shows how far its sender got: for the blocks we delivered beyond that,
    send our stable CHECKPOINT if it is below it (it then fetches blocks), and our CERTIFY for
    each delivered height above both (`help_laggard`: once per peer and height)."""
    known = _held_height(m)
    if known < st.low:
        st.help_laggard(m, known + 1, verified=True)  # our stable checkpoint: fetch blocks
    for seq in range(max(known, st.low) + 1, st.delivered_height + 1):
        st.help_laggard(m, seq, verified=True)


def _held_height(m: ViewChange) -> int:
    """The highest height `m`'s sender shows it holds: its stable checkpoint or a certificate."""
    return max([m.checkpoint.seq] + [c.height for c in m.certificates])


def _show_our_view(st: ReplicaState, sender: bytes) -> None:
    """A validator (verified) asks for a view above our normal one: send it our NEW-VIEW once
    per view of ours, so that, alone up there, it can come back (`return_to_group`)."""
    if st.status is not Status.NORMAL or st.view_change.new_view is None or sender == st.me:
        return
    marker = -(2**62) - st.view
    if (sender, marker) not in st.answered:
        st.answer(sender, marker, st.view_change.new_view)


def join_if_overtaken(st: ReplicaState) -> None:
    """f+1 validators want, or are in, a higher view: at least one honest one is, so follow to
    the smallest such view (§4.5.2). Evidence: their view changes, and any verified message of
    theirs in a higher view (`peer_views`), so a replica that restarted into an old view joins
    the others before its timer, even while it keeps delivering certified blocks."""
    validators = st.validators(st.low + 1)
    lowest: dict[bytes, int] = {}
    for sender, view in st.view_change.peer_views.items():
        if view > st.view and sender != st.me and sender in validators:
            lowest[sender] = view
    if len(lowest) <= validators.max_faulty and not st.view_change.messages:
        return
    for view, changes in st.view_change.messages.items():
        if view <= st.view:
            continue
        for sender in changes:
            if sender != st.me and sender in validators:
                lowest[sender] = min(lowest.get(sender, view), view)
    if len(lowest) > validators.max_faulty:
        request_view_change(st, min(lowest.values()))


def check_quorum(st: ReplicaState) -> None:
    """With 2f+1 view changes for the target view: arm the timer; the primary sends NEW-VIEW."""
    if st.status is not Status.VIEW_CHANGE:
        return
    validators = st.validators(st.low + 1)
    changes = st.view_change.messages.get(st.view, {})
    if sum(1 for sender in changes if sender in validators) < validators.quorum:
        return
    if st.view_change.armed_at is None:
        st.view_change.armed_at = st.now
    _try_new_view(st)


def _try_new_view(st: ReplicaState) -> None:
    changes = [c for _, c in sorted(st.view_change.messages.get(st.view, {}).items())]
    window, schedule = st.config.watermark_window, st.schedule
    plan = plan_new_view(changes, window, schedule.next_change_after)
    validators = st.validators(plan.checkpoint.seq + 1)
    members = [c for c in changes if c.sender in validators]
    if len(members) < len(changes):
        plan = plan_new_view(members, window, schedule.next_change_after)
        if st.validators(plan.checkpoint.seq + 1) != validators:
            return
    if len(members) < validators.quorum or primary_of(validators, st.view) != st.me:
        return
    view, chain_id = st.view, st.config.chain_id
    proposals: list[PrePrepare] = []
    for entry in plan.reproposals:
        proof = entry.proof
        if proof is None:  # never: reproposals carry a proof
            return
        payload = find_payload(st, entry.seq, entry.digest)
        if payload is None:
            st.count("new_view_waits_for_payload")
            return
        signature = st.signer.sign(
            pre_prepare_signing_bytes(chain_id, view, entry.seq, entry.digest, proof.parent)
        )
        proposals.append(
            PrePrepare(view, entry.seq, entry.digest, proof.parent, payload, st.me, signature)
        )
    stripped = tuple(c.without_payloads() for c in members)
    new_view = st.publish(lambda s: NewView(view, stripped, tuple(proposals), st.me, s))
    if new_view is None:
        return
    for proposal in proposals:
        st.signed[("pre-prepare", view, proposal.seq)] = proposal
    enter_view(st, new_view, plan)


# --- new view -------------------------------------------------------------------------------------


def handle_new_view(st: ReplicaState, m: NewView) -> None:
    if m.view < st.view and may_return(st, m.view):
        plan = verify_new_view(st, m)
        return_to_group(st, m.view, (m, plan))
        return
    if _may_return_later(st, m):
        # Peers send their NEW-VIEW once per (sender, view): keep it for when we may use it,
        # once its own signature holds (its proofs are checked when it is used).
        st.verifier.check_message(st.validators(st.low + 1), m)
        st.view_change.parked_new_views[m.sender] = m
        raise StaleMessage(f"new view {m.view} kept until this replica may go back to it")
    if m.view < st.view or (m.view == st.view and st.status is Status.NORMAL):
        raise StaleMessage(f"new view {m.view}; we are in view {st.view}")
    if m.view > st.view + st.config.max_view_ahead:
        raise ViewTooFarAhead(f"new view {m.view}; current view is {st.view}")
    plan = verify_new_view(st, m)
    for change in m.view_changes:
        st.saw_view(change.sender, m.view)
    enter_view(st, m, plan)


# --- coming back from a lone view change ----------------------------------------------------------


def may_return(st: ReplicaState, view: int) -> bool:
    """True if this replica, alone in a view change above the group, may go back to `view`.

    Never below the last view it worked in (`normal_view`): a NEW-VIEW put f+1 honest validators
    at or above it, and older views' signed messages are no longer kept. Alone: fewer than a
    quorum of view changes for our target (the timer that would move us on is not armed) and
    `view` is the group's view (f+1 validators, one honest, are known there).
    Caught up: delivered to within the pipelining depth of what the group is known to have
    decided (it keeps deciding meanwhile, so "equal" may never hold). Patient: our view change
    has had one view timeout to gather followers. Safe: `try_commit` sends no COMMIT below
    `highest_signed`.
    """
    return (
        st.status is Status.VIEW_CHANGE
        and st.view_change.armed_at is None
        and st.view_change.normal_view <= view < st.view
        and st.group_view() == view
        and st.catch_up.target <= st.delivered_height + st.config.max_in_flight
        and st.now >= st.view_change.view_started + st.config.view_timeout
    )


def _may_return_later(st: ReplicaState, m: NewView) -> bool:
    """A lower-view NEW-VIEW that may bring this lone replica back once it is caught up and
    patient (`may_return` without those two conditions); its sender is a validator."""
    return (
        st.status is Status.VIEW_CHANGE
        and st.view_change.normal_view <= m.view < st.view
        and m.sender != st.me
        and m.sender in st.validators(st.low + 1)
    )


def try_return(st: ReplicaState) -> None:
    """On a tick: go back to view 0 if that is the group's view (it needs no NEW-VIEW); for
    a later view, the group's NEW-VIEW brings us back, as it arrives (`handle_new_view`) or
    as parked earlier, when we were not yet caught up or patient."""
    if may_return(st, 0):
        return_to_group(st, 0, None)
        return
    group = st.group_view()
    if group is None or not may_return(st, group):
        return
    parked_new_views = st.view_change.parked_new_views
    for sender in sorted(parked_new_views):
        parked = parked_new_views[sender]
        if parked.view != group:
            continue
        try:
            plan = verify_new_view(st, parked)
        except MessageRejected:
            del parked_new_views[sender]  # its sender is no longer known: dropped quietly
            continue
        st.count("returned_with_parked_new_view")
        return_to_group(st, group, (parked, plan))
        return


def return_to_group(
    st: ReplicaState, view: int, new_view: tuple[NewView, NewViewPlan] | None
) -> None:
    """Resume normal operation in the group's `view` (below ours; see `may_return`)."""
    st.count("returned_to_group_view")
    st.view_change.parked_new_views.clear()
    st.view = view
    st.status = Status.NORMAL
    st.view_change.normal_view = view
    st.requested_view = 0
    st.view_change.armed_at = None
    st.votes.log.reset_view()
    st.view_change.payloads = {}
    if new_view is not None:
        message, plan = new_view
        enter_view(st, message, plan)
        return
    st.view_change.new_view = None
    st.proposer.next_seq, st.proposer.tip = st.delivered_height + 1, st.delivered_digest
    st.proposer.last_proposal = st.now
    st.dirty = True
    st.view_change.view_started = st.now
    st.progress()
    st.buffer_dirty = True
    st.emit(EnteredView(view, st.current_primary()))


def verify_new_view(st: ReplicaState, m: NewView) -> NewViewPlan:
    """Raise unless `m` carries a quorum of valid view changes and exactly their re-proposals."""
    if not m.view_changes:
        raise InvalidNewView(f"new view {m.view} carries no view changes")
    senders: set[bytes] = set()
    known = st.view_change.messages.get(m.view, {})
    for change in m.view_changes:
        if change.view != m.view:
            raise InvalidNewView(f"new view {m.view} includes a view change to {change.view}")
        if change.sender in senders:
            raise InvalidNewView(f"new view {m.view} includes {short(change.sender)} twice")
        senders.add(change.sender)
        seen = known.get(change.sender)
        if seen is None or seen.without_payloads() != change:
            verify_view_change(st, change)
    window = st.config.watermark_window
    plan = plan_new_view(m.view_changes, window, st.schedule.next_change_after)
    validators = st.validators(plan.checkpoint.seq + 1)
    if any(sender not in validators for sender in senders):
        raise InvalidNewView(f"new view {m.view} includes a view change of a non-validator")
    if len(senders) < validators.quorum:
        raise InvalidNewView(f"new view {m.view} has {len(senders)} view changes, quorum needed")
    if m.sender != primary_of(validators, m.view):
        raise WrongPrimary(f"{short(m.sender)} is not the primary of view {m.view}")
    st.verifier.check_message(validators, m)
    reproposals = plan.reproposals
    if len(m.pre_prepares) != len(reproposals):
        raise InvalidNewView(
            f"new view {m.view} re-proposes {len(m.pre_prepares)} blocks, "
            f"its view changes determine {len(reproposals)}"
        )
    for proposal, entry in zip(m.pre_prepares, reproposals, strict=True):
        expected = (m.view, entry.seq, entry.digest, entry.proof.parent if entry.proof else b"")
        if (proposal.view, proposal.seq, proposal.digest, proposal.parent) != expected:
            raise InvalidNewView(f"new view {m.view}: wrong re-proposal at seq {entry.seq}")
        if proposal.sender != m.sender:
            raise InvalidNewView(f"new view {m.view}: re-proposal signed by another replica")
        if len(proposal.payload) > st.config.max_payload_bytes:
            raise MessageTooLarge(f"re-proposal at seq {proposal.seq} above max_payload_bytes")
        st.verifier.check_message(st.validators(proposal.seq), proposal)
    return plan


def enter_view(st: ReplicaState, m: NewView, plan: NewViewPlan) -> None:
    """Start view `m.view` in normal status: adopt the plan's checkpoint, decisions, proposals."""
    st.view = m.view
    st.view_change.parked_new_views.clear()
    st.dirty = True
    st.status = Status.NORMAL
    st.view_change.new_view = m
    st.view_change.armed_at = None
    st.view_change.view_started = st.now
    st.view_change.normal_view = m.view
    st.votes.log.reset_view()
    for old in [v for v in st.view_change.messages if v <= m.view]:
        del st.view_change.messages[old]
    if plan.checkpoint.seq > st.low:
        make_stable(st, plan.checkpoint)
    for entry in plan.entries:
        if entry.certificate is not None and entry.seq > st.delivered_height:
            st.votes.certificates.setdefault(entry.seq, entry.certificate)
            decide(st, entry.seq, entry.digest)
    primary = st.primary(m.view, plan.checkpoint.seq + 1)
    for proposal in m.pre_prepares:
        if proposal.seq <= st.delivered_height or proposal.seq > st.high:
            continue
        if primary == st.me:
            _adopt_own_proposal(st, proposal)
        else:
            offer_pre_prepare(st, proposal)
    if primary == st.me:
        end_seq, end_digest = plan.end
        st.proposer.next_seq, st.proposer.tip = end_seq + 1, end_digest
        st.proposer.last_proposal = st.now
    st.progress()
    st.buffer_dirty = True
    st.emit(EnteredView(m.view, primary))


def _adopt_own_proposal(st: ReplicaState, proposal: PrePrepare) -> None:
    """The new primary's re-proposal: accepted; shown to the application if new to it."""
    slot = st.votes.log.slot(proposal.seq)
    if proposal.digest not in slot.payloads:
        try:
            st.app.validate_proposal(
                Proposal(proposal.seq, proposal.parent, proposal.digest, proposal.payload), st.now
            )
        except InvalidProposal:
            st.count("reproposal_unknown_to_application")
    slot.pre_prepare = proposal
    slot.payloads[proposal.digest] = proposal.payload
