"""`state_sync`: fetch a certified snapshot from peers, check every byte, write the store.

Steps, and who is blamed when one fails (blame = `penalize` the peer and stop using it):

1. **Offers.** Ask every peer which snapshots it serves. Offers with the same height, block
   hash, state root and chunks digest vouch for the same chunks (`Manifest.chunks_digest`);
   candidates are tried by how many peers vouch for them, then newest first: a lone liar can
   offer the real newest block with a chunk list of its own making (found out only at step 4),
   so agreement goes before recency. An undecodable offer list is the peer's fault.
2. **Manifest and proof**, from one peer of the candidate: the manifest must name this chain
   and genesis and match the offer field by field; the proof file must hash to what the
   manifest lists and certify the block from the genesis validator set onwards
   (`secnode.snapshot.restore.verify_proof`). A failure blames that peer; the next peer of
   the candidate is asked.
3. **Chunks**, from every peer of the candidate at once (one worker per peer taking chunk
   numbers from a shared queue): a chunk whose SHA-256 is not the manifest's blames its peer,
   which is dropped, and the chunk goes back on the queue for another peer. A peer that times
   out (each request, and each whole file: `file_deadline`) or disconnects is dropped without
   blame. When no peer is left the candidate fails.
4. **Root.** The rows of all chunks, in key order, must fold to the certified state root. The
   chunk hashes came from the manifest, which matched the digest every peer of the candidate
   offered: a wrong root blames all of them; the next candidate is tried. The validators record
   among the rows must schedule exactly the sets the proof traced (`check_schedule`). Until
   then the chunks
   are held in memory, at most `max_bytes` of them per candidate (a candidate past it is
   given up, naming the limit).
5. **Write** the store (`secnode.snapshot.restore.write_store`), in a worker thread, as a
   snapshot restore does. The node then starts and catches up the blocks after the snapshot.

Nothing a peer sends is trusted beyond what the genesis proves: the state root comes from a
certificate traced from the genesis, every chunk is hashed, the whole is folded. Bounds: each
answer is at most one piece (`protocol.PIECE_BYTES`), each file at most the snapshot format's
bounds, each request waits at most the p2p request timeout, a candidate's chunks are at most
`max_bytes`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ledger.genesis import Genesis
from ledger.keys import PublicKey, address_of, format_address
from ledger.state_tree import StateTree
from p2p import P2PError
from secnode.snapshot.format import (
    MANIFEST_FILE,
    PROOF_FILE,
    Manifest,
    SnapshotError,
    check_file,
    parse_manifest,
)
from secnode.snapshot.restore import (
    Proven,
    check_chain,
    check_empty,
    check_schedule,
    fold_chunks,
    verify_proof,
    write_store,
)
from secnode.statesync.protocol import (
    Offer,
    StateSyncError,
    decode_offers,
    decode_piece,
    file_request,
    offers_request,
)

log = logging.getLogger("secnode.statesync")

DEFAULT_MAX_BYTES = 1 << 30
"""Chunk bytes one candidate may fill memory with before it is given up (1 GiB: about 14M
accounts; folding them takes about 8 times as much again; `[statesync] max_snapshot_bytes`)."""
FILE_DEADLINE_BASE_S = 30.0
FILE_MIN_RATE = 256 * 1024
"""A file of `size` bytes must arrive within FILE_DEADLINE_BASE_S + size / FILE_MIN_RATE
seconds (4 MiB: 46 s; the 64 MiB bound: 286 s), however the peer paces its answers."""


def file_deadline(size: int) -> float:
    return FILE_DEADLINE_BASE_S + size / FILE_MIN_RATE


class Requester(Protocol):
    """What state sync needs of the p2p host (`p2p.P2PHost` is one)."""

    async def request(self, peer: PublicKey, payload: bytes) -> bytes: ...

    def penalize(self, peer: PublicKey, detail: str) -> None: ...


class FileTooSlow(P2PError):
    """A peer did not deliver a whole file within its deadline (dropped, not blamed)."""


class NoSnapshot(StateSyncError):
    """No peer offered a snapshot that could be fetched and verified; the message says why."""


@dataclass
class Synced:
    """What `state_sync` wrote."""

    manifest: Manifest
    """The verified snapshot's manifest (its height is the new store's head)."""
    seconds: float
    """From the first offer request to the written store."""
    bytes_fetched: int = 0
    """File bytes received (manifest, proof, chunks)."""
    chunks_by_peer: dict[str, int] = field(default_factory=dict)
    """Chunks each peer (by address) delivered and that checked."""
    blamed: list[str] = field(default_factory=list)
    """Why each peer that was blamed was blamed."""


@dataclass
class _Run:
    requester: Requester
    genesis: Genesis
    progress: Callable[[str], None]
    synced_bytes: int = 0
    chunks_by_peer: dict[str, int] = field(default_factory=dict)
    blamed: list[str] = field(default_factory=list)
    banned: set[PublicKey] = field(default_factory=set)

    def blame(self, peer: PublicKey, detail: str) -> None:
        self.banned.add(peer)
        self.blamed.append(f"{_name(peer)}: {detail}")
        log.warning("state sync: dropping %s: %s", _name(peer), detail)
        self.requester.penalize(peer, f"state sync: {detail}")

    async def offers(self, peers: Sequence[PublicKey]) -> list[tuple[Offer, list[PublicKey]]]:
        """The candidates: each distinct offer with the peers that made it, best first."""
        answers = await asyncio.gather(*(self._offers_of(peer) for peer in set(peers)))
        vouched: dict[Offer, list[PublicKey]] = {}
        for peer, offers in zip(set(peers), answers, strict=True):
            for offer in offers:  # distinct within one peer's list (decode_offers)
                vouched.setdefault(offer, []).append(peer)
        ranked = sorted(vouched.items(), key=lambda item: (len(item[1]), item[0].height))
        return ranked[::-1]

    async def _offers_of(self, peer: PublicKey) -> list[Offer]:
        try:
            return decode_offers(await self.requester.request(peer, offers_request()))
        except StateSyncError as exc:
            self.blame(peer, str(exc))
        except P2PError as exc:
            log.info("state sync: %s gave no offers: %s", _name(peer), exc)
        except Exception:  # the top of one peer's part: never fail the others' offers
            log.exception("state sync: the offers of %s could not be handled", _name(peer))
        return []

    async def file(self, peer: PublicKey, height: int, name: str) -> bytes:
        """A whole file of the snapshot at `height`, piece by piece from `peer`, within
        `file_deadline` of its announced size (FileTooSlow, a P2PError, past it)."""
        data = bytearray()
        answer = await self.requester.request(peer, file_request(height, name, 0))
        size, piece = decode_piece(answer, 0, name)
        data += piece
        self.synced_bytes += len(piece)
        try:
            async with asyncio.timeout(file_deadline(size)):
                while len(data) < size:
                    answer = await self.requester.request(
                        peer, file_request(height, name, len(data))
                    )
                    piece_size, piece = decode_piece(answer, len(data), name)
                    if piece_size != size:
                        raise StateSyncError(f"{name} changed size from {size} to {piece_size}")
                    data += piece
                    self.synced_bytes += len(piece)
        except TimeoutError:
            raise FileTooSlow(
                f"{name} ({size} bytes) did not arrive within {file_deadline(size):.0f} s"
            ) from None
        return bytes(data)

    async def manifest(self, offer: Offer, peers: list[PublicKey]) -> tuple[Manifest, Proven]:
        """The offer's manifest and certified blocks, from the first peer that serves them
        correctly (NoSnapshot if none does)."""
        for peer in peers:
            if peer in self.banned:
                continue
            try:
                manifest = parse_manifest(
                    await self.file(peer, offer.height, MANIFEST_FILE), f"{_name(peer)}'s manifest"
                )
                check_chain(manifest, self.genesis, f"{_name(peer)}'s snapshot")
                if (
                    Offer(
                        manifest.height,
                        manifest.block_hash,
                        manifest.state_root,
                        manifest.chunks_digest(),
                    )
                    != offer
                ):
                    raise StateSyncError("its manifest is not the snapshot it offered")
                proof = await self.file(peer, offer.height, PROOF_FILE)
                check_file(manifest.proof, proof, f"{_name(peer)}'s {PROOF_FILE}")
                proven = await asyncio.to_thread(verify_proof, manifest, proof, self.genesis)
            except (SnapshotError, StateSyncError) as exc:
                self.blame(peer, str(exc))
                continue
            except P2PError as exc:
                log.info("state sync: %s did not serve its manifest: %s", _name(peer), exc)
                continue
            self.progress(
                f"snapshot at height {manifest.height} certified from the genesis: "
                f"{manifest.entries} state rows in {len(manifest.chunks)} chunks"
            )
            return manifest, proven
        raise NoSnapshot(f"no peer served a verifiable manifest for height {offer.height}")

    async def chunks(
        self, manifest: Manifest, peers: list[PublicKey], max_bytes: int
    ) -> list[tuple[bytes, str]]:
        """Every chunk of `manifest`, each hash-checked, fetched in parallel from `peers`;
        NoSnapshot once the checked chunks exceed `max_bytes`."""
        total = len(manifest.chunks)
        held = 0
        queue: asyncio.Queue[int] = asyncio.Queue()
        for index in range(total):
            queue.put_nowait(index)
        results: dict[int, tuple[bytes, str]] = {}
        finished = asyncio.Event()
        working = {peer for peer in peers if peer not in self.banned}

        async def worker(peer: PublicKey) -> None:
            nonlocal held
            try:
                while len(results) < total:
                    index = await queue.get()
                    entry = manifest.chunks[index]
                    where = f"{entry.name} from {_name(peer)}"
                    try:
                        data = await self.file(peer, manifest.height, entry.name)
                        check_file(entry, data, where)
                    except (SnapshotError, StateSyncError) as exc:
                        queue.put_nowait(index)
                        self.blame(peer, str(exc))
                        return
                    except P2PError as exc:
                        queue.put_nowait(index)
                        log.info("state sync: %s stopped serving: %s", _name(peer), exc)
                        return
                    results[index] = (data, where)
                    held += len(data)
                    if held > max_bytes:
                        finished.set()
                        return
                    self.chunks_by_peer[_name(peer)] = self.chunks_by_peer.get(_name(peer), 0) + 1
                    if len(results) % max(1, total // 10) == 0 or len(results) == total:
                        self.progress(f"chunks {len(results)}/{total}")
            finally:
                working.discard(peer)
                if len(results) == total or not working:
                    finished.set()

        if total == 0:
            return []
        tasks = [asyncio.create_task(worker(peer)) for peer in list(working)]
        if not tasks:
            raise NoSnapshot("no peer left to fetch chunks from")
        try:
            await finished.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if held > max_bytes:
            raise NoSnapshot(
                f"the snapshot at height {manifest.height} holds more than {max_bytes} bytes of "
                "state ([statesync] max_snapshot_bytes)"
            )
        if len(results) < total:
            raise NoSnapshot(
                f"every peer serving height {manifest.height} failed; "
                f"{total - len(results)} of {total} chunks missing"
            )
        return [results[index] for index in range(total)]


async def state_sync(
    requester: Requester,
    genesis: Genesis,
    peers: Sequence[PublicKey],
    data_dir: Path,
    progress: Callable[[str], None] = lambda line: None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Synced:
    """Join the chain of `genesis` from `peers`: write into `data_dir` (absent or empty) the
    newest snapshot they serve that verifies (see the module docstring). Raises NoSnapshot
    naming why when none does."""
    started = time.perf_counter()
    try:
        check_empty(data_dir)
    except SnapshotError as exc:
        raise NoSnapshot(str(exc)) from None
    run = _Run(requester, genesis, progress)
    candidates = await run.offers(peers)
    if not candidates:
        raise NoSnapshot(
            f"none of {len(peers)} peers offers a snapshot (are they taking them? "
            "[statesync] snapshot_interval)"
        )
    reasons = []
    for offer, vouching in candidates:
        if all(peer in run.banned for peer in vouching):
            continue
        progress(f"trying the snapshot at height {offer.height} offered by {len(vouching)} peers")
        try:
            manifest, proven = await run.manifest(offer, vouching)
            chunks = await run.chunks(manifest, vouching, max_bytes)
            rows, tree = await asyncio.to_thread(_fold, manifest, chunks, proven)
        except NoSnapshot as exc:
            reasons.append(str(exc))
            continue
        except SnapshotError as exc:  # the root: every peer of this offer vouched for it
            for peer in vouching:
                run.blame(peer, str(exc))
            reasons.append(str(exc))
            continue
        progress(f"state root verified; writing the store in {data_dir}")
        await asyncio.to_thread(write_store, data_dir, genesis, proven.blocks, rows, tree)
        return Synced(
            manifest,
            time.perf_counter() - started,
            run.synced_bytes,
            run.chunks_by_peer,
            run.blamed,
        )
    raise NoSnapshot("no offered snapshot could be fetched and verified: " + "; ".join(reasons))


def _fold(
    manifest: Manifest, chunks: list[tuple[bytes, str]], proven: Proven
) -> tuple[list[tuple[bytes, bytes]], StateTree]:
    rows, tree = fold_chunks(manifest, chunks, "the fetched chunks")
    check_schedule(proven, rows, manifest.height)
    return rows, tree


def _name(peer: PublicKey) -> str:
    return format_address(address_of(peer))
