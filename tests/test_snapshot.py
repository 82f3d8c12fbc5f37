"""Snapshots (secnode.snapshot, `sec snapshot`): a node's head state written as chunks with a
manifest, restored into a new home only after the block's certificate is checked against the
validator set traced from the genesis, and continued from by a node and by further blocks.

The chain: 4 dev validators; block 1 adds node4 (effective at 9), so the snapshot's block (14)
is certified by a set the restore can only know from the change proof; a few transfers per
block give the state rows spread over several chunks (CHUNK_BYTES is lowered for the test).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import cli
from contracts import TX_TYPES
from ledger.encoding import decode, encode
from ledger.genesis import Genesis, load_genesis
from ledger.store import ChainStore, open_chain
from ledger.store_leveldb import LevelDBStore
from ledger.validator_state import current_validators
from secnode.network.devnet import validator_key
from secnode.runtime.node import Node
from secnode.snapshot import format as snapshot_format
from secnode.snapshot.create import create_snapshot
from secnode.snapshot.format import (
    MANIFEST_FILE,
    PROOF_FILE,
    SnapshotError,
    chunk_name,
    read_manifest,
    sha256_hex,
)
from secnode.snapshot.restore import restore_snapshot
from tests.joinkit import OLD_SIGNERS, SourceChain, chain_with_a_change, transfers
from tests.nodekit import certify, make_network

HEIGHT = 14


@pytest.fixture
def network(tmp_path: Path) -> Path:
    """A dev network whose node0 holds blocks 1..HEIGHT (node1..3 hold nothing yet)."""
    return chain_with_a_change(tmp_path / "net", HEIGHT)


@pytest.fixture
def snapshot(network: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(snapshot_format, "CHUNK_BYTES", 256)
    return _create(network / "node0", tmp_path / "snap")


def _create(home: Path, out: Path) -> Path:
    store, genesis = _open(home)
    try:
        create_snapshot(store, genesis.chain_id, genesis.document_hash(), out)
    finally:
        store.close()
    return out


def _open(home: Path) -> tuple[ChainStore, Genesis]:
    genesis = load_genesis(home / "genesis.json")
    store, _, _ = open_chain(LevelDBStore(home / "data"), genesis, TX_TYPES)
    return store, genesis


def _restore(network: Path, source: Path, name: str = "node1") -> None:
    home = network / name
    restore_snapshot(source, load_genesis(home / "genesis.json"), home / "data")


def _rewrite(snapshot: Path, name: str, data: bytes) -> None:
    """Replace a file and list its new hash in the manifest: only the chain can catch it."""
    (snapshot / name).write_bytes(data)
    manifest = json.loads((snapshot / MANIFEST_FILE).read_text())
    entries = [manifest["proof"], *manifest["chunks"]]
    next(e for e in entries if e["name"] == name)["sha256"] = sha256_hex(data)
    (snapshot / MANIFEST_FILE).write_text(json.dumps(manifest))


def _expect_refused(network: Path, snapshot: Path, match: str) -> None:
    with pytest.raises(SnapshotError, match=match):
        _restore(network, snapshot)
    data = network / "node1" / "data"
    assert not data.exists() or not any(data.iterdir()), "a refused restore wrote data"
    assert not any(p.name.startswith(".data") for p in (network / "node1").iterdir())


# --- the round trip ---------------------------------------------------------------------------


def test_a_restored_store_has_the_source_head_state_and_a_node_continues_from_it(
    network: Path, snapshot: Path
) -> None:
    manifest = read_manifest(snapshot)
    assert manifest.height == HEIGHT and len(manifest.chunks) > 3
    _restore(network, snapshot)
    source, _ = _open(network / "node0")
    try:
        expected_rows = source.load_state_rows()
        expected_head = source.head()
    finally:
        source.close()
    genesis = load_genesis(network / "node1" / "genesis.json")
    store, state, head = open_chain(
        LevelDBStore(network / "node1" / "data"), genesis, TX_TYPES, verify_state=True
    )
    try:
        assert head == expected_head.header
        assert store.load_state_rows() == expected_rows
        assert store.get_certificate(HEIGHT) is not None
        assert store.get_receipts(HEIGHT) is not None
        # a pruned node: the genesis, the block that scheduled the change, and the head
        present = [h for h in range(HEIGHT + 1) if store.get_block(h) is not None]
        assert present == [0, 1, HEIGHT]
        assert store.pruned_below() == HEIGHT  # the RPC says "pruned" below it
        assert current_validators(state).size == 5
    finally:
        store.close()
    node = Node.open(network / "node1")
    try:
        assert node.app.head.height == HEIGHT
        assert node.validators_at(HEIGHT).size == 5
        assert node.validators_at(3).size == 4
    finally:
        node.store.close()


def test_blocks_after_the_snapshot_execute_to_the_same_headers_on_both_stores(
    network: Path, snapshot: Path
) -> None:
    """The restored state is the source's: the next blocks, run on each, hash the same."""
    _restore(network, snapshot)
    headers = []
    for name in ("node0", "node1"):
        chain = SourceChain(network / name)
        chain.nonces["buyer1"] = 20 * (HEIGHT - 1)
        try:
            for height in range(HEIGHT + 1, HEIGHT + 4):
                chain.run(transfers(chain, 5, height))
            headers.append(chain.head)
        finally:
            chain.close()
    assert headers[0] == headers[1]


