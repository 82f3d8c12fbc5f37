"""`restore_snapshot`: verify a snapshot against the genesis and write a store a node resumes from.

Order of checks (check first, write last): the manifest names this home's chain and genesis;
the proof file's hash; the block is the manifest's (hash, height, state root) and its receipts
are its receipts_root's; the validator set is traced from the genesis through each change
proof (`secnode.snapshot.trace`) and the block's commit certificate is a quorum of the set
that rules its height; then each chunk's hash, then its rows (keys ascending across chunks),
and last the state tree folded from all rows must have the certified header's state root.

What is written: the state rows and the persisted tree (`ledger.tree_store`) as of the block,
block 0, the snapshot's block with its receipts and certificate, and each block that scheduled
a validator change with its certificate and change row (so this node can prove the set from
the genesis to its own clients, and snapshot again). Blocks in between are absent: the store
is a pruned node's, whose head is the snapshot's block, and `sec node start` catches up from
its peers from there.

Invariant: the store appears whole or not at all: it is written in a staging directory beside
the data directory, which is renamed into place only after the head row is written.
"""

from __future__ import annotations

import shutil
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts import TX_TYPES
from ledger.blocks import Block, decode_block
from ledger.certificates import CommitCertificate
from ledger.encoding import decode, encode
from ledger.errors import LedgerError
from ledger.genesis import Genesis, genesis_block, genesis_state
from ledger.receipts import Receipt, receipts_root
from ledger.state_tree import StateTree
from ledger.store import GENESIS_KEY, HEAD_KEY, ChainStore, block_rows, pruned_marker
from ledger.store_leveldb import LevelDBStore
from ledger.tree_store import STATE_PREFIX
from ledger.validator_changes import change_key
from ledger.validator_state import VALIDATORS_KEY, current_validators, schedule_of_record
from secnode.snapshot.format import (
    MAX_FILE_BYTES,
    PROOF_FILE,
    Manifest,
    SnapshotError,
    decode_chunk,
    publish_directory,
    read_checked,
    read_manifest,
)
from secnode.snapshot.trace import ValidatorTrace

WRITE_BATCH_ROWS = 50_000
"""State rows per LevelDB batch while restoring (unsynced; the head row is written synced)."""


@dataclass(frozen=True, slots=True)
class CertifiedBlock:
    """A block with its commit certificate, receipts and, for a block that scheduled a
    validator change, its change row."""

    block: Block
    """The decoded block (its tx_root checked)."""
    certificate: CommitCertificate
    """Its commit certificate."""
    receipts: list[Receipt]
    """Its receipts, checked against its receipts_root."""
    change_row: bytes | None
    """The `ledger.validator_changes` row of the block."""


@dataclass(frozen=True, slots=True)
class Restored:
    """What `restore_snapshot` wrote."""

    manifest: Manifest
    """The verified manifest."""
    validator_changes: int
    """Validator change proofs followed from the genesis."""


def _decode_block(raw: Any, where: str) -> Block:
    if not isinstance(raw, bytes):
        raise SnapshotError(f"{where}: the block must be bytes")
    try:
        return decode_block(raw, TX_TYPES)
    except LedgerError as exc:
        raise SnapshotError(f"{where}: {exc}") from None


def _certificate(raw: Any, where: str) -> CommitCertificate:
    try:
        return CommitCertificate.from_wire(raw)
    except LedgerError as exc:
        raise SnapshotError(f"{where}: {exc}") from None


def _receipts(block: Block, raw: Any, where: str) -> list[Receipt]:
    try:
        if not isinstance(raw, list):
            raise TypeError("receipts must be a list")
        receipts = [Receipt.from_wire(item) for item in raw]
    except (LedgerError, TypeError, ValueError) as exc:
        raise SnapshotError(f"{where} receipts: {exc}") from None
    if receipts_root(receipts) != block.header.receipts_root:
        raise SnapshotError(f"{where}: the receipts are not block {block.height}'s")
    return receipts


@dataclass(frozen=True, slots=True)
class Proven:
    """What a verified proof file establishes."""

    blocks: list[CertifiedBlock]
    """The validator change blocks, then the snapshot's block."""
    schedule: list[tuple[int, bytes]]
    """The validator schedule traced from the genesis: (first height, set hash), ascending."""


