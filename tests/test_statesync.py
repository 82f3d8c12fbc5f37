"""State sync (secnode.statesync): a new node fills its store from snapshots its peers serve over
real p2p connections (authenticated, encrypted, on 127.0.0.1), checking every byte against the
genesis; hostile peers are found out and dropped, and the sync carries on with the others.

The chain is test_snapshot's: 4 dev validators, block 1 adds node4 (effective at 9), so the
snapshot's block (14) is certified by a set known only from the change proof. CHUNK_BYTES is
lowered so the state spans many chunks. Servers are p2p hosts with the keys of node1..node3,
each serving a `SnapshotShelf` directory; the joiner has node4's key.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from contracts import TX_TYPES
from ledger.encoding import decode, encode
from ledger.genesis import Genesis, load_genesis
from ledger.keys import PublicKey, Signer
from ledger.store import ChainStore, open_chain
from ledger.store_leveldb import LevelDBStore
from ledger.transactions import ValidatorUpdate
from p2p import (
    InvalidPayload,
    P2PConfig,
    PeerAddress,
    RequestRejected,
    allowlist,
)
from secnode.network.devnet import dev_account_key, validator_key
from secnode.snapshot import format as snapshot_format
from secnode.snapshot.create import create_snapshot
from secnode.snapshot.format import (
    MANIFEST_FILE,
    PROOF_FILE,
    SnapshotError,
    read_manifest,
    sha256_hex,
)
from secnode.snapshot.restore import restore_snapshot
from secnode.statesync import fetch
from secnode.statesync.fetch import NoSnapshot, Synced
from secnode.statesync.join import join
from secnode.statesync.protocol import (
    PIECE_BYTES,
    FileRequest,
    StateSyncError,
    decode_offers,
    decode_piece,
    decode_request,
    encode_piece,
    file_request,
    offers_request,
    parse_request,
)
from secnode.statesync.shelf import SERVE_GRACE_S, SnapshotShelf
from tests.joinkit import SourceChain, chain_with_a_change, transfers
from tests.statesync_servers import JOINER, serving

HEIGHT = 14


@pytest.fixture
def network(tmp_path: Path) -> Path:
    """A dev network whose node0 holds blocks 1..HEIGHT."""
    return chain_with_a_change(tmp_path / "net", HEIGHT)


def _open(home: Path) -> tuple[ChainStore, Genesis]:
    genesis = load_genesis(home / "genesis.json")
    store, _, _ = open_chain(LevelDBStore(home / "data"), genesis, TX_TYPES)
    return store, genesis


@pytest.fixture
def shelf(network: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A shelf directory holding node0's snapshot at HEIGHT (many small chunks)."""
    monkeypatch.setattr(snapshot_format, "CHUNK_BYTES", 128)
    store, genesis = _open(network / "node0")
    try:
        create_snapshot(
            store, genesis.chain_id, genesis.document_hash(), tmp_path / "shelf" / f"{HEIGHT:012d}"
        )
    finally:
        store.close()
    assert len(read_manifest(tmp_path / "shelf" / f"{HEIGHT:012d}").chunks) >= 8
    return tmp_path / "shelf"


def _copy(shelf: Path, to: Path) -> Path:
    shutil.copytree(shelf, to)
    return to / f"{HEIGHT:012d}"


def _assert_store_is_node0s(network: Path, data_dir: Path) -> None:
    source, genesis = _open(network / "node0")
    try:
        head = source.head()
    finally:
        source.close()
    store, state, restored_head = open_chain(LevelDBStore(data_dir), genesis, TX_TYPES)
    try:
        assert restored_head == head.header
        assert state.compute_root() == head.header.state_root
    finally:
        store.close()


async def _sync(network: Path, directories: Sequence[Path], data_dir: Path) -> Synced:
    genesis = load_genesis(network / "genesis.json")
    async with serving(directories, genesis.chain_id) as config:
        return await join(config, Signer(validator_key(JOINER)), genesis, data_dir, wait_s=10)


# --- joining over real p2p connections ---------------------------------------------------------


