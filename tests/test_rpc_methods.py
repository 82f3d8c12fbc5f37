"""Every RPC method over HTTP against a real dev chain: happy paths, proofs that verify with the
ledger's own verifiers, and each application error."""

from __future__ import annotations

import asyncio
import json

import pytest

from contracts import TX_TYPES
from ledger.accounts import account_key
from ledger.certificates import CommitCertificate, CommitSignature, verify_certificate
from ledger.keys import PrivateKey, format_address, parse_address
from ledger.merkle import leaf_hash, verify_inclusion
from ledger.state_tree import verify_state_proof
from ledger.transactions import SignedTransaction, Transfer, decode_transaction, sign_transaction
from secnode.network import devnet
from secnode.runtime.rpc.server import RpcConfig
from secnode.runtime.rpc.view import NodeStatus
from secnode.schema.objects import InclusionProof, StateProof
from tests.rpc_node import Served, serve, sign


def _transfer(sender: str, nonce: int, amount: int = 5, to: str = "buyer2") -> SignedTransaction:
    return sign(
        sender, nonce, "credit.transfer", Transfer(devnet.dev_account_key(to).address, amount)
    )


async def _commit_transfers(served: Served, count: int) -> list[SignedTransaction]:
    txs = [_transfer("buyer1", n) for n in range(count)]
    for tx in txs:
        assert (await served.result("sec_sendTransaction", {"tx": tx.encoded.hex()}))[
            "status"
        ] == "pending"
    served.node.commit_pending()
    return txs


@pytest.mark.asyncio
async def test_status() -> None:
    async with serve() as served:
        status = await served.result("sec_status")
        assert status["chain_id"] == devnet.DEV_CHAIN_ID and status["height"] == 0
        assert status["node_address"] == format_address(devnet.validator_key("node0").address)
        assert status["mempool_size"] == 0 and status["syncing"] is False


@pytest.mark.asyncio
async def test_status_encodes_the_genesis_document_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """sec_status costs one unit: it must not re-encode the whole genesis document each call."""
    async with serve() as served:
        genesis = type(served.node.genesis)
        original = genesis.document_hash
        calls: list[int] = []

        def counted(self: object) -> bytes:
            calls.append(1)
            return original(self)  # type: ignore[arg-type]

        monkeypatch.setattr(genesis, "document_hash", counted)
        answers = [await served.result("sec_status") for _ in range(3)]
        assert len(calls) <= 1
        assert {a["genesis_hash"] for a in answers} == {devnet.dev_genesis_hash().hex()}


@pytest.mark.asyncio
async def test_send_transaction_to_mempool_then_commit() -> None:
    async with serve() as served:
        tx = _transfer("buyer1", 0)
        sent = await served.result("sec_sendTransaction", {"tx": tx.encoded.hex()})
        assert sent == {
            "hash": tx.hash.hex(),
            "status": "pending",
            "height": None,
            "index": None,
            "block_hash": None,
            "receipt": None,
        }
        pending = await served.result("sec_getTransaction", {"hash": tx.hash.hex()})
        assert pending["status"] == "pending" and pending["proof"] is None
        assert pending["tx"]["body"] == {
            "to": format_address(devnet.dev_account_key("buyer2").address),
            "amount": 5,
        }
        served.node.commit_pending()
        again = await served.result("sec_sendTransaction", [tx.encoded.hex()])
        assert again["status"] == "committed" and again["height"] == 1
        assert again["receipt"]["ok"] is True


@pytest.mark.asyncio
async def test_send_transaction_waits_for_commit() -> None:
    async with serve(auto_commit=True) as served:
        tx = _transfer("buyer1", 0)
        sent = await served.result(
            "sec_sendTransaction", {"tx": tx.encoded.hex(), "wait": "commit", "timeout_s": 5}
        )
        assert sent["status"] == "committed" and sent["height"] == 1 and sent["index"] == 0
        assert sent["receipt"] == {
            "tx_hash": tx.hash.hex(),
            "ok": True,
            "code": "",
            "message": "",
            "events": [],
        }
        assert sent["block_hash"] == served.node.head.hash().hex()


@pytest.mark.asyncio
async def test_send_transaction_already_pending_is_not_an_error() -> None:
    async with serve() as served:
        tx = _transfer("buyer1", 0)
        for _ in range(2):
            sent = await served.result("sec_sendTransaction", {"tx": tx.encoded.hex()})
            assert sent["status"] == "pending"
        assert len(served.node.mempool) == 1


@pytest.mark.asyncio
async def test_invalid_send_transaction_timeout() -> None:
    async with serve() as served:
        tx = _transfer("buyer1", 0)
        error = await served.error(
            "sec_sendTransaction", {"tx": tx.encoded.hex(), "wait": "commit", "timeout_s": 0.05}
        )
        assert error["code"] == -32002 and error["data"]["hash"] == tx.hash.hex()
        assert "may still commit" in error["message"]
        assert tx.hash in served.node.mempool


