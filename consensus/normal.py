"""Normal case (Castro-Liskov §4.2, plus the certificate round): propose, prepare, commit,
decide, certify, deliver.

Per height n in view v:

1. The primary proposes block d on top of its block n-1 (PRE-PREPARE). A backup accepts it once
   its parent is the block it accepted (or delivered) at n-1 and the application validates it,
   then sends PREPARE.
2. Prepared: the pre-prepare plus 2f matching PREPAREs of distinct backups.
3. Ordered prefix: a replica sends COMMIT(v, n, d) only when prepared in v, n-1 is decided and
   d's parent is the decided block n-1. Before the COMMIT goes out its prepared proof is
   persisted (`PreparedRecord`).
4. Decided: 2f+1 COMMITs of one view for d (or a certificate). The replica then sends CERTIFY,
   its signature over `commit_signing_bytes(chain_id, n, d)`. Because an honest replica
   certifies only decided blocks and PBFT decides at most one block per height, 2f+1 CERTIFY
   signatures form a certificate no conflicting one can exist beside.
5. Delivered: a certificate and the payload for height D+1 -> `CommitBlock`, strictly in order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from consensus import checkpoints
from consensus.actions import CommitBlock, FaultDetected, Persist
from consensus.app import Proposal
from consensus.errors import (
    DuplicateMessage,
    Equivocation,
    InvalidProposal,
    MessageTooLarge,
    ProposalNotJudged,
    RejectedProposal,
    StaleMessage,
    UnjudgeableProposal,
    WrongPrimary,
)
from consensus.log import Slot
from consensus.messages import Certify, Commit, Prepare, PrePrepare
from consensus.proofs import build_prepared_proof, short
from consensus.records import PreparedRecord
from consensus.state import ReplicaState, Status, Where
from ledger.certificates import build_certificate
from ledger.hashing import HASH_SIZE
from ledger.keys import Address
from ledger.validators import ValidatorSet

Vote = TypeVar("Vote", Prepare, Commit, Certify)
"""A vote of the normal case, stored per slot and sender (`take_vote`)."""


def request_view_change(st: ReplicaState, view: int) -> None:
    """Ask the replica to move to `view` (carried out when the current input settles)."""
    if view > st.view:
        st.requested_view = max(st.requested_view, view)


def note_stale(st: ReplicaState, m: PrePrepare | Prepare | Commit | Certify) -> None:
    """A stale normal-case message: help its sender catch up in height (it may lack the block's
    certificate) and, unless it is a view-less CERTIFY, in view."""
    st.help_laggard(m, m.seq)
    if not isinstance(m, Certify) and m.view < st.view:
        st.help_lower_view(m, m.view, m.seq)


# --- pre-prepare ---------------------------------------------------------------------------------


def handle_pre_prepare(st: ReplicaState, m: PrePrepare) -> None:
    if len(m.payload) > st.config.max_payload_bytes:
        raise MessageTooLarge(
            f"payload of {len(m.payload)} bytes exceeds {st.config.max_payload_bytes}"
        )
    where = st.where(m.view, m.seq)
    if where is Where.STALE:
        note_stale(st, m)
        raise StaleMessage(f"pre-prepare for view {m.view} seq {m.seq} is old")
    validators = st.validators(m.seq)
    if m.sender != st.primary(m.view, m.seq):
        raise WrongPrimary(f"{short(m.sender)} is not the primary of view {m.view}")
    if where is Where.FUTURE:
        st.verifier.check_message(validators, m)
        st.buffer.add(m)
        st.saw_view(m.sender, m.view)
        return
    slot = st.votes.log.peek(m.seq)
    existing = None if slot is None else (slot.pre_prepare or slot.pending)
    if existing is not None:
        if existing == m:
            raise DuplicateMessage(f"pre-prepare view {m.view} seq {m.seq} seen before")
        st.verifier.check_message(validators, m)
        if (existing.digest, existing.parent) == (m.digest, m.parent):
            raise DuplicateMessage(f"pre-prepare view {m.view} seq {m.seq} with another payload")
        # Two signed proposals for one (view, seq): proof that the primary is faulty.
        st.emit(FaultDetected(m.sender, f"primary equivocated at view {m.view} seq {m.seq}"))
        request_view_change(st, st.view + 1)
        return
    st.verifier.check_message(validators, m)
    if not parent_ready(st, m.seq, m.parent):
        st.votes.log.slot(m.seq).pending = m
        st.saw_view(m.sender, m.view)
        return
    _validate(st, m)
    st.saw_view(m.sender, m.view)
    accept_pre_prepare(st, m)


def offer_pre_prepare(st: ReplicaState, m: PrePrepare) -> None:
    """Accept a verified pre-prepare now or park it until its parent is ready (no raise)."""
    try:
        if not parent_ready(st, m.seq, m.parent):
            st.votes.log.slot(m.seq).pending = m
            return
        _validate(st, m)
    except RejectedProposal:
        st.count("rejected_proposal")
        return
    accept_pre_prepare(st, m)


def _validate(st: ReplicaState, m: PrePrepare) -> None:
    # Fresh unless it is one of this view's NEW-VIEW re-proposals: those are exempt from the
    # lower block-time bound (docs/consensus.md, "Block time bounds").
    fresh = st.view_change.new_view is None or m not in st.view_change.new_view.pre_prepares
    try:
        proposal = Proposal(m.seq, m.parent, m.digest, m.payload)
        st.app.validate_proposal(proposal, st.now, fresh=fresh)
    except UnjudgeableProposal as exc:
        raise ProposalNotJudged(f"block at seq {m.seq} view {m.view} refused: {exc}") from exc
    except InvalidProposal as exc:
        raise RejectedProposal(f"block at seq {m.seq} view {m.view} rejected: {exc}") from exc


def parent_ready(st: ReplicaState, seq: int, parent: bytes) -> bool:
    """True if block `parent` at seq-1 is delivered or accepted; raise if it cannot be."""
    previous = seq - 1
    if previous == st.delivered_height:
        if parent != st.delivered_digest:
            raise RejectedProposal(f"parent of seq {seq} is not the delivered block {previous}")
        # A block delivered during this very input is not executed by the application yet.
        return previous <= st.executed_height
    decided = st.votes.decided.get(previous)
    if decided is not None and decided != parent:
        raise RejectedProposal(f"parent of seq {seq} is not the decided block {previous}")
    slot = st.votes.log.peek(previous)
    if slot is None:
        return False
    if slot.pre_prepare is not None:
        if slot.pre_prepare.digest == parent:
            return True
        raise RejectedProposal(f"parent of seq {seq} differs from this view's block {previous}")
    return decided == parent and parent in slot.payloads


def accept_pre_prepare(st: ReplicaState, m: PrePrepare) -> None:
    slot = st.votes.log.slot(m.seq)
    slot.pre_prepare = m
    slot.pending = None
    slot.payloads[m.digest] = m.payload
    st.dirty = True
    st.mark("pre_prepare", m.seq)
    if m.sender != st.me and st.is_member(m.seq):
        view, seq, digest = m.view, m.seq, m.digest
        prepare = st.publish(lambda s: Prepare(view, seq, digest, st.me, s))
        if prepare is not None:
            slot.prepares[st.me] = prepare
    check_prepared(st, slot)
    child = st.votes.log.peek(m.seq + 1)
    if child is not None and child.pending is not None:
        retry_pending(st, child)


def retry_pending(st: ReplicaState, slot: Slot) -> None:
    pending = slot.pending
    if pending is None or pending.view != st.view or st.status is not Status.NORMAL:
        return
    slot.pending = None
    offer_pre_prepare(st, pending)


# --- prepare / commit / certify ------------------------------------------------------------------


def handle_prepare(st: ReplicaState, m: Prepare) -> None:
    slot = take_vote(st, m, lambda slot: slot.prepares)
    if slot is not None:
        check_prepared(st, slot)


def handle_commit(st: ReplicaState, m: Commit) -> None:
    slot = take_vote(st, m, lambda slot: slot.commits)
    if slot is not None:
        check_committed(st, slot, m.digest)


def handle_certify(st: ReplicaState, m: Certify) -> None:
    slot = take_vote(st, m, lambda slot: slot.certifies)
    if slot is not None:
        check_certified(st, slot, m.digest)


def take_vote(
    st: ReplicaState, m: Vote, votes_of: Callable[[Slot], dict[bytes, Vote]]
) -> Slot | None:
    """Check a PREPARE, COMMIT or CERTIFY completely, then store it among `votes_of(slot)`.

    Returns the slot it was stored in (the caller checks for a quorum), or None if it was early
    and buffered after its signature verified. Raises, changing nothing but the help sent to a
    laggard: `StaleMessage` (its sender is helped to catch up), `WrongPrimary` (the primary
    sends no PREPARE), `DuplicateMessage` / `Equivocation` for a sender's second vote in a slot
    (the first counts), or the verifier's `NotAValidator` / `InvalidSignature`. A view-less
    CERTIFY says nothing about its sender's view; the others update `peer_views`.
    """
    view = None if isinstance(m, Certify) else m.view
    where = st.where(view, m.seq)
    if where is Where.STALE:
        note_stale(st, m)
        at = f"seq {m.seq}" if view is None else f"view {view} seq {m.seq}"
        raise StaleMessage(f"{m.KIND} for {at} is old")
    validators = st.validators(m.seq)
    if isinstance(m, Prepare) and m.sender == st.primary(m.view, m.seq):
        raise WrongPrimary(f"the primary of view {m.view} does not send PREPARE")
    if where is Where.FUTURE:
        st.verifier.check_message(validators, m)
        st.buffer.add(m)
        if view is not None:
            st.saw_view(m.sender, view)
        return None
    slot = st.votes.log.peek(m.seq)
    existing = None if slot is None else votes_of(slot).get(m.sender)
    if existing is not None:
        _reject_second_vote(st, existing, m, validators)
    st.verifier.check_message(validators, m)
    if view is not None:
        st.saw_view(m.sender, view)
    slot = st.votes.log.slot(m.seq)
    votes_of(slot)[m.sender] = m
    return slot


def _reject_second_vote(
    st: ReplicaState,
    existing: Prepare | Commit | Certify,
    m: Prepare | Commit | Certify,
    validators: ValidatorSet,
) -> None:
    """A sender's second vote for a slot: a duplicate, or (if validly signed) equivocation."""
    if existing == m:
        raise DuplicateMessage(f"{m.KIND} of {short(m.sender)} for seq {m.seq} seen before")
    st.verifier.check_message(validators, m)  # a forgery must not blame the claimed sender
    raise Equivocation(
        f"{short(m.sender)} sent a second {m.KIND} for seq {m.seq} "
        f"({m.digest.hex()[:12]} after {existing.digest.hex()[:12]}); the first counts"
    )


