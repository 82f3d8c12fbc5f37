"""`sec bench` (cluster): a local 4-validator network under load, measured from outside.

1. Creates a throw-away network in a temp directory: the development genesis plus
   `--accounts` funded bench accounts (keys from public labels), nodes on free ports, and starts
   the validators as separate processes (`sec node start`).
2. Measures V, one Ed25519 verify (PyNaCl), in this process.
3. Pre-signs `credit.transfer`s round-robin over the bench accounts.
4. Saturation phase: offers transactions as fast as the nodes admit them, in JSON-RPC batches,
   round-robin to all nodes, and counts what commits during the window.
5. Half-saturation phase: offers transactions open-loop at half the measured throughput and
   records each transaction's time to finality (submit -> seen in a committed block).
6. Reports committed tx/s, finality p50/p95/p99, per-node CPU microseconds per committed
   transaction (from /proc/PID/stat) and R = CPU per transaction / V; writes the report as JSON.

Commit times come from a follower that reads each new block from node0 as soon as it exists
(the follower asks for the next height and retries after 5 ms while it is not there yet).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
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
from ledger.keys import PrivateKey
from ledger.transactions import SignedTransaction, Transfer, sign_transaction
from secnode.bench import bench_parser, write_report
from secnode.bench.ledger import measure_verify
from secnode.network.devnet import dev_genesis_document
from secnode.network.home import node_config, plan_nodes, write_home
from secnode.runtime.config import ConsensusSection, NodeConfig

ROOT = Path(__file__).resolve().parents[2]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
BATCH = 100


def free_port_base(count: int) -> int:
    """A base port such that base..base+count-1 were free a moment ago."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + count >= 65535:
            continue
        try:
            sockets = []
            for offset in range(count):
                s = socket.socket()
                s.bind(("127.0.0.1", base + offset))
                sockets.append(s)
        except OSError:
            continue
        finally:
            for s in locals().get("sockets", []):
                s.close()
        return base
    raise RuntimeError("no free port range found")


def bench_key(index: int) -> PrivateKey:
    return PrivateKey.from_label(f"bench:{index}")


@dataclass
class Cluster:
    directory: Path
    rpc_urls: list[str]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def cpu_seconds(self) -> list[float]:
        out = []
        for process in self.processes:
            fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            out.append((int(fields[11]) + int(fields[12])) / CLOCK_TICKS)
        return out

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


def create_cluster(directory: Path, nodes: int, accounts: int, block_size: int) -> Cluster:
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
    p2p_base, rpc_base = free_port_base(nodes), free_port_base(nodes)
    plans = plan_nodes(nodes, dev=True, p2p_base=p2p_base, rpc_base=rpc_base)
    for plan in plans:
        base = node_config(plan, plans, listen_all=False)
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


async def rpc(session: aiohttp.ClientSession, url: str, payload: Any) -> Any:
    async with session.post(url + "/rpc", json=payload) as response:
        return await response.json(content_type=None)


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


class Follower:
    """Records when each transaction hash is first seen in a committed block of node0."""

    def __init__(self, session: aiohttp.ClientSession, url: str, start_height: int) -> None:
        self.session, self.url = session, url
        self.next_height = start_height + 1
        self.committed_at: dict[str, float] = {}
        self.blocks: list[tuple[int, float, int]] = []
        self.stopped = False
        self.watch: set[str] = set()
        self.all_seen = asyncio.Event()

    async def run(self) -> None:
        while not self.stopped:
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
                await asyncio.sleep(0.005)
                continue
            now = time.monotonic()
            hashes = reply["result"]["tx_hashes"]
            for tx_hash in hashes:
                self.committed_at.setdefault(tx_hash, now)
            self.watch.difference_update(hashes)
            if not self.watch:
                self.all_seen.set()
            self.blocks.append((self.next_height, now, len(hashes)))
            self.next_height += 1


async def offer(
    session: aiohttp.ClientSession,
    urls: list[str],
    txs: list[SignedTransaction],
    submitted_at: dict[str, float],
    rate: float | None,
    duration: float,
    rejected: dict[str, int],
) -> int:
    """Send batches round-robin; at `rate` tx/s (open loop) or as fast as admitted."""
    started = time.monotonic()
    sent = 0
    batch_index = 0
    in_flight: set[asyncio.Task[Any]] = set()

    def tally(task: asyncio.Task[Any]) -> None:
        in_flight.discard(task)
        if task.cancelled() or task.exception() is not None:
            rejected["transport"] = rejected.get("transport", 0) + BATCH
            return
        for reply in task.result():
            error = reply.get("error")
            if error is not None:
                reason = str((error.get("data") or {}).get("reason", error.get("message")))
                rejected[reason] = rejected.get(reason, 0) + 1

    while sent < len(txs) and time.monotonic() - started < duration:
        if rate is not None:
            due = started + sent / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        batch = txs[sent : sent + BATCH]
        url = urls[batch_index % len(urls)]
        batch_index += 1
        payload = [
            {
                "jsonrpc": "2.0",
                "id": i,
                "method": "sec_sendTransaction",
                "params": {"tx": tx.encoded.hex()},
            }
            for i, tx in enumerate(batch)
        ]
        now = time.monotonic()
        for tx in batch:
            submitted_at[tx.hash.hex()] = now
        task = asyncio.ensure_future(rpc(session, url, payload))
        in_flight.add(task)
        task.add_done_callback(tally)
        sent += len(batch)
        if rate is None and len(in_flight) >= 2 * len(urls):
            await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
    if in_flight:
        await asyncio.wait(in_flight)
    return sent


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(int(fraction * len(ordered)), len(ordered) - 1)]


