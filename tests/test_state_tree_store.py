"""The state tree persisted in the block store: the stored nodes are exactly a fresh fold's.

Every check compares against `StateTree.from_items` over the same entries (the tree folded
from scratch, as a node without persisted nodes builds it): same node rows, same root, same
proofs, each proof verified by `verify_state_proof`.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import TX_TYPES
from ledger.blocks import Block as ChainBlock
from ledger.encoding import encode
from ledger.errors import StoreError
from ledger.kv import MemoryStore
from ledger.state_tree import StateTree, verify_state_proof
from ledger.store import FLUSH_BLOCKS, HEAD_KEY, open_chain
from ledger.store_leveldb import LevelDBStore
from ledger.tree_store import (
    JOURNAL_PREFIX,
    NODE_PREFIX,
    TREE_KEY,
    StoredNodes,
    StoredRows,
    journal_key,
    node_key,
    read_tree_marker,
    tree_marker,
    tree_rows,
)
from secnode.network.devnet import dev_genesis
from tests.chainkit import Chain
from tests.test_store import _commit_some

KEYS = [b"k%d" % index for index in range(48)]
Block = dict[bytes, bytes | None]
blocks_strategy = st.lists(
    st.dictionaries(st.sampled_from(KEYS), st.none() | st.binary(max_size=3), max_size=12),
    min_size=1,
    max_size=8,
)


def _apply(tree: StateTree, block: Block) -> StateTree:
    child = tree.copy()
    for key, value in block.items():
        if value is None:
            child.delete(key)
        else:
            child.set(key, value)
    return child


def _save(kv: MemoryStore, stored: StoredNodes, tree: StateTree) -> None:
    """What `ChainStore.commit_block` does with the tree, without a block around it."""
    nodes = stored.unsaved(tree)
    kv.write([*tree_rows(nodes), tree_marker(len(tree), 0)])
    stored.saved(nodes, tree)


def _fresh_node_rows(entries: dict[bytes, bytes]) -> dict[bytes, bytes]:
    fresh = StateTree.from_items(entries.items())
    nodes = StoredNodes(MemoryStore()).unsaved(fresh)  # a dict-based tree: all its nodes
    return {node_key(position): node for position, node in nodes if node is not None}


def _node_rows(kv: MemoryStore) -> dict[bytes, bytes]:
    return {key: value for key, value in kv.rows.items() if key.startswith(NODE_PREFIX)}


def _check_same_as_fold(tree: StateTree, entries: dict[bytes, bytes]) -> None:
    fresh = StateTree.from_items(entries.items())
    root = fresh.root()
    assert tree.root() == root
    assert len(tree) == len(entries)
    for key in KEYS:
        proof = tree.prove(key)
        assert proof == fresh.prove(key)
        verify_state_proof(root, key, entries.get(key), proof)


@settings(max_examples=60, deadline=None)
@given(blocks_strategy, st.integers(min_value=1, max_value=8))
def test_pipelined_commits_store_exactly_the_folded_tree(blocks: list[Block], cache: int) -> None:
    """Each block's tree is copied from its parent's before the parent is saved (pipelining):
    the store still ends up with exactly the canonical nodes, deleted branches removed."""
    kv = MemoryStore()
    stored = StoredNodes(kv, cache_size=cache)
    committed = StateTree()
    _save(kv, stored, committed)
    entries: dict[bytes, bytes] = {}
    pending = _apply(committed, blocks[0])
    for index, block in enumerate(blocks):
        following = blocks[index + 1] if index + 1 < len(blocks) else {}
        child = _apply(pending, following)  # built on `pending` before it is committed
        _save(kv, stored, pending)
        for key, value in block.items():
            if value is None:
                entries.pop(key, None)
            else:
                entries[key] = value
        assert _node_rows(kv) == _fresh_node_rows(entries)
        _check_same_as_fold(pending, entries)
        pending = child
    reopened = StoredNodes(kv, cache_size=cache)
    marker = read_tree_marker(kv)
    assert marker == (len(entries), 0)
    _check_same_as_fold(StateTree.over(reopened, len(entries)), entries)


def test_reads_are_bounded_by_the_cache_and_proofs_read_only_their_path() -> None:
    entries = {b"key%d" % index: b"value%d" % index for index in range(3000)}
    kv = MemoryStore()
    stored = StoredNodes(kv)
    tree = StateTree.from_items(entries.items())
    _save(kv, stored, tree)
    small = StoredNodes(kv, cache_size=16)
    reopened = StateTree.over(small, len(entries))
    root = reopened.root()
    assert small.reads == 1  # the root record only
    proof = reopened.prove(b"key7")
    verify_state_proof(root, b"key7", b"value7", proof)
    assert small.reads <= 1 + 2 * (len(proof.siblings) + 1) + 9  # the path and the search
    for index in range(0, 3000, 7):
        key = b"key%d" % index
        verify_state_proof(root, key, entries[key], reopened.prove(key))
    assert len(small) <= 2 * 16


def test_stored_rows_behave_as_a_map_and_drop_what_the_store_wrote() -> None:
    kv = MemoryStore()
    kv.write([(b"Sa", b"1"), (b"Sb", b"2")])
    rows = StoredRows(kv)
    model = {b"a": b"1", b"b": b"2"}
    rows[b"c"] = model[b"c"] = b"3"
    del rows[b"a"]
    del model[b"a"]
    assert rows.pop(b"b") == model.pop(b"b")
    assert rows.pop(b"zz", None) is None
    with pytest.raises(KeyError):
        rows.pop(b"zz")
    with pytest.raises(KeyError):
        del rows[b"zz"]
    assert dict(rows) == model and len(rows) == len(model)
    assert rows.get(b"a") is None and b"c" in rows
    changes: dict[bytes, bytes | None] = {b"a": None, b"b": None, b"c": b"3"}
    kv.write([(b"S" + key, value) for key, value in changes.items()])
    rows.saved(changes)
    assert rows.unsaved_entries == 0
    rows[b"c"] = b"3"  # a map committed after the store: equal to what was written
    rows.pop(b"a", None)
    assert rows.unsaved_entries == 0
    assert dict(rows) == model


def _open(path: Path) -> LevelDBStore:
    return LevelDBStore(path / "db")


def test_leveldb_reopen_serves_the_folded_root_and_proofs(tmp_path: Path) -> None:
    store, _, _ = open_chain(_open(tmp_path), dev_genesis(), TX_TYPES)
    chain = Chain()
    _commit_some(store, chain, 3)
    store.close()
    store, state, head = open_chain(_open(tmp_path), dev_genesis(), TX_TYPES)
    assert head == chain.head
    entries = store.load_state_rows()
    fresh = StateTree.from_items(entries.items())
    assert state.committed_root() == fresh.root() == head.state_root
    for key in [*sorted(entries)[::3], b"acct:absent", b"nothing"]:
        proof = state.prove(key)
        assert proof == fresh.prove(key)
        verify_state_proof(head.state_root, key, entries.get(key), proof)
    # block 1 flushed (its tree was not over the store's nodes), 2 and 3 were journaled
    marker = read_tree_marker(store.kv)
    assert marker is not None and marker[1] == 1
    assert [key for key, _ in store.kv.iterate(JOURNAL_PREFIX)] == [journal_key(2), journal_key(3)]
    store.close()


def _next_block(head: ChainBlock, root: bytes) -> ChainBlock:
    header = replace(
        head.header,
        height=head.height + 1,
        prev_hash=head.hash(),
        timestamp_ms=head.header.timestamp_ms + 1000,
        state_root=root,
    )
    return ChainBlock(header, ())


def _check_store_layout(kv: MemoryStore, history: list[dict[bytes, bytes]], head: int) -> None:
    """The module invariant of `ledger.tree_store`: nodes are the tree as of the marker's
    height, journal rows are those of the heights above it that changed keys."""
    marker = read_tree_marker(kv)
    assert marker is not None
    entries, height = marker
    assert height is not None
    assert entries == len(history[height])
    assert _node_rows(kv) == _fresh_node_rows(history[height])
    journal = {key for key in kv.rows if key.startswith(JOURNAL_PREFIX)}
    changed = {h for h in range(height + 1, head + 1) if history[h] != history[h - 1]}
    assert journal <= {journal_key(h) for h in range(height + 1, head + 1)}
    assert {journal_key(h) for h in changed} <= journal


@settings(max_examples=40, deadline=None)
@given(blocks_strategy, st.integers(min_value=1, max_value=4), st.integers(1, 30))
def test_deferred_flush_reopens_to_every_head(
    blocks: list[Block], flush_blocks: int, flush_keys: int
) -> None:  # Block: the changes of one block here
    """Pipelined blocks committed with small flush bounds: after every batch (a crash can
    only land between batches) the store lays out the tree as of its last flush plus the
    journal, and reopening it replays the journal to the head's root and proofs."""
    kv = MemoryStore()
    store, state, _ = open_chain(kv, dev_genesis(), TX_TYPES)
    store.flush_blocks, store.flush_keys = flush_blocks, flush_keys
    head = store.head()
    history = [store.load_state_rows()]
    pending = _apply(state.tree, blocks[0])
    for index, changes in enumerate(blocks):
        following = blocks[index + 1] if index + 1 < len(blocks) else {}
        child = _apply(pending, following)  # built on `pending` before it is committed
        block = _next_block(head, pending.root())
        store.commit_block(block, None, [], dict(changes), tree=pending)
        state.apply_committed(changes, pending)
        head = block
        entries = dict(history[-1])
        for key, value in changes.items():
            if value is None:
                entries.pop(key, None)
            else:
                entries[key] = value
        history.append(entries)
        _check_store_layout(kv, history, head.height)
        _check_same_as_fold(pending, entries)
        reopened_kv = MemoryStore()
        reopened_kv.rows = dict(kv.rows)
        _, reopened_state, reopened_head = open_chain(reopened_kv, dev_genesis(), TX_TYPES)
        assert reopened_head == head.header
        _check_same_as_fold(reopened_state.tree, entries)
        pending = child
    assert store.nodes_written > 0