def check_prepared(st: ReplicaState, slot: Slot) -> None:
    m = slot.pre_prepare
    if m is None:
        return
    if slot.prepared is None or slot.prepared.view < m.view:
        needed = st.validators(m.seq).quorum - 1  # 2f when n = 3f + 1
        matching = [p for p in slot.matching_prepares(m.digest) if p.sender != m.sender]
        if len(matching) < needed:
            return
        slot.prepared = build_prepared_proof(m, matching, needed)
        slot.prepared_payload = m.payload
        st.mark("prepared", m.seq)
    try_commit(st, m.seq)


def decided_digest(st: ReplicaState, seq: int) -> bytes | None:
    if seq == st.delivered_height:
        return st.delivered_digest
    if seq == st.low:
        return st.stable.digest
    return st.votes.decided.get(seq)


def try_commit(st: ReplicaState, seq: int) -> None:
    """Send COMMIT for `seq` if the ordered-prefix rule allows it (see module docstring).

    A height this replica already decided is committed again when it is prepared in the current
    view with the decided block: replicas that missed the decision need 2f+1 commits of one view.

    No COMMIT in a view below one this replica already sent a VIEW-CHANGE for: that message
    would not report the commit, and a NEW-VIEW may still use it (docs/consensus.md, "Coming
    back from a lone view change").
    """
    if st.status is not Status.NORMAL or seq > st.votes.decided_through + 1:
        return
    if st.view < st.view_change.highest_signed:
        st.count("commit_withheld_below_own_view_change")
        return
    slot = st.votes.log.peek(seq)
    proof = None if slot is None else slot.prepared
    if slot is None or proof is None or proof.view != st.view or not st.is_member(seq):
        return
    if seq <= st.votes.decided_through:
        if proof.digest != decided_digest(st, seq):
            return
    elif proof.parent != decided_digest(st, seq - 1):
        return
    if ("commit", st.view, seq) in st.signed:
        return
    st.emit(Persist(PreparedRecord(proof, slot.prepared_payload)))
    view, digest = st.view, proof.digest
    commit = st.publish(lambda s: Commit(view, seq, digest, st.me, s))
    if commit is not None:
        slot.commits[st.me] = commit
        check_committed(st, slot, digest)


