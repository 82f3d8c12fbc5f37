"""Per-peer rate limits as token buckets (sans-io: time is an argument).

A bucket holds at most `burst` tokens and refills at `rate` per second. `take` always accepts
the amount - the data has already arrived - and returns how long the reader should pause before
reading more, so an over-eager peer is slowed by TCP backpressure instead of losing messages or
making us buffer. Invariant: tokens never exceed `burst`; a clock that steps backwards refills
nothing.
"""

from __future__ import annotations

from p2p.errors import InvalidConfig


class TokenBucket:
    """A token bucket: `take(amount, now)` returns the seconds to wait (0.0 when within limit)."""

    __slots__ = ("_burst", "_rate", "_tokens", "_updated")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst <= 0:
            raise InvalidConfig(f"token bucket needs positive rate and burst, got {rate}, {burst}")
        self._rate = rate
        self._burst = burst
        self._tokens = burst
        self._updated = now

    @property
    def tokens(self) -> float:
        """Tokens left after the last `take` (negative while in debt)."""
        return self._tokens

    def take(self, amount: float, now: float) -> float:
        """Spend `amount` tokens at time `now`; the pause, in seconds, that repays any debt."""
        elapsed = now - self._updated
        if elapsed > 0:
            self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
            self._updated = now
        self._tokens -= amount
        return 0.0 if self._tokens >= 0 else -self._tokens / self._rate
