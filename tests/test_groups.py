"""Group buy (contracts.groups) on a development chain with the contracts: opening, joining,
forming into FUNDED orders, refunds at the deadline and on cancel, member orders through the
ordinary life cycle (commission, attestation), the queries, and every rule (`test_invalid_*`:
a failed receipt with the rule's code, a message naming the value, nothing changed but the
sender's nonce)."""

from __future__ import annotations

import hashlib
import random
from typing import Any

import pytest

from contracts import due_heap
from contracts.groups import (
    CANCELLED,
    DUE_HEAP,
    FAILED,
    FORMED,
    MAX_JOIN_HORIZON_S,
    OPEN,
    Group,
    GroupCancel,
    GroupJoin,
    GroupOpen,
    get_group,
    get_member,
    group_members,
    groups_of,
    member_order_id,
)
from contracts.orders import COMPLETED, FUNDED, REFUNDED, OrderConfirm, OrderShip
from contracts.trust import Attest
from ledger.accounts import account_key, get_account, get_supply
from ledger.encoding import decode
from ledger.receipts import Receipt
from ledger.state import State
from tests.orderkit import WINDOWS, OrderChain, order_genesis, shipment

ITEM = hashlib.sha256(b"rice, 5 kg").digest()
PRICE = 3_000
SHIPPING = 200
DISCOUNT = 500
OPENER_TOTAL = PRICE - DISCOUNT + SHIPPING
MEMBER_TOTAL = PRICE + SHIPPING
JOIN_WINDOW_S = 20
"""Shorter than the test chain's ship deadline (30 s), so a formed group's orders are still
FUNDED when its join deadline passes."""


@pytest.fixture
def chain() -> OrderChain:
    return OrderChain(genesis=order_genesis(attest_window_s=100, trust_epoch_blocks=1_000))


def open_group(
    chain: OrderChain,
    *,
    min_members: int = 2,
    max_members: int = 3,
    discount: int = DISCOUNT,
    merchant: str = "merchant1",
) -> bytes:
    """A group of merchant1 that must open; its id (join deadline: JOIN_WINDOW_S from now)."""
    at_s = chain.now + 1
    body = GroupOpen(
        ITEM,
        PRICE,
        min_members,
        max_members,
        at_s + JOIN_WINDOW_S,
        discount,
        SHIPPING,
        chain.address("arbiter"),
        commission_bps=3_000,
    )
    receipt = chain.send(merchant, "group.open", body, at_s)
    assert receipt.ok, (receipt.code, receipt.message)
    return receipt.tx_hash


def join(
    chain: OrderChain,
    name: str,
    group_id: bytes,
    amount: int,
    sharer: str | None = None,
    rate: int | None = None,
) -> Receipt:
    body = GroupJoin(group_id, amount, None if sharer is None else chain.address(sharer), rate)
    return chain.send(name, "group.join", body)


def joined(chain: OrderChain, name: str, group_id: bytes, amount: int, **extra: Any) -> None:
    receipt = join(chain, name, group_id, amount, **extra)
    assert receipt.ok, (receipt.code, receipt.message)


def group(chain: OrderChain, group_id: bytes) -> Group:
    found = get_group(chain.state, group_id)
    assert found is not None
    return found


def balance(chain: OrderChain, name: str) -> int:
    account = get_account(chain.state, chain.address(name))
    assert account is not None
    return account.balance


def rejected(
    chain: OrderChain, name: str, tx_type: str, body: Any, code: str, names: str
) -> Receipt:
    """One transaction that must fail with `code`, a message containing `names`, and change
    nothing in state but the sender's nonce."""
    before = dict(chain.state.committed)
    receipt = chain.send(name, tx_type, body, chain.now + 1)
    assert (receipt.ok, receipt.code) == (False, code), receipt
    assert names in receipt.message, receipt.message
    assert receipt.events == ()
    sender = account_key(chain.address(name))
    after = chain.state.committed
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert changed <= {sender}, sorted(changed)
    old, new = decode(before[sender]), decode(after[sender])
    assert new[1] == old[1] + 1 and new[:1] + new[2:] == old[:1] + old[2:]
    return receipt


# --- opening, joining, forming ---------------------------------------------------------------


