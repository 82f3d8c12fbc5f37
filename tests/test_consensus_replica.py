"""The replica in the normal case, and every rule for rejecting hostile input (real Ed25519)."""

from __future__ import annotations

import dataclasses
from typing import TypeVar

import pytest

from consensus.actions import Broadcast, CommitBlock, FaultDetected, Persist, Send
from consensus.errors import (
    BufferFull,
    DuplicateMessage,
    Equivocation,
    InvalidSignature,
    MalformedMessage,
    MessageTooLarge,
    NotAValidator,
    OutOfWindow,
    RejectedProposal,
    StaleMessage,
    ViewTooFarAhead,
    WrongPrimary,
)
from consensus.messages import (
    Certify,
    Checkpoint,
    Commit,
    Message,
    Prepare,
    PrePrepare,
    ViewChange,
    decode_message,
)
from consensus.records import SignedRecord
from consensus.sim.cluster import Cluster
from consensus.sim.toychain import GENESIS_DIGEST, ToyBlock, block_digest
from ledger.certificates import verify_certificate
from ledger.keys import Address, PrivateKey, Signer

M = TypeVar("M", bound=Message)


def sign(cluster: Cluster, index: int, message: M, chain_id: str | None = None) -> M:
    """`message` from node `index`, properly signed (for `chain_id`, default the cluster's)."""
    signer = cluster.signers[index]
    draft = dataclasses.replace(message, sender=signer.address)
    chain = chain_id or cluster.config.chain_id
    return dataclasses.replace(draft, signature=signer.sign(draft.signing_bytes(chain)))


def block(
    seq: int = 1, parent: bytes = GENESIS_DIGEST, tag: bytes = b"a", ts: int = 10
) -> tuple[bytes, bytes]:
    payload = ToyBlock(seq, parent, ts, tag, (), ()).encode()
    return block_digest(payload), payload


@pytest.fixture
def cluster() -> Cluster:
    c = Cluster(4)
    c.start()
    return c


def roles(cluster: Cluster) -> tuple[int, int, int]:
    """(primary, a backup that receives crafted input, another backup)."""
    primary = cluster.primary_index()
    backups = [i for i in range(4) if i != primary]
    return primary, backups[0], backups[1]


def proposal(cluster: Cluster, view: int = 0, seq: int = 1, **kw: object) -> PrePrepare:
    primary, _, _ = roles(cluster)
    digest, payload = block(seq, **kw)  # type: ignore[arg-type]
    draft = PrePrepare(view, seq, digest, GENESIS_DIGEST, payload, Address(bytes(20)), b"")
    return sign(cluster, primary, draft)


# --- normal case ---------------------------------------------------------------------------------


def test_blocks_commit_in_order_with_ledger_verifiable_certificates(cluster: Cluster) -> None:
    for _ in range(6):
        cluster.submit()
        cluster.advance(0.3)
    cluster.run_until(lambda: min(cluster.heights()) >= 6)
    chains = [[digest for digest, _, _ in app.blocks[:6]] for app in cluster.apps]
    assert all(chain == chains[0] for chain in chains)
    for height, (digest, _, certificate) in enumerate(cluster.apps[1].blocks[:6], start=1):
        verify_certificate(
            certificate, "sec-test", cluster.validators, height=height, block_hash=digest
        )


def test_commit_blocks_arrive_once_per_height_in_order(cluster: Cluster) -> None:
    cluster.submit(3)
    cluster.advance(8.0)
    for actions in cluster.actions:
        heights = [a.seq for batch in actions for a in batch if isinstance(a, CommitBlock)]
        assert heights == list(range(1, len(heights) + 1))
        assert len(heights) >= 4


def test_idle_network_still_commits_heartbeat_blocks(cluster: Cluster) -> None:
    cluster.advance(5.0)
    assert min(cluster.heights()) >= 3
    assert all(r is not None and r.view == 0 for r in cluster.replicas)


def test_persist_precedes_the_first_send_of_every_signed_message(cluster: Cluster) -> None:
    cluster.submit(4)
    cluster.advance(6.0)
    for index, batches in enumerate(cluster.actions):
        persisted: set[bytes] = set()
        for batch in batches:
            for action in batch:
                if isinstance(action, Persist) and isinstance(action.record, SignedRecord):
                    persisted.add(action.record.message.signature)
                elif isinstance(action, Broadcast | Send):
                    message = action.message
                    if message.sender == cluster.signers[index].address:
                        assert message.signature in persisted, f"{message} sent before persisted"


