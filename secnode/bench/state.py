"""`sec bench state`: restart and per-block cost of the state tree at N keys (default 1M).

Builds a LevelDB store of N accounts once (or reuses `--data DIR`), then in one run:
  open   open-to-root time, each open in a fresh process, the two kinds alternating:
         fold       the old open: read every state row, fold the tree, hash the root;
         persisted  `open_chain`: read the persisted tree's root (what a node does now);
         both stop once the root matches the head and one proof verified (process start-up
         and imports excluded; peak RSS of the whole process included)
  block  per block of `--block-keys` changed keys: tree update (copy, set, root) per key and
         the atomic write, the same blocks committed three ways, alternating:
         memory     the in-memory tree, rows only (the write before nodes were persisted);
         every      a copy of the store flushing the tree's nodes in every block's batch
                    (the layout before the journal: `flush_blocks` 1);
         journal    the store with the default flush bounds: a journal row per block, the
                    nodes changed since the last flush every few blocks (the write is
                    reported as mean, median and max: flushes are the spikes)
  replay open-to-root of the journal store just before its next flush (the most keys a
         restart replays), in fresh processes
"""

from __future__ import annotations

import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import msgpack

from contracts import TX_TYPES
from ledger.accounts import ACCOUNT_PREFIX
from ledger.blocks import Block
from ledger.genesis import genesis_block
from ledger.keys import address_of
from ledger.kv import KeyValueStore
from ledger.state import State
from ledger.state_tree import StateTree, verify_state_proof
from ledger.store import GENESIS_KEY, ChainStore, open_chain
from ledger.store_leveldb import LevelDBStore
from secnode.bench import bench_parser, write_report
from secnode.bench.ledger import build_large_state
from secnode.network.devnet import dev_genesis

_CHUNK = 100_000  # rows per write batch while building


def _account_key(index: int) -> bytes:
    """The state key of filler account `index` (as `build_large_state` makes it)."""
    return ACCOUNT_PREFIX + address_of(index.to_bytes(8, "big") * 4)


def build_store(directory: Path, accounts: int) -> None:
    """A store whose head (the genesis block) holds `accounts` filler accounts."""
    genesis = dev_genesis()
    state = build_large_state(accounts, [])
    print("folding the tree ...", file=sys.stderr)
    tree = state.tree
    root = tree.root()
    store = ChainStore(LevelDBStore(directory), TX_TYPES)
    rows = [(b"S" + key, value) for key, value in state.committed.items()]
    print(f"writing {len(rows):,} rows and the tree ...", file=sys.stderr)
    for start in range(0, len(rows), _CHUNK):
        store.kv.write(rows[start : start + _CHUNK], sync=False)
    store.save_whole_tree(tree)
    block = genesis_block(genesis, root)
    store.commit_block(
        block, None, [], {}, extra=[(GENESIS_KEY, genesis.document_hash())], tree=tree
    )
    store.close()


def measure_open(directory: Path, kind: str) -> dict[str, Any]:
    """One open-to-root in this process: `kind` is "fold" or "persisted"."""
    probe = _account_key(7)
    started = time.perf_counter()
    cpu_started = time.process_time()
    if kind == "fold":  # the open path before persisted nodes (open_chain, minus the checks)
        store = ChainStore(LevelDBStore(directory), TX_TYPES)
        head = store.head().header
        state = State(store.load_state_rows())
    else:
        store, state, head = open_chain(LevelDBStore(directory), dev_genesis(), TX_TYPES)
    root = state.committed_root()
    verify_state_proof(head.state_root, probe, state.get(probe), state.prove(probe))
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    if root != head.state_root:
        raise SystemExit(f"{kind}: root {root.hex()} is not the head's {head.state_root.hex()}")
    store.close()
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "peak_rss_mb": _peak_rss_mb(),
        "root": root.hex(),
        "replayed_keys": len(store.journaled),
    }


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited from the
    parent across fork and exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _open_in_child(directory: Path, kind: str) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, "-m", "secnode.bench.state", "--measure-open", kind, str(directory)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(output)
    return result


