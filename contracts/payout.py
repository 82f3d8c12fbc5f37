"""Payout arithmetic of an order: pure integer functions, no state.

Every amount is an integer number of fen and every division is floor division, so all nodes
(and anyone checking a settlement by hand) get the same numbers. The rules, also in
docs/protocol.md ("Orders and escrow", payout arithmetic):

* goods value ``G = sum(quantity * unit_price)``; order total ``T = G + shipping``; a funded
  order holds exactly ``T`` in escrow.
* An order is settled once, with a refund ``r`` to the buyer, ``0 <= r <= T`` (0 at
  COMPLETED, ``T`` for a full refund, the arbiter's choice at RESOLVED). The rest
  ``K = T - r`` is the merchant's proceeds, from which the commission is taken.
* Commission ``C = floor(G * rate * K / (10_000 * T))``: the commission on the goods value,
  reduced in proportion to the share of the escrow the merchant keeps. ``K = T`` gives
  ``floor(G * rate / 10_000)``; ``K = 0`` (full refund) gives 0.
* Two levels: the sharer's inviter gets ``S = floor(C * second_level_bps / 10_000)`` and the
  sharer ``C - S``; with one level (or no eligible inviter) the sharer gets all of ``C``.
* The merchant gets ``K - C``: the rounding remainder of the commission stays with the
  merchant, that of the split with the sharer.

Invariant (tested): ``refund + merchant + sharer + inviter == T`` and every part is >= 0.
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
    """Fen to the merchant (proceeds minus commission)."""
    sharer: int
    """Fen to the direct sharer."""
    inviter: int
    """Fen to the sharer's inviter (second level; 0 with one level)."""

    @property
    def total(self) -> int:
        return self.refund + self.merchant + self.sharer + self.inviter


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


def split_commission(amount: int, second_level_bps: int, has_inviter: bool) -> tuple[int, int]:
    """(sharer, inviter) parts of a commission: the inviter gets the floor of its share."""
    if not has_inviter:
        return amount, 0
    second = (amount * second_level_bps) // BPS
    return amount - second, second


def settle(
    *,
    held: int,
    goods: int,
    refund: int,
    rate_bps: int,
    second_level_bps: int,
    has_sharer: bool,
    has_inviter: bool,
) -> Settlement:
    """Split `held` fen: `refund` to the buyer, commission(s) from the rest, the remainder to
    the merchant. Requires 0 <= refund <= held and goods <= held (callers check)."""
    kept = held - refund
    paid = commission(goods, rate_bps, kept, held) if has_sharer else 0
    sharer, inviter = split_commission(paid, second_level_bps, has_inviter)
    return Settlement(refund=refund, merchant=kept - paid, sharer=sharer, inviter=inviter)
