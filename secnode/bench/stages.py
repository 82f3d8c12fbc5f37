"""What the nodes' block-stage histograms say about one benchmark window.

Each node exposes one Prometheus histogram per block stage on `GET /metrics`
(`secnode.runtime.metrics.BLOCK_STAGES`, named by `stage_metric_name`). The bench scrapes every
node before and after the window; `window_stages` subtracts the two snapshots of each node
(what happened in the window), adds the nodes up (a stage is observed on the nodes that run it:
proposal build on the primary, execution on the backups, the consensus rounds on all) and
summarizes each stage as blocks, mean, p50 and p99. The mean is exact (`_sum` / `_count`); the
quantiles are read from the buckets by linear interpolation inside the bucket that holds them
(as Prometheus' `histogram_quantile` does), so they are within one bucket step (sqrt 2).

Parsing is forgiving: a line that is not `name{labels} value` is skipped, so a node that
exposes more (or other) metrics does not break the bench.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from secnode.runtime.metrics import BLOCK_STAGES, stage_metric_name

Samples = dict[str, float]
"""One scrape: sample key (metric name with its label text) -> value."""


def parse_exposition(text: str) -> Samples:
    """The samples of a Prometheus text exposition (comments and malformed lines skipped)."""
    samples: Samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        if not key:
            continue
        try:
            samples[key] = float(value)
        except ValueError:
            continue
    return samples


@dataclass(frozen=True, slots=True)
class HistogramData:
    """A histogram's finite buckets (cumulative counts), total count and sum."""

    bounds: tuple[float, ...]
    cumulative: tuple[float, ...]
    count: float
    total: float

    def minus(self, earlier: HistogramData) -> HistogramData:
        """What was observed after `earlier` (the same histogram scraped before)."""
        if earlier.bounds != self.bounds:
            raise ValueError(f"bucket bounds changed between scrapes: {earlier.bounds}")
        return HistogramData(
            self.bounds,
            tuple(a - b for a, b in zip(self.cumulative, earlier.cumulative, strict=True)),
            self.count - earlier.count,
            self.total - earlier.total,
        )

    def plus(self, other: HistogramData) -> HistogramData:
        if other.bounds != self.bounds:
            raise ValueError("cannot add histograms with different buckets")
        return HistogramData(
            self.bounds,
            tuple(a + b for a, b in zip(self.cumulative, other.cumulative, strict=True)),
            self.count + other.count,
            self.total + other.total,
        )

    def quantile(self, fraction: float) -> float:
        """The `fraction` quantile, interpolated inside its bucket (NaN when empty; the
        highest finite bound when it falls in the +Inf bucket)."""
        if self.count <= 0:
            return math.nan
        rank = fraction * self.count
        lower_bound, lower_count = 0.0, 0.0
        for bound, cumulative in zip(self.bounds, self.cumulative, strict=True):
            if cumulative >= rank and cumulative > lower_count:
                share = (rank - lower_count) / (cumulative - lower_count)
                return lower_bound + (bound - lower_bound) * share
            lower_bound, lower_count = bound, cumulative
        return self.bounds[-1]


def read_histogram(samples: Samples, name: str) -> HistogramData | None:
    """Histogram `name` from one scrape (None if the node does not expose it)."""
    prefix = f'{name}_bucket{{le="'
    buckets = []
    for key, value in samples.items():
        if key.startswith(prefix):
            bound = key[len(prefix) : -2]
            if bound != "+Inf":
                buckets.append((float(bound), value))
    count = samples.get(f"{name}_count")
    total = samples.get(f"{name}_sum")
    if not buckets or count is None or total is None:
        return None
    buckets.sort()
    return HistogramData(tuple(b for b, _ in buckets), tuple(c for _, c in buckets), count, total)


@dataclass(frozen=True, slots=True)
class StageSummary:
    """One stage over the window: how many blocks went through it, and how long they took."""

    blocks: int
    mean_ms: float
    p50_ms: float
    p99_ms: float

    def to_json(self) -> dict[str, float | int | None]:
        def finite(value: float) -> float | None:
            return None if math.isnan(value) else round(value, 3)

        return {
            "blocks": self.blocks,
            "mean_ms": finite(self.mean_ms),
            "p50_ms": finite(self.p50_ms),
            "p99_ms": finite(self.p99_ms),
        }


def summarize_histogram(data: HistogramData) -> StageSummary:
    mean = data.total / data.count if data.count > 0 else math.nan
    return StageSummary(
        int(data.count), mean * 1e3, data.quantile(0.50) * 1e3, data.quantile(0.99) * 1e3
    )


def percentile(values: Sequence[float], fraction: float) -> float:
    """The `fraction` quantile of `values` (nearest rank; NaN when there are none)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(int(fraction * len(ordered)), len(ordered) - 1)]


def summarize_values(seconds: Sequence[float]) -> StageSummary:
    """A stage measured by the bench itself, one value per block (exact quantiles)."""
    mean = sum(seconds) / len(seconds) if seconds else math.nan
    return StageSummary(
        len(seconds),
        mean * 1e3,
        percentile(seconds, 0.50) * 1e3,
        percentile(seconds, 0.99) * 1e3,
    )


def window_stages(before: Sequence[Samples], after: Sequence[Samples]) -> dict[str, StageSummary]:
    """Each block stage over the window, all nodes together (`before[i]`, `after[i]`: node i's
    scrapes at the window's start and end). A stage no node exposes is left out."""
    out = {}
    for stage in BLOCK_STAGES:
        name = stage_metric_name(stage)
        merged: HistogramData | None = None
        for start, end in zip(before, after, strict=True):
            first, last = read_histogram(start, name), read_histogram(end, name)
            if first is None or last is None:
                continue
            window = last.minus(first)
            merged = window if merged is None else merged.plus(window)
        if merged is not None:
            out[stage] = summarize_histogram(merged)
    return out
