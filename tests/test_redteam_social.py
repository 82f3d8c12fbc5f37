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

from contracts.groups import (
    FAILED,
    FORMED,
    GroupCancel,
    GroupJoin,
    GroupOpen,
    get_group,
    get_member,
    group_key,
    member_key,
    member_order_id,
)
from contracts.orders import (
    AT_PICKUP,
    COMPLETED,
    OrderArrive,
    OrderConfirm,
    OrderPay,
    OrderPickup,
    OrderReturn,
    OrderReturnReceived,
    OrderReturnShip,
    OrderShip,
    order_key,
)
from ledger.accounts import account_key, get_account, get_supply, mask_to_roles
from ledger.errors import InvalidProof
from secnode.schema.groups import GroupJson, GroupMemberJson, GroupResult
from secnode.schema.models import AccountResult, OrderResult
from secnode.schema.objects import Order as OrderView
from secnode.schema.objects import StateProof as ApiStateProof
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


# --- attacks checked and found refused (regression tests) -------------------------------------


def _group(chain: OrderChain, min_members: int, max_members: int, window_s: int = 30) -> bytes:
    body = GroupOpen(
        ITEM, 3_000, min_members, max_members, chain.now + window_s, 0, 0,
        chain.address("arbiter"), None, None,
    )  # fmt: skip
    return accepted(chain, "merchant1", "group.open", body).tx_hash


def _escrow_and_credits(chain: OrderChain) -> tuple[int, tuple[int, int]]:
    return get_supply(chain.state).escrow, chain.total_credits()


def test_joins_in_one_block_cannot_overflow_max_members(chain: OrderChain) -> None:
    group_id = _group(chain, 2, 2)
    before = chain.balance("buyer3")
    txs = [
        chain.sign(name, "group.join", GroupJoin(group_id, 3_000, None, None))
        for name in ("buyer1", "buyer2", "buyer3")
    ]
    receipts = chain.run(txs)
    assert [(r.ok, r.code) for r in receipts] == [(True, ""), (True, ""), (False, "group_full")]
    group = get_group(chain.state, group_id)
    assert group is not None and (group.state, group.members, group.pool) == (FORMED, 2, 0)
    assert chain.balance("buyer3") == before
    escrow, (held, minted) = _escrow_and_credits(chain)
    assert escrow == 2 * 3_000 and held == minted


def test_a_join_in_the_deadline_block_cannot_form_the_group(chain: OrderChain) -> None:
    group_id = _group(chain, 2, 3)
    deadline = chain.now + 29
    accepted(chain, "buyer1", "group.join", GroupJoin(group_id, 3_000, None, None))
    before = {name: chain.balance(name) for name in ("buyer1", "buyer2")}
    txs = [chain.sign("buyer2", "group.join", GroupJoin(group_id, 3_000, None, None))]
    (receipt,) = chain.run(txs, deadline)  # a block exactly at the deadline
    assert (receipt.ok, receipt.code) == (False, "group_closed")
    group = get_group(chain.state, group_id)
    assert group is not None and (group.state, group.members, group.pool) == (FAILED, 1, 0)
    assert chain.balance("buyer1") == before["buyer1"] + 3_000  # refunded once, by the hook
    assert chain.balance("buyer2") == before["buyer2"]
    rejected(
        chain, "merchant1", "group.cancel", GroupCancel(group_id), "group_closed"
    )  # no second refund
    escrow, (held, minted) = _escrow_and_credits(chain)
    assert escrow == 0 and held == minted


def test_invalid_group_join_with_the_leader_as_sharer(chain: OrderChain) -> None:
    body = GroupOpen(
        ITEM, 3_000, 2, 3, chain.now + 30, 0, 0, chain.address("arbiter"),
        chain.address("leader1"), 500,
    )  # fmt: skip
    group_id = accepted(chain, "merchant1", "group.open", body).tx_hash
    join = GroupJoin(group_id, 3_000, chain.address("leader1"), 100, HASH)
    receipt = rejected(chain, "buyer1", "group.join", join, "invalid_sharer")
    assert "leader" in receipt.message


