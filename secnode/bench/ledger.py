"""`sec bench ledger`: the cost of the ledger's hot paths, each as a ratio to one Ed25519 verify.

Measured in one run so the ratios are comparable on a noisy machine:
  V    Ed25519 verify (PyNaCl/libsodium, the one the node uses; and pyca/cryptography)
  X    executing a transfer, signature check excluded, on a state of N accounts (default 1M)
  U    state-root update per changed key (folding a block's changes into the tree + root)
  C    committing a block to LevelDB (one sync write batch), per block and per transaction
Goal: X <= 0.5 V.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contracts import TX_TYPES
from ledger.accounts import ACCOUNT_PREFIX, SUPPLY_KEY, roles_to_mask
from ledger.chain import build_block
from ledger.execution import BlockContext, Executor
from ledger.genesis import genesis_block, genesis_state
from ledger.keys import PrivateKey, address_of, verify_signature
from ledger.state import State
from ledger.store import ChainStore
from ledger.store_leveldb import LevelDBStore
from ledger.transactions import SignedTransaction, Transfer, sign_transaction
from secnode.bench import bench_parser, write_report
from secnode.network.devnet import dev_genesis, validator_key


def _per_call(function: Callable[[], Any], repeat: int, rounds: int = 5) -> float:
    """Median over `rounds` of the mean seconds per call."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeat):
            function()
        samples.append((time.perf_counter() - start) / repeat)
    return statistics.median(samples)


def measure_verify(repeat: int) -> dict[str, float]:
    key = PrivateKey.from_label("bench")
    message = b"x" * 200
    signature = key.sign(message)
    nacl_cost = _per_call(lambda: verify_signature(key.public_key, message, signature), repeat)
    crypto_key = Ed25519PrivateKey.from_private_bytes(key.seed)
    crypto_public = crypto_key.public_key()
    crypto_signature = crypto_key.sign(message)
    crypto_cost = _per_call(lambda: crypto_public.verify(crypto_signature, message), repeat)
    return {"pynacl": nacl_cost, "cryptography": crypto_cost}


def _progress(label: str, done: int, total: int) -> None:
    if sys.stderr.isatty() or os.environ.get("SEC_PROGRESS"):
        print(f"\r  {label}: {done * 100 // max(total, 1)}%", end="", file=sys.stderr, flush=True)
        if done >= total:
            print(file=sys.stderr)


