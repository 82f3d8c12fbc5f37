"""sec_getTrustDistribution: how the latest epoch's trust is spread, for the console's trust page.

The score records (``trust:score:`` || address, docs/protocol.md §17.3) are read once per epoch
in a worker thread (`Worker.run`: 100k records take a few hundred milliseconds, which the event
loop must not spend), summarized into `TRUST_BUCKETS` equal-width buckets over [0, max score]
and the `TOP_ACCOUNTS` highest scores, and the summary is cached for the last `CACHED_EPOCHS`
epochs (a summary is a few hundred bytes).

Only the latest epoch's scores are in state (a record is rewritten when the next epoch commits),
so an earlier epoch is answered only from the cache; otherwise not_found says so. The scan runs
off the loop while blocks commit: it is kept only if the latest epoch is the same number before
and after it (epochs only move forward, so then no epoch was committed in between and every row
read was that epoch's), and its row count must be the epoch record's `accounts` (the epoch's
universe, which every record of it belongs to).
"""

from __future__ import annotations

import asyncio
import heapq
from collections import OrderedDict
from collections.abc import Iterable
from typing import Final

from contracts.epochs import SCORE_PREFIX, StoredEpoch, parse_score_record, read_epoch
from ledger.errors import DecodeError, StoreError
from ledger.store import CommittedState
from secnode.runtime.rpc.budget import Worker
from secnode.runtime.rpc.errors import not_found
from secnode.runtime.rpc.view import NodeView
from secnode.schema.console import (
    TOP_ACCOUNTS,
    TRUST_BUCKETS,
    GetTrustDistributionParams,
    TrustBucket,
    TrustDistributionResult,
    TrustTopEntry,
)

CACHED_EPOCHS: Final = 2
"""Summaries kept (the latest epoch's and the one before)."""
SCAN_ATTEMPTS: Final = 2
"""Scans tried when an epoch commits during one (then the newer epoch is summarized)."""


def bucket_bounds(max_score: int) -> list[tuple[int, int]]:
    """(low, high) of each bucket: bucket i holds the integers s with i <= 10 s / max < i + 1,
    i.e. ceil(i max / 10) <= s < ceil((i + 1) max / 10); the last one also holds max itself."""
    lows = [-(-index * max_score // TRUST_BUCKETS) for index in range(TRUST_BUCKETS)]
    return [(low, high) for low, high in zip(lows, [*lows[1:], max_score], strict=True)]


def bucket_of(score: int, max_score: int) -> int:
    return 0 if max_score == 0 else min(TRUST_BUCKETS - 1, score * TRUST_BUCKETS // max_score)


def summarize(epoch: int, rows: Iterable[tuple[bytes, bytes]]) -> TrustDistributionResult:
    """The distribution of the score records `rows` (state key, record bytes) of `epoch`."""
    scores: list[tuple[int, bytes]] = []
    for key, raw in rows:
        try:
            score, _, _ = parse_score_record(raw)
        except DecodeError as exc:
            raise StoreError(f"score record {key.hex()}: {exc}") from None
        scores.append((score, key[len(SCORE_PREFIX) :]))
    max_score = max((score for score, _ in scores), default=0)
    counts = [0] * TRUST_BUCKETS
    for score, _ in scores:
        counts[bucket_of(score, max_score)] += 1
    top = heapq.nsmallest(
        TOP_ACCOUNTS, (entry for entry in scores if entry[0] > 0), key=lambda e: (-e[0], e[1])
    )
    return TrustDistributionResult(
        epoch=epoch,
        accounts=len(scores),
        scored=sum(1 for score, _ in scores if score > 0),
        buckets=[
            TrustBucket(low=low, high=high, count=count)
            for (low, high), count in zip(bucket_bounds(max_score), counts, strict=True)
        ],
        top=[TrustTopEntry(address=address, score=score) for score, address in top],
    )


class TrustDistributions:
    """Cached per-epoch summaries for one node view (see the module docstring)."""

    def __init__(self, view: NodeView, worker: Worker) -> None:
        self.view = view
        self.worker = worker
        self._cache: OrderedDict[int, TrustDistributionResult] = OrderedDict()
        self._scanning = asyncio.Lock()
        self.scans = 0
        """Score scans run so far (for tests: a cached epoch is never scanned again)."""

    def _latest(self) -> StoredEpoch:
        stored = read_epoch(CommittedState(self.view.state, self.view.store))
        if stored is None:
            raise not_found("trust epoch", "latest (no epoch is committed yet)")
        return stored

    def _cached(self, epoch: int) -> TrustDistributionResult | None:
        return self._cache.get(epoch)

    def _keep(self, result: TrustDistributionResult) -> None:
        self._cache[result.epoch] = result
        while len(self._cache) > CACHED_EPOCHS:
            self._cache.popitem(last=False)

    async def get(self, params: GetTrustDistributionParams) -> TrustDistributionResult:
        """sec_getTrustDistribution."""
        wanted = params.epoch
        if wanted is not None and (cached := self._cached(wanted)) is not None:
            return cached
        async with self._scanning:  # one scan at a time; a waiter finds it cached
            for _ in range(SCAN_ATTEMPTS):
                latest = self._latest().record
                number = latest.epoch if wanted is None else wanted
                cached = self._cached(number)
                if cached is not None:
                    return cached
                if number > latest.epoch:
                    raise not_found("trust epoch", f"{number} (the latest is {latest.epoch})")
                if number < latest.epoch:
                    raise not_found(
                        "trust epoch scores",
                        f"{number} (only the latest epoch's, {latest.epoch}, are in state)",
                    )
                result = await self._scan(latest.epoch)
                if self._latest().record.epoch != latest.epoch:
                    continue  # an epoch committed during the scan: its rows may be mixed
                if result.accounts != latest.accounts:
                    raise StoreError(
                        f"epoch {latest.epoch} scored {latest.accounts} accounts, but state "
                        f"holds {result.accounts} score records"
                    )
                self._keep(result)
                return result
        raise StoreError("trust epochs committed during every scan of the scores; try again")

    async def _scan(self, epoch: int) -> TrustDistributionResult:
        store = self.view.store
        self.scans += 1
        # Worker thread: reads only the store's score rows; see the module docstring for why
        # a scan that raced with an epoch commit is detected and dropped.
        return await self.worker.run(lambda: summarize(epoch, store.state_rows(SCORE_PREFIX)))


SUMMARY: Final = "How trust is spread in an epoch: counts, ten buckets, the top accounts."
DESCRIPTION: Final = (
    "For the latest committed trust epoch (or `epoch`, answered only while its summary is "
    "cached: state holds the latest epoch's scores only): accounts (the epoch's universe: "
    "accounts with a score record), scored (of those, score above 0), ten equal-width buckets "
    "over [0, max score] (low inclusive, high exclusive; the last bucket's high is the "
    "maximum, inclusive) counting every account, and the top 20 accounts with a score above 0, "
    "highest first, ties by address. Scores are sec_getTrustScore's integers (1/10**9 of all "
    "trust). Unproven summary: verify one score with sec_getTrustScore. not_found before the "
    "first epoch."
)
