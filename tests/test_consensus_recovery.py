"""Checkpoints and garbage collection, catch-up with certificate checks, crash recovery without
equivocation, and validator-set changes at their effective height (real Ed25519)."""

from __future__ import annotations

import pytest

from consensus.actions import Broadcast, DiscardRecords, RequestCatchUp, Send
from consensus.errors import InvalidProof, OutOfWindow, StaleMessage, ValidatorScheduleError
from consensus.messages import (
    Certify,
    CheckpointProof,
    Commit,
    Prepare,
    PreparedProof,
    PrePrepare,
    ViewChange,
)
from consensus.records import SignedRecord
from consensus.sim.cluster import Cluster
from consensus.state import signed_key
from ledger.certificates import CommitCertificate, CommitSignature, verify_certificate
from ledger.keys import Address

from .test_consensus_replica import proposal, roles, sign


def grow(cluster: Cluster, height: int, among: list[int] | None = None) -> None:
    members = among if among is not None else list(range(cluster.size))
    cluster.run_until(lambda: min(cluster.heights()[i] for i in members) >= height, timeout=120)


# --- checkpoints ----------------------------------------------------------------------------------


def test_checkpoints_become_stable_and_garbage_is_collected() -> None:
    cluster = Cluster(4)
    cluster.start()
    cluster.submit(3)
    grow(cluster, 14)
    window = cluster.config.watermark_window
    for index in range(4):
        replica = cluster.replica(index)
        assert replica.stable_checkpoint >= 8
        assert replica.resource_usage().slots <= window
        stable = replica.stable_checkpoint
        for record in cluster.records[index]:
            if isinstance(record, SignedRecord):
                kind, _, seq = signed_key(record.message)
                assert seq > stable or kind in ("checkpoint", "view-change", "new-view")
        discards = [a for b in cluster.actions[index] for a in b if isinstance(a, DiscardRecords)]
        assert discards and discards[-1].through_seq == stable


# --- catch-up ----------------------------------------------------------------------------------


def source(cluster: Cluster, laggard: int) -> list[tuple[bytes, bytes, CommitCertificate]]:
    """The stored chain of a replica that is not the laggard."""
    return cluster.apps[(laggard + 1) % 4].blocks


def lagging_cluster() -> tuple[Cluster, int]:
    """A replica cut off while the others go three checkpoints ahead, then reconnected."""
    cluster = Cluster(4)
    cluster.start()
    primary = cluster.primary_index()
    laggard = next(i for i in range(4) if i != primary)
    cluster.serve_catch_up = False
    cluster.isolate(laggard)
    cluster.submit(2)
    grow(cluster, 14, [i for i in range(4) if i != laggard])
    cluster.heal()
    cluster.run_until(lambda: bool(cluster.catch_up[laggard]), timeout=20)
    return cluster, laggard


def test_lagging_replica_catches_up_with_certified_blocks() -> None:
    cluster, laggard = lagging_cluster()
    request = cluster.catch_up[laggard][-1]
    assert isinstance(request, RequestCatchUp) and request.from_height == 1
    assert request.to_height >= 8 and len(request.peers) >= 2  # f+1 claimed it
    source = cluster.apps[cluster.index_of(request.peers[0])]
    for height in range(1, request.to_height + 1):
        cluster.apply(
            laggard,
            cluster.replica(laggard).on_catch_up_block(
                height, *source.blocks[height - 1], cluster.now
            ),
        )
    assert cluster.apps[laggard].height >= request.to_height
    cluster.serve_catch_up = True
    cluster.submit(2)
    cluster.run_until(lambda: min(cluster.heights()) >= 18)
    assert len({app.blocks[17][0] for app in cluster.apps}) == 1


def test_invalid_catch_up_forged_certificate() -> None:
    cluster, laggard = lagging_cluster()
    digest, payload, certificate = source(cluster, laggard)[0]
    forged = CommitCertificate(
        1, digest, tuple(CommitSignature(s.validator, bytes(64)) for s in certificate.signatures)
    )
    with pytest.raises(InvalidProof, match="does not verify"):
        cluster.replica(laggard).on_catch_up_block(1, digest, payload, forged, cluster.now)
    assert cluster.apps[laggard].height == 0
    actions = cluster.replica(laggard).on_catch_up_block(
        1, digest, payload, certificate, cluster.now
    )
    cluster.apply(laggard, actions)
    assert cluster.apps[laggard].height == 1


