"""`sec export`: an analyst's DuckDB recomputes every trust epoch's inputs and scores roots from
the exported tables alone and gets the chain's bit for bit; balances sum to the supply; a second
export adds only what is new and matches a fresh full export; an interrupted export leaves the
directory valid; and each refusal (`test_invalid_*`) names what is wrong.

The chains are real node stores on LevelDB (`tests.exportkit`), written as a node writes them.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cli import main
from contracts.epochs import SCORE_PREFIX, parse_score_record, read_epoch
from contracts.trust import ATTESTATION_PREFIX
from ledger.encoding import decode, encode
from ledger.merkle import leaf_hash, merkle_root
from ledger.store_leveldb import LevelDBStore
from secnode.export.manifest import MANIFEST, SEGMENTS, STAGING_PREFIX
from secnode.export.progress import Progress
from secnode.export.run import export_chain
from secnode.export.schema import TABLES
from secnode.export.source import ExportError, open_home
from tests.exportkit import StoreChain, make_home


class Interrupted(Exception):
    """Raised by a test to stop an export half-way through writing its segment."""


def build(root: Path, orders: int, *, seed: int = 0) -> Path:
    """A node home under `root` whose chain traded `orders` orders (several trust epochs)."""
    home = make_home(root)
    grow(home, orders, seed=seed)
    return home


def grow(home: Path, orders: int, *, seed: int = 0) -> None:
    chain = StoreChain(home)
    try:
        chain.trade(orders, per_block=20, seed=seed)
    finally:
        chain.close()


def export(home: Path, out: Path, stream: io.StringIO | None = None) -> int:
    """Export `home` into `out`; the rows written."""
    store, chain = open_home(home)
    try:
        summary = export_chain(store, chain, out, Progress(stream or io.StringIO()))
    finally:
        store.close()
    return summary.rows


def parquet(out: Path, table: str) -> str:
    """DuckDB's reader of every segment's file of `table`."""
    return f"read_parquet('{out}/{SEGMENTS}/*/{table}.parquet')"


def latest(out: Path, table: str, key: str) -> str:
    """The current row of each record of snapshot table `table` (largest `as_of_height`)."""
    return (
        f"(SELECT * FROM {parquet(out, table)} "
        f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY as_of_height DESC) = 1)"
    )


def row_of(db: duckdb.DuckDBPyConnection, sql: str) -> tuple[Any, ...]:
    """The one row `sql` gives."""
    row = db.execute(sql).fetchone()
    assert row is not None, sql
    return tuple(row)


def chain_epochs(home: Path) -> Iterator[tuple[int, int, bytes, bytes, dict[bytes, bytes]]]:
    """(epoch, attestations, inputs_root, scores_root, score rows of the latest epoch) of every
    committed epoch, read from the node's store, not from the export."""
    kv = LevelDBStore(home / "data")
    try:
        reader = StateRows(kv)
        latest_record = read_epoch(reader)
        assert latest_record is not None
        scores = {
            key[len(b"S" + SCORE_PREFIX) :]: value for key, value in kv.iterate(b"S" + SCORE_PREFIX)
        }
        for number in range(1, latest_record.record.epoch + 1):
            stored = read_epoch(reader, number)
            assert stored is not None
            record = stored.record
            current = scores if number == latest_record.record.epoch else {}
            yield number, record.attestations, record.inputs_root, record.scores_root, current
    finally:
        kv.close()


class StateRows:
    """Point reads of a store's state rows (a `ledger.state.StateReader`), for the test's own
    view of the chain."""

    def __init__(self, kv: LevelDBStore) -> None:
        self.kv = kv

    def get(self, key: bytes) -> bytes | None:
        return self.kv.get(b"S" + key)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("chain")
    home = build(root / "net", 60)
    out = root / "export"
    export(home, out)
    return home, out


# --- what an analyst gets ---------------------------------------------------------------------