def test_snapshot_files_are_the_same_for_the_same_state(
    network: Path, snapshot: Path, tmp_path: Path
) -> None:
    again = _create(network / "node0", tmp_path / "again")
    for path in snapshot.iterdir():
        assert (again / path.name).read_bytes() == path.read_bytes(), path.name


# --- refusals: nothing is written ---------------------------------------------------------------


def test_invalid_chunk_corrupted_on_disk_is_named(network: Path, snapshot: Path) -> None:
    path = snapshot / chunk_name(2)
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    _expect_refused(network, snapshot, rf"{chunk_name(2)} is corrupt: its SHA-256")


def test_invalid_chunk_missing_is_named(network: Path, snapshot: Path) -> None:
    (snapshot / chunk_name(1)).unlink()
    _expect_refused(network, snapshot, rf"{chunk_name(1)} is missing")


def test_invalid_rows_with_a_matching_manifest_fail_the_certified_root(
    network: Path, snapshot: Path
) -> None:
    rows = decode((snapshot / chunk_name(0)).read_bytes())
    rows[0][1] = rows[0][1] + b"\x00"
    _rewrite(snapshot, chunk_name(0), encode(rows))
    _expect_refused(network, snapshot, "not the certified state root")


def test_invalid_rows_out_of_order_are_refused(network: Path, snapshot: Path) -> None:
    rows = decode((snapshot / chunk_name(0)).read_bytes())
    rows[0], rows[1] = rows[1], rows[0]
    _rewrite(snapshot, chunk_name(0), encode(rows))
    _expect_refused(network, snapshot, "not strictly ascending")


def test_invalid_manifest_state_root_is_refused(network: Path, snapshot: Path) -> None:
    manifest = json.loads((snapshot / MANIFEST_FILE).read_text())
    manifest["state_root"] = "00" * 32
    (snapshot / MANIFEST_FILE).write_text(json.dumps(manifest))
    _expect_refused(network, snapshot, "manifest's state root")


def test_invalid_manifest_version_is_refused(network: Path, snapshot: Path) -> None:
    manifest = json.loads((snapshot / MANIFEST_FILE).read_text())
    manifest["version"] = 99
    (snapshot / MANIFEST_FILE).write_text(json.dumps(manifest))
    _expect_refused(network, snapshot, "format version 99 is not supported")


