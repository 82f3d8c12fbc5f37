"""`sec bench` (cluster): a local 4-validator network under load, measured from outside.

1. Creates a throw-away network in a temp directory: the development genesis plus
   `--accounts` funded bench accounts (keys from public labels), nodes on free ports, the RPC
   rate limit off (the generator is one IP), and starts the validators as separate processes
   (`sec node start`).
2. Meanwhile the load generator (`secnode.bench.loadgen`) starts `--senders` processes that
   pre-sign their share of the `credit.transfer`s in parallel, or load them from the cache
   (`--tx-cache`, keyed by genesis hash, accounts and count).
3. Measures V, one Ed25519 verify (PyNaCl), in this process.
4. Saturation window: the senders offer closed-loop (`--depth` batches in flight per node and
   sender), or open-loop at `--rate` tx/s; each account's transactions go in order to one node,
   over keep-alive connections. Over the window the bench records each node's and each
   sender's CPU (/proc/PID/stat, with descendants) and the machine's (/proc/stat), samples the
   nodes' mempool sizes, and scrapes every node's /metrics before and after: the block-stage
   histograms (`secnode.bench.stages`), and node0's height and committed-transaction counter,
   whose differences are the window's blocks and committed transactions.
5. Half-saturation phase: the senders offer open-loop at half the committed rate and each
   transaction's time to finality is recorded (sent -> seen in a committed block of node0).
6. Reports offered, accepted and committed tx/s side by side, rejections by reason, CPU busy %
   per node and for the generator, the time a block spends in each stage (mean, p50, p99 over
   the window's blocks), one line naming what bound the window (`secnode.bench.bound`, whose
   docstring has the rule), finality p50/p95/p99, CPU microseconds per committed transaction per
   node and R = CPU per transaction / V; `--json FILE` writes every field.

Commit times come from a follower that reads each new block from node0 as soon as it exists
(it asks for the next height and retries after 5 ms while it is not there yet). Under saturation
node0 answers it late, so the follower falls behind: the report gives its lag and what it saw
commit in the window (what this bench reported as throughput before it read node0's counter).
The reply stage (commit on node0 -> the follower has the block) is measured by the follower:
from the moment it sent the last request that did not find the block (so the block was not
committed then) to the moment it had it, an upper bound (one retry, plus the wait of that
request when node0's RPC is slow); blocks it found at once (it was behind) are not counted. The
end-to-end figure, per block of the window, is from the block's header time (the primary's
clock when it proposed; same machine, same clock) to the moment the follower had it: the
stages of a block add up to about it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from ledger.genesis import load_genesis
from secnode.bench import bench_parser, write_report
from secnode.bench.bound import WindowFigures, classify_bound
from secnode.bench.ledger import measure_verify
from secnode.bench.loadgen import LoadGenerator, Phase, PhaseResult, SenderPlan, bench_key
from secnode.bench.observe import (
    Follower,
    Window,
    observe_window,
    process_cpu_seconds,
    rpc,
    scrape,
)
from secnode.bench.report import render
from secnode.bench.stages import percentile, summarize_values
from secnode.bench.stages import window_stages as stages_between
from secnode.network.devnet import dev_genesis_document
from secnode.network.home import node_config, plan_nodes, write_home
from secnode.network.ports import free_port_base
from secnode.runtime.config import ConsensusSection, NodeConfig

ROOT = Path(__file__).resolve().parents[2]
CONSENSUS_STAGES = ("proposal_build", "prepare", "commit", "certify")
"""The stages a block spends in the consensus pipeline (for the round-trip figure)."""


@dataclass
class Cluster:
    directory: Path
    rpc_urls: list[str]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def cpu_seconds(self) -> list[float]:
        return [process_cpu_seconds(process.pid) for process in self.processes]

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def create_cluster(
    directory: Path, nodes: int, accounts: int, block_size: int, *, rate_limit: bool = True
) -> Cluster:
    """The network's homes; `rate_limit=False` switches the nodes' per-IP RPC limit off (all
    the bench's senders share 127.0.0.1: a per-IP limit would bound the generator)."""
    document = dev_genesis_document(nodes)
    for index in range(accounts):
        document["accounts"].append(
            {
                "name": f"bench{index}",
                "public_key": bench_key(index).public_key.hex(),
                "roles": ["member"],
                "balance": 10**12,
            }
        )
    genesis_path = directory / "genesis.json"
    genesis_path.write_text(json.dumps(document, indent=2))
    ports = free_port_base(2 * nodes)
    p2p_base, rpc_base = ports, ports + nodes
    plans = plan_nodes(nodes, dev=True, p2p_base=p2p_base, rpc_base=rpc_base)
    for plan in plans:
        base = node_config(plan, plans, listen_all=False)
        rpc_section = base.rpc.model_dump() | ({} if rate_limit else {"rate_limit_per_s": 0.0})
        config = NodeConfig.model_validate(
            base.model_dump()
            | {
                "log_level": "info",
                "consensus": ConsensusSection(max_block_transactions=block_size).model_dump(),
                "mempool": {
                    "max_transactions": 200_000,
                    "max_per_sender": 5_000,
                    "nonce_window": 5_000,
                },
                "rpc": rpc_section,
            }
        )
        write_home(directory / plan.name, plan, config, genesis_path)
    return Cluster(directory, [plan.rpc_url for plan in plans])


def start_cluster(cluster: Cluster) -> None:
    for home in sorted(p for p in cluster.directory.iterdir() if (p / "config.toml").exists()):
        log = (home / "node.log").open("ab")
        cluster.processes.append(
            subprocess.Popen(
                [sys.executable, str(ROOT / "cli.py"), "node", "start", "--home", str(home)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        )


async def wait_ready(session: aiohttp.ClientSession, cluster: Cluster, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while True:
        heights = []
        for url in cluster.rpc_urls:
            try:
                reply = await rpc(session, url, {"jsonrpc": "2.0", "id": 1, "method": "sec_status"})
                heights.append(reply["result"]["height"])
            except (aiohttp.ClientError, KeyError, TypeError):
                heights.append(-1)
        if min(heights) >= 1:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"network not ready after {limit_s:.0f} s (heights {heights})")
        await asyncio.sleep(0.2)


def combine(results: list[PhaseResult]) -> dict[str, Any]:
    """The senders' results of one phase, added up."""
    rejected: dict[str, int] = {}
    for result in results:
        for reason, count in result.rejected.items():
            rejected[reason] = rejected.get(reason, 0) + count
    return {
        "offered": sum(r.offered for r in results),
        "accepted": sum(r.accepted for r in results),
        "rejected": rejected,
        "lag_s": max((r.lag_s for r in results), default=0.0),
        "exhausted": any(r.exhausted for r in results),
    }


async def drain(session: aiohttp.ClientSession, url: str, limit_s: float) -> float:
    """Wait (bounded) until node0's mempool is empty; the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        if (await scrape(session, url)).get("sec_mempool_transactions", 0) == 0:
            break
        await asyncio.sleep(0.2)
    return time.monotonic() - started


async def measure(args: argparse.Namespace, cluster: Cluster) -> dict[str, Any]:
    genesis = load_genesis(cluster.directory / "genesis.json")
    per_account = presigned_total(args) // args.accounts + 1
    plans = [
        SenderPlan(
            index=k,
            senders=args.senders,
            accounts=args.accounts,
            per_account=per_account,
            chain_id=genesis.chain_id,
            genesis_hash=genesis.document_hash(),
            urls=tuple(cluster.rpc_urls),
            cache_dir=None if args.no_tx_cache else Path(args.tx_cache),
            depth=args.depth,
        )
        for k in range(args.senders)
    ]
    print(
        f"{args.senders} senders pre-signing {per_account * args.accounts:,} transfers ...",
        file=sys.stderr,
    )
    generator = LoadGenerator(plans)
    try:
        return await _measure(args, cluster, generator)
    finally:
        generator.stop()


async def _measure(
    args: argparse.Namespace, cluster: Cluster, generator: LoadGenerator
) -> dict[str, Any]:
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await wait_ready(session, cluster, 60)
        print("network ready; measuring V ...", file=sys.stderr)
        v = measure_verify(2000)["pynacl"]
        ready = await generator.ready()
        status = await rpc(
            session, cluster.rpc_urls[0], {"jsonrpc": "2.0", "id": 1, "method": "sec_status"}
        )
        follower = Follower(session, cluster.rpc_urls[0], status["result"]["height"])
        follow_task = asyncio.ensure_future(follower.run())

        print(f"saturation window: {args.duration:.0f} s ...", file=sys.stderr)
        start = time.time() + 0.5
        window = Window(start, start + args.duration)
        pids = [p.pid for p in cluster.processes] + generator.pids
        probe = asyncio.ensure_future(observe_window(session, cluster.rpc_urls, pids, window))
        limit = saturation_limit(args) // args.senders
        rate_per_sender = None if args.rate is None else args.rate / args.senders
        phase = Phase(start, args.duration, rate_per_sender, limit=limit)
        saturation = combine(await generator.run(phase))
        await probe
        height_start, height_end = window.heights()
        follower_lag = height_end - (follower.next_height - 1)
        await follower.wait_for(height_end, 30)
        committed = window.committed()
        seen_in_window = sum(1 for t in follower.committed_at.values() if start <= t <= window.end)
        throughput = committed / args.duration
        busy = window.busy_cores()
        nodes = len(cluster.processes)
        node_cores, sender_cores = busy[:nodes], busy[nodes:-1]
        cpu_per_tx = [c * args.duration / max(committed, 1) * 1e6 for c in node_cores]
        stages = stages_between(window.scrapes_before, window.scrapes_after)
        heights = (height_start + 1, height_end)
        stages["reply"] = summarize_values(follower.reply_seconds(*heights))
        stages["end_to_end"] = summarize_values(follower.end_to_end_seconds(*heights))
        blocks = height_end - height_start
        cores = os.cpu_count() or 1
        figures = WindowFigures(
            cores=cores,
            machine_cores=window.machine_cores(cores),
            node_cores=tuple(node_cores),
            sender_cores=tuple(sender_cores),
            bench_cores=busy[-1],
            offered_tx_per_s=saturation["offered"] / args.duration,
            committed_tx_per_s=throughput,
            mempool_mean=statistics.fmean(window.mempool_samples or [0.0]),
            blocks_per_s=blocks / args.duration,
            mean_block_txs=committed / max(blocks, 1),
            block_size=args.block_size,
            consensus_s_per_block=sum(
                stages[s].mean_ms / 1e3 for s in CONSENSUS_STAGES if s in stages
            ),
            generator_exhausted=saturation["exhausted"],
        )
        bound = classify_bound(figures)
        drained_s = await drain(session, cluster.rpc_urls[0], 30)

        rate = max(throughput / 2, 10.0)
        print(
            f"half-saturation phase: {rate:.0f} tx/s for {args.duration:.0f} s ...", file=sys.stderr
        )
        start = time.time() + 0.2
        results = await generator.run(Phase(start, args.duration, rate / args.senders, record=True))
        latency = combine(results)
        sent_at = {h: t for r in results for h, t in r.sent_at.items()}
        follower.watch = {h for h in sent_at if h not in follower.committed_at}
        follower.all_seen.clear()
        if follower.watch:
            with contextlib.suppress(TimeoutError):  # unseen ones are reported as lost
                await asyncio.wait_for(follower.all_seen.wait(), 15)
        follower.stopped = True
        await follow_task
        seen = follower.committed_at
        latencies = [seen[h] - t for h, t in sent_at.items() if h in seen]
        return {
            "validators": nodes,
            "accounts": args.accounts,
            "block_size": args.block_size,
            "cores": figures.cores,
            "load_average_1m": os.getloadavg()[0],
            "senders": args.senders,
            "presigned": sum(r.transactions for r in ready),
            "presign_s": max(r.seconds for r in ready),
            "presign_from_cache": all(r.from_cache for r in ready),
            "window_s": args.duration,
            "offered_rate_target": args.rate,
            "offered_saturation": saturation["offered"],
            "offered_tx_per_s": figures.offered_tx_per_s,
            "accepted_tx_per_s": saturation["accepted"] / args.duration,
            "committed_tx_per_s": throughput,
            "rejected": saturation["rejected"],
            "generator_exhausted": saturation["exhausted"],
            "blocks": blocks,
            "blocks_per_s": figures.blocks_per_s,
            "mean_block_txs": figures.mean_block_txs,
            "mempool_mean": figures.mempool_mean,
            "follower_lag_blocks": follower_lag,
            "seen_in_window_tx_per_s": seen_in_window / args.duration,
            "node_busy_percent": [c * 100 for c in node_cores],
            "node_busy_percent_sum": sum(node_cores) * 100,
            "loadgen_cpu_percent": [c * 100 for c in sender_cores],
            "bench_cpu_percent": busy[-1] * 100,
            "machine_busy_percent": figures.machine_cores * 100,
            "stages": {name: summary.to_json() for name, summary in stages.items()},
            "consensus_ms_per_block": figures.consensus_s_per_block * 1e3,
            "bound": bound.to_json(),
            "drain_s": drained_s,
            "finality_rate_tx_per_s": rate,
            "finality_offered_tx_per_s": latency["offered"] / args.duration,
            "finality_lag_s": latency["lag_s"],
            "finality_rejected": latency["rejected"],
            "finality_p50_ms": percentile(latencies, 0.50) * 1e3,
            "finality_p95_ms": percentile(latencies, 0.95) * 1e3,
            "finality_p99_ms": percentile(latencies, 0.99) * 1e3,
            "finality_samples": len(latencies),
            "finality_lost": len(sent_at) - len(latencies),
            "verify_us": v * 1e6,
            "cpu_us_per_tx_per_node": cpu_per_tx,
            "cpu_us_per_tx_mean": statistics.mean(cpu_per_tx),
            "R": statistics.mean(cpu_per_tx) / (v * 1e6),
        }


def saturation_limit(args: argparse.Namespace) -> int:
    """Transactions the saturation window may offer: --max-rate for the window, plus 20 %."""
    return int(args.max_rate * args.duration * 1.2)


def presigned_total(args: argparse.Namespace) -> int:
    """The saturation limit plus half of it for the half-saturation phase."""
    return saturation_limit(args) * 3 // 2


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sec-bench"


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser("sec bench cluster", __doc__)
    parser.add_argument("--nodes", type=int, default=4, help="validators (default 4)")
    parser.add_argument("--accounts", type=int, default=500, help="sending accounts (500)")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per phase (15)")
    parser.add_argument(
        "--max-rate", type=float, default=4000.0, help="upper bound of tx/s to pre-sign for (4000)"
    )
    parser.add_argument("--block-size", type=int, default=2000, help="max txs per block (2000)")
    parser.add_argument(
        "--senders", type=int, default=2, help="load generator processes (default 2)"
    )
    parser.add_argument(
        "--depth", type=int, default=2, help="batches in flight per node and sender (2)"
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="offer open-loop at this many tx/s in the saturation window (default: closed loop)",
    )
    parser.add_argument(
        "--tx-cache",
        metavar="DIR",
        default=str(default_cache()),
        help="signed transactions cached here (default $XDG_CACHE_HOME/sec-bench)",
    )
    parser.add_argument("--no-tx-cache", action="store_true", help="sign afresh, cache nothing")
    parser.add_argument(
        "--json",
        metavar="FILE",
        default="bench-cluster.json",
        help="write the report here too (default bench-cluster.json)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the network directory")
    args = parser.parse_args(argv)
    if args.senders < 1 or args.depth < 1 or args.accounts < args.senders:
        parser.error("--senders and --depth must be >= 1, and --accounts >= --senders")
    if args.rate is not None and args.rate <= 0:
        parser.error("--rate must be positive")
    directory = Path(tempfile.mkdtemp(prefix="sec-bench-cluster-"))
    cluster = create_cluster(
        directory, args.nodes, args.accounts, args.block_size, rate_limit=False
    )
    print(f"starting {args.nodes} validators in {directory} ...", file=sys.stderr)
    start_cluster(cluster)
    try:
        report = asyncio.run(measure(args, cluster))
    finally:
        cluster.stop()
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
    print(render(report))
    write_report(args.json, report, announce=True)
    return 0