def test_duckdb_recomputes_every_epochs_trust_roots_from_the_tables(
    exported: tuple[Path, Path],
) -> None:
    home, out = exported
    db = duckdb.connect()
    epochs = list(chain_epochs(home))
    assert len(epochs) >= 3 and epochs[-1][1] > 0  # several epochs, the last with inputs
    for number, count, inputs_root, scores_root, stored_scores in epochs:
        leaves = db.execute(
            "SELECT order_id, attester, subject, value, order_total, completed_s, height "
            f"FROM {parquet(out, 'attestations')} WHERE sequence < ? ORDER BY sequence",
            [count],
        ).fetchall()
        assert len(leaves) == count
        # docs/protocol.md §17.2: a leaf is encode([order_id, attester, subject, value,
        # order_total, completed_s, height]); the inputs root is RFC 6962 over the leaves.
        recomputed_inputs = merkle_root([leaf_hash(encode(list(row))) for row in leaves])
        assert recomputed_inputs == inputs_root, f"epoch {number} inputs root"
        scores = db.execute(
            "SELECT address, score, positive, negative "
            f"FROM {parquet(out, 'trust_scores')} WHERE epoch = ? ORDER BY address",
            [number],
        ).fetchall()
        # §17.3: the scores root is RFC 6962 over encode([address, score, positive, negative])
        # for every account of the universe, by address.
        recomputed_scores = merkle_root([leaf_hash(encode(list(row))) for row in scores])
        assert recomputed_scores == scores_root, f"epoch {number} scores root"
        if stored_scores:  # the latest epoch: the very records the state holds
            assert {row[0]: encode(list(row[1:])) for row in scores} == stored_scores
            assert all(parse_score_record(raw) for raw in stored_scores.values())


def test_balances_sum_to_the_supply(exported: tuple[Path, Path]) -> None:
    _, out = exported
    db = duckdb.connect()
    (balances,) = row_of(db, f"SELECT sum(balance) FROM {latest(out, 'balances', 'address')}")
    escrow, minted, burned = row_of(
        db, f"SELECT escrow, minted, burned FROM {latest(out, 'supply', 'true')}"
    )
    assert balances + escrow == minted - burned
    assert minted > 0


def test_tables_match_the_chain(exported: tuple[Path, Path]) -> None:
    home, out = exported
    db = duckdb.connect()
    blocks, heights = row_of(db, f"SELECT count(*), max(height) FROM {parquet(out, 'blocks')}")
    transactions, failed = row_of(
        db, f"SELECT count(*), count(*) FILTER (WHERE NOT ok) FROM {parquet(out, 'transactions')}"
    )
    assert (blocks, failed) == (heights + 1, 0)
    # 60 orders, each created, paid, shipped, confirmed and rated twice
    assert transactions == 60 * 6
    states = dict(
        db.execute(
            f"SELECT event, count(*) FROM {parquet(out, 'order_events')} GROUP BY event"
        ).fetchall()
    )
    assert states == dict.fromkeys(("created", "paid", "shipped", "received", "completed"), 60)
    (completed,) = row_of(
        db, f"SELECT count(*) FROM {latest(out, 'orders', 'order_id')} WHERE state = 'COMPLETED'"
    )
    assert completed == 60
    # hashes and addresses: fixed-size binary with their text twins agreeing
    row = row_of(
        db,
        f"SELECT hash, hash_hex, sender, sender_address FROM {parquet(out, 'transactions')} "
        "LIMIT 1",
    )
    assert len(row[0]) == 32 and row[0].hex() == row[1]
    assert len(row[2]) == 20 and row[3].startswith("sec1")
    store, _ = open_home(home)
    try:
        first = store.get_block(1)
        assert first is not None
        (block_hash,) = row_of(db, f"SELECT hash FROM {parquet(out, 'blocks')} WHERE height = 1")
        assert block_hash == first.hash()
    finally:
        store.close()


def test_amounts_are_exact_integers_never_floats(exported: tuple[Path, Path]) -> None:
    _, out = exported
    (segment,) = (out / SEGMENTS).iterdir()
    for name in TABLES:
        schema = pq.read_schema(segment / f"{name}.parquet")
        assert not [f.name for f in schema if pa.types.is_floating(f.type)], name
        for column in ("balance", "goods", "total", "order_total", "minted", "score"):
            if column in schema.names:
                assert schema.field(column).type == pa.int64(), (name, column)


# --- incremental, append-only, interruptible --------------------------------------------------


def file_digests(out: Path) -> dict[str, str]:
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((out / SEGMENTS).rglob("*"))
        if p.is_file()
    }