def test_open_records_the_terms_and_indexes_the_merchant(chain: OrderChain) -> None:
    group_id = open_group(chain)
    record = group(chain, group_id)
    assert (record.state, record.members, record.pool) == (OPEN, 0, 0)
    assert record.deadline_s == chain.now + JOIN_WINDOW_S
    assert (record.unit_price, record.opener_discount, record.shipping) == (
        PRICE,
        DISCOUNT,
        SHIPPING,
    )
    page = groups_of(chain.state, chain.address("merchant1"), limit=10)
    assert page.groups == ((group_id, record),) and page.next_after is None
    assert due_heap.pending(chain.state, DUE_HEAP) == 1


def test_joins_pool_until_min_then_every_member_gets_a_funded_order(chain: OrderChain) -> None:
    group_id = open_group(chain, min_members=3, max_members=3)
    escrow_before = get_supply(chain.state).escrow
    joined(chain, "buyer1", group_id, OPENER_TOTAL)
    joined(chain, "buyer2", group_id, MEMBER_TOTAL)
    record = group(chain, group_id)
    assert (record.state, record.members, record.pool) == (OPEN, 2, OPENER_TOTAL + MEMBER_TOTAL)
    assert get_supply(chain.state).escrow == escrow_before + record.pool
    assert balance(chain, "buyer1") == 1_000_000_00 - OPENER_TOTAL

    joined(chain, "buyer3", group_id, MEMBER_TOTAL)
    record = group(chain, group_id)
    assert (record.state, record.pool, record.formed_s) == (FORMED, 0, chain.now)
    total = OPENER_TOTAL + 2 * MEMBER_TOTAL
    assert get_supply(chain.state).escrow == escrow_before + total
    for index, name in enumerate(("buyer1", "buyer2", "buyer3")):
        member = get_member(chain.state, group_id, index)
        assert member is not None and member.buyer == chain.address(name)
        assert member.order_id == member_order_id(group_id, index)
        order = chain.order(member.order_id)
        assert (order.state, order.buyer, order.merchant) == (FUNDED, member.buyer, record.merchant)
        assert order.held == order.total == member.paid
        assert order.goods == (PRICE - DISCOUNT if index == 0 else PRICE)
        assert order.due_s == chain.now + WINDOWS["ship_deadline_s"]


def test_a_formed_group_takes_joins_up_to_max_each_with_its_order_at_once(
    chain: OrderChain,
) -> None:
    group_id = open_group(chain, min_members=2, max_members=3)
    joined(chain, "buyer1", group_id, OPENER_TOTAL)
    joined(chain, "buyer2", group_id, MEMBER_TOTAL)
    assert group(chain, group_id).state == FORMED
    joined(chain, "buyer3", group_id, MEMBER_TOTAL)
    record = group(chain, group_id)
    assert (record.members, record.pool) == (3, 0)
    order = chain.order(member_order_id(group_id, 2))
    assert (order.state, order.created_s) == (FUNDED, chain.now)
    members = group_members(chain.state, group_id, start=1, limit=5)
    assert [m.buyer for m in members] == [chain.address("buyer2"), chain.address("buyer3")]


def test_deadline_without_min_refunds_every_member_with_nobody_acting(chain: OrderChain) -> None:
    group_id = open_group(chain, min_members=3)
    escrow_before = get_supply(chain.state).escrow
    joined(chain, "buyer1", group_id, OPENER_TOTAL)
    joined(chain, "buyer2", group_id, MEMBER_TOTAL)
    deadline = group(chain, group_id).deadline_s
    chain.run([], at_s=deadline - 1)
    assert group(chain, group_id).state == OPEN
    chain.run([], at_s=deadline)
    record = group(chain, group_id)
    assert (record.state, record.pool, record.closed_s) == (FAILED, 0, deadline)
    assert balance(chain, "buyer1") == balance(chain, "buyer2") == 1_000_000_00
    assert get_supply(chain.state).escrow == escrow_before
    for index in range(2):
        member = get_member(chain.state, group_id, index)
        assert member is not None and member.refunded == member.paid and member.order_id is None
    assert due_heap.pending(chain.state, DUE_HEAP) == 0


