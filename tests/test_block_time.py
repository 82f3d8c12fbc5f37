"""Block time bounds (docs/consensus.md, "Block time bounds"): a fresh proposal's time lies
within `max_clock_drift_s` of the validating backup's clock on both sides; a block re-proposed
after a view change is exempt from the lower bound."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from consensus.actions import Broadcast
from consensus.errors import InvalidProposal
from consensus.messages import Certify, Commit, Prepare, PrePrepare, encode_message
from consensus.sim.cluster import Cluster
from consensus.sim.toychain import ToyBlock
from contracts import TX_TYPES
from contracts.orders import CANCELLED, OrderCreate, OrderItem, get_order
from ledger.blocks import Block, decode_block
from ledger.transactions import sign_transaction
from secnode.network.devnet import DEV_CHAIN_ID, DEV_GENESIS_TIME_MS, dev_account_key
from tests.nodekit import (
    NAMES,
    ManualClock,
    Mesh,
    ScriptedPeers,
    make_network,
    open_node,
    primary_name,
    public_key,
    start_driver,
)


def test_reproposal_older_than_the_drift_is_still_ordered() -> None:
    """Block 1 prepares everywhere in view 0 but commits nowhere; the primary then goes
    silent. The next primary re-proposes it after the view change, later than the drift allows
    for a fresh block; the backups must still order it (old rule kept: re-proposals exempt)."""
    cluster = Cluster(4)
    cluster.start()
    primary = cluster.primary_index()
    cluster.link = lambda source, target, message: not isinstance(message, Commit | Certify)
    cluster.submit()
    cluster.advance(0.5)
    proposed = [
        a.message
        for batch in cluster.actions[primary]
        for a in batch
        if isinstance(a, Broadcast) and isinstance(a.message, PrePrepare)
    ]
    assert proposed and max(cluster.heights()) == 0
    others = [i for i in range(4) if i != primary]
    cluster.link = lambda source, target, message: (
        primary not in (source, target) and not isinstance(message, Commit | Certify)
    )
    cluster.run_until(
        lambda: all(
            cluster.replica(i).view >= 1 and not cluster.replica(i).in_view_change for i in others
        ),
        timeout=40,
    )
    assert max(cluster.heights()) == 0
    entered = cluster.now
    cluster.isolate(primary)
    cluster.run_until(lambda: min(cluster.heights()[i] for i in others) >= 1, timeout=40)
    assert {cluster.apps[i].blocks[0][0] for i in others} == {proposed[0].digest}
    stamped = ToyBlock.decode(proposed[0].payload).timestamp_ms / 1000
    drift = cluster.apps[others[0]].max_drift_ms / 1000
    assert entered - stamped > drift, "premise: re-proposed later than a fresh block could be"


# --- real nodes: LedgerApp behind a real replica and driver --------------------------------------


async def offer_first_block(
    network: Path, primary_clock: ManualClock, backup_clock: ManualClock
) -> tuple[Block, ScriptedPeers]:
    """The primary proposes block 1 on its clock; a backup on its own clock receives it.
    Returns the block and what the backup sent and charged."""
    primary = primary_name(network)
    backup = next(n for n in NAMES if n != primary)
    proposer = open_node(network, primary, clock=primary_clock)
    receiver = open_node(network, backup, clock=backup_clock)
    sent, received = ScriptedPeers(), ScriptedPeers()
    try:
        async with asyncio.TaskGroup() as tasks:
            proposing, _ = start_driver(proposer, sent, tasks)
            receiving, _ = start_driver(receiver, received, tasks)
            primary_clock.advance(proposer.config.consensus.empty_block_interval_s)
            proposing.feed(proposer.replica.on_tick)
            (pre_prepare,) = [m for m in sent.messages() if isinstance(m, PrePrepare)]
            receiving.on_consensus_bytes(public_key(primary), encode_message(pre_prepare))
            proposing.stop()
            receiving.stop()
    finally:
        proposer.store.close()
        receiver.store.close()
    return decode_block(pre_prepare.payload, TX_TYPES), received


@pytest.mark.asyncio
async def test_invalid_fresh_block_time_far_behind_the_backup_clock(tmp_path: Path) -> None:
    """Finding 3: a primary stamping `parent + 1 ms` (its clock frozen at genesis) while the
    backup's clock is months ahead. Old code prepared it; now it is refused, but not charged:
    a primary whose clock is wrong is not a liar (finding 14's rule), and its view ends anyway."""
    network = make_network(tmp_path)
    genesis_s = DEV_GENESIS_TIME_MS / 1000
    frozen = ManualClock(genesis_s - 1.0)  # one interval later it reads exactly genesis time
    block, received = await offer_first_block(network, frozen, ManualClock(time.time()))
    assert block.header.timestamp_ms == DEV_GENESIS_TIME_MS + 1
    assert not [m for m in received.messages() if isinstance(m, Prepare)]
    assert received.penalties == []


@pytest.mark.asyncio
async def test_primary_lagging_less_than_the_drift_still_gets_blocks_through(
    tmp_path: Path,
) -> None:
    """Liveness: a primary whose clock is 9 s behind (drift 10 s) is still prepared."""
    network = make_network(tmp_path)
    now = time.time()
    block, received = await offer_first_block(network, ManualClock(now - 9.0), ManualClock(now))
    assert block.header.timestamp_ms < int(now * 1000)
    assert [m.seq for m in received.messages() if isinstance(m, Prepare)] == [1]
    assert received.penalties == []


def test_block_time_window_of_the_ledger_app(tmp_path: Path) -> None:
    """Fresh: within drift on both sides. Re-proposal (not fresh): only the upper bound."""
    network = make_network(tmp_path)
    clock = ManualClock(time.time())
    builder = open_node(network, "node0", clock=clock)
    try:
        genesis = builder.app.head.hash()
        old = builder.app.make_proposal(1, genesis, clock(), required=True)
    finally:
        builder.store.close()
    assert old is not None
    stamped = decode_block(old.payload, TX_TYPES).header.timestamp_ms / 1000
    drift = builder.config.consensus.max_clock_drift_s
    for name, now, fresh, accepted in [
        ("node1", stamped + drift - 0.5, True, True),
        ("node2", stamped + drift + 0.5, True, False),
        ("node3", stamped + drift + 3600, False, True),
        ("node1", stamped - drift - 0.5, False, False),
        ("node2", stamped - drift - 0.5, True, False),
    ]:
        node = open_node(network, name)
        try:
            if accepted:
                node.app.validate_proposal(old, now, fresh=fresh)
                assert node.app.can_build_on(2, old.digest)
            else:
                with pytest.raises(InvalidProposal, match="local clock"):
                    node.app.validate_proposal(old, now, fresh=fresh)
                assert not node.app.can_build_on(2, old.digest), "a refused block is not kept"
        finally:
            node.store.close()


@pytest.mark.asyncio
async def test_escrow_deadline_fires_although_the_primary_stamps_parent_plus_one_ms(
    tmp_path: Path,
) -> None:
    """Four real nodes in memory; the view-0 primary stamps every block `parent + 1 ms`. An
    order is created with a 20 s cancel window. On old code the backups took those blocks and
    block time crawled (the order stayed CREATED for good); now they refuse them, the view
    changes to an honest primary, and the order is cancelled once its window has passed."""
    network = make_network(tmp_path, cancel_window_s=20)
    clock = ManualClock(time.time())
    byzantine = primary_name(network)
    nodes = {name: open_node(network, name, clock=clock) for name in NAMES}
    nodes[byzantine].app.clock_ms = lambda now: 0  # build_block then uses parent + 1 ms
    create = sign_transaction(
        dev_account_key("merchant1"),
        DEV_CHAIN_ID,
        0,
        OrderCreate(
            dev_account_key("buyer1").address,
            (OrderItem("tea", 1, 1_000),),
            0,
            dev_account_key("arbiter").address,
            None,
            None,
        ),
        genesis_hash=nodes[byzantine].genesis.document_hash(),
    )
    try:
        async with asyncio.TaskGroup() as tasks:
            mesh = Mesh(nodes, tasks)
            for node in nodes.values():
                node.mempool.admit(create, node._lookup)
            await mesh.run(clock, 40.0)
            mesh.stop()
    finally:
        for node in nodes.values():
            node.store.close()
    honest = [nodes[n] for n in NAMES if n != byzantine]
    for node in honest:
        order = get_order(node.state, create.hash)
        assert order is not None, f"order not created on {node.config.name}"
        assert order.state == CANCELLED, f"{node.config.name}: order is {order.state}"
        assert node.replica.view >= 1
    assert all(mesh.drivers[n].step_failures == 0 for n in NAMES)
