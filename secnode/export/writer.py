"""Parquet files in and out of an export directory (layout and invariants: `manifest`).

`publish_segment` writes one segment's tables into a staging directory, fsyncs every file, then
renames the directory into place and replaces the manifest. `exported_hashes` reads back the
record hashes of a snapshot table, so the next export writes only records that changed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from secnode.export.manifest import (
    MANIFEST,
    SEGMENT_FILE,
    SEGMENTS,
    STAGING_PREFIX,
    Manifest,
    Segment,
    fsync_directory,
    write_json_atomically,
)
from secnode.export.schema import SNAPSHOT_KEYS, TABLES
from secnode.export.source import Columns, ExportError, Hashes

COMPRESSION = "zstd"


def table_of(name: str, columns: Columns) -> pa.Table:
    """`columns` as an Arrow table of `name`'s schema (a value of the wrong type or range, e.g.
    an amount beyond int64, raises ExportError naming the table)."""
    schema = TABLES[name]
    try:
        return pa.Table.from_pydict(columns, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        raise ExportError(f"table {name}: a value does not fit its column: {exc}") from None


def _write_table(path: Path, table: pa.Table) -> None:
    pq.write_table(table, path, compression=COMPRESSION)
    with path.open("rb") as stream:
        os.fsync(stream.fileno())


def publish_segment(
    out: Path,
    manifest: Manifest,
    segment: Segment,
    tables: dict[str, pa.Table],
    *,
    after_table: Callable[[str], None] = lambda name: None,
) -> Manifest:
    """Write `tables` as `segment` under `out` and return the manifest that lists it.

    Until the final rename nothing is visible in `out/segments`; an exception before it leaves
    only a staging directory, which the next export removes. `after_table` is told each table
    written (progress; tests use it to interrupt an export half-way)."""
    staging = out / f"{STAGING_PREFIX}{segment.name}"
    staging.mkdir()
    for name, table in tables.items():
        _write_table(staging / f"{name}.parquet", table)
        after_table(name)
    write_json_atomically(staging / SEGMENT_FILE, segment.to_json())
    root = out / SEGMENTS
    root.mkdir(exist_ok=True)
    target = root / segment.name
    if target.exists():
        raise ExportError(f"{target} exists already; the export directory was changed by hand?")
    staging.rename(target)
    fsync_directory(root)
    published = Manifest(manifest.chain, (*manifest.segments, segment))
    write_json_atomically(out / MANIFEST, published.to_json())
    return published


def exported_hashes(out: Path, manifest: Manifest, table: str) -> Hashes:
    """Record id -> record hash as last exported in snapshot table `table` (later segments
    override earlier ones)."""
    key = SNAPSHOT_KEYS[table]
    hashes: Hashes = {}
    for segment in manifest.segments:
        path = out / SEGMENTS / segment.name / f"{table}.parquet"
        try:
            rows = pq.read_table(path, columns=[key, "record_hash"])
        except (OSError, pa.ArrowInvalid) as exc:
            raise ExportError(f"{path} is unreadable: {exc}") from None
        ids: list[bytes] = rows.column(key).to_pylist()
        digests: list[bytes] = rows.column("record_hash").to_pylist()
        hashes.update(zip(ids, digests, strict=True))
    return hashes
