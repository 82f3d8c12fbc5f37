"""Finding 6 through a real node: squatting accounts gossip every transaction they may to a
`Node` (its own gossip handler, its `[mempool]` config from a NodeConfig), then an honest
client's `sec_sendTransaction` through the node's JSON-RPC dispatcher is still admitted."""

from __future__ import annotations

import json

import pytest

from contracts import TX_TYPES
from ledger.genesis import parse_genesis
from ledger.kv import MemoryStore
from ledger.store import open_chain
from ledger.transactions import SignedTransaction, Transfer, sign_transaction
from secnode.network.devnet import (
    DEV_CHAIN_ID,
    dev_account_key,
    dev_genesis_document,
    validator_key,
)
from secnode.runtime.config import NodeConfig
from secnode.runtime.node import Node
from secnode.runtime.rpc.jsonrpc import Dispatcher, Limits
from secnode.runtime.rpc.methods import method_table

ATTACKERS = [f"attacker{i}" for i in range(60)]


def _node() -> Node:
    document = dev_genesis_document()
    document["accounts"] += [
        {
            "name": name,
            "public_key": dev_account_key(name).public_key.hex(),
            "roles": ["member"],
            "balance": 10**6,
        }
        for name in ATTACKERS
    ]
    genesis = parse_genesis(document, "test genesis")
    store, state, _ = open_chain(MemoryStore(), genesis, TX_TYPES)
    config = NodeConfig.model_validate(
        {
            "name": "node0",
            "p2p": {"listen": "127.0.0.1:0"},
            "rpc": {"listen": "127.0.0.1:0"},
            # the default ratios, 50x smaller: a sender may hold 2 % of the pool
            "mempool": {"max_transactions": 1_000, "max_per_sender": 20, "nonce_window": 20},
        }
    )
    return Node(config, validator_key("node0"), genesis, store, state, [])


def _transfer(node: Node, name: str, nonce: int) -> SignedTransaction:
    body = Transfer(dev_account_key("sharer1").address, 1)
    return sign_transaction(
        dev_account_key(name),
        DEV_CHAIN_ID,
        nonce,
        body,
        genesis_hash=node.genesis.document_hash(),
    )


@pytest.mark.asyncio
async def test_gossiped_squatting_leaves_room_for_an_rpc_client() -> None:
    node = _node()
    peer = validator_key("node1").public_key
    for index, name in enumerate(ATTACKERS):
        for nonce in range(1 if index % 2 else 0, 20):  # odd ones never send nonce 0
            node._on_gossiped_transaction(peer, _transfer(node, name, nonce).encoded)
    assert len(node.mempool) == 1_000  # the attack fills the pool
    honest = _transfer(node, "buyer1", 0)
    dispatcher = Dispatcher(method_table(node), Limits())
    request = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "sec_sendTransaction",
        "params": {"tx": honest.encoded.hex()},
    }
    reply = json.loads(await dispatcher.handle(json.dumps(request).encode()) or b"null")
    assert reply.get("result", {}).get("status") == "pending", reply
    assert honest.hash in node.mempool and len(node.mempool) <= 1_000
