"""The shared RPC schema (secnode.schema): every method's answer round-trips model -> JSON ->
model unchanged, views give their ledger objects back, and answers of the wrong shape are
refused naming the field."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from pydantic import BaseModel, ValidationError

import tests.rpc_node
from contracts.epochs import get_epoch
from contracts.groups import GroupJoin, GroupOpen, member_order_id
from contracts.orders import OrderConfirm, OrderCreate, OrderItem, OrderPay, OrderShip
from contracts.reviews import ReviewPost, ReviewReply, item_ref
from contracts.trust import Attest
from ledger.genesis import parse_genesis
from ledger.keys import PrivateKey, format_address
from ledger.transactions import SignedTransaction, Transfer, TxBody, sign_transaction
from secnode.network.devnet import dev_account_key, dev_genesis_document
from secnode.runtime.rpc.jsonrpc import Dispatcher, Limits
from secnode.runtime.rpc.methods import method_table
from secnode.runtime.rpc.subscriptions import SUBSCRIPTION_METHODS
from secnode.schema import models as m
from secnode.schema.objects import BlockHeader, CommitCertificate, StateProof, Validator
from secnode.schema.values import problems_text
from tests.chainkit import require_type
from tests.orderkit import WINDOWS
from tests.rpc_node import RpcTestNode


def _address(name: str) -> str:
    return format_address(dev_account_key(name).address)


class _Chain:
    """A dev chain with transfers (one failing), two orders, attestations and a trust epoch."""

    def __init__(self) -> None:
        document = dev_genesis_document()
        parameters = {**WINDOWS, "attest_window_s": 10_000, "trust_epoch_blocks": 10}
        document["parameters"] = {**document["parameters"], **parameters}
        genesis = parse_genesis(document)
        with mock.patch.object(tests.rpc_node, "dev_genesis", return_value=genesis):
            self.node = RpcTestNode()
        self.nonces: dict[str, int] = {}
        self.calls: dict[str, list[dict[str, Any]]] = {}

    def sign(self, name: str, tx_type: str, body: TxBody) -> SignedTransaction:
        require_type(tx_type, body)
        nonce = self.nonces.get(name, 0)
        self.nonces[name] = nonce + 1
        genesis = self.node.genesis
        return sign_transaction(
            dev_account_key(name),
            genesis.chain_id,
            nonce,
            body,
            genesis_hash=genesis.document_hash(),
        )

    async def block(self, *txs: SignedTransaction) -> None:
        for tx in txs:
            await self.node.submit(tx)
        self.node.commit_pending()

    async def build(self) -> None:
        buyer2, merchant1 = dev_account_key("buyer2").address, dev_account_key("merchant1").address
        await self.block(
            self.sign("buyer1", "credit.transfer", Transfer(buyer2, 7, "tea")),
            self.sign("buyer3", "credit.transfer", Transfer(buyer2, 10**12)),
        )
        line = (OrderItem("tea", 2, 1000),)
        arbiter, sharer = dev_account_key("arbiter").address, dev_account_key("sharer1").address
        create = self.sign(
            "merchant1", "order.create", OrderCreate(buyer2, line, 500, arbiter, sharer, 500)
        )
        order = create.hash
        await self.block(create)
        await self.block(self.sign("buyer2", "order.pay", OrderPay(order, 2500)))
        await self.block(self.sign("merchant1", "order.ship", OrderShip(order, b"\x11" * 32)))
        await self.block(self.sign("buyer2", "order.confirm", OrderConfirm(order)))
        for _ in range(12):  # the return window passes: COMPLETED
            self.node.commit_pending()
        await self.block(
            self.sign("buyer2", "trust.attest", Attest(order, merchant1, 1)),
            self.sign("merchant1", "trust.attest", Attest(order, buyer2, 1)),
        )
        review = ReviewPost(order, 5, b"\x22" * 32, item_ref("tea"))
        await self.block(self.sign("buyer2", "review.post", review))
        await self.block(self.sign("merchant1", "review.reply", ReviewReply(order, b"\x33" * 32)))
        for _ in range(40):
            epoch = get_epoch(self.node.state)
            if epoch is not None and epoch.attestations == 2:
                break
            self.node.commit_pending()
        else:
            raise AssertionError("no epoch with the two attestations was committed")
        group = await self.group_of_two(arbiter)
        pending = self.sign("buyer1", "credit.transfer", Transfer(buyer2, 1))
        await self.node.submit(pending)
        block = self.node.store.get_block(1)
        assert block is not None
        nobody = format_address(PrivateKey.from_label("nobody").address)
        self.calls = {
            "sec_status": [{}],
            "sec_getBlock": [{"height": 1, "full": True}, {"height": 1}],
            "sec_getTransaction": [
                {"hash": block.transactions[1].hash.hex()},
                {"hash": order.hex()},
                {"hash": pending.hash.hex()},
            ],
            "sec_sendTransaction": [{"tx": pending.encoded.hex()}, {"tx": create.encoded.hex()}],
            "sec_getCommit": [{"height": 0}, {"height": 3}],
            "sec_getValidators": [{}],
            "sec_getAccount": [
                {"address": _address("buyer1"), "prove": True},
                {"address": nobody, "prove": True},
            ],
            "sec_getOrder": [
                {"order_id": order.hex(), "prove": True},
                {"order_id": "ab" * 32, "prove": True},
            ],
            "sec_listOrders": [{"party": _address("merchant1"), "limit": 1}],
            "sec_getAttestations": [{"subject": _address("merchant1")}],
            "sec_getTrustScore": [{"address": _address("merchant1")}, {"address": nobody}],
            "sec_getTrustEpoch": [{"page_size": 16}],
            "sec_getValidatorsWithProof": [{}],
            "sec_getReviews": [
                {"merchant": _address("merchant1"), "prove": True},
                {"merchant": _address("merchant1"), "item": item_ref("tea").hex(), "limit": 1},
                {"merchant": nobody, "prove": True},
            ],
            "sec_getGroup": [
                {"group_id": group.hex(), "prove": True, "members_limit": 1},
                {"group_id": "cd" * 32, "prove": True},
            ],
            "sec_listGroups": [{"merchant": _address("merchant1"), "state": "FORMED"}],
            "sec_getGenesis": [{}],
            "sec_getNetwork": [{}],
            "sec_getOrderHistory": [
                {"order_id": order.hex()},
                {"order_id": member_order_id(group, 1).hex()},
            ],
            "sec_getTrustDistribution": [{}],
            "rpc.discover": [{}],
        }

    async def group_of_two(self, arbiter: bytes) -> bytes:
        """A group buy of merchant1 that formed with buyer1 and buyer3; its id."""
        deadline_s = self.node.head.timestamp_ms // 1000 + 1_000
        terms = GroupOpen(b"\x22" * 32, 900, 2, 3, deadline_s, 100, 50, arbiter)
        opened = self.sign("merchant1", "group.open", terms)
        await self.block(opened)
        await self.block(
            self.sign("buyer1", "group.join", GroupJoin(opened.hash, 850, None, None)),
            self.sign("buyer3", "group.join", GroupJoin(opened.hash, 950, None, None)),
        )
        return opened.hash


@pytest.fixture(scope="module")
def answers() -> list[tuple[str, type[BaseModel], Any]]:
    """(method, result model, JSON result) of every call in `_Chain.calls`."""

    async def collect() -> list[tuple[str, type[BaseModel], Any]]:
        chain = _Chain()
        await chain.build()
        table = method_table(chain.node)
        # sec_subscribe/sec_unsubscribe answer only over WebSocket: tests/test_subscriptions.py
        websocket_only = SUBSCRIPTION_METHODS
        assert set(chain.calls) | websocket_only == set(table), "every method needs an example"
        dispatcher = Dispatcher(table, Limits())
        collected = []
        for method, examples in chain.calls.items():
            for params in examples:
                request = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
                body = await dispatcher.handle(json.dumps(request).encode())
                assert body is not None
                response = json.loads(body)
                assert "result" in response, (method, params, response)
                collected.append((method, table[method].result, response["result"]))
        return collected

    return asyncio.run(collect())


def test_every_answer_round_trips_model_json_model(
    answers: list[tuple[str, type[BaseModel], Any]],
) -> None:
    for method, model, result in answers:
        parsed = model.model_validate(result)
        again = json.loads(json.dumps(parsed.model_dump(mode="json")))
        assert again == result, method
        assert model.model_validate(again) == parsed, method


def test_views_give_the_ledger_objects_back(
    answers: list[tuple[str, type[BaseModel], Any]],
) -> None:
    proofs = 0
    for method, model, result in answers:
        parsed = model.model_validate(result)
        if isinstance(parsed, m.CommitResult):
            header = parsed.header.to_header()
            assert header.hash() == parsed.hash
            assert BlockHeader.of(header) == parsed.header
            if parsed.certificate is not None:
                certificate = parsed.certificate.to_certificate()
                assert CommitCertificate.of(certificate) == parsed.certificate
        if isinstance(parsed, m.AccountResult | m.OrderResult) and parsed.proof is not None:
            proof = parsed.proof.to_proof()
            assert StateProof.of(proof) == parsed.proof, method
            proofs += 1
    assert proofs == 4


def test_invalid_hash_of_the_wrong_size_names_the_field() -> None:
    with pytest.raises(ValidationError) as raised:
        m.CommitResult.model_validate(
            {"height": 1, "hash": "ab", "header": {}, "certificate": None}
        )
    text = problems_text(raised.value)
    assert text.startswith("hash: a hash is 32 bytes (64 hex), got 1")
    assert "header.chain_id: Field required" in text and "more" in text


def test_invalid_address_with_a_bad_checksum_is_refused() -> None:
    text = _address("buyer1")
    typo = text[:-1] + ("q" if text[-1] != "q" else "p")
    entry = {"index": 0, "address": typo, "public_key": "00"}
    with pytest.raises(ValidationError, match="address"):
        Validator.model_validate(entry)
    assert Validator.model_validate({**entry, "address": text}).address == (
        dev_account_key("buyer1").address
    )


def test_invalid_account_answer_that_contradicts_exists() -> None:
    absent = {
        "address": _address("buyer1"),
        "exists": False,
        "public_key": None,
        "nonce": None,
        "balance": None,
        "roles": None,
        "name": None,
        "height": 1,
        "state_root": "00" * 32,
    }
    assert m.AccountResult.model_validate(absent).exists is False
    with pytest.raises(ValidationError, match="exists is False, so the account fields"):
        m.AccountResult.model_validate({**absent, "nonce": 3})
    with pytest.raises(ValidationError, match="exists is True, so the account fields"):
        m.AccountResult.model_validate({**absent, "exists": True, "nonce": 3})


def test_invalid_strict_types_are_not_coerced() -> None:
    with pytest.raises(ValidationError, match="valid integer"):
        m.SendTransactionResult.model_validate(
            {"hash": "00" * 32, "status": "committed", "height": "1"}
        )
    with pytest.raises(ValidationError, match="Extra inputs"):
        m.SendTransactionResult.model_validate(
            {"hash": "00" * 32, "status": "pending", "surprise": 1}
        )


def test_the_schema_imports_nothing_of_the_node_runtime() -> None:
    """Clients (CLI, auditor, a web console) import the schema without the server."""
    probe = (
        "import sys\n"
        "import secnode.schema.models, secnode.schema.trust, secnode.schema.validators\n"
        "import secnode.schema.reviews\n"
        "import secnode.client.rpc\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'aiohttp'"
        " or m.startswith('secnode.runtime')))\n"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]", run.stdout


_TYPED_READS = """
from secnode.client.rpc import RpcClient
from secnode.schema.models import BlockResult
from ledger.blocks import BlockHeader