def test_invalid_second_return_of_the_same_lines(chain: OrderChain) -> None:
    order_id = chain.create(items=(("tea", 1, 1_000), ("cup", 1, 500)))
    accepted(chain, "buyer1", "order.pay", OrderPay(order_id, chain.order(order_id).total))
    accepted(chain, "merchant1", "order.ship", OrderShip(order_id, shipment("SF")))
    accepted(chain, "buyer1", "order.confirm", OrderConfirm(order_id))
    accepted(chain, "buyer1", "order.return", OrderReturn(order_id, (0,)))
    rejected(chain, "buyer1", "order.return", OrderReturn(order_id, (0,)), "wrong_order_state")
    accepted(chain, "buyer1", "order.return-ship", OrderReturnShip(order_id, shipment("back")))
    accepted(chain, "merchant1", "order.return-received", OrderReturnReceived(order_id))
    done = chain.order(order_id)
    assert (done.state, done.refunded, done.merchant_paid) == (COMPLETED, 1_000, 1_000)
    rejected(chain, "buyer1", "order.return", OrderReturn(order_id, (1,)), "order_closed")


# --- a hostile node behind `sec query group --prove` ------------------------------------------


def _proven_group(chain: OrderChain) -> tuple[GroupResult, bytes]:
    """An honest sec_getGroup answer with proofs (built as the server builds it) for a formed
    group of two, and its id."""
    group_id = _group(chain, 2, 3)
    for name in ("buyer1", "buyer2"):
        accepted(chain, name, "group.join", GroupJoin(group_id, 3_000, None, None))
    state = chain.state
    group = get_group(state, group_id)
    assert group is not None
    members = []
    for index in range(group.members):
        member = get_member(state, group_id, index)
        assert member is not None
        key = member_key(group_id, index)
        proof = ApiStateProof.of(state.prove(key))
        members.append(GroupMemberJson.of(index, member, proof, state.get_committed(key)))
    answer = GroupResult(
        group_id=group_id,
        exists=True,
        group=GroupJson.of(group_id, group),
        members=members,
        next_member=None,
        height=chain.head.height,
        state_root=state.committed_root(),
        proof=ApiStateProof.of(state.prove(group_key(group_id))),
        value=state.get_committed(group_key(group_id)),
    )
    return answer, group_id


def test_an_honest_group_answer_passes_its_proof_check(chain: OrderChain) -> None:
    answer, _ = _proven_group(chain)
    answer.check_proofs(0)


def test_invalid_proven_group_answer_with_forged_fields(chain: OrderChain) -> None:
    """The proofs verify the raw records; the shown JSON must be those records, or a node can
    show any group (here: a refunded pool) next to a genuine proof."""
    answer, _ = _proven_group(chain)
    assert answer.group is not None
    forged = answer.group.model_copy(update={"state": "FAILED", "pool": 6_000})
    with pytest.raises(InvalidProof, match="group record"):
        answer.model_copy(update={"group": forged}).check_proofs(0)
    member = answer.members[1].model_copy(update={"buyer": chain.address("buyer3")})
    with pytest.raises(InvalidProof, match="member 1"):
        answer.model_copy(update={"members": [answer.members[0], member]}).check_proofs(0)


def test_invalid_proven_group_answer_that_hides_members(chain: OrderChain) -> None:
    answer, _ = _proven_group(chain)
    with pytest.raises(InvalidProof, match="next_member"):
        answer.model_copy(update={"members": answer.members[:1]}).check_proofs(0)
    with pytest.raises(InvalidProof, match="index"):
        answer.model_copy(update={"members": answer.members[::-1]}).check_proofs(0)
    absent = answer.model_copy(update={"exists": False, "group": None, "members": []})
    with pytest.raises(InvalidProof, match="absent"):
        absent.check_proofs(0)  # the proof shows the record: "absent" is a lie


def _proven_order(chain: OrderChain) -> OrderResult:
    """An honest sec_getOrder answer with its proof, built as the server builds it."""
    order_id = chain.create()
    state = chain.state
    key = order_key(order_id)
    order = OrderView.of(order_id, chain.order(order_id))
    return OrderResult(
        order_id=order_id,
        exists=True,
        order=order,
        items=order.items,
        created_height=None,
        height=chain.head.height,
        state_root=state.committed_root(),
        proof=ApiStateProof.of(state.prove(key)),
        value=state.get_committed(key),
    )


