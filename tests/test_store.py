"""The block store on memory and on a real LevelDB, and crash consistency under SIGKILL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from contracts import TX_TYPES
from ledger.certificates import build_certificate, commit_signing_bytes
from ledger.errors import StoreError
from ledger.genesis import parse_genesis
from ledger.kv import MemoryStore
from ledger.store import FLUSH_BLOCKS, ChainStore, open_chain
from ledger.store_leveldb import LevelDBStore
from ledger.transactions import Transfer
from secnode.network.devnet import dev_genesis, dev_genesis_document, validator_key
from tests.chainkit import Chain

ROOT = Path(__file__).resolve().parents[1]


def _commit_some(store: ChainStore, chain: Chain, blocks: int) -> None:
    for _ in range(blocks):
        txs = [chain.sign("buyer1", "credit.transfer", Transfer(chain.address("sharer1"), 5))]
        pending_state = chain.state
        from ledger.chain import build_block

        result = build_block(
            chain.executor,
            pending_state,
            chain.head,
            txs,
            timestamp_ms=chain.head.timestamp_ms + 1000,
            proposer=validator_key("node0").address,
            view=0,
        )
        block_hash = result.block.hash()
        signatures: dict[bytes, bytes] = {
            validator_key(f"node{i}").address: validator_key(f"node{i}").sign(
                commit_signing_bytes(chain.genesis.chain_id, result.block.height, block_hash)
            )
            for i in range(3)
        }
        certificate = build_certificate(result.block.height, block_hash, signatures)
        changes = pending_state.commit_block()
        store.commit_block(
            result.block, certificate, result.receipts, changes, tree=pending_state.tree
        )
        chain.head = result.block.header


@pytest.mark.parametrize("backend", ["memory", "leveldb"])
def test_store_roundtrip_and_reopen(backend: str, tmp_path: Path) -> None:
    genesis = dev_genesis()
    kv = MemoryStore() if backend == "memory" else LevelDBStore(tmp_path / "db")
    store, state, head = open_chain(kv, genesis, TX_TYPES)
    assert head.height == 0
    chain = Chain()
    assert chain.state.root() == state.root()
    _commit_some(store, chain, 3)
    block = store.get_block(2)
    assert block is not None and block.height == 2
    certificate = store.get_certificate(2)
    assert certificate is not None and certificate.block_hash == block.hash()
    tx = block.transactions[0]
    assert store.find_transaction(tx.hash) == (2, 0)
    receipts = store.get_receipts(2)
    assert receipts is not None and receipts[0].ok
    assert store.height_of_block(block.hash()) == 2
    if backend == "leveldb":
        store.close()
        kv = LevelDBStore(tmp_path / "db")
    store2, state2, head2 = open_chain(kv, genesis, TX_TYPES)
    assert head2 == chain.head
    assert state2.root() == chain.state.root()
    store2.close()


def test_invalid_store_other_genesis(tmp_path: Path) -> None:
    store, _, _ = open_chain(LevelDBStore(tmp_path / "db"), dev_genesis(), TX_TYPES)
    store.close()
    document = dev_genesis_document()
    document["chain_id"] = "another-chain"
    with pytest.raises(StoreError, match="different genesis"):
        open_chain(LevelDBStore(tmp_path / "db"), parse_genesis(document), TX_TYPES)


def test_invalid_store_corrupted_state_row_detected(tmp_path: Path) -> None:
    kv = MemoryStore()
    open_chain(kv, dev_genesis(), TX_TYPES)
    key = next(k for k in kv.rows if k.startswith(b"Sacct:"))
    kv.rows[key] = kv.rows[key][:-1] + b"\x01"
    open_chain(kv, dev_genesis(), TX_TYPES)  # the persisted tree is intact: rows are not read
    with pytest.raises(StoreError, match="do not match the state root"):
        open_chain(kv, dev_genesis(), TX_TYPES, verify_state=True)


def test_invalid_store_locked_by_another_user(tmp_path: Path) -> None:
    first = LevelDBStore(tmp_path / "db")
    with pytest.raises(StoreError, match="another node"):
        LevelDBStore(tmp_path / "db")
    first.close()


@pytest.mark.slow
@pytest.mark.parametrize("flush_blocks", [FLUSH_BLOCKS, 3])
def test_sigkill_writer_many_times_store_stays_consistent(
    tmp_path: Path, flush_blocks: int
) -> None:
    """Kill a committing writer at random instants; each reopen must match its head root, both
    the persisted tree's (the nodes of the last flush plus the journal since) and the rows' (so
    tree and state were committed together). With the default bounds every kill lands
    between flushes; flushing every 3 blocks, kills land in flushing batches too."""
    data = tmp_path / "db"
    rng = random.Random(1234)
    last_height = 0
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    replayed = flushed = 0
    for _round in range(12):
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.crash_writer", str(data), str(flush_blocks)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        ready = child.stdout.readline().split()
        assert ready[0] == "ready", ready
        assert int(ready[1]) >= last_height  # nothing committed was lost
        target = rng.randint(1, 6)
        seen = 0
        for _line in child.stdout:
            seen += 1
            if seen >= target:
                break
        # a little more random progress inside the next commit, then the kill
        for _ in range(rng.randint(0, 2000)):
            pass
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        # verify_state: the rows, refolded, must match the persisted tree's root too
        store, state, head = open_chain(
            LevelDBStore(data), dev_genesis(), TX_TYPES, verify_state=True
        )
        assert head.height >= last_height + seen - 1
        assert state.root() == head.state_root
        assert store.tree_height is not None
        replayed += store.tree_height < head.height  # reopened through the journal
        flushed = max(flushed, store.tree_height)
        for height in range(1, head.height + 1):
            block = store.get_block(height)
            assert block is not None and block.height == height
        last_height = head.height
        store.close()
    assert last_height > 12
    assert replayed > 0
    assert flushed > 0 if flush_blocks < last_height else flushed == 0
