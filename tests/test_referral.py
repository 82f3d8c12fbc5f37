"""Referral bindings (write-once, never a cycle, paying nothing) and the one-level rule: only
the sharer whose link made the sale is paid, and no genesis or param.set can ask for more."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.orders import COMPLETED, OrderConfirm, OrderPay, OrderShip, party_key
from contracts.referral import INVITE_PREFIX, ReferralBind, get_inviter, invitee_count
from ledger.accounts import account_key, get_parameter
from ledger.encoding import decode
from ledger.errors import InvalidGenesis
from ledger.keys import PrivateKey
from ledger.transactions import ParameterSet
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


def test_only_the_direct_sharer_is_paid_and_a_binding_pays_nothing() -> None:
    chain = OrderChain(genesis=order_genesis())
    assert _bind(chain, "sharer1", "sharer2").ok
    before = chain.balance("sharer2")
    order_id = chain.create(sharer="sharer1", commission_bps=1_000)
    assert chain.order(order_id).parties() == [
        (chain.address("merchant1"), "merchant"),
        (chain.address("buyer1"), "buyer"),
        (chain.address("arbiter"), "arbiter"),
        (chain.address("sharer1"), "sharer"),
    ]
    assert chain.state.get(party_key(chain.address("sharer2"), order_id)) is None
    _complete(chain, order_id)
    assert chain.order(order_id).sharer_paid == 200
    assert chain.balance("sharer2") == before  # the inviter earns nothing from its invitee


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("referral_levels", 2),
        ("referral_levels", 1),
        ("second_level_share_bps", 3_000),
        ("second_level_anything", 0),
        ("max_commission_bps", 3_001),
    ],
)
def test_invalid_genesis_asking_for_upline_pay(name: str, value: int) -> None:
    with pytest.raises(InvalidGenesis, match=rf"parameters\.{name}: .*pyramid selling"):
        order_genesis(**{name: value})


@pytest.mark.parametrize(
    ("name", "value"),
    [("max_commission_bps", 3_001), ("referral_levels", 2), ("second_level_share_bps", 1)],
)
def test_invalid_param_set_cannot_raise_the_referral_cap(name: str, value: int) -> None:
    chain = OrderChain(genesis=order_genesis())
    before = dict(chain.state.committed)
    receipt = chain.send("admin", "param.set", ParameterSet(name, value))
    assert (receipt.ok, receipt.code) == (False, "invalid_parameter"), receipt
    assert "pyramid selling" in receipt.message
    changed = {
        k
        for k in set(before) | set(chain.state.committed)
        if before.get(k) != chain.state.committed.get(k)
    }
    assert changed == {account_key(chain.address("admin"))}  # only the admin's nonce
    assert get_parameter(chain.state, "max_commission_bps") == 3_000
