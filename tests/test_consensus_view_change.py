"""View change: the new-view plan (ordered prefix), liveness under a dead primary, and the
rules for rejecting forged view-change and new-view messages."""

from __future__ import annotations

import dataclasses

import pytest

from consensus.actions import Broadcast
from consensus.errors import InvalidNewView, InvalidProof, WrongPrimary
from consensus.messages import (
    Certify,
    CheckpointProof,
    Commit,
    NewView,
    PreparedProof,
    PrePrepare,
    ViewChange,
)
from consensus.proofs import primary_of
from consensus.sim.cluster import Cluster
from consensus.view_change import plan_new_view
from ledger.certificates import CommitCertificate
from ledger.keys import Address

from .test_consensus_replica import block, sign

D = [bytes([i]) * 32 for i in range(10)]
"""D[0] is the checkpoint block; D[i] a block at height i."""


def proof(seq: int, view: int, digest: bytes, parent: bytes) -> PreparedProof:
    return PreparedProof(view, seq, digest, parent, Address(bytes(20)), bytes(64), ())


def change(
    *proofs: PreparedProof, certificates: tuple[CommitCertificate, ...] = (), at: int = 0
) -> ViewChange:
    checkpoint = CheckpointProof(at, D[at], ())
    return ViewChange(5, checkpoint, proofs, certificates, (), Address(bytes(20)), bytes(64))


def no_fence(height: int) -> int | None:
    return None


def plan(
    *changes: ViewChange, window: int = 16, fence: int | None = None
) -> list[tuple[int, bytes, str]]:
    result = plan_new_view(changes, window, (lambda h: fence) if fence else no_fence)
    return [
        (e.seq, e.digest, "decided" if e.certificate else "re-proposed") for e in result.entries
    ]


def test_plan_takes_the_highest_view_per_height() -> None:
    old = change(proof(1, 1, D[1], D[0]), proof(2, 1, D[2], D[1]))
    new = change(proof(1, 3, D[1], D[0]), proof(2, 3, D[5], D[1]))
    assert plan(old, new) == [(1, D[1], "re-proposed"), (2, D[5], "re-proposed")]


def test_plan_prefers_a_certificate_to_any_proof() -> None:
    certified = change(certificates=(CommitCertificate(1, D[7], ()),))
    prepared = change(proof(1, 4, D[1], D[0]))
    assert plan(prepared, certified)[0] == (1, D[7], "decided")


def test_plan_stops_at_the_first_gap() -> None:
    gap = change(proof(1, 1, D[1], D[0]), proof(3, 1, D[3], D[2]))
    assert plan(gap) == [(1, D[1], "re-proposed")]


def test_plan_stops_where_the_chain_breaks() -> None:
    broken = change(proof(1, 2, D[1], D[0]), proof(2, 2, D[2], D[9]))
    assert plan(broken) == [(1, D[1], "re-proposed")]


def test_plan_starts_at_the_highest_checkpoint() -> None:
    behind = change(proof(1, 1, D[1], D[0]), proof(2, 1, D[2], D[1]))
    ahead = change(proof(3, 1, D[3], D[2]), at=2)
    assert plan(behind, ahead) == [(3, D[3], "re-proposed")]


def test_plan_respects_window_and_epoch_fence() -> None:
    chain = change(*(proof(i, 1, D[i], D[i - 1]) for i in range(1, 6)))
    assert len(plan(chain, window=3)) == 3
    assert len(plan(chain, fence=3)) == 2  # a new validator set takes over at height 3


# --- live view changes ----------------------------------------------------------------------------


def test_silent_primary_is_replaced_and_rejoins() -> None:
    cluster = Cluster(4)
    cluster.start()
    primary = cluster.primary_index()
    cluster.isolate(primary)
    cluster.submit(2)
    others = [i for i in range(4) if i != primary]
    cluster.run_until(lambda: min(cluster.heights()[i] for i in others) >= 3, timeout=40)
    assert all(cluster.replica(i).view >= 1 for i in others)
    cluster.heal()
    cluster.run_until(lambda: cluster.heights()[primary] >= max(cluster.heights()) > 5, timeout=40)
    assert len({app.blocks[2][0] for app in cluster.apps}) == 1


def test_decided_block_survives_the_view_change() -> None:
    cluster = Cluster(4)
    cluster.start()
    primary = cluster.primary_index()
    witness = next(i for i in range(4) if i != primary)
    # Commits reach only the witness; certificate signatures reach nobody: only it decides.
    cluster.link = lambda s, t, m: (
        not (isinstance(m, Commit) and t != witness) and not isinstance(m, Certify)
    )
    cluster.submit()
    cluster.advance(0.5)
    decided = cluster.replica(witness).decided_height
    assert decided >= 1 and max(cluster.heights()) == 0
    cluster.isolate(primary)
    cluster.run_until(lambda: min(h for i, h in enumerate(cluster.heights()) if i != primary) >= 3)
    block_one = {app.blocks[0][0] for i, app in enumerate(cluster.apps) if i != primary}
    assert len(block_one) == 1
    payload = [
        a.message
        for batch in cluster.actions[primary]
        for a in batch
        if isinstance(a, Broadcast) and isinstance(a.message, PrePrepare)
    ]
    assert block_one == {payload[0].digest}  # the block decided in view 0, re-proposed


