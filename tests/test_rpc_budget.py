"""A hostile RPC client cannot stall the node: cost and reply budgets, rate limits, caches,
cursor seeks and heavy replies off the event loop (docs/rpc.md "Budgets and rate limits")."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import ledger.blocks
import ledger.kv
import ledger.store
from contracts import TX_TYPES
from contracts.orders import OrderCreate, OrderItem
from ledger.blocks import Block
from ledger.keys import format_address
from ledger.kv import Batch, KeyValueStore
from ledger.merkle import inclusion_proof, leaf_hash, merkle_root
from ledger.store import ChainStore, open_chain
from ledger.store_leveldb import LevelDBStore, LevelDBView
from ledger.transactions import SignedTransaction, Transfer, TxTypes
from secnode.network import devnet
from secnode.runtime.rpc.budget import (
    DEFAULT_SLICE_S,
    REPLY_BYTES_PER_STORED_BYTE,
    DutyCycle,
    ReplyBudget,
    Turnstile,
)
from secnode.runtime.rpc.jsonrpc import Dispatcher, Limits
from secnode.runtime.rpc.methods import RpcMethods, method_table, path_from_levels, tree_levels
from secnode.runtime.rpc.ratelimit import RateLimit, RateLimiter
from secnode.runtime.rpc.server import RpcConfig
from secnode.schema import models as m
from secnode.schema.objects import Transaction
from tests.rpc_node import RpcTestNode, serve, sign

OVER_BUDGET = -32005
RATE_LIMITED = -32006


def _transfers(count: int) -> list[SignedTransaction]:
    to = devnet.dev_account_key("buyer2").address
    return [sign("buyer1", n, "credit.transfer", Transfer(to, 1)) for n in range(count)]


async def _node_with_block(count: int) -> tuple[RpcTestNode, Block, list[SignedTransaction]]:
    node = RpcTestNode()
    txs = _transfers(count)
    for tx in txs:
        await node.submit(tx)
    result = node.commit_pending()
    assert len(result.block.transactions) == count
    return node, result.block, txs


def _counting(calls: list[int], function: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def counted(value: Any) -> Any:
        calls.append(1)
        return function(value)

    return counted


def _request(method: str, params: dict[str, Any], request_id: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


async def _answer(dispatcher: Dispatcher, payload: Any) -> Any:
    body = await dispatcher.handle(json.dumps(payload).encode())
    assert body is not None
    return json.loads(body)


# --- cost budget -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_invalid_batch_over_the_cost_budget_is_refused_before_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    node, block, _ = await _node_with_block(3)
    built: list[int] = []
    original = Transaction.of
    monkeypatch.setattr(Transaction, "of", _counting(built, original))
    dispatcher = Dispatcher(method_table(node), Limits())
    batch = [
        _request("sec_getBlock", {"height": block.height, "full": True}, i) for i in range(100)
    ]
    answer = await _answer(dispatcher, batch)
    assert answer["id"] is None
    assert answer["error"]["code"] == OVER_BUDGET
    assert answer["error"]["data"] == {"budget": "cost", "limit": 1000, "amount": 100 * 202}
    assert "batch needs 20200 cost units, the limit is 1000" in answer["error"]["message"]
    assert built == []  # nothing ran


@pytest.mark.asyncio
async def test_a_batch_within_the_cost_budget_runs() -> None:
    node, _, txs = await _node_with_block(3)
    dispatcher = Dispatcher(method_table(node), Limits())
    batch = [_request("sec_getTransaction", {"hash": tx.hash.hex()}, i) for i, tx in enumerate(txs)]
    answers = await _answer(dispatcher, batch)
    assert [a["result"]["index"] for a in answers] == [0, 1, 2]


# --- reply bytes -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_invalid_full_block_over_the_reply_cap_is_refused_not_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    node, block, _ = await _node_with_block(40)
    built: list[int] = []
    original = Transaction.of
    monkeypatch.setattr(Transaction, "of", _counting(built, original))
    limit = 16 * 1024
    stored_block = node.store.get_block_bytes(block.height)
    assert stored_block is not None and len(stored_block) * REPLY_BYTES_PER_STORED_BYTE > limit
    dispatcher = Dispatcher(method_table(node), Limits(max_reply_bytes=limit))
    answer = await _answer(
        dispatcher, _request("sec_getBlock", {"height": block.height, "full": True})
    )
    assert answer["error"]["code"] == OVER_BUDGET, answer
    assert answer["error"]["data"]["budget"] == "reply_bytes"
    assert answer["error"]["data"]["limit"] == limit
    assert answer["error"]["data"]["amount"] > limit
    assert built == []
    # the same block without `full` fits
    answer = await _answer(dispatcher, _request("sec_getBlock", {"height": block.height}))
    assert answer["result"]["tx_count"] == 40


@pytest.mark.asyncio
async def test_a_batch_reply_never_exceeds_the_cap() -> None:
    node, _, txs = await _node_with_block(20)
    one = await _answer(
        Dispatcher(method_table(node), Limits()),
        _request("sec_getTransaction", {"hash": txs[0].hash.hex()}),
    )
    size = len(json.dumps(one, separators=(",", ":")))
    limit = 5 * size
    dispatcher = Dispatcher(method_table(node), Limits(max_reply_bytes=limit))
    batch = [_request("sec_getTransaction", {"hash": tx.hash.hex()}, i) for i, tx in enumerate(txs)]
    body = await dispatcher.handle(json.dumps(batch).encode())
    assert body is not None
    answers = json.loads(body)
    ok = [a for a in answers if "result" in a]
    refused = [a for a in answers if "error" in a]
    assert 1 <= len(ok) <= 5 and len(refused) == 20 - len(ok)
    assert all(a["error"]["code"] == OVER_BUDGET for a in refused)
    assert sum(len(json.dumps(a, separators=(",", ":"))) for a in ok) <= limit


@pytest.mark.asyncio
async def test_full_block_reply_is_within_the_estimate() -> None:
    merchant_orders = [
        sign(
            "merchant1",
            n,
            "order.create",
            OrderCreate(
                devnet.dev_account_key("buyer1").address,
                (OrderItem("tea", 2, 1_000), OrderItem("cup", 1, 250)),
                500,
                devnet.dev_account_key("arbiter").address,
                None,
                None,
            ),
        )
        for n in range(10)
    ]
    for txs in (_transfers(30), merchant_orders):
        node = RpcTestNode()
        for tx in txs:
            await node.submit(tx)
        height = node.commit_pending().block.height
        methods = RpcMethods(node)
        result = await methods.get_block(m.GetBlockParams(height=height, full=True))
        reply = len(json.dumps(result.model_dump(mode="json"), separators=(",", ":")))
        stored = node.store.stored_size(height)
        assert stored is not None and reply <= stored * REPLY_BYTES_PER_STORED_BYTE


# --- rate limit ------------------------------------------------------------------------------


def test_rate_limiter_refills_at_its_rate_and_caps_at_the_burst() -> None:
    limiter = RateLimiter(RateLimit(rate_per_s=10, burst=20))
    assert limiter.take("a", 20, now=0.0) is None
    assert limiter.take("a", 5, now=0.0) == pytest.approx(0.5)
    assert limiter.take("b", 5, now=0.0) is None  # per client
    assert limiter.take("a", 5, now=0.5) is None
    assert limiter.take("a", 1, now=0.4) == pytest.approx(0.1)  # time going back adds nothing
    assert limiter.take("a", 20, now=100.0) is None  # refilled to the burst, not beyond
    assert limiter.take("a", 1, now=100.0) is not None


def test_rate_limiter_tracks_a_bounded_number_of_clients() -> None:
    limiter = RateLimiter(RateLimit(rate_per_s=1, burst=1, max_clients=3))
    for client in range(100):
        limiter.take(str(client), 1, now=0.0)
    assert len(limiter._buckets) == 3


@pytest.mark.asyncio
async def test_invalid_rate_limited_client_gets_429_with_retry_after() -> None:
    config = RpcConfig(rate_limit_per_s=0.01, rate_limit_burst=10)
    async with serve(config) as served:
        batch = [_request("sec_status", {}, i) for i in range(10)]
        status, answers = await served.post(json.dumps(batch))
        assert status == 200 and all("result" in a for a in answers)
        async with served.session.post(
            served.url + "/rpc", data=json.dumps(_request("sec_status", {}))
        ) as response:
            assert response.status == 429
            retry_after = int(response.headers["Retry-After"])
            answer = await response.json()
        error = answer["error"]
        assert error["code"] == RATE_LIMITED
        assert error["data"]["limit_per_s"] == 0.01 and error["data"]["burst"] == 10
        assert 90 <= error["data"]["retry_after_s"] <= 100  # one unit at 0.01/s
        assert retry_after >= 90
        assert "rate limit of 0.01 cost units/s" in error["message"]
        assert served.metrics.render().count('outcome="rate_limited"') == 1


@pytest.mark.asyncio
async def test_default_rate_limit_admits_a_busy_client() -> None:
    """A loopback client may send 3,000 transactions in 30 batches back to back (what `sec bench
    cluster` offers a node in a second or two) without meeting the default limit."""
    async with serve() as served:
        for _ in range(30):
            batch = [_request("sec_sendTransaction", {"tx": "00"}, i) for i in range(100)]
            status, answers = await served.post(json.dumps(batch))
            assert status == 200 and all(a["error"]["code"] == -32602 for a in answers)


# --- decoded block cache ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_get_transaction_decodes_the_block_once(monkeypatch: pytest.MonkeyPatch) -> None:
    node, block, txs = await _node_with_block(30)
    decodes: list[int] = []
    original = ledger.blocks.decode_block

    def counting(raw: bytes, types: TxTypes) -> Block:
        decodes.append(len(raw))
        return original(raw, types)

    monkeypatch.setattr(ledger.store, "decode_block", counting)
    dispatcher = Dispatcher(method_table(node), Limits())
    for tx in txs:
        answer = await _answer(dispatcher, _request("sec_getTransaction", {"hash": tx.hash.hex()}))
        assert answer["result"]["height"] == block.height
    assert len(decodes) <= 1


# --- listOrders seeks ------------------------------------------------------------------------


class CountingStore:
    """A real LevelDB store that counts the rows its iterators hand out."""

    def __init__(self, inner: LevelDBStore) -> None:
        self.inner = inner
        self.rows_read = 0

    def get(self, key: bytes) -> bytes | None:
        return self.inner.get(key)

    def write(self, batch: Batch, *, sync: bool = True) -> None:
        self.inner.write(batch, sync=sync)

    def iterate(self, prefix: bytes, *args: Any) -> Iterator[tuple[bytes, bytes]]:
        for row in self.inner.iterate(prefix, *args):
            self.rows_read += 1
            yield row

    def close(self) -> None:
        self.inner.close()

    def read_view(self) -> LevelDBView:
        return self.inner.read_view()


@pytest.mark.asyncio
async def test_list_orders_page_n_does_not_read_earlier_pages(tmp_path: Path) -> None:
    node = RpcTestNode()
    kv = CountingStore(LevelDBStore(tmp_path / "db"))
    counted: KeyValueStore = kv
    store, state, head = open_chain(counted, node.genesis, TX_TYPES)
    node.store, node.state, node.head = store, state, head
    buyer, arbiter = (
        devnet.dev_account_key("buyer1").address,
        devnet.dev_account_key("arbiter").address,
    )
    for n in range(40):
        body = OrderCreate(buyer, (OrderItem("tea", 1, 100 + n),), 500, arbiter, None, None)
        await node.submit(sign("merchant1", n, "order.create", body))
    assert all(r.ok for r in node.commit_pending().receipts)
    methods = RpcMethods(node)
    merchant = format_address(devnet.dev_account_key("merchant1").address)
    cursor: str | None = None
    seen: list[bytes] = []
    reads: list[int] = []
    for _ in range(4):
        before = kv.rows_read
        page = await methods.list_orders(
            m.ListOrdersParams(party=merchant, role="merchant", limit=10, cursor=cursor)
        )
        reads.append(kv.rows_read - before)
        seen.extend(entry.order.order_id for entry in page.orders)
        cursor = None if page.next_cursor is None else page.next_cursor.hex()
    assert len(seen) == 40 and seen == sorted(seen)
    assert max(reads) <= 11, reads  # one page and the look-ahead row, whatever the page
    store.close()


def test_state_rows_after_is_a_seek_on_memory_and_leveldb(tmp_path: Path) -> None:
    for kv in (ledger.kv.MemoryStore(), LevelDBStore(tmp_path / "db")):
        chain = ChainStore(kv, TX_TYPES)
        kv.write([(b"Sp:" + bytes([i]), b"v") for i in range(5)] + [(b"Sq:", b"w")])
        keys = [k for k, _ in chain.state_rows(b"p:", after=bytes([1]))]
        assert keys == [b"p:" + bytes([i]) for i in (2, 3, 4)]
        assert [k for k, _ in chain.state_rows(b"p:", after=bytes([4]))] == []
        chain.close()


# --- heavy work off the event loop -----------------------------------------------------------


@pytest.mark.asyncio
async def test_full_block_is_built_while_the_event_loop_keeps_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The full-block JSON is built while a ticker on the loop keeps ticking: the building
    thread waits until the ticker has ticked during the build (a deadlock guard fails the test
    if the build runs on the loop itself, which would freeze the ticker)."""
    node, block, _ = await _node_with_block(5)
    ticks = 0
    building = threading.Event()
    ticked_meanwhile = threading.Event()
    original = Transaction.of

    def slow_transaction_json(tx: Any) -> Any:
        building.set()
        ticked_meanwhile.wait(10)  # a guard, not a timing: set by the ticker below
        return original(tx)

    monkeypatch.setattr(Transaction, "of", slow_transaction_json)
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            await asyncio.sleep(0)
            ticks += 1
            if building.is_set() and ticks >= 3:
                ticked_meanwhile.set()

    dispatcher = Dispatcher(method_table(node), Limits())
    async with asyncio.TaskGroup() as group:
        group.create_task(ticker())
        answer = await _answer(
            dispatcher, _request("sec_getBlock", {"height": block.height, "full": True})
        )
        stop.set()
    assert ticked_meanwhile.is_set(), "the event loop was blocked while the block was built"
    assert len(answer["result"]["transactions"]) == 5