def _random_block(
    rng: random.Random, head: Block, number: int, block_keys: int, pool: int
) -> dict[bytes, bytes | None]:
    """The changes of one timed block: `block_keys` draws from the first `pool` accounts."""
    keys = [_account_key(rng.randrange(pool)) for _ in range(block_keys)]
    value = msgpack.packb([head.height, number, rng.random()])
    return dict.fromkeys(keys, value)


def _child_block(head: Block, root: bytes) -> Block:
    header = replace(
        head.header,
        height=head.height + 1,
        prev_hash=head.hash(),
        timestamp_ms=head.header.timestamp_ms + 1000,
        state_root=root,
    )
    return Block(header, ())


def _open_store(directory: Path) -> tuple[ChainStore, State]:
    store, state, _ = open_chain(LevelDBStore(directory), dev_genesis(), TX_TYPES)
    return store, state


def measure_blocks(
    directory: Path, accounts: int, blocks: int, block_keys: int, hot: int = 0
) -> dict[str, Any]:
    """Per-block tree update and write, the same blocks committed three ways (module
    docstring), alternating; the changed keys are drawn from all `accounts`, or from the
    first `hot` of them."""
    twin = directory.with_name(directory.name + "-every-block")
    shutil.rmtree(twin, ignore_errors=True)
    shutil.copytree(directory, twin)
    stores = {"every": _open_store(twin), "journal": _open_store(directory)}
    stores["every"][0].flush_blocks = 1
    kv: KeyValueStore = stores["journal"][0].kv
    head_block = stores["journal"][0].head()
    rng = random.Random(head_block.height)  # a reused store gets new keys and values
    print("folding the in-memory tree for the rows-only blocks ...", file=sys.stderr)
    memory_tree = StateTree.from_items(stores["journal"][0].load_state_rows().items())
    kinds = ("memory", "every", "journal")
    update: dict[str, list[float]] = {kind: [] for kind in kinds}
    write: dict[str, list[float]] = {kind: [] for kind in kinds}
    nodes_written: dict[str, int] = dict.fromkeys(kinds, 0)
    node_reads: list[float] = []
    journal_store = stores["journal"][0]
    flush_blocks, journal_store.flush_blocks = journal_store.flush_blocks, 1
    for number in range(-1, blocks):  # block -1, untimed, flushes what a reopen replayed
        if number == 0:
            journal_store.flush_blocks = flush_blocks
        changes = _random_block(rng, head_block, number, block_keys, hot or accounts)
        block = head_block
        for kind in kinds:
            store, state = stores.get(kind, stores["journal"])
            parent = memory_tree if kind == "memory" else state.tree
            reads = store.nodes.reads
            started = time.perf_counter()
            tree = parent.copy()
            for key, value in changes.items():
                tree.set(key, cast(bytes, value))
            root = tree.root()
            if number >= 0:
                update[kind].append((time.perf_counter() - started) / len(changes))
            if kind == "journal" and number >= 0:
                node_reads.append((store.nodes.reads - reads) / len(changes))
            block = _child_block(head_block, root)
            if kind == "memory":  # the batch as it was: block rows and state rows, no nodes
                # (under another prefix: the stored variants write the real rows next)
                batch = [(b"X" + key, value) for key in changes]
                started = time.perf_counter()
                kv.write([*batch, (b"Xbench", block.encode())], sync=True)
                if number >= 0:
                    write[kind].append(time.perf_counter() - started)
                memory_tree = tree
                continue
            written = store.nodes_written
            started = time.perf_counter()
            store.commit_block(block, None, [], changes, tree=tree)
            if number >= 0:
                write[kind].append(time.perf_counter() - started)
                nodes_written[kind] += store.nodes_written - written
            state.apply_committed(changes, tree)
        head_block = block
        _progress(number + 1, blocks)
    kv.write([(key, None) for key, _ in kv.iterate(b"X")])
    for store, _ in stores.values():
        store.close()
    shutil.rmtree(twin)
    report: dict[str, Any] = {
        "blocks": blocks,
        "block_keys": block_keys,
        "hot_accounts": hot or accounts,
        "node_reads_per_key": statistics.median(node_reads),
    }
    for kind in kinds:
        report[f"update_per_key_us_{kind}"] = statistics.median(update[kind]) * 1e6
        report[f"write_ms_{kind}"] = statistics.median(write[kind]) * 1e3
        report[f"write_ms_mean_{kind}"] = statistics.fmean(write[kind]) * 1e3
        report[f"write_ms_max_{kind}"] = max(write[kind]) * 1e3
        report[f"nodes_written_per_block_{kind}"] = nodes_written[kind] / blocks
    return report


