"""Group-buy invariants under random use and abuse (a hypothesis state machine).

Each step is one real block: groups opened with random terms, joins by random accounts (right
price or not, members or merchants, open, formed, full, expired or closed groups), cancels by
the merchant or someone else, member orders shipped and confirmed or left alone, and time
advancing by random amounts. After every step:

* credits are conserved: sum(balances) + escrow = minted - burned, and escrow is exactly what
  the orders hold plus what the group pools hold;
* every escrowed unit has exactly one owner: each member's payment is in its group's pool
  (OPEN group, no order, not refunded), in its own order (once formed), or back with the member
  (FAILED or CANCELLED), never two of these; a pool is the sum of its members' payments
  without an order;
* refunds happen exactly once: a closed group's record never changes again, and every balance
  change is explained (join payments out, one refund per member of a closed group, order
  payouts) with nothing else moving;
* nothing stays locked past its last deadline: no OPEN group at or after its join deadline, no
  open order at or after its due time.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from contracts.groups import (
    CANCELLED,
    FAILED,
    FORMED,
    GROUP_PREFIX,
    MEMBER_PREFIX,
    OPEN,
    Group,
    GroupCancel,
    GroupJoin,
    GroupOpen,
    Member,
    get_group,
    group_members,
)
from contracts.orders import Order, OrderConfirm, OrderShip
from ledger.accounts import get_supply
from ledger.encoding import decode
from ledger.transactions import SignedTransaction
from tests.orderkit import OrderChain, order_genesis, shipment

BUYERS = ("buyer1", "buyer2", "buyer3", "sharer1", "sharer2", "admin")
MERCHANTS = ("merchant1", "merchant2")
NAMES = (*BUYERS, *MERCHANTS, "arbiter")
CLOSED = (FAILED, CANCELLED)
WINDOWS = {
    "ship_deadline_s": 40,
    "confirm_window_s": 30,
    "return_window_s": 10,
    "dispute_deadline_s": 30,
    "cancel_window_s": 50,
}


class GroupMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.chain = OrderChain(genesis=order_genesis(**WINDOWS))
        self.groups: list[bytes] = []
        self.closed: dict[bytes, Group] = {}
        """Group id -> its record when first seen FAILED or CANCELLED."""

    # --- helpers ----------------------------------------------------------------------------

    def _balances(self) -> dict[bytes, int]:
        return self.chain.balances()

    def _orders(self) -> dict[bytes, Order]:
        return self.chain.orders()

    def _groups(self) -> dict[bytes, Group]:
        return {
            key[len(GROUP_PREFIX) :]: Group(*decode(value))
            for key, value in self.chain.state.iterate_prefix(GROUP_PREFIX)
        }

    def _members(self, group_id: bytes, group: Group) -> tuple[Member, ...]:
        return group_members(self.chain.state, group_id, limit=max(group.members, 1))

    def _block(self, txs: list[SignedTransaction], dt: int) -> None:
        """Run one block `dt` seconds after the head; check every balance change."""
        balances, orders, groups = self._balances(), self._orders(), self._groups()
        receipts = self.chain.run(txs, self.chain.now + dt)
        assert len(receipts) == len(txs)
        expected: dict[bytes, int] = defaultdict(int)
        for tx, receipt in zip(txs, receipts, strict=True):
            if receipt.ok and isinstance(tx.body, GroupJoin):
                expected[tx.sender_address] -= tx.body.amount
            if receipt.ok and isinstance(tx.body, GroupOpen):
                self.groups.append(receipt.tx_hash)
        for group_id, group in self._groups().items():
            before = groups.get(group_id)
            if group.state in CLOSED and (before is None or before.state not in CLOSED):
                for member in self._members(group_id, group):
                    expected[member.buyer] += member.paid
        for order_id, order in self._orders().items():
            before_order = orders.get(order_id)
            if order.is_terminal and (before_order is None or not before_order.is_terminal):
                for address, amount in [
                    (order.buyer, order.refunded),
                    (order.merchant, order.merchant_paid),
                    (order.sharer, order.sharer_paid),
                ]:
                    if amount:
                        assert address is not None
                        expected[address] += amount
        after = self._balances()
        assert set(after) == set(balances)
        for address, amount in after.items():
            assert amount - balances[address] == expected.get(address, 0), address.hex()

    def _pick(self, index: int) -> bytes:
        """A group: mostly one still taking joins, sometimes any (or an unknown id)."""
        groups = self._groups()
        live = [g for g in self.groups if groups[g].state in (OPEN, FORMED)]
        candidates = live if index % 3 and live else self.groups
        if index % 17 == 0 or not candidates:
            return b"\x01" * 32
        return candidates[index // 3 % len(candidates)]

    # --- rules ------------------------------------------------------------------------------

    @initialize(price=st.integers(1, 5_000), min_members=st.integers(2, 4))
    def first_group(self, price: int, min_members: int) -> None:
        self.open("merchant1", price, (min_members, 1), 100, 0, 100)

    @rule(
        merchant=st.sampled_from([*MERCHANTS] * 4 + ["buyer1"]),
        price=st.integers(1, 5_000),
        bounds=st.tuples(st.integers(2, 4), st.sampled_from([0, 0, 1, 2, -1])),
        window=st.sampled_from([-2, 0, 1]) | st.integers(20, 200),
        discount=st.integers(0, 1_000),
        shipping=st.integers(0, 500),
    )
    def open(
        self,
        merchant: str,
        price: int,
        bounds: tuple[int, int],  # min, max - min
        window: int,
        discount: int,
        shipping: int,
    ) -> None:
        at_s = self.chain.now + 1
        body = GroupOpen(
            hashlib.sha256(str(price).encode()).digest(),
            price,
            bounds[0],
            max(bounds[0] + bounds[1], 2),
            max(at_s + window, 0),
            discount,
            shipping,
            self.chain.address("arbiter"),
            commission_bps=3_000,
        )
        self._block([self.chain.sign(merchant, "group.open", body)], 1)

    @rule(
        which=st.integers(0, 100),
        joiners=st.lists(
            st.tuples(
                st.sampled_from(BUYERS * 4 + NAMES),
                st.sampled_from([0] * 8 + [-1, 1]),  # price offset: mostly right
                st.sampled_from([None] * 4 + ["sharer1", "sharer2", "buyer1"]),
                st.sampled_from([0, 500, 3_000, 3_001]),
            ),
            min_size=1,
            max_size=4,
        ),
        dt=st.integers(0, 4),
    )
    def join(self, which: int, joiners: list[tuple[str, int, str | None, int]], dt: int) -> None:
        """Up to four joins of one group in one block, each priced for the next index."""
        group_id = self._pick(which)
        group = get_group(self.chain.state, group_id)
        txs = []
        for position, (name, offset, sharer, rate) in enumerate(joiners):
            price = 1 if group is None else group.total_of(group.members + position)
            body = GroupJoin(
                group_id,
                max(price + offset, 1),
                None if sharer is None else self.chain.address(sharer),
                None if sharer is None else rate,
            )
            txs.append(self.chain.sign(name, "group.join", body))
        self._block(txs, dt)

    @rule(
        which=st.integers(0, 100),
        name=st.sampled_from([*MERCHANTS, "merchant1", "buyer2"]),
        act=st.integers(0, 3),
    )
    def cancel(self, which: int, name: str, act: int) -> None:
        """A cancel in a quarter of the draws (else groups rarely get the time to form)."""
        if act:
            return
        body = GroupCancel(self._pick(which))
        self._block([self.chain.sign(name, "group.cancel", body)], 1)

    @rule(which=st.integers(0, 1_000), confirm=st.booleans())
    def fulfil(self, which: int, confirm: bool) -> None:
        """Ship (or confirm) one open member order, by its merchant (or buyer)."""
        live = sorted(
            (order_id, order)
            for order_id, order in self._orders().items()
            if order.state in ("FUNDED", "SHIPPED")
        )
        if not live:
            return
        order_id, order = live[which % len(live)]
        if order.state == "FUNDED":
            merchant = next(n for n in MERCHANTS if self.chain.address(n) == order.merchant)
            tx = self.chain.sign(merchant, "order.ship", OrderShip(order_id, shipment("x")))
        elif confirm:
            buyer = next(n for n in BUYERS if self.chain.address(n) == order.buyer)
            tx = self.chain.sign(buyer, "order.confirm", OrderConfirm(order_id))
        else:
            return
        self._block([tx], 1)

    @rule(dt=st.integers(0, 60))
    def advance(self, dt: int) -> None:
        self._block([], dt)

    # --- invariants -------------------------------------------------------------------------

    @invariant()
    def credits_are_conserved_and_escrow_is_orders_plus_pools(self) -> None:
        supply = get_supply(self.chain.state)
        assert sum(self._balances().values()) + supply.escrow == supply.minted - supply.burned
        held = sum(order.held for order in self._orders().values())
        pools = sum(group.pool for group in self._groups().values())
        assert supply.escrow == held + pools

    @invariant()
    def every_payment_has_exactly_one_owner(self) -> None:
        orders = self._orders()
        member_records = sum(1 for _ in self.chain.state.iterate_prefix(MEMBER_PREFIX))
        assert member_records == sum(g.members for g in self._groups().values())
        for group_id, group in self._groups().items():
            members = self._members(group_id, group)
            assert len(members) == group.members <= group.max_members
            pooled = 0
            for index, member in enumerate(members):
                in_order = member.order_id is not None
                refunded = member.refunded == member.paid
                assert member.refunded in (0, member.paid)
                assert member.paid == group.total_of(index)
                assert in_order + refunded <= 1
                if group.state == OPEN:
                    assert not in_order and not refunded
                    pooled += member.paid
                elif group.state == FORMED:
                    assert in_order and not refunded and member.order_id in orders
                    order = orders[member.order_id]
                    assert order.total == member.paid and order.buyer == member.buyer
                else:
                    assert refunded and not in_order
            assert group.pool == pooled
            assert (group.state == FORMED) == (group.formed_s is not None)
            assert group.state != FORMED or group.members >= group.min_members

    @invariant()
    def closed_groups_never_change(self) -> None:
        for group_id, group in self._groups().items():
            if group.state in CLOSED:
                assert self.closed.setdefault(group_id, group) == group

    @invariant()
    def nothing_is_locked_past_its_deadline(self) -> None:
        now = self.chain.now
        for group in self._groups().values():
            assert not (group.state == OPEN and group.deadline_s <= now)
        for order in self._orders().values():
            assert order.is_terminal or (order.due_s is not None and order.due_s > now)


GroupMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
test_group_machine = GroupMachine.TestCase