def test_every_block_layout_opens_and_then_journals() -> None:
    """A store written when every block saved its nodes (a marker of one field) opens as
    the head's tree, and its marker gets the height before any journal row is written."""
    kv = MemoryStore()
    store, _, _ = open_chain(kv, dev_genesis(), TX_TYPES)
    _commit_some(store, Chain(), 2)
    store.kv.write([(TREE_KEY, None)])  # as written before the journal: nodes at the head
    open_chain(kv, dev_genesis(), TX_TYPES)  # (migrates: every node, marker of the head)
    entries = read_tree_marker(kv)
    assert entries is not None
    kv.write([(TREE_KEY, encode([entries[0]]))])
    store, state, head = open_chain(kv, dev_genesis(), TX_TYPES)
    assert read_tree_marker(kv) == (entries[0], head.height) == (entries[0], 2)
    assert state.committed_root() == head.state_root


def test_invalid_store_journaled_row_disagrees_with_head() -> None:
    """A state row changed behind the journal's back: the replayed root is not the head's."""
    kv = MemoryStore()
    store, _, _ = open_chain(kv, dev_genesis(), TX_TYPES)
    _commit_some(store, Chain(), 2)
    journaled = sorted(store.journaled)
    marker = read_tree_marker(kv)
    assert journaled and marker is not None and marker[1] == 1
    kv.rows[b"S" + journaled[0]] += b"\x00"
    with pytest.raises(StoreError, match=store.head().header.state_root.hex()) as raised:
        open_chain(kv, dev_genesis(), TX_TYPES)
    # the replayed root disagrees, the rebuild from the rows is checked too, and refused
    assert "state rows do not match" in str(raised.value)


