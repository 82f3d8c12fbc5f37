"""The snapshot layout: a JSON manifest, state chunks and one certified proof file.

    DIR/manifest.json       what the snapshot claims (below), human readable
    DIR/proof.bin           encode({"block", "receipts", "certificate", "changes"})
    DIR/chunk-000000.bin    encode([[state key, value], ...]), keys ascending across all chunks

The manifest names the chain (chain id, genesis document hash), the height, the block hash and
state root there, the number of state entries, and the SHA-256 and row count of every file. A
chunk holds whole rows, in key order, up to `CHUNK_BYTES` of keys and values (one larger row is
a chunk of its own): the same state gives the same chunks on every node, so chunks can be
fetched from different peers and checked one by one against the manifest.

Nothing in a snapshot is trusted: the restore checks each file's hash against the manifest
(naming the bad file), the block hash against the commit certificate, the certificate against
the validator set traced from the genesis (`secnode.snapshot.trace`), and the state root of the
rows against both the manifest and the certified header. A manifest only says which files to
read and lets a bad chunk be named before the whole state is folded.

"changes" in the proof file: for each block that scheduled a validator change (the rows of
`ledger.validator_changes`), [encoded block, certificate wire, receipts wire, change
row], oldest first, so the set that certified the snapshot's block can be traced from the
genesis alone.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ledger.encoding import decode, encode
from ledger.errors import LedgerError

FORMAT: Final = "sec-snapshot"
VERSION: Final = 1
"""Bumped whenever the layout changes; a restore refuses versions it does not know."""
MANIFEST_FILE: Final = "manifest.json"
PROOF_FILE: Final = "proof.bin"
CHUNK_BYTES: Final = 4 * 1024 * 1024
"""Keys and values per chunk (before encoding); state sync fetches a chunk in 1 MiB pieces
(`secnode.statesync.protocol.PIECE_BYTES`) and checks it whole against the manifest."""
MAX_FILE_BYTES: Final = 64 * 1024 * 1024
"""A chunk or proof file larger than this is refused before it is read (one row can exceed
CHUNK_BYTES, never this)."""
MAX_MANIFEST_BYTES: Final = 16 * 1024 * 1024


class SnapshotError(Exception):
    """A snapshot that cannot be written or restored; the message names the file or value."""


def chunk_name(index: int) -> str:
    return f"chunk-{index:06d}.bin"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of the snapshot as the manifest lists it."""

    name: str
    """File name inside the snapshot directory."""
    sha256: str
    """Hex SHA-256 of the file's bytes."""
    rows: int
    """State rows in a chunk (0 for the proof file)."""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.sha256, "rows": self.rows}


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a snapshot claims (see the module docstring); every field is checked on restore."""

    chain_id: str
    """The chain the state belongs to."""
    genesis_hash: bytes
    """The genesis document hash of that chain."""
    height: int
    """The certified block whose post-state the chunks hold."""
    block_hash: bytes
    """That block's header hash."""
    state_root: bytes
    """That block's state root: what the chunks' rows fold to."""
    entries: int
    """State rows over all chunks."""
    proof: FileEntry
    """The proof file (block, receipts, certificate, validator change proofs)."""
    chunks: tuple[FileEntry, ...]
    """The state chunks, in key order."""

    def chunks_digest(self) -> bytes:
        """SHA-256 of the chunk list (names, hashes, rows): equal on every node that holds the
        same state, whatever its certificate, so peers offering it vouch for the same chunks."""
        return hashlib.sha256(
            encode([[chunk.name, chunk.sha256, chunk.rows] for chunk in self.chunks])
        ).digest()

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "chain_id": self.chain_id,
            "genesis_hash": self.genesis_hash.hex(),
            "height": self.height,
            "block_hash": self.block_hash.hex(),
            "state_root": self.state_root.hex(),
            "entries": self.entries,
            "proof": self.proof.to_json(),
            "chunks": [chunk.to_json() for chunk in self.chunks],
        }

    @classmethod
    def from_json(cls, value: Any, where: str) -> Manifest:
        """Parse a manifest document; raise SnapshotError naming the bad field."""
        if not isinstance(value, dict):
            raise SnapshotError(f"{where}: the manifest is not a JSON object")
        if value.get("format") != FORMAT:
            raise SnapshotError(f"{where}: format is {value.get('format')!r}, not {FORMAT!r}")
        if value.get("version") != VERSION:
            raise SnapshotError(
                f"{where}: format version {value.get('version')!r} is not supported "
                f"(this node reads version {VERSION})"
            )
        chunks = _field(value, "chunks", list, where)
        manifest = cls(
            chain_id=_field(value, "chain_id", str, where),
            genesis_hash=_hash_field(value, "genesis_hash", where),
            height=_count(value, "height", where),
            block_hash=_hash_field(value, "block_hash", where),
            state_root=_hash_field(value, "state_root", where),
            entries=_count(value, "entries", where),
            proof=_file_entry(value.get("proof"), f"{where}: proof"),
            chunks=tuple(
                _file_entry(chunk, f"{where}: chunks[{index}]")
                for index, chunk in enumerate(chunks)
            ),
        )
        names = [chunk.name for chunk in manifest.chunks]
        if names != [chunk_name(index) for index in range(len(names))]:
            raise SnapshotError(f"{where}: chunk names must be {chunk_name(0)}, ... in order")
        if manifest.proof.name != PROOF_FILE:
            raise SnapshotError(f"{where}: the proof file must be {PROOF_FILE}")
        if sum(chunk.rows for chunk in manifest.chunks) != manifest.entries:
            raise SnapshotError(f"{where}: the chunks' rows do not add up to entries")
        if manifest.height < 1:
            raise SnapshotError(f"{where}: height must be at least 1 (block 0 is the genesis)")
        return manifest