def totals(out: Path) -> dict[str, list[tuple[Any, ...]]]:
    """What a fresh and an incremental export must agree on."""
    db = duckdb.connect()

    def one(sql: str) -> list[tuple[Any, ...]]:
        return db.execute(sql).fetchall()

    return {
        "blocks": one(f"SELECT count(*), count(DISTINCT height) FROM {parquet(out, 'blocks')}"),
        "transactions": one(
            f"SELECT count(*), count(DISTINCT hash) FROM {parquet(out, 'transactions')}"
        ),
        "events": one(
            "SELECT count(*), count(DISTINCT (order_id, height, position)) "
            f"FROM {parquet(out, 'order_events')}"
        ),
        "attestations": one(
            "SELECT count(*), count(DISTINCT sequence), sum(order_total) "
            f"FROM {parquet(out, 'attestations')}"
        ),
        "epochs": one(f"SELECT list(scores_root ORDER BY epoch) FROM {parquet(out, 'epochs')}"),
        "scores": one(
            "SELECT count(*), count(DISTINCT (epoch, address)), sum(score) "
            f"FROM {parquet(out, 'trust_scores')}"
        ),
        "orders": one(
            f"SELECT count(*), sum(total), list(record_hash ORDER BY order_id) "
            f"FROM {latest(out, 'orders', 'order_id')}"
        ),
        "balances": one(
            f"SELECT count(*), sum(balance), list(record_hash ORDER BY address) "
            f"FROM {latest(out, 'balances', 'address')}"
        ),
    }


def test_a_second_export_adds_only_what_is_new(tmp_path: Path) -> None:
    home = build(tmp_path / "net", 40)
    out = tmp_path / "incremental"
    export(home, out)
    first = file_digests(out)
    assert export(home, out) == 0  # nothing new: nothing written
    grow(home, 40, seed=1)
    added = export(home, out)
    manifest = json.loads((out / MANIFEST).read_text())
    assert len(manifest["segments"]) == 2 and added == sum(manifest["segments"][1]["rows"].values())
    after = file_digests(out)
    assert {k: after[k] for k in first} == first  # the first segment was not rewritten
    # the second segment holds only new rows: e.g. 40 orders' 240 transactions, and only the
    # accounts whose records changed
    second = manifest["segments"][1]["rows"]
    assert second["transactions"] == 40 * 6 and second["orders"] == 40
    fresh = tmp_path / "fresh"
    export(home, fresh)
    incremental, full = totals(out), totals(fresh)
    for name, value in incremental.items():
        assert value == full[name], name
    for name in ("blocks", "transactions", "events", "attestations", "scores"):
        count, distinct = incremental[name][0][:2]
        assert count == distinct, f"{name} has duplicates"


def test_an_interrupted_export_leaves_the_directory_valid(tmp_path: Path) -> None:
    home = build(tmp_path / "net", 20)
    out = tmp_path / "out"
    export(home, out)
    manifest = (out / MANIFEST).read_text()
    before = file_digests(out)
    grow(home, 20, seed=2)

    seen: list[str] = []

    def stop_after_three(name: str) -> None:
        seen.append(name)
        if len(seen) == 3:
            raise Interrupted(name)

    store, chain = open_home(home)
    try:
        with pytest.raises(Interrupted):
            export_chain(store, chain, out, Progress(io.StringIO()), after_table=stop_after_three)
    finally:
        store.close()
    assert (out / MANIFEST).read_text() == manifest
    assert file_digests(out) == before  # readers see exactly the first export
    assert list(out.glob(STAGING_PREFIX + "*"))  # the half-written segment is out of sight
    export(home, out)
    assert not list(out.glob(STAGING_PREFIX + "*"))
    fresh = tmp_path / "fresh"
    export(home, fresh)
    assert totals(out) == totals(fresh)


def test_a_segment_published_before_its_manifest_is_rolled_forward(tmp_path: Path) -> None:
    home = build(tmp_path / "net", 20)
    out = tmp_path / "out"
    export(home, out)
    stale = (out / MANIFEST).read_text()
    grow(home, 20, seed=3)
    export(home, out)
    (out / MANIFEST).write_text(stale)  # as if the export stopped between the two renames
    assert export(home, out) == 0
    manifest = json.loads((out / MANIFEST).read_text())
    assert len(manifest["segments"]) == 2
    store, _ = open_home(home)
    try:
        assert manifest["height"] == store.head_height()
    finally:
        store.close()


# --- the command and its refusals -------------------------------------------------------------


