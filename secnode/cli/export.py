"""`sec export --to DIR --home HOME`: write the chain of a stopped node as Parquet tables.

The work is `secnode.export` (imported when the command runs, so other commands never load
pyarrow); this module parses the options and prints the figure: rows written and rows per
second.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from secnode.cli.common import CommandError, emit


def _export(args: argparse.Namespace) -> int:
    from secnode.export.progress import Progress
    from secnode.export.run import export_chain
    from secnode.export.source import ExportError, open_home

    home: Path = args.home
    out: Path = args.to
    try:
        store, chain = open_home(home)
        try:
            summary = export_chain(store, chain, out, Progress(sys.stderr))
        finally:
            store.close()
    except ExportError as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:  # e.g. a full disk: the segment being written stays out of sight
        raise CommandError(
            f"--to {out}: cannot write {exc.filename or 'the export'}: {exc.strerror or exc}; "
            "nothing of this run was published"
        ) from None
    manifest = summary.manifest
    if summary.segment is None:
        human = f"{out} is up to date at height {manifest.height}; nothing to add"
    else:
        human = (
            f"exported heights {summary.segment.from_height}..{summary.segment.to_height} to "
            f"{out}: {summary.rows} rows in {summary.seconds:.2f} s "
            f"({summary.rows_per_second:,.0f} rows/s)"
        )
    emit(
        args,
        human,
        {
            "to": str(out),
            "height": manifest.height,
            "segment": None if summary.segment is None else summary.segment.to_json(),
            "rows": summary.rows,
            "seconds": round(summary.seconds, 3),
            "rows_per_second": round(summary.rows_per_second),
        },
    )
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `sec export`."""
    parser = commands.add_parser(
        "export",
        help="write the chain as Parquet tables for analysts (incremental)",
        description="Write blocks, transactions, orders, order events, attestations, trust "
        "scores of every epoch and balances as Parquet files under DIR, read from the data "
        "directory of a stopped node. Run it again later to add only what is new. Each trust "
        "epoch's scores are recomputed from its inputs and checked against its roots on chain. "
        "Schema and queries: docs/operations.md, 'Exporting for analysts'.",
    )
    parser.add_argument(
        "--to", required=True, type=Path, metavar="DIR", help="the export directory"
    )
    parser.add_argument(
        "--home",
        required=True,
        type=Path,
        metavar="HOME",
        help="the node's home (its config.toml names the data directory); the node must be "
        "stopped, or HOME a copy of its home with the data directory",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(handler=_export)