def test_invalid_catch_up_certificate_of_too_few_validators() -> None:
    cluster, laggard = lagging_cluster()
    digest, payload, certificate = source(cluster, laggard)[0]
    thin = CommitCertificate(1, digest, certificate.signatures[:2])
    with pytest.raises(InvalidProof, match="quorum"):
        cluster.replica(laggard).on_catch_up_block(1, digest, payload, thin, cluster.now)


def test_invalid_catch_up_payload_that_is_not_the_certified_block() -> None:
    cluster, laggard = lagging_cluster()
    digest, _, certificate = source(cluster, laggard)[0]
    other_payload = source(cluster, laggard)[1][1]
    with pytest.raises(InvalidProof, match="payload"):
        cluster.replica(laggard).on_catch_up_block(
            1, digest, other_payload, certificate, cluster.now
        )


def test_invalid_catch_up_certificate_for_another_height() -> None:
    cluster, laggard = lagging_cluster()
    digest, payload, _ = source(cluster, laggard)[0]
    certificate = source(cluster, laggard)[1][2]
    with pytest.raises(InvalidProof, match="height"):
        cluster.replica(laggard).on_catch_up_block(1, digest, payload, certificate, cluster.now)


def test_catch_up_of_an_already_delivered_block_is_stale() -> None:
    cluster = Cluster(4)
    cluster.start()
    grow(cluster, 2)
    with pytest.raises(StaleMessage):
        cluster.replica(1).on_catch_up_block(1, *cluster.apps[0].blocks[0], cluster.now)


# --- crash recovery -------------------------------------------------------------------------------


def test_restart_never_signs_a_conflicting_prepare() -> None:
    cluster = Cluster(4)
    cluster.start()
    _, target, _ = roles(cluster)
    cluster.send(target, proposal(cluster, tag=b"first"))
    cluster.crash(target)
    cluster.restart(target)
    equivocation = proposal(cluster, tag=b"second")  # validly signed by the primary
    actions = cluster.send(target, equivocation)
    prepares = [a for a in actions if isinstance(a, Broadcast) and isinstance(a.message, Prepare)]
    assert not prepares
    assert cluster.replica(target).stats.get("refused_conflicting_signature") == 1


def test_restart_keeps_its_prepared_proof_for_the_view_change() -> None:
    cluster = Cluster(4)
    cluster.start()
    _, target, _ = roles(cluster)
    # Commits never arrive: every replica prepares and commits block 1, nobody decides it.
    cluster.link = lambda s, t, m: not isinstance(m, Commit)
    cluster.submit()
    cluster.advance(0.3)
    sent = [a.message for b in cluster.actions[target] for a in b if isinstance(a, Broadcast)]
    committed = [m for m in sent if isinstance(m, Commit)]
    assert committed and cluster.apps[target].height == 0
    cluster.crash(target)
    cluster.restart(target)
    actions = cluster.replica(target).on_tick(cluster.now + 100)  # time out: view change
    change = next(
        a.message for a in actions if isinstance(a, Broadcast) and isinstance(a.message, ViewChange)
    )
    assert [p.digest for p in change.prepared][:1] == [committed[0].digest]


def test_restart_resumes_a_view_change() -> None:
    cluster = Cluster(4)
    cluster.start()
    primary, target, _ = roles(cluster)
    cluster.isolate(primary, target)  # no quorum for the others: the view change hangs
    cluster.advance(5.0)
    assert cluster.replica(target).in_view_change
    view = cluster.replica(target).view
    cluster.crash(target)
    cluster.restart(target)
    assert cluster.replica(target).in_view_change and cluster.replica(target).view == view


def test_crashes_and_restarts_never_make_a_replica_equivocate() -> None:
    cluster = Cluster(4)
    cluster.start()
    for round_number in range(6):
        cluster.submit(2)
        cluster.advance(1.0)
        victim = round_number % 4
        cluster.crash(victim)
        cluster.advance(1.5)
        cluster.restart(victim)
    cluster.submit()
    cluster.run_until(lambda: len(set(cluster.heights())) == 1 and min(cluster.heights()) > 8)
    signatures: dict[tuple[bytes, str, int, int], bytes] = {}
    for batches in cluster.actions:
        for batch in batches:
            for action in batch:
                if isinstance(action, Broadcast):
                    m = action.message
                    key = (m.sender, *signed_key(m))
                    assert signatures.setdefault(key, m.signature) == m.signature, key


