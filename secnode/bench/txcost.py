"""`sec bench txcost`: a node's CPU per transaction, stage by stage, in one process.

Two real nodes of the bench network (`secnode.bench.cluster.create_cluster`, real LevelDB, no
sockets) take the same pre-signed transfers: node A by JSON-RPC batches of 100
`sec_sendTransaction` (its dispatcher, as the load generator sends them), node B by its gossip
handler. A then proposes blocks, B validates them, both commit. Each stage is timed in thread
CPU time, so other processes on the machine inflate it far less than wall time; each run opens
fresh nodes and the best of `--runs` is kept. V is one PyNaCl verify, timed the same way.

A replica's CPU per transaction is estimated as 1/4 of the RPC path plus 3/4 of the gossip path
(the cluster bench sends to the four nodes round-robin) plus validation and commit; R_stages is
that over V. What this leaves out (p2p framing and encryption, consensus messages, the event
loop, HTTP) is what `sec bench cluster` adds. The head hash printed is the same for every
version of the code that produces the same blocks (fixed block times): a check that an
optimisation changed no block, receipt or state root.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ledger.certificates import CommitCertificate
from ledger.genesis import load_genesis
from ledger.keys import PublicKey, verify_signature
from ledger.transactions import SignedTransaction, Transfer, sign_transaction
from secnode.bench import bench_parser, write_report
from secnode.bench.cluster import create_cluster
from secnode.bench.loadgen import bench_key
from secnode.runtime.node import Node
from secnode.runtime.rpc.budget import Worker
from secnode.runtime.rpc.jsonrpc import Dispatcher, Limits
from secnode.runtime.rpc.methods import method_table

ACCOUNTS = 500
FIRST_BLOCK_TIME_S = 2_000_000_000.0
"""Block times are fixed (one second apart from here) so that the blocks are reproducible."""


def verify_cpu_us(tx: SignedTransaction, genesis_hash: bytes) -> float:
    """V: the best of five rounds of 400 PyNaCl verifies, in thread CPU microseconds."""
    message = tx.signing_bytes(genesis_hash)
    best = float("inf")
    for _ in range(5):
        started = time.thread_time()
        for _ in range(400):
            verify_signature(tx.sender, message, tx.signature)
        best = min(best, (time.thread_time() - started) / 400 * 1e6)
    return best


def _rpc_bodies(txs: list[SignedTransaction]) -> list[bytes]:
    return [
        json.dumps(
            [
                {
                    "jsonrpc": "2.0",
                    "id": index,
                    "method": "sec_sendTransaction",
                    "params": {"tx": tx.encoded.hex()},
                }
                for index, tx in enumerate(txs[start : start + 100])
            ]
        ).encode()
        for start in range(0, len(txs), 100)
    ]


async def run_once(count: int, block_size: int) -> tuple[dict[str, float], float, str]:
    """Seconds of thread CPU per stage for `count` transfers, V in us, and the head hash."""
    directory = Path(tempfile.mkdtemp(prefix="sec-bench-txcost-"))
    try:
        create_cluster(directory, 4, ACCOUNTS, block_size)
        genesis = load_genesis(directory / "genesis.json")
        txs = [
            sign_transaction(
                bench_key(index),
                genesis.chain_id,
                nonce,
                Transfer(bench_key((index + 1) % ACCOUNTS).address, 1),
                genesis_hash=genesis.document_hash(),
            )
            for nonce in range(count // ACCOUNTS + 1)
            for index in range(ACCOUNTS)
        ][:count]
        primary, replica = Node.open(directory / "node0"), Node.open(directory / "node1")
        try:
            return await _measure(primary, replica, txs), *_closing(primary, replica, txs)
        finally:
            primary.store.close()
            replica.store.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _closing(primary: Node, replica: Node, txs: list[SignedTransaction]) -> tuple[float, str]:
    if primary.app.head.hash() != replica.app.head.hash():
        raise RuntimeError("the two nodes disagree on the head block")
    return verify_cpu_us(txs[0], primary.genesis.document_hash()), primary.app.head.hash().hex()


async def _measure(primary: Node, replica: Node, txs: list[SignedTransaction]) -> dict[str, float]:
    figures: dict[str, float] = {}
    dispatcher = Dispatcher(method_table(primary, 10_000, Worker()), Limits(max_request_cost=10**9))
    bodies = _rpc_bodies(txs)
    started = time.thread_time()
    for body in bodies:
        reply = await dispatcher.respond(body, None)
        if reply.body is None or b'"error"' in reply.body:
            raise RuntimeError(f"the RPC path refused a transaction: {reply.body!r:.300}")
    figures["rpc_admit"] = time.thread_time() - started
    peer = PublicKey(bytes(32))
    started = time.thread_time()
    for tx in txs:
        if not replica._on_gossiped_transaction(peer, tx.encoded):
            raise RuntimeError("the gossip path refused a transaction")
    figures["gossip_admit"] = time.thread_time() - started
    totals = dict.fromkeys(("build", "validate", "commit_primary", "commit_replica"), 0.0)
    seq = 1
    while len(primary.mempool):
        now = FIRST_BLOCK_TIME_S + seq
        marks = [time.thread_time()]
        proposal = primary.app.make_proposal(seq, primary.app.head.hash(), now, required=True)
        marks.append(time.thread_time())
        if proposal is None:
            raise RuntimeError("the primary proposed nothing with a full mempool")
        replica.app.validate_proposal(proposal, now, fresh=True)
        marks.append(time.thread_time())
        certificate = CommitCertificate(seq, proposal.digest, ())
        primary.app.commit(seq, proposal.digest, proposal.payload, certificate)
        marks.append(time.thread_time())
        replica.app.commit(seq, proposal.digest, proposal.payload, certificate)
        marks.append(time.thread_time())
        for name, before, after in zip(totals, marks, marks[1:], strict=False):
            totals[name] += after - before
        seq += 1
    return figures | totals


def summarize(figures: dict[str, float], count: int, v_us: float, head: str) -> dict[str, Any]:
    per_tx = {name: seconds / count * 1e6 for name, seconds in figures.items()}
    replica = 0.25 * per_tx["rpc_admit"] + 0.75 * per_tx["gossip_admit"]
    replica += per_tx["validate"] + per_tx["commit_replica"]
    return {
        "transactions": count,
        "verify_us": round(v_us, 1),
        "us_per_tx": {name: round(value, 1) for name, value in per_tx.items()},
        "replica_us_per_tx": round(replica, 1),
        "R_stages": round(replica / v_us, 2),
        "head": head,
    }


def render(report: dict[str, Any]) -> str:
    stages = "\n".join(
        f"  {name:16s} {value:7.1f} us/tx  {value / report['verify_us']:5.2f} V"
        for name, value in report["us_per_tx"].items()
    )
    return (
        f"node stages, {report['transactions']} transfers (thread CPU, best run):\n{stages}\n"
        f"  V (PyNaCl verify) {report['verify_us']:6.1f} us\n"
        f"  replica estimate {report['replica_us_per_tx']:7.1f} us/tx  "
        f"R_stages {report['R_stages']:.2f}\n  head {report['head'][:16]}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser("sec bench txcost", __doc__)
    parser.add_argument("--transactions", type=int, default=3000, help="transfers (3000)")
    parser.add_argument("--block-size", type=int, default=1000, help="txs per block (1000)")
    parser.add_argument("--runs", type=int, default=2, help="fresh runs, best kept (2)")
    parser.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    args = parser.parse_args(argv)
    best: dict[str, float] = {}
    verifies = []
    head = ""
    for _ in range(args.runs):
        figures, v_us, head = asyncio.run(run_once(args.transactions, args.block_size))
        verifies.append(v_us)
        for name, seconds in figures.items():
            best[name] = min(best.get(name, seconds), seconds)
    report = summarize(best, args.transactions, min(verifies), head)
    print(render(report))
    if args.json:
        write_report(args.json, report, announce=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