@pytest.mark.asyncio
async def test_invalid_send_transaction_busy() -> None:
    async with serve(RpcConfig(max_commit_waiters=1)) as served:
        first, second = _transfer("buyer1", 0), _transfer("buyer2", 0, to="buyer1")
        waiting = asyncio.create_task(
            served.call(
                "sec_sendTransaction", {"tx": first.encoded.hex(), "wait": "commit", "timeout_s": 5}
            )
        )
        await asyncio.wait_for(served.node.admitted.wait(), 5)
        error = await served.error(
            "sec_sendTransaction", {"tx": second.encoded.hex(), "wait": "commit"}
        )
        assert error["code"] == -32004 and error["data"] == {"limit": 1}
        served.node.commit_pending()
        assert (await waiting)["result"]["status"] == "committed"


async def _rejection(served: Served, tx: SignedTransaction) -> str:
    error = await served.error("sec_sendTransaction", {"tx": tx.encoded.hex()})
    assert error["code"] == -32001 and error["data"]["hash"] == tx.hash.hex(), error
    assert error["data"]["reason"] in error["message"]
    reason: str = error["data"]["reason"]
    return reason


@pytest.mark.asyncio
async def test_invalid_send_transaction_rejected_by_nonce_rules() -> None:
    async with serve() as served:
        assert await _rejection(served, _transfer("buyer1", 5000)) == "nonce_too_high"
        await served.result("sec_sendTransaction", {"tx": _transfer("buyer1", 0).encoded.hex()})
        assert await _rejection(served, _transfer("buyer1", 0, amount=6)) == "nonce_pending"
        served.node.commit_pending()
        assert await _rejection(served, _transfer("buyer1", 0, amount=7)) == "nonce_too_low"


@pytest.mark.asyncio
async def test_invalid_send_transaction_rejected_sender_chain_signature() -> None:
    async with serve() as served:
        body = Transfer(devnet.dev_account_key("buyer2").address, 1)
        stranger = sign("", 0, "credit.transfer", body, key=PrivateKey.from_label("stranger"))
        assert await _rejection(served, stranger) == "unknown_account"
        other_chain = sign_transaction(
            devnet.dev_account_key("buyer1"),
            "other-chain",
            0,
            body,
            genesis_hash=devnet.dev_genesis_hash(),
        )
        assert await _rejection(served, other_chain) == "wrong_chain"
        wire = bytearray(_transfer("buyer1", 0).encoded)
        wire[-40] ^= 1  # inside the signature: still canonical, no longer valid
        forged = decode_transaction(bytes(wire), TX_TYPES)
        assert await _rejection(served, forged) == "invalid_signature"
        assert len(served.node.mempool) == 0


@pytest.mark.asyncio
async def test_invalid_send_transaction_malformed_bytes() -> None:
    async with serve() as served:
        error = await served.error("sec_sendTransaction", {"tx": "c0ffee"})
        assert error["code"] == -32602 and error["data"]["errors"][0]["field"] == "tx"
        tx = _transfer("buyer1", 0)
        error = await served.error("sec_sendTransaction", {"tx": tx.encoded[:-1].hex()})
        assert error["code"] == -32602 and error["message"].startswith("invalid params: tx: ")


@pytest.mark.asyncio
async def test_get_transaction_with_verifying_inclusion_proof() -> None:
    async with serve() as served:
        txs = await _commit_transfers(served, 5)
        block = await served.result("sec_getBlock", {"height": 1})
        for index, tx in enumerate(txs):
            answer = await served.result("sec_getTransaction", {"hash": tx.hash.hex().upper()})
            assert answer["status"] == "committed"
            assert (answer["height"], answer["index"]) == (1, index)
            assert bytes.fromhex(answer["raw"]) == tx.encoded
            proof = answer["proof"]
            assert proof["tx_root"] == block["header"]["tx_root"] and proof["tree_size"] == 5
            verify_inclusion(
                leaf_hash(tx.encoded),
                proof["leaf_index"],
                proof["tree_size"],
                InclusionProof.model_validate(proof).hashes,
                bytes.fromhex(block["header"]["tx_root"]),
            )
            assert answer["receipt"]["ok"] is True


@pytest.mark.asyncio
async def test_invalid_get_transaction_not_found() -> None:
    async with serve() as served:
        error = await served.error("sec_getTransaction", {"hash": "ab" * 32})
        assert error["code"] == -32000
        assert error["data"] == {"what": "transaction", "key": "ab" * 32}


@pytest.mark.asyncio
async def test_get_block_latest_by_height_by_hash_and_full() -> None:
    async with serve() as served:
        txs = await _commit_transfers(served, 2)
        latest = await served.result("sec_getBlock")
        assert latest["header"]["height"] == 1 and latest["tx_count"] == 2
        assert latest["tx_hashes"] == [tx.hash.hex() for tx in txs]
        assert latest["transactions"] is None and latest["receipts"] is None
        by_hash = await served.result("sec_getBlock", {"hash": latest["hash"]})
        assert by_hash == latest
        full = await served.result("sec_getBlock", {"height": 1, "full": True})
        assert [t["hash"] for t in full["transactions"]] == latest["tx_hashes"]
        assert [r["ok"] for r in full["receipts"]] == [True, True]
        genesis = await served.result("sec_getBlock", [0])
        assert genesis["header"]["prev_hash"] == served.node.genesis.document_hash().hex()


