"""Redial delays: exponential backoff with jitter (sans-io: no sleeping, randomness injected).

The n-th consecutive failure waits `min(maximum, initial * 2**n)` scaled by a random factor in
`[1 - jitter, 1]`, so a network's nodes that lost the same peer do not redial in lockstep, and a
peer that stays down costs one attempt per `maximum` seconds. `reset()` after a success.
"""

from __future__ import annotations

import random

from p2p.errors import InvalidConfig


class Backoff:
    """The delay before each redial attempt to one peer."""

    __slots__ = ("_attempts", "_initial", "_jitter", "_maximum", "_rng")

    def __init__(self, initial: float, maximum: float, jitter: float, rng: random.Random) -> None:
        if not 0 < initial <= maximum:
            raise InvalidConfig(f"backoff needs 0 < initial <= maximum, got {initial}, {maximum}")
        if not 0 <= jitter < 1:
            raise InvalidConfig(f"backoff jitter must be in [0, 1), got {jitter}")
        self._initial = initial
        self._maximum = maximum
        self._jitter = jitter
        self._rng = rng
        self._attempts = 0

    @property
    def attempts(self) -> int:
        """Consecutive failures since the last reset."""
        return self._attempts

    def next_delay(self) -> float:
        """Seconds to wait before the next attempt; each call counts one more failure."""
        base = min(self._maximum, self._initial * 2.0 ** min(self._attempts, 64))
        self._attempts += 1
        return base * (1.0 - self._jitter * self._rng.random())

    def reset(self) -> None:
        """A connection succeeded: the next failure starts from the initial delay again."""
        self._attempts = 0