def test_a_formed_group_is_untouched_by_its_deadline_and_its_orders_run_on(
    chain: OrderChain,
) -> None:
    group_id = open_group(chain)
    joined(chain, "buyer1", group_id, OPENER_TOTAL)
    joined(chain, "buyer2", group_id, MEMBER_TOTAL)
    before = group(chain, group_id)
    chain.run([], at_s=before.deadline_s + 1)
    assert group(chain, group_id) == before
    order_id = member_order_id(group_id, 1)
    chain.run([], at_s=chain.order(order_id).due_s)  # never shipped: refunded like any order
    assert chain.order(order_id).state == REFUNDED
    assert balance(chain, "buyer2") == 1_000_000_00


def test_merchant_cancel_refunds_every_member_at_once(chain: OrderChain) -> None:
    group_id = open_group(chain, min_members=3)
    joined(chain, "buyer1", group_id, OPENER_TOTAL)
    joined(chain, "buyer2", group_id, MEMBER_TOTAL)
    receipt = chain.send("merchant1", "group.cancel", GroupCancel(group_id))
    assert receipt.ok
    record = group(chain, group_id)
    assert (record.state, record.pool, record.closed_s) == (CANCELLED, 0, chain.now)
    assert balance(chain, "buyer1") == balance(chain, "buyer2") == 1_000_000_00
    refunds = [e for e in receipt.events if e["event"] == "group.refund"]
    assert [e["amount"] for e in refunds] == [OPENER_TOTAL, MEMBER_TOTAL]
    chain.run([], at_s=record.deadline_s)  # the superseded deadline pays nothing twice
    assert balance(chain, "buyer1") == 1_000_000_00


def complete_member_order(chain: OrderChain, order_id: bytes, buyer: str) -> None:
    for name, tx_type, body in (
        ("merchant1", "order.ship", OrderShip(order_id, shipment(order_id.hex()))),
        (buyer, "order.confirm", OrderConfirm(order_id)),
    ):
        receipt = chain.send(name, tx_type, body)
        assert receipt.ok, (receipt.code, receipt.message)
    chain.run([], at_s=chain.now + WINDOWS["return_window_s"] + 1)
    assert chain.order(order_id).state == COMPLETED


def test_sharer_earns_commission_on_the_member_it_brought(chain: OrderChain) -> None:
    group_id = open_group(chain)
    joined(chain, "buyer1", group_id, OPENER_TOTAL)
    joined(chain, "buyer2", group_id, MEMBER_TOTAL, sharer="sharer1", rate=1_000)
    order_id = member_order_id(group_id, 1)
    assert chain.order(order_id).sharer == chain.address("sharer1")
    sharer_before = balance(chain, "sharer1")
    complete_member_order(chain, order_id, "buyer2")
    order = chain.order(order_id)
    assert order.sharer_paid == PRICE * 1_000 // 10_000 == 300
    assert order.merchant_paid == MEMBER_TOTAL - 300
    assert balance(chain, "sharer1") == sharer_before + 300


def test_a_completed_group_order_backs_an_attestation(chain: OrderChain) -> None:
    group_id = open_group(chain)
    joined(chain, "buyer1", group_id, OPENER_TOTAL)
    joined(chain, "buyer2", group_id, MEMBER_TOTAL)
    order_id = member_order_id(group_id, 0)
    complete_member_order(chain, order_id, "buyer1")
    body = Attest(order_id, chain.address("merchant1"), 1)
    receipt = chain.send("buyer1", "trust.attest", body)
    assert receipt.ok, (receipt.code, receipt.message)
    assert receipt.events[0]["event"] == "trust.attested"


def test_groups_of_pages_by_id_and_filters_by_state(chain: OrderChain) -> None:
    ids = [open_group(chain) for _ in range(3)]
    chain.send("merchant1", "group.cancel", GroupCancel(ids[1]))
    merchant = chain.address("merchant1")
    first = groups_of(chain.state, merchant, limit=2)
    rest = groups_of(chain.state, merchant, after=first.next_after, limit=2)
    assert [gid for gid, _ in first.groups + rest.groups] == sorted(ids)
    assert rest.next_after is None
    cancelled = groups_of(chain.state, merchant, in_state=CANCELLED, limit=5)
    assert [gid for gid, _ in cancelled.groups] == [ids[1]]
    short = groups_of(chain.state, merchant, in_state=CANCELLED, limit=5, max_examined=1)
    assert short.next_after == min(ids)
    assert groups_of(chain.state, chain.address("merchant2"), limit=5).groups == ()


