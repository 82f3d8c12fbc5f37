"""What bound a cluster benchmark's saturation window, derived from what was measured.

Inputs (`WindowFigures`): the machine's core count and how many of them were busy (all
processes: the machine may be shared); the CPU each node, each sender process of the load
generator and the bench's own process used over the window (in cores: CPU seconds / window
seconds); offered and committed tx/s; whether the generator ran out of transactions; the
nodes' mean mempool size (sampled during the window); blocks per second and their mean size
against the block size limit; and the mean time a block spends in proposal build plus the
consensus rounds (pre-prepare -> delivered).

Derived:

* the CPU is full when the machine's busy cores (ours and any other process's) reach
  `CPU_FULL * cores`.
* backlog: transactions wait for the chain, i.e. the generator offered more than was committed
  (`offered >= BACKLOG_OFFERED * committed`) and the mempools held more than the block in
  flight (`mempool_mean >= BACKLOG_BLOCKS * mean block size`). Without a backlog the chain was
  not saturated, whatever it committed.
* blocks full: mean block size >= `FULL_BLOCK * block size`.
* consensus busy: blocks/s x (proposal build + pre-prepare -> delivered) >= `CONSENSUS_BUSY`:
  some block was in its consensus rounds most of the time (with one block in flight, the next
  waits for it).

The rule, first match wins:

1. no backlog, the generator ran out of transactions -> **load generator** (it offered all it
   had: raise `--max-rate`);
2. no backlog, a sender process at >= `SENDER_SATURATED` of a core -> **load generator** (its
   CPU is saturated);
3. no backlog, CPU full -> **CPU** (the cores are full and the generator, sharing them, could
   not offer more);
4. no backlog -> **load generator** (offered rate below capacity: the nodes waited for work);
5. backlog, CPU full -> **CPU** (the line says how much of it went to other processes);
6. backlog, blocks full -> **batch size**;
7. backlog, consensus busy -> **consensus round trip** (nodes idle while blocks wait for quorums);
8. backlog otherwise -> **unexplained**: transactions wait while the nodes are idle, blocks are
   not full and no block is in consensus. That is a bug in the benchmark or in the node, and
   the report says so (`suspicious`).

Only 5-7 count as saturation (`saturated`): the committed rate of any other window is not the
chain's capacity, and the report must not present it as such.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

CPU_FULL: Final = 0.85
"""Share of the cores in use at which the CPU counts as full (the rest is the OS, scheduling)."""
SENDER_SATURATED: Final = 0.9
"""Share of one core at which a single-threaded sender process is saturated."""
BACKLOG_OFFERED: Final = 1.1
"""Offered / committed ratio above which the generator offered more than the chain took."""
BACKLOG_BLOCKS: Final = 1.5
"""Mempool size, in mean blocks, above which transactions wait for more than the next block."""
FULL_BLOCK: Final = 0.9
"""Mean block size / limit at which blocks are full."""
CONSENSUS_BUSY: Final = 0.6
"""Share of the window some block spent in proposal build or the consensus rounds."""

BoundKind = Literal["cpu", "batch_size", "consensus_round_trip", "load_generator", "unexplained"]


@dataclass(frozen=True, slots=True)
class WindowFigures:
    """What the bench measured over the saturation window."""

    cores: int
    """CPUs of the machine (os.cpu_count())."""
    machine_cores: float
    """Cores the whole machine kept busy (/proc/stat), every process included."""
    node_cores: tuple[float, ...]
    """CPU each node used, in cores (CPU seconds / window seconds)."""
    sender_cores: tuple[float, ...]
    """CPU each load generator process used, in cores."""
    bench_cores: float
    """CPU of the bench's own process (block follower, scrapes), in cores."""
    offered_tx_per_s: float
    committed_tx_per_s: float
    mempool_mean: float
    """Mean pending transactions per node, over the samples taken in the window."""
    blocks_per_s: float
    mean_block_txs: float
    block_size: int
    """The block size limit (transactions)."""
    consensus_s_per_block: float
    """Mean seconds a block spends in proposal build + pre-prepare -> delivered."""
    generator_exhausted: bool = False
    """The generator had no transactions left (or reached its limit) before the window ended."""

    @property
    def cpu_ours(self) -> float:
        return sum(self.node_cores) + sum(self.sender_cores) + self.bench_cores


