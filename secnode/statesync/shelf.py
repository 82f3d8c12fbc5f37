"""`SnapshotShelf`: the snapshots a running node takes every few blocks and serves to peers.

Every `[statesync] snapshot_interval` blocks (0: never) the node snapshots the state it has
just committed: on the event loop it reads the proof file's blocks (a few store reads) and
opens a read view of the store (a LevelDB snapshot), then a worker thread writes the chunks
from that view (`secnode.snapshot.create.write_snapshot`) while the node goes on committing.
One snapshot is written at a time; a height that comes due while one is being written is
skipped. After a snapshot is published the oldest beyond `snapshot_keep` are removed.

Layout: DIR/NNNNNNNNNNNN/ (the height, zero-padded), each a snapshot directory as
`secnode.snapshot.format` describes. At start, a snapshot directory without a readable
manifest, and a `.NNNNNNNNNNNN.partial` staging directory a crash left, are removed; any other
name in DIR is never touched.

Serving (`serve`): offers come from the manifests in memory; a file request is answered only
for a name the snapshot's manifest lists, read by the shelf's own two reader threads (the loop
never blocks on disk, and a flood of requests cannot starve the node's other worker threads),
at most `protocol.PIECE_BYTES` per answer. A snapshot a peer fetched from in the last
SERVE_GRACE_S seconds is kept past `snapshot_keep` until it has been idle that long, so a
joiner is not cut off mid-download by a newer snapshot.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final

from ledger.store import ChainStore
from ledger.tree_store import STATE_PREFIX
from p2p import RequestRejected
from secnode.snapshot.create import Cancelled, Claim, proof_document, write_snapshot
from secnode.snapshot.format import MANIFEST_FILE, Manifest, SnapshotError, read_manifest
from secnode.statesync.protocol import (
    PIECE_BYTES,
    FileRequest,
    Offer,
    OffersRequest,
    encode_offers,
    encode_piece,
)

log = logging.getLogger("secnode.statesync")

Spawn = Callable[[Callable[[], None]], None]
"""Runs a function in a worker thread as a task of the node (`Node._in_worker_thread`)."""

HEIGHT_DIGITS: Final = 12
SNAPSHOT_NAME: Final = re.compile(r"^[0-9]{12}$")
STAGING_NAME: Final = re.compile(r"^\.[0-9]{12}\.partial$")
SERVE_GRACE_S: Final = 120.0
READER_THREADS: Final = 2


class SnapshotShelf:
    """The node's snapshot directory: taking snapshots and answering peers' requests.

    Invariant: `manifests` holds exactly the published snapshots on disk, newest last; beyond
    `keep` of them only those served within SERVE_GRACE_S. A file is served only if its
    snapshot's manifest lists it. `manifests` is replaced whole, under `_lock`, by whichever
    thread publishes or drops; readers on the loop take the reference as it is."""

    def __init__(self, directory: Path, interval: int, keep: int) -> None:
        self.directory = directory
        self.interval = interval
        self.keep = keep
        self.manifests: dict[int, Manifest] = {}
        self.busy = False
        """A snapshot is being written (in a worker thread)."""
        self.stopping = threading.Event()
        """Set when the node stops: a snapshot being written gives up at its next chunk."""
        self.idle = threading.Event()
        """Clear while a snapshot's worker thread holds a read view of the store: the node
        waits for it before closing the store."""
        self.idle.set()
        self.taken = 0
        """Snapshots published since start."""
        self._lock = threading.Lock()
        self._served_at: dict[int, float] = {}
        self._readers: ThreadPoolExecutor | None = None

    def load(self) -> None:
        """Read the published snapshots (at start); remove unreadable and staging ones."""
        if not self.directory.is_dir():
            return
        manifests = {}
        for path in sorted(self.directory.iterdir()):
            if STAGING_NAME.match(path.name):
                shutil.rmtree(path, ignore_errors=True)  # a staging directory left by a crash
                continue
            if not SNAPSHOT_NAME.match(path.name) or not path.is_dir():
                continue  # not ours: never touched
            try:
                manifest = read_manifest(path)
            except SnapshotError as exc:
                log.warning("removing unreadable snapshot %s: %s", path, exc)
                shutil.rmtree(path, ignore_errors=True)
                continue
            if path.name != _dir_name(manifest.height):
                log.warning(
                    "ignoring %s: it holds the snapshot of height %d", path, manifest.height
                )
                continue
            manifests[manifest.height] = manifest
        with self._lock:
            self.manifests = dict(sorted(manifests.items()))
            self._drop_old()

    def close(self) -> None:
        """Stop the reader threads (at node stop)."""
        if self._readers is not None:
            self._readers.shutdown(wait=False, cancel_futures=True)

    # --- taking -------------------------------------------------------------------------------

    def due(self, height: int) -> bool:
        return self.interval > 0 and height % self.interval == 0 and not self.busy

    def after_commit(
        self, store: ChainStore, chain_id: str, genesis_hash: bytes, spawn: Spawn
    ) -> None:
        """Called on the loop right after each commit: start a snapshot of the head if due."""
        height = store.head_height()
        if height is None or not self.due(height) or height in self.manifests:
            return
        head = store.head()
        try:
            proof = proof_document(store, height)
        except SnapshotError as exc:
            log.warning("no snapshot at height %d: %s", height, exc)
            return
        claim = Claim(chain_id, genesis_hash, height, head.hash(), head.header.state_root)
        out = self.directory / _dir_name(height)
        self.directory.mkdir(parents=True, exist_ok=True)
        view = store.kv.read_view()
        self.busy = True
        self.idle.clear()

        def work() -> None:
            try:
                skip = len(STATE_PREFIX)
                rows = ((key[skip:], value) for key, value in view.iterate(STATE_PREFIX))
                created = write_snapshot(claim, proof, rows, out, self.stopping.is_set)
                self._published(created.manifest)
                log.info(
                    "snapshot at height %d: %d state rows in %d chunks (%d bytes) in %s",
                    height,
                    created.manifest.entries,
                    len(created.manifest.chunks),
                    created.bytes_written,
                    out,
                )
            except Cancelled:
                pass
            except (SnapshotError, OSError) as exc:
                log.warning("snapshot at height %d failed: %s", height, exc)
            finally:
                view.close()
                self.busy = False
                self.idle.set()

        try:
            spawn(work)
        except BaseException:
            view.close()
            self.busy = False
            self.idle.set()
            raise

    def _published(self, manifest: Manifest) -> None:
        with self._lock:
            manifests = dict(self.manifests)
            manifests[manifest.height] = manifest
            self.manifests = dict(sorted(manifests.items()))
            self.taken += 1
            self._drop_old()

    def _drop_old(self) -> None:
        """Remove the oldest snapshots beyond `keep`, except those served lately (under
        `_lock`)."""
        now = time.monotonic()
        excess = len(self.manifests) - self.keep
        for height in list(self.manifests)[: max(0, excess)]:
            if now - self._served_at.get(height, -SERVE_GRACE_S) < SERVE_GRACE_S:
                continue  # a joiner is fetching it: dropped at a later publish
            manifests = dict(self.manifests)
            del manifests[height]
            self.manifests = manifests
            shutil.rmtree(self.directory / _dir_name(height), ignore_errors=True)

    # --- serving ------------------------------------------------------------------------------

    def offers(self) -> list[Offer]:
        return [
            Offer(m.height, m.block_hash, m.state_root, m.chunks_digest())
            for m in reversed(self.manifests.values())
        ]

    async def serve(self, request: OffersRequest | FileRequest) -> bytes:
        """The answer to a parsed state sync request; RequestRejected for a snapshot or file
        this node does not have."""
        if isinstance(request, OffersRequest):
            return encode_offers(self.offers())
        manifest = self.manifests.get(request.height)
        if manifest is None:
            raise RequestRejected(f"no snapshot at height {request.height}")
        names = {MANIFEST_FILE, manifest.proof.name} | {c.name for c in manifest.chunks}
        if request.name not in names:
            raise RequestRejected(f"snapshot {request.height} has no file {request.name!r}")
        self._served_at[request.height] = time.monotonic()
        path = self.directory / _dir_name(request.height) / request.name
        if self._readers is None:
            self._readers = ThreadPoolExecutor(READER_THREADS, "snapshot-reader")
        loop = asyncio.get_running_loop()
        try:
            size, piece = await loop.run_in_executor(
                self._readers, _read_piece, path, request.offset
            )
        except OSError:  # removed meanwhile (a newer snapshot replaced it)
            raise RequestRejected(f"snapshot {request.height} is no longer served") from None
        if request.offset >= size:
            raise RequestRejected(f"offset {request.offset} is past the end of {request.name}")
        return encode_piece(size, piece)


def _dir_name(height: int) -> str:
    return f"{height:0{HEIGHT_DIGITS}d}"


def _read_piece(path: Path, offset: int) -> tuple[int, bytes]:
    with path.open("rb") as handle:
        size = handle.seek(0, 2)
        handle.seek(min(offset, size))
        return size, handle.read(PIECE_BYTES)
