"""The node's clock: wall time plus a fixed offset, the one source of "now" in a node.

Every part of a node that reads the time (the consensus driver, and through it the replica's
timers and the ledger's block-time checks; replica restore; the mempool; the node's start
time) gets the same `NodeClock` from `Node`, so a test or a nemesis run can skew one node's
clock by setting `SEC_CLOCK_OFFSET_S` in its environment without touching the machine's clock.

Invariant: `NodeClock()` always returns `time.time() + offset_s`, and `offset_s` is finite.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass

from secnode.runtime.config import ConfigError

CLOCK_OFFSET_VARIABLE = "SEC_CLOCK_OFFSET_S"
"""Environment variable: seconds (a float, may be negative) added to the node's wall clock."""


@dataclass(frozen=True, slots=True)
class NodeClock:
    """Wall time shifted by `offset_s`; call it like `time.time`."""

    offset_s: float = 0.0
    """Seconds added to `time.time()` (finite; negative puts the node behind)."""

    def __post_init__(self) -> None:
        if not math.isfinite(self.offset_s):
            raise ConfigError(
                f"clock offset must be a finite number of seconds, not {self.offset_s}"
            )

    def __call__(self) -> float:
        return time.time() + self.offset_s


def clock_from_environment(environ: Mapping[str, str] | None = None) -> NodeClock:
    """The node clock configured by `SEC_CLOCK_OFFSET_S` (unset or empty: no offset).

    Raises `ConfigError` naming the variable and its value when it is not a finite float.
    """
    source = os.environ if environ is None else environ
    raw = source.get(CLOCK_OFFSET_VARIABLE, "").strip()
    if not raw:
        return NodeClock()
    try:
        offset = float(raw)
    except ValueError:
        offset = math.nan
    if not math.isfinite(offset):
        raise ConfigError(
            f"{CLOCK_OFFSET_VARIABLE}={source[CLOCK_OFFSET_VARIABLE]!r} is not a finite number "
            "of seconds (e.g. 2.5 or -0.75)"
        )
    return NodeClock(offset)
