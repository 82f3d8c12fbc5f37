"""Finding 4 on real nodes: a primary that leaves one buyer's transaction out of every block it
proposes, while it keeps committing everybody else's, is voted out by PBFT's request timer (the
backups' mempools report how long the oldest executable transaction has waited), and the
transaction commits under the next primary. Four real nodes (LedgerApp, Mempool, LevelDB,
driver) wired in memory on one manual clock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ledger.transactions import SignedTransaction, Transfer, sign_transaction
from secnode.network.devnet import DEV_CHAIN_ID, dev_account_key
from secnode.runtime.mempool import NonceLookup
from secnode.runtime.node import Node
from tests.nodekit import NAMES, ManualClock, Mesh, make_network, open_node, primary_name


def _transfer(node: Node, sender: str, nonce: int) -> SignedTransaction:
    return sign_transaction(
        dev_account_key(sender),
        DEV_CHAIN_ID,
        nonce,
        Transfer(dev_account_key("sharer1").address, 1),
        genesis_hash=node.genesis.document_hash(),
    )


def _censoring(
    select: Callable[[int, NonceLookup], list[SignedTransaction]], victim: bytes
) -> Callable[[int, NonceLookup], list[SignedTransaction]]:
    def censored(max_count: int, next_nonce: NonceLookup) -> list[SignedTransaction]:
        return [tx for tx in select(max_count, next_nonce) if tx.hash != victim]

    return censored


@pytest.mark.asyncio
async def test_a_censoring_primary_is_voted_out_and_the_transaction_commits(
    tmp_path: Path,
) -> None:
    network = make_network(tmp_path)
    clock = ManualClock(time.time())
    censor = primary_name(network)
    nodes = {name: open_node(network, name, clock=clock) for name in NAMES}
    victim = _transfer(nodes[censor], "buyer1", 0)
    primary_pool = nodes[censor].mempool
    primary_pool.select = _censoring(primary_pool.select, victim.hash)  # type: ignore[method-assign,assignment]
    try:
        async with asyncio.TaskGroup() as tasks:
            mesh = Mesh(nodes, tasks)
            for node in nodes.values():
                node.mempool.admit(victim, node._lookup)
            for nonce in range(60):  # others' transactions keep blocks coming: no stall timer
                for node in nodes.values():
                    node.mempool.admit(_transfer(node, "buyer2", nonce), node._lookup)
                    mesh.drivers[node.config.name].on_transactions_pending()
                await mesh.run(clock, 1.0)
                if all(node.store.find_transaction(victim.hash) for node in nodes.values()):
                    break
            mesh.stop()
        found = {name: node.store.find_transaction(victim.hash) for name, node in nodes.items()}
    finally:
        for node in nodes.values():
            node.store.close()
    heights = {name: node.app.head.height for name, node in nodes.items()}
    for name, node in nodes.items():
        assert found[name] is not None, f"censored on {name}; heights {heights}"
        assert node.replica.view >= 1, f"{name} still in view {node.replica.view}"
    assert all(mesh.drivers[n].step_failures == 0 for n in NAMES)