def test_invalid_manifest_not_json_is_refused(network: Path, snapshot: Path) -> None:
    (snapshot / MANIFEST_FILE).write_text("{")
    _expect_refused(network, snapshot, "is not valid JSON")


def _proof(snapshot: Path) -> dict[str, object]:
    document: dict[str, object] = decode((snapshot / PROOF_FILE).read_bytes(), max_size=1 << 26)
    return document


def test_invalid_certificate_below_the_traced_quorum_is_refused(
    network: Path, snapshot: Path
) -> None:
    """Signed by 3 of the 4 genesis validators: a quorum before node4 joined, not at 14."""
    document = _proof(snapshot)
    manifest = read_manifest(snapshot)
    document["certificate"] = certify(HEIGHT, manifest.block_hash, OLD_SIGNERS).to_wire()
    _rewrite(snapshot, PROOF_FILE, encode(document))
    _expect_refused(network, snapshot, "a quorum of 4 of 5 validators is needed")


def test_invalid_snapshot_without_the_change_proof_cannot_trace_the_set(
    network: Path, snapshot: Path
) -> None:
    document = _proof(snapshot)
    document["changes"] = []
    _rewrite(snapshot, PROOF_FILE, encode(document))
    _expect_refused(network, snapshot, "set traced from the genesis is")


def test_invalid_change_proof_under_another_root_is_refused(network: Path, snapshot: Path) -> None:
    document = _proof(snapshot)
    changes = document["changes"]
    assert isinstance(changes, list)
    height, added, record, proof = decode(changes[0][3])
    forged = decode(record)
    forged["pending"][0][1] = [validator_key("node5").public_key]
    changes[0][3] = encode([height, added, encode(forged), proof])
    _rewrite(snapshot, PROOF_FILE, encode(document))
    _expect_refused(network, snapshot, "validator change proof of block 1")


def test_invalid_snapshot_of_another_genesis_is_refused(
    network: Path, snapshot: Path, tmp_path: Path
) -> None:
    other = make_network(tmp_path / "other", validator_change_delay=9)
    with pytest.raises(SnapshotError, match="is not this home's genesis"):
        _restore(other, snapshot)


def test_invalid_restore_into_a_home_with_data_is_refused(network: Path, snapshot: Path) -> None:
    with pytest.raises(SnapshotError, match="already holds data"):
        _restore(network, snapshot, "node0")


# --- the command ---------------------------------------------------------------------------------


def test_the_command_creates_and_restores(
    network: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli-snap"
    home = network / "node0"
    assert cli.main(["snapshot", "create", "--home", str(home), "--out", str(out), "--json"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["height"] == HEIGHT and created["format"] == "sec-snapshot"
    target = network / "node2"
    assert cli.main(["snapshot", "restore", "--home", str(target), "--from", str(out)]) == 0
    assert f"restored height {HEIGHT}" in capsys.readouterr().out
    assert cli.main(["snapshot", "restore", "--home", str(target), "--from", str(out)]) == 1
    assert "already holds data" in capsys.readouterr().err


def test_invalid_height_other_than_the_head_is_refused_by_the_command(
    network: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli-snap"
    home = network / "node0"
    code = cli.main(["snapshot", "create", "--home", str(home), "--out", str(out), "--height", "3"])
    assert code == 1
    assert f"its head only, which is height {HEIGHT}" in capsys.readouterr().err
    assert not out.exists()


def test_a_restored_node_can_make_the_next_snapshot(
    network: Path, snapshot: Path, tmp_path: Path
) -> None:
    """A pruned node keeps the validator change blocks, so its snapshot traces from genesis."""
    _restore(network, snapshot)
    again = _create(network / "node1", tmp_path / "from-node1")
    assert (again / PROOF_FILE).read_bytes() == (snapshot / PROOF_FILE).read_bytes()
    _restore(network, again, "node2")
    store, _ = _open(network / "node2")
    try:
        assert store.head().hash() == read_manifest(snapshot).block_hash
    finally:
        store.close()
