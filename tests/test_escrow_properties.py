"""Escrow invariants under random use and abuse (a hypothesis state machine).

Each step is one real block: random order actions by random accounts (the right party or not,
the right amount or not, on live or finished orders), orders routed to community group leaders
(arrival, pickup with the right or a wrong code), no-reason returns of random lines (returnable
or not), referral bindings (which pay nothing), window changes, and time advancing by random
amounts (0 = another block in the same second). After every step:

* credits are conserved: sum(balances) + escrow = minted - burned, and escrow = sum(held);
* every order is in exactly one known state, reached along the state machine's arrows;
  a terminal order never changes again (terminal at most once, no second payout);
* a settled order paid out exactly what it held, with the documented commission; an
  unfunded or open one paid nothing;
* every balance change is explained: payments into escrow by the buyer, and settlement parts
  to the order's buyer, merchant, sharer and leader, nobody else (an inviter never);
* commissions are paid at most once (a terminal record never changes) and exactly on what the
  merchant keeps: on a return, the sharer's and leader's commissions are those of the kept
  lines only, and the refund is exactly the returned lines' goods value;
* no open order has a deadline at or before the time of the last block (nothing stays locked
  past its last deadline).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from contracts.orders import (
    AT_PICKUP,
    CANCELLED,
    COMPLETED,
    CREATED,
    DISPUTED,
    FUNDED,
    RECEIVED,
    REFUNDED,
    RESOLVED,
    RETURN_REQUESTED,
    RETURN_SHIPPED,
    SHIPPED,
    STATES,
    TERMINAL_STATES,
    Order,
    OrderArrive,
    OrderCancel,
    OrderConfirm,
    OrderCreate,
    OrderDispute,
    OrderItem,
    OrderPay,
    OrderPickup,
    OrderResolve,
    OrderReturn,
    OrderReturnReceived,
    OrderReturnShip,
    OrderShip,
    encode_order,
)
from contracts.payout import commission
from contracts.referral import ReferralBind
from ledger.accounts import get_supply
from ledger.receipts import Receipt
from ledger.transactions import ParameterSet, SignedTransaction
from tests.orderkit import OrderChain, order_genesis, pickup_code, shipment

NAMES = (
    "merchant1",
    "merchant2",
    "buyer1",
    "buyer2",
    "buyer3",
    "sharer1",
    "sharer2",
    "arbiter",
    "admin",
    "leader1",
    "leader2",
)
ARROWS: dict[str, set[str]] = {
    CREATED: {FUNDED, CANCELLED},
    FUNDED: {SHIPPED, REFUNDED, DISPUTED},
    SHIPPED: {RECEIVED, DISPUTED, AT_PICKUP},
    AT_PICKUP: {RECEIVED, DISPUTED},
    RECEIVED: {COMPLETED, DISPUTED, RETURN_REQUESTED},
    RETURN_REQUESTED: {RETURN_SHIPPED, COMPLETED, DISPUTED},
    RETURN_SHIPPED: {COMPLETED, DISPUTED},
    DISPUTED: {RESOLVED, REFUNDED},
}
WINDOW_NAMES = (
    "cancel_window_s",
    "ship_deadline_s",
    "confirm_window_s",
    "return_window_s",
    "dispute_deadline_s",
    "pickup_window_s",
    "return_ship_window_s",
    "return_receive_window_s",
)


WINDOWS = {
    "cancel_window_s": 150,
    "ship_deadline_s": 90,
    "confirm_window_s": 60,
    "return_window_s": 30,
    "dispute_deadline_s": 60,
    "pickup_window_s": 40,
    "return_ship_window_s": 30,
    "return_receive_window_s": 40,
}
"""Windows of the machine's chain; steps advance 0-6 s, `advance` up to 200 s."""


