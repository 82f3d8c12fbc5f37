"""The node's Prometheus metrics, through the maintained `prometheus_client` library.

`Metrics` owns one `CollectorRegistry` per node (never the library's global one, so tests and
several nodes in one process do not clash) holding the standard process, platform and GC
collectors and the chain's own metrics, with one verb-first method per thing the node reports.
`GET /metrics` renders it in the text exposition format 0.0.4 (`render`, `CONTENT_TYPE`).

Three kinds of values:
* pushed as they happen (`observe_*`, `record_*`, `set_*`): counters and histograms of commits,
  block stages, consensus rounds, view changes, RPC calls, rejected transactions, trust epochs;
* refreshed on every scrape from the node's status (`refresh_from_status`): height, view, peers,
  mempool, syncing;
* read on every scrape from a `MetricsSource` (`attach`): per-validator last signed height,
  per-peer bytes in and out, peer bans - values the node keeps anyway, so nothing is counted
  twice and nothing is kept here.

Names follow the Prometheus conventions: base units (`_seconds`, `_bytes`), counters end in
`_total`. Invariants: label values come from bounded sets (RPC method names outside the method
table are "unknown", rejection reasons are `MempoolRejected` codes, validators and peers are the
allowlisted keys), so a hostile client cannot grow memory through labels; counters never
decrease (`raise_to` ignores lower totals). `prometheus_client` is thread-safe (the trust epoch
is observed from its worker thread); everything else runs on the node's event loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Final, Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:  # annotations only: the metrics import nothing of the node
    from secnode.runtime.rpc.view import NodeStatus

# The `_created` series (a timestamp per counter and histogram) double the exposition and are
# not what CometBFT or Besu expose; this switch is process-wide in the library.
disable_created_metrics()  # type: ignore[no-untyped-call]  # unannotated in the library

COMMIT_LATENCY_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
"""Seconds from proposal to commit; PBFT on a LAN commits in well under a second."""

STAGE_BUCKETS: Final = tuple(float(f"{50e-6 * 2 ** (i / 2):.3g}") for i in range(41))
"""Seconds, 50 us to 52 s in steps of sqrt(2): a quantile read from them is within ~20 %."""

RPC_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
"""Seconds one JSON-RPC call takes (sec_waitTransaction waits up to its own timeout)."""

TRUST_EPOCH_BUCKETS: Final = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Seconds a trust epoch's scores take (0.83 s at 10**6 attestations, docs/performance.md)."""

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

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
"""What `render` produces (prometheus_client's CONTENT_TYPE_LATEST now names format 1.0.0)."""


def stage_metric_name(stage: str) -> str:
    """The histogram name of a block stage (`BLOCK_STAGES`)."""
    return f"sec_stage_{stage}_seconds"


class MetricsSource(Protocol):
    """What the node keeps anyway and the metrics read on every scrape."""

    def validator_last_signed(self) -> Mapping[str, int]:
        """Each current validator (its sec1 address) -> the highest height whose commit certificate
        it signed that this node has seen (0: none seen)."""

    def peer_traffic(self) -> Mapping[str, tuple[int, int]]:
        """Each peer (its name, or its key's first 16 hex digits) -> (bytes received, bytes
        sent) since this node started, on all its connections."""

    def peer_bans(self) -> int:
        """Peers banned for misbehaviour since this node started."""


class _SourceCollector(Collector):
    """Reads a `MetricsSource` on every scrape (a custom collector, as the library advises for
    values kept elsewhere)."""

    def __init__(self, source: MetricsSource) -> None:
        self._source = source

    def describe(self) -> Iterable[Metric]:
        return list(self._families({}, {}, 0))

    def collect(self) -> Iterable[Metric]:
        source = self._source
        return list(
            self._families(
                source.validator_last_signed(), source.peer_traffic(), source.peer_bans()
            )
        )

    @staticmethod
    def _families(
        signed: Mapping[str, int], traffic: Mapping[str, tuple[int, int]], bans: int
    ) -> Iterator[Metric]:
        last_signed = GaugeMetricFamily(
            "sec_validator_last_signed_height",
            "Highest height whose commit certificate the validator signed (0: none seen).",
            labels=["validator"],
        )
        for validator, height in sorted(signed.items()):
            last_signed.add_metric([validator], height)
        yield last_signed
        received = CounterMetricFamily(
            "sec_peer_received_bytes",
            "Bytes received from the peer (encrypted records).",
            labels=["peer"],
        )
        sent = CounterMetricFamily(
            "sec_peer_sent_bytes", "Bytes sent to the peer (encrypted records).", labels=["peer"]
        )
        for peer, (bytes_in, bytes_out) in sorted(traffic.items()):
            received.add_metric([peer], bytes_in)
            sent.add_metric([peer], bytes_out)
        yield received
        yield sent
        yield CounterMetricFamily(
            "sec_peer_bans", "Peers banned for misbehaviour since start.", value=bans
        )


