"""The fault schedule: what the nemesis does to the network in each cycle, and how it undoes it.

`Schedule(seed, nodes)` is deterministic: the same seed gives the same faults in the same order.
Kinds are drawn as a shuffled permutation of `KINDS` per block of `len(KINDS)` cycles, so every
aligned block of five cycles covers every kind once (a short CI run of 5 cycles sees them all).

| kind        | inject                                               | heal                       |
|-------------|------------------------------------------------------|----------------------------|
| `kill`      | SIGKILL the target                                   | start it again             |
| `pause`     | SIGSTOP the target (sockets stay open, nothing runs) | SIGCONT                    |
| `partition` | cut the target off, or split the nodes in two halves | reconnect every link       |
| `skew`      | restart the target with `SEC_CLOCK_OFFSET_S` set     | restart it without         |
| `byzantine` | restart the target with `SEC_BYZANTINE` set          | restart it honest          |

Every fault touches at most f = 1 validator of 4 except a half split, which leaves no quorum on
either side: the chain must stop and then resume after the heal, never fork.
"""

from __future__ import annotations

import random
import signal
from dataclasses import dataclass, replace
from typing import Final

from secnode.nemesis.cluster import CLOCK_OFFSET_VARIABLE, NemesisCluster
from secnode.runtime.byzantine import BEHAVIOURS
from secnode.runtime.byzantine import ENVIRONMENT_VARIABLE as BYZANTINE_VARIABLE

KINDS: Final = ("kill", "pause", "partition", "skew", "byzantine")
MAX_SKEW_S: Final = 3.0
"""Well inside the default max_clock_drift_s (10 s): a skewed honest node must still vote."""
FAULT_SECONDS: Final = (1.5, 3.0)
"""Each fault lasts a uniformly drawn time in this range."""


@dataclass(frozen=True, slots=True)
class Fault:
    """One cycle's fault."""

    cycle: int
    kind: str
    """One of KINDS."""
    target: int
    """Index of the node it is done to (for a half split: a member of the first half)."""
    duration_s: float
    """Seconds between inject and heal."""
    detail: str
    """Human-readable specifics: the split, the clock offset, the Byzantine behaviour."""
    halves: tuple[tuple[int, ...], tuple[int, ...]] | None = None
    """For a partition: the two sides (a lone target is one side)."""
    environment: tuple[tuple[str, str], ...] = ()
    """For skew and byzantine: what the target is restarted with."""

    primary: bool = False
    """The target was chosen as the primary of the current view."""

    def describe(self) -> str:
        role = " (primary)" if self.primary else ""
        detail = f" {self.detail}" if self.detail else ""
        return f"{self.kind} node{self.target}{role}{detail} for {self.duration_s:.1f} s"


class Schedule:
    """Seeded faults, one per cycle (see the module docstring)."""

    def __init__(self, seed: int, nodes: int) -> None:
        self._random = random.Random(seed)
        self._nodes = nodes
        self._block: list[str] = []

    def next(self, cycle: int, primary: int | None) -> Fault:
        """The fault of `cycle`; half the time (by the seed) it targets `primary`, the node the
        others currently follow, when it is known: faults of the primary are the ones that
        force view changes and restarts into an old view."""
        if not self._block:
            self._block = list(KINDS)
            self._random.shuffle(self._block)
        kind = self._block.pop(0)
        target = self._random.randrange(self._nodes)
        on_primary = self._random.random() < 0.5 and primary is not None
        if on_primary and primary is not None:
            target = primary
        duration = round(self._random.uniform(*FAULT_SECONDS), 1)
        fault = Fault(cycle, kind, target, duration, "", primary=on_primary)
        if kind == "partition":
            return self._partition(fault)
        if kind == "skew":
            offset = round(self._random.uniform(-MAX_SKEW_S, MAX_SKEW_S), 2)
            environment = ((CLOCK_OFFSET_VARIABLE, str(offset)),)
            return replace(fault, detail=f"clock {offset:+.2f} s", environment=environment)
        if kind == "byzantine":
            behaviour = self._random.choice(BEHAVIOURS)
            environment = ((BYZANTINE_VARIABLE, behaviour),)
            return replace(fault, detail=behaviour, environment=environment)
        return fault

    def _partition(self, fault: Fault) -> Fault:
        target = fault.target
        others = [i for i in range(self._nodes) if i != target]
        if self._random.random() < 0.5 or self._nodes < 4:
            return replace(fault, detail="isolated", halves=((target,), tuple(others)))
        self._random.shuffle(others)
        half = self._nodes // 2
        first = tuple(sorted([target, *others[: half - 1]]))
        second = tuple(sorted(others[half - 1 :]))
        detail = f"split {list(first)} | {list(second)}"
        return replace(fault, detail=detail, halves=(first, second))


def inject(cluster: NemesisCluster, fault: Fault) -> None:
    """Start the fault."""
    if fault.kind == "kill":
        cluster.kill(fault.target)
    elif fault.kind == "pause":
        cluster.signal(fault.target, signal.SIGSTOP)
    elif fault.kind == "partition" and fault.halves is not None:
        for a in fault.halves[0]:
            for b in fault.halves[1]:
                cluster.links.cut(a, b)
    elif fault.kind in ("skew", "byzantine"):
        cluster.restart(fault.target, dict(fault.environment))


def heal(cluster: NemesisCluster, fault: Fault) -> None:
    """End the fault: every node running, honest, unpaused and connected."""
    if fault.kind == "kill":
        cluster.start(fault.target)
    elif fault.kind == "pause":
        cluster.signal(fault.target, signal.SIGCONT)
    elif fault.kind == "partition":
        cluster.links.heal()
    elif fault.kind in ("skew", "byzantine"):
        cluster.restart(fault.target)
