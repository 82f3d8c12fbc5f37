"""Per-client token buckets over RPC cost units (sans-io: the caller passes `now`).

Each client (its key: the identity of a valid credential, `token:<name>` or `cert:<CN>`,
else its remote IP; secnode.runtime.rpc.auth.Grant.rate_key) has a bucket of at most `burst`
units that refills at `rate_per_s` units per second. A request is admitted when the bucket
holds at least its cost; the cost is then taken. A refused request takes nothing and is told
when enough units will be there.

Invariants: a bucket never holds more than `burst` nor less than 0; at most `max_clients`
buckets are kept (the least recently seen is dropped first, which only ever forgives that
client), so memory is bounded whatever the number of addresses; time that goes backwards is
treated as no time passing.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

DEFAULT_RATE_PER_S: Final = 2_000.0
DEFAULT_BURST: Final = 4_000.0
DEFAULT_MAX_CLIENTS: Final = 10_000


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The limit applied to every client."""

    rate_per_s: float = DEFAULT_RATE_PER_S
    """Cost units a client earns per second (0 disables rate limiting)."""
    burst: float = DEFAULT_BURST
    """Most units a client may spend at once; also the largest request cost admitted."""
    max_clients: int = DEFAULT_MAX_CLIENTS
    """Most clients tracked at once."""


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets keyed by client (see the module docstring)."""

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def _bucket(self, client: str, now: float) -> _Bucket:
        bucket = self._buckets.get(client)
        if bucket is None:
            bucket = _Bucket(self.limit.burst, now)
            self._buckets[client] = bucket
            while len(self._buckets) > self.limit.max_clients:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(client)
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(self.limit.burst, bucket.tokens + elapsed * self.limit.rate_per_s)
            bucket.updated = max(bucket.updated, now)
        return bucket

    def retry_after(self, client: str, cost: float, now: float) -> float | None:
        """None if `client` may spend `cost` units now, else the seconds until it may (a cost
        above the burst is capped to the burst: such a request is refused by the cost budget)."""
        if self.limit.rate_per_s <= 0:
            return None
        bucket = self._bucket(client, now)
        needed = min(cost, self.limit.burst) - bucket.tokens
        return None if needed <= 0 else needed / self.limit.rate_per_s

    def take(self, client: str, cost: float, now: float) -> float | None:
        """Spend `cost` units of `client` if it has them (then None); otherwise change nothing
        and return the seconds to wait."""
        wait = self.retry_after(client, cost, now)
        if wait is None and self.limit.rate_per_s > 0:
            bucket = self._buckets[client]
            bucket.tokens = max(0.0, bucket.tokens - cost)
        return wait
