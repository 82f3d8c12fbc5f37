"""The payout arithmetic (contracts/payout.py): worked examples and properties."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from contracts.payout import Settlement, commission, goods_value, settle, split_commission

MAX = 2**63 - 1


def test_worked_examples_from_the_protocol_document() -> None:
    # goods 3 x 1001 = 3003, shipping 7, total 3010, 29.99 %, two levels with 33.33 %
    plan = settle(
        held=3_010,
        goods=3_003,
        refund=0,
        rate_bps=2_999,
        second_level_bps=3_333,
        has_sharer=True,
        has_inviter=True,
    )
    assert plan == Settlement(refund=0, merchant=2_110, sharer=601, inviter=299)
    # the same order resolved with 1 000 refunded: commission on the kept 2 010 of 3 010
    plan = settle(
        held=3_010,
        goods=3_003,
        refund=1_000,
        rate_bps=2_999,
        second_level_bps=3_333,
        has_sharer=True,
        has_inviter=False,
    )
    assert plan == Settlement(refund=1_000, merchant=1_409, sharer=601, inviter=0)
    assert 3_003 * 2_999 * 2_010 // (10_000 * 3_010) == 601


def test_goods_value_and_floor_commission() -> None:
    assert goods_value([(2, 1_000), (3, 7)]) == 2_021
    assert commission(999, 1, 100, 100) == 0  # 0.0999 fen rounds down: the merchant keeps it
    assert commission(10_000, 1, 100, 100) == 1
    assert commission(2_000, 1_000, 0, 2_500) == 0  # nothing kept: no commission
    assert split_commission(7, 5_000, True) == (4, 3)  # the split's remainder: to the sharer
    assert split_commission(7, 5_000, False) == (7, 0)


def test_full_refund_pays_nothing_else() -> None:
    plan = settle(
        held=500,
        goods=400,
        refund=500,
        rate_bps=3_000,
        second_level_bps=5_000,
        has_sharer=True,
        has_inviter=True,
    )
    assert plan == Settlement(refund=500, merchant=0, sharer=0, inviter=0)


@st.composite
def _orders(draw: st.DrawFn) -> tuple[int, int, int, int, int, bool, bool]:
    goods = draw(st.integers(0, MAX // 2))
    held = goods + draw(st.integers(0, MAX - goods))
    held = max(held, 1)
    refund = draw(st.integers(0, held))
    rate = draw(st.integers(0, 10_000))
    second = draw(st.integers(0, 10_000))
    return goods, held, refund, rate, second, draw(st.booleans()), draw(st.booleans())


@given(_orders())
def test_settlement_pays_exactly_what_was_held(
    case: tuple[int, int, int, int, int, bool, bool],
) -> None:
    goods, held, refund, rate, second, has_sharer, has_inviter = case
    plan = settle(
        held=held,
        goods=goods,
        refund=refund,
        rate_bps=rate,
        second_level_bps=second,
        has_sharer=has_sharer,
        has_inviter=has_inviter,
    )
    assert plan.total == held
    assert min(plan.refund, plan.merchant, plan.sharer, plan.inviter) >= 0
    assert plan.refund == refund
    paid = plan.sharer + plan.inviter
    assert paid == (commission(goods, rate, held - refund, held) if has_sharer else 0)
    assert paid <= goods * rate // 10_000  # never more than on the full goods value
    if not has_inviter:
        assert plan.inviter == 0
    if refund == held:
        assert plan.merchant == plan.sharer == plan.inviter == 0


@given(st.integers(0, 10**12), st.integers(1, 10**12), st.integers(0, 10_000), st.data())
def test_commission_grows_with_what_the_merchant_keeps(
    goods: int, extra: int, rate: int, data: st.DataObject
) -> None:
    held = goods + extra
    low = data.draw(st.integers(0, held))
    high = data.draw(st.integers(low, held))
    assert commission(goods, rate, low, held) <= commission(goods, rate, high, held)
    assert commission(goods, rate, held, held) == goods * rate // 10_000