@pytest.mark.asyncio
async def test_invalid_get_block() -> None:
    async with serve() as served:
        assert (await served.error("sec_getBlock", {"height": 1}))["code"] == -32000
        assert (await served.error("sec_getBlock", {"hash": "00" * 32}))["code"] == -32000
        both = await served.error("sec_getBlock", {"height": 0, "hash": "00" * 32})
        assert both["code"] == -32602 and "not both" in both["message"]


@pytest.mark.asyncio
async def test_get_commit_certificate_verifies() -> None:
    async with serve() as served:
        await _commit_transfers(served, 1)
        commit = await served.result("sec_getCommit")
        signatures = commit["certificate"]["signatures"]
        certificate = CommitCertificate(
            commit["certificate"]["height"],
            bytes.fromhex(commit["certificate"]["block_hash"]),
            tuple(
                CommitSignature(parse_address(s["validator"]), bytes.fromhex(s["signature"]))
                for s in signatures
            ),
        )
        verify_certificate(
            certificate,
            devnet.DEV_CHAIN_ID,
            served.node.genesis.validator_set(),
            height=1,
            block_hash=bytes.fromhex(commit["hash"]),
        )
        genesis = await served.result("sec_getCommit", {"height": 0})
        assert genesis["certificate"] is None and genesis["header"]["height"] == 0
        assert (await served.error("sec_getCommit", {"height": 2}))["code"] == -32000


@pytest.mark.asyncio
async def test_get_validators() -> None:
    async with serve() as served:
        answer = await served.result("sec_getValidators")
        validators = served.node.genesis.validator_set()
        assert answer["height"] == 0 and answer["size"] == 4
        assert (answer["quorum"], answer["max_faulty"]) == (3, 1)
        assert answer["hash"] == validators.hash().hex()
        assert [v["public_key"] for v in answer["validators"]] == [
            m.public_key.hex() for m in validators.members
        ]
        assert [v["index"] for v in answer["validators"]] == [0, 1, 2, 3]
        assert (await served.error("sec_getValidators", {"height": 1}))["code"] == -32000


@pytest.mark.asyncio
async def test_get_account_with_membership_proof() -> None:
    async with serve() as served:
        await _commit_transfers(served, 1)
        address = devnet.dev_account_key("buyer1").address
        plain = await served.result("sec_getAccount", {"address": format_address(address)})
        assert plain["exists"] is True and plain["nonce"] == 1 and plain["roles"] == ["member"]
        assert plain["name"] == "buyer1" and plain["balance"] == 100_000_000 - 5
        assert plain["proof"] is None and plain["height"] == 1
        proven = await served.result("sec_getAccount", [format_address(address), True])
        assert proven["state_root"] == served.node.head.state_root.hex()
        verify_state_proof(
            bytes.fromhex(proven["state_root"]),
            account_key(address),
            bytes.fromhex(proven["value"]),
            StateProof.model_validate(proven["proof"]).to_proof(),
        )


@pytest.mark.asyncio
async def test_get_account_non_membership_proof() -> None:
    async with serve() as served:
        address = PrivateKey.from_label("nobody").address
        answer = await served.result(
            "sec_getAccount", {"address": format_address(address), "prove": True}
        )
        assert answer["exists"] is False and answer["value"] is None
        assert answer["balance"] is None and answer["proof"]["value_hash"] is None
        verify_state_proof(
            bytes.fromhex(answer["state_root"]),
            account_key(address),
            None,
            StateProof.model_validate(answer["proof"]).to_proof(),
        )
        error = await served.error("sec_getAccount", {"address": format_address(address)})
        assert error["code"] == -32000 and error["data"]["what"] == "account"


@pytest.mark.asyncio
async def test_invalid_get_account_address_typo() -> None:
    async with serve() as served:
        text = format_address(devnet.dev_account_key("buyer1").address)
        typo = text[:-1] + ("q" if text[-1] != "q" else "p")
        error = await served.error("sec_getAccount", {"address": typo})
        assert error["code"] == -32602 and "bad checksum" in error["message"]


@pytest.mark.asyncio
async def test_invalid_node_failure_is_internal_error_without_details(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken() -> NodeStatus:
        raise RuntimeError("secret detail")

    async with serve() as served:
        served.node.status = broken  # type: ignore[method-assign]  # simulate a node bug
        status, response = await served.post('{"jsonrpc":"2.0","method":"sec_status","id":1}')
        assert status == 200 and response["error"]["code"] == -32603
        assert "secret" not in json.dumps(response)
    assert "secret detail" in caplog.text and "RPC sec_status failed" in caplog.text