def good(client: RpcClient) -> BlockHeader:
    return client.call_as("sec_getBlock", {}, BlockResult).header.to_header()


def misspelled(client: RpcClient) -> int:
    return client.call_as("sec_getBlock", {}, BlockResult).header.heigth  # line 12


def wrong_type(client: RpcClient) -> str:
    return client.call_as("sec_getBlock", {}, BlockResult).header.state_root  # line 16
"""


def test_invalid_reads_of_an_answer_fail_type_checking(tmp_path: Path) -> None:
    """A typo or a wrong type in reading an answer is a mypy error, not a KeyError at run time."""
    snippet = tmp_path / "reads.py"
    snippet.write_text(_TYPED_READS)
    command = [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache")]
    run = subprocess.run(
        [*command, str(snippet)],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).parents[1],  # the repository's mypy configuration (pydantic plugin)
    )
    errors = [line for line in run.stdout.splitlines() if ": error:" in line]
    assert run.returncode == 1, run.stdout + run.stderr
    assert any(":12: error:" in line and "heigth" in line for line in errors), errors
    assert any(":16: error:" in line and '"bytes"' in line for line in errors), errors
    assert all(":12: " in line or ":16: " in line for line in errors), errors


def test_invalid_transaction_answer_that_contradicts_its_status() -> None:
    pending = {"hash": "00" * 32, "status": "pending"}
    assert m.SendTransactionResult.model_validate(pending).height is None
    with pytest.raises(ValidationError, match="status is committed, so height, index"):
        m.SendTransactionResult.model_validate({**pending, "status": "committed", "height": 1})
    with pytest.raises(ValidationError, match=r"status is pending, so .* must be all null"):
        m.SendTransactionResult.model_validate({**pending, "height": 1})
