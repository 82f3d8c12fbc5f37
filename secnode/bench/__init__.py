"""Benchmarks behind `sec bench`: ledger (single process), p2p, cluster, trust, rpc.

Each prints its figures and can write them as JSON; the shared pieces are here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def bench_parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    """The argument parser of one benchmark, its module docstring as the description."""
    return argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def write_report(path: str, report: dict[str, Any], *, announce: bool = False) -> None:
    """Write `report` as indented JSON to `path` (and say so on stderr with `announce`)."""
    Path(path).write_text(json.dumps(report, indent=2) + "\n")
    if announce:
        print(f"report written to {path}", file=sys.stderr)