def test_f_plus_one_view_changes_pull_a_replica_along() -> None:
    cluster = Cluster(4)
    cluster.start()
    primary = cluster.primary_index()
    target, *rest = [i for i in range(4) if i != primary]
    for index in rest:  # two replicas time out early; f + 1 = 2 view changes
        cluster.apply(index, cluster.replica(index).on_tick(cluster.now + 100))
    cluster.deliver()
    assert cluster.replica(target).view == 1
    sent = [a.message for b in cluster.actions[target] for a in b if isinstance(a, Broadcast)]
    assert any(isinstance(m, ViewChange) and m.view == 1 for m in sent)


# --- forged view changes and new views -----------------------------------------------------------


@pytest.fixture
def changed() -> tuple[Cluster, int, NewView]:
    """n=7: the primary and one backup (the target) cut off; the other five change view."""
    cluster = Cluster(7)
    cluster.start()
    primary = cluster.primary_index()
    target = next(i for i in range(7) if i != primary)
    cluster.isolate(primary, target)
    cluster.run_until(
        lambda: any(
            isinstance(a.message, NewView)
            for b in cluster.actions[
                cluster.index_of(
                    cluster.replica(
                        (primary + 2) % 7 if (primary + 2) % 7 != target else (primary + 3) % 7
                    ).primary
                )
            ]
            for a in b
            if isinstance(a, Broadcast)
        ),
        timeout=30,
    )
    new_view = next(
        a.message
        for batches in cluster.actions
        for b in batches
        for a in b
        if isinstance(a, Broadcast) and isinstance(a.message, NewView)
    )
    return cluster, target, new_view


def test_a_valid_new_view_is_accepted(changed: tuple[Cluster, int, NewView]) -> None:
    cluster, target, new_view = changed
    cluster.send(target, new_view)
    assert cluster.replica(target).view == new_view.view
    assert not cluster.replica(target).in_view_change


def test_invalid_new_view_from_a_non_primary(changed: tuple[Cluster, int, NewView]) -> None:
    cluster, target, new_view = changed
    impostor = next(
        i for i in range(7) if cluster.signers[i].address not in (new_view.sender,) and i != target
    )
    with pytest.raises(WrongPrimary):
        cluster.send(target, sign(cluster, impostor, new_view))


def test_invalid_new_view_with_too_few_view_changes(changed: tuple[Cluster, int, NewView]) -> None:
    cluster, target, new_view = changed
    primary = cluster.index_of(new_view.sender)
    short = dataclasses.replace(new_view, view_changes=new_view.view_changes[:4])
    with pytest.raises(InvalidNewView, match="quorum"):
        cluster.send(target, sign(cluster, primary, short))


def test_invalid_new_view_with_an_extra_proposal(changed: tuple[Cluster, int, NewView]) -> None:
    cluster, target, new_view = changed
    primary = cluster.index_of(new_view.sender)
    digest, payload = block(seq=1)
    extra = sign(
        cluster,
        primary,
        PrePrepare(new_view.view, 1, digest, D[0], payload, Address(bytes(20)), b""),
    )
    padded = dataclasses.replace(new_view, pre_prepares=(*new_view.pre_prepares, extra))
    with pytest.raises(InvalidNewView, match="re-proposes"):
        cluster.send(target, sign(cluster, primary, padded))


def test_invalid_view_change_with_a_forged_prepared_proof(
    changed: tuple[Cluster, int, NewView],
) -> None:
    cluster, target, new_view = changed
    vc = new_view.view_changes[0]
    sender = cluster.index_of(vc.sender)
    forged = proof(1, 0, D[3], cluster.genesis_digest())
    forged = dataclasses.replace(forged, primary=primary_of(cluster.validators, 0))
    bad = sign(
        cluster, sender, dataclasses.replace(vc, view=vc.view + 1, prepared=(forged,), payloads=())
    )
    with pytest.raises(InvalidProof, match="pre-prepare signature"):
        cluster.send(target, bad)


def test_invalid_view_change_with_a_forged_checkpoint(
    changed: tuple[Cluster, int, NewView],
) -> None:
    cluster, target, new_view = changed
    vc = new_view.view_changes[0]
    sender = cluster.index_of(vc.sender)
    unsigned = CheckpointProof(4, D[4], ())
    bad = sign(
        cluster,
        sender,
        dataclasses.replace(
            vc, view=vc.view + 1, checkpoint=unsigned, prepared=(), certificates=()
        ),
    )
    with pytest.raises(InvalidProof, match="checkpoint"):
        cluster.send(target, bad)
