"""The simulated world: a seeded event queue and a lossy, reordering, partitionable network.

Invariants: simulated time only moves forward; events at equal times run in scheduling order;
every random choice comes from the scenario's `random.Random`, so one seed is one execution.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Event = tuple[float, int, Callable[..., None], tuple[Any, ...]]


class EventQueue:
    """Discrete-event scheduler."""

    __slots__ = ("_heap", "_sequence", "now", "processed")

    def __init__(self) -> None:
        self._heap: list[Event] = []
        self._sequence = 0
        self.now = 0.0
        self.processed = 0

    def at(self, time: float, action: Callable[..., None], *args: Any) -> None:
        self._sequence += 1
        heapq.heappush(self._heap, (max(time, self.now), self._sequence, action, args))

    def run_until(self, end: float, stop: Callable[[], bool] | None = None) -> None:
        """Run events up to time `end` (or until `stop()` is true, checked every 256 events)."""
        heap = self._heap
        while heap and heap[0][0] <= end:
            time, _, action, args = heapq.heappop(heap)
            self.now = time
            action(*args)
            self.processed += 1
            if stop is not None and not self.processed & 255 and stop():
                return
        self.now = max(self.now, end)


@dataclass(slots=True)
class Conditions:
    """Link behaviour; scenarios change it during the fault phase and reset it when healing."""

    delay_min: float = 0.002
    """Smallest one-way delay (seconds)."""
    delay_max: float = 0.025
    """Largest ordinary one-way delay."""
    tail_probability: float = 0.0
    """Chance of an extra long delay (reorders messages strongly)."""
    tail_max: float = 0.3
    """Largest extra delay."""
    drop: float = 0.0
    """Chance a message is lost."""
    duplicate: float = 0.0
    """Chance a message is delivered twice."""


class Network:
    """Point-to-point links between node indices, with partitions."""

    __slots__ = ("_group", "conditions", "dropped", "queue", "rng", "sent")

    def __init__(self, queue: EventQueue, rng: random.Random) -> None:
        self.queue = queue
        self.rng = rng
        self.conditions = Conditions()
        self._group: dict[int, int] = {}
        self.sent = 0
        self.dropped = 0

    def partition(self, groups: list[list[int]]) -> None:
        """Only nodes in the same group can talk; nodes in no group are isolated."""
        self._group = {node: index for index, group in enumerate(groups) for node in group}

    def heal(self) -> None:
        self._group = {}
        self.conditions = Conditions()

    def connected(self, source: int, target: int) -> bool:
        if not self._group:
            return True
        group = self._group.get(source, -1 - source)
        return group == self._group.get(target, -2 - target)

    def transmit(self, source: int, target: int, deliver: Callable[..., None], *args: Any) -> None:
        """Deliver `deliver(*args)` at `target` after a random delay, unless lost."""
        self.sent += 1
        conditions = self.conditions
        rng = self.rng
        if not self.connected(source, target) or (
            conditions.drop and rng.random() < conditions.drop
        ):
            self.dropped += 1
            return
        copies = 2 if conditions.duplicate and rng.random() < conditions.duplicate else 1
        for _ in range(copies):
            delay = rng.uniform(conditions.delay_min, conditions.delay_max)
            if conditions.tail_probability and rng.random() < conditions.tail_probability:
                delay += rng.uniform(0.0, conditions.tail_max)
            self.queue.at(self.queue.now + delay, deliver, *args)
