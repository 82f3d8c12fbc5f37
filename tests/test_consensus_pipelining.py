"""Pipelined proposals: a full block goes out at once, a trickle waits `batch_wait`, the
primary's in-flight window and a backup's watermark window bound how far ahead anyone goes, and
the node's ledger app tells a full block from ready transactions not yet in a block."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from consensus.actions import Broadcast
from consensus.errors import OutOfWindow
from consensus.messages import Checkpoint, Commit, Prepare, PrePrepare
from consensus.sim.cluster import Cluster, cluster_config
from consensus.sim.toychain import GENESIS_DIGEST, ToyBlock, block_digest
from ledger.transactions import SignedTransaction, Transfer, sign_transaction
from secnode.network.devnet import DEV_CHAIN_ID, dev_account_key
from secnode.runtime.node import Node
from tests.nodekit import make_network, open_node


@pytest.fixture
def cluster() -> Cluster:
    c = Cluster(4)
    c.start()
    return c


def block_size(cluster: Cluster) -> int:
    return cluster.apps[0].max_batch


def proposals(cluster: Cluster, index: int) -> list[tuple[int, int]]:
    """(height, transactions) of the PRE-PREPAREs node `index` broadcast, in order (a re-sent
    one once)."""
    seen: dict[PrePrepare, tuple[int, int]] = {}
    for batch in cluster.actions[index]:
        for a in batch:
            if isinstance(a, Broadcast) and isinstance(a.message, PrePrepare):
                m = a.message
                seen.setdefault(m, (m.seq, len(ToyBlock.decode(m.payload).txs)))
    return list(seen.values())


def test_a_full_block_is_proposed_at_once(cluster: Cluster) -> None:
    primary = cluster.primary_index()
    cluster.submit(block_size(cluster))  # no time passes: batch_wait is not up
    assert proposals(cluster, primary) == [(1, block_size(cluster))]
    assert cluster.replica(primary).stats["full_block_early"] == 1
    assert min(cluster.heights()) == 1


def test_a_trickle_waits_batch_wait(cluster: Cluster) -> None:
    primary = cluster.primary_index()
    wait = cluster.config.batch_wait
    cluster.submit(block_size(cluster) - 1)
    cluster.advance(wait / 2)
    assert proposals(cluster, primary) == []
    cluster.advance(wait / 2)
    assert proposals(cluster, primary) == [(1, block_size(cluster) - 1)]
    assert "full_block_early" not in cluster.replica(primary).stats


def test_full_blocks_stay_within_the_in_flight_window(cluster: Cluster) -> None:
    primary = cluster.primary_index()
    depth = cluster.config.max_in_flight
    blocks = 3 * depth
    cluster.link = lambda source, target, message: not isinstance(message, Commit)  # none decide
    cluster.submit(blocks * block_size(cluster))
    cluster.advance(2 * cluster.config.batch_wait)
    full = block_size(cluster)
    assert proposals(cluster, primary) == [(seq, full) for seq in range(1, depth + 1)]
    assert cluster.replica(primary).decided_height == 0
    cluster.heal()  # the COMMITs are re-sent; each decision lets one more block go
    cluster.run_until(lambda: min(cluster.heights()) >= blocks)
    assert proposals(cluster, primary)[:blocks] == [(seq, full) for seq in range(1, blocks + 1)]
    assert all(len(app.committed_txs()) == blocks * full for app in cluster.apps)


def _chained_proposals(cluster: Cluster, primary: int, last: int) -> list[PrePrepare]:
    """Signed pre-prepares of view 0 for heights 1..last, each on the one before."""
    signer = cluster.signers[primary]
    parent, messages = GENESIS_DIGEST, []
    for seq in range(1, last + 1):
        payload = ToyBlock(seq, parent, 10 * seq, b"p", (seq,), ()).encode()
        digest = block_digest(payload)
        draft = PrePrepare(0, seq, digest, parent, payload, signer.address, b"")
        signature = signer.sign(draft.signing_bytes(cluster.config.chain_id))
        messages.append(dataclasses.replace(draft, signature=signature))
        parent = digest
    return messages


def _prepared_heights(cluster: Cluster, index: int) -> list[int]:
    return [
        a.message.seq
        for batch in cluster.actions[index]
        for a in batch
        if isinstance(a, Broadcast) and isinstance(a.message, Prepare)
    ]


def test_a_backup_never_accepts_beyond_the_watermark_window() -> None:
    # The validator-change horizon as far out as the window, so the window is what binds.
    config = cluster_config(min_validator_change_delay=8, watermark_window=8)
    cluster = Cluster(4, config=config)
    cluster.start()
    primary = cluster.primary_index()
    backup = next(i for i in range(cluster.size) if i != primary)
    window = config.watermark_window
    chain = _chained_proposals(cluster, primary, window + 1)
    for message in chain[:window]:
        cluster.send(backup, message)  # queued replies stay undelivered: nothing decides
    assert _prepared_heights(cluster, backup) == list(range(1, window + 1))
    before = cluster.replica(backup).resource_usage()
    with pytest.raises(OutOfWindow):
        cluster.send(backup, chain[window])
    assert _prepared_heights(cluster, backup) == list(range(1, window + 1))
    assert cluster.replica(backup).resource_usage() == before


def _transfer(node: Node, nonce: int) -> SignedTransaction:
    return sign_transaction(
        dev_account_key("buyer1"),
        DEV_CHAIN_ID,
        nonce,
        Transfer(dev_account_key("sharer1").address, 1),
        genesis_hash=node.genesis.document_hash(),
    )


def test_the_ledger_app_counts_ready_transactions_not_in_flight(tmp_path: Path) -> None:
    node = open_node(make_network(tmp_path), "node0")
    try:
        app, admit = node.app, node.mempool.admit
        app.max_block_transactions = 3
        genesis = app.head.hash()
        for nonce in (0, 1, 4):  # 4 is gapped: it cannot execute yet, so it does not count
            admit(_transfer(node, nonce), node._lookup)
        assert not app.full_block_ready(1, genesis)
        admit(_transfer(node, 2), node._lookup)
        assert app.full_block_ready(1, genesis)
        first = app.make_proposal(1, genesis, node.clock(), required=False)
        assert first is not None
        assert not app.full_block_ready(2, first.digest)  # its three are in flight
        admit(_transfer(node, 3), node._lookup)  # fills the gap: 3 and 4 are ready
        assert not app.full_block_ready(2, first.digest)
        admit(_transfer(node, 5), node._lookup)
        assert app.full_block_ready(2, first.digest)
        assert not app.full_block_ready(2, bytes(32))  # a parent it does not hold
    finally:
        node.store.close()


def test_a_checkpoint_of_a_member_unknown_beyond_the_horizon_is_not_blamed() -> None:
    # Found by `sec sim` at saturation (seed 7913, validators, n=7): the chain ran past a set
    # change while one replica was still at height 0; a new member's CHECKPOINT beyond that
    # replica's horizon must be dropped as early, not charged to an honest validator.
    cluster = Cluster(4, spare=1)
    cluster.start()
    newcomer, target = 4, 0
    beyond = cluster.config.min_validator_change_delay + cluster.config.checkpoint_interval
    draft = Checkpoint(beyond, bytes(32), cluster.signers[newcomer].address, b"")
    signature = cluster.signers[newcomer].sign(draft.signing_bytes(cluster.config.chain_id))
    before = cluster.replica(target).resource_usage()
    with pytest.raises(OutOfWindow) as raised:
        cluster.send(target, dataclasses.replace(draft, signature=signature))
    assert raised.value.benign
    assert cluster.replica(target).resource_usage() == before