def test_a_new_node_joins_from_three_peers_and_holds_the_certified_state(
    network: Path, shelf: Path, tmp_path: Path
) -> None:
    copies = [shelf, tmp_path / "s2", tmp_path / "s3"]
    for copy in copies[1:]:
        shutil.copytree(shelf, copy)
    synced = asyncio.run(_sync(network, copies, tmp_path / "joined"))
    manifest = read_manifest(shelf / f"{HEIGHT:012d}")
    assert synced.manifest == manifest
    assert synced.blamed == []
    assert sum(synced.chunks_by_peer.values()) == len(manifest.chunks)
    assert len(synced.chunks_by_peer) >= 2  # fetched from several peers at once
    _assert_store_is_node0s(network, tmp_path / "joined")


def test_a_peer_serving_bad_chunks_is_dropped_and_its_chunks_fetched_elsewhere(
    network: Path, shelf: Path, tmp_path: Path
) -> None:
    liar = _copy(shelf, tmp_path / "liar")
    for chunk in liar.glob("chunk-*.bin"):  # same manifest, every chunk flipped
        data = bytearray(chunk.read_bytes())
        data[-1] ^= 0xFF
        chunk.write_bytes(bytes(data))
    honest = tmp_path / "honest"
    shutil.copytree(shelf, honest)
    synced = asyncio.run(_sync(network, [liar.parent, honest], tmp_path / "joined"))
    liar_name = Signer(validator_key("node1")).address
    assert any("is corrupt" in reason for reason in synced.blamed), synced.blamed
    assert len(synced.blamed) == 1
    assert all(name != _name_of(liar_name) for name in synced.chunks_by_peer)
    _assert_store_is_node0s(network, tmp_path / "joined")


def test_a_made_up_newer_snapshot_is_refused_and_the_certified_one_used(
    network: Path, shelf: Path, tmp_path: Path
) -> None:
    liar_shelf = tmp_path / "liar"  # offers only the fake: one voucher each, the newer first
    fake = liar_shelf / f"{HEIGHT + 100:012d}"
    shutil.copytree(shelf / f"{HEIGHT:012d}", fake)
    document = json.loads((fake / MANIFEST_FILE).read_text())
    document["height"] = HEIGHT + 100  # the proof holds block 14: the claim cannot be certified
    (fake / MANIFEST_FILE).write_text(json.dumps(document))
    honest = tmp_path / "honest"
    shutil.copytree(shelf, honest)
    synced = asyncio.run(_sync(network, [liar_shelf, honest], tmp_path / "joined"))
    assert synced.manifest.height == HEIGHT
    assert len(synced.blamed) == 1 and "manifest names block 114" in synced.blamed[0]
    _assert_store_is_node0s(network, tmp_path / "joined")


def test_rows_that_do_not_fold_to_the_certified_root_fail_the_sync_and_write_nothing(
    network: Path, shelf: Path, tmp_path: Path
) -> None:
    liar = _copy(shelf, tmp_path / "liar")
    _doctor_first_row(liar)
    with pytest.raises(NoSnapshot, match="fold to root"):
        asyncio.run(_sync(network, [liar.parent], tmp_path / "joined"))
    assert not (tmp_path / "joined").exists()


def test_offers_more_peers_agree_on_go_before_a_lone_newer_one(
    network: Path, shelf: Path, tmp_path: Path
) -> None:
    chain = SourceChain(network / "node0")  # two more certified blocks: 15, 16
    try:
        chain.nonces["buyer1"] = 13 * 20
        for height in (HEIGHT + 1, HEIGHT + 2):
            chain.run(transfers(chain, 20, height))
    finally:
        chain.close()
    store, genesis = _open(network / "node0")
    liar = tmp_path / "liar" / f"{HEIGHT + 2:012d}"
    try:  # the real block 16, certified, with a chunk list of the liar's own making
        create_snapshot(store, genesis.chain_id, genesis.document_hash(), liar)
    finally:
        store.close()
    _doctor_first_row(liar)
    honest = [shelf, tmp_path / "honest2"]
    shutil.copytree(shelf, honest[1])
    synced = asyncio.run(_sync(network, [liar.parent, *honest], tmp_path / "joined"))
    assert synced.manifest.height == HEIGHT and synced.blamed == []  # the liar was never tried
    store, _, head = open_chain(LevelDBStore(tmp_path / "joined"), genesis, TX_TYPES)
    store.close()
    assert head.height == HEIGHT


