"""Payout arithmetic of an order: pure integer functions, no state.

Every amount is an integer number of fen and every division is floor division, so all nodes
(and anyone checking a settlement by hand) get the same numbers. The rules, also in
docs/protocol.md ("Orders and escrow", payout arithmetic):

* goods value ``G = sum(quantity * unit_price)``; order total ``T = G + shipping``; a funded
  order holds exactly ``T`` in escrow.
* An order is settled once, with a refund ``r`` to the buyer, ``0 <= r <= T`` (0 at
  COMPLETED, ``T`` for a full refund, the arbiter's choice at RESOLVED). The rest
  ``K = T - r`` is the merchant's proceeds, from which the commissions are taken.
* Each commission, the sharer's at rate ``s`` and the leader's at rate ``l``, is
  ``floor(G * rate * K / (10_000 * T))``: the rate on the goods value, reduced in proportion to
  the share of the escrow the merchant keeps. ``K = T`` gives ``floor(G * rate / 10_000)``;
  ``K = 0`` (full refund) gives 0. One level only: nobody else is paid from a commission.
* The merchant gets ``K - sharer - leader`` (>= 0 because ``s + l <= 10_000``): the rounding
  remainders stay with the merchant.
* A no-reason return of lines worth ``R`` (their goods value) refunds exactly ``R`` and settles
  the rest as a completed order of goods ``G - R`` and total ``T - R``: the commissions are
  computed on the kept lines only, so a returned line never pays a commission.

Invariant (tested): ``refund + merchant + sharer + leader == T`` and every part is >= 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

BPS: Final = 10_000
"""Basis points in one whole."""


@dataclass(frozen=True, slots=True)
class Settlement:
    """How one order's escrow is split when it reaches a terminal state."""

    refund: int
    """Fen back to the buyer."""
    merchant: int
    """Fen to the merchant (proceeds minus commissions)."""
    sharer: int
    """Fen to the sharer whose link made the sale."""
    leader: int
    """Fen to the community group leader who handled the pickup."""

    @property
    def total(self) -> int:
        return self.refund + self.merchant + self.sharer + self.leader


def goods_value(lines: Iterable[tuple[int, int]]) -> int:
    """Sum of quantity * unit_price over (quantity, unit_price) lines."""
    return sum(quantity * unit_price for quantity, unit_price in lines)


def commission(goods: int, rate_bps: int, kept: int, held: int) -> int:
    """floor(goods * rate_bps * kept / (10 000 * held)); 0 when nothing is held or kept.

    `kept` is the part of `held` the merchant keeps (held minus the refund).
    """
    if held <= 0 or kept <= 0:
        return 0
    return (goods * rate_bps * kept) // (BPS * held)


def settle(*, held: int, goods: int, refund: int, sharer_bps: int, leader_bps: int) -> Settlement:
    """Split `held` fen: `refund` to the buyer, the commissions from the rest, the remainder to
    the merchant. Requires 0 <= refund <= held, goods <= held and sharer_bps + leader_bps <=
    10 000 (callers check; a rate is 0 without its payee)."""
    kept = held - refund
    sharer = commission(goods, sharer_bps, kept, held)
    leader = commission(goods, leader_bps, kept, held)
    return Settlement(refund=refund, merchant=kept - sharer - leader, sharer=sharer, leader=leader)


def settle_return(
    *, held: int, goods: int, returned: int, sharer_bps: int, leader_bps: int
) -> Settlement:
    """A no-reason return of lines worth `returned` (<= goods): refund exactly that, and settle
    the kept lines as a completed order (commissions on the kept goods only)."""
    kept = settle(
        held=held - returned,
        goods=goods - returned,
        refund=0,
        sharer_bps=sharer_bps,
        leader_bps=leader_bps,
    )
    return Settlement(
        refund=returned, merchant=kept.merchant, sharer=kept.sharer, leader=kept.leader
    )
