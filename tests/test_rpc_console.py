"""The console's read methods over HTTP against a dev chain: sec_getGenesis, sec_getNetwork,
sec_getOrderHistory and sec_getTrustDistribution (docs/rpc.md)."""

from __future__ import annotations

import json

import pytest

from ledger.genesis import parse_genesis
from ledger.keys import format_address
from ledger.transactions import SignedTransaction, Transfer
from secnode.network import devnet
from secnode.runtime.chain_activity import ChainActivity
from secnode.schema.console import GenesisResult, NetworkResult
from tests.rpc_node import COMMIT_DELAY_MS, Served, serve, sign


def _text(name: str) -> str:
    return format_address(devnet.dev_account_key(name).address)


async def _commit(served: Served, *txs: SignedTransaction, at_ms: int | None = None) -> None:
    for tx in txs:
        await served.result("sec_sendTransaction", {"tx": tx.encoded.hex()})
    result = served.node.commit_pending(at_ms)
    assert all(receipt.ok for receipt in result.receipts), result.receipts


# --- sec_getGenesis ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_genesis_document_hashes_to_the_status_genesis_hash() -> None:
    async with serve() as served:
        answer = await served.result("sec_getGenesis")
        status = await served.result("sec_status")
        GenesisResult.model_validate(answer)
        assert answer["genesis_hash"] == status["genesis_hash"]
        # The document, parsed as a genesis file from its JSON text, hashes to that hash.
        reparsed = parse_genesis(json.loads(json.dumps(answer["document"])), "answer")
        assert reparsed.document_hash().hex() == answer["genesis_hash"]
        names = [account["name"] for account in answer["document"]["accounts"]]
        assert "merchant1" in names and answer["document"]["chain_id"] == devnet.DEV_CHAIN_ID


@pytest.mark.asyncio
async def test_genesis_answer_is_encoded_once() -> None:
    async with serve() as served:
        first = await served.result("sec_getGenesis")
        # A node whose genesis object changed under it (it cannot) would still answer the first
        # encoding: the dispatcher serves the kept bytes, not a new rendering.
        served.node.genesis = served.node.genesis.model_copy(update={"note": "changed"})
        assert await served.result("sec_getGenesis") == first


# --- sec_getNetwork ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_network_shows_validators_peers_and_recent_blocks() -> None:
    async with serve() as served:
        for nonce in range(3):
            await _commit(served, sign("buyer1", nonce, "credit.transfer", _transfer()))
        await served.result(
            "sec_sendTransaction",
            {"tx": sign("buyer1", 3, "credit.transfer", _transfer()).encoded.hex()},
        )
        answer = await served.result("sec_getNetwork")
        NetworkResult.model_validate(answer)
        head = served.node.head
        assert (answer["height"], answer["head_hash"]) == (3, head.hash().hex())
        assert answer["head_time_ms"] == head.timestamp_ms and answer["mempool_size"] == 1
        validators = answer["validators"]
        assert [v["index"] for v in validators] == [0, 1, 2, 3]
        by_name = {v["name"]: v for v in validators}
        assert set(by_name) == {"node0", "node1", "node2", "node3"}
        # The test node certifies with node0..node2: node3 never signed.
        assert [by_name[n]["last_signed_height"] for n in ("node0", "node1", "node2")] == [3] * 3
        assert by_name["node3"]["last_signed_height"] is None
        assert by_name["node0"]["address"] == format_address(devnet.validator_key("node0").address)
        peers = answer["peers"]
        assert [p["name"] for p in peers] == ["node1", "node2", "node3"]
        assert peers[0]["address"] == format_address(devnet.validator_key("node1").address)
        assert peers[0]["host"] == "127.0.0.1:30301"
        blocks = answer["recent_blocks"]
        assert [b["height"] for b in blocks] == [3, 2, 1, 0]
        assert [b["tx_count"] for b in blocks] == [1, 1, 1, 0]
        assert [b["signers"] for b in blocks] == [3, 3, 3, 0]
        assert blocks[0]["hash"] == head.hash().hex()
        # Blocks committed while the node ran have a commit time; genesis was before its start.
        assert blocks[0]["committed_ms"] == head.timestamp_ms + COMMIT_DELAY_MS
        assert blocks[0]["finality_ms"] == COMMIT_DELAY_MS
        assert (blocks[3]["committed_ms"], blocks[3]["finality_ms"]) == (None, None)


@pytest.mark.asyncio
async def test_network_keeps_the_last_twenty_blocks_and_seeds_from_the_store() -> None:
    async with serve() as served:
        node = served.node
        for _ in range(25):
            node.commit_pending()
        blocks = (await served.result("sec_getNetwork"))["recent_blocks"]
        assert [b["height"] for b in blocks] == list(range(25, 5, -1))
        # A node started on this store knows the blocks and signers but not commit times.
        seeded = ChainActivity.seeded(node.store)
        assert [b.height for b in seeded.newest_first()] == list(range(25, 5, -1))
        assert all(b.committed_ms is None and b.signers == 3 for b in seeded.newest_first())
        signers = ("node0", "node1", "node2")
        assert seeded.last_signed == {devnet.validator_key(n).address: 25 for n in signers}


def _transfer() -> Transfer:
    return Transfer(devnet.dev_account_key("merchant1").address, 1)
