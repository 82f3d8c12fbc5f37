"""Checkpoints (Castro-Liskov §4.3), garbage collection, and catch-up of a lagging replica.

* After delivering a checkpoint height (every K blocks, and the last height of an epoch) a
  replica broadcasts CHECKPOINT(seq, digest). 2f+1 matching ones make the checkpoint *stable*:
  the low watermark moves to it, and the log, certificates, votes and persisted records at or
  below it are discarded.
* A replica learns it is behind when f+1 validators (so at least one honest) sign a checkpoint
  above its delivered height, when a stable checkpoint proof (in a view change or new view) is
  above it, or when it holds a certificate without the block. It then emits `RequestCatchUp`;
  the driver fetches blocks with their commit certificates from any peers and feeds them to
  `on_catch_up_block`, which accepts a block only if its certificate verifies against the
  validator set for that height: one honest peer suffices, no peer is trusted.
"""

from __future__ import annotations

from consensus.actions import DiscardRecords, Persist, RequestCatchUp
from consensus.errors import (
    DuplicateMessage,
    Equivocation,
    InvalidProof,
    InvalidProposal,
    MalformedMessage,
    OutOfWindow,
    StaleMessage,
)
from consensus.messages import Checkpoint, CheckpointProof
from consensus.proofs import build_checkpoint_proof, short
from consensus.records import CheckpointRecord
from consensus.state import ReplicaState
from ledger.certificates import CommitCertificate
from ledger.keys import Address


def is_checkpoint_height(st: ReplicaState, seq: int) -> bool:
    return seq % st.config.checkpoint_interval == 0 or st.schedule.is_epoch_end(seq)


def on_delivered(st: ReplicaState, seq: int, digest: bytes) -> None:
    """Called for each delivered block: sign a checkpoint at checkpoint heights."""
    if not is_checkpoint_height(st, seq) or not st.is_member(seq):
        return
    checkpoint = st.publish(lambda s: Checkpoint(seq, digest, st.me, s))
    if checkpoint is not None:
        st.votes.checkpoints.setdefault(seq, {})[st.me] = checkpoint
        _check_stable(st, seq, digest)


def handle_checkpoint(st: ReplicaState, m: Checkpoint) -> None:
    if m.seq <= st.low:
        # The sender may lack a stable checkpoint this high (e.g. it caught up by fetching
        # blocks): our own checkpoint message helps it assemble one.
        st.help_laggard(m, m.seq)
        raise StaleMessage(f"checkpoint {m.seq} is at or below the stable checkpoint {st.low}")
    validators = st.validators(m.seq)
    if m.seq > st.horizon:
        # Beyond the heights whose validator set we know for sure: only a catch-up hint.
        if m.sender not in validators:
            # The sender may be a validator of a set whose change we have not delivered yet
            # (a laggard meets the new members' checkpoints): unknown here, not provably hostile.
            raise OutOfWindow(
                f"checkpoint {m.seq} beyond the horizon {st.horizon} from {short(m.sender)}, "
                "not in the validator set known here"
            )
        known = st.catch_up.peer_checkpoints.get(m.sender)
        if known is not None and known.seq >= m.seq:
            raise DuplicateMessage(f"{short(m.sender)} already claimed checkpoint {known.seq}")
        st.verifier.check_message(validators, m)
        st.catch_up.peer_checkpoints[m.sender] = m
        _check_far_checkpoints(st)
        return
    if not is_checkpoint_height(st, m.seq):
        if m.seq == st.horizon:
            # A set change committed in the next block may end an epoch here; the sender may
            # know it already. Honest, so ignored, not punished.
            raise OutOfWindow(f"checkpoint {m.seq} at the horizon; its epoch is not known yet")
        raise MalformedMessage(f"{m.seq} is not a checkpoint height")
    existing = st.votes.checkpoints.get(m.seq, {}).get(m.sender)
    if existing is not None:
        if existing == m:
            raise DuplicateMessage(f"checkpoint {m.seq} of {short(m.sender)} seen before")
        st.verifier.check_message(validators, m)  # a forgery must not blame the sender
        raise Equivocation(f"{short(m.sender)} signed two checkpoints at {m.seq}")
    st.verifier.check_message(validators, m)
    st.votes.checkpoints.setdefault(m.seq, {})[m.sender] = m
    _check_stable(st, m.seq, m.digest)


def _check_stable(st: ReplicaState, seq: int, digest: bytes) -> None:
    validators = st.validators(seq)
    votes = [c for c in st.votes.checkpoints.get(seq, {}).values() if c.digest == digest]
    if len(votes) >= validators.quorum:
        make_stable(st, build_checkpoint_proof(seq, digest, votes))
    elif seq > st.delivered_height and len(votes) > validators.max_faulty:
        note_behind(st, seq, tuple(c.sender for c in votes))