def test_reply_budget_counts_what_fits() -> None:
    budget = ReplyBudget(10)
    assert budget.fits(10) and not budget.fits(11)


def test_proofs_from_cached_tree_levels_equal_the_rfc_paths() -> None:
    for size in range(1, 70):
        leaves = [leaf_hash(bytes([i % 256, i // 256])) for i in range(size)]
        levels = tree_levels(leaves)
        assert levels[-1] == (merkle_root(leaves),)
        for index in range(size):
            assert path_from_levels(levels, index) == inclusion_proof(leaves, index), (size, index)


@pytest.mark.asyncio
async def test_calls_of_a_batch_take_turns_with_the_rest_of_the_event_loop() -> None:
    """Between calls of a batch the loop runs other work (consensus) once a slice of RPC work
    is used: a ticker that advances once per loop iteration has moved on between successive
    calls that each use a slice (cheap calls share one turn per slice)."""
    node = RpcTestNode()
    ticks = 0
    seen: list[int] = []
    original = node.status

    def status() -> Any:
        seen.append(ticks)
        busy_until = time.perf_counter() + DEFAULT_SLICE_S * 1.5
        while time.perf_counter() < busy_until:  # a call that fills its slice
            pass
        return original()

    node.status = status  # type: ignore[method-assign]
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            await asyncio.sleep(0)
            ticks += 1

    dispatcher = Dispatcher(method_table(node), Limits())
    async with asyncio.TaskGroup() as group:
        group.create_task(ticker())
        answers = await _answer(dispatcher, [_request("sec_status", {}, i) for i in range(10)])
        stop.set()
    assert len(answers) == 10 and all("result" in a for a in answers)
    assert all(later > earlier for earlier, later in itertools.pairwise(seen)), seen


@pytest.mark.asyncio
async def test_rpc_reads_keep_to_their_share_of_the_loop() -> None:
    """After a read that held the loop for d seconds, the next one waits (1/share - 1) * d:
    with share 0.5 a hammering client gets at most half of the loop (fake clock, recorded
    sleeps; the turn given up while a worker thread runs is not counted)."""
    now = 100.0
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    turnstile = Turnstile(DutyCycle(0.5, clock=lambda: now, sleep=sleep))
    async with turnstile.turn():
        now += 0.2  # the call holds the loop for 0.2 s

    async def in_thread() -> None:
        nonlocal now
        now += 5.0  # a worker thread's time is not the loop's

    async with turnstile.turn():
        now += 0.1
        await turnstile._give_up_during(_current_hold_for_test(), in_thread())
    async with turnstile.turn():
        pass
    assert sleeps == [0.0, pytest.approx(0.2), pytest.approx(0.1)]  # not 5.1
    with pytest.raises(ValueError, match="share 0 is not in"):
        DutyCycle(0)


def _current_hold_for_test() -> Any:
    from secnode.runtime.rpc import budget

    hold = budget._current_hold.get()
    assert hold is not None
    return hold


@pytest.mark.asyncio
async def test_invalid_refused_bodies_are_charged_to_the_client() -> None:
    """Garbage and over-budget batches are not free: they drain the sender's bucket."""
    node = RpcTestNode()
    limiter = RateLimiter(RateLimit(rate_per_s=1, burst=150))
    dispatcher = Dispatcher(method_table(node), Limits(), limiter=limiter, clock=lambda: 0.0)
    garbage = await dispatcher.respond(b"x" * (128 * 1024), "10.0.0.1")
    assert garbage.retry_after_s is None and b"-32700" in (garbage.body or b"")
    too_big = [_request("sec_getBlock", {"full": True}, i) for i in range(100)]
    refused = await dispatcher.respond(json.dumps(too_big).encode(), "10.0.0.1")
    assert b"-32005" in (refused.body or b"")
    # 3 + 100 units spent of 150: a 100-unit batch must now wait
    batch = [_request("sec_status", {}, i) for i in range(100)]
    limited = await dispatcher.respond(json.dumps(batch).encode(), "10.0.0.1")
    assert limited.retry_after_s == pytest.approx(53.0)
    assert b"-32006" in (limited.body or b"")
    assert (await dispatcher.respond(json.dumps(batch).encode(), "10.0.0.2")).retry_after_s is None