def _reachable(start: str) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for nxt in ARROWS.get(todo.pop(), set()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


RIGHT = "(the right party)"
PARTY_OF = {
    "pay": ("buyer",),
    "ship": ("merchant",),
    "confirm": ("buyer",),
    "cancel": ("buyer", "merchant"),
    "dispute": ("buyer", "merchant"),
    "resolve": ("arbiter",),
    "arrive": ("leader",),
    "pickup": ("leader",),
    "return": ("buyer",),
    "return_ship": ("buyer",),
    "return_received": ("merchant",),
}
TYPE_OF = {kind: "order." + kind.replace("_", "-") for kind in PARTY_OF}
_action = st.tuples(
    st.sampled_from(sorted(PARTY_OF)),
    st.sampled_from((RIGHT,) * 3 * len(NAMES) + NAMES),  # often someone who may not act
    st.integers(0, 1_000),  # which order: an open one if any (modulo), or any when odd
    st.sampled_from([0, 0, 0, -1, 1, 3_000]),  # amount offset: mostly right, sometimes wrong
)


class EscrowMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.chain = OrderChain(genesis=order_genesis(**WINDOWS))
        self.orders: list[bytes] = []
        self.final: dict[bytes, bytes] = {}
        """Order id -> its record when first seen terminal."""
        self.previous: dict[bytes, str] = {}

    # --- helpers ----------------------------------------------------------------------------

    def _balances(self) -> dict[bytes, int]:
        return self.chain.balances()

    def _orders(self) -> dict[bytes, Order]:
        return self.chain.orders()

    def _block(self, txs: list[SignedTransaction], dt: int) -> list[Receipt]:
        """Run one block `dt` seconds after the head; check every balance change."""
        balances, orders = self._balances(), self._orders()
        receipts = self.chain.run(txs, self.chain.now + dt)
        assert len(receipts) == len(txs)
        expected: dict[bytes, int] = defaultdict(int)
        for tx, receipt in zip(txs, receipts, strict=True):
            if receipt.ok and isinstance(tx.body, OrderPay):
                expected[tx.sender_address] -= tx.body.amount
            if receipt.ok and tx.type == "order.create":
                self.orders.append(receipt.tx_hash)
        for order_id, order in self._orders().items():
            before = orders.get(order_id)
            if order.is_terminal and (before is None or not before.is_terminal):
                for address, amount in [
                    (order.buyer, order.refunded),
                    (order.merchant, order.merchant_paid),
                    (order.sharer, order.sharer_paid),
                    (order.leader, order.leader_paid),
                ]:
                    if amount:
                        assert address is not None
                        expected[address] += amount
        after = self._balances()
        assert set(after) == set(balances)
        for address, balance in after.items():
            assert balance - balances[address] == expected.get(address, 0), address.hex()
        return receipts

    def _pick(self, index: int) -> bytes | None:
        orders = self._orders()
        candidates = [i for i in self.orders if not orders[i].is_terminal]
        if index % 2 or not candidates:
            candidates = self.orders
        return candidates[index // 2 % len(candidates)] if candidates else None

    @staticmethod
    def _hash(order_id: bytes, with_code: bool) -> bytes | None:
        """The pickup hash a buyer pays a leader order with (the code is derived from the id)."""
        return hashlib.sha256(pickup_code(order_id.hex())).digest() if with_code else None

    def _name(self, address: bytes) -> str:
        return next(name for name in NAMES if self.chain.address(name) == address)

    # --- rules ------------------------------------------------------------------------------

    @rule(
        merchant=st.sampled_from(["merchant1"] * 4 + ["merchant2"] * 2 + ["buyer2"]),
        buyer=st.sampled_from(["buyer1", "buyer2", "buyer3"] * 3 + list(NAMES)),
        arbiter=st.sampled_from(["arbiter"] * 8 + ["buyer1", "merchant1"]),
        sharer=st.one_of(st.none(), st.sampled_from(["sharer1", "sharer2"] * 4 + list(NAMES))),
        rate=st.one_of(st.integers(0, 3_000), st.integers(0, 3_000), st.none(), st.just(3_001)),
        leader=st.one_of(st.none(), st.sampled_from(["leader1", "leader2"] * 8 + list(NAMES))),
        leader_rate=st.sampled_from([0, 1, 250, 999, 1_000] * 3 + [1_001]),
        lines=st.lists(
            st.tuples(
                st.integers(1, 5), st.integers(0, 5_000), st.sampled_from([None, None, False])
            ),
            min_size=1,
            max_size=3,
        ),
        shipping=st.integers(0, 1_000),
        dt=st.integers(0, 5),
    )
    def create(
        self,
        merchant: str,
        buyer: str,
        arbiter: str,
        sharer: str | None,
        rate: int | None,
        leader: str | None,
        leader_rate: int,
        lines: list[tuple[int, int, bool | None]],
        shipping: int,
        dt: int,
    ) -> None:
        chain = self.chain
        if sharer is None and rate is not None and rate % 7:
            rate = None  # mostly consistent; sometimes a rate without a sharer
        body = OrderCreate(
            chain.address(buyer),
            tuple(OrderItem(f"sku{i}", q, p, r) for i, (q, p, r) in enumerate(lines)),
            shipping,
            chain.address(arbiter),
            None if sharer is None else chain.address(sharer),
            rate,
            None if leader is None else chain.address(leader),
            None if leader is None else leader_rate,
        )
        self._block([chain.sign(merchant, "order.create", body)], dt)

    @rule(actions=st.lists(_action, min_size=1, max_size=4), dt=st.integers(0, 6))
    def act(self, actions: list[tuple[str, str, int, int]], dt: int) -> None:
        txs = []
        for kind, actor, index, offset in actions:
            order_id = self._pick(index)
            if order_id is None:
                return
            order = self._orders()[order_id]
            body: Any
            if kind == "pay":
                with_code = (order.leader is not None) != (offset == 1)  # sometimes wrong
                body = OrderPay(
                    order_id, max(1, order.total + offset), self._hash(order_id, with_code)
                )
            elif kind == "ship":
                body = OrderShip(order_id, shipment(f"ship{index}"))
            elif kind == "confirm":
                body = OrderConfirm(order_id)
            elif kind == "cancel":
                body = OrderCancel(order_id)
            elif kind == "dispute":
                body = OrderDispute(order_id, None)
            elif kind == "arrive":
                body = OrderArrive(order_id)
            elif kind == "pickup":
                body = OrderPickup(order_id, pickup_code(order_id.hex() + ("x" if offset else "")))
            elif kind == "return":
                body = OrderReturn(order_id, tuple(range(index % 3, index % 3 + 1 + offset % 2)))
            elif kind == "return_ship":
                body = OrderReturnShip(order_id, shipment(f"back{index}"))
            elif kind == "return_received":
                body = OrderReturnReceived(order_id)
            else:
                refund = order.total * (index % 4) // 3 + max(offset, 0)
                body = OrderResolve(order_id, refund)
            if actor == RIGHT:
                role = PARTY_OF[kind][index % len(PARTY_OF[kind])]
                party = getattr(order, role)
                actor = "leader1" if party is None else self._name(party)
            txs.append(self.chain.sign(actor, TYPE_OF[kind], body))
        self._block(txs, dt)

    @rule(
        index=st.integers(0, 1_000),
        choices=st.lists(st.integers(0, 5), min_size=1, max_size=4),
        dt=st.integers(0, 4),
    )
    def progress(self, index: int, choices: list[int], dt: int) -> None:
        """The right party takes steps the state machine allows, one block each, on one order
        (mostly the step forward, so orders get far)."""
        orders = self._orders()
        open_orders = [i for i in self.orders if not orders[i].is_terminal]
        if not open_orders:
            return
        order_id = open_orders[index % len(open_orders)]
        for choice in choices:
            order = self._orders()[order_id]
            if order.is_terminal:
                return
            self._step(order_id, order, choice, dt)

    def _step(self, order_id: bytes, order: Order, choice: int, dt: int) -> None:
        leader = order.leader is not None
        arrive: Any = OrderArrive(order_id) if leader else OrderConfirm(order_id)
        returnable = tuple(
            i for i, item in enumerate(order.items) if item.is_returnable and (choice + i) % 2
        )
        steps: dict[str, list[tuple[str, str, Any]]] = {
            CREATED: [
                ("buyer", "pay", OrderPay(order_id, order.total, self._hash(order_id, leader)))
            ],
            FUNDED: [
                ("merchant", "ship", OrderShip(order_id, shipment("p"))),
                ("merchant", "cancel", OrderCancel(order_id)),
                ("buyer", "dispute", OrderDispute(order_id, None)),
            ],
            SHIPPED: [
                ("leader" if leader else "buyer", "arrive" if leader else "confirm", arrive),
                ("merchant", "dispute", OrderDispute(order_id, shipment("r"))),
            ],
            AT_PICKUP: [
                ("leader", "pickup", OrderPickup(order_id, pickup_code(order_id.hex()))),
                ("buyer", "confirm", OrderConfirm(order_id)),
            ],
            RECEIVED: [
                ("buyer", "return", OrderReturn(order_id, returnable or (0,))),
                ("buyer", "dispute", OrderDispute(order_id, None)),
            ],
            RETURN_REQUESTED: [
                ("buyer", "return_ship", OrderReturnShip(order_id, shipment("b"))),
                ("merchant", "dispute", OrderDispute(order_id, None)),
            ],
            RETURN_SHIPPED: [("merchant", "return_received", OrderReturnReceived(order_id))],
            DISPUTED: [("arbiter", "resolve", OrderResolve(order_id, order.total * choice // 5))],
        }
        options = steps[order.state]
        role, kind, body = options[0 if choice < 3 else choice % len(options)]
        actor = self._name(getattr(order, role))
        self._block([self.chain.sign(actor, TYPE_OF[kind], body)], dt)

    @rule(sender=st.sampled_from(NAMES), inviter=st.sampled_from(NAMES), dt=st.integers(0, 3))
    def bind(self, sender: str, inviter: str, dt: int) -> None:
        tx = self.chain.sign(sender, "referral.bind", ReferralBind(self.chain.address(inviter)))
        self._block([tx], dt)

    @rule(name=st.sampled_from(WINDOW_NAMES), value=st.integers(0, 120), often=st.integers(0, 4))
    def set_window(self, name: str, value: int, often: int) -> None:
        if often:  # a parameter change is rarer than the other steps
            return
        if name != "return_window_s":
            value = max(value, 1)
        self._block([self.chain.sign("admin", "param.set", ParameterSet(name, value))], 1)

    @rule(dt=st.one_of(st.integers(1, 20), st.integers(1, 200)))
    def advance(self, dt: int) -> None:
        self._block([], dt)

    # --- invariants -------------------------------------------------------------------------

    @invariant()
    def credits_are_conserved(self) -> None:
        total, supply = self.chain.total_credits()
        assert total == supply
        held = sum(order.held for order in self._orders().values())
        assert get_supply(self.chain.state).escrow == held

    @invariant()
    def orders_follow_the_state_machine(self) -> None:
        now = self.chain.now
        for order_id, order in self._orders().items():
            assert order.state in STATES
            previous = self.previous.get(order_id, CREATED)
            assert order.state in _reachable(previous), (previous, order.state)
            self.previous[order_id] = order.state
            if order_id in self.final:
                assert encode_order(order) == self.final[order_id], "a terminal order changed"
            if order.state in TERMINAL_STATES:
                self.final.setdefault(order_id, encode_order(order))
                assert order.held == 0 and order.due_s is None
            else:
                assert order.due_s is not None and order.due_s > now, "open past its deadline"
                assert order.settled == 0
                assert order.held == (0 if order.state == CREATED else order.total)
            assert list(order.returned) == sorted(set(order.returned))
            assert all(order.items[i].is_returnable for i in order.returned)
            paid_once = order.state not in (CREATED, CANCELLED)
            assert (order.pickup_hash is not None) == (order.leader is not None and paid_once)

    @invariant()
    def payouts_sum_to_what_was_held(self) -> None:
        for order in self._orders().values():
            if order.state == CANCELLED:
                assert order.settled == 0
            elif order.state in (COMPLETED, REFUNDED, RESOLVED):
                assert order.settled == order.total  # every escrowed unit has one owner
                assert min(order.refunded, order.merchant_paid) >= 0
                kept = order.total - order.refunded
                sharer_bps = order.commission_bps if order.sharer is not None else 0
                leader_bps = order.leader_commission_bps if order.leader is not None else 0
                if order.state == COMPLETED:
                    returned = order.returned_value
                    assert order.refunded == returned  # exactly the returned lines, or 0
                    kept_goods = order.goods - returned  # commissions on the kept lines only
                    assert order.sharer_paid == kept_goods * sharer_bps // 10_000
                    assert order.leader_paid == kept_goods * leader_bps // 10_000
                else:
                    goods, total = order.goods, order.total
                    assert order.sharer_paid == commission(goods, sharer_bps, kept, total)
                    assert order.leader_paid == commission(goods, leader_bps, kept, total)
                if order.state == REFUNDED:
                    assert order.refunded == order.total
                    assert order.sharer_paid == order.leader_paid == 0
            if order.sharer is not None:
                assert order.sharer not in (order.buyer, order.merchant)
                assert order.commission_bps <= 3_000
            else:
                assert order.commission_bps == order.sharer_paid == 0
            if order.leader is not None:
                assert order.leader not in (order.buyer, order.merchant, order.arbiter)
                assert order.leader_commission_bps <= 1_000
            else:
                assert order.leader_commission_bps == order.leader_paid == 0
            assert order.arbiter not in (order.buyer, order.merchant, order.sharer)
            assert order.state != DISPUTED or order.disputed_by in (order.buyer, order.merchant)


EscrowMachine.TestCase.settings = settings(stateful_step_count=30, deadline=None)
test_escrow_invariants = EscrowMachine.TestCase