# --- validator set changes -----------------------------------------------------------------------


def test_validator_set_change_takes_effect_at_its_height() -> None:
    cluster = Cluster(4, spare=1)
    cluster.start()
    leaving = (cluster.primary_index() + 1) % 4
    new_keys = tuple(cluster.signers[i].public_key for i in range(5) if i != leaving)
    for app in cluster.apps:
        app.planned_changes[2] = new_keys
    cluster.submit()
    grow(cluster, 16)
    effective = 2 + cluster.config.min_validator_change_delay
    old, new = cluster.validators, cluster.replica(4).schedule.at(effective)
    assert cluster.signers[4].address in new and cluster.signers[leaving].address not in new
    newcomer_signed = False
    for height, (digest, _, certificate) in enumerate(cluster.apps[4].blocks[:16], start=1):
        validators = old if height < effective else new
        verify_certificate(certificate, "sec-test", validators, height=height, block_hash=digest)
        signers = {s.validator for s in certificate.signatures}
        assert all(signer in validators for signer in signers)
        newcomer_signed |= cluster.signers[4].address in signers
    assert newcomer_signed
    assert len({app.blocks[15][0] for app in cluster.apps}) == 1
    assert all(cluster.replica(i).stable_checkpoint >= effective - 1 for i in range(5))


def test_invalid_validator_set_reports() -> None:
    cluster = Cluster(4)
    cluster.start()
    grow(cluster, 2)
    replica = cluster.replica(0)
    height = replica.height
    with pytest.raises(ValidatorScheduleError, match="before that block"):
        replica.on_validator_set(height + 1, height + 20, cluster.validators, cluster.now)
    with pytest.raises(ValidatorScheduleError, match="less than"):
        replica.on_validator_set(height, height + 1, cluster.validators, cluster.now)
    with pytest.raises(ValidatorScheduleError, match="processed with the old set"):
        replica.on_validator_set(
            1, 1 + cluster.config.min_validator_change_delay, cluster.validators, cluster.now
        )


def test_pre_prepare_round_trips_through_records() -> None:
    """What the primary persisted is enough to re-send the very same proposal after a restart."""
    cluster = Cluster(4)
    cluster.start()
    primary = cluster.primary_index()
    cluster.submit()
    cluster.advance(0.3)
    sent = [
        r.message
        for r in cluster.records[primary]
        if isinstance(r, SignedRecord) and isinstance(r.message, PrePrepare)
    ]
    assert sent
    cluster.crash(primary)
    cluster.restart(primary)
    resent = [
        a.message
        for b in cluster.actions[primary][-2:]
        for a in b
        if isinstance(a, Broadcast) and isinstance(a.message, PrePrepare)
    ]
    assert all(m in sent for m in resent)
    assert Address(cluster.signers[primary].address) == cluster.replica(primary).address


# --- helping replicas that are behind ------------------------------------------------------------


def test_a_stale_certificate_signature_is_answered_with_ours() -> None:
    cluster = Cluster(4)
    cluster.start()
    grow(cluster, 2)
    laggard, helper = 0, 1
    their_certify = next(
        a.message
        for batch in cluster.actions[laggard]
        for a in batch
        if isinstance(a, Broadcast) and isinstance(a.message, Certify) and a.message.seq == 1
    )
    with pytest.raises(StaleMessage):
        cluster.replica(helper).on_message(their_certify, cluster.now)
    reply = cluster.replica(helper).on_tick(cluster.now)
    sent = [a for a in reply if isinstance(a, Send) and a.to == cluster.signers[laggard].address]
    assert [type(a.message).__name__ for a in sent] == ["Certify"]
    assert all(isinstance(a.message, Certify) and a.message.seq == 1 for a in sent)


def test_invalid_view_change_beyond_the_known_validators_is_benign() -> None:
    cluster = Cluster(4)
    cluster.start()
    horizon = cluster.replica(0).height + cluster.config.min_validator_change_delay
    far = PreparedProof(0, horizon + 1, bytes(32), bytes(32), Address(bytes(20)), bytes(64), ())
    genesis = CheckpointProof(0, cluster.genesis_digest(), ())
    change = ViewChange(1, genesis, (far,), (), (), Address(bytes(20)), b"")
    with pytest.raises(OutOfWindow) as error:
        cluster.send(0, sign(cluster, 1, change))
    assert error.value.benign