class Metrics:
    """The node's metrics. The node calls the `observe_*` / `record_*` / `set_*` methods; the
    RPC server records its own requests and refreshes the status gauges on every scrape."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)  # process_cpu_seconds_total, ..._memory_bytes
        PlatformCollector(registry=self.registry)  # python_info
        GCCollector(registry=self.registry)  # python_gc_*
        registry = self.registry
        self.height = Gauge("sec_height", "Height of the last committed block.", registry=registry)
        self.view = Gauge("sec_view", "Current PBFT view.", registry=registry)
        self.view_changes = Counter(
            "sec_view_changes_total", "View changes since start.", registry=registry
        )
        self._view_changes_seen = 0
        self.blocks = Counter(
            "sec_blocks_committed_total", "Blocks committed since start.", registry=registry
        )
        self.transactions = Counter(
            "sec_committed_transactions_total",
            "Transactions committed since start.",
            registry=registry,
        )
        self.mempool_size = Gauge(
            "sec_mempool_transactions", "Transactions in the mempool.", registry=registry
        )
        self.mempool_bytes = Gauge(
            "sec_mempool_bytes", "Encoded bytes in the mempool.", registry=registry
        )
        self.rejected = Counter(
            "sec_rejected_transactions_total",
            "Transactions the mempool refused, by reason (a MempoolRejected code or malformed) "
            "and source (rpc or gossip).",
            ("reason", "source"),
            registry=registry,
        )
        self.peers = Gauge("sec_peers", "Connected, authenticated peers.", registry=registry)
        self.syncing = Gauge(
            "sec_syncing", "1 while catching up from peers, else 0.", registry=registry
        )
        self.commit_latency = Histogram(
            "sec_commit_latency_seconds",
            "Seconds from a block's proposal to its commit on this node.",
            buckets=COMMIT_LATENCY_BUCKETS,
            registry=registry,
        )
        self.round_duration = Histogram(
            "sec_consensus_round_seconds",
            "Seconds from accepting a height's pre-prepare to delivering its block (one PBFT "
            "round: prepare + commit + certify) on this node.",
            buckets=STAGE_BUCKETS,
            registry=registry,
        )
        self.stages = {
            stage: Histogram(
                stage_metric_name(stage),
                f"Seconds a block spends in stage {stage} on this node (see BLOCK_STAGES).",
                buckets=STAGE_BUCKETS,
                registry=registry,
            )
            for stage in BLOCK_STAGES
        }
        self._stage_counts = dict.fromkeys(BLOCK_STAGES, 0)
        self._open_heights: dict[int, dict[str, float]] = {}
        self.rpc_requests = Counter(
            "sec_rpc_requests_total",
            "JSON-RPC calls by method and outcome (ok or an error name of docs/rpc.md).",
            ("method", "outcome"),
            registry=registry,
        )
        self.rpc_duration = Histogram(
            "sec_rpc_request_duration_seconds",
            "Seconds from running a JSON-RPC call to its encoded reply, by method.",
            ("method",),
            buckets=RPC_BUCKETS,
            registry=registry,
        )
        self.trust_epoch = Histogram(
            "sec_trust_epoch_seconds",
            "Seconds to compute a trust epoch's scores off the critical path (precomputed).",
            buckets=TRUST_EPOCH_BUCKETS,
            registry=registry,
        )

    def attach(self, source: MetricsSource) -> None:
        """Expose the values `source` keeps (validators' signing, peer traffic, bans)."""
        self.registry.register(_SourceCollector(source))

    # --- called by the node -------------------------------------------------------------------

    def observe_commit(self, latency_s: float, tx_count: int) -> None:
        """One block committed `latency_s` after its proposal, carrying `tx_count` transactions."""
        self.commit_latency.observe(latency_s)
        self.blocks.inc()
        self.transactions.inc(tx_count)

    def observe_stage(self, stage: str, seconds: float) -> None:
        """One block spent `seconds` in `stage` (one of `BLOCK_STAGES`) on this node."""
        self.stages[stage].observe(max(seconds, 0.0))
        self._stage_counts[stage] += 1

    def stage_count(self, stage: str) -> int:
        """Blocks observed in `stage` since start."""
        return self._stage_counts[stage]

    def observe_marks(self, marks: Iterable[tuple[str, int, float]]) -> None:
        """Consensus instants (stage, height, time) in the order they happened: each gap
        between consecutive instants of a height (`CONSENSUS_MARKS`) is observed as a stage,
        and pre-prepare -> delivered as the round. An instant without its predecessor (a block
        that came by catch-up or after a restart) observes nothing; a height is forgotten once
        delivered, and at most `OPEN_HEIGHTS_LIMIT` heights are kept."""
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
                started = instants.get("pre_prepare")
                if started is not None and previous is not None:
                    self.round_duration.observe(max(at - started, 0.0))
                del open_heights[seq]
            else:
                instants[mark] = at

    def record_view_change(self) -> None:
        self.view_changes.inc()
        self._view_changes_seen += 1

    def record_rejected(self, reason: str, source: str) -> None:
        """One transaction refused: `reason` a MempoolRejected code (or "malformed"), `source`
        "rpc" or "gossip"."""
        self.rejected.labels(reason, source).inc()

    def observe_trust_epoch(self, seconds: float) -> None:
        """One trust epoch's scores computed in `seconds` (called from the worker thread)."""
        self.trust_epoch.observe(seconds)

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
        self.rpc_requests.labels(method, outcome).inc()

    def observe_rpc_duration(self, method: str, seconds: float) -> None:
        """One JSON-RPC call that ran took `seconds` (calls refused before running are not)."""
        self.rpc_duration.labels(method).observe(max(seconds, 0.0))

    def refresh_from_status(
        self, status: NodeStatus, mempool_size: int, mempool_bytes: int
    ) -> None:
        """Update the gauges from a status snapshot (done on every scrape of /metrics)."""
        self.set_height(status.height)
        self.set_view(status.view)
        self.raise_view_changes(status.view_changes)
        self.set_peers(status.peers)
        self.syncing.set(1 if status.syncing else 0)
        self.set_mempool(mempool_size, mempool_bytes)

    def raise_view_changes(self, total: int) -> None:
        """Mirror the driver's view change total; a lower total is ignored (counters only grow)."""
        if total > self._view_changes_seen:
            self.view_changes.inc(total - self._view_changes_seen)
            self._view_changes_seen = total

    def render(self) -> str:
        """The text exposition format 0.0.4 (ends with a newline)."""
        return generate_latest(self.registry).decode()