def test_a_snapshot_beyond_the_memory_bound_is_given_up_naming_the_setting(
    network: Path, shelf: Path, tmp_path: Path
) -> None:
    genesis = load_genesis(network / "genesis.json")

    async def run() -> Synced:
        async with serving([shelf], genesis.chain_id) as config:
            signer = Signer(validator_key(JOINER))
            return await join(config, signer, genesis, tmp_path / "joined", 10, max_bytes=300)

    with pytest.raises(NoSnapshot, match=r"more than 300 bytes.*max_snapshot_bytes"):
        asyncio.run(run())
    assert not (tmp_path / "joined").exists()


def test_no_snapshot_offered_is_a_clear_error(network: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(NoSnapshot, match=r"offers a snapshot.*snapshot_interval"):
        asyncio.run(_sync(network, [tmp_path / "empty"], tmp_path / "joined"))


def test_no_peer_reachable_is_a_clear_error(network: Path, tmp_path: Path) -> None:
    genesis = load_genesis(network / "genesis.json")
    nobody = PeerAddress(validator_key("node1").public_key, "127.0.0.1", 1)
    config = P2PConfig(
        chain_id=genesis.chain_id,
        allowed_keys=allowlist([bytes(nobody.public_key)]),
        peers=(nobody,),
    )
    signer = Signer(validator_key(JOINER))
    with pytest.raises(NoSnapshot, match="no peer connected within"):
        asyncio.run(join(config, signer, genesis, tmp_path / "joined", wait_s=0.5))


# --- serving: what a hostile requester can and cannot get ---------------------------------------


def test_hostile_requests_are_refused_or_charged(shelf: Path) -> None:
    served = SnapshotShelf(shelf, interval=0, keep=10)
    served.load()
    for bad in (
        {"want": "file"},
        {"want": "file", "height": -1, "name": "proof.bin", "offset": 0},
        {"want": "file", "height": HEIGHT, "name": "x" * 65, "offset": 0},
        {"want": "file", "height": HEIGHT, "name": "proof.bin", "offset": True},
        {"want": "everything"},
        ["want", "offers"],
    ):
        with pytest.raises(InvalidPayload):
            parse_request(bad)
    for name in ("../../config.toml", "node.key", ".partial", "chunk-999999.bin"):
        with pytest.raises(RequestRejected, match="has no file"):
            asyncio.run(served.serve(FileRequest(HEIGHT, name, 0)))
    with pytest.raises(RequestRejected, match="no snapshot at height 15"):
        asyncio.run(served.serve(FileRequest(HEIGHT + 1, MANIFEST_FILE, 0)))
    with pytest.raises(RequestRejected, match="past the end"):
        asyncio.run(served.serve(FileRequest(HEIGHT, MANIFEST_FILE, 10**9)))
    with pytest.raises(InvalidPayload, match="does not decode"):
        decode_request(b"\xc1" * 2000)


def test_a_file_is_served_in_bounded_pieces(shelf: Path) -> None:
    served = SnapshotShelf(shelf, interval=0, keep=10)
    served.load()
    answer = asyncio.run(served.serve(parse_request(decode_request(offers_request()))))
    (offer,) = decode_offers(answer)
    assert offer.height == HEIGHT
    request = parse_request(decode_request(file_request(HEIGHT, MANIFEST_FILE, 5)))
    size, piece = decode_piece(asyncio.run(served.serve(request)), 5, MANIFEST_FILE)
    assert piece == (shelf / f"{HEIGHT:012d}" / MANIFEST_FILE).read_bytes()[5:] and size > 5


def test_hostile_answers_are_refused() -> None:
    for size, piece, offset, flaw in (
        (10, b"x" * 11, 0, "has 11 bytes"),  # past the end
        (10, b"", 0, "has 0 bytes"),
        (3 << 20, b"x", 0, "has 1 bytes, not min"),  # a drip: pieces must be full
        (10, b"x", 10, "has 1 bytes"),  # offset at the end
    ):
        with pytest.raises(StateSyncError, match=flaw):
            decode_piece(encode_piece(size, piece), offset, "chunk-000000.bin")
    with pytest.raises(StateSyncError, match="out of bounds"):
        decode_piece(encode_piece(1 << 40, b"x"), 0, "chunk-000000.bin")
    with pytest.raises(StateSyncError, match="does not decode"):
        decode_piece(encode([1, b"x" * (PIECE_BYTES + 100)]), 0, "chunk-000000.bin")
    offer = [1, b"\0" * 32, b"\0" * 32, b"\0" * 32]
    with pytest.raises(StateSyncError, match="at most 16"):
        decode_offers(encode([offer] * 17))
    with pytest.raises(StateSyncError, match="each offer"):
        decode_offers(encode([[0, *offer[1:]]]))
    with pytest.raises(StateSyncError, match="same snapshot twice"):  # one peer, one vote
        decode_offers(encode([offer, offer]))


class _SlowPeer:
    """A requester whose answers are well-formed full pieces, each after `delay` seconds."""

    def __init__(self, size: int, delay: float) -> None:
        self.size, self.delay = size, delay

    async def request(self, peer: PublicKey, payload: bytes) -> bytes:
        request = parse_request(decode_request(payload))
        assert isinstance(request, FileRequest)
        await asyncio.sleep(self.delay)
        return encode_piece(self.size, b"x" * min(PIECE_BYTES, self.size - request.offset))

    def penalize(self, peer: PublicKey, detail: str) -> None:
        raise AssertionError("slowness is not blamed")


def test_a_file_must_arrive_within_its_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch, "FILE_DEADLINE_BASE_S", 0.3)
    monkeypatch.setattr(fetch, "FILE_MIN_RATE", 1 << 40)
    genesis = Genesis.__new__(Genesis)  # not read by `file`
    peer = validator_key("node1").public_key
    slow = fetch._Run(_SlowPeer(8 * PIECE_BYTES, 0.1), genesis, print)
    with pytest.raises(fetch.FileTooSlow, match="did not arrive within"):
        asyncio.run(slow.file(peer, HEIGHT, "chunk-000000.bin"))
    quick = fetch._Run(_SlowPeer(2 * PIECE_BYTES, 0.01), genesis, print)
    assert len(asyncio.run(quick.file(peer, HEIGHT, "chunk-000000.bin"))) == 2 * PIECE_BYTES


