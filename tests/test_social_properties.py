"""Social-commerce invariants: groups, orders, leaders' pickups and returns on ONE chain.

Issue 13's "Done when": a hypothesis state machine over groups, orders, returns and pickups.
`SocialMachine` is the order machine of tests/test_escrow_properties.py (its rules: ordinary
orders with or without a leader or sharer, some lines not returnable, every order action by the
right party or not, forward progress, referral bindings, window changes, time passing) with
group buy on the same chain: groups opened with or without community leader leader1 and small
random terms (two at the start with time to form), joins (right or wrong price, with, without or
with a needless pickup hash; `fill_group` joins the right way so groups form), cancels by the
merchant or not, and the life cycle of the GROUP MEMBER orders once a group forms
(shipped to the leader, picked up with the member's code or a wrong one, returned, disputed and
resolved). After every step:

* credits are conserved: balances + Supply.escrow == minted - burned, and escrow is exactly
  what the open orders hold plus the pools of the OPEN groups (other groups hold nothing);
* every escrowed unit ends with exactly one owner: a settled order paid out exactly its total,
  a member's payment is in its OPEN group's pool, in its own order, or refunded, never two
  (tests/test_group_properties.py's check), and every balance change of a block is explained
  by payments in, group refunds and the payouts of orders that became terminal in it;
* nothing stays locked past its last deadline: no open order or OPEN group at or past its
  deadline, and once time passes beyond every deadline (`outlast_every_deadline`) nothing is
  open, no group is OPEN and the escrow is 0;
* commissions are paid at most once and reversed exactly on return: an open order has paid
  nothing, a terminal order never changes (so neither do its sharer_paid/leader_paid, and the
  balance audit sees each commission arrive once, in the block the order settles); a completed
  order's parts are `contracts.payout.settle_return` of its returned lines (settle with no
  refund when none), the refund is exactly the returned lines' goods value and the commissions
  are the rates on the kept goods only; a member order carries its group's leader and rate and
  its member's sharer, rate and pickup hash.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, rule

from contracts.groups import (
    CANCELLED,
    FAILED,
    FORMED,
    GROUP_PREFIX,
    OPEN,
    Group,
    GroupCancel,
    GroupJoin,
    GroupOpen,
    Member,
    get_group,
    group_members,
    member_order_id,
)
from contracts.orders import COMPLETED, Order, OrderPay
from contracts.payout import BPS, settle_return
from ledger.accounts import get_supply
from ledger.receipts import Receipt
from ledger.transactions import SignedTransaction
from tests.test_escrow_properties import EscrowMachine
from tests.test_group_properties import GroupMachine

JOINERS = ("buyer1", "buyer2", "buyer3", "sharer1", "sharer2")
"""Accounts with credits to join with (the others try too, and are refused)."""
CLOSED = (FAILED, CANCELLED)


def _payouts(order: Order) -> list[tuple[bytes | None, int]]:
    """(payee, amount) of a settled order's parts."""
    return [
        (order.buyer, order.refunded),
        (order.merchant, order.merchant_paid),
        (order.sharer, order.sharer_paid),
        (order.leader, order.leader_paid),
    ]


SHARER_OFFER_BPS = 1_000
"""What each group offers a member's sharer (the machine's sharer joins ask for 500 bps, and
some ask 3001: over every cap)."""