@dataclass(frozen=True, slots=True)
class Bound:
    """The verdict, with the one line the report prints."""

    kind: BoundKind
    saturated: bool
    """The window measured the chain's capacity (rules 5-7 of the module docstring)."""
    suspicious: bool
    """Transactions waited while nothing explains it: a bug in the bench or the node."""
    line: str

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "saturated": self.saturated,
            "suspicious": self.suspicious,
            "line": self.line,
        }


def classify_bound(f: WindowFigures) -> Bound:
    """Apply the rule of the module docstring to `f`."""
    others = max(f.machine_cores - f.cpu_ours, 0.0)
    cpu = (
        f"nodes {sum(f.node_cores):.2f} + load generator {sum(f.sender_cores):.2f} + bench "
        f"{f.bench_cores:.2f} + other processes {others:.2f} = {f.machine_cores:.2f} "
        f"of {f.cores} cores busy"
    )
    cpu_full = f.machine_cores >= CPU_FULL * f.cores
    backlog = (
        f.offered_tx_per_s >= BACKLOG_OFFERED * f.committed_tx_per_s
        and f.mempool_mean >= BACKLOG_BLOCKS * max(f.mean_block_txs, 1.0)
    )
    fill = f.mean_block_txs / f.block_size if f.block_size > 0 else 0.0
    consensus_busy = f.blocks_per_s * f.consensus_s_per_block
    if not backlog:
        waiting = (
            f"offered {f.offered_tx_per_s:.0f} tx/s, committed {f.committed_tx_per_s:.0f} tx/s, "
            f"mempool {f.mempool_mean:.0f} txs"
        )
        busiest = max(f.sender_cores, default=0.0)
        if f.generator_exhausted:
            return Bound(
                "load_generator",
                False,
                False,
                f"load generator: it offered every transaction it had ({waiting}); NOT the "
                "chain's capacity: raise --max-rate",
            )
        if busiest >= SENDER_SATURATED:
            return Bound(
                "load_generator",
                False,
                False,
                f"load generator: a sender process used {busiest:.2f} of a core ({waiting}); "
                "NOT the chain's capacity: add senders (--senders)",
            )
        if cpu_full:
            return Bound(
                "cpu",
                False,
                False,
                f"CPU: the cores are full ({cpu}) and the generator sharing them could not "
                f"offer more ({waiting}); NOT a saturation of the chain alone",
            )
        return Bound(
            "load_generator",
            False,
            False,
            f"load generator: offered rate below capacity, the nodes waited for work "
            f"({waiting}; {cpu}); NOT the chain's capacity",
        )
    if cpu_full:
        return Bound("cpu", True, False, f"CPU: {cpu}")
    if fill >= FULL_BLOCK:
        return Bound(
            "batch_size",
            True,
            False,
            f"batch size: blocks {fill:.0%} full ({f.mean_block_txs:.0f} of {f.block_size}) "
            f"while the mempools held {f.mempool_mean:.0f} txs ({cpu})",
        )
    if consensus_busy >= CONSENSUS_BUSY:
        return Bound(
            "consensus_round_trip",
            True,
            False,
            f"consensus round trip: a block was in consensus {consensus_busy:.0%} of the time "
            f"({f.consensus_s_per_block * 1e3:.1f} ms per block, {f.blocks_per_s:.1f} "
            f"blocks/s) while the nodes were idle ({cpu})",
        )
    return Bound(
        "unexplained",
        False,
        True,
        f"UNEXPLAINED, a bug in the benchmark or the node: transactions waited (mempool "
        f"{f.mempool_mean:.0f}, offered {f.offered_tx_per_s:.0f} > committed "
        f"{f.committed_tx_per_s:.0f} tx/s) while the nodes were idle ({cpu}), blocks were "
        f"{fill:.0%} full and in consensus only {consensus_busy:.0%} of the time",
    )