async def measure(args: argparse.Namespace, cluster: Cluster) -> dict[str, Any]:
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await wait_ready(session, cluster, 60)
        print("network ready; measuring V ...", file=sys.stderr)
        v = measure_verify(2000)["pynacl"]
        total = int(args.max_rate * (args.duration + args.duration) * 1.2)
        per_account = total // args.accounts + 1
        print(f"pre-signing {per_account * args.accounts:,} transfers ...", file=sys.stderr)
        genesis = load_genesis(cluster.directory / "genesis.json")
        txs = [
            sign_transaction(
                bench_key(i),
                genesis.chain_id,
                n,
                Transfer(bench_key((i + 1) % args.accounts).address, 1),
                genesis_hash=genesis.document_hash(),
            )
            for n in range(per_account)
            for i in range(args.accounts)
        ]
        status = await rpc(
            session, cluster.rpc_urls[0], {"jsonrpc": "2.0", "id": 1, "method": "sec_status"}
        )
        follower = Follower(session, cluster.rpc_urls[0], status["result"]["height"])
        follow_task = asyncio.ensure_future(follower.run())
        submitted: dict[str, float] = {}

        print(f"saturation phase: {args.duration:.0f} s ...", file=sys.stderr)
        cpu_before = cluster.cpu_seconds()
        window_start = time.monotonic()
        saturation_txs = txs
        rejected: dict[str, int] = {}
        sent = await offer(
            session, cluster.rpc_urls, saturation_txs, submitted, None, args.duration, rejected
        )
        window_end = time.monotonic()
        cpu_after = cluster.cpu_seconds()
        committed_in_window = sum(
            1 for h, t in follower.committed_at.items() if window_start <= t <= window_end
        )
        throughput = committed_in_window / (window_end - window_start)
        cpu_per_tx = [
            (after - before) / max(committed_in_window, 1) * 1e6
            for before, after in zip(cpu_before, cpu_after, strict=True)
        ]
        # drain what is left before the latency phase
        await asyncio.sleep(3)

        rate = max(throughput / 2, 10.0)
        print(
            f"half-saturation phase: {rate:.0f} tx/s for {args.duration:.0f} s ...", file=sys.stderr
        )
        latency_txs = txs[sent:]  # nonces continue right after what was offered
        latency_submitted: dict[str, float] = {}
        await offer(
            session, cluster.rpc_urls, latency_txs, latency_submitted, rate, args.duration, rejected
        )
        follower.watch = {h for h in latency_submitted if h not in follower.committed_at}
        follower.all_seen.clear()
        if follower.watch:
            with contextlib.suppress(TimeoutError):  # unseen ones are reported as lost
                await asyncio.wait_for(follower.all_seen.wait(), 15)
        follower.stopped = True
        await follow_task
        latencies = [
            follower.committed_at[h] - t
            for h, t in latency_submitted.items()
            if h in follower.committed_at
        ]
        return {
            "validators": len(cluster.rpc_urls),
            "accounts": args.accounts,
            "block_size": args.block_size,
            "offered_saturation": sent,
            "rejected": rejected,
            "committed_tx_per_s": throughput,
            "finality_rate_tx_per_s": rate,
            "finality_p50_ms": percentile(latencies, 0.50) * 1e3,
            "finality_p95_ms": percentile(latencies, 0.95) * 1e3,
            "finality_p99_ms": percentile(latencies, 0.99) * 1e3,
            "finality_samples": len(latencies),
            "finality_lost": len(latency_submitted) - len(latencies),
            "verify_us": v * 1e6,
            "cpu_us_per_tx_per_node": cpu_per_tx,
            "cpu_us_per_tx_mean": statistics.mean(cpu_per_tx),
            "R": statistics.mean(cpu_per_tx) / (v * 1e6),
        }


def render(report: dict[str, Any]) -> str:
    per_node = ", ".join(f"{c:.0f}" for c in report["cpu_us_per_tx_per_node"])
    return "\n".join(
        [
            f"cluster benchmark: {report['validators']} validators, "
            f"{report['accounts']} sending accounts, blocks up to {report['block_size']} txs",
            f"  committed throughput at saturation   {report['committed_tx_per_s']:8.0f} tx/s"
            f"   (goal >= 2500)",
            f"  finality at {report['finality_rate_tx_per_s']:.0f} tx/s (half saturation): "
            f"p50 {report['finality_p50_ms']:.0f} ms, p95 {report['finality_p95_ms']:.0f} ms, "
            f"p99 {report['finality_p99_ms']:.0f} ms   (goal p50 <= 100, p99 <= 500)"
            f"   [{report['finality_samples']} samples, {report['finality_lost']} not seen]",
            f"  CPU per committed tx, per node       {per_node} us",
            f"  V (Ed25519 verify, PyNaCl)           {report['verify_us']:8.1f} us",
            f"  R = CPU per tx / V                   {report['R']:8.2f}   (goal <= 2.0)",
            f"  offered at saturation {report['offered_saturation']}, "
            f"rejected {report['rejected']}",
        ]
    )


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
        "--json",
        metavar="FILE",
        default="bench-cluster.json",
        help="write the report here too (default bench-cluster.json)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the network directory")
    args = parser.parse_args(argv)
    directory = Path(tempfile.mkdtemp(prefix="sec-bench-cluster-"))
    cluster = create_cluster(directory, args.nodes, args.accounts, args.block_size)
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
