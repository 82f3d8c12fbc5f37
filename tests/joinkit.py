"""A long chain in a node home, and the figure: joining it by snapshot restore versus replay.

`SourceChain` commits certified blocks to a node home's LevelDB store exactly as a node does
(the validator change index included): blocks below height 9 are certified by three of the
four dev validators, later ones by four (the tests add node4 in block 1, effective at 9).

    python -m tests.joinkit DIR --accounts 1000000

builds a dev network under DIR whose node0 holds a chain in which the admin registers
`--accounts` accounts (10,000 per block),
then prints, as JSON, the time to join it with a fresh store:
  state sync node4 joins over p2p from three hosts (node1..node3, in another process) that
            serve node0's snapshot: offers, manifest, proof, chunks from all three at once,
            every hash and the root checked, the store written (`secnode.statesync`);
  replay    execute every block from the genesis (signatures checked, as a node catching up
            from its peers does), committing each to a new LevelDB store;
  snapshot  `create_snapshot` on node0, then `restore_snapshot` into node1's home (every chunk
            hashed, the tree folded, the certificate checked from the genesis).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Final

from contracts import TX_TYPES, build_executor
from ledger.blocks import decode_block
from ledger.chain import build_block, execute_block
from ledger.genesis import Genesis, load_genesis
from ledger.keys import PrivateKey, Signer
from ledger.store import open_chain
from ledger.store_leveldb import LevelDBStore
from ledger.transactions import (
    AccountRegister,
    SignedTransaction,
    Transfer,
    TxBody,
    ValidatorUpdate,
    sign_transaction,
)
from ledger.validator_changes import index_validator_changes
from secnode.network.devnet import dev_account_key, validator_key
from secnode.statesync.join import join
from tests.nodekit import certify, make_network
from tests.statesync_servers import JOINER, SERVERS, joiner_config

OLD_SIGNERS: Final = ("node0", "node1", "node2")  # 3 of the 4 genesis validators
NEW_SIGNERS: Final = ("node0", "node1", "node2", "node3")  # 4 of 5, once node4 has joined
JOINS_AT: Final = 9
"""Where the tests' validator change (node4 added in block 1) takes effect."""
PER_BLOCK: Final = 10_000


class SourceChain:
    """Certified blocks committed to a node home's LevelDB store, as a node writes them."""

    def __init__(self, home: Path) -> None:
        self.genesis = load_genesis(home / "genesis.json")
        self.store, self.state, self.head = open_chain(
            LevelDBStore(home / "data"), self.genesis, TX_TYPES
        )
        self.store.add_proving_indexer(index_validator_changes)
        self.executor = build_executor(self.genesis.chain_id, self.genesis.document_hash())
        self.nonces: dict[str, int] = {}

    def sign(self, key: PrivateKey, name: str, body: TxBody) -> SignedTransaction:
        nonce = self.nonces.get(name, 0)
        self.nonces[name] = nonce + 1
        return sign_transaction(
            key, self.genesis.chain_id, nonce, body, genesis_hash=self.genesis.document_hash()
        )

    def run(self, txs: list[SignedTransaction], *, signed_here: bool = False) -> None:
        """One block of `txs` a second after the head, certified and committed
        (`signed_here`: the kit signed them, so their signatures are not checked again)."""
        result = build_block(
            self.executor,
            self.state,
            self.head,
            txs,
            timestamp_ms=self.head.timestamp_ms + 1000,
            proposer=validator_key("node0").address,
            view=0,
            verified={tx.hash for tx in txs} if signed_here else None,
        )
        block = result.block
        if len(block.transactions) != len(txs):
            raise AssertionError(f"block {block.height} left out transactions")
        signers = OLD_SIGNERS if block.height < JOINS_AT else NEW_SIGNERS
        self.store.commit_block(
            block,
            certify(block.height, block.hash(), signers),
            result.receipts,
            self.state.commit_block(),
        )
        self.head = block.header

    def close(self) -> None:
        self.store.close()


def transfers(chain: SourceChain, count: int, seed: int) -> list[SignedTransaction]:
    """`count` transfers from buyer1 to fresh addresses (derived from `seed`), one block's worth."""
    return [
        chain.sign(
            dev_account_key("buyer1"),
            "buyer1",
            Transfer(hashlib.sha256(bytes([seed, n])).digest()[:20], 1 + n),
        )
        for n in range(count)
    ]


def chain_with_a_change(root: Path, height: int) -> Path:
    """A dev network under `root` whose node0 holds blocks 1..`height`: block 1 adds node4
    (effective at JOINS_AT), then 20 transfers a block; returns `root`."""
    make_network(root)
    chain = SourceChain(root / "node0")
    try:
        update = ValidatorUpdate((validator_key("node4").public_key,), ())
        chain.run([chain.sign(dev_account_key("admin"), "admin", update)])
        for block in range(2, height + 1):
            chain.run(transfers(chain, 20, block))
    finally:
        chain.close()
    return root