def _progress(done: int, total: int) -> None:
    if done % 10 == 0 or done == total:
        print(f"block {done}/{total}", file=sys.stderr)


def fill_journal(directory: Path, accounts: int, block_keys: int) -> int:
    """Commit random-key blocks to the store until the next would flush the tree's nodes (the
    journal a restart replays is then the longest the flush bounds allow); returns the
    number of keys journaled."""
    store, state = _open_store(directory)
    head_block = store.head()
    rng = random.Random(head_block.height)
    number = 0
    while True:
        tree = state.tree
        if tree.reads_from(store.nodes) and store.tree_height is not None:
            room = store.flush_keys - len(store.journaled)
            if head_block.height + 1 - store.tree_height >= store.flush_blocks:
                break
            if room < block_keys:
                break
        changes = _random_block(rng, head_block, number, block_keys, accounts)
        tree = tree.copy()
        for key, value in changes.items():
            tree.set(key, cast(bytes, value))
        block = _child_block(head_block, tree.root())
        store.commit_block(block, None, [], changes, tree=tree)
        state.apply_committed(changes, tree)
        head_block = block
        number += 1
    journaled = len(store.journaled)
    store.close()
    return journaled


def run(
    directory: Path,
    accounts: int,
    rounds: int,
    blocks: int,
    block_keys: int,
    hot: int = 0,
    *,
    replay: bool = True,
) -> dict[str, Any]:
    if not (directory / "CURRENT").exists():
        print(f"building a store of {accounts:,} accounts in {directory} ...", file=sys.stderr)
        started = time.perf_counter()
        build_store(directory, accounts)
        print(f"built in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    opens: dict[str, list[dict[str, Any]]] = {"fold": [], "persisted": []}
    for round_number in range(rounds):
        for kind in ("fold", "persisted"):
            opens[kind].append(_open_in_child(directory, kind))
        print(f"open round {round_number + 1}/{rounds} done", file=sys.stderr)
    roots = {result["root"] for results in opens.values() for result in results}
    if len(roots) != 1:
        raise SystemExit(f"the two opens disagree on the root: {sorted(roots)}")
    report: dict[str, Any] = {"accounts": accounts, "rounds": rounds, "root": roots.pop()}
    for kind, results in opens.items():
        report[f"open_seconds_{kind}"] = statistics.median(r["seconds"] for r in results)
        report[f"open_cpu_seconds_{kind}"] = statistics.median(r["cpu_seconds"] for r in results)
        report[f"open_replayed_keys_{kind}"] = max(r.get("replayed_keys", 0) for r in results)
        report[f"open_peak_rss_mb_{kind}"] = statistics.median(r["peak_rss_mb"] for r in results)
    report["open_ratio_persisted_to_fold"] = (
        report["open_seconds_persisted"] / report["open_seconds_fold"]
    )
    if blocks:
        report.update(measure_blocks(directory, accounts, blocks, block_keys, hot))
    if replay:
        print("filling the journal up to the next flush ...", file=sys.stderr)
        report["journal_keys"] = fill_journal(directory, accounts, block_keys)
        replays = [_open_in_child(directory, "persisted") for _ in range(rounds)]
        if {r["root"] for r in replays} != {replays[0]["root"]}:
            raise SystemExit("the replayed opens disagree on the root")
        report["open_seconds_replay"] = statistics.median(r["seconds"] for r in replays)
        report["open_cpu_seconds_replay"] = statistics.median(r["cpu_seconds"] for r in replays)
        report["open_peak_rss_mb_replay"] = statistics.median(r["peak_rss_mb"] for r in replays)
        report["replayed_keys"] = replays[0]["replayed_keys"]
    return report


def render(report: dict[str, Any]) -> str:
    lines = [
        f"state tree benchmark: {report['accounts']:,} accounts, median of {report['rounds']} "
        f"opens each (root {report['root'][:16]}...)",
        f"  open to root + proof, fold      {report['open_seconds_fold']:8.3f} s "
        f"(CPU {report['open_cpu_seconds_fold']:6.3f} s)   "
        f"peak RSS {report['open_peak_rss_mb_fold']:7.0f} MB",
        f"  open to root + proof, persisted {report['open_seconds_persisted']:8.3f} s "
        f"(CPU {report['open_cpu_seconds_persisted']:6.3f} s)   "
        f"peak RSS {report['open_peak_rss_mb_persisted']:7.0f} MB   "
        f"({report['open_ratio_persisted_to_fold']:.4f} x fold; "
        f"{report['open_replayed_keys_persisted']:,} journaled keys replayed)",
    ]
    if "blocks" in report:
        lines += [
            f"  per block of {report['block_keys']:,} key updates drawn from "
            f"{report['hot_accounts']:,} accounts ({report['blocks']} blocks; "
            f"journal: {report['node_reads_per_key']:.1f} store reads per key updated):",
            "                      update/key    write median    mean      max   nodes/block",
        ]
        names = {"memory": "rows only", "every": "every block", "journal": "journal"}
        for kind, name in names.items():
            lines.append(
                f"    {name:<15} {report[f'update_per_key_us_{kind}']:8.1f} us"
                f" {report[f'write_ms_{kind}']:9.1f} ms {report[f'write_ms_mean_{kind}']:7.1f}"
                f" {report[f'write_ms_max_{kind}']:8.1f} "
                f"{report[f'nodes_written_per_block_{kind}']:11,.0f}"
            )
    if "journal_keys" in report:
        lines.append(
            f"  open to root + proof, replaying a full journal ({report['replayed_keys']:,} "
            f"keys) {report['open_seconds_replay']:8.3f} s "
            f"(CPU {report['open_cpu_seconds_replay']:6.3f} s)   "
            f"peak RSS {report['open_peak_rss_mb_replay']:7.0f} MB"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if arguments[:1] == ["--measure-open"]:  # the child of one open measurement
        print(json.dumps(measure_open(Path(arguments[2]), arguments[1])))
        return 0
    parser = bench_parser("sec bench state", __doc__)
    parser.add_argument("--accounts", type=int, default=1_000_000, help="default 1,000,000")
    parser.add_argument("--data", type=Path, help="store to build once and reuse (default: temp)")
    parser.add_argument("--rounds", type=int, default=3, help="opens of each kind (default 3)")
    parser.add_argument("--blocks", type=int, default=5, help="blocks to time (default 5; 0: none)")
    parser.add_argument(
        "--block-keys", type=int, default=2000, help="keys per block (default 2000)"
    )
    parser.add_argument(
        "--hot", type=int, default=0, help="update only the first HOT accounts (default: all)"
    )
    parser.add_argument(
        "--no-replay",
        action="store_true",
        help="skip filling the journal and timing the open that replays it",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the report as JSON to FILE")
    args = parser.parse_args(arguments)
    if args.accounts < 1 or args.rounds < 1 or args.blocks < 0 or args.block_keys < 1:
        parser.error("need --accounts >= 1, --rounds >= 1, --blocks >= 0, --block-keys >= 1")
    if not 0 <= args.hot <= args.accounts:
        parser.error("need 0 <= --hot <= --accounts")
    if args.data is None:
        with tempfile.TemporaryDirectory(prefix="sec-bench-state-") as directory:
            report = run(
                Path(directory) / "db",
                args.accounts,
                args.rounds,
                args.blocks,
                args.block_keys,
                args.hot,
                replay=not args.no_replay,
            )
    else:
        report = run(
            args.data,
            args.accounts,
            args.rounds,
            args.blocks,
            args.block_keys,
            args.hot,
            replay=not args.no_replay,
        )
    print(render(report))
    if args.json:
        write_report(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