def test_due_heap_pops_in_deadline_order_whatever_the_push_order() -> None:
    state = State()
    entries = [(random.Random(seed).randrange(50), bytes([seed])) for seed in range(40)]
    for due_s, subject in entries:
        due_heap.push(state, b"t", due_s, subject)
    popped = due_heap.pop_due(state, b"t", 24) + due_heap.pop_due(state, b"t", 100)
    assert popped == sorted(entries)
    assert due_heap.pending(state, b"t") == 0
    assert dict(state.iterate_prefix(b"t")) == {}


# --- every rule -------------------------------------------------------------------------------


def _terms(chain: OrderChain, **changes: Any) -> GroupOpen:
    terms: dict[str, Any] = {
        "item_hash": ITEM,
        "unit_price": PRICE,
        "min_members": 2,
        "max_members": 3,
        "deadline_s": chain.now + 1 + JOIN_WINDOW_S,
        "opener_discount": 0,
        "shipping": SHIPPING,
        "arbiter": chain.address("arbiter"),
    }
    return GroupOpen(**{**terms, **changes})


def test_invalid_open_min_above_max(chain: OrderChain) -> None:
    body = _terms(chain, min_members=4, max_members=3)
    rejected(chain, "merchant1", "group.open", body, "invalid_group_terms", "min_members 4")


def test_invalid_open_deadline_not_in_the_future(chain: OrderChain) -> None:
    body = _terms(chain, deadline_s=chain.now + 1)
    rejected(chain, "merchant1", "group.open", body, "invalid_group_terms", str(chain.now + 1))


def test_invalid_open_deadline_beyond_the_horizon(chain: OrderChain) -> None:
    late = chain.now + 2 + MAX_JOIN_HORIZON_S
    body = _terms(chain, deadline_s=late)
    rejected(chain, "merchant1", "group.open", body, "invalid_group_terms", str(late))


def test_invalid_open_discount_leaves_no_price(chain: OrderChain) -> None:
    body = _terms(chain, opener_discount=PRICE)
    rejected(chain, "merchant1", "group.open", body, "invalid_group_terms", str(PRICE))


def test_invalid_open_by_a_non_merchant(chain: OrderChain) -> None:
    rejected(chain, "buyer1", "group.open", _terms(chain), "not_authorized", "merchant")


def test_invalid_open_arbiter_without_the_role(chain: OrderChain) -> None:
    body = _terms(chain, arbiter=chain.address("buyer3"))
    rejected(chain, "merchant1", "group.open", body, "invalid_arbiter", "arbiter")


def test_invalid_join_after_the_deadline(chain: OrderChain) -> None:
    group_id = open_group(chain)
    joined(chain, "buyer1", group_id, OPENER_TOTAL)
    joined(chain, "buyer2", group_id, MEMBER_TOTAL)  # formed, room for one more
    deadline = group(chain, group_id).deadline_s
    chain.run([], at_s=deadline)  # the hook drops the formed group's deadline entry
    body = GroupJoin(group_id, MEMBER_TOTAL, None, None)
    rejected(chain, "buyer3", "group.join", body, "group_expired", str(deadline))


def test_invalid_join_a_full_group(chain: OrderChain) -> None:
    group_id = open_group(chain, max_members=2)
    joined(chain, "buyer1", group_id, OPENER_TOTAL)
    joined(chain, "buyer2", group_id, MEMBER_TOTAL)
    body = GroupJoin(group_id, MEMBER_TOTAL, None, None)
    rejected(chain, "buyer3", "group.join", body, "group_full", "2 members")


def test_invalid_join_with_the_wrong_price(chain: OrderChain) -> None:
    group_id = open_group(chain)
    body = GroupJoin(group_id, MEMBER_TOTAL, None, None)  # the opener owes the discounted price
    rejected(chain, "buyer1", "group.join", body, "group_price_mismatch", str(OPENER_TOTAL))
    joined(chain, "buyer1", group_id, OPENER_TOTAL)
    body = GroupJoin(group_id, MEMBER_TOTAL - 1, None, None)
    rejected(chain, "buyer2", "group.join", body, "group_price_mismatch", str(MEMBER_TOTAL - 1))


