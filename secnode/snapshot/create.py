"""`create_snapshot`: write the state of a stopped node's head block as a snapshot directory.

The node keeps no historical state, so a snapshot is always of the store's head: the state
rows as committed with that block, read in key order, cut into chunks (`format.chunk_rows`).
The head must carry its commit certificate (a node's head always does once past genesis).

Invariant: the snapshot appears whole or not at all: every file is written and fsync'd in a
temporary directory beside DIR, which is renamed to DIR last.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ledger.encoding import encode
from ledger.store import ChainStore
from ledger.tree_store import STATE_PREFIX
from ledger.validator_changes import VALIDATOR_CHANGES_PREFIX
from secnode.snapshot.format import (
    MANIFEST_FILE,
    PROOF_FILE,
    FileEntry,
    Manifest,
    SnapshotError,
    chunk_name,
    chunk_rows,
    publish_directory,
    sha256_hex,
    write_durably,
)


@dataclass(frozen=True, slots=True)
class Created:
    """What `create_snapshot` wrote."""

    manifest: Manifest
    """The manifest written to DIR/manifest.json."""
    bytes_written: int
    """Bytes of all files."""


def _state_rows(store: ChainStore) -> Iterator[tuple[bytes, bytes]]:
    for key, value in store.kv.iterate(STATE_PREFIX):
        yield key[len(STATE_PREFIX) :], value


def proof_document(store: ChainStore, height: int) -> bytes:
    """The proof file: block `height` with its receipts and certificate, and each validator
    change block up to `height` with its certificate and change row (see `format`)."""
    block = store.get_block_bytes(height)
    certificate = store.get_certificate(height)
    receipts = store.get_receipts(height)
    if block is None or receipts is None:
        raise SnapshotError(f"the store has no block {height} (pruned?)")
    if certificate is None:
        raise SnapshotError(f"block {height} has no commit certificate in the store")
    changes = []
    for key, row in store.index_rows(VALIDATOR_CHANGES_PREFIX):
        changed_at = int.from_bytes(key[len(VALIDATOR_CHANGES_PREFIX) :], "big")
        if changed_at > height:
            break
        change_block = store.get_block_bytes(changed_at)
        change_certificate = store.get_certificate(changed_at)
        change_receipts = store.get_receipts(changed_at)
        if change_block is None or change_certificate is None or change_receipts is None:
            raise SnapshotError(
                f"the store lacks block {changed_at}, its receipts or its certificate; that "
                "block scheduled a validator change: the set cannot be traced from the genesis"
            )
        changes.append(
            [
                change_block,
                change_certificate.to_wire(),
                [receipt.to_wire() for receipt in change_receipts],
                row,
            ]
        )
    return encode(
        {
            "block": block,
            "receipts": [receipt.to_wire() for receipt in receipts],
            "certificate": certificate.to_wire(),
            "changes": changes,
        }
    )


def create_snapshot(store: ChainStore, chain_id: str, genesis_hash: bytes, out: Path) -> Created:
    """Write the head's state of `store` to the new directory `out` (see the module
    docstring). Raises SnapshotError if `out` exists and is not empty, or the head lacks its
    certificate."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SnapshotError(f"{out} exists and is not an empty directory; choose a new one")
    height = store.head_height()
    if height is None or height < 1:
        raise SnapshotError("the store has no block above the genesis to snapshot")
    head = store.head()
    claim = Claim(chain_id, genesis_hash, height, head.hash(), head.header.state_root)
    return write_snapshot(claim, proof_document(store, height), _state_rows(store), out)


@dataclass(frozen=True, slots=True)
class Claim:
    """Which state a snapshot holds: the manifest's fields other than its files."""

    chain_id: str
    genesis_hash: bytes
    height: int
    block_hash: bytes
    state_root: bytes


class Cancelled(SnapshotError):
    """`write_snapshot` was asked to stop (the node is stopping); nothing was published."""


def write_snapshot(
    claim: Claim,
    proof: bytes,
    rows: Iterable[tuple[bytes, bytes]],
    out: Path,
    cancelled: Callable[[], bool] = lambda: False,
) -> Created:
    """Write a snapshot of `rows` (state keys ascending, without the store's prefix) with its
    proof file to the new directory `out`; the same rows give the same chunks on every node.
    `cancelled` is polled between chunks (a node's background snapshot, see
    `secnode.statesync.shelf`): when it answers True, the staging directory is removed and
    Cancelled raised."""
    staging = out.with_name(f".{out.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        written = len(proof)
        write_durably(staging / PROOF_FILE, proof)
        chunks = []
        entries = 0
        for index, chunk in enumerate(chunk_rows(rows)):
            if cancelled():
                raise Cancelled(f"snapshot of height {claim.height} stopped before it was done")
            data = encode([[key, value] for key, value in chunk])
            write_durably(staging / chunk_name(index), data)
            chunks.append(FileEntry(chunk_name(index), sha256_hex(data), len(chunk)))
            entries += len(chunk)
            written += len(data)
        manifest = Manifest(
            chain_id=claim.chain_id,
            genesis_hash=claim.genesis_hash,
            height=claim.height,
            block_hash=claim.block_hash,
            state_root=claim.state_root,
            entries=entries,
            proof=FileEntry(PROOF_FILE, sha256_hex(proof), 0),
            chunks=tuple(chunks),
        )
        text = json.dumps(manifest.to_json(), indent=1) + "\n"
        write_durably(staging / MANIFEST_FILE, text.encode())
        publish_directory(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Created(manifest, written + len(text))