def test_pipelining_stays_within_max_in_flight(cluster: Cluster) -> None:
    primary, _, _ = roles(cluster)
    for _ in range(10):
        cluster.submit()
        proposed = [
            a.message.seq
            for batch in cluster.actions[primary]
            for a in batch
            if isinstance(a, Broadcast) and isinstance(a.message, PrePrepare)
        ]
        decided = cluster.replica(primary).decided_height
        assert max(proposed, default=0) <= decided + cluster.config.max_in_flight
        cluster.advance(0.1)


def test_duplicate_votes_are_counted_once(cluster: Cluster) -> None:
    primary, target, other = roles(cluster)
    third = next(i for i in range(4) if i not in (primary, target, other))
    digest = proposal(cluster).digest
    certify = [sign(cluster, i, Certify(1, digest, Address(bytes(20)), b"")) for i in range(4)]
    cluster.send(target, certify[other])
    with pytest.raises(DuplicateMessage):
        cluster.send(target, certify[other])
    cluster.send(target, certify[third])
    assert cluster.replica(target).decided_height == 0  # two distinct signers, not 2f+1
    cluster.send(target, certify[primary])
    assert cluster.replica(target).decided_height == 1  # a certificate decides the block


# --- rejection rules ------------------------------------------------------------------------------


def test_invalid_signature(cluster: Cluster) -> None:
    _, target, other = roles(cluster)
    vote = sign(cluster, other, Prepare(0, 1, bytes(32), Address(bytes(20)), b""))
    with pytest.raises(InvalidSignature):
        cluster.send(target, dataclasses.replace(vote, signature=bytes(64)))


def test_invalid_signature_for_another_chain(cluster: Cluster) -> None:
    _, target, other = roles(cluster)
    vote = sign(cluster, other, Prepare(0, 1, bytes(32), Address(bytes(20)), b""), "other-chain")
    with pytest.raises(InvalidSignature):
        cluster.send(target, vote)


def test_invalid_sender_not_a_validator(cluster: Cluster) -> None:
    _, target, _ = roles(cluster)
    outsider = Signer(PrivateKey.from_label("outsider"))
    draft = Prepare(0, 1, bytes(32), outsider.address, b"")
    vote = dataclasses.replace(draft, signature=outsider.sign(draft.signing_bytes("sec-test")))
    with pytest.raises(NotAValidator):
        cluster.send(target, vote)


def test_invalid_pre_prepare_from_a_backup(cluster: Cluster) -> None:
    _, target, other = roles(cluster)
    forged = sign(cluster, other, proposal(cluster))
    with pytest.raises(WrongPrimary):
        cluster.send(target, forged)


def test_invalid_prepare_from_the_primary(cluster: Cluster) -> None:
    primary, target, _ = roles(cluster)
    vote = sign(cluster, primary, Prepare(0, 1, bytes(32), Address(bytes(20)), b""))
    with pytest.raises(WrongPrimary):
        cluster.send(target, vote)


def test_invalid_second_vote_is_equivocation(cluster: Cluster) -> None:
    _, target, other = roles(cluster)
    first = sign(cluster, other, Commit(0, 1, bytes(32), Address(bytes(20)), b""))
    second = sign(cluster, other, Commit(0, 1, b"\x01" * 32, Address(bytes(20)), b""))
    cluster.send(target, first)
    with pytest.raises(Equivocation, match="the first counts"):
        cluster.send(target, second)


def test_invalid_forged_second_vote_does_not_blame_the_sender(cluster: Cluster) -> None:
    _, target, other = roles(cluster)
    cluster.send(target, sign(cluster, other, Commit(0, 1, bytes(32), Address(bytes(20)), b"")))
    forged = sign(cluster, other, Commit(0, 1, b"\x01" * 32, Address(bytes(20)), b""))
    with pytest.raises(InvalidSignature):
        cluster.send(target, dataclasses.replace(forged, signature=bytes(64)))


def test_invalid_second_certificate_signature_is_equivocation(cluster: Cluster) -> None:
    _, target, other = roles(cluster)
    cluster.send(target, sign(cluster, other, Certify(1, bytes(32), Address(bytes(20)), b"")))
    with pytest.raises(Equivocation):
        cluster.send(
            target, sign(cluster, other, Certify(1, b"\x02" * 32, Address(bytes(20)), b""))
        )


def test_invalid_view_too_far_ahead(cluster: Cluster) -> None:
    _, target, other = roles(cluster)
    vote = sign(cluster, other, Prepare(99, 1, bytes(32), Address(bytes(20)), b""))
    with pytest.raises(ViewTooFarAhead):
        cluster.send(target, vote)