def verify_proof(manifest: Manifest, data: bytes, genesis: Genesis) -> Proven:
    """The certified blocks of a proof file and the schedule they prove; raise SnapshotError
    unless each block is certified by the set traced from `genesis` and the last is the
    manifest's block. The state's own schedule is checked against it once the rows are
    folded (`check_schedule`): a proof that leaves out a change fails there."""
    try:
        document = decode(data, max_size=MAX_FILE_BYTES)
    except LedgerError as exc:
        raise SnapshotError(f"{PROOF_FILE} does not decode: {exc}") from None
    if not isinstance(document, dict) or set(document) != {
        "block",
        "receipts",
        "certificate",
        "changes",
    }:
        raise SnapshotError(f"{PROOF_FILE} must be a map of block, receipts, certificate, changes")
    block = _decode_block(document["block"], f"{PROOF_FILE} block")
    header = block.header
    if block.height != manifest.height or block.hash() != manifest.block_hash:
        raise SnapshotError(
            f"{PROOF_FILE} holds block {block.height} {block.hash().hex()}, the manifest names "
            f"block {manifest.height} {manifest.block_hash.hex()}"
        )
    if header.state_root != manifest.state_root:
        raise SnapshotError(
            f"the manifest's state root {manifest.state_root.hex()} is not block "
            f"{block.height}'s {header.state_root.hex()}"
        )
    receipts = _receipts(block, document["receipts"], PROOF_FILE)
    trace = ValidatorTrace.from_genesis(
        genesis.chain_id, current_validators(genesis_state(genesis))
    )
    certified = []
    changes = document["changes"]
    if not isinstance(changes, list):
        raise SnapshotError(f"{PROOF_FILE} changes must be a list")
    previous = 0
    for index, change in enumerate(changes):
        where = f"{PROOF_FILE} changes[{index}]"
        if not isinstance(change, list) or len(change) != 4 or not isinstance(change[3], bytes):
            raise SnapshotError(f"{where} must be [block, certificate, receipts, change row]")
        change_block = _decode_block(change[0], where)
        if not previous < change_block.height <= block.height:
            raise SnapshotError(f"{where}: block {change_block.height} is out of order")
        previous = change_block.height
        change_certificate = _certificate(change[1], where)
        trace.follow(change_block.header, change_certificate, change[3])
        change_receipts = _receipts(change_block, change[2], where)
        certified.append(
            CertifiedBlock(change_block, change_certificate, change_receipts, change[3])
        )
    certificate = _certificate(document["certificate"], f"{PROOF_FILE} certificate")
    trace.certify(header, certificate)
    if certified and certified[-1].block.height == block.height:
        certified[-1] = CertifiedBlock(block, certificate, receipts, certified[-1].change_row)
    else:
        certified.append(CertifiedBlock(block, certificate, receipts, None))
    return Proven(certified, [(first, members.hash()) for first, members in trace.schedule])


def check_schedule(proven: Proven, rows: list[tuple[bytes, bytes]], height: int) -> None:
    """SnapshotError unless the validators record among `rows` (keys ascending) schedules
    exactly the sets the proof traced: a change the proof file left out (scheduled, or already
    in the record's history) would otherwise be missing from the restored node's change rows,
    and from every snapshot and validator-change proof it serves."""
    index = bisect_left(rows, (VALIDATORS_KEY, b""))
    if index == len(rows) or rows[index][0] != VALIDATORS_KEY:
        raise SnapshotError(f"the state at height {height} has no validators record")
    try:
        record = decode(rows[index][1])
        if not isinstance(record, dict):
            raise TypeError("not a map")
        schedule = [(first, members.hash()) for first, members in schedule_of_record(record)]
    except (LedgerError, TypeError, ValueError, KeyError) as exc:
        raise SnapshotError(f"the validators record at height {height}: {exc}") from None
    if schedule != proven.schedule:
        state_heights = [first for first, _ in schedule]
        proven_heights = [first for first, _ in proven.schedule]
        raise SnapshotError(
            f"the validators record at height {height} schedules sets from heights "
            f"{state_heights}, the proof file proves {proven_heights}: a validator change "
            "proof is missing"
        )


def read_state(directory: Path, manifest: Manifest) -> tuple[list[tuple[bytes, bytes]], StateTree]:
    """Every state row of the snapshot in `directory` (hashes, order and count checked) and
    the tree they fold to, which must have the manifest's state root."""
    return fold_chunks(
        manifest,
        (
            (read_checked(directory, entry), str(directory / entry.name))
            for entry in manifest.chunks
        ),
        str(directory),
    )


