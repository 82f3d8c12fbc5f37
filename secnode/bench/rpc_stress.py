"""`sec bench rpc`: does a hostile RPC client slow consensus? Commit latency, quiet vs hammered.

1. Starts a throw-away 4-validator network (secnode.bench.cluster machinery) and fills it: big
   blocks of transfers (about `--block-txs` each) and `--orders` orders of one merchant.
2. Quiet windows: an honest client offers transfers open-loop at `--rate` tx/s to the last
   node and records each one's commit latency (submit -> seen in a committed block of it).
3. Hostile windows, as long, same honest load, alternating with the quiet ones (`--rounds`):
   meanwhile `--hostile` connections per target hammer node0 and node1 (the view-0 primary and
   one more, so every quorum includes a hammered node) flat out with the worst calls: batches
   of sec_getBlock full=true on the big blocks (also 100-call batches that only the cost
   budget stops), sec_getTransaction batches, deep sec_listOrders pages, and state proofs
   (sec_getAccount / sec_getOrder with prove=true). The hostile client runs in its own
   process and connects from 127.0.0.2, so its rate limit is its own, as a remote attacker's
   would be; the honest client uses 127.0.0.1.
4. Prints commit latency p50/p90/p99 of both kinds of window and the ratio of the p99s
   (target <= 2), the hostile replies by outcome, and view changes; writes the report as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import multiprocessing
import queue
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from contracts.orders import OrderCreate, OrderItem
from ledger.genesis import load_genesis
from ledger.keys import format_address
from ledger.transactions import SignedTransaction, Transfer, sign_transaction
from secnode.bench import bench_parser, write_report
from secnode.bench.cluster import (
    Cluster,
    create_cluster,
    start_cluster,
    wait_ready,
)
from secnode.bench.loadgen import bench_key
from secnode.bench.observe import rpc
from secnode.bench.stages import percentile
from secnode.network import devnet

HOSTILE_ADDRESS = "127.0.0.2"


@dataclass(frozen=True)
class Network:
    """What every signature of this bench binds: the cluster's chain id and genesis hash."""

    chain_id: str
    genesis_hash: bytes

    @classmethod
    def of(cls, cluster: Cluster) -> Network:
        genesis = load_genesis(cluster.directory / "genesis.json")
        return cls(genesis.chain_id, genesis.document_hash())


def _call(method: str, params: dict[str, Any], request_id: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


async def _send_all(session: aiohttp.ClientSession, url: str, txs: list[SignedTransaction]) -> None:
    batches = [
        [
            _call("sec_sendTransaction", {"tx": tx.encoded.hex()}, i)
            for i, tx in enumerate(txs[start : start + 100])
        ]
        for start in range(0, len(txs), 100)
    ]
    # all at once, so the primary finds them together and proposes big blocks
    await asyncio.gather(*(rpc(session, url, batch) for batch in batches))


async def _wait_committed(
    session: aiohttp.ClientSession, url: str, tx: SignedTransaction, limit_s: float
) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        reply = await rpc(session, url, _call("sec_getTransaction", {"hash": tx.hash.hex()}))
        if reply.get("result", {}).get("status") == "committed":
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"transaction {tx.hash.hex()} not committed within {limit_s:.0f} s")


