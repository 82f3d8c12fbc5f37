"""One export: what is new since the manifest, read from the store, published as a segment.

Steps, in order (each one a progress step): blocks and transactions after the last exported
height up to the head; the order events of those blocks; the order and account records that
changed since the last export (snapshots as of the head, with the supply); the attestations
recorded since; and every trust epoch committed since, each recomputed from its inputs and
checked against its record on chain (`source.recompute_epoch`). Nothing is written until all of
it has been read and checked; then the segment appears at once (`writer.publish_segment`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from ledger.store import ChainStore
from secnode.export.manifest import Manifest, Segment, open_export, segment_name
from secnode.export.progress import Progress
from secnode.export.schema import TABLES
from secnode.export.source import (
    ChainSource,
    Columns,
    EpochInputs,
    epoch_columns,
    recompute_epoch,
)
from secnode.export.writer import exported_hashes, publish_segment, table_of


@dataclass(frozen=True, slots=True)
class ExportSummary:
    """What one `export_chain` did."""

    segment: Segment | None
    """The segment it added; None when the directory was up to date."""
    manifest: Manifest
    """The directory's manifest afterwards."""
    seconds: float
    """Wall time from opening the directory to the published manifest."""

    @property
    def rows(self) -> int:
        return 0 if self.segment is None else sum(self.segment.rows.values())

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def _merge(into: Columns, more: Columns) -> None:
    for name, values in more.items():
        into.setdefault(name, []).extend(values)


def export_chain(
    store: ChainStore,
    chain: bytes,
    out: Path,
    progress: Progress,
    *,
    after_table: Callable[[str], None] = lambda name: None,
) -> ExportSummary:
    """Add to export directory `out` everything `store` (of the chain whose genesis hash is
    `chain`) committed since the directory's last export. `after_table` is passed on to
    `publish_segment`."""
    started = time.perf_counter()
    manifest = open_export(out, chain)
    source = ChainSource(store)
    start = manifest.height + 1
    if source.head < start:
        return ExportSummary(None, manifest, time.perf_counter() - started)
    columns: dict[str, Columns] = {}

    progress.start("blocks", source.head - start + 1)
    columns["blocks"], columns["transactions"] = source.blocks(
        start, source.head, lambda height: progress.advance(height - start + 1)
    )
    progress.finish(
        f"{len(columns['blocks']['height'])} blocks, "
        f"{len(columns['transactions']['height'])} transactions"
    )

    progress.start("order events", 1)
    columns["order_events"] = source.order_events(start, source.head)
    progress.finish(f"{len(columns['order_events']['height'])} events")

    progress.start("orders", 2)
    columns["orders"] = source.orders(exported_hashes(out, manifest, "orders"))
    progress.advance(1)
    columns["balances"] = source.balances(exported_hashes(out, manifest, "balances"))
    columns["supply"] = source.supply()
    progress.finish(
        f"{len(columns['orders']['order_id'])} orders and "
        f"{len(columns['balances']['address'])} accounts changed"
    )

    latest = source.latest_epoch()
    epochs = range(manifest.next_epoch, latest + 1)
    first_leaf = 0 if epochs else manifest.attestations
    progress.start("attestations", 1)
    leaves = source.attestation_leaves(first_leaf)
    new_leaves = leaves[manifest.attestations - first_leaf :]
    columns["attestations"] = source.attestations(manifest.attestations, new_leaves)
    progress.finish(f"{len(new_leaves)} attestations")

    progress.start("trust epochs", len(epochs))
    columns["epochs"], columns["trust_scores"] = {}, {}
    inputs = EpochInputs(leaves if epochs else [])
    for done, number in enumerate(epochs, 1):
        record = source.epoch(number)
        epoch, scores = epoch_columns(record, recompute_epoch(record, inputs))
        _merge(columns["epochs"], epoch)
        _merge(columns["trust_scores"], scores)
        progress.advance(done)
    progress.finish(f"{len(epochs)} epochs recomputed and checked against their roots")

    tables: dict[str, pa.Table] = {name: table_of(name, columns.get(name, {})) for name in TABLES}
    segment = Segment(
        name=segment_name(start, source.head),
        from_height=start,
        to_height=source.head,
        attestations=(manifest.attestations, manifest.attestations + len(new_leaves)),
        epochs=(manifest.next_epoch, latest + 1 if epochs else manifest.next_epoch),
        rows={name: table.num_rows for name, table in tables.items()},
    )
    progress.start("write", len(tables))
    written = [0]

    def table_written(name: str) -> None:
        written[0] += 1
        progress.advance(written[0])
        after_table(name)

    manifest = publish_segment(out, manifest, segment, tables, after_table=table_written)
    progress.finish(f"segment {segment.name}")
    return ExportSummary(segment, manifest, time.perf_counter() - started)
