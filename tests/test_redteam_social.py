"""An attacker's review of the social-commerce contracts (issue 13): each test is one attack that
must fail, with the rule's code and nothing changed but the sender's nonce (`rejected`).

Pickup codes are one-time (docs/protocol.md §16.10): `order.pickup` reveals the code on chain,
so a hash whose code was revealed must not open another hand-over. Without that rule a buyer who
reused a code (or a member who gave another member's hash) lets any leader who saw the first
pickup mark the second order handed over without the buyer.
"""

from __future__ import annotations

import hashlib

import pytest

from contracts.groups import GroupJoin, GroupOpen, get_group
from contracts.orders import AT_PICKUP, OrderArrive, OrderPay, OrderPickup, OrderShip
from tests.orderkit import OrderChain, accepted, order_genesis, pickup_code, rejected, shipment

CODE = pickup_code("reused by buyer1")
HASH = hashlib.sha256(CODE).digest()
ITEM = hashlib.sha256(b"rice, 5 kg").digest()


@pytest.fixture
def chain() -> OrderChain:
    return OrderChain(genesis=order_genesis())


def _paid_leader_order(chain: OrderChain, leader: str, pickup_hash: bytes) -> bytes:
    order_id = chain.create(leader=leader, leader_commission_bps=1_000)
    total = chain.order(order_id).total
    accepted(chain, "buyer1", "order.pay", OrderPay(order_id, total, pickup_hash))
    return order_id


def _at_pickup(chain: OrderChain, order_id: bytes, leader: str) -> None:
    accepted(chain, "merchant1", "order.ship", OrderShip(order_id, shipment(leader)))
    accepted(chain, leader, "order.arrive", OrderArrive(order_id))


def test_invalid_pickup_with_a_code_already_revealed_on_another_order(chain: OrderChain) -> None:
    first = _paid_leader_order(chain, "leader1", HASH)
    second = _paid_leader_order(chain, "leader2", HASH)
    _at_pickup(chain, first, "leader1")
    _at_pickup(chain, second, "leader2")
    accepted(chain, "leader1", "order.pickup", OrderPickup(first, CODE))
    # leader2 read CODE from leader1's order.pickup; the buyer never came.
    receipt = rejected(
        chain, "leader2", "order.pickup", OrderPickup(second, CODE), "wrong_pickup_code"
    )
    assert HASH.hex() in receipt.message and first.hex() in receipt.message
    assert chain.order(second).state == AT_PICKUP


def test_invalid_pay_with_a_pickup_hash_whose_code_was_revealed(chain: OrderChain) -> None:
    first = _paid_leader_order(chain, "leader1", HASH)
    _at_pickup(chain, first, "leader1")
    accepted(chain, "leader1", "order.pickup", OrderPickup(first, CODE))
    order_id = chain.create(leader="leader2", leader_commission_bps=1_000)
    total = chain.order(order_id).total
    receipt = rejected(
        chain, "buyer1", "order.pay", OrderPay(order_id, total, HASH), "invalid_pickup_hash"
    )
    assert HASH.hex() in receipt.message


def test_invalid_group_join_with_a_pickup_hash_whose_code_was_revealed(chain: OrderChain) -> None:
    first = _paid_leader_order(chain, "leader1", HASH)
    _at_pickup(chain, first, "leader1")
    accepted(chain, "leader1", "order.pickup", OrderPickup(first, CODE))
    body = GroupOpen(
        ITEM, 3_000, 2, 3, chain.now + 30, 0, 0, chain.address("arbiter"),
        chain.address("leader2"), 500,
    )  # fmt: skip
    group_id = accepted(chain, "merchant1", "group.open", body).tx_hash
    join = GroupJoin(group_id, 3_000, None, None, HASH)
    receipt = rejected(chain, "buyer1", "group.join", join, "invalid_pickup_hash")
    assert HASH.hex() in receipt.message
    group = get_group(chain.state, group_id)
    assert group is not None and (group.members, group.pool) == (0, 0)