def test_old_store_is_migrated_once(caplog: pytest.LogCaptureFixture) -> None:
    kv = MemoryStore()
    store, _, _ = open_chain(kv, dev_genesis(), TX_TYPES)
    _commit_some(store, Chain(), 2)
    kv.write([(key, None) for key in list(kv.rows) if key.startswith(NODE_PREFIX)])
    kv.write([(TREE_KEY, None)])  # as written before nodes were persisted
    with caplog.at_level(logging.INFO, logger="ledger.store"):
        _, state, head = open_chain(kv, dev_genesis(), TX_TYPES)
    assert "no persisted state tree" in caplog.text
    assert state.committed_root() == head.state_root
    rows = {key[1:]: value for key, value in kv.rows.items() if key.startswith(b"S")}
    assert _node_rows(kv) == _fresh_node_rows(rows)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ledger.store"):
        open_chain(kv, dev_genesis(), TX_TYPES)
    assert "no persisted state tree" not in caplog.text


def _rows(kv: MemoryStore) -> dict[bytes, bytes]:
    return {key[1:]: value for key, value in kv.rows.items() if key.startswith(b"S")}


def test_a_damaged_persisted_tree_is_rebuilt_from_the_rows(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A stored node that is not the head's: the open warns, folds the rows (which match the
    head's root), replaces every node row, and serves the right root; the next open is quiet."""
    kv = MemoryStore()
    open_chain(kv, dev_genesis(), TX_TYPES)  # nothing journaled: the stored root node is read
    record = kv.rows[node_key(1)]
    kv.rows[node_key(1)] = record[:-1] + bytes([record[-1] ^ 1])
    kv.rows[node_key(2**40)] = record  # a stale node where the tree has none: must go too
    with caplog.at_level(logging.INFO, logger="ledger.store"):
        _, state, head = open_chain(kv, dev_genesis(), TX_TYPES)
    assert "rebuilding the tree from the state rows" in caplog.text
    assert state.committed_root() == head.state_root
    assert _node_rows(kv) == _fresh_node_rows(_rows(kv))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ledger.store"):
        _, state, head = open_chain(kv, dev_genesis(), TX_TYPES)
    assert "rebuilding" not in caplog.text and state.committed_root() == head.state_root


def test_blocks_written_without_a_journal_are_recovered_on_open(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """What an older binary leaves behind when it runs on this store: blocks whose changed keys
    were never journaled. The replayed tree misses them; the open rebuilds from the rows."""
    kv = MemoryStore()
    store, _, _ = open_chain(kv, dev_genesis(), TX_TYPES)
    _commit_some(store, Chain(), 3)
    marker = read_tree_marker(kv)
    assert marker is not None and marker[1] is not None
    journal = [key for key in kv.rows if key.startswith(JOURNAL_PREFIX)]
    assert journal, "the blocks after the last flush are journaled"
    kv.write([(key, None) for key in journal])
    with caplog.at_level(logging.WARNING, logger="ledger.store"):
        _, state, head = open_chain(kv, dev_genesis(), TX_TYPES)
    assert "rebuilding the tree" in caplog.text
    assert state.committed_root() == head.state_root
    assert _node_rows(kv) == _fresh_node_rows(_rows(kv))


def test_invalid_commit_of_a_tree_that_is_not_the_blocks() -> None:
    kv = MemoryStore()
    store, _, _ = open_chain(kv, dev_genesis(), TX_TYPES)
    chain = Chain()
    _commit_some(store, chain, 1)
    block = store.head()
    before = dict(kv.rows)
    wrong = StateTree.from_items([(b"some", b"thing")])
    with pytest.raises(StoreError, match="tree to store has root"):
        store.commit_block(block, None, [], {}, tree=wrong)
    assert kv.rows == before and kv.rows[HEAD_KEY] == before[HEAD_KEY]


def test_bench_state_opens_agree_and_blocks_commit(tmp_path: Path) -> None:
    """`sec bench state` at a small size: both opens find the head's root (the bench exits
    otherwise) and the timed blocks go through `commit_block` on the stored tree."""
    from secnode.bench.state import run

    report = run(tmp_path / "db", accounts=300, rounds=1, blocks=3, block_keys=20)
    store, state, head = open_chain(_open(tmp_path), dev_genesis(), TX_TYPES)
    assert report["root"] != head.state_root.hex()
    fresh = StateTree.from_items(store.load_state_rows().items())
    assert state.committed_root() == fresh.root() == head.state_root
    # every block flushed on the copy; the journal store flushed the untimed first block
    # only, then filled its journal up to the block before a flush, which the open replayed
    assert report["nodes_written_per_block_every"] > 0 == report["nodes_written_per_block_journal"]
    assert store.tree_height == 1 and head.height == store.tree_height + FLUSH_BLOCKS - 1
    assert report["replayed_keys"] == report["journal_keys"] == len(store.journaled) > 0
    assert not (tmp_path / "db-every-block").exists()
    store.close()


class _CommitDuringRead(MemoryStore):
    """A store whose next read of `key` returns the old value while a commit lands, as when a
    worker thread reads a row and the event loop commits a new value for it meanwhile."""

    def __init__(self, key: bytes, new_value: bytes) -> None:
        super().__init__()
        self.rows_view: StoredRows | None = None
        self._key, self._new_value, self._armed = key, new_value, False

    def arm(self) -> None:
        self._armed = True

    def get(self, key: bytes) -> bytes | None:
        old = super().get(key)
        if self._armed and key == self._key and self.rows_view is not None:
            self._armed = False
            changes: dict[bytes, bytes | None] = {key[1:]: self._new_value}
            self.write([(key, self._new_value)])
            self.rows_view.saved(changes)
        return old


def test_a_read_racing_a_commit_does_not_cache_the_old_value() -> None:
    kv = _CommitDuringRead(b"Sa", b"new")
    kv.write([(b"Sa", b"old")])
    rows = StoredRows(kv)
    kv.rows_view = rows
    kv.arm()
    assert rows.get(b"a") == b"old"  # read before the commit landed: the old value is right
    assert rows.get(b"a") == b"new"  # but it was not cached over the committed one