# --- taking snapshots in a running node ---------------------------------------------------------


def test_a_node_snapshots_every_interval_from_a_consistent_view_and_keeps_the_newest(
    network: Path, tmp_path: Path
) -> None:
    chain = SourceChain(network / "node1")
    genesis = chain.genesis
    shelf = SnapshotShelf(tmp_path / "snapshots", interval=4, keep=2)
    pending: list[Callable[[], None]] = []
    held: Callable[[], None] | None = None
    try:
        update = ValidatorUpdate((validator_key("node4").public_key,), ())
        chain.run([chain.sign(dev_account_key("admin"), "admin", update)])
        for height in range(2, 17):
            chain.run(transfers(chain, 5, height))
            shelf.after_commit(
                chain.store, genesis.chain_id, genesis.document_hash(), pending.append
            )
            if height == 8:  # hold the snapshot of 8 while blocks 9..13 commit
                held = pending.pop()
                assert shelf.busy and not shelf.idle.is_set()
            elif height == 12:
                assert not pending  # due, but one snapshot at a time: 12 is skipped
            elif height == 13:
                assert held is not None
                held()  # written from the view taken at 8, after 9..13 changed the store
                assert shelf.idle.is_set()
            while pending:
                pending.pop()()
    finally:
        chain.close()
    assert list(shelf.manifests) == [8, 16] and shelf.taken == 3  # 4, 8, 16; 4 dropped
    assert sorted(p.name for p in (tmp_path / "snapshots").iterdir()) == [f"{8:012d}", f"{16:012d}"]
    restored = restore_snapshot(tmp_path / "snapshots" / f"{8:012d}", genesis, tmp_path / "r8")
    assert restored.manifest.height == 8  # its rows fold to block 8's certified root
    reloaded = SnapshotShelf(tmp_path / "snapshots", interval=4, keep=2)
    reloaded.load()
    assert reloaded.manifests == shelf.manifests