def test_invalid_double_join(chain: OrderChain) -> None:
    group_id = open_group(chain, min_members=3)
    joined(chain, "buyer1", group_id, OPENER_TOTAL)
    body = GroupJoin(group_id, MEMBER_TOTAL, None, None)
    rejected(chain, "buyer1", "group.join", body, "already_joined", "already joined")


def test_invalid_join_a_cancelled_group(chain: OrderChain) -> None:
    group_id = open_group(chain)
    assert chain.send("merchant1", "group.cancel", GroupCancel(group_id)).ok
    body = GroupJoin(group_id, OPENER_TOTAL, None, None)
    rejected(chain, "buyer1", "group.join", body, "group_closed", CANCELLED)


def test_invalid_join_an_expired_group(chain: OrderChain) -> None:
    group_id = open_group(chain)
    joined(chain, "buyer1", group_id, OPENER_TOTAL)
    chain.run([], at_s=group(chain, group_id).deadline_s)
    body = GroupJoin(group_id, MEMBER_TOTAL, None, None)
    rejected(chain, "buyer2", "group.join", body, "group_closed", FAILED)


def test_invalid_join_an_unknown_group(chain: OrderChain) -> None:
    body = GroupJoin(b"\x07" * 32, MEMBER_TOTAL, None, None)
    rejected(chain, "buyer1", "group.join", body, "unknown_group", "07" * 32)


def test_invalid_join_by_the_merchant_or_the_arbiter(chain: OrderChain) -> None:
    group_id = open_group(chain)
    body = GroupJoin(group_id, OPENER_TOTAL, None, None)
    rejected(chain, "merchant1", "group.join", body, "invalid_member", "merchant")
    rejected(chain, "arbiter", "group.join", body, "invalid_member", "arbiter")


def test_invalid_join_commission_over_the_cap(chain: OrderChain) -> None:
    group_id = open_group(chain)
    body = GroupJoin(group_id, OPENER_TOTAL, chain.address("sharer1"), 3_001)
    rejected(chain, "buyer1", "group.join", body, "commission_too_high", "3001")


def test_invalid_join_sharing_with_oneself(chain: OrderChain) -> None:
    group_id = open_group(chain)
    body = GroupJoin(group_id, OPENER_TOTAL, chain.address("buyer1"), 100)
    rejected(chain, "buyer1", "group.join", body, "invalid_sharer", "buyer")


def test_invalid_join_without_the_balance(chain: OrderChain) -> None:
    group_id = open_group(chain)
    body = GroupJoin(group_id, OPENER_TOTAL, None, None)
    rejected(chain, "admin", "group.join", body, "insufficient_balance", str(OPENER_TOTAL))


def test_invalid_cancel_by_a_non_merchant(chain: OrderChain) -> None:
    group_id = open_group(chain)
    joined(chain, "buyer1", group_id, OPENER_TOTAL)
    rejected(chain, "merchant2", "group.cancel", GroupCancel(group_id), "not_group_merchant", "")
    rejected(chain, "buyer1", "group.cancel", GroupCancel(group_id), "not_group_merchant", "")


def test_invalid_cancel_a_formed_group(chain: OrderChain) -> None:
    group_id = open_group(chain)
    joined(chain, "buyer1", group_id, OPENER_TOTAL)
    joined(chain, "buyer2", group_id, MEMBER_TOTAL)
    body = GroupCancel(group_id)
    rejected(chain, "merchant1", "group.cancel", body, "group_formed", group_id.hex())


def test_invalid_cancel_twice(chain: OrderChain) -> None:
    group_id = open_group(chain)
    joined(chain, "buyer1", group_id, OPENER_TOTAL)
    assert chain.send("merchant1", "group.cancel", GroupCancel(group_id)).ok
    body = GroupCancel(group_id)
    rejected(chain, "merchant1", "group.cancel", body, "group_closed", CANCELLED)
    assert balance(chain, "buyer1") == 1_000_000_00