def test_invalid_height_beyond_the_window(cluster: Cluster) -> None:
    _, target, other = roles(cluster)
    vote = sign(cluster, other, Prepare(0, 500, bytes(32), Address(bytes(20)), b""))
    with pytest.raises(OutOfWindow):
        cluster.send(target, vote)


def test_invalid_old_view_after_a_view_change(cluster: Cluster) -> None:
    primary, target, other = roles(cluster)
    cluster.isolate(primary)
    cluster.advance(8.0)
    assert cluster.replica(target).view >= 1
    stale = sign(cluster, other, Prepare(0, 30, bytes(32), Address(bytes(20)), b""))
    with pytest.raises(StaleMessage):
        cluster.send(target, stale)


def test_future_messages_are_buffered_within_caps(cluster: Cluster) -> None:
    _, target, other = roles(cluster)
    cap = cluster.config.max_future_per_peer
    for view in range(1, cap + 1):
        vote = sign(cluster, other, Commit(view, 1, bytes(32), Address(bytes(20)), b""))
        assert cluster.send(target, vote) is not None
    usage = cluster.replica(target).resource_usage()
    assert usage.buffered == cap == usage.buffered_largest_share
    with pytest.raises(BufferFull):
        cluster.send(target, sign(cluster, other, Commit(1, 2, bytes(32), Address(bytes(20)), b"")))
    assert cluster.replica(target).resource_usage().buffered == cap


def test_invalid_payload_too_large(cluster: Cluster) -> None:
    _, target, _ = roles(cluster)
    big = dataclasses.replace(
        proposal(cluster), payload=bytes(cluster.config.max_payload_bytes + 1)
    )
    with pytest.raises(MessageTooLarge):
        cluster.send(target, big)


def test_invalid_block_rejected_by_the_application(cluster: Cluster) -> None:
    primary, target, _ = roles(cluster)
    digest, payload = block()
    draft = PrePrepare(0, 1, digest, GENESIS_DIGEST, payload + b"!", Address(bytes(20)), b"")
    with pytest.raises(RejectedProposal, match="rejected"):
        cluster.send(target, sign(cluster, primary, draft))


def test_invalid_parent(cluster: Cluster) -> None:
    primary, target, _ = roles(cluster)
    digest, payload = block(parent=b"\x07" * 32)
    draft = PrePrepare(0, 1, digest, b"\x07" * 32, payload, Address(bytes(20)), b"")
    with pytest.raises(RejectedProposal, match="parent"):
        cluster.send(target, sign(cluster, primary, draft))


def test_invalid_checkpoint_height(cluster: Cluster) -> None:
    _, target, other = roles(cluster)
    checkpoint = sign(cluster, other, Checkpoint(3, bytes(32), Address(bytes(20)), b""))
    with pytest.raises(MalformedMessage, match="not a checkpoint height"):
        cluster.send(target, checkpoint)


def test_invalid_malformed_bytes() -> None:
    with pytest.raises(MalformedMessage):
        decode_message(b"\x93\xa7prepare\x01\x02")


def test_invalid_own_key_from_the_network(cluster: Cluster) -> None:
    _, target, _ = roles(cluster)
    echo = sign(cluster, target, Prepare(0, 1, bytes(32), Address(bytes(20)), b""))
    with pytest.raises(DuplicateMessage, match="own key"):
        cluster.send(target, echo)


def test_rejected_input_leaves_the_state_unchanged(cluster: Cluster) -> None:
    primary, target, _ = roles(cluster)
    replica = cluster.replica(target)
    before = (replica.view, replica.height, replica.resource_usage(), replica.decided_height)
    digest, _ = block()
    bad = sign(
        cluster, primary, PrePrepare(0, 1, digest, GENESIS_DIGEST, b"x", Address(bytes(20)), b"")
    )
    with pytest.raises(RejectedProposal):
        cluster.send(target, bad)
    assert (
        replica.view,
        replica.height,
        replica.resource_usage(),
        replica.decided_height,
    ) == before
    actions = cluster.send(target, proposal(cluster))  # the valid proposal still works
    assert any(isinstance(a, Broadcast) and isinstance(a.message, Prepare) for a in actions)


def test_equivocating_primary_triggers_a_view_change(cluster: Cluster) -> None:
    primary, target, _ = roles(cluster)
    cluster.send(target, proposal(cluster, tag=b"one"))
    actions = cluster.send(target, proposal(cluster, tag=b"two"))
    assert any(
        isinstance(a, FaultDetected) and a.validator == cluster.signers[primary].address
        for a in actions
    )
    assert any(isinstance(a, Broadcast) and isinstance(a.message, ViewChange) for a in actions)
    assert cluster.replica(target).view == 1
