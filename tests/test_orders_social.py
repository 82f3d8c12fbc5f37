"""Community group leaders (pickup with a one-time code), seven-day no-reason returns and
their payouts: every transition, every default and one `test_invalid_*` per rule.

A rejected transaction must leave the state as it found it (only the sender's nonce moves):
`_rejected` checks that on the whole state map.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from contracts.orders import (
    AT_PICKUP,
    COMPLETED,
    DISPUTED,
    RECEIVED,
    RETURN_REQUESTED,
    RETURN_SHIPPED,
    SHIPPED,
    OrderArrive,
    OrderConfirm,
    OrderCreate,
    OrderDispute,
    OrderItem,
    OrderPay,
    OrderPickup,
    OrderReturn,
    OrderReturnReceived,
    OrderReturnShip,
    OrderShip,
    decode_order,
    encode_order,
    party_key,
)
from contracts.trust import Attest
from ledger.encoding import decode
from ledger.errors import MalformedTransaction
from ledger.schema import parse_struct
from ledger.transactions import AccountRoles
from tests.orderkit import (
    WINDOWS,
    OrderChain,
    accepted,
    order_genesis,
    pickup_code,
    rejected,
    shipment,
)

CODE = pickup_code("buyer1 order")
# goods tea 2 x 1000 + cup 1 x 1003 = 3003, shipping 7, total 3010
LINES = (("tea", 2, 1_000), ("cup", 1, 1_003))
TOTAL = 3_010


@pytest.fixture
def chain() -> OrderChain:
    return OrderChain(genesis=order_genesis())


def _leader_order(chain: OrderChain, **create: Any) -> bytes:
    """A paid order routed to leader1 (10 %), shipped to the pickup point."""
    order_id = chain.create(leader="leader1", leader_commission_bps=1_000, **create)
    total = chain.order(order_id).total
    accepted(chain, "buyer1", "order.pay", OrderPay(order_id, total, hashlib.sha256(CODE).digest()))
    accepted(chain, "merchant1", "order.ship", OrderShip(order_id, shipment("to leader1")))
    return order_id


def _received(chain: OrderChain, **create: Any) -> bytes:
    """A paid, shipped and confirmed order of LINES (no leader)."""
    order_id = chain.create(items=LINES, shipping=7, **create)
    accepted(chain, "buyer1", "order.pay", OrderPay(order_id, TOTAL))
    accepted(chain, "merchant1", "order.ship", OrderShip(order_id, shipment("SF")))
    accepted(chain, "buyer1", "order.confirm", OrderConfirm(order_id))
    return order_id


# --- leaders and pickup -------------------------------------------------------------------------


def test_leader_order_is_collected_with_the_pickup_code_and_pays_the_leader(
    chain: OrderChain,
) -> None:
    before = {name: chain.balance(name) for name in ("buyer1", "merchant1", "leader1")}
    order_id = _leader_order(chain)
    order = chain.order(order_id)
    assert (order.leader, order.leader_commission_bps) == (chain.address("leader1"), 1_000)
    assert order.pickup_hash == hashlib.sha256(CODE).digest()
    raw = chain.state.get(party_key(chain.address("leader1"), order_id))
    assert raw is not None and decode(raw) == "leader"
    accepted(chain, "leader1", "order.arrive", OrderArrive(order_id))
    order = chain.order(order_id)
    assert order.state == AT_PICKUP
    assert order.due_s == chain.now + WINDOWS["pickup_window_s"]
    accepted(chain, "leader1", "order.pickup", OrderPickup(order_id, CODE))
    assert chain.order(order_id).state == RECEIVED
    chain.run([], chain.now + WINDOWS["return_window_s"])
    done = chain.order(order_id)
    assert done.state == COMPLETED
    # goods 2000, total 2500, leader 10 % of the goods = 200
    assert (done.refunded, done.merchant_paid, done.sharer_paid, done.leader_paid) == (
        0,
        2_300,
        0,
        200,
    )
    assert chain.balance("leader1") == before["leader1"] + 200
    assert chain.balance("merchant1") == before["merchant1"] + 2_300
    assert chain.balance("buyer1") == before["buyer1"] - 2_500


def test_buyer_confirm_completes_the_hand_over_at_the_pickup_point(chain: OrderChain) -> None:
    order_id = _leader_order(chain)
    accepted(chain, "leader1", "order.arrive", OrderArrive(order_id))
    accepted(chain, "buyer1", "order.confirm", OrderConfirm(order_id))
    assert chain.order(order_id).state == RECEIVED


def test_goods_not_collected_count_as_received_at_the_pickup_deadline(chain: OrderChain) -> None:
    order_id = _leader_order(chain)
    accepted(chain, "leader1", "order.arrive", OrderArrive(order_id))
    due = chain.order(order_id).due_s
    assert due is not None
    chain.run([], due - 1)
    assert chain.order(order_id).state == AT_PICKUP
    chain.run([], due)
    order = chain.order(order_id)
    assert (order.state, order.updated_s) == (RECEIVED, due)
    assert order.due_s == due + WINDOWS["return_window_s"]  # the buyer can still return


def test_goods_never_reported_arrived_count_as_received_like_any_shipment(
    chain: OrderChain,
) -> None:
    order_id = _leader_order(chain)
    due = chain.order(order_id).due_s
    assert due is not None and chain.order(order_id).state == SHIPPED
    chain.run([], due)
    assert chain.order(order_id).state == RECEIVED


def test_sharer_and_leader_commissions_are_one_exact_payout(chain: OrderChain) -> None:
    order_id = chain.create(
        items=(("tea", 3, 1_001),),
        shipping=7,
        sharer="sharer1",
        commission_bps=2_999,
        leader="leader1",
        leader_commission_bps=500,
    )
    accepted(chain, "buyer1", "order.pay", OrderPay(order_id, 3_010, hashlib.sha256(CODE).digest()))
    accepted(chain, "merchant1", "order.ship", OrderShip(order_id, shipment("SF")))
    accepted(chain, "leader1", "order.arrive", OrderArrive(order_id))
    accepted(chain, "leader1", "order.pickup", OrderPickup(order_id, CODE))
    receipts = chain.run([], chain.now + WINDOWS["return_window_s"])
    assert receipts == []
    done = chain.order(order_id)
    assert (done.merchant_paid, done.sharer_paid, done.leader_paid) == (1_960, 900, 150)
    assert done.settled == done.total == 3_010


# --- no-reason returns --------------------------------------------------------------------------


def test_partial_return_refunds_the_lines_and_pays_commissions_on_the_rest(
    chain: OrderChain,
) -> None:
    before = {name: chain.balance(name) for name in ("buyer1", "merchant1", "sharer1")}
    order_id = _received(chain, sharer="sharer1", commission_bps=2_999)
    accepted(chain, "buyer1", "order.return", OrderReturn(order_id, (1,)))
    order = chain.order(order_id)
    assert (order.state, order.returned) == (RETURN_REQUESTED, (1,))
    assert order.due_s == chain.now + WINDOWS["return_ship_window_s"]
    accepted(chain, "buyer1", "order.return-ship", OrderReturnShip(order_id, shipment("back")))
    order = chain.order(order_id)
    assert (order.state, order.return_hash) == (RETURN_SHIPPED, shipment("back"))
    accepted(chain, "merchant1", "order.return-received", OrderReturnReceived(order_id))
    done = chain.order(order_id)
    # refund the cup (1003); commission on the kept tea only: floor(2000 * 2999 / 10000) = 599
    assert (done.state, done.refunded, done.sharer_paid, done.merchant_paid) == (
        COMPLETED,
        1_003,
        599,
        3_010 - 1_003 - 599,
    )
    assert chain.balance("buyer1") == before["buyer1"] - 3_010 + 1_003
    assert chain.balance("sharer1") == before["sharer1"] + 599
    assert chain.balance("merchant1") == before["merchant1"] + 1_408


def test_return_through_a_leader_reverses_both_commissions() -> None:
    chain = OrderChain(genesis=order_genesis())
    order_id = _leader_order(chain, items=LINES, shipping=7, sharer="sharer1", commission_bps=2_999)
    accepted(chain, "leader1", "order.arrive", OrderArrive(order_id))
    accepted(chain, "leader1", "order.pickup", OrderPickup(order_id, CODE))
    accepted(chain, "buyer1", "order.return", OrderReturn(order_id, (0, 1)))
    accepted(chain, "buyer1", "order.return-ship", OrderReturnShip(order_id, shipment("back")))
    accepted(chain, "merchant1", "order.return-received", OrderReturnReceived(order_id))
    done = chain.order(order_id)
    # every line back: the goods value refunded, shipping to the merchant, no commission
    assert (done.refunded, done.merchant_paid, done.sharer_paid, done.leader_paid) == (
        3_003,
        7,
        0,
        0,
    )


def test_return_is_refunded_when_the_merchant_does_not_confirm(chain: OrderChain) -> None:
    order_id = _received(chain)
    accepted(chain, "buyer1", "order.return", OrderReturn(order_id, (0,)))
    accepted(chain, "buyer1", "order.return-ship", OrderReturnShip(order_id, shipment("back")))
    due = chain.order(order_id).due_s
    assert due == chain.now + WINDOWS["return_receive_window_s"]
    chain.run([], due)
    done = chain.order(order_id)
    assert (done.state, done.refunded, done.merchant_paid, done.updated_s) == (
        COMPLETED,
        2_000,
        1_010,
        due,
    )


def test_return_not_shipped_back_lapses_and_the_order_pays_out_in_full(
    chain: OrderChain,
) -> None:
    order_id = _received(chain)
    accepted(chain, "buyer1", "order.return", OrderReturn(order_id, (0,)))
    due = chain.order(order_id).due_s
    assert due is not None
    chain.run([], due)
    done = chain.order(order_id)
    assert (done.state, done.returned, done.refunded, done.merchant_paid) == (
        COMPLETED,
        (),
        0,
        3_010,
    )


def test_merchant_may_dispute_a_returned_parcel(chain: OrderChain) -> None:
    order_id = _received(chain)
    accepted(chain, "buyer1", "order.return", OrderReturn(order_id, (0,)))
    accepted(chain, "buyer1", "order.return-ship", OrderReturnShip(order_id, shipment("back")))
    accepted(chain, "merchant1", "order.dispute", OrderDispute(order_id, shipment("empty box")))
    assert chain.order(order_id).state == DISPUTED


def test_a_no_reason_return_still_allows_a_positive_attestation(chain: OrderChain) -> None:
    order_id = _received(chain)
    accepted(chain, "buyer1", "order.return", OrderReturn(order_id, (1,)))
    accepted(chain, "buyer1", "order.return-ship", OrderReturnShip(order_id, shipment("back")))
    accepted(chain, "merchant1", "order.return-received", OrderReturnReceived(order_id))
    accepted(chain, "buyer1", "trust.attest", Attest(order_id, chain.address("merchant1"), 1))
    accepted(chain, "merchant1", "trust.attest", Attest(order_id, chain.address("buyer1"), 1))


def test_order_record_round_trips_lines_and_return_fields(chain: OrderChain) -> None:
    order_id = _received(chain, final_lines=(0,))
    accepted(chain, "buyer1", "order.return", OrderReturn(order_id, (1,)))
    order = chain.order(order_id)
    assert [item.is_returnable for item in order.items] == [False, True]
    assert decode_order(encode_order(order)) == order


# --- bad input ----------------------------------------------------------------------------------


def _create_body(chain: OrderChain, **fields: Any) -> OrderCreate:
    values: dict[str, Any] = {
        "buyer": chain.address("buyer1"),
        "items": (OrderItem("tea", 1, 100),),
        "shipping": 0,
        "arbiter": chain.address("arbiter"),
        "leader": chain.address("leader1"),
        "leader_commission_bps": 500,
    }
    values.update(fields)
    return OrderCreate(**values)


@pytest.mark.parametrize(
    ("fields", "code", "message"),
    [
        ({"leader": None}, "invalid_leader", "together"),
        ({"leader_commission_bps": None}, "invalid_leader", "together"),
        ({"leader": "sharer1"}, "invalid_leader", "lacks the 'leader' role"),
        ({"leader": "buyer1"}, "invalid_leader", "lacks the 'leader' role"),
        ({"leader_commission_bps": 1_001}, "commission_too_high", "1001 bps exceeds max_leader"),
    ],
)
def test_invalid_create_with_a_bad_leader(
    chain: OrderChain, fields: dict[str, Any], code: str, message: str
) -> None:
    fields = {k: chain.address(v) if k == "leader" and v else v for k, v in fields.items()}
    receipt = rejected(chain, "merchant1", "order.create", _create_body(chain, **fields), code)
    assert message in receipt.message


@pytest.mark.parametrize("role", ["buyer1", "sharer1", "merchant1", "arbiter"])
def test_invalid_create_with_a_leader_who_is_another_party(chain: OrderChain, role: str) -> None:
    address = chain.address(role)
    accepted(chain, "admin", "account.roles", AccountRoles(address, ("leader",), ()))
    body = _create_body(chain, leader=address, sharer=chain.address("sharer1"), commission_bps=100)
    receipt = rejected(chain, "merchant1", "order.create", body, "invalid_leader")
    assert "is the order's" in receipt.message


def test_invalid_create_with_a_sharer_commission_over_the_cap(chain: OrderChain) -> None:
    body = _create_body(chain, sharer=chain.address("sharer1"), commission_bps=3_001)
    receipt = rejected(chain, "merchant1", "order.create", body, "commission_too_high")
    assert "3001 bps exceeds max_commission_bps 3000" in receipt.message


def test_invalid_pay_of_a_leader_order_without_a_pickup_hash(chain: OrderChain) -> None:
    order_id = chain.create(leader="leader1", leader_commission_bps=100)
    receipt = rejected(
        chain, "buyer1", "order.pay", OrderPay(order_id, 2_500), "invalid_pickup_hash"
    )
    assert "pickup_hash" in receipt.message


def test_invalid_pay_with_a_pickup_hash_but_no_leader(chain: OrderChain) -> None:
    order_id = chain.create()
    body = OrderPay(order_id, 2_500, hashlib.sha256(CODE).digest())
    rejected(chain, "buyer1", "order.pay", body, "invalid_pickup_hash")


def test_invalid_pickup_with_a_wrong_code(chain: OrderChain) -> None:
    order_id = _leader_order(chain)
    accepted(chain, "leader1", "order.arrive", OrderArrive(order_id))
    wrong = pickup_code("a guess")
    receipt = rejected(
        chain, "leader1", "order.pickup", OrderPickup(order_id, wrong), "wrong_pickup_code"
    )
    assert hashlib.sha256(wrong).hexdigest() in receipt.message
    assert chain.order(order_id).state == AT_PICKUP


def test_invalid_pickup_before_arrival(chain: OrderChain) -> None:
    order_id = _leader_order(chain)
    body = OrderPickup(order_id, CODE)
    receipt = rejected(chain, "leader1", "order.pickup", body, "wrong_order_state")
    assert "allowed in AT_PICKUP" in receipt.message


def test_invalid_arrive_by_a_leader_who_lost_the_role(chain: OrderChain) -> None:
    order_id = _leader_order(chain)
    revoke = AccountRoles(chain.address("leader1"), (), ("leader",))
    accepted(chain, "admin", "account.roles", revoke)
    rejected(chain, "leader1", "order.arrive", OrderArrive(order_id), "not_authorized")


def _at(chain: OrderChain, state: str) -> bytes:
    """A leader order of LINES with a sharer, brought to `state`."""
    order_id = _leader_order(chain, items=LINES, shipping=7)
    if state == SHIPPED:
        return order_id
    accepted(chain, "leader1", "order.arrive", OrderArrive(order_id))
    if state == AT_PICKUP:
        return order_id
    accepted(chain, "leader1", "order.pickup", OrderPickup(order_id, CODE))
    if state == RECEIVED:
        return order_id
    accepted(chain, "buyer1", "order.return", OrderReturn(order_id, (0,)))
    if state == RETURN_REQUESTED:
        return order_id
    accepted(chain, "buyer1", "order.return-ship", OrderReturnShip(order_id, shipment("back")))
    return order_id


@pytest.mark.parametrize(
    ("state", "tx_type", "make", "wrong", "right"),
    [
        (SHIPPED, "order.arrive", OrderArrive, ["buyer1", "merchant1", "leader2"], "leader"),
        (AT_PICKUP, "order.pickup", None, ["buyer1", "merchant1", "leader2"], "leader"),
        (RECEIVED, "order.return", None, ["merchant1", "leader1", "sharer1"], "buyer"),
        (RETURN_REQUESTED, "order.return-ship", None, ["merchant1", "leader1"], "buyer"),
        (
            RETURN_SHIPPED,
            "order.return-received",
            OrderReturnReceived,
            ["buyer1", "leader1"],
            "merchant",
        ),
    ],
)
def test_invalid_new_actions_by_the_wrong_actor(
    chain: OrderChain, state: str, tx_type: str, make: Any, wrong: list[str], right: str
) -> None:
    order_id = _at(chain, state)
    bodies: dict[str, Any] = {
        "order.pickup": OrderPickup(order_id, CODE),
        "order.return": OrderReturn(order_id, (1,)),
        "order.return-ship": OrderReturnShip(order_id, shipment("x")),
    }
    body = bodies[tx_type] if make is None else make(order_id)
    for name in wrong:
        receipt = rejected(chain, name, tx_type, body, "wrong_actor")
        assert f"is not the {right} of order {order_id.hex()}" in receipt.message
    assert chain.order(order_id).state == state


def test_invalid_return_after_the_return_window(chain: OrderChain) -> None:
    order_id = _received(chain)
    due = chain.order(order_id).due_s
    assert due is not None
    chain.run([], due)  # the window has closed: the order completed at its deadline
    receipt = rejected(chain, "buyer1", "order.return", OrderReturn(order_id, (0,)), "order_closed")
    assert "COMPLETED" in receipt.message


def test_invalid_return_at_the_window_deadline_in_the_same_block(chain: OrderChain) -> None:
    order_id = _received(chain)
    due = chain.order(order_id).due_s
    assert due is not None
    receipt = chain.send("buyer1", "order.return", OrderReturn(order_id, (0,)), at_s=due)
    assert (receipt.ok, receipt.code) == (False, "order_closed")
    assert chain.order(order_id).refunded == 0


def test_invalid_return_of_a_line_sold_as_not_returnable(chain: OrderChain) -> None:
    order_id = _received(chain, final_lines=(1,))
    body = OrderReturn(order_id, (0, 1))
    receipt = rejected(chain, "buyer1", "order.return", body, "not_returnable")
    assert "line 1 (cup)" in receipt.message


@pytest.mark.parametrize(
    ("lines", "message"),
    [((2,), "has lines 0..1, not 2"), ((1, 0), "strictly increasing"), ((0, 0), "strictly")],
)
def test_invalid_return_of_lines_the_order_does_not_have(
    chain: OrderChain, lines: tuple[int, ...], message: str
) -> None:
    order_id = _received(chain)
    receipt = rejected(
        chain, "buyer1", "order.return", OrderReturn(order_id, lines), "invalid_return_line"
    )
    assert message in receipt.message


def test_invalid_return_before_receipt(chain: OrderChain) -> None:
    order_id = chain.create(items=LINES, shipping=7)
    accepted(chain, "buyer1", "order.pay", OrderPay(order_id, TOTAL))
    receipt = rejected(
        chain, "buyer1", "order.return", OrderReturn(order_id, (0,)), "wrong_order_state"
    )
    assert "allowed in RECEIVED" in receipt.message


def test_invalid_second_return_request(chain: OrderChain) -> None:
    order_id = _received(chain)
    accepted(chain, "buyer1", "order.return", OrderReturn(order_id, (0,)))
    rejected(chain, "buyer1", "order.return", OrderReturn(order_id, (1,)), "wrong_order_state")


@pytest.mark.parametrize(
    ("cls", "wire", "message"),
    [
        (OrderItem, {"sku": "t", "quantity": 1, "unit_price": 1, "returnable": True}, "only false"),
        (OrderItem, {"sku": "t", "quantity": 1, "unit_price": 1, "returnable": 0}, "only false"),
        (OrderPickup, {"order_id": bytes(32), "code": bytes(15)}, r"15 bytes, allowed \[16, 64\]"),
        (OrderPickup, {"order_id": bytes(32), "code": bytes(65)}, r"65 bytes"),
        (OrderReturn, {"order_id": bytes(32), "lines": []}, r"0 items, allowed \[1, 64\]"),
        (OrderReturn, {"order_id": bytes(32), "lines": [64]}, r"64 is outside \[0, 63\]"),
    ],
)
def test_invalid_wire_bodies(cls: type[Any], wire: dict[str, Any], message: str) -> None:
    with pytest.raises(MalformedTransaction, match=message):
        parse_struct(cls, wire)


def test_returnable_has_one_wire_form() -> None:
    assert OrderItem("t", 1, 1, True) == OrderItem("t", 1, 1)
    assert parse_struct(OrderItem, {"sku": "t", "quantity": 1, "unit_price": 1}).is_returnable
    final = parse_struct(
        OrderItem, {"sku": "t", "quantity": 1, "unit_price": 1, "returnable": False}
    )
    assert not final.is_returnable