def test_the_command_prints_rows_per_second_then_up_to_date(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = build(tmp_path / "net", 20)
    out = tmp_path / "out"
    assert main(["export", "--home", str(home), "--to", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["rows"] > 0 and summary["rows_per_second"] > 0
    assert "blocks: " in captured.err and "trust epochs: " in captured.err  # not a terminal
    assert main(["export", "--home", str(home), "--to", str(out)]) == 0
    assert "is up to date at height" in capsys.readouterr().out


def test_the_progress_bar_redraws_in_place_on_a_terminal() -> None:
    stream = io.StringIO()
    progress = Progress(stream, terminal=True)
    progress.start("blocks", 200)
    for done in range(1, 201):
        progress.advance(done)
    progress.finish("200 blocks")
    text = stream.getvalue()
    assert text.count("\r") == 102 and text.endswith("100% 200 blocks\n")  # 0..100 %, finish
    assert text.count("\n") == 1


def test_invalid_running_node_holds_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = build(tmp_path / "net", 5)
    # another process holds the store open, as a running node does, until its stdin closes
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, plyvel; db = plyvel.DB(sys.argv[1]); print('open', flush=True); "
            "sys.stdin.read()",
            str(home / "data"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "open\n"
        assert main(["export", "--home", str(home), "--to", str(tmp_path / "out")]) == 1
    finally:
        holder.communicate(timeout=30)
    error = capsys.readouterr().err
    assert "locked by a running node" in error and "stop the node first" in error
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_invalid_full_disk_is_one_line_and_publishes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    home = build(tmp_path / "net", 5)
    out = tmp_path / "out"

    def full(table: pa.Table, where: Path, **options: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(where))

    monkeypatch.setattr(pq, "write_table", full)
    assert main(["export", "--home", str(home), "--to", str(out)]) == 1
    error = capsys.readouterr().err
    assert "No space left on device" in error and "nothing of this run was published" in error
    assert not (out / SEGMENTS).exists() and not (out / MANIFEST).exists()
    monkeypatch.undo()
    assert main(["export", "--home", str(home), "--to", str(out)]) == 0
    assert not list(out.glob(STAGING_PREFIX + "*"))


def test_invalid_home_without_chain_data(tmp_path: Path) -> None:
    home = make_home(tmp_path / "net")
    with pytest.raises(ExportError, match="no chain data in"):
        open_home(home)
    assert not (home / "data").exists()  # nothing was created by looking


def test_invalid_directory_of_another_chain(tmp_path: Path) -> None:
    out = tmp_path / "out"
    export(build(tmp_path / "a", 5), out)
    other = make_home(tmp_path / "b")
    document = json.loads((other / "genesis.json").read_text())
    document["parameters"]["trust_iterations"] = 21  # another genesis document, another chain
    (other / "genesis.json").write_text(json.dumps(document))
    grow(other, 5)
    before = file_digests(out)
    with pytest.raises(ExportError, match="holds an export of chain"):
        export(other, out)
    assert file_digests(out) == before


def test_invalid_directory_with_other_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match="is not empty"):
        export(build(tmp_path / "net", 5), out)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_invalid_attestation_log_fails_the_epoch_check(tmp_path: Path) -> None:
    home = build(tmp_path / "net", 40)  # epoch 2's inputs include attestation 0
    kv = LevelDBStore(home / "data")
    try:
        key = b"S" + ATTESTATION_PREFIX + (0).to_bytes(8, "big")
        leaf = decode(kv.get(key) or b"")
        leaf[4] += 1  # the order total of attestation 0
        kv.write([(key, encode(leaf))])
    finally:
        kv.close()
    out = tmp_path / "out"
    with pytest.raises(ExportError, match="not the epoch's inputs root"):
        export(home, out)
    assert not (out / SEGMENTS).exists()


def test_the_operations_guide_lists_every_table_and_column() -> None:
    guide = (Path(__file__).parent.parent / "docs" / "operations.md").read_text()
    section = guide.split("## Exporting for analysts", 1)[1].split("\n## ", 1)[0]
    missing = [
        f"{name}.{column}"
        for name, schema in TABLES.items()
        for column in (name, *schema.names)
        if f"`{column}`" not in section
    ]
    assert not missing, f"docs/operations.md 'Exporting for analysts' lacks {missing}"