async def _wait_mempool(
    session: aiohttp.ClientSession, urls: list[str], count: int, limit_s: float
) -> None:
    """Wait until every node holds at least `count` pending transactions (gossip is done)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        sizes = [
            (await rpc(session, url, _call("sec_status", {})))["result"]["mempool_size"]
            for url in urls
        ]
        if min(sizes) >= count:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"mempools did not reach {count} transactions within {limit_s:.0f} s")


class Targets:
    """What the hostile client asks for: big blocks, committed hashes, orders, accounts."""

    def __init__(self) -> None:
        self.big_heights: list[int] = []
        self.tx_hashes: list[str] = []
        self.order_ids: list[str] = []
        self.accounts: list[str] = []
        self.merchant = format_address(devnet.dev_account_key("merchant1").address)
        self.biggest = 0


async def fill(
    session: aiohttp.ClientSession, cluster: Cluster, args: argparse.Namespace
) -> tuple[Targets, int]:
    """Commit big transfer blocks and the merchant's orders; return targets and next nonces."""
    url = cluster.rpc_urls[-1]
    network = Network.of(cluster)
    targets = Targets()
    accounts = args.accounts
    rounds = max(1, args.block_txs // accounts)
    for block in range(args.big_blocks):
        txs = [
            sign_transaction(
                bench_key(i),
                network.chain_id,
                block * rounds + n,
                Transfer(bench_key((i + 1) % accounts).address, 1),
                genesis_hash=network.genesis_hash,
            )
            for n in range(rounds)
            for i in range(accounts)
        ]
        # Every account's first transaction last: until it arrives nothing is ready, then
        # all of them are, and the primary proposes them as one big block.
        await _send_all(session, url, txs[accounts:])
        await _wait_mempool(session, cluster.rpc_urls, len(txs) - accounts, 60)
        await _send_all(session, url, txs[:accounts])
        await _wait_committed(session, url, txs[-1], 60)
    buyer, arbiter = (
        devnet.dev_account_key("buyer1").address,
        devnet.dev_account_key("arbiter").address,
    )
    orders = [
        sign_transaction(
            devnet.dev_account_key("merchant1"),
            network.chain_id,
            n,
            OrderCreate(buyer, (OrderItem("tea", 1, 100 + n),), 500, arbiter, None, None),
            genesis_hash=network.genesis_hash,
        )
        for n in range(args.orders)
    ]
    await _send_all(session, url, orders)
    if orders:
        await _wait_committed(session, url, orders[-1], 60)
    targets.order_ids = sorted(tx.hash.hex() for tx in orders)
    status = await rpc(session, url, _call("sec_status", {}))
    sizes: list[tuple[int, int, list[str]]] = []
    for height in range(1, status["result"]["height"] + 1):
        reply = await rpc(session, url, _call("sec_getBlock", {"height": height}))
        sizes.append((reply["result"]["tx_count"], height, reply["result"]["tx_hashes"]))
    for _, height, hashes in sorted(sizes, reverse=True)[: args.big_blocks]:
        targets.big_heights.append(height)
        targets.tx_hashes.extend(hashes)
    targets.biggest = max(sizes)[0]
    targets.accounts = [format_address(bench_key(i).address) for i in range(accounts)]
    return targets, args.big_blocks * rounds


def hostile_batch(targets: Targets, rng: random.Random) -> list[dict[str, Any]]:
    """One of the worst batches a client may send (most pass the budget; one kind does not)."""
    kind = rng.randrange(5)
    if kind == 0:  # as many full big blocks as the cost budget lets through
        return [
            _call("sec_getBlock", {"height": rng.choice(targets.big_heights), "full": True}, i)
            for i in range(4)
        ]
    if kind == 1:  # the 84 MB batch of the finding: refused by the cost budget, unbuilt
        return [
            _call("sec_getBlock", {"height": rng.choice(targets.big_heights), "full": True}, i)
            for i in range(100)
        ]
    if kind == 2:
        return [
            _call("sec_getTransaction", {"hash": rng.choice(targets.tx_hashes)}, i)
            for i in range(100)
        ]
    if kind == 3:  # deep pages
        return [
            _call(
                "sec_listOrders",
                {
                    "party": targets.merchant,
                    "limit": 100,
                    "cursor": rng.choice(targets.order_ids) if targets.order_ids else None,
                },
                i,
            )
            for i in range(9)
        ]
    calls = []
    for i in range(80):
        if i % 2 or not targets.order_ids:
            params = {"address": rng.choice(targets.accounts), "prove": True}
            calls.append(_call("sec_getAccount", params, i))
        else:
            params = {"order_id": rng.choice(targets.order_ids), "prove": True}
            calls.append(_call("sec_getOrder", params, i))
    return calls


async def hammer(url: str, targets: Targets, seed: int, stop: Any, tally: dict[str, int]) -> None:
    """One hostile connection: send the next batch as soon as the last one is answered.

    Replies are tallied by searching the bytes, not parsed: an attacker does not read them,
    and parsing megabytes here would take CPU from the nodes and the honest client."""
    rng = random.Random(seed)
    connector = aiohttp.TCPConnector(local_addr=(HOSTILE_ADDRESS, 0), limit=1)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        while not stop.is_set():
            try:
                async with session.post(url + "/rpc", json=hostile_batch(targets, rng)) as reply:
                    body = await reply.read()
                    status = reply.status
                    retry_after = float(reply.headers.get("Retry-After", "1"))
            except (aiohttp.ClientError, TimeoutError):
                tally["transport_error"] = tally.get("transport_error", 0) + 1
                await asyncio.sleep(0.1)
                continue
            tally["reply_bytes"] = tally.get("reply_bytes", 0) + len(body)
            if status == 429:
                tally["rate_limited"] = tally.get("rate_limited", 0) + 1
                await asyncio.sleep(retry_after / 10)  # hostile: back well before it may
                continue
            for outcome, marker in (("ok", b'"result":'), ("over_budget", b'"code":-32005')):
                tally[outcome] = tally.get(outcome, 0) + body.count(marker)


async def _hammer_all(
    urls: list[str], targets: Targets, connections: int, stop: Any
) -> dict[str, int]:
    tally: dict[str, int] = {}
    await asyncio.gather(
        *(hammer(url, targets, seed, stop, tally) for seed, url in enumerate(urls * connections))
    )
    return tally


def hostile_process(
    urls: list[str], targets: Targets, connections: int, stop: Any, results: Any
) -> None:
    """The hostile client, in its own process so the honest client's timing is its own."""
    results.put(asyncio.run(_hammer_all(urls, targets, connections, stop)))


async def latency_phase(
    session: aiohttp.ClientSession,
    url: str,
    txs: list[SignedTransaction],
    rate: float,
) -> list[float]:
    """Offer `txs` one by one at `rate` tx/s; commit latency of each (seconds)."""
    status = await rpc(session, url, _call("sec_status", {}))
    next_height = status["result"]["height"] + 1
    submitted: dict[str, float] = {}
    committed: dict[str, float] = {}
    done = asyncio.Event()

    async def follow() -> None:
        nonlocal next_height
        while not done.is_set():
            reply = await rpc(session, url, _call("sec_getBlock", {"height": next_height}))
            if "result" not in reply:
                await asyncio.sleep(0.005)
                continue
            now = time.monotonic()
            for tx_hash in reply["result"]["tx_hashes"]:
                committed.setdefault(tx_hash, now)
            next_height += 1
            if submitted and len(submitted) == len(txs) and submitted.keys() <= committed.keys():
                done.set()

    follower = asyncio.ensure_future(follow())
    started = time.monotonic()
    pending: set[asyncio.Task[Any]] = set()
    for n, tx in enumerate(txs):
        delay = started + n / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        submitted[tx.hash.hex()] = time.monotonic()
        task = asyncio.ensure_future(
            rpc(session, url, _call("sec_sendTransaction", {"tx": tx.encoded.hex()}))
        )
        pending.add(task)
        task.add_done_callback(_forget)
    if pending:
        await asyncio.wait(pending)  # a failed send is a transaction never seen (counted lost)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), 30)
    done.set()
    await follower
    return [committed[h] - t for h, t in submitted.items() if h in committed]


def _forget(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: the transaction shows up as not seen


def _transfers(
    network: Network, first_nonce: int, count: int, accounts: int
) -> list[SignedTransaction]:
    return [
        sign_transaction(
            bench_key(n % accounts),
            network.chain_id,
            first_nonce + n // accounts,
            Transfer(bench_key((n + 1) % accounts).address, 1),
            genesis_hash=network.genesis_hash,
        )
        for n in range(count)
    ]


async def hostile_window(
    session: aiohttp.ClientSession,
    cluster: Cluster,
    targets: Targets,
    args: argparse.Namespace,
    txs: list[SignedTransaction],
    tally: dict[str, int],
) -> list[float]:
    """A latency phase while the hostile process hammers node0 and node1."""
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    results = context.Queue()
    attacker = context.Process(
        target=hostile_process,
        args=(cluster.rpc_urls[:2], targets, args.hostile, stop, results),
        daemon=True,
    )
    attacker.start()
    try:
        return await latency_phase(session, cluster.rpc_urls[-1], txs, args.rate)
    finally:
        stop.set()
        try:
            counts: dict[str, int] = await asyncio.to_thread(results.get, True, 60)
        except queue.Empty:
            counts = {"attacker_lost": 1}
        attacker.join(10)
        if attacker.is_alive():
            attacker.kill()
        for outcome, count in counts.items():
            tally[outcome] = tally.get(outcome, 0) + count


async def measure(args: argparse.Namespace, cluster: Cluster) -> dict[str, Any]:
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await wait_ready(session, cluster, 60)
        print("network ready; filling big blocks and orders ...", file=sys.stderr)
        targets, nonce = await fill(session, cluster, args)
        honest_url = cluster.rpc_urls[-1]
        window = args.duration / args.rounds
        rounds_per_window = int(args.rate * window) // args.accounts + 1
        quiet: list[float] = []
        hostile: list[float] = []
        offered = {"quiet": 0, "hostile": 0}
        view_changes = {"quiet": 0, "hostile": 0}
        tally: dict[str, int] = {}
        # Quiet and hostile windows alternate, so a drift of the machine's background load
        # affects both alike.
        for round_index in range(args.rounds):
            for kind in ("quiet", "hostile"):
                txs = _transfers(
                    Network.of(cluster), nonce, rounds_per_window * args.accounts, args.accounts
                )
                nonce += rounds_per_window
                offered[kind] += len(txs)
                print(
                    f"round {round_index + 1}/{args.rounds}: {kind} window, {args.rate:.0f} "
                    f"tx/s for {window:.0f} s ...",
                    file=sys.stderr,
                )
                before = await rpc(session, honest_url, _call("sec_status", {}))
                if kind == "quiet":
                    quiet += await latency_phase(session, honest_url, txs, args.rate)
                else:
                    hostile += await hostile_window(session, cluster, targets, args, txs, tally)
                after = await rpc(session, honest_url, _call("sec_status", {}))
                view_changes[kind] += (
                    after["result"]["view_changes"] - before["result"]["view_changes"]
                )
    # A transaction never seen committed counts as infinitely late, so losing them cannot
    # flatter the percentiles.
    quiet_seen, hostile_seen = len(quiet), len(hostile)
    quiet += [math.inf] * (offered["quiet"] - quiet_seen)
    hostile += [math.inf] * (offered["hostile"] - hostile_seen)
    quiet_p99 = percentile(quiet, 0.99)
    hostile_p99 = percentile(hostile, 0.99)
    return {
        "validators": len(cluster.rpc_urls),
        "rate_tx_per_s": args.rate,
        "duration_s": args.duration,
        "rounds": args.rounds,
        "big_blocks": targets.big_heights,
        "biggest_block_txs": targets.biggest,
        "orders": len(targets.order_ids),
        "quiet_p50_ms": percentile(quiet, 0.50) * 1e3,
        "quiet_p90_ms": percentile(quiet, 0.90) * 1e3,
        "quiet_p99_ms": quiet_p99 * 1e3,
        "quiet_samples": quiet_seen,
        "quiet_lost": offered["quiet"] - quiet_seen,
        "hostile_p50_ms": percentile(hostile, 0.50) * 1e3,
        "hostile_p90_ms": percentile(hostile, 0.90) * 1e3,
        "hostile_p99_ms": hostile_p99 * 1e3,
        "hostile_samples": hostile_seen,
        "hostile_lost": offered["hostile"] - hostile_seen,
        "p99_ratio": hostile_p99 / quiet_p99 if 0 < quiet_p99 < math.inf else math.nan,
        "hostile_outcomes": tally,
        "view_changes_quiet": view_changes["quiet"],
        "view_changes_hostile": view_changes["hostile"],
    }


def render(report: dict[str, Any]) -> str:
    outcomes = dict(report["hostile_outcomes"])
    reply_mb = outcomes.pop("reply_bytes", 0) / 1e6
    return "\n".join(
        [
            f"rpc stress benchmark: {report['validators']} validators, honest load "
            f"{report['rate_tx_per_s']:.0f} tx/s, {report['duration_s']:.0f} s quiet and "
            f"{report['duration_s']:.0f} s hostile in {report['rounds']} alternating rounds; "
            f"hostile reads of blocks up to {report['biggest_block_txs']} txs",
            f"  commit latency quiet     p50 {report['quiet_p50_ms']:7.0f} ms   "
            f"p90 {report['quiet_p90_ms']:7.0f} ms   "
            f"p99 {report['quiet_p99_ms']:7.0f} ms   [{report['quiet_samples']} samples, "
            f"{report['quiet_lost']} not seen]",
            f"  commit latency hostile   p50 {report['hostile_p50_ms']:7.0f} ms   "
            f"p90 {report['hostile_p90_ms']:7.0f} ms   "
            f"p99 {report['hostile_p99_ms']:7.0f} ms   [{report['hostile_samples']} samples, "
            f"{report['hostile_lost']} not seen]",
            f"  p99 hostile / quiet      {report['p99_ratio']:7.2f}   (target <= 2.0)",
            f"  view changes             quiet {report['view_changes_quiet']}, "
            f"hostile {report['view_changes_hostile']}",
            f"  hostile replies          {outcomes}  ({reply_mb:.0f} MB received)",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser("sec bench rpc", __doc__)
    parser.add_argument("--rate", type=float, default=10.0, help="honest tx/s (10)")
    parser.add_argument(
        "--duration", type=float, default=30.0, help="seconds quiet and seconds hostile (30)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating windows (3)")
    parser.add_argument("--hostile", type=int, default=4, help="hostile connections per node (4)")
    parser.add_argument("--accounts", type=int, default=100, help="sending accounts (100)")
    parser.add_argument("--block-txs", type=int, default=1000, help="txs per big block (1000)")
    parser.add_argument("--big-blocks", type=int, default=3, help="big blocks to fill (3)")
    parser.add_argument("--orders", type=int, default=300, help="orders of merchant1 (300)")
    parser.add_argument(
        "--json", metavar="FILE", default="bench-rpc.json", help="report file (bench-rpc.json)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the network directory")
    args = parser.parse_args(argv)
    directory = Path(tempfile.mkdtemp(prefix="sec-bench-rpc-"))
    cluster = create_cluster(directory, 4, args.accounts, max(args.block_txs, 2000))
    print(f"starting 4 validators in {directory} ...", file=sys.stderr)
    start_cluster(cluster)
    try:
        report = asyncio.run(measure(args, cluster))
    finally:
        cluster.stop()
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
    print(render(report))
    finite = {
        k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in report.items()
    }  # JSON has no Infinity: unseen is null
    write_report(args.json, finite, announce=True)
    return 0
