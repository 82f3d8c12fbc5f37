"""A tiny dependency-free Prometheus registry and the node's metrics.

`Registry` holds counters, gauges and histograms and renders them in the Prometheus text
exposition format 0.0.4 (`# HELP`, `# TYPE`, one sample per line, histograms as cumulative
`_bucket{le=...}` plus `_sum` and `_count`). `Metrics` is the fixed set the node exposes on
`GET /metrics`, with one verb-first method per thing the node reports.

Invariants: counters never decrease (`inc` refuses negative steps, `raise_to` ignores lower
values); a histogram's bucket counts are cumulative and its `+Inf` bucket equals `_count`;
label sets are fixed at registration and label *values* come from bounded sets (the RPC layer
maps unknown method names to "unknown"), so a hostile client cannot grow memory through labels.
Not thread-safe: everything runs on the node's event loop.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:  # annotations only: the registry itself imports nothing of the node
    from secnode.runtime.rpc.view import NodeStatus

LabelValues = tuple[str, ...]

COMMIT_LATENCY_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
"""Seconds from proposal to commit; PBFT on a LAN commits in well under a second."""

STAGE_BUCKETS: Final = tuple(float(f"{50e-6 * 2 ** (i / 2):.3g}") for i in range(41))
"""Seconds, 50 us to 52 s in steps of sqrt(2): a quantile read from them is within ~20 %."""

BLOCK_STAGES: Final = (
    "mempool_wait",
    "proposal_build",
    "execution",
    "prepare",
    "commit",
    "certify",
    "store_write",
)
"""What a block goes through on a node, in order, each a histogram `sec_stage_<name>_seconds`:
mempool_wait (primary: mean over the block's transactions of admission -> proposal),
proposal_build (primary: select and execute), execution (backup: validate the proposal),
prepare (pre-prepare accepted -> prepared: 2f PREPAREs), commit (prepared -> decided: 2f+1
COMMITs), certify (decided -> delivered: the certificate round and in-order delivery),
store_write (the block's LevelDB batch)."""

CONSENSUS_MARKS: Final = {"prepared": "pre_prepare", "decided": "prepared", "delivered": "decided"}
"""A consensus instant -> the instant before it; the gap between them is observed as the
stage named in `MARK_STAGES`."""
MARK_STAGES: Final = {"prepared": "prepare", "decided": "commit", "delivered": "certify"}
OPEN_HEIGHTS_LIMIT: Final = 256
"""Heights whose stage instants are kept while waiting for the next instant (oldest dropped)."""


def stage_metric_name(stage: str) -> str:
    """The histogram name of a block stage (`BLOCK_STAGES`)."""
    return f"sec_stage_{stage}_seconds"


class MetricError(ValueError):
    """Misuse of a metric: wrong label count, negative counter step, unsorted buckets."""


def _format_value(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{name}="{_escape(value)}"' for name, value in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class _Metric:
    kind = ""

    def __init__(self, name: str, help_text: str, label_names: Sequence[str] = ()) -> None:
        self.name = name
        self.help_text = help_text
        self.label_names = tuple(label_names)

    def _key(self, labels: Sequence[str]) -> LabelValues:
        if len(labels) != len(self.label_names):
            raise MetricError(
                f"{self.name} takes labels {list(self.label_names)}, got {list(labels)}"
            )
        return tuple(labels)

    def header(self) -> list[str]:
        help_text = self.help_text.replace("\\", "\\\\").replace("\n", "\\n")
        return [f"# HELP {self.name} {help_text}", f"# TYPE {self.name} {self.kind}"]

    def samples(self) -> list[str]:
        raise NotImplementedError


class Counter(_Metric):
    """A monotonically increasing count per label set."""

    kind = "counter"

    def __init__(self, name: str, help_text: str, label_names: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, label_names)
        self._values: dict[LabelValues, float] = {}
        if not self.label_names:
            self._values[()] = 0.0

    def inc(self, amount: float = 1.0, labels: Sequence[str] = ()) -> None:
        if amount < 0:
            raise MetricError(f"counter {self.name} cannot decrease (step {amount})")
        key = self._key(labels)
        self._values[key] = self._values.get(key, 0.0) + amount

    def raise_to(self, total: float, labels: Sequence[str] = ()) -> None:
        """Mirror a monotone total kept elsewhere; a lower value is ignored."""
        key = self._key(labels)
        if total > self._values.get(key, 0.0):
            self._values[key] = total

    def value(self, labels: Sequence[str] = ()) -> float:
        return self._values.get(self._key(labels), 0.0)

    def samples(self) -> list[str]:
        return [
            f"{self.name}{_labels(self.label_names, key)} {_format_value(value)}"
            for key, value in sorted(self._values.items())
        ]


class Gauge(_Metric):
    """A value that goes up and down (unlabelled)."""

    kind = "gauge"

    def __init__(self, name: str, help_text: str) -> None:
        super().__init__(name, help_text)
        self._value = 0.0

    def set(self, value: float) -> None:
        self._value = float(value)

    def value(self) -> float:
        return self._value

    def samples(self) -> list[str]:
        return [f"{self.name} {_format_value(self._value)}"]


class Histogram(_Metric):
    """Observations counted into fixed cumulative buckets (unlabelled)."""

    kind = "histogram"

    def __init__(self, name: str, help_text: str, buckets: Iterable[float]) -> None:
        super().__init__(name, help_text)
        bounds = tuple(float(b) for b in buckets)
        if not bounds or list(bounds) != sorted(set(bounds)) or math.isinf(bounds[-1]):
            raise MetricError(f"{name}: buckets must be finite, unique and ascending: {bounds}")
        self.bounds = bounds
        self._counts = [0] * len(bounds)
        self._sum = 0.0
        self._count = 0

    def observe(self, value: float) -> None:
        if math.isnan(value):
            raise MetricError(f"{self.name}: cannot observe NaN")
        for index, bound in enumerate(self.bounds):
            if value <= bound:
                self._counts[index] += 1
                break
        self._sum += value
        self._count += 1

    @property
    def count(self) -> int:
        return self._count

    def samples(self) -> list[str]:
        lines = []
        cumulative = 0
        for bound, count in zip(self.bounds, self._counts, strict=True):
            cumulative += count
            lines.append(f'{self.name}_bucket{{le="{_format_value(bound)}"}} {cumulative}')
        lines.append(f'{self.name}_bucket{{le="+Inf"}} {self._count}')
        lines.append(f"{self.name}_sum {_format_value(self._sum)}")
        lines.append(f"{self.name}_count {self._count}")
        return lines


class Registry:
    """Metrics by name, rendered in registration order."""

    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}

    def register(self, metric: _Metric) -> None:
        if metric.name in self._metrics:
            raise MetricError(f"metric {metric.name} is already registered")
        self._metrics[metric.name] = metric

    def render(self) -> str:
        """The text exposition format 0.0.4 (ends with a newline)."""
        lines: list[str] = []
        for metric in self._metrics.values():
            lines.extend(metric.header())
            lines.extend(metric.samples())
        return "\n".join(lines) + "\n"


CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """The node's metrics. The node calls the `observe_*` / `record_*` / `set_*` methods; the
    RPC server records its own requests and refreshes the status gauges on every scrape."""

    def __init__(self) -> None:
        self.registry = Registry()
        self.height = Gauge("sec_height", "Height of the last committed block.")
        self.view = Gauge("sec_view", "Current PBFT view.")
        self.view_changes = Counter("sec_view_changes_total", "View changes since start.")
        self.blocks = Counter("sec_blocks_committed_total", "Blocks committed since start.")
        self.transactions = Counter(
            "sec_committed_transactions_total", "Transactions committed since start."
        )
        self.mempool_size = Gauge("sec_mempool_transactions", "Transactions in the mempool.")
        self.mempool_bytes = Gauge("sec_mempool_bytes", "Encoded bytes in the mempool.")
        self.peers = Gauge("sec_peers", "Connected, authenticated peers.")
        self.syncing = Gauge("sec_syncing", "1 while catching up from peers, else 0.")
        self.commit_latency = Histogram(
            "sec_commit_latency_seconds",
            "Seconds from a block's proposal to its commit on this node.",
            COMMIT_LATENCY_BUCKETS,
        )
        self.stages = {
            stage: Histogram(
                stage_metric_name(stage),
                f"Seconds a block spends in stage {stage} on this node (see BLOCK_STAGES).",
                STAGE_BUCKETS,
            )
            for stage in BLOCK_STAGES
        }
        self._open_heights: dict[int, dict[str, float]] = {}
        self.rpc_requests = Counter(
            "sec_rpc_requests_total",
            "JSON-RPC calls by method and outcome (ok or an error name of docs/rpc.md).",
            ("method", "outcome"),
        )
        for metric in (
            self.height,
            self.view,
            self.view_changes,
            self.blocks,
            self.transactions,
            self.mempool_size,
            self.mempool_bytes,
            self.peers,
            self.syncing,
            self.commit_latency,
            *self.stages.values(),
            self.rpc_requests,
        ):
            self.registry.register(metric)

    # --- called by the node -------------------------------------------------------------------

    def observe_commit(self, latency_s: float, tx_count: int) -> None:
        """One block committed `latency_s` after its proposal, carrying `tx_count` transactions."""
        self.commit_latency.observe(latency_s)
        self.blocks.inc()
        self.transactions.inc(tx_count)

    def observe_stage(self, stage: str, seconds: float) -> None:
        """One block spent `seconds` in `stage` (one of `BLOCK_STAGES`) on this node."""
        self.stages[stage].observe(max(seconds, 0.0))

    def observe_marks(self, marks: Iterable[tuple[str, int, float]]) -> None:
        """Consensus instants (stage, height, time) in the order they happened: each gap
        between consecutive instants of a height (`CONSENSUS_MARKS`) is observed as a stage.
        An instant without its predecessor (a block that came by catch-up or after a restart)
        observes nothing; a height is forgotten once delivered, and at most
        `OPEN_HEIGHTS_LIMIT` heights are kept."""
        open_heights = self._open_heights
        for mark, seq, at in marks:
            instants = open_heights.get(seq)
            if instants is None:
                if len(open_heights) >= OPEN_HEIGHTS_LIMIT:
                    del open_heights[min(open_heights)]
                instants = open_heights[seq] = {}
            previous = instants.get(CONSENSUS_MARKS.get(mark, ""))
            if previous is not None:
                self.observe_stage(MARK_STAGES[mark], at - previous)
            if mark == "delivered":
                del open_heights[seq]
            else:
                instants[mark] = at

    def record_view_change(self) -> None:
        self.view_changes.inc()

    def set_height(self, height: int) -> None:
        self.height.set(height)

    def set_view(self, view: int) -> None:
        self.view.set(view)

    def set_peers(self, peers: int) -> None:
        self.peers.set(peers)

    def set_mempool(self, transactions: int, size_bytes: int) -> None:
        self.mempool_size.set(transactions)
        self.mempool_bytes.set(size_bytes)

    # --- called by the RPC server -------------------------------------------------------------

    def record_rpc(self, method: str, outcome: str) -> None:
        """One JSON-RPC call (a batch counts each entry); `outcome` is "ok" or an error name."""
        self.rpc_requests.inc(labels=(method, outcome))

    def refresh_from_status(
        self, status: NodeStatus, mempool_size: int, mempool_bytes: int
    ) -> None:
        """Update the gauges from a status snapshot (done on every scrape of /metrics)."""
        self.set_height(status.height)
        self.set_view(status.view)
        self.view_changes.raise_to(status.view_changes)
        self.set_peers(status.peers)
        self.syncing.set(1 if status.syncing else 0)
        self.set_mempool(mempool_size, mempool_bytes)

    def render(self) -> str:
        return self.registry.render()