def build(root: Path, accounts: int) -> Path:
    """The network under `root`, node0 holding the registrations; node0's home."""
    make_network(root)
    chain = SourceChain(root / "node0")
    admin = dev_account_key("admin")
    try:
        for first in range(0, accounts, PER_BLOCK):
            count = min(PER_BLOCK, accounts - first)
            chain.run(
                [
                    chain.sign(
                        admin,
                        "admin",
                        AccountRegister((first + n).to_bytes(8, "big") * 4, ("member",)),
                    )
                    for n in range(count)
                ],
                signed_here=True,
            )
            print(f"built block {chain.head.height}", file=sys.stderr, flush=True)
    finally:
        chain.close()
    return root / "node0"


def replay(source_home: Path, target: Path) -> float:
    """Seconds to execute and store every block of `source_home` into a new store."""
    genesis = load_genesis(source_home / "genesis.json")
    source, _, source_head = open_chain(LevelDBStore(source_home / "data"), genesis, TX_TYPES)
    started = time.perf_counter()
    store, state, head = open_chain(LevelDBStore(target), genesis, TX_TYPES)
    executor = build_executor(genesis.chain_id, genesis.document_hash())
    try:
        for height in range(1, source_head.height + 1):
            raw = source.get_block_bytes(height)
            if raw is None:
                raise AssertionError(f"the source lacks block {height}")
            block = decode_block(raw, TX_TYPES)
            result = execute_block(executor, state, head, block)
            store.commit_block(
                block, source.get_certificate(height), result.receipts, state.commit_block()
            )
            head = block.header
        if head != source_head:
            raise AssertionError("the replayed head is not the source's")
        return time.perf_counter() - started
    finally:
        store.close()
        source.close()


def state_sync_join(genesis: Genesis, shelves: list[Path], data_dir: Path) -> float:
    """Seconds for node4 to join by state sync from three p2p hosts serving `shelves` in
    another process (`tests.statesync_servers`): connect, fetch, verify, write the store."""
    servers = subprocess.Popen(
        [sys.executable, "-m", "tests.statesync_servers", genesis.chain_id, *map(str, shelves)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert servers.stdout is not None
        ports = json.loads(servers.stdout.readline())
        config = joiner_config(genesis.chain_id, ports)
        started = time.perf_counter()
        synced = asyncio.run(join(config, Signer(validator_key(JOINER)), genesis, data_dir, 30))
        seconds = time.perf_counter() - started
        print(f"state sync: {synced.chunks_by_peer}", file=sys.stderr)
        return seconds
    finally:
        servers.kill()
        servers.wait()


def main(argv: list[str] | None = None) -> int:
    from secnode.snapshot.create import create_snapshot
    from secnode.snapshot.restore import restore_snapshot

    parser = argparse.ArgumentParser(description="snapshot restore versus replay")
    parser.add_argument("root", type=Path, help="a new directory for the network")
    parser.add_argument("--accounts", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    home = build(args.root, args.accounts)
    built = time.perf_counter() - started
    replay_s = replay(home, args.root / "replayed")
    genesis = load_genesis(home / "genesis.json")
    store, _, head = open_chain(LevelDBStore(home / "data"), genesis, TX_TYPES)
    try:
        started = time.perf_counter()
        created = create_snapshot(
            store, genesis.chain_id, genesis.document_hash(), args.root / "snapshot"
        )
        create_s = time.perf_counter() - started
    finally:
        store.close()
    target = args.root / "node1"
    started = time.perf_counter()
    restore_snapshot(args.root / "snapshot", load_genesis(target / "genesis.json"), target / "data")
    restore_s = time.perf_counter() - started
    shelves = []
    for name in SERVERS:  # each server's snapshot directory (as its node's shelf would hold)
        shelf = args.root / "shelves" / name / f"{head.height:012d}"
        shutil.copytree(args.root / "snapshot", shelf)
        shelves.append(shelf.parent)
    statesync_s = state_sync_join(genesis, shelves, args.root / "node4-data")
    figures = {
        "accounts": args.accounts,
        "height": head.height,
        "state_entries": created.manifest.entries,
        "snapshot_bytes": created.bytes_written,
        "chunks": len(created.manifest.chunks),
        "build_s": round(built, 1),
        "replay_s": round(replay_s, 1),
        "snapshot_create_s": round(create_s, 1),
        "snapshot_restore_s": round(restore_s, 1),
        "replay_over_restore": round(replay_s / restore_s, 1),
        "state_sync_s": round(statesync_s, 1),
        "replay_over_state_sync": round(replay_s / statesync_s, 1),
    }
    json.dump(figures, sys.stdout)
    print()
    shutil.rmtree(args.root / "replayed", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
