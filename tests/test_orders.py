"""Orders and escrow: every transition, every deadline and one `test_invalid_*` per rule.

A rejected transaction must leave the state as it found it (only the sender's nonce moves):
`_rejected` checks that on the whole state map.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from contracts import escrow
from contracts.deadlines import QUEUES_KEY, pending_count
from contracts.orders import (
    CANCELLED,
    COMPLETED,
    CREATED,
    DISPUTED,
    FUNDED,
    RECEIVED,
    REFUNDED,
    RESOLVED,
    OrderCancel,
    OrderConfirm,
    OrderCreate,
    OrderDispute,
    OrderItem,
    OrderPay,
    OrderResolve,
    OrderShip,
    party_key,
)
from ledger.accounts import get_account, get_supply
from ledger.encoding import decode
from ledger.execution import BlockContext
from ledger.keys import PrivateKey
from ledger.state import State
from ledger.transactions import AccountRegister, AccountRoles, ParameterSet
from tests.orderkit import WINDOWS, OrderChain, accepted, order_genesis, rejected, shipment

TOTAL = 2 * 1_000 + 500  # the default order of OrderChain.create


@pytest.fixture
def chain() -> OrderChain:
    return OrderChain(genesis=order_genesis())


def _funded(chain: OrderChain, **create: Any) -> bytes:
    order_id = chain.create(**create)
    accepted(chain, "buyer1", "order.pay", OrderPay(order_id, chain.order(order_id).total))
    return order_id


def _shipped(chain: OrderChain, **create: Any) -> bytes:
    order_id = _funded(chain, **create)
    accepted(chain, "merchant1", "order.ship", OrderShip(order_id, shipment("SF1")))
    return order_id


def _received(chain: OrderChain, **create: Any) -> bytes:
    order_id = _shipped(chain, **create)
    accepted(chain, "buyer1", "order.confirm", OrderConfirm(order_id))
    return order_id


def _disputed(chain: OrderChain, **create: Any) -> bytes:
    order_id = _shipped(chain, **create)
    accepted(chain, "buyer1", "order.dispute", OrderDispute(order_id, shipment("broken")))
    return order_id


def _body(chain: OrderChain, **changes: Any) -> OrderCreate:
    fields: dict[str, Any] = {
        "buyer": chain.address("buyer1"),
        "items": (OrderItem("tea", 2, 1_000),),
        "shipping": 500,
        "arbiter": chain.address("arbiter"),
        "sharer": None,
        "commission_bps": None,
    }
    fields.update(changes)
    return OrderCreate(**fields)


def _conserved(chain: OrderChain) -> None:
    total, supply = chain.total_credits()
    assert total == supply


# --- the happy paths ---------------------------------------------------------------------------


def test_shopping_flow_pays_sharer_and_merchant(chain: OrderChain) -> None:
    start = {n: chain.balance(n) for n in ("buyer1", "merchant1", "sharer1")}
    order_id = chain.create(sharer="sharer1", commission_bps=1_234)
    order = chain.order(order_id)
    assert (order.state, order.goods, order.total, order.held) == (CREATED, 2_000, TOTAL, 0)
    assert order.due_s == order.created_s + WINDOWS["cancel_window_s"]
    paid = accepted(chain, "buyer1", "order.pay", OrderPay(order_id, TOTAL))
    assert paid.events[0] == {"event": "order.paid", "order_id": order_id, "amount": TOTAL}
    assert get_supply(chain.state).escrow == TOTAL
    assert chain.balance("buyer1") == start["buyer1"] - TOTAL
    accepted(chain, "merchant1", "order.ship", OrderShip(order_id, shipment("SF1")))
    assert chain.order(order_id).shipment_hash == shipment("SF1")
    accepted(chain, "buyer1", "order.confirm", OrderConfirm(order_id))
    received = chain.order(order_id)
    assert received.state == RECEIVED
    assert received.due_s == chain.now + WINDOWS["return_window_s"]
    chain.run([], received.due_s - 1)
    assert chain.order(order_id).state == RECEIVED
    chain.run([], received.due_s)
    done = chain.order(order_id)
    commission = 2_000 * 1_234 // 10_000  # 246
    assert (done.state, done.held, done.due_s, done.updated_s) == (
        COMPLETED,
        0,
        None,
        received.due_s,
    )
    assert (done.sharer_paid, done.merchant_paid, done.refunded) == (
        commission,
        TOTAL - commission,
        0,
    )
    assert chain.balance("sharer1") == start["sharer1"] + commission
    assert chain.balance("merchant1") == start["merchant1"] + TOTAL - commission
    assert get_supply(chain.state).escrow == 0
    assert pending_count(chain.state) == 3  # superseded: popped when their time comes
    _conserved(chain)


def test_create_indexes_every_party(chain: OrderChain) -> None:
    order_id = chain.create(sharer="sharer1", commission_bps=100)
    for name, role in [
        ("merchant1", "merchant"),
        ("buyer1", "buyer"),
        ("arbiter", "arbiter"),
        ("sharer1", "sharer"),
    ]:
        raw = chain.state.get(party_key(chain.address(name), order_id))
        assert raw is not None and decode(raw) == role
    assert chain.state.get(party_key(chain.address("buyer2"), order_id)) is None


def test_receipt_is_assumed_after_the_confirm_window(chain: OrderChain) -> None:
    order_id = _shipped(chain)
    shipped = chain.order(order_id)
    chain.run([], shipped.due_s)
    received = chain.order(order_id)
    assert received.state == RECEIVED and received.updated_s == shipped.due_s
    assert received.due_s == shipped.due_s + WINDOWS["return_window_s"]
    chain.run([], received.due_s)
    assert chain.order(order_id).state == COMPLETED


def test_one_late_block_takes_both_defaults(chain: OrderChain) -> None:
    order_id = _shipped(chain)
    last = chain.order(order_id).due_s
    assert last is not None
    chain.run([], last + WINDOWS["return_window_s"] + 100)
    done = chain.order(order_id)
    assert done.state == COMPLETED
    assert done.updated_s == last + WINDOWS["return_window_s"]
    assert done.merchant_paid == TOTAL


def test_zero_return_window_completes_on_confirmation() -> None:
    chain = OrderChain(genesis=order_genesis(return_window_s=0))
    order_id = _shipped(chain)
    receipt = accepted(chain, "buyer1", "order.confirm", OrderConfirm(order_id))
    assert chain.order(order_id).state == COMPLETED
    states = [e["state"] for e in receipt.events if e["event"] == "order.state"]
    assert states == [RECEIVED, COMPLETED]
    payouts = [e for e in receipt.events if e["event"] == "order.payout"]
    assert payouts == [
        {
            "event": "order.payout",
            "order_id": order_id,
            "to": chain.address("merchant1"),
            "role": "merchant",
            "amount": TOTAL,
        }
    ]


def test_unfunded_order_expires(chain: OrderChain) -> None:
    order_id = chain.create()
    due = chain.order(order_id).due_s
    assert due is not None
    chain.run([], due - 1)
    assert chain.order(order_id).state == CREATED
    chain.run([], due)
    assert chain.order(order_id).state == CANCELLED
    rejected(chain, "buyer1", "order.pay", OrderPay(order_id, TOTAL), "order_closed")


def test_either_side_cancels_before_funding(chain: OrderChain) -> None:
    for name in ("buyer1", "merchant1"):
        order_id = chain.create()
        accepted(chain, name, "order.cancel", OrderCancel(order_id))
        order = chain.order(order_id)
        assert (order.state, order.held, order.settled) == (CANCELLED, 0, 0)


def test_merchant_cancel_after_funding_refunds_in_full(chain: OrderChain) -> None:
    before = chain.balance("buyer1")
    order_id = _funded(chain, sharer="sharer1", commission_bps=3_000)
    receipt = accepted(chain, "merchant1", "order.cancel", OrderCancel(order_id))
    order = chain.order(order_id)
    assert (order.state, order.refunded, order.sharer_paid, order.merchant_paid) == (
        REFUNDED,
        TOTAL,
        0,
        0,
    )
    assert chain.balance("buyer1") == before
    assert [e["role"] for e in receipt.events if e["event"] == "order.payout"] == ["buyer"]
    _conserved(chain)


def test_missed_ship_deadline_refunds_automatically(chain: OrderChain) -> None:
    before = chain.balance("buyer1")
    order_id = _funded(chain)
    due = chain.order(order_id).due_s
    assert due is not None
    accepted(chain, "buyer1", "credit.transfer", _transfer(chain, "buyer2", 1), due - 1)
    assert chain.order(order_id).state == FUNDED
    chain.run([], due)
    order = chain.order(order_id)
    assert (order.state, order.refunded, order.updated_s) == (REFUNDED, TOTAL, due)
    assert chain.balance("buyer1") == before - 1
    # The buyer "may then cancel": the refund already happened, so there is nothing to cancel.
    rejected(chain, "buyer1", "order.cancel", OrderCancel(order_id), "order_closed")
    rejected(
        chain, "merchant1", "order.ship", OrderShip(order_id, shipment("late")), "order_closed"
    )


def _transfer(chain: OrderChain, to: str, amount: int) -> Any:
    from ledger.transactions import Transfer

    return Transfer(chain.address(to), amount)


def test_buyer_cancel_after_ship_deadline_refunds_without_the_hook(chain: OrderChain) -> None:
    """Product rule: the buyer may cancel once the ship deadline passed (reachable only if no block
    took the default first, e.g. an executor run without hooks)."""
    order_id = _funded(chain)
    due = chain.order(order_id).due_s
    assert due is not None
    tx = chain.sign("buyer1", "order.cancel", OrderCancel(order_id))
    context = BlockContext(chain.genesis.chain_id, chain.head.height + 1, due + 5)
    receipt = chain.executor.apply_transaction(chain.state, tx, context)
    assert receipt.ok and chain.order(order_id).state == REFUNDED


def test_dispute_resolved_with_partial_refund(chain: OrderChain) -> None:
    start = {n: chain.balance(n) for n in ("buyer1", "merchant1", "sharer1", "arbiter")}
    order_id = _disputed(chain, sharer="sharer1", commission_bps=2_000)
    disputed = chain.order(order_id)
    assert disputed.disputed_by == chain.address("buyer1")
    assert disputed.reason_hash == shipment("broken")
    assert disputed.due_s == chain.now + WINDOWS["dispute_deadline_s"]
    receipt = accepted(chain, "arbiter", "order.resolve", OrderResolve(order_id, 1_000))
    order = chain.order(order_id)
    kept = TOTAL - 1_000
    commission = 2_000 * 2_000 * kept // (10_000 * TOTAL)  # proportional: 240
    assert commission == 240
    assert (order.state, order.refunded, order.sharer_paid, order.merchant_paid) == (
        RESOLVED,
        1_000,
        commission,
        kept - commission,
    )
    assert order.settled == TOTAL
    roles = {e["role"]: e["amount"] for e in receipt.events if e["event"] == "order.payout"}
    assert roles == {"buyer": 1_000, "merchant": kept - commission, "sharer": commission}
    assert chain.balance("buyer1") == start["buyer1"] - TOTAL + 1_000
    assert chain.balance("arbiter") == start["arbiter"]
    _conserved(chain)


def test_resolve_with_full_refund_pays_no_commission(chain: OrderChain) -> None:
    order_id = _disputed(chain, sharer="sharer1", commission_bps=3_000)
    accepted(chain, "arbiter", "order.resolve", OrderResolve(order_id, TOTAL))
    order = chain.order(order_id)
    assert (order.refunded, order.merchant_paid, order.sharer_paid) == (TOTAL, 0, 0)


@pytest.mark.parametrize("stage", ["funded", "shipped", "received"])
def test_merchant_or_buyer_disputes_any_time_before_completion(
    chain: OrderChain, stage: str
) -> None:
    make = {"funded": _funded, "shipped": _shipped, "received": _received}[stage]
    order_id = make(chain)
    accepted(chain, "merchant1", "order.dispute", OrderDispute(order_id, None))
    order = chain.order(order_id)
    assert (order.state, order.disputed_by, order.reason_hash) == (
        DISPUTED,
        chain.address("merchant1"),
        None,
    )


def test_missed_dispute_deadline_refunds_in_full(chain: OrderChain) -> None:
    order_id = _disputed(chain, sharer="sharer1", commission_bps=1_000)
    due = chain.order(order_id).due_s
    assert due is not None
    chain.run([], due)
    order = chain.order(order_id)
    assert (order.state, order.refunded, order.sharer_paid) == (REFUNDED, TOTAL, 0)
    rejected(chain, "arbiter", "order.resolve", OrderResolve(order_id, 0), "order_closed")


def test_shorter_window_after_a_parameter_change_still_fires_on_time(chain: OrderChain) -> None:
    first = chain.create()  # cancel window 50 s
    accepted(chain, "admin", "param.set", ParameterSet("cancel_window_s", 5))
    second = chain.create()
    due_first, due_second = chain.order(first).due_s, chain.order(second).due_s
    assert due_first is not None and due_second is not None and due_second < due_first
    chain.run([], due_second)
    assert (chain.order(first).state, chain.order(second).state) == (CREATED, CANCELLED)
    chain.run([], due_first)
    assert chain.order(first).state == CANCELLED


def test_superseded_deadlines_are_skipped_and_cleaned_up(chain: OrderChain) -> None:
    order_id = _received(chain)  # CREATED, FUNDED and SHIPPED entries are now superseded
    assert pending_count(chain.state) == 4
    chain.run([], chain.now + 1_000)
    assert chain.order(order_id).state == COMPLETED
    assert pending_count(chain.state) == 0 and chain.state.get(QUEUES_KEY) is None
    assert not list(chain.state.iterate_prefix(b"due:"))


class _CountingState(State):
    def __init__(self, inner: State) -> None:
        super().__init__(inner.committed, inner.tree)
        self.reads: list[bytes] = []

    def get(self, key: bytes) -> bytes | None:
        self.reads.append(key)
        return super().get(key)


def test_deadline_hook_never_reads_orders_that_are_not_due(chain: OrderChain) -> None:
    def batch() -> list[bytes]:
        txs = [chain.sign("merchant1", "order.create", _body(chain)) for _ in range(30)]
        return [r.tx_hash for r in chain.run(txs)]

    due_now, due_later = batch(), batch()
    accepted(chain, "admin", "param.set", ParameterSet("cancel_window_s", 1_000))
    late = chain.create()
    due = chain.order(due_now[0]).due_s
    assert due is not None and chain.order(due_later[0]).due_s == due + 1
    counting = _CountingState(chain.state)
    escrow.run_deadlines(counting, BlockContext(chain.genesis.chain_id, 99, due - 1))
    assert counting.reads[0] == QUEUES_KEY
    assert len(counting.reads) == 3  # the directory and the head of each of the two queues
    counting = _CountingState(chain.state)
    escrow.run_deadlines(counting, BlockContext(chain.genesis.chain_id, 99, due))
    read = {k[len(b"order:") :] for k in counting.reads if k.startswith(b"order:")}
    assert read == set(due_now)
    assert late not in read
    assert len(counting.reads) <= 3 + 2 * len(due_now) + 1


def test_hook_executes_in_deadline_then_order_id_order(
    chain: OrderChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [chain.create(buyer=name) for name in ("buyer1", "buyer2", "buyer3")]
    txs = [
        chain.sign(n, "order.pay", OrderPay(i, TOTAL))
        for n, i in zip(("buyer1", "buyer2", "buyer3"), ids, strict=True)
    ]
    chain.run(txs)
    seen: list[bytes] = []
    original = escrow._default

    def spy(state: State, order_id: bytes, *rest: Any) -> None:
        seen.append(order_id)
        original(state, order_id, *rest)

    monkeypatch.setattr(escrow, "_default", spy)
    chain.run([], chain.now + 1_000)
    assert seen == sorted(ids)


# --- rejections: order.create ------------------------------------------------------------------


def test_invalid_create_by_account_without_merchant_role(chain: OrderChain) -> None:
    rejected(chain, "buyer2", "order.create", _body(chain), "not_authorized")


def test_invalid_create_for_unregistered_buyer(chain: OrderChain) -> None:
    stranger = PrivateKey.from_label("stranger").address
    rejected(chain, "merchant1", "order.create", _body(chain, buyer=stranger), "unknown_account")


def test_invalid_create_with_unregistered_arbiter_or_sharer(chain: OrderChain) -> None:
    stranger = PrivateKey.from_label("stranger").address
    body = _body(chain, arbiter=stranger)
    rejected(chain, "merchant1", "order.create", body, "unknown_account")
    body = _body(chain, sharer=stranger, commission_bps=100)
    rejected(chain, "merchant1", "order.create", body, "unknown_account")


def test_invalid_buyer_is_the_merchant(chain: OrderChain) -> None:
    body = _body(chain, buyer=chain.address("merchant1"))
    rejected(chain, "merchant1", "order.create", body, "invalid_buyer")


@pytest.mark.parametrize("who", ["buyer1", "merchant1"])
def test_invalid_sharer_is_buyer_or_merchant(chain: OrderChain, who: str) -> None:
    body = _body(chain, sharer=chain.address(who), commission_bps=100)
    receipt = rejected(chain, "merchant1", "order.create", body, "invalid_sharer")
    assert "buyer" in receipt.message or "merchant" in receipt.message


def test_invalid_sharer_and_rate_not_given_together(chain: OrderChain) -> None:
    body = _body(chain, sharer=chain.address("sharer1"))
    rejected(chain, "merchant1", "order.create", body, "invalid_sharer")
    body = _body(chain, commission_bps=100)
    rejected(chain, "merchant1", "order.create", body, "invalid_sharer")


def test_invalid_commission_above_the_cap(chain: OrderChain) -> None:
    body = _body(chain, sharer=chain.address("sharer1"), commission_bps=3_001)
    receipt = rejected(chain, "merchant1", "order.create", body, "commission_too_high")
    assert "3001" in receipt.message and "3000" in receipt.message
    accepted(chain, "admin", "param.set", ParameterSet("max_commission_bps", 500))
    body = _body(chain, sharer=chain.address("sharer1"), commission_bps=501)
    rejected(chain, "merchant1", "order.create", body, "commission_too_high")


def test_invalid_arbiter_without_the_role(chain: OrderChain) -> None:
    body = _body(chain, arbiter=chain.address("buyer2"))
    rejected(chain, "merchant1", "order.create", body, "invalid_arbiter")


def test_invalid_arbiter_who_is_a_party(chain: OrderChain) -> None:
    accepted(
        chain, "admin", "account.roles", AccountRoles(chain.address("buyer1"), ("arbiter",), ())
    )
    accepted(
        chain, "admin", "account.roles", AccountRoles(chain.address("sharer1"), ("arbiter",), ())
    )
    body = _body(chain, arbiter=chain.address("buyer1"))
    rejected(chain, "merchant1", "order.create", body, "invalid_arbiter")
    body = _body(
        chain, arbiter=chain.address("sharer1"), sharer=chain.address("sharer1"), commission_bps=1
    )
    rejected(chain, "merchant1", "order.create", body, "invalid_arbiter")


def test_invalid_order_total_zero_or_too_large(chain: OrderChain) -> None:
    free = _body(chain, items=(OrderItem("gift", 1, 0),), shipping=0)
    rejected(chain, "merchant1", "order.create", free, "invalid_amount")
    huge = _body(chain, items=(OrderItem("gold", 1_000_000, 2**62),))
    rejected(chain, "merchant1", "order.create", huge, "invalid_amount")


# --- rejections: acting on orders --------------------------------------------------------------


def test_invalid_unknown_order(chain: OrderChain) -> None:
    missing = bytes(range(32))
    rejected(chain, "buyer1", "order.pay", OrderPay(missing, 1), "unknown_order")
    rejected(chain, "buyer1", "order.confirm", OrderConfirm(missing), "unknown_order")


@pytest.mark.parametrize("who", ["merchant1", "buyer2", "sharer1", "arbiter"])
def test_invalid_pay_by_someone_else(chain: OrderChain, who: str) -> None:
    order_id = chain.create(sharer="sharer1", commission_bps=100)
    rejected(chain, who, "order.pay", OrderPay(order_id, TOTAL), "wrong_actor")


@pytest.mark.parametrize("amount", [TOTAL - 1, TOTAL + 1, 1])
def test_invalid_pay_wrong_amount(chain: OrderChain, amount: int) -> None:
    order_id = chain.create()
    receipt = rejected(chain, "buyer1", "order.pay", OrderPay(order_id, amount), "amount_mismatch")
    assert str(TOTAL) in receipt.message


def test_invalid_pay_more_than_the_balance(chain: OrderChain) -> None:
    items = (("tv", 1, chain.balance("buyer1")),)
    order_id = chain.create(items=items)
    total = chain.order(order_id).total
    rejected(chain, "buyer1", "order.pay", OrderPay(order_id, total), "insufficient_balance")


def test_invalid_pay_twice(chain: OrderChain) -> None:
    order_id = _funded(chain)
    rejected(chain, "buyer1", "order.pay", OrderPay(order_id, TOTAL), "wrong_order_state")


def test_invalid_ship_by_buyer_or_before_payment(chain: OrderChain) -> None:
    order_id = chain.create()
    body = OrderShip(order_id, shipment("SF1"))
    rejected(chain, "merchant1", "order.ship", body, "wrong_order_state")
    accepted(chain, "buyer1", "order.pay", OrderPay(order_id, TOTAL))
    rejected(chain, "buyer1", "order.ship", body, "wrong_actor")
    rejected(chain, "merchant2", "order.ship", body, "wrong_actor")


def test_invalid_confirm_by_merchant_or_before_shipping(chain: OrderChain) -> None:
    order_id = _funded(chain)
    rejected(chain, "buyer1", "order.confirm", OrderConfirm(order_id), "wrong_order_state")
    accepted(chain, "merchant1", "order.ship", OrderShip(order_id, shipment("SF1")))
    rejected(chain, "merchant1", "order.confirm", OrderConfirm(order_id), "wrong_actor")


def test_invalid_cancel_after_shipping_or_by_a_stranger(chain: OrderChain) -> None:
    order_id = chain.create(sharer="sharer1", commission_bps=100)
    rejected(chain, "sharer1", "order.cancel", OrderCancel(order_id), "wrong_actor")
    rejected(chain, "arbiter", "order.cancel", OrderCancel(order_id), "wrong_actor")
    shipped = _shipped(chain)
    rejected(chain, "merchant1", "order.cancel", OrderCancel(shipped), "wrong_order_state")
    rejected(chain, "buyer1", "order.cancel", OrderCancel(shipped), "wrong_order_state")


def test_invalid_buyer_cancel_before_the_ship_deadline(chain: OrderChain) -> None:
    order_id = _funded(chain)
    receipt = rejected(
        chain, "buyer1", "order.cancel", OrderCancel(order_id), "deadline_not_reached"
    )
    assert str(chain.order(order_id).due_s) in receipt.message


def test_invalid_dispute_before_funding_or_by_a_third_party(chain: OrderChain) -> None:
    order_id = chain.create(sharer="sharer1", commission_bps=100)
    body = OrderDispute(order_id, None)
    rejected(chain, "buyer1", "order.dispute", body, "wrong_order_state")
    accepted(chain, "buyer1", "order.pay", OrderPay(order_id, TOTAL))
    for who in ("sharer1", "arbiter", "buyer2"):
        rejected(chain, who, "order.dispute", body, "wrong_actor")


def test_invalid_dispute_twice(chain: OrderChain) -> None:
    order_id = _disputed(chain)
    body = OrderDispute(order_id, None)
    rejected(chain, "merchant1", "order.dispute", body, "wrong_order_state")


def test_invalid_resolve_by_another_arbiter_or_a_party(chain: OrderChain) -> None:
    other = PrivateKey.from_label("account:arbiter2")
    chain.extra_keys["arbiter2"] = other
    register = AccountRegister(other.public_key, ("arbiter",), "arbiter2")
    accepted(chain, "admin", "account.register", register)
    order_id = _disputed(chain)
    for who in ("arbiter2", "buyer1", "merchant1"):
        rejected(chain, who, "order.resolve", OrderResolve(order_id, 0), "wrong_actor")


def test_invalid_resolve_by_an_arbiter_whose_role_was_revoked(chain: OrderChain) -> None:
    order_id = _disputed(chain)
    revoke = AccountRoles(chain.address("arbiter"), (), ("arbiter",))
    accepted(chain, "admin", "account.roles", revoke)
    rejected(chain, "arbiter", "order.resolve", OrderResolve(order_id, 0), "not_authorized")


def test_invalid_resolve_an_order_not_in_dispute(chain: OrderChain) -> None:
    order_id = _shipped(chain)
    rejected(chain, "arbiter", "order.resolve", OrderResolve(order_id, 0), "wrong_order_state")


def test_invalid_refund_larger_than_escrow(chain: OrderChain) -> None:
    order_id = _disputed(chain)
    body = OrderResolve(order_id, TOTAL + 1)
    receipt = rejected(chain, "arbiter", "order.resolve", body, "refund_too_large")
    assert str(TOTAL + 1) in receipt.message


def test_invalid_second_payout_or_refund(chain: OrderChain) -> None:
    resolved = _disputed(chain)
    accepted(chain, "arbiter", "order.resolve", OrderResolve(resolved, 100))
    rejected(chain, "arbiter", "order.resolve", OrderResolve(resolved, 100), "order_closed")
    refunded = _funded(chain)
    accepted(chain, "merchant1", "order.cancel", OrderCancel(refunded))
    rejected(chain, "merchant1", "order.cancel", OrderCancel(refunded), "order_closed")
    rejected(chain, "buyer1", "order.pay", OrderPay(refunded, TOTAL), "order_closed")


_ACTIONS: list[tuple[str, str, Any]] = [
    ("buyer1", "order.pay", lambda i: OrderPay(i, TOTAL)),
    ("merchant1", "order.ship", lambda i: OrderShip(i, shipment("x"))),
    ("buyer1", "order.confirm", OrderConfirm),
    ("buyer1", "order.cancel", OrderCancel),
    ("merchant1", "order.cancel", OrderCancel),
    ("buyer1", "order.dispute", lambda i: OrderDispute(i, None)),
    ("arbiter", "order.resolve", lambda i: OrderResolve(i, 0)),
]


@pytest.mark.parametrize("terminal", [COMPLETED, CANCELLED, REFUNDED, RESOLVED])
def test_invalid_anything_after_a_terminal_state(chain: OrderChain, terminal: str) -> None:
    if terminal == COMPLETED:
        order_id = _received(chain)
        chain.run([], chain.now + WINDOWS["return_window_s"])
    elif terminal == CANCELLED:
        order_id = chain.create()
        accepted(chain, "merchant1", "order.cancel", OrderCancel(order_id))
    elif terminal == REFUNDED:
        order_id = _funded(chain)
        accepted(chain, "merchant1", "order.cancel", OrderCancel(order_id))
    else:
        order_id = _disputed(chain)
        accepted(chain, "arbiter", "order.resolve", OrderResolve(order_id, 10))
    assert chain.order(order_id).state == terminal
    for name, tx_type, make in _ACTIONS:
        rejected(chain, name, tx_type, make(order_id), "order_closed")


@pytest.mark.parametrize(
    ("stage", "name", "tx_type", "make"),
    [
        ("created", "buyer1", "order.pay", lambda i: OrderPay(i, TOTAL)),
        ("funded", "merchant1", "order.ship", lambda i: OrderShip(i, shipment("x"))),
        ("shipped", "buyer1", "order.confirm", OrderConfirm),
        ("received", "buyer1", "order.dispute", lambda i: OrderDispute(i, None)),
        ("disputed", "arbiter", "order.resolve", lambda i: OrderResolve(i, 0)),
    ],
)
def test_invalid_action_at_or_after_the_deadline(
    chain: OrderChain, stage: str, name: str, tx_type: str, make: Any
) -> None:
    """With blocks the default always comes first (the hook runs before transactions); an
    executor run without hooks still refuses late actions."""
    makers: dict[str, Callable[[], bytes]] = {
        "created": lambda: chain.create(),
        "funded": lambda: _funded(chain),
        "shipped": lambda: _shipped(chain),
        "received": lambda: _received(chain),
        "disputed": lambda: _disputed(chain),
    }
    order_id = makers[stage]()
    due = chain.order(order_id).due_s
    assert due is not None
    before = chain.order(order_id)
    receipt = chain.apply(chain.sign(name, tx_type, make(order_id)), time_s=due)
    assert (receipt.ok, receipt.code) == (False, "deadline_passed")
    assert chain.order(order_id) == before


def test_rejected_transactions_leave_balances_and_escrow_alone(chain: OrderChain) -> None:
    order_id = _funded(chain)
    before = (chain.balance("buyer1"), chain.balance("merchant1"), get_supply(chain.state))
    rejected(chain, "buyer1", "order.ship", OrderShip(order_id, shipment("x")), "wrong_actor")
    assert (chain.balance("buyer1"), chain.balance("merchant1"), get_supply(chain.state)) == before
    buyer = get_account(chain.state, chain.address("buyer1"))
    assert buyer is not None