def test_a_stopping_node_abandons_its_snapshot_and_publishes_nothing(
    network: Path, tmp_path: Path
) -> None:
    store, genesis = _open(network / "node0")
    shelf = SnapshotShelf(tmp_path / "snapshots", interval=HEIGHT, keep=2)
    pending: list[Callable[[], None]] = []
    try:
        shelf.after_commit(store, genesis.chain_id, genesis.document_hash(), pending.append)
        shelf.stopping.set()
        pending.pop()()
    finally:
        store.close()
    assert shelf.manifests == {} and shelf.idle.is_set()
    assert list((tmp_path / "snapshots").iterdir()) == []


def test_loading_a_shelf_touches_only_its_own_names(shelf: Path, tmp_path: Path) -> None:
    (shelf / "data").mkdir()  # e.g. snapshot_dir = "." in a home: the store is not ours
    (shelf / "data" / "CURRENT").write_text("x")
    (shelf / ".000000000099.partial").mkdir()  # a crash's staging directory: ours
    (shelf / "000000000042").mkdir()  # a snapshot without a manifest: ours, unreadable
    loaded = SnapshotShelf(shelf, interval=0, keep=1)
    loaded.load()
    assert list(loaded.manifests) == [HEIGHT]
    assert sorted(p.name for p in shelf.iterdir()) == [f"{HEIGHT:012d}", "data"]


def test_a_snapshot_being_fetched_outlives_snapshot_keep_for_a_while(
    shelf: Path, network: Path
) -> None:
    served = SnapshotShelf(shelf, interval=0, keep=1)
    served.load()
    asyncio.run(served.serve(FileRequest(HEIGHT, MANIFEST_FILE, 0)))
    newer = replace(served.manifests[HEIGHT], height=HEIGHT + 10)
    served._published(newer)
    assert list(served.manifests) == [HEIGHT, HEIGHT + 10]  # a joiner is on 14: kept
    served._served_at[HEIGHT] -= SERVE_GRACE_S
    served._published(replace(newer, height=HEIGHT + 20))
    assert list(served.manifests) == [HEIGHT + 20]
    assert not (shelf / f"{HEIGHT:012d}").exists()
    served.close()


def test_a_proof_that_leaves_out_a_pending_validator_change_is_refused(
    tmp_path: Path,
) -> None:
    root = chain_with_a_change(tmp_path / "net5", 5)  # node4 added at 1, effective at 9
    store, genesis = _open(root / "node0")
    snapshot = tmp_path / "shelf" / f"{5:012d}"
    try:
        create_snapshot(store, genesis.chain_id, genesis.document_hash(), snapshot)
    finally:
        store.close()
    proof = decode((snapshot / PROOF_FILE).read_bytes())
    assert len(proof["changes"]) == 1
    proof["changes"] = []  # block 5 is certified by the genesis set either way
    (snapshot / PROOF_FILE).write_bytes(encode(proof))
    document = json.loads((snapshot / MANIFEST_FILE).read_text())
    document["proof"]["sha256"] = sha256_hex((snapshot / PROOF_FILE).read_bytes())
    (snapshot / MANIFEST_FILE).write_text(json.dumps(document))
    with pytest.raises(SnapshotError, match=r"proves \[1\]: a validator change proof is missing"):
        restore_snapshot(snapshot, genesis, tmp_path / "restored")
    with pytest.raises(NoSnapshot, match="a validator change proof is missing"):
        asyncio.run(_sync(root, [snapshot.parent], tmp_path / "joined"))
    assert not (tmp_path / "joined").exists() and not (tmp_path / "restored").exists()


def _doctor_first_row(snapshot: Path) -> None:
    """Change one state row and rewrite the manifest to match: self-consistent, but its rows
    no longer fold to the certified root."""
    chunk = snapshot / "chunk-000000.bin"
    rows = [[key, value] for key, value in _rows(chunk.read_bytes())]
    rows[0][1] = rows[0][1] + b"\x00"
    chunk.write_bytes(encode(rows))
    document = json.loads((snapshot / MANIFEST_FILE).read_text())
    document["chunks"][0]["sha256"] = sha256_hex(chunk.read_bytes())
    (snapshot / MANIFEST_FILE).write_text(json.dumps(document))


def _rows(data: bytes) -> list[tuple[bytes, bytes]]:
    from ledger.encoding import decode

    value = decode(data, max_size=1 << 26)
    assert isinstance(value, list)
    return [(row[0], row[1]) for row in value]


def _name_of(address: bytes) -> str:
    from ledger.keys import format_address

    return format_address(address)
