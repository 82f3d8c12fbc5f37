"""The payout arithmetic (contracts/payout.py): worked examples and properties."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from contracts.payout import Settlement, commission, goods_value, settle, settle_return

MAX = 2**63 - 1


def test_worked_examples_from_the_protocol_document() -> None:
    # goods 3 x 1001 = 3003, shipping 7, total 3010, sharer 29.99 %, leader 5 %
    plan = settle(held=3_010, goods=3_003, refund=0, sharer_bps=2_999, leader_bps=500)
    assert plan == Settlement(refund=0, merchant=1_960, sharer=900, leader=150)
    # the same order resolved with 1 000 refunded: commissions on the kept 2 010 of 3 010
    plan = settle(held=3_010, goods=3_003, refund=1_000, sharer_bps=2_999, leader_bps=500)
    assert plan == Settlement(refund=1_000, merchant=1_309, sharer=601, leader=100)
    assert 3_003 * 2_999 * 2_010 // (10_000 * 3_010) == 601
    assert 3_003 * 500 * 2_010 // (10_000 * 3_010) == 100


def test_worked_return_example_from_the_protocol_document() -> None:
    # lines tea 2 x 1000 and cup 1 x 1003 (goods 3003), shipping 7; the cup is returned
    plan = settle_return(held=3_010, goods=3_003, returned=1_003, sharer_bps=2_999, leader_bps=500)
    assert plan == Settlement(refund=1_003, merchant=1_308, sharer=599, leader=100)
    assert 2_000 * 2_999 // 10_000 == 599 and 2_000 * 500 // 10_000 == 100


def test_goods_value_and_floor_commission() -> None:
    assert goods_value([(2, 1_000), (3, 7)]) == 2_021
    assert commission(999, 1, 100, 100) == 0  # 0.0999 fen rounds down: the merchant keeps it
    assert commission(10_000, 1, 100, 100) == 1
    assert commission(2_000, 1_000, 0, 2_500) == 0  # nothing kept: no commission


def test_full_refund_pays_nothing_else() -> None:
    plan = settle(held=500, goods=400, refund=500, sharer_bps=3_000, leader_bps=3_000)
    assert plan == Settlement(refund=500, merchant=0, sharer=0, leader=0)


def test_returning_every_line_pays_no_commission() -> None:
    plan = settle_return(held=2_500, goods=2_000, returned=2_000, sharer_bps=3_000, leader_bps=1)
    assert plan == Settlement(refund=2_000, merchant=500, sharer=0, leader=0)


_rates = st.tuples(st.integers(0, 10_000), st.integers(0, 10_000)).filter(
    lambda rates: sum(rates) <= 10_000
)


@st.composite
def _orders(draw: st.DrawFn) -> tuple[int, int, int, int, int]:
    goods = draw(st.integers(0, MAX // 2))
    held = max(goods + draw(st.integers(0, MAX - goods)), 1)
    refund = draw(st.integers(0, held))
    sharer, leader = draw(_rates)
    return goods, held, refund, sharer, leader


@given(_orders())
def test_settlement_pays_exactly_what_was_held(case: tuple[int, int, int, int, int]) -> None:
    goods, held, refund, sharer_bps, leader_bps = case
    plan = settle(
        held=held, goods=goods, refund=refund, sharer_bps=sharer_bps, leader_bps=leader_bps
    )
    assert plan.total == held
    assert min(plan.refund, plan.merchant, plan.sharer, plan.leader) >= 0
    assert plan.refund == refund
    assert plan.sharer == commission(goods, sharer_bps, held - refund, held)
    assert plan.leader == commission(goods, leader_bps, held - refund, held)
    assert plan.sharer <= goods * sharer_bps // 10_000  # never more than on the full goods
    assert plan.leader <= goods * leader_bps // 10_000
    if refund == held:
        assert plan.merchant == plan.sharer == plan.leader == 0


@given(_orders(), st.data())
def test_return_refunds_exactly_the_lines_and_pays_commission_on_the_rest(
    case: tuple[int, int, int, int, int], data: st.DataObject
) -> None:
    goods, held, _, sharer_bps, leader_bps = case
    returned = data.draw(st.integers(0, goods))
    plan = settle_return(
        held=held, goods=goods, returned=returned, sharer_bps=sharer_bps, leader_bps=leader_bps
    )
    assert plan.total == held
    assert plan.refund == returned
    assert min(plan.merchant, plan.sharer, plan.leader) >= 0
    assert plan.sharer == (goods - returned) * sharer_bps // 10_000
    assert plan.leader == (goods - returned) * leader_bps // 10_000
    full = settle(held=held, goods=goods, refund=0, sharer_bps=sharer_bps, leader_bps=leader_bps)
    assert plan.sharer <= full.sharer and plan.leader <= full.leader  # reversed, never added


@given(st.integers(0, 10**12), st.integers(1, 10**12), st.integers(0, 10_000), st.data())
def test_commission_grows_with_what_the_merchant_keeps(
    goods: int, extra: int, rate: int, data: st.DataObject
) -> None:
    held = goods + extra
    low = data.draw(st.integers(0, held))
    high = data.draw(st.integers(low, held))
    assert commission(goods, rate, low, held) <= commission(goods, rate, high, held)
    assert commission(goods, rate, held, held) == goods * rate // 10_000
