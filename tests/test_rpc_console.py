"""The console's read methods over HTTP against a dev chain: sec_getGenesis, sec_getNetwork,
sec_getOrderHistory and sec_getTrustDistribution (docs/rpc.md)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from contracts import TX_TYPES
from contracts.epochs import SCORE_PREFIX, get_epoch, parse_score_record
from contracts.groups import GroupJoin, GroupOpen, member_order_id
from contracts.orders import (
    OrderConfirm,
    OrderCreate,
    OrderDispute,
    OrderItem,
    OrderPay,
    OrderReturn,
    OrderShip,
)
from contracts.trust import Attest
from ledger.encoding import encode
from ledger.genesis import parse_genesis
from ledger.keys import format_address
from ledger.store import open_chain
from ledger.transactions import SignedTransaction, Transfer, TxBody, sign_transaction
from secnode.network import devnet
from secnode.runtime.chain_activity import ChainActivity
from secnode.runtime.order_index import ORDER_EVENTS_PREFIX, order_events
from secnode.runtime.rpc.budget import Worker
from secnode.runtime.rpc.errors import NOT_FOUND, RpcError
from secnode.runtime.rpc.jsonrpc import Dispatcher, Limits
from secnode.runtime.rpc.methods import method_table
from secnode.runtime.rpc.trust_distribution import TrustDistributions, summarize
from secnode.schema.console import (
    GenesisResult,
    GetTrustDistributionParams,
    NetworkResult,
    OrderHistoryResult,
    TrustDistributionResult,
)
from tests.nodekit import NAMES, ManualClock, Mesh, make_network, open_node
from tests.rpc_node import COMMIT_DELAY_MS, Served, serve, sign

T = TypeVar("T")


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


# --- sec_getOrderHistory -----------------------------------------------------------------------

WINDOWS = devnet.DEV_PARAMETERS


class _Orders:
    """Signs order transactions with per-account nonces for one served dev node."""

    def __init__(self, served: Served) -> None:
        self.served = served
        self.nonces: dict[str, int] = {}

    def sign(self, name: str, tx_type: str, body: TxBody) -> SignedTransaction:
        nonce = self.nonces.get(name, 0)
        self.nonces[name] = nonce + 1
        return sign(name, nonce, tx_type, body)

    async def create(self) -> bytes:
        body = OrderCreate(
            devnet.dev_account_key("buyer1").address,
            (OrderItem("tea", 2, 1_000),),
            500,
            devnet.dev_account_key("arbiter").address,
        )
        tx = self.sign("merchant1", "order.create", body)
        await _commit(self.served, tx)
        return tx.hash

    async def paid_and_shipped(self) -> bytes:
        order_id = await self.create()
        await _commit(self.served, self.sign("buyer1", "order.pay", OrderPay(order_id, 2_500)))
        ship = OrderShip(order_id, bytes(32))
        await _commit(self.served, self.sign("merchant1", "order.ship", ship))
        return order_id

    async def history(self, order_id: bytes) -> Any:
        answer = await self.served.result("sec_getOrderHistory", {"order_id": order_id.hex()})
        OrderHistoryResult.model_validate(answer)
        return answer

    def now_s(self) -> int:
        return self.served.node.head.time_s


def _steps(answer: Any) -> list[tuple[str, str, str]]:
    return [(e["type"], e["event"], e["state"]) for e in answer["events"]]


@pytest.mark.asyncio
async def test_history_follows_transactions_with_actors_and_the_next_deadline() -> None:
    async with serve() as served:
        orders = _Orders(served)
        order_id = await orders.create()
        created = await orders.history(order_id)
        assert _steps(created) == [("order.create", "created", "CREATED")]
        first = created["events"][0]
        assert (first["height"], first["index"], first["tx_hash"]) == (1, 0, order_id.hex())
        assert first["actor"] == _text("merchant1") and first["time_s"] == orders.now_s()
        assert created["order"]["state"] == "CREATED"
        assert created["next_deadline"] == {
            "state": "CREATED",
            "due_s": orders.now_s() + WINDOWS["cancel_window_s"],
            "outcome": "cancelled if the buyer has not paid",
        }
        pay = orders.sign("buyer1", "order.pay", OrderPay(order_id, 2_500))
        await _commit(served, pay)
        ship = orders.sign("merchant1", "order.ship", OrderShip(order_id, bytes(32)))
        confirm = orders.sign("buyer1", "order.confirm", OrderConfirm(order_id))
        await _commit(served, ship, confirm)  # one block: index 0 and 1
        answer = await orders.history(order_id)
        assert _steps(answer) == [
            ("order.create", "created", "CREATED"),
            ("order.pay", "paid", "FUNDED"),
            ("order.ship", "shipped", "SHIPPED"),
            ("order.confirm", "received", "RECEIVED"),
        ]
        events = answer["events"]
        assert [e["actor"] for e in events[1:]] == [
            _text("buyer1"),
            _text("merchant1"),
            _text("buyer1"),
        ]
        assert [(e["height"], e["index"]) for e in events[2:]] == [(3, 0), (3, 1)]
        assert [e["tx_hash"] for e in events[1:]] == [tx.hash.hex() for tx in (pay, ship, confirm)]
        assert answer["next_deadline"] == {
            "state": "RECEIVED",
            "due_s": orders.now_s() + WINDOWS["return_window_s"],
            "outcome": "completed and paid out if nothing is returned or disputed",
        }
        order = await served.result("sec_getOrder", {"order_id": order_id.hex()})
        assert answer["order"] == order["order"]


@pytest.mark.asyncio
async def test_a_passed_deadline_appears_as_a_deadline_event() -> None:
    async with serve() as served:
        orders = _Orders(served)
        order_id = await orders.create()
        await _commit(served, orders.sign("buyer1", "order.pay", OrderPay(order_id, 2_500)))
        paid = await orders.history(order_id)
        due_s = paid["next_deadline"]["due_s"]
        assert paid["next_deadline"]["outcome"] == "full refund to the buyer if not shipped"
        served.node.commit_pending((due_s - 1) * 1000)  # not yet due
        assert _steps(await orders.history(order_id))[-1] == ("order.pay", "paid", "FUNDED")
        served.node.commit_pending(due_s * 1000)  # the first block with t >= deadline refunds
        answer = await orders.history(order_id)
        assert _steps(answer)[-1] == ("deadline", "refunded", "REFUNDED")
        last = answer["events"][-1]
        assert (last["index"], last["tx_hash"], last["actor"]) == (None, None, None)
        assert (last["height"], last["time_s"]) == (served.node.head.height, due_s)
        assert answer["order"]["state"] == "REFUNDED" and answer["next_deadline"] is None


@pytest.mark.asyncio
async def test_a_late_block_passing_two_deadlines_shows_both_in_order() -> None:
    async with serve() as served:
        orders = _Orders(served)
        order_id = await orders.paid_and_shipped()
        late_s = orders.now_s() + WINDOWS["confirm_window_s"] + WINDOWS["return_window_s"] + 5
        served.node.commit_pending(late_s * 1000)
        answer = await orders.history(order_id)
        assert _steps(answer)[-3:] == [
            ("order.ship", "shipped", "SHIPPED"),
            ("deadline", "received", "RECEIVED"),
            ("deadline", "completed", "COMPLETED"),
        ]
        assert {e["height"] for e in answer["events"][-2:]} == {served.node.head.height}


@pytest.mark.asyncio
async def test_a_deadline_comes_before_the_transactions_of_its_block() -> None:
    async with serve() as served:
        orders = _Orders(served)
        order_id = await orders.paid_and_shipped()
        # Receipt is assumed at the start of this block; the buyer's return in it then applies.
        at_s = orders.now_s() + WINDOWS["confirm_window_s"] + 1
        ret = orders.sign("buyer1", "order.return", OrderReturn(order_id, (0,)))
        await _commit(served, ret, at_ms=at_s * 1000)
        answer = await orders.history(order_id)
        assert _steps(answer)[-2:] == [
            ("deadline", "received", "RECEIVED"),
            ("order.return", "return_requested", "RETURN_REQUESTED"),
        ]
        assert answer["next_deadline"]["state"] == "RETURN_REQUESTED"


@pytest.mark.asyncio
async def test_a_superseded_deadline_adds_nothing() -> None:
    async with serve() as served:
        orders = _Orders(served)
        order_id = await orders.create()
        # Paid in time: the CREATED deadline entry stays queued and is popped later, superseded.
        await _commit(served, orders.sign("buyer1", "order.pay", OrderPay(order_id, 2_500)))
        ship = OrderShip(order_id, bytes(32))
        await _commit(served, orders.sign("merchant1", "order.ship", ship))
        confirm = OrderConfirm(order_id)
        await _commit(served, orders.sign("buyer1", "order.confirm", confirm))
        dispute = OrderDispute(order_id, None)
        await _commit(served, orders.sign("buyer1", "order.dispute", dispute))
        served.node.commit_pending((orders.now_s() + WINDOWS["cancel_window_s"]) * 1000)
        answer = await orders.history(order_id)
        # The cancel-window and ship-deadline entries passed too; only DISPUTED's default ran.
        assert [step[1] for step in _steps(answer)] == [
            "created",
            "paid",
            "shipped",
            "received",
            "disputed",
            "refunded",
        ]


@pytest.mark.asyncio
async def test_a_group_members_order_is_created_by_the_join() -> None:
    async with serve() as served:
        orders = _Orders(served)
        arbiter = devnet.dev_account_key("arbiter").address
        deadline_s = orders.now_s() + 3_600
        terms = GroupOpen(b"\x22" * 32, 900, 2, 3, deadline_s, 100, 50, arbiter)
        opened = orders.sign("merchant1", "group.open", terms)
        await _commit(served, opened)
        first = orders.sign("buyer1", "group.join", GroupJoin(opened.hash, 850, None, None))
        second = orders.sign("buyer3", "group.join", GroupJoin(opened.hash, 950, None, None))
        await _commit(served, first, second)
        answer = await orders.history(member_order_id(opened.hash, 0))
        # The second join formed the group: it opened both members' orders, FUNDED.
        assert _steps(answer) == [("group.join", "created", "FUNDED")]
        event = answer["events"][0]
        assert (event["index"], event["tx_hash"]) == (1, second.hash.hex())
        assert event["actor"] == _text("buyer3")
        assert answer["order"]["buyer"] == _text("buyer1")
        assert answer["next_deadline"]["outcome"] == "full refund to the buyer if not shipped"


@pytest.mark.asyncio
async def test_invalid_order_history_params_and_unknown_orders() -> None:
    async with serve() as served:
        error = await served.error("sec_getOrderHistory", {"order_id": "ab" * 32})
        assert error["code"] == NOT_FOUND.code
        for bad in ("ab" * 31, "zz" * 32, 7):
            error = await served.error("sec_getOrderHistory", {"order_id": bad})
            assert error["code"] == -32602, (bad, error)
        # A transaction hash that is not an order is no order either.
        tx = sign("buyer1", 0, "credit.transfer", _transfer())
        await _commit(served, tx)
        error = await served.error("sec_getOrderHistory", {"order_id": tx.hash.hex()})
        assert error["code"] == NOT_FOUND.code


@pytest.mark.asyncio
async def test_history_starts_where_the_index_starts() -> None:
    async with serve() as served:
        orders = _Orders(served)
        store = served.node.store
        indexers = list(store._indexers)
        store._indexers.clear()  # a store written by a node without the index
        order_id = await orders.create()
        store._indexers.extend(indexers)
        await _commit(served, orders.sign("buyer1", "order.pay", OrderPay(order_id, 2_500)))
        answer = await orders.history(order_id)
        assert _steps(answer) == [("order.pay", "paid", "FUNDED")]


@pytest.mark.asyncio
async def test_index_rows_stay_out_of_the_state() -> None:
    async with serve() as served:
        orders = _Orders(served)
        order_id = await orders.paid_and_shipped()
        node = served.node
        rows = list(node.store.index_rows(ORDER_EVENTS_PREFIX + order_id))
        assert len(rows) == 3
        # The store's state rows still fold to the head's state root (verify_state), and the
        # index's own rows are under their prefix only.
        _, _, head = open_chain(node.store.kv, node.genesis, TX_TYPES, verify_state=True)
        assert head == node.head
        assert list(order_events(node.store, order_id, 2))[-1].state == "FUNDED"


# --- sec_getTrustDistribution ------------------------------------------------------------------


async def _commit_epoch(served: Served, orders: _Orders) -> int:
    """Complete an order, have both parties attest, commit blocks until an epoch holds both
    attestations; its number."""
    order_id = await orders.paid_and_shipped()
    await _commit(served, orders.sign("buyer1", "order.confirm", OrderConfirm(order_id)))
    served.node.commit_pending((orders.now_s() + WINDOWS["return_window_s"]) * 1000)
    merchant, buyer = (devnet.dev_account_key(n).address for n in ("merchant1", "buyer1"))
    await _commit(
        served,
        orders.sign("buyer1", "trust.attest", Attest(order_id, merchant, 1)),
        orders.sign("merchant1", "trust.attest", Attest(order_id, buyer, 1)),
    )
    return await _next_epoch(served, attestations=2)


async def _next_epoch(served: Served, attestations: int) -> int:
    """Commit empty blocks until a new epoch with `attestations` inputs is committed."""
    before = get_epoch(served.node.state)
    for _ in range(100):
        served.node.commit_pending()
        epoch = get_epoch(served.node.state)
        if epoch is not None and epoch != before and epoch.attestations == attestations:
            return epoch.epoch
    raise AssertionError("no epoch was committed within 100 blocks")


@pytest.mark.asyncio
async def test_distribution_counts_every_scored_account_and_lists_the_top() -> None:
    async with serve() as served:
        error = await served.error("sec_getTrustDistribution")
        assert error["code"] == NOT_FOUND.code  # no epoch yet
        number = await _commit_epoch(served, _Orders(served))
        answer = await served.result("sec_getTrustDistribution")
        TrustDistributionResult.model_validate(answer)
        record = get_epoch(served.node.state)
        assert record is not None and answer["epoch"] == number == record.epoch
        assert answer["accounts"] == record.accounts
        scores = {}
        for key, raw in served.node.store.state_rows(SCORE_PREFIX):
            scores[key[len(SCORE_PREFIX) :]] = parse_score_record(raw)[0]
        assert len(scores) == answer["accounts"]
        assert answer["scored"] == sum(1 for s in scores.values() if s > 0) > 0
        buckets = answer["buckets"]
        assert len(buckets) == 10 and sum(b["count"] for b in buckets) == answer["accounts"]
        top_score = max(scores.values())
        assert (buckets[0]["low"], buckets[-1]["high"]) == (0, top_score)
        assert buckets[-1]["count"] == sum(1 for s in scores.values() if s * 10 >= top_score * 9)
        expected = sorted((a for a, s in scores.items() if s > 0), key=lambda a: (-scores[a], a))
        assert [t["address"] for t in answer["top"]] == [format_address(a) for a in expected[:20]]
        for entry in answer["top"]:
            score = await served.result("sec_getTrustScore", {"address": entry["address"]})
            assert entry["score"] == score["score"]
        assert await served.result("sec_getTrustDistribution", {"epoch": number}) == answer
        error = await served.error("sec_getTrustDistribution", {"epoch": number + 1})
        assert error["code"] == NOT_FOUND.code
        error = await served.error("sec_getTrustDistribution", {"epoch": 0})
        assert error["code"] == -32602


@pytest.mark.asyncio
async def test_distribution_is_scanned_once_per_epoch_in_a_worker_thread() -> None:
    async with serve() as served:
        orders = _Orders(served)
        first = await _commit_epoch(served, orders)
        worker = Worker()
        distributions = TrustDistributions(served.node, worker)
        latest = GetTrustDistributionParams()
        answer = await distributions.get(latest)
        assert (answer.epoch, distributions.scans, worker.ran) == (first, 1, 1)
        assert await distributions.get(GetTrustDistributionParams(epoch=first)) == answer
        assert distributions.scans == 1  # cached
        second = await _next_epoch(served, attestations=2)
        assert (await distributions.get(latest)).epoch == second
        assert distributions.scans == 2
        # The earlier epoch's scores are no longer in state, but its summary is kept.
        assert await distributions.get(GetTrustDistributionParams(epoch=first)) == answer
        third = await _next_epoch(served, attestations=2)
        await distributions.get(latest)
        assert distributions.scans == 3 and third == first + 2
        with pytest.raises(RpcError) as raised:  # only the last two summaries are kept
            await distributions.get(GetTrustDistributionParams(epoch=first))
        assert raised.value.code == NOT_FOUND.code


def test_buckets_split_zero_to_the_maximum_into_ten_equal_widths() -> None:
    address = [bytes([n]) * 20 for n in range(30)]
    rows = [
        (SCORE_PREFIX + address[n], _score_record(score))
        for n, score in enumerate([0, 0, 1, 5, 9, 10, 49, 50, 99, 100])
    ]
    result = summarize(7, rows)
    assert (result.epoch, result.accounts, result.scored) == (7, 10, 8)
    bounds = [(b.low, b.high) for b in result.buckets]
    assert bounds == [(10 * i, 10 * i + 10) for i in range(10)]
    assert [b.count for b in result.buckets] == [5, 1, 0, 0, 1, 1, 0, 0, 0, 2]
    assert [t.score for t in result.top] == [100, 99, 50, 49, 10, 9, 5, 1]
    # Uneven widths: each score s is in bucket floor(10 s / max), inside its bounds.
    rows = [(SCORE_PREFIX + address[n], _score_record(n)) for n in range(8)]
    result = summarize(1, rows)
    for bucket in result.buckets[:-1]:
        assert bucket.count == sum(1 for s in range(8) if bucket.low <= s < bucket.high)
    assert result.buckets[-1].high == 7 and sum(b.count for b in result.buckets) == 8


def test_distribution_of_all_zero_scores_and_the_top_cap_with_ties() -> None:
    zeros = [(SCORE_PREFIX + bytes([n]) * 20, _score_record(0)) for n in range(3)]
    result = summarize(1, zeros)
    assert [b.count for b in result.buckets] == [3] + [0] * 9
    assert {(b.low, b.high) for b in result.buckets} == {(0, 0)} and result.top == []
    tied = [(SCORE_PREFIX + bytes([30 - n]) * 20, _score_record(7)) for n in range(25)]
    result = summarize(1, tied)
    assert len(result.top) == 20
    assert [t.address for t in result.top] == sorted(bytes([30 - n]) * 20 for n in range(25))[:20]


def _score_record(score: int) -> bytes:
    return encode([score, 1, 0])


class _EpochDuringScan(Worker):
    """A worker that lets the chain commit a new epoch just before its first scan runs."""

    def __init__(self, served: Served) -> None:
        super().__init__()
        self.served = served
        self.armed = True

    async def run(self, function: Callable[[], T]) -> T:
        if self.armed:
            self.armed = False
            await _next_epoch(self.served, attestations=2)
        return await super().run(function)


@pytest.mark.asyncio
async def test_a_scan_that_raced_with_an_epoch_commit_is_done_again() -> None:
    async with serve() as served:
        first = await _commit_epoch(served, _Orders(served))
        distributions = TrustDistributions(served.node, _EpochDuringScan(served))
        answer = await distributions.get(GetTrustDistributionParams())
        # The rows read belonged to the next epoch: the answer is that epoch's, scanned again.
        assert (answer.epoch, distributions.scans) == (first + 1, 2)
        with pytest.raises(RpcError):
            await distributions.get(GetTrustDistributionParams(epoch=first))


# --- on a real node ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_real_node_records_commits_and_order_events_and_reseeds_on_restart(
    tmp_path: Path,
) -> None:
    """Four real nodes (LevelDB, driver, Node's own commit callback) wired in memory."""
    network = make_network(tmp_path)
    clock = ManualClock(time.time())
    nodes = {name: open_node(network, name, clock=clock) for name in NAMES}
    node0 = nodes["node0"]
    body = OrderCreate(
        devnet.dev_account_key("buyer1").address,
        (OrderItem("tea", 1, 100),),
        0,
        devnet.dev_account_key("arbiter").address,
    )
    create = sign_transaction(
        devnet.dev_account_key("merchant1"),
        devnet.DEV_CHAIN_ID,
        0,
        body,
        genesis_hash=node0.genesis.document_hash(),
    )
    try:
        async with asyncio.TaskGroup() as tasks:
            mesh = Mesh(nodes, tasks)
            for name, node in nodes.items():
                mesh.drivers[name].on_commit = node._on_commit
                node.mempool.admit(create, node._lookup)
                mesh.drivers[name].on_transactions_pending()
            for _ in range(30):
                await mesh.run(clock, 1.0)
                if all(node.store.find_transaction(create.hash) for node in nodes.values()):
                    break
            await mesh.run(clock, 2.0)
            mesh.stop()
        head = node0.app.head.height
        recent = node0.activity.newest_first()
        assert recent[0].height == head and recent[0].committed_ms is not None
        assert recent[0].finality_ms is not None and recent[0].finality_ms >= 0
        assert [e.event for e in order_events(node0.store, create.hash, 10)] == ["created"]
        dispatcher = Dispatcher(method_table(node0), Limits())
        request = {"jsonrpc": "2.0", "id": 1, "method": "sec_getNetwork", "params": {}}
        body_out = await dispatcher.handle(json.dumps(request).encode())
        assert body_out is not None
        answer = json.loads(body_out)["result"]
        assert answer["height"] == head and answer["peers"] == []  # no p2p host running
        signed = [v["last_signed_height"] for v in answer["validators"]]
        assert max(s for s in signed if s is not None) == head
        before = dict(node0.activity.last_signed)
    finally:
        for node in nodes.values():
            node.store.close()
    reopened = open_node(network, "node0", clock=clock)
    try:
        assert reopened.activity.last_signed == before
        assert reopened.activity.newest_first()[0].height == head
        assert all(b.committed_ms is None for b in reopened.activity.recent)
        assert [e.event for e in order_events(reopened.store, create.hash, 10)] == ["created"]
    finally:
        reopened.store.close()
