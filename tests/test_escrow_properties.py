"""Escrow invariants under random use and abuse (a hypothesis state machine).

Each step is one real block: random order actions by random accounts (the right party or not,
the right amount or not, on live or finished orders), referral bindings, window changes, and
time advancing by random amounts (0 = another block in the same second). After every step:

* credits are conserved: sum(balances) + escrow = minted - burned, and escrow = sum(held);
* every order is in exactly one known state, reached along the state machine's arrows;
  a terminal order never changes again (terminal at most once, no second payout);
* a settled order paid out exactly what it held, with the documented commission; an
  unfunded or open one paid nothing;
* every balance change is explained: payments into escrow by the buyer, and settlement parts
  to the order's buyer, merchant, sharer and (bound) inviter, nobody else;
* no open order has a deadline at or before the time of the last block.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from contracts.orders import (
    CANCELLED,
    COMPLETED,
    CREATED,
    DISPUTED,
    FUNDED,
    ORDER_PREFIX,
    RECEIVED,
    REFUNDED,
    RESOLVED,
    SHIPPED,
    STATES,
    TERMINAL_STATES,
    Order,
    OrderCancel,
    OrderConfirm,
    OrderCreate,
    OrderDispute,
    OrderItem,
    OrderPay,
    OrderResolve,
    OrderShip,
    decode_order,
    encode_order,
)
from contracts.payout import commission
from contracts.referral import ReferralBind, get_inviter
from ledger.accounts import ACCOUNT_PREFIX, decode_account, get_supply
from ledger.receipts import Receipt
from ledger.transactions import ParameterSet, SignedTransaction
from tests.orderkit import OrderChain, order_genesis, shipment

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
)
ARROWS: dict[str, set[str]] = {
    CREATED: {FUNDED, CANCELLED},
    FUNDED: {SHIPPED, REFUNDED, DISPUTED},
    SHIPPED: {RECEIVED, DISPUTED},
    RECEIVED: {COMPLETED, DISPUTED},
    DISPUTED: {RESOLVED, REFUNDED},
}
WINDOW_NAMES = (
    "cancel_window_s",
    "ship_deadline_s",
    "confirm_window_s",
    "return_window_s",
    "dispute_deadline_s",
)


WINDOWS = {
    "cancel_window_s": 150,
    "ship_deadline_s": 90,
    "confirm_window_s": 60,
    "return_window_s": 30,
    "dispute_deadline_s": 60,
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
}
_action = st.tuples(
    st.sampled_from(sorted(PARTY_OF)),
    st.sampled_from((RIGHT,) * 3 * len(NAMES) + NAMES),  # often someone who may not act
    st.integers(0, 1_000),  # which order: an open one if any (modulo), or any when odd
    st.sampled_from([0, 0, 0, -1, 1, 3_000]),  # amount offset: mostly right, sometimes wrong
)


class EscrowMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.chain = OrderChain(genesis=order_genesis(referral_levels=2, **WINDOWS))
        self.orders: list[bytes] = []
        self.final: dict[bytes, bytes] = {}
        """Order id -> its record when first seen terminal."""
        self.previous: dict[bytes, str] = {}

    # --- helpers ----------------------------------------------------------------------------

    def _balances(self) -> dict[bytes, int]:
        return {
            key[len(ACCOUNT_PREFIX) :]: decode_account(value).balance
            for key, value in self.chain.state.iterate_prefix(ACCOUNT_PREFIX)
        }

    def _orders(self) -> dict[bytes, Order]:
        return {
            key[len(ORDER_PREFIX) :]: decode_order(value)
            for key, value in self.chain.state.iterate_prefix(ORDER_PREFIX)
        }

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
                    (order.inviter, order.inviter_paid),
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

    def _name(self, address: bytes) -> str:
        return next(name for name in NAMES if self.chain.address(name) == address)

    # --- rules ------------------------------------------------------------------------------

    @rule(
        merchant=st.sampled_from(["merchant1"] * 4 + ["merchant2"] * 2 + ["buyer2"]),
        buyer=st.sampled_from(["buyer1", "buyer2", "buyer3"] * 3 + list(NAMES)),
        arbiter=st.sampled_from(["arbiter"] * 8 + ["buyer1", "merchant1"]),
        sharer=st.one_of(st.none(), st.sampled_from(["sharer1", "sharer2"] * 4 + list(NAMES))),
        rate=st.one_of(st.integers(0, 3_000), st.integers(0, 3_000), st.none(), st.just(3_001)),
        lines=st.lists(st.tuples(st.integers(1, 5), st.integers(0, 5_000)), min_size=1, max_size=3),
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
        lines: list[tuple[int, int]],
        shipping: int,
        dt: int,
    ) -> None:
        chain = self.chain
        if sharer is None and rate is not None and rate % 7:
            rate = None  # mostly consistent; sometimes a rate without a sharer
        body = OrderCreate(
            chain.address(buyer),
            tuple(OrderItem(f"sku{i}", q, p) for i, (q, p) in enumerate(lines)),
            shipping,
            chain.address(arbiter),
            None if sharer is None else chain.address(sharer),
            rate,
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
                body = OrderPay(order_id, max(1, order.total + offset))
            elif kind == "ship":
                body = OrderShip(order_id, shipment(f"ship{index}"))
            elif kind == "confirm":
                body = OrderConfirm(order_id)
            elif kind == "cancel":
                body = OrderCancel(order_id)
            elif kind == "dispute":
                body = OrderDispute(order_id, None)
            else:
                refund = order.total * (index % 4) // 3 + max(offset, 0)
                body = OrderResolve(order_id, refund)
            if actor == RIGHT:
                role = PARTY_OF[kind][index % len(PARTY_OF[kind])]
                actor = self._name(getattr(order, role))
            txs.append(self.chain.sign(actor, f"order.{kind}", body))
        self._block(txs, dt)

    @rule(index=st.integers(0, 1_000), choice=st.integers(0, 5), dt=st.integers(0, 4))
    def progress(self, index: int, choice: int, dt: int) -> None:
        """The right party takes a step the state machine allows (so orders get far)."""
        orders = self._orders()
        open_orders = [i for i in self.orders if not orders[i].is_terminal]
        if not open_orders:
            return
        order_id = open_orders[index % len(open_orders)]
        order = orders[order_id]
        steps: dict[str, list[tuple[str, str, Any]]] = {
            CREATED: [("buyer", "pay", OrderPay(order_id, order.total))],
            FUNDED: [
                ("merchant", "ship", OrderShip(order_id, shipment("p"))),
                ("merchant", "cancel", OrderCancel(order_id)),
                ("buyer", "dispute", OrderDispute(order_id, None)),
            ],
            SHIPPED: [
                ("buyer", "confirm", OrderConfirm(order_id)),
                ("merchant", "dispute", OrderDispute(order_id, shipment("r"))),
            ],
            RECEIVED: [("buyer", "dispute", OrderDispute(order_id, None))],
            DISPUTED: [("arbiter", "resolve", OrderResolve(order_id, order.total * choice // 5))],
        }
        role, kind, body = steps[order.state][choice % len(steps[order.state])]
        actor = self._name(getattr(order, role))
        self._block([self.chain.sign(actor, f"order.{kind}", body)], dt)

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

    @invariant()
    def payouts_sum_to_what_was_held(self) -> None:
        for order in self._orders().values():
            if order.state == CANCELLED:
                assert order.settled == 0
            elif order.state in (COMPLETED, REFUNDED, RESOLVED):
                assert order.settled == order.total
                kept = order.total - order.refunded
                paid = order.sharer_paid + order.inviter_paid
                if order.state == REFUNDED:
                    assert order.refunded == order.total and paid == 0
                elif order.sharer is None:
                    assert paid == 0
                else:
                    assert paid == commission(order.goods, order.commission_bps, kept, order.total)
                if order.state == COMPLETED:
                    assert order.refunded == 0
                if order.inviter is not None:
                    assert order.sharer is not None
                    assert get_inviter(self.chain.state, order.sharer) == order.inviter
                    assert order.inviter_paid == paid * order.inviter_share_bps // 10_000
                    assert order.inviter not in (order.buyer, order.merchant, order.arbiter)
                else:
                    assert order.inviter_paid == 0
            if order.sharer is not None:
                assert order.sharer not in (order.buyer, order.merchant)
                assert order.commission_bps <= 3_000
            assert order.arbiter not in (order.buyer, order.merchant, order.sharer)
            assert order.state != DISPUTED or order.disputed_by in (order.buyer, order.merchant)


EscrowMachine.TestCase.settings = settings(stateful_step_count=30, deadline=None)
test_escrow_invariants = EscrowMachine.TestCase