class SocialMachine(EscrowMachine):
    """The order machine plus group buy through community leaders, on one chain."""

    def __init__(self) -> None:
        super().__init__()
        self.groups: list[bytes] = []
        self.member_orders: set[bytes] = set()
        self.closed: dict[bytes, Group] = {}
        """Group id -> its record when first seen FAILED or CANCELLED."""
        self.commissions: dict[bytes, tuple[int, int]] = {}
        """Order id -> (sharer_paid, leader_paid) when first seen terminal."""

    # --- helpers ----------------------------------------------------------------------------

    def _groups(self) -> dict[bytes, Group]:
        found = {}
        for key, _ in self.chain.state.iterate_prefix(GROUP_PREFIX):
            group = get_group(self.chain.state, key[len(GROUP_PREFIX) :])
            assert group is not None
            found[key[len(GROUP_PREFIX) :]] = group
        return found

    def _members(self, group_id: bytes, group: Group) -> tuple[Member, ...]:
        return group_members(self.chain.state, group_id, limit=max(group.members, 1))

    def _block(self, txs: list[SignedTransaction], dt: int) -> list[Receipt]:
        """Run one block `dt` seconds after the head; every balance change must be a payment
        in (order.pay, group.join), a refund of a group that closed in this block, or a part
        of the payout of an order that became terminal in this block."""
        balances, orders, groups = self._balances(), self._orders(), self._groups()
        receipts = self.chain.run(txs, self.chain.now + dt)
        assert len(receipts) == len(txs)
        expected: dict[bytes, int] = defaultdict(int)
        for tx, receipt in zip(txs, receipts, strict=True):
            if receipt.ok and isinstance(tx.body, (OrderPay, GroupJoin)):
                expected[tx.sender_address] -= tx.body.amount
            if receipt.ok and tx.type == "order.create":
                self.orders.append(receipt.tx_hash)
            if receipt.ok and tx.type == "group.open":
                self.groups.append(receipt.tx_hash)
        for group_id, group in self._groups().items():
            before = groups.get(group_id)
            if group.state in CLOSED and (before is None or before.state not in CLOSED):
                for member in self._members(group_id, group):
                    expected[member.buyer] += member.paid
        for order_id, order in self._orders().items():
            if order_id not in orders and order_id not in self.orders:
                self.orders.append(order_id)  # a group member's order, opened by a join
                self.member_orders.add(order_id)
            before_order = orders.get(order_id)
            if order.is_terminal and (before_order is None or not before_order.is_terminal):
                for address, amount in _payouts(order):
                    assert address is not None or amount == 0
                    expected[address or b""] += amount
        after = self._balances()
        assert set(after) == set(balances)
        changes = {a: after[a] - balances[a] for a in after if after[a] != balances[a]}
        assert changes == {a: amount for a, amount in expected.items() if amount}
        return receipts

    def _group(self, index: int) -> bytes:
        """A group: mostly one still taking joins, sometimes any (or an unknown id); the
        group machine's choice (it reads only `groups` and `_groups`)."""
        return GroupMachine._pick(self, index)  # type: ignore[arg-type]

    # --- group rules ------------------------------------------------------------------------

    @initialize(price=st.integers(1, 3_000), leader_rate=st.sampled_from([1, 300, 1_000]))
    def first_groups(self, price: int, leader_rate: int) -> None:
        """Two groups with time to form: one through leader1, one without a leader."""
        self.open_group("merchant1", "leader1", leader_rate, price, 100, (2, 1), 150, 100)
        self.open_group("merchant2", None, 0, price, 0, (2, 0), 150, 50)

    @rule(
        merchant=st.sampled_from(["merchant1"] * 4 + ["merchant2"] * 2 + ["buyer1"]),
        leader=st.sampled_from([None, "leader1", "leader1", "buyer2"]),
        leader_rate=st.sampled_from([0, 300, 1_000, 1_001]),
        price=st.integers(1, 3_000),
        discount=st.integers(0, 200),
        bounds=st.tuples(st.integers(2, 3), st.integers(0, 2)),
        window=st.sampled_from([0, 5, 20, 60, 150, 150]),
        shipping=st.integers(0, 300),
    )
    def open_group(
        self,
        merchant: str,
        leader: str | None,
        leader_rate: int,
        price: int,
        discount: int,
        bounds: tuple[int, int],  # min, max - min
        window: int,
        shipping: int,
    ) -> None:
        """A merchant opens a group, with or without a leader (window 0 is refused)."""
        at_s = self.chain.now + 1
        body = GroupOpen(
            hashlib.sha256(f"item{price}".encode()).digest(),
            price,
            bounds[0],
            bounds[0] + bounds[1],
            at_s + window,
            min(discount, price - 1),
            shipping,
            self.chain.address("arbiter"),
            None if leader is None else self.chain.address(leader),
            None if leader is None else leader_rate,
            SHARER_OFFER_BPS,  # the merchant's offer to sharers: joins through a sharer at 500
        )
        self._block([self.chain.sign(merchant, "group.open", body)], 1)

    @rule(
        which=st.integers(0, 1_000),
        joiners=st.lists(
            st.tuples(
                st.sampled_from(JOINERS * 3 + ("leader1", "merchant1", "arbiter", "admin")),
                st.sampled_from([0] * 8 + [-1, 1]),  # price offset: mostly right
                st.sampled_from([None] * 3 + ["sharer1", "sharer2", "leader1"]),
                st.sampled_from([0, 500, 3_000, 3_001]),
                st.sampled_from(["code"] * 6 + ["no code", "needless code"]),
            ),
            min_size=1,
            max_size=4,
        ),
        dt=st.integers(0, 4),
    )
    def join_group(
        self, which: int, joiners: list[tuple[str, int, str | None, int, str]], dt: int
    ) -> None:
        """Up to four joins of one group, one block each (the first `dt` seconds on, the rest
        in the same second), each priced for the member index it would get. A leader group's
        member gives the hash of the pickup code of its future order (`EscrowMachine._hash`)."""
        group_id = self._group(which)
        for name, offset, sharer, rate, code in joiners:
            group = get_group(self.chain.state, group_id)
            index = 0 if group is None else group.members
            price = 1 if group is None else group.total_of(index)
            with_code = (group is not None and group.leader is not None) == (code == "code")
            body = GroupJoin(
                group_id,
                max(price + offset, 1),
                None if sharer is None else self.chain.address(sharer),
                None if sharer is None else rate,
                self._hash(member_order_id(group_id, index), with_code),
            )
            self._block([self.chain.sign(name, "group.join", body)], dt)
            dt = 0

    @rule(which=st.integers(0, 1_000), extra=st.integers(0, 1), dt=st.integers(0, 3))
    def fill_group(self, which: int, extra: int, dt: int) -> None:
        """Buyers who have not joined yet join one live group the right way, one block each,
        until it has `min_members` (+ `extra`) members or is full (so groups form); every
        other one came through a sharer's link (500 bps)."""
        groups = self._groups()
        live = [g for g in self.groups if groups[g].state in (OPEN, FORMED)]
        if not live:
            return
        group_id = live[which % len(live)]
        joined = {m.buyer for m in self._members(group_id, groups[group_id])}
        for name in JOINERS:
            group = get_group(self.chain.state, group_id)
            assert group is not None
            if group.members >= min(group.min_members + extra, group.max_members):
                return
            if self.chain.address(name) in joined:
                continue
            sharer = "sharer2" if name == "sharer1" else "sharer1"  # every other one shared
            body = GroupJoin(
                group_id,
                group.total_of(group.members),
                self.chain.address(sharer) if (which + group.members) % 2 else None,
                500 if (which + group.members) % 2 else None,
                self._hash(member_order_id(group_id, group.members), group.leader is not None),
            )
            self._block([self.chain.sign(name, "group.join", body)], dt)
            dt = 0

    @rule(
        which=st.integers(0, 1_000),
        name=st.sampled_from(["merchant1", "merchant1", "merchant2", "buyer2"]),
        act=st.integers(0, 2),
    )
    def cancel_group(self, which: int, name: str, act: int) -> None:
        """A group.cancel in a third of the draws (else groups rarely get the time to form)."""
        if act:
            return
        self._block([self.chain.sign(name, "group.cancel", GroupCancel(self._group(which)))], 1)

    @rule(
        index=st.integers(0, 1_000),
        choices=st.lists(st.sampled_from([0] * 6 + [3, 4, 5]), min_size=2, max_size=7),
        dt=st.integers(0, 4),
    )
    def progress_member_order(self, index: int, choices: list[int], dt: int) -> None:
        """The right parties take allowed steps on one open GROUP MEMBER order, one block each,
        mostly forward (ship, arrive at the leader, pickup with the member's code, return,
        return-ship, return-received), sometimes aside (cancel, dispute, resolve);
        `EscrowMachine._step`."""
        orders = self._orders()
        live = sorted(i for i in self.member_orders if not orders[i].is_terminal)
        if not live:
            return
        order_id = live[index % len(live)]
        for choice in choices:
            order = self._orders()[order_id]
            if order.is_terminal:
                return
            self._step(order_id, order, choice, dt)

    @rule(often=st.integers(0, 3))
    def outlast_every_deadline(self, often: int) -> None:
        """Let time pass beyond every deadline (a quarter of the draws): then nothing is open,
        no group is OPEN, and the escrow holds nothing."""
        if often:
            return
        for _ in range(4):  # a timed default may enter a state with a later deadline
            dues = [o.due_s for o in self._orders().values() if o.due_s is not None]
            dues += [g.deadline_s for g in self._groups().values() if g.state == OPEN]
            if not dues:
                break
            self._block([], max(dues) - self.chain.now)
        assert all(order.is_terminal for order in self._orders().values())
        assert all(group.state != OPEN for group in self._groups().values())
        assert get_supply(self.chain.state).escrow == 0

    # --- invariants -------------------------------------------------------------------------

    @invariant()
    def credits_are_conserved(self) -> None:
        """Replaces the order machine's: the escrow also holds the OPEN groups' pools."""
        total, supply = self.chain.total_credits()
        assert total == supply
        held = sum(order.held for order in self._orders().values())
        pools = 0
        for group in self._groups().values():
            assert group.state == OPEN or group.pool == 0
            pools += group.pool
        assert get_supply(self.chain.state).escrow == held + pools

    @invariant()
    def every_member_payment_has_one_owner(self) -> None:
        # The group machine's checks read only what this machine also has: chain, closed,
        # _orders, _groups and _members.
        GroupMachine.every_payment_has_exactly_one_owner(self)  # type: ignore[arg-type]
        GroupMachine.closed_groups_never_change(self)  # type: ignore[arg-type]
        GroupMachine.nothing_is_locked_past_its_deadline(self)  # type: ignore[arg-type]
        orders = self._orders()
        for group_id, group in self._groups().items():
            for member in self._members(group_id, group):
                if member.order_id is None:
                    continue
                order = orders[member.order_id]
                assert order.merchant == group.merchant and order.arbiter == group.arbiter
                assert order.leader == group.leader and order.pickup_hash == member.pickup_hash
                assert order.leader_commission_bps == group.leader_commission_bps
                assert order.sharer == member.sharer
                assert order.commission_bps == member.commission_bps

    @invariant()
    def commissions_are_paid_once_and_only_on_kept_lines(self) -> None:
        for order_id, order in self._orders().items():
            if not order.is_terminal:
                assert order.settled == order.sharer_paid == order.leader_paid == 0
                continue
            paid = (order.sharer_paid, order.leader_paid)
            assert self.commissions.setdefault(order_id, paid) == paid, "commission changed"
            if order.state != COMPLETED:
                continue
            returned = order.returned_value
            plan = settle_return(
                held=order.total,
                goods=order.goods,
                returned=returned,
                sharer_bps=order.commission_bps,
                leader_bps=order.leader_commission_bps,
            )
            parts = (order.refunded, order.merchant_paid, order.sharer_paid, order.leader_paid)
            assert parts == (plan.refund, plan.merchant, plan.sharer, plan.leader)
            kept_goods = order.goods - returned
            assert order.refunded == returned
            assert order.sharer_paid == kept_goods * order.commission_bps // BPS
            assert order.leader_paid == kept_goods * order.leader_commission_bps // BPS


SocialMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=60, deadline=None)
test_social_machine = SocialMachine.TestCase