def _field(value: dict[str, Any], name: str, kind: type, where: str) -> Any:
    item = value.get(name)
    if not isinstance(item, kind) or isinstance(item, bool):
        raise SnapshotError(f"{where}: {name} must be a {kind.__name__}, not {item!r}")
    return item


def _count(value: dict[str, Any], name: str, where: str) -> int:
    item: int = _field(value, name, int, where)
    if item < 0:
        raise SnapshotError(f"{where}: {name} must not be negative, not {item}")
    return item


def _hash_field(value: dict[str, Any], name: str, where: str) -> bytes:
    text: str = _field(value, name, str, where)
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise SnapshotError(f"{where}: {name} must be 64 hex digits, not {text!r}")
    return raw


def _file_entry(value: Any, where: str) -> FileEntry:
    if not isinstance(value, dict) or set(value) != {"name", "sha256", "rows"}:
        raise SnapshotError(f"{where}: must be an object of name, sha256, rows")
    name: str = _field(value, "name", str, where)
    if "/" in name or "\\" in name or name.startswith("."):
        raise SnapshotError(f"{where}: file name {name!r} must be a plain name in the snapshot")
    _hash_field(value, "sha256", where)
    return FileEntry(name, value["sha256"], _count(value, "rows", where))


def parse_manifest(data: bytes, where: str) -> Manifest:
    """A manifest from its bytes (as read from a file or a peer); SnapshotError naming `where`."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise SnapshotError(f"{where} is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        document = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SnapshotError(f"{where} is not valid JSON: {exc}") from None
    return Manifest.from_json(document, where)


def read_manifest(directory: Path) -> Manifest:
    path = directory / MANIFEST_FILE
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise SnapshotError(f"{path} is larger than {MAX_MANIFEST_BYTES} bytes")
        data = path.read_bytes()
    except FileNotFoundError:
        raise SnapshotError(f"{path} does not exist: is {directory} a snapshot?") from None
    except OSError as exc:
        raise SnapshotError(f"cannot read {path}: {exc.strerror}") from None
    return parse_manifest(data, str(path))


def read_checked(directory: Path, entry: FileEntry) -> bytes:
    """The bytes of one listed file, after checking its size bound and its hash."""
    path = directory / entry.name
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise SnapshotError(f"{path} is larger than {MAX_FILE_BYTES} bytes")
        data = path.read_bytes()
    except FileNotFoundError:
        raise SnapshotError(f"{path} is missing (the manifest lists it)") from None
    except OSError as exc:
        raise SnapshotError(f"cannot read {path}: {exc.strerror}") from None
    check_file(entry, data, str(path))
    return data


def check_file(entry: FileEntry, data: bytes, where: str) -> None:
    """Raise SnapshotError unless `data` hashes to what the manifest lists for `entry`."""
    actual = sha256_hex(data)
    if actual != entry.sha256:
        raise SnapshotError(
            f"{where} is corrupt: its SHA-256 is {actual}, the manifest lists {entry.sha256}"
        )


def decode_chunk(
    data: bytes, entry: FileEntry, after: bytes | None, where: str
) -> list[tuple[bytes, bytes]]:
    """The rows of a chunk whose hash was checked: [key, value] pairs of bytes, keys strictly
    ascending and above `after` (the previous chunk's last key), as many as the manifest says."""
    try:
        value = decode(data, max_size=MAX_FILE_BYTES)
    except LedgerError as exc:
        raise SnapshotError(f"{where} does not decode: {exc}") from None
    if not isinstance(value, list) or len(value) != entry.rows:
        raise SnapshotError(f"{where} must be a list of {entry.rows} rows")
    rows: list[tuple[bytes, bytes]] = []
    previous = after
    for row in value:
        if (
            not isinstance(row, list)
            or len(row) != 2
            or not isinstance(row[0], bytes)
            or not isinstance(row[1], bytes)
        ):
            raise SnapshotError(f"{where}: each row must be [key bytes, value bytes]")
        if previous is not None and row[0] <= previous:
            raise SnapshotError(f"{where}: keys are not strictly ascending at {row[0].hex()}")
        previous = row[0]
        rows.append((row[0], row[1]))
    return rows


def write_durably(path: Path, data: bytes) -> None:
    """Write `path` through a temporary name, fsync'd, then renamed: never half a file."""
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)


def sync_directory(path: Path) -> None:
    """fsync a directory, so the names renamed into it survive a crash."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def publish_directory(staging: Path, target: Path) -> None:
    """Rename the finished `staging` directory to `target` (absent or an empty directory) and
    make the rename durable: readers see all of it or nothing."""
    sync_directory(staging)
    if target.exists():
        target.rmdir()
    staging.rename(target)
    sync_directory(target.parent)


def chunk_rows(rows: Iterable[tuple[bytes, bytes]]) -> Iterable[list[tuple[bytes, bytes]]]:
    """Rows grouped into chunks of at most `CHUNK_BYTES` of keys and values (a larger row
    alone), in the order given."""
    chunk: list[tuple[bytes, bytes]] = []
    size = 0
    for key, value in rows:
        row_size = len(key) + len(value)
        if chunk and size + row_size > CHUNK_BYTES:
            yield chunk
            chunk, size = [], 0
        chunk.append((key, value))
        size += row_size
    if chunk:
        yield chunk