def _check_far_checkpoints(st: ReplicaState) -> None:
    claims = sorted(
        (c.seq for c in st.catch_up.peer_checkpoints.values() if c.seq > st.delivered_height),
        reverse=True,
    )
    enough = st.validators(st.delivered_height + 1).max_faulty + 1
    if len(claims) >= enough:
        target = claims[enough - 1]  # at least one honest validator delivered this far
        peers = tuple(
            Address(s) for s, c in st.catch_up.peer_checkpoints.items() if c.seq >= target
        )
        note_behind(st, target, peers)


def make_stable(st: ReplicaState, proof: CheckpointProof) -> None:
    """Adopt a verified stable checkpoint above the current one and garbage-collect."""
    if proof.seq <= st.low:
        return
    st.stable = proof
    st.dirty = True
    st.update_high()
    seq = proof.seq
    st.emit(Persist(CheckpointRecord(proof)))
    if seq > st.votes.decided_through:
        st.votes.decided_through = seq
    while st.votes.decided_through + 1 in st.votes.decided:
        st.votes.decided_through += 1
    # Heights between the delivered one and the checkpoint stay until delivered (or fetched).
    floor = min(seq, st.delivered_height)
    st.votes.log.discard_through(floor)
    for height in [h for h in st.votes.certificates if h <= floor]:
        del st.votes.certificates[height]
    for height in [h for h in st.votes.checkpoints if h <= seq]:
        del st.votes.checkpoints[height]
    for sender in [s for s, c in st.catch_up.peer_checkpoints.items() if c.seq <= seq]:
        del st.catch_up.peer_checkpoints[sender]
    st.answered.clear()
    keep = ("checkpoint", 0, seq)
    kept_view = min(st.view, st.view_change.normal_view)
    obsolete = [k for k in st.signed if _obsolete_key(k, seq, st.view, kept_view) and k != keep]
    for key in obsolete:
        del st.signed[key]
    st.emit(DiscardRecords(seq, kept_view))
    st.buffer_dirty = True
    if seq > st.delivered_height:
        note_behind(st, seq, tuple(Address(v.sender) for v in proof.votes))


def _obsolete_key(key: tuple[str, int, int], seq: int, view: int, kept_view: int) -> bool:
    """Signed messages no longer needed: heights at or below the stable checkpoint, view
    changes of old views, and normal-case votes of views below `kept_view` (the last view the
    replica worked in, which it may return to)."""
    kind, key_view, key_seq = key
    if kind in ("view-change", "new-view"):
        return key_view < view
    if key_seq <= seq:
        return True
    return kind in ("pre-prepare", "prepare", "commit") and key_view < kept_view


# --- catch-up ------------------------------------------------------------------------------------


def note_behind(st: ReplicaState, target: int, peers: tuple[Address, ...]) -> None:
    """Evidence that blocks up to `target` are decided elsewhere.

    The request goes out after a grace of `resend_interval` (the messages are usually just late)
    and is repeated every `catch_up_retry` while the replica is still behind.
    """
    if target <= st.delivered_height:
        return
    if st.catch_up.target <= st.delivered_height:
        st.catch_up.retry_at = st.now + st.config.resend_interval
    if target >= st.catch_up.target:
        st.catch_up.target = target
        if peers:
            st.catch_up.peers = peers


def retry_catch_up(st: ReplicaState) -> None:
    if st.catch_up.target > st.delivered_height and st.now >= st.catch_up.retry_at:
        st.catch_up.retry_at = st.now + st.config.catch_up_retry
        st.emit(
            RequestCatchUp(st.delivered_height + 1, st.catch_up.target, tuple(st.catch_up.peers))
        )


def accept_catch_up_block(
    st: ReplicaState, seq: int, digest: bytes, payload: bytes, certificate: CommitCertificate
) -> None:
    """Check a fetched block against its certificate; raise naming the problem if it fails."""
    if seq <= st.delivered_height:
        raise StaleMessage(f"block {seq} is already delivered")
    if seq > min(st.delivered_height + st.config.max_catch_up_blocks, st.horizon):
        raise OutOfWindow(
            f"block {seq} is too far ahead of delivered height {st.delivered_height}; "
            "feed catch-up blocks in height order"
        )
    if seq in st.catch_up.blocks:
        raise DuplicateMessage(f"block {seq} already fetched")
    if certificate.height != seq or certificate.block_hash != digest:
        raise InvalidProof(f"certificate is for height {certificate.height}, not block {seq}")
    st.verifier.check_certificate(st.validators(seq), certificate)
    decided = st.votes.decided.get(seq)
    if decided is not None and decided != digest:
        raise InvalidProof(f"block {seq} conflicts with the block decided here")
    try:
        st.app.verify_payload(seq, digest, payload)
    except InvalidProposal as exc:
        raise InvalidProof(f"payload of block {seq} does not match its certificate: {exc}") from exc
    st.catch_up.blocks[seq] = (digest, payload, certificate)
    st.dirty = True
