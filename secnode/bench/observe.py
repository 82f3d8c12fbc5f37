"""What the cluster bench watches: node0's blocks, processes' and the machine's CPU, the
nodes' /metrics around a window.

`Follower` reads node0's blocks as soon as they exist and records, per block, when the bench
had it; `observe_window` takes CPU figures (/proc) and every node's /metrics at a window's start
and end, and samples the mempools in between, into a `Window`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from secnode.bench.stages import Samples, parse_exposition

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MEMPOOL_SAMPLE_S = 0.5
"""How often the nodes' mempool sizes are sampled during the saturation window."""


def process_cpu_seconds(pid: int, *, descendants: bool = True) -> float:
    """User + system CPU seconds of process `pid` (all its threads) and, with `descendants`,
    of its live child processes and theirs (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    total = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    if not descendants:
        return total
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            total += sum(process_cpu_seconds(int(child)) for child in task.read_text().split())
    return total


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores (/proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


async def rpc(session: aiohttp.ClientSession, url: str, payload: Any) -> Any:
    async with session.post(url + "/rpc", json=payload) as response:
        return await response.json(content_type=None)


async def scrape(session: aiohttp.ClientSession, url: str) -> Samples:
    async with session.get(url + "/metrics") as response:
        return parse_exposition(await response.text())


@dataclass(frozen=True, slots=True)
class SeenBlock:
    height: int
    seen_at: float
    """Wall time the follower had the block."""
    transactions: int
    missed_at: float | None
    """Wall time the follower sent its last request that did not find the block yet."""
    block_time: float
    """The block's header time (set by the primary when it proposed the block)."""


class Follower:
    """Records when each transaction hash is first seen in a committed block of node0."""

    def __init__(self, session: aiohttp.ClientSession, url: str, start_height: int) -> None:
        self.session, self.url = session, url
        self.next_height = start_height + 1
        self.committed_at: dict[str, float] = {}
        self.blocks: list[SeenBlock] = []
        self.stopped = False
        self.watch: set[str] = set()
        self.all_seen = asyncio.Event()
        self.advanced = asyncio.Event()

    async def run(self) -> None:
        missed_at: float | None = None
        while not self.stopped:
            asked_at = time.time()
            reply = await rpc(
                self.session,
                self.url,
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "sec_getBlock",
                    "params": {"height": self.next_height},
                },
            )
            if "result" not in reply:
                missed_at = asked_at
                await asyncio.sleep(0.005)
                continue
            now = time.time()
            hashes = reply["result"]["tx_hashes"]
            for tx_hash in hashes:
                self.committed_at.setdefault(tx_hash, now)
            self.watch.difference_update(hashes)
            if not self.watch:
                self.all_seen.set()
            block_time = reply["result"]["header"]["timestamp_ms"] / 1000
            self.blocks.append(SeenBlock(self.next_height, now, len(hashes), missed_at, block_time))
            missed_at = None
            self.next_height += 1
            self.advanced.set()

    async def wait_for(self, height: int, limit_s: float) -> None:
        """Until the follower has block `height` (bounded: a slow follower is reported)."""
        deadline = time.monotonic() + limit_s
        while self.next_height <= height:
            self.advanced.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.advanced.wait(), deadline - time.monotonic())
            if time.monotonic() >= deadline:
                return

    def reply_seconds(self, first: int, last: int) -> list[float]:
        """Per block of `first..last` the follower waited for: commit -> seen (upper bound)."""
        return [
            b.seen_at - b.missed_at
            for b in self.blocks
            if first <= b.height <= last and b.missed_at is not None
        ]

    def end_to_end_seconds(self, first: int, last: int) -> list[float]:
        """Per block of `first..last`: its block time (proposal) -> seen by the follower."""
        return [b.seen_at - b.block_time for b in self.blocks if first <= b.height <= last]


@dataclass
class Window:
    """What the bench observed around one saturation window."""

    start: float
    end: float
    cpu_before: list[float] = field(default_factory=list)
    cpu_after: list[float] = field(default_factory=list)
    scrapes_before: list[Samples] = field(default_factory=list)
    scrapes_after: list[Samples] = field(default_factory=list)
    mempool_samples: list[float] = field(default_factory=list)
    machine_before: tuple[float, float] = (0.0, 0.0)
    machine_after: tuple[float, float] = (0.0, 0.0)

    def busy_cores(self) -> list[float]:
        span = self.end - self.start
        return [(a - b) / span for b, a in zip(self.cpu_before, self.cpu_after, strict=True)]

    def machine_cores(self, cores: int) -> float:
        """Cores the machine kept busy over the window, every process included."""
        busy = self.machine_after[0] - self.machine_before[0]
        total = self.machine_after[1] - self.machine_before[1]
        return cores * busy / total if total > 0 else 0.0

    def heights(self) -> tuple[int, int]:
        """node0's committed height at the window's start and end."""
        key = "sec_height"
        return int(self.scrapes_before[0][key]), int(self.scrapes_after[0][key])

    def committed(self) -> int:
        """Transactions node0 committed in the window (its counter, not the follower, which
        may lag behind under load)."""
        key = "sec_committed_transactions_total"
        return int(self.scrapes_after[0][key] - self.scrapes_before[0][key])


async def observe_window(
    session: aiohttp.ClientSession, urls: list[str], pids: list[int], window: Window
) -> None:
    """CPU of `pids` (with descendants) and of this process (without: the senders are its
    children), and every node's metrics, at the window's start and end; mempool samples in
    between."""

    def cpu() -> list[float]:
        own = process_cpu_seconds(os.getpid(), descendants=False)
        return [process_cpu_seconds(pid) for pid in pids] + [own]

    async def scrape_all() -> list[Samples]:
        return list(await asyncio.gather(*(scrape(session, url) for url in urls)))

    await asyncio.sleep(max(window.start - time.time(), 0.0))
    window.cpu_before, window.machine_before = cpu(), machine_busy_seconds()
    window.scrapes_before = await scrape_all()
    while time.time() + MEMPOOL_SAMPLE_S < window.end:
        await asyncio.sleep(MEMPOOL_SAMPLE_S)
        window.mempool_samples.extend(s["sec_mempool_transactions"] for s in await scrape_all())
    await asyncio.sleep(max(window.end - time.time(), 0.0))
    window.cpu_after, window.machine_after = cpu(), machine_busy_seconds()
    window.scrapes_after = await scrape_all()