def check_committed(st: ReplicaState, slot: Slot, digest: bytes) -> None:
    if (
        slot.seq in st.votes.decided
        or slot.matching_commits(digest) < st.validators(slot.seq).quorum
    ):
        return
    decide(st, slot.seq, digest)


def check_certified(st: ReplicaState, slot: Slot, digest: bytes) -> None:
    if slot.seq in st.votes.certificates:
        return
    signatures = slot.certify_signatures(digest)
    validators = st.validators(slot.seq)
    if len(signatures) < validators.quorum:
        if len(signatures) > validators.max_faulty and slot.seq > st.delivered_height:
            # f+1 CERTIFYs: an honest validator decided this block. If we cannot decide it
            # ourselves (we missed its round, and the certifier that would complete our quorum
            # may be down), fetch it: its certificate exists elsewhere (grace: resend_interval).
            senders = tuple(Address(s) for s in sorted(signatures) if s != st.me)
            checkpoints.note_behind(st, slot.seq, senders)
        return
    st.votes.certificates[slot.seq] = build_certificate(slot.seq, digest, signatures)
    st.dirty = True
    decide(st, slot.seq, digest)


def decide(st: ReplicaState, seq: int, digest: bytes) -> None:
    """Record that `digest` is the block at `seq`; certify it; commit the next height."""
    if seq <= st.delivered_height or seq <= st.low:
        return
    known = st.votes.decided.get(seq)
    if known is not None:
        if known != digest:
            st.count("conflicting_decision")  # impossible with at most f faulty validators
        return
    st.votes.decided[seq] = digest
    st.dirty = True
    st.mark("decided", seq)
    while st.votes.decided_through + 1 in st.votes.decided:
        st.votes.decided_through += 1
    if st.is_member(seq):
        certify = st.publish(lambda s: Certify(seq, digest, st.me, s))
        if certify is not None:
            slot = st.votes.log.slot(seq)
            slot.certifies[st.me] = certify
            check_certified(st, slot, digest)
    try_commit(st, st.votes.decided_through + 1)


