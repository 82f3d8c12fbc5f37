"""Referral bindings (write-once, never a cycle) and one- and two-level commission payouts."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from contracts.orders import COMPLETED, OrderConfirm, OrderPay, OrderShip, party_key
from contracts.referral import INVITE_PREFIX, ReferralBind, get_inviter, invitee_count
from ledger.encoding import decode
from ledger.keys import PrivateKey
from tests.orderkit import WINDOWS, OrderChain, order_genesis, shipment

NAMES = ("buyer1", "buyer2", "buyer3", "sharer1", "sharer2", "merchant1", "merchant2")


def _bind(chain: OrderChain, name: str, inviter: str) -> Any:
    return chain.send(name, "referral.bind", ReferralBind(chain.address(inviter)))


def _complete(chain: OrderChain, order_id: bytes) -> None:
    for name, tx_type, body in [
        ("buyer1", "order.pay", OrderPay(order_id, chain.order(order_id).total)),
        ("merchant1", "order.ship", OrderShip(order_id, shipment("SF"))),
        ("buyer1", "order.confirm", OrderConfirm(order_id)),
    ]:
        receipt = chain.send(name, tx_type, body)
        assert receipt.ok, receipt
    chain.run([], chain.now + WINDOWS["return_window_s"])
    assert chain.order(order_id).state == COMPLETED


def test_bind_records_the_inviter_once() -> None:
    chain = OrderChain(genesis=order_genesis())
    receipt = _bind(chain, "sharer1", "sharer2")
    assert receipt.ok
    assert receipt.events == (
        {
            "event": "referral.bound",
            "address": chain.address("sharer1"),
            "inviter": chain.address("sharer2"),
        },
    )
    assert get_inviter(chain.state, chain.address("sharer1")) == chain.address("sharer2")
    assert invitee_count(chain.state, chain.address("sharer2")) == 1
    raw = chain.state.get(INVITE_PREFIX + chain.address("sharer1"))
    assert raw is not None and decode(raw) == [chain.address("sharer2"), chain.now]


def test_invalid_self_referral() -> None:
    chain = OrderChain(genesis=order_genesis())
    receipt = _bind(chain, "sharer1", "sharer1")
    assert (receipt.ok, receipt.code) == (False, "self_referral")
    assert get_inviter(chain.state, chain.address("sharer1")) is None


def test_invalid_bind_twice() -> None:
    chain = OrderChain(genesis=order_genesis())
    assert _bind(chain, "sharer1", "sharer2").ok
    receipt = _bind(chain, "sharer1", "buyer1")
    assert (receipt.ok, receipt.code) == (False, "already_bound")
    assert get_inviter(chain.state, chain.address("sharer1")) == chain.address("sharer2")
    assert invitee_count(chain.state, chain.address("buyer1")) == 0


def test_invalid_bind_to_an_unregistered_inviter() -> None:
    chain = OrderChain(genesis=order_genesis())
    stranger = PrivateKey.from_label("stranger").address
    receipt = chain.send("sharer1", "referral.bind", ReferralBind(stranger))
    assert (receipt.ok, receipt.code) == (False, "unknown_account")


def test_invalid_binding_that_would_close_a_cycle() -> None:
    chain = OrderChain(genesis=order_genesis())
    assert _bind(chain, "sharer1", "sharer2").ok
    receipt = _bind(chain, "sharer2", "sharer1")  # two-account cycle
    assert (receipt.ok, receipt.code) == (False, "referral_cycle")
    # A longer one: buyer1 -> buyer2 -> buyer3, then buyer3 -> buyer1 would close it.
    assert _bind(chain, "buyer2", "buyer3").ok
    assert _bind(chain, "buyer1", "buyer2").ok
    receipt = _bind(chain, "buyer3", "buyer1")
    assert (receipt.ok, receipt.code) == (False, "referral_cycle")
    assert "invitee" in receipt.message
    assert get_inviter(chain.state, chain.address("buyer3")) is None


@given(st.lists(st.tuples(st.sampled_from(NAMES), st.sampled_from(NAMES)), max_size=25))
def test_random_bindings_never_form_a_cycle(binds: list[tuple[str, str]]) -> None:
    chain = OrderChain(genesis=order_genesis())
    chain.run([chain.sign(a, "referral.bind", ReferralBind(chain.address(b))) for a, b in binds])
    for name in NAMES:
        seen = {chain.address(name)}
        inviter = get_inviter(chain.state, chain.address(name))
        while inviter is not None:
            assert inviter not in seen
            seen.add(inviter)
            inviter = get_inviter(chain.state, inviter)
    for name in NAMES:
        count = sum(
            get_inviter(chain.state, chain.address(other)) == chain.address(name) for other in NAMES
        )
        assert invitee_count(chain.state, chain.address(name)) == count


def test_one_level_by_default_pays_only_the_direct_sharer() -> None:
    chain = OrderChain(genesis=order_genesis())
    assert _bind(chain, "sharer1", "sharer2").ok
    before = chain.balance("sharer2")
    order_id = chain.create(sharer="sharer1", commission_bps=1_000)
    assert chain.order(order_id).inviter is None
    _complete(chain, order_id)
    assert chain.order(order_id).sharer_paid == 200
    assert chain.balance("sharer2") == before


def test_two_levels_split_the_commission() -> None:
    chain = OrderChain(genesis=order_genesis(referral_levels=2, second_level_share_bps=3_333))
    assert _bind(chain, "sharer1", "sharer2").ok
    before = {n: chain.balance(n) for n in ("sharer1", "sharer2", "merchant1")}
    order_id = chain.create(
        items=(("tea", 3, 1_001),), shipping=7, sharer="sharer1", commission_bps=2_999
    )
    order = chain.order(order_id)
    assert (order.inviter, order.inviter_share_bps) == (chain.address("sharer2"), 3_333)
    raw = chain.state.get(party_key(chain.address("sharer2"), order_id))
    assert raw is not None and decode(raw) == "inviter"
    _complete(chain, order_id)
    goods, total = 3_003, 3_010
    commission = goods * 2_999 // 10_000  # 900
    second = commission * 3_333 // 10_000  # 299
    done = chain.order(order_id)
    assert (done.sharer_paid, done.inviter_paid, done.merchant_paid) == (
        commission - second,
        second,
        total - commission,
    )
    assert chain.balance("sharer1") == before["sharer1"] + commission - second
    assert chain.balance("sharer2") == before["sharer2"] + second
    assert chain.balance("merchant1") == before["merchant1"] + total - commission


def test_two_levels_skip_an_inviter_who_is_the_buyer() -> None:
    chain = OrderChain(genesis=order_genesis(referral_levels=2))
    assert _bind(chain, "sharer1", "buyer1").ok
    order_id = chain.create(sharer="sharer1", commission_bps=1_000)
    assert chain.order(order_id).inviter is None
    _complete(chain, order_id)
    assert (chain.order(order_id).sharer_paid, chain.order(order_id).inviter_paid) == (200, 0)


def test_second_level_is_fixed_when_the_order_is_created() -> None:
    chain = OrderChain(genesis=order_genesis(referral_levels=2))
    order_id = chain.create(sharer="sharer1", commission_bps=1_000)
    assert _bind(chain, "sharer1", "sharer2").ok  # after the order: not its second level
    _complete(chain, order_id)
    assert (chain.order(order_id).sharer_paid, chain.order(order_id).inviter_paid) == (200, 0)
