"""The consensus driver over a real node (LevelDB, ledger, replica) and scripted peers.

Proves that nothing a peer sends, and no failing consensus step, can end the node's task group.
"""

from __future__ import annotations

import asyncio
import functools
import time
from pathlib import Path

import pytest

from ledger.blocks import decode_block
from secnode.app import LedgerApp
from secnode.node import Node
from tests.nodekit import (
    NAMES,
    ManualClock,
    ScriptedPeers,
    certify,
    make_network,
    name_of,
    open_node,
    start_driver,
)


def primary_name(network: Path) -> str:
    probe = open_node(network, "node0")
    try:
        return name_of(probe.replica.primary)
    finally:
        probe.store.close()


def other_block(network: Path, name: str, clock: ManualClock) -> tuple[bytes, bytes]:
    """(digest, payload) of an empty block 1 built by validator `name` on genesis."""
    node = open_node(network, name, clock=clock)
    try:
        proposal = node.app.make_proposal(1, node.app.head.hash(), clock(), required=True)
        assert proposal is not None
        return proposal.digest, proposal.payload
    finally:
        node.store.close()


async def propose_two_blocks(node: Node, clock: ManualClock, peers: ScriptedPeers) -> None:
    """Make `node` (the primary of view 0) propose heights 1 and 2 (empty heartbeat blocks)."""
    assert node.driver is not None
    interval = node.config.consensus.empty_block_interval_s
    for _ in range(2):
        clock.advance(interval)
        node.driver.feed(node.replica.on_tick)
    heights = [block.height for block in peers.proposals()]
    assert heights == [1, 2], f"primary proposed heights {heights}"


@pytest.mark.asyncio
async def test_primary_does_not_build_on_a_parent_it_cannot_execute(tmp_path: Path) -> None:
    """Finding 12: a primary with its own blocks 1 and 2 in flight learns (by catch-up) that
    another block 1 was committed. Its block 2 now stands on a parent the ledger dropped; the
    next proposal step must not ask the ledger to build on it (old code: InvalidProposal
    'parent ... is neither committed nor validated' escaped the step)."""
    network = make_network(tmp_path)
    clock = ManualClock(time.time())
    primary = primary_name(network)
    others = tuple(n for n in NAMES if n != primary)
    digest, payload = other_block(network, others[0], clock)
    node = open_node(network, primary, clock=clock)
    peers = ScriptedPeers()
    try:
        async with asyncio.TaskGroup() as tasks:
            driver, commits = start_driver(node, peers, tasks)
            await propose_two_blocks(node, clock, peers)
            own = peers.proposals()
            certificate = certify(1, digest, others)
            driver.feed(
                functools.partial(node.replica.on_catch_up_block, 1, digest, payload, certificate)
            )
            assert [c.block.hash() for c in commits] == [digest]
            assert own[1].header.prev_hash not in node.app.speculative
            clock.advance(node.config.consensus.empty_block_interval_s)
            driver.feed(node.replica.on_tick)  # old code: raises InvalidProposal here
            driver.feed(node.replica.on_pending_transactions)
            driver.stop()
    finally:
        node.store.close()
    assert [b.height for b in peers.proposals()] == [1, 2], "proposed on an unexecutable parent"


@pytest.mark.asyncio
async def test_ledger_app_says_which_parents_it_can_build_on(tmp_path: Path) -> None:
    network = make_network(tmp_path)
    clock = ManualClock(time.time())
    node = open_node(network, "node0", clock=clock)
    try:
        app: LedgerApp = node.app
        genesis = app.head.hash()
        assert app.can_build_on(1, genesis)
        assert not app.can_build_on(2, genesis), "genesis is not at height 1"
        assert not app.can_build_on(1, b"\x07" * 32), "an unknown parent"
        proposal = app.make_proposal(1, genesis, clock.advance(1), required=True)
        assert proposal is not None
        assert app.can_build_on(2, proposal.digest)
        assert decode_block(proposal.payload).height == 1
    finally:
        node.store.close()
