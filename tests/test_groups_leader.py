"""A formed group routed to a community leader's pickup point: each member order records the
leader and the member's pickup-code hash, is handed over with the code, and pays the leader's
commission in its one payout; and the rules that go with it (`test_invalid_*`: a failed receipt
with the rule's code and nothing changed but the sender's nonce)."""

from __future__ import annotations

import hashlib

import pytest

from contracts.groups import FORMED, GroupJoin, GroupOpen, get_group, member_order_id
from contracts.orders import AT_PICKUP, COMPLETED, OrderArrive, OrderPickup, OrderShip
from contracts.reviews import ReviewPost, order_item_refs
from tests.orderkit import OrderChain, accepted, order_genesis, pickup_code, rejected, shipment

ITEM = hashlib.sha256(b"rice, 5 kg").digest()
PRICE = 3_000
LEADER_BPS = 500
BUYERS = ("buyer1", "buyer2", "buyer3")


@pytest.fixture
def chain() -> OrderChain:
    return OrderChain(genesis=order_genesis(attest_window_s=100, trust_epoch_blocks=1_000))


def _open(
    chain: OrderChain, leader: str | None = "leader1", rate: int | None = LEADER_BPS
) -> bytes:
    body = GroupOpen(
        ITEM,
        PRICE,
        3,
        3,
        chain.now + 30,
        0,
        0,
        chain.address("arbiter"),
        None if leader is None else chain.address(leader),
        rate,
    )
    return accepted(chain, "merchant1", "group.open", body).tx_hash


def _join(group_id: bytes, buyer: str) -> GroupJoin:
    return GroupJoin(group_id, PRICE, None, None, hashlib.sha256(pickup_code(buyer)).digest())


def test_a_group_through_a_leader_forms_and_every_member_picks_up_with_a_code(
    chain: OrderChain,
) -> None:
    before = {name: chain.balance(name) for name in (*BUYERS, "merchant1", "leader1")}
    group_id = _open(chain)
    for buyer in BUYERS:
        accepted(chain, buyer, "group.join", _join(group_id, buyer))
    group = get_group(chain.state, group_id)
    assert group is not None and group.state == FORMED
    orders = [member_order_id(group_id, index) for index in range(3)]
    for order_id, buyer in zip(orders, BUYERS, strict=True):
        order = chain.order(order_id)
        assert order.leader == chain.address("leader1")
        assert order.leader_commission_bps == LEADER_BPS
        assert order.pickup_hash == hashlib.sha256(pickup_code(buyer)).digest()
        assert order_item_refs(chain.state, order_id) == (ITEM,)  # reviewable by the offer
        accepted(chain, "merchant1", "order.ship", OrderShip(order_id, shipment("to leader1")))
        accepted(chain, "leader1", "order.arrive", OrderArrive(order_id))
        assert chain.order(order_id).state == AT_PICKUP
        accepted(chain, "leader1", "order.pickup", OrderPickup(order_id, pickup_code(buyer)))
    chain.run([], chain.now + 100)  # the return windows pass
    fee = PRICE * LEADER_BPS // 10_000
    for order_id in orders:
        done = chain.order(order_id)
        assert done.state == COMPLETED
        assert (done.merchant_paid, done.leader_paid, done.refunded) == (PRICE - fee, fee, 0)
    assert chain.balance("leader1") == before["leader1"] + 3 * fee
    assert chain.balance("merchant1") == before["merchant1"] + 3 * (PRICE - fee)
    for buyer in BUYERS:
        assert chain.balance(buyer) == before[buyer] - PRICE
    review = ReviewPost(orders[0], 5, hashlib.sha256(b"good rice").digest(), ITEM)
    accepted(chain, "buyer1", "review.post", review)


def test_invalid_join_of_a_leader_group_without_a_pickup_hash(chain: OrderChain) -> None:
    group_id = _open(chain)
    body = GroupJoin(group_id, PRICE, None, None)
    rejected(chain, "buyer1", "group.join", body, "invalid_pickup_hash")


def test_invalid_join_with_a_pickup_hash_when_there_is_no_leader(chain: OrderChain) -> None:
    group_id = _open(chain, leader=None, rate=None)
    rejected(chain, "buyer1", "group.join", _join(group_id, "buyer1"), "invalid_pickup_hash")


def test_invalid_join_by_the_groups_own_leader(chain: OrderChain) -> None:
    group_id = _open(chain)
    rejected(chain, "leader1", "group.join", _join(group_id, "leader1"), "invalid_member")


def test_invalid_open_with_a_leader_who_lacks_the_role(chain: OrderChain) -> None:
    body = GroupOpen(
        ITEM, PRICE, 3, 3, chain.now + 30, 0, 0, chain.address("arbiter"),
        chain.address("sharer1"), LEADER_BPS,
    )  # fmt: skip
    rejected(chain, "merchant1", "group.open", body, "invalid_leader")


def test_invalid_open_with_a_leader_rate_over_the_cap(chain: OrderChain) -> None:
    body = GroupOpen(
        ITEM, PRICE, 3, 3, chain.now + 30, 0, 0, chain.address("arbiter"),
        chain.address("leader1"), 3_001,
    )  # fmt: skip
    rejected(chain, "merchant1", "group.open", body, "commission_too_high")


def test_invalid_open_with_a_leader_but_no_rate(chain: OrderChain) -> None:
    body = GroupOpen(
        ITEM, PRICE, 3, 3, chain.now + 30, 0, 0, chain.address("arbiter"),
        chain.address("leader1"), None,
    )  # fmt: skip
    rejected(chain, "merchant1", "group.open", body, "invalid_leader")