def build_large_state(accounts: int, senders: list[PrivateKey]) -> State:
    """Dev genesis plus `accounts` filler accounts (random keys) plus funded `senders`."""
    base = genesis_state(dev_genesis())
    base.commit_block()
    committed = dict(base.committed)
    member = roles_to_mask(["member"])
    step = max(accounts // 20, 1)
    for index in range(accounts):
        public_key = index.to_bytes(8, "big") * 4
        committed[ACCOUNT_PREFIX + address_of(public_key)] = msgpack.packb(
            [public_key, 0, 1_000, member, ""], use_bin_type=True
        )
        if index % step == 0:
            _progress(f"building {accounts:,} accounts", index, accounts)
    _progress(f"building {accounts:,} accounts", accounts, accounts)
    for key in senders:
        committed[ACCOUNT_PREFIX + key.address] = msgpack.packb(
            [bytes(key.public_key), 0, 10**12, member, ""], use_bin_type=True
        )
    minted, burned, escrow = msgpack.unpackb(committed[SUPPLY_KEY])
    minted += accounts * 1_000 + len(senders) * 10**12
    committed[SUPPLY_KEY] = msgpack.packb([minted, burned, escrow])
    return State(committed)


def _transfers(
    senders: list[PrivateKey], rounds: int, chain_id: str, genesis_hash: bytes
) -> list[SignedTransaction]:
    txs = []
    for nonce in range(rounds):
        for index, key in enumerate(senders):
            target = senders[(index + 1) % len(senders)].address
            txs.append(
                sign_transaction(
                    key,
                    chain_id,
                    nonce,
                    Transfer(target, 1),
                    genesis_hash=genesis_hash,
                )
            )
    return txs


def run(accounts: int, block_size: int, blocks: int) -> dict[str, Any]:
    genesis = dev_genesis()
    chain_id = genesis.chain_id
    print("measuring Ed25519 verify ...", file=sys.stderr)
    verify = measure_verify(2000)
    v = verify["pynacl"]

    senders = [PrivateKey.from_label(f"bench-sender-{i}") for i in range(block_size)]
    print(f"building a state of {accounts:,} accounts ...", file=sys.stderr)
    started = time.perf_counter()
    state = build_large_state(accounts, senders)
    build_seconds = time.perf_counter() - started
    executor = Executor(chain_id, genesis.document_hash())
    print(f"signing {block_size * blocks:,} transfers ...", file=sys.stderr)
    txs = _transfers(senders, blocks, chain_id, genesis.document_hash())

    execute_times, root_times, commit_times = [], [], []
    changed_keys = 0
    head = genesis_block(genesis, state.root()).header
    with tempfile.TemporaryDirectory(prefix="sec-bench-") as directory:
        store = ChainStore(LevelDBStore(Path(directory)), TX_TYPES)
        store.save_whole_tree(state.tree)  # as a node's: nodes stored, read through a cache
        for number in range(blocks):
            batch = txs[number * block_size : (number + 1) * block_size]
            context = BlockContext(chain_id, number + 1, head.time_s + 1)
            start = time.perf_counter()
            for tx in batch:
                executor.apply_transaction(state, tx, context, verify_signature=False)
            execute_times.append((time.perf_counter() - start) / len(batch))
            # Undo the direct execution and rebuild the same block through the block path,
            # so the root/commit figures come from the real code path.
            changed_keys += len(state.changes())
            start = time.perf_counter()
            state.compute_root()
            root_times.append((time.perf_counter() - start) / max(len(state.changes()), 1))
            state.abort_block()
            result = build_block(
                executor,
                state,
                head,
                batch,
                timestamp_ms=head.timestamp_ms + 1000,
                proposer=validator_key("node0").address,
                view=0,
                verified={t.hash for t in batch},
            )
            changes = state.commit_block()
            start = time.perf_counter()
            store.commit_block(result.block, None, result.receipts, changes, tree=state.tree)
            commit_times.append(time.perf_counter() - start)
            head = result.block.header
            _progress("blocks", number + 1, blocks)
        store.close()

    x = statistics.median(execute_times)
    u = statistics.median(root_times)
    c = statistics.median(commit_times)
    return {
        "accounts": accounts,
        "block_size": block_size,
        "blocks": blocks,
        "state_build_seconds": build_seconds,
        "verify_pynacl_us": verify["pynacl"] * 1e6,
        "verify_cryptography_us": verify["cryptography"] * 1e6,
        "transfer_execute_us": x * 1e6,
        "root_update_per_key_us": u * 1e6,
        "block_commit_ms": c * 1e3,
        "block_commit_per_tx_us": c / block_size * 1e6,
        "ratio_verify_cryptography": verify["cryptography"] / v,
        "ratio_transfer_execute": x / v,
        "ratio_root_update_per_key": u / v,
        "ratio_block_commit_per_tx": c / block_size / v,
        "goal_transfer_le_half_v": x <= 0.5 * v,
    }


def render(report: dict[str, Any]) -> str:
    lines = [
        f"ledger benchmark: {report['accounts']:,} accounts, {report['blocks']} blocks "
        f"of {report['block_size']} transfers "
        f"(state built in {report['state_build_seconds']:.1f} s)",
        f"  V  Ed25519 verify, PyNaCl        {report['verify_pynacl_us']:9.1f} us   1.00 V",
        f"     Ed25519 verify, cryptography  {report['verify_cryptography_us']:9.1f} us   "
        f"{report['ratio_verify_cryptography']:.2f} V",
        f"  X  transfer execution (no sig)   {report['transfer_execute_us']:9.1f} us   "
        f"{report['ratio_transfer_execute']:.2f} V   (goal <= 0.50 V: "
        f"{'met' if report['goal_transfer_le_half_v'] else 'NOT met'})",
        f"  U  state-root update per key     {report['root_update_per_key_us']:9.1f} us   "
        f"{report['ratio_root_update_per_key']:.2f} V",
        f"  C  block commit to LevelDB       {report['block_commit_ms']:9.2f} ms   "
        f"({report['block_commit_per_tx_us']:.1f} us/tx = "
        f"{report['ratio_block_commit_per_tx']:.2f} V per tx)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser("sec bench ledger", __doc__)
    parser.add_argument(
        "--accounts", type=int, default=1_000_000, help="accounts in state (default 1,000,000)"
    )
    parser.add_argument(
        "--block-size", type=int, default=1000, help="transfers per block (default 1000)"
    )
    parser.add_argument("--blocks", type=int, default=5, help="blocks to execute (default 5)")
    parser.add_argument("--json", metavar="FILE", help="also write the report as JSON to FILE")
    args = parser.parse_args(argv)
    if args.accounts < 0 or args.block_size < 2 or args.blocks < 1:
        parser.error("need --accounts >= 0, --block-size >= 2, --blocks >= 1")
    report = run(args.accounts, args.block_size, args.blocks)
    print(render(report))
    if args.json:
        write_report(args.json, report)
    return 0