# --- delivery ------------------------------------------------------------------------------------


def find_payload(st: ReplicaState, seq: int, digest: bytes) -> bytes | None:
    """A block for `digest` known valid, or checked now against the digest."""
    slot = st.votes.log.peek(seq)
    candidates: list[bytes] = []
    if slot is not None:
        known = slot.payloads.get(digest)
        if known is not None:
            return known
        for m in (slot.pre_prepare, slot.pending):
            if m is not None and m.digest == digest:
                candidates.append(m.payload)
        if slot.prepared is not None and slot.prepared.digest == digest:
            candidates.append(slot.prepared_payload)
    attached = st.view_change.payloads.get(digest)
    if attached is not None:
        candidates.append(attached)
    for payload in candidates:
        try:
            st.app.verify_payload(seq, digest, payload)
        except InvalidProposal:
            continue
        if slot is not None:
            slot.payloads[digest] = payload
        return payload
    return None


def try_deliver(st: ReplicaState) -> None:
    """Emit `CommitBlock` for every consecutive height with a certificate and a payload."""
    while st.delivered_height < st.horizon:
        seq = st.delivered_height + 1
        if seq not in st.votes.certificates and seq not in st.catch_up.blocks:
            return
        fetched = st.catch_up.blocks.pop(seq, None)
        if fetched is not None:
            digest, payload, certificate = fetched
        else:
            certificate = st.votes.certificates.get(seq)  # type: ignore[assignment]
            if certificate is None:
                return
            digest = certificate.block_hash
            found = find_payload(st, seq, digest)
            if found is None:
                signers = tuple(s.validator for s in certificate.signatures)
                checkpoints.note_behind(st, max(st.votes.certificates), signers)
                return
            payload = found
        st.emit(CommitBlock(seq, digest, payload, certificate))
        if seq > st.low:
            st.votes.certificates[seq] = certificate
        else:
            st.votes.certificates.pop(seq, None)
        st.delivered_height = seq
        st.delivered_digest = digest
        st.votes.decided.pop(seq, None)
        st.votes.decided_through = max(st.votes.decided_through, seq)
        st.view_change.attempt = 0
        st.progress()
        st.votes.log.discard(seq)
        checkpoints.on_delivered(st, seq, digest)


