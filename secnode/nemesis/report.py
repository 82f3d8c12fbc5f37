"""The nemesis report: counters per run, one summary line, details, and the exit status.

A run fails (exit status 1) when any of `FAILURES` is non-zero: an acknowledged transaction
missing on some node (`lost`), two blocks at one height (`forks`), validators left in different
views after healing (`splits`), a node process that ended without the nemesis stopping it
(`crashes`), an exception that escaped a task or a timer and was logged (`tracebacks`), or a chain
that did not resume within the bound after a fault ended (`stalls`).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

FAILURES: Final = ("lost", "forks", "splits", "crashes", "tracebacks", "stalls")


@dataclass(slots=True)
class CycleResult:
    """What one cycle did and found."""

    cycle: int
    fault: str
    """`Fault.describe()`."""
    resumed_s: float | None
    """Seconds from heal until the chain committed new blocks (None: not within the bound)."""
    recovered_s: float | None
    """Seconds from heal until every node caught up and all shared one view (None: not so)."""
    heights: list[int | None]
    views: list[int | None]
    problems: list[str] = field(default_factory=list)
    excused: list[int] = field(default_factory=list)
    """Nodes not judged for recovery: their peers may ban them after their Byzantine run."""
    wall_s: float = 0.0
    """Seconds the whole cycle took: inject, hold, heal, recover, check."""


@dataclass(slots=True)
class Report:
    """Everything a run found; `write` saves it, `line` summarises it."""

    seed: int
    cycles: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    acknowledged: int = 0
    lost: list[str] = field(default_factory=list)
    forks: list[str] = field(default_factory=list)
    splits: list[str] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    tracebacks: list[str] = field(default_factory=list)
    stalls: list[str] = field(default_factory=list)
    worst_recovery_s: float = 0.0
    retries: int = 0
    rejections: dict[str, int] = field(default_factory=dict)
    results: list[CycleResult] = field(default_factory=list)

    def failed(self) -> bool:
        return any(getattr(self, name) for name in FAILURES)

    def line(self) -> str:
        faults = " ".join(f"{kind}={count}" for kind, count in sorted(self.faults.items()))
        verdict = "FAIL" if self.failed() else "PASS"
        return (
            f"nemesis seed {self.seed}: {self.cycles} cycles ({faults}), "
            f"{self.acknowledged} acknowledged, {len(self.lost)} lost, {len(self.forks)} forks, "
            f"{len(self.splits)} view splits left, {len(self.crashes)} crashes, "
            f"{len(self.tracebacks)} tracebacks, {len(self.stalls)} stalls, "
            f"worst recovery {self.worst_recovery_s:.1f} s: {verdict}"
        )

    def details(self) -> str:
        parts = []
        for name in FAILURES:
            items = getattr(self, name)
            if items:
                parts.append(f"{name} ({len(items)}):")
                parts += [f"  {item}" for item in items[:50]]
                if len(items) > 50:
                    parts.append(f"  ... and {len(items) - 50} more (report.json)")
        if self.rejections:
            parts.append(f"client rejections (not failures): {self.rejections}")
        parts.append(f"client retries (timeouts, unreachable nodes): {self.retries}")
        return "\n".join(parts)

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["faults"] = dict(self.faults)
        document["summary"] = self.line()
        document["failed"] = self.failed()
        return document

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