def test_invalid_proven_order_answer_with_forged_fields(chain: OrderChain) -> None:
    answer = _proven_order(chain)
    answer.check_proof()
    assert answer.order is not None
    forged = answer.order.model_copy(update={"state": "COMPLETED", "held": 0})
    with pytest.raises(InvalidProof, match="proven order record"):
        answer.model_copy(update={"order": forged}).check_proof()
    absent = answer.model_copy(update={"exists": False, "order": None})
    with pytest.raises(InvalidProof, match="absent"):
        absent.check_proof()  # the proof shows the record: "absent" is a lie


# --- the sharer's rate in a group is the merchant's to set ------------------------------------


def _sharing_group(chain: OrderChain, rate: int | None) -> bytes:
    body = GroupOpen(
        ITEM, 3_000, 2, 3, chain.now + 30, 0, 0, chain.address("arbiter"), None, None, rate,
    )  # fmt: skip
    return accepted(chain, "merchant1", "group.open", body).tx_hash


def test_invalid_join_naming_a_sharer_the_merchant_pays_nothing(chain: OrderChain) -> None:
    """A buyer names its own second account (sharer1) at the cap: a 30 % rebate out of the
    merchant's proceeds that the merchant never offered."""
    group_id = _sharing_group(chain, None)
    join = GroupJoin(group_id, 3_000, chain.address("sharer1"), 3_000)
    receipt = rejected(chain, "buyer1", "group.join", join, "commission_too_high")
    assert "3000 bps" in receipt.message and "0 bps" in receipt.message


def test_invalid_join_with_a_rate_above_the_merchants_offer(chain: OrderChain) -> None:
    group_id = _sharing_group(chain, 500)
    join = GroupJoin(group_id, 3_000, chain.address("sharer1"), 501)
    receipt = rejected(chain, "buyer1", "group.join", join, "commission_too_high")
    assert "501 bps" in receipt.message and "500 bps" in receipt.message
    accepted(
        chain, "buyer1", "group.join", GroupJoin(group_id, 3_000, chain.address("sharer1"), 500)
    )
    accepted(chain, "buyer2", "group.join", GroupJoin(group_id, 3_000, None, None))
    assert chain.order(member_order_id(group_id, 0)).commission_bps == 500


def test_invalid_open_with_a_sharer_rate_over_the_cap(chain: OrderChain) -> None:
    body = GroupOpen(
        ITEM, 3_000, 2, 3, chain.now + 30, 0, 0, chain.address("arbiter"), None, None, 3_001,
    )  # fmt: skip
    receipt = rejected(chain, "merchant1", "group.open", body, "commission_too_high")
    assert "3001" in receipt.message


# --- the same light-client rule for accounts, and order lines from the proven record ---------


def _proven_account(chain: OrderChain, name: str) -> AccountResult:
    """An honest sec_getAccount answer with its proof, built as the server builds it."""
    address = chain.address(name)
    state = chain.state
    key = account_key(address)
    account = get_account(state, address)
    assert account is not None
    return AccountResult(
        address=address,
        exists=True,
        public_key=account.public_key,
        nonce=account.nonce,
        balance=account.balance,
        roles=mask_to_roles(account.roles),
        name=account.name,
        height=chain.head.height,
        state_root=state.committed_root(),
        proof=ApiStateProof.of(state.prove(key)),
        value=state.get_committed(key),
    )


def test_invalid_proven_account_answer_with_a_forged_balance(chain: OrderChain) -> None:
    answer = _proven_account(chain, "buyer1")
    answer.check_proof()
    assert answer.balance is not None
    forged = answer.model_copy(update={"balance": answer.balance + 1_000_000})
    with pytest.raises(InvalidProof, match="proven account record"):
        forged.check_proof()
    with pytest.raises(InvalidProof, match="proof is for key"):  # another account's answer
        forged.model_copy(update={"address": chain.address("merchant1")}).check_proof()
    absent = answer.model_copy(
        update={
            "exists": False,
            "public_key": None,
            "nonce": None,
            "balance": None,
            "roles": None,
            "name": None,
        }
    )
    with pytest.raises(InvalidProof, match="absent"):
        absent.check_proof()


def test_order_lines_come_from_the_proven_record(chain: OrderChain) -> None:
    honest = _proven_order(chain)
    assert honest.order is not None
    honest.check_proof()
    line = honest.order.items[0]
    forged = [line.model_copy(update={"unit_price": line.unit_price + 1})]
    with pytest.raises(InvalidProof, match="lines"):
        honest.model_copy(update={"items": forged}).check_proof()