# --- proposing -----------------------------------------------------------------------------------


def can_propose(st: ReplicaState) -> bool:
    seq = st.proposer.next_seq
    return (
        st.status is Status.NORMAL
        and st.primary(st.view, seq) == st.me
        and seq <= st.high
        and seq <= st.votes.decided_through + st.config.max_in_flight
        and st.is_member(seq)
    )


def try_propose(st: ReplicaState) -> None:
    """As primary, ask the application for the next block when the window and timers allow.

    Proposal timing adapts to the load: a block is due `empty_block_interval` after the last
    proposal (a heartbeat, possibly empty), or `batch_wait` after it while transactions are
    pending (a trickle fills a block for a short bound), or at once when the application has a
    full block ready (`full_block_ready`): waiting could not make that block bigger, only later.
    The in-flight window (`can_propose`) bounds all three alike.
    """
    proposer = st.proposer
    if proposer.next_seq <= st.delivered_height:
        proposer.next_seq, proposer.tip = st.delivered_height + 1, st.delivered_digest
    if proposer.next_seq <= st.low:
        proposer.next_seq, proposer.tip = st.low + 1, st.stable.digest
    if not can_propose(st):
        return
    required = st.now >= proposer.last_proposal + st.config.empty_block_interval
    batched = proposer.work_pending and st.now >= proposer.last_proposal + st.config.batch_wait
    seq, parent = proposer.next_seq, proposer.tip
    if not required and not batched:
        if not proposer.work_pending or not _full_block_ready(st, seq, parent):
            return
        st.count("full_block_early")
        ready = True
    else:
        ready = _can_build(st, seq, parent)
    proposal = st.app.make_proposal(seq, parent, st.now, required=required) if ready else None
    if proposal is None:
        # Nothing to propose, or the parent is not usable yet: try again after a while.
        proposer.work_pending = False
        proposer.last_proposal = st.now
        return
    if (
        proposal.seq != seq
        or proposal.parent != parent
        or len(proposal.digest) != HASH_SIZE
        or len(proposal.payload) > st.config.max_payload_bytes
    ):
        st.count("bad_local_proposal")
        return
    view, digest, payload = st.view, proposal.digest, proposal.payload
    m = st.publish(lambda s: PrePrepare(view, seq, digest, parent, payload, st.me, s))
    if m is None:
        return
    slot = st.votes.log.slot(seq)
    slot.pre_prepare = m
    slot.payloads[digest] = payload
    st.mark("pre_prepare", seq)
    proposer.next_seq, proposer.tip, proposer.last_proposal = seq + 1, digest, st.now
    check_prepared(st, slot)


def _can_build(st: ReplicaState, seq: int, parent: bytes) -> bool:
    """True if the primary's tip is a block the application can build `seq` on now."""
    try:
        ready = parent_ready(st, seq, parent)
    except RejectedProposal:
        st.count("primary_tip_not_decided_chain")
        return False
    if ready and not st.app.can_build_on(seq, parent):
        # The log still holds a parent the application dropped or never executed (a restart,
        # or a conflicting block committed below it): never ask it to build there.
        st.count("primary_tip_not_executable")
        return False
    return ready


def _full_block_ready(st: ReplicaState, seq: int, parent: bytes) -> bool:
    """Before `batch_wait` is up: propose only if the application has a full block ready.

    A tip the application cannot build on yet is left to the timed path, which handles it (and
    counts why); here it only means "not now", so the check leaves no trace."""
    try:
        ready = parent_ready(st, seq, parent)
    except RejectedProposal:
        return False
    return ready and st.app.can_build_on(seq, parent) and st.app.full_block_ready(seq, parent)