def fold_chunks(
    manifest: Manifest, chunks: Iterable[tuple[bytes, str]], source: str
) -> tuple[list[tuple[bytes, bytes]], StateTree]:
    """The rows of `chunks` ((bytes, where) per manifest chunk, in order, each hash already
    checked) and their tree; SnapshotError unless keys ascend across chunks and the tree has
    the manifest's (certified) state root."""
    rows: list[tuple[bytes, bytes]] = []
    last: bytes | None = None
    for entry, (data, where) in zip(manifest.chunks, chunks, strict=True):
        chunk = decode_chunk(data, entry, last, where)
        if chunk:
            last = chunk[-1][0]
        rows.extend(chunk)
    tree = StateTree.from_items(rows)
    if tree.root() != manifest.state_root:
        raise SnapshotError(
            f"the state rows of {source} fold to root {tree.root().hex()}, not the certified "
            f"state root {manifest.state_root.hex()} of block {manifest.height}"
        )
    return rows, tree


def restore_snapshot(directory: Path, genesis: Genesis, data_dir: Path) -> Restored:
    """Verify the snapshot in `directory` for the chain of `genesis` and write the store in
    `data_dir`, which must not hold one (see the module docstring)."""
    check_empty(data_dir)
    manifest = read_manifest(directory)
    check_chain(manifest, genesis, "the snapshot")
    proven = verify_proof(manifest, read_checked(directory, manifest.proof), genesis)
    rows, tree = read_state(directory, manifest)
    check_schedule(proven, rows, manifest.height)
    write_store(data_dir, genesis, proven.blocks, rows, tree)
    return Restored(manifest, sum(1 for c in proven.blocks if c.change_row is not None))


def check_empty(data_dir: Path) -> None:
    """SnapshotError unless `data_dir` is absent or empty (a restore never overwrites)."""
    if (data_dir / "CURRENT").exists() or (data_dir.exists() and any(data_dir.iterdir())):
        raise SnapshotError(
            f"{data_dir} already holds data: restore into a new home (or remove it first)"
        )


def check_chain(manifest: Manifest, genesis: Genesis, where: str) -> None:
    """SnapshotError unless the manifest names the chain and genesis of `genesis`."""
    if manifest.chain_id != genesis.chain_id:
        raise SnapshotError(
            f"{where} is of chain {manifest.chain_id!r}, this home's genesis is of "
            f"{genesis.chain_id!r}"
        )
    if manifest.genesis_hash != genesis.document_hash():
        raise SnapshotError(
            f"{where}'s genesis {manifest.genesis_hash.hex()[:16]}... is not this home's "
            f"genesis {genesis.document_hash().hex()[:16]}..."
        )


def write_store(
    data_dir: Path,
    genesis: Genesis,
    certified: list[CertifiedBlock],
    rows: list[tuple[bytes, bytes]],
    tree: StateTree,
) -> None:
    """Write the verified state and certified blocks as a node store in `data_dir` (absent or
    empty): staged beside it, renamed into place whole."""
    staging = data_dir.with_name(f".{data_dir.name}.restoring")
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    try:
        _write_store(staging, genesis, certified, rows, tree)
        publish_directory(staging, data_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _write_store(
    path: Path,
    genesis: Genesis,
    certified: list[CertifiedBlock],
    rows: list[tuple[bytes, bytes]],
    tree: StateTree,
) -> None:
    head = certified[-1]
    store = ChainStore(LevelDBStore(path), TX_TYPES)
    try:
        for start in range(0, len(rows), WRITE_BATCH_ROWS):
            store.kv.write(
                [
                    (STATE_PREFIX + key, value)
                    for key, value in rows[start : start + WRITE_BATCH_ROWS]
                ],
                sync=False,
            )
        store.save_whole_tree(tree, height=head.block.height)
        initial = genesis_state(genesis)
        batch = block_rows(genesis_block(genesis, initial.compute_root()), None, [])
        batch.append((GENESIS_KEY, genesis.document_hash()))
        for item in certified:
            batch.extend(block_rows(item.block, item.certificate, item.receipts))
            if item.change_row is not None:
                batch.append((change_key(item.block.height), item.change_row))
        batch.append(pruned_marker(head.block.height))
        batch.append((HEAD_KEY, encode([head.block.height, head.block.hash()])))
        store.kv.write(batch, sync=True)
    finally:
        store.close()
