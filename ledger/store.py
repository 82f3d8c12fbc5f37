"""The block store: blocks, certificates, receipts, transaction index and state rows.

`ChainStore` sits on a minimal `KeyValueStore` interface (ordered byte keys, atomic batches),
with `MemoryStore` for unit tests and `ledger.store_leveldb.LevelDBStore` for nodes.

Row layout (keys; all heights are 8-byte big-endian so they sort):
    b"B" + height -> encoded block            b"C" + height -> encoded commit certificate
    b"R" + height -> encoded receipts list    b"H" + block hash -> height
    b"T" + tx hash -> encode([height, index]) b"S" + state key -> state value
    b"M:head" -> encode([height, block hash]) b"M:genesis" -> genesis document hash
    b"P" + name -> consensus persistence records (opaque to the ledger)
    b"N" + position -> state tree node        b"M:tree" -> encode([entries, height])
    b"J" + height -> encode([state keys the block changed])  (these three: `tree_store`)
    b"O" + ... -> node-local index rows written by registered `Indexer`s (the order events
        index of `secnode.runtime.order_index`): outside the state, never in a state root
    b"V" + height -> node-local proof of a validator change scheduled at height (a
        `ProvingIndexer`, `ledger.validator_changes`)
    b"M:pruned" -> height P: the blocks below P were pruned (`prune_blocks`) or never held
        (a store restored from a snapshot at P), except those the pruner was told to keep

Pruning (`prune_blocks`, a non-archive node): a pruned height loses its block, receipts,
certificate and block-hash row; its transaction index rows stay (about 45 bytes a
transaction), so a pruned transaction is still located and reported as pruned, not unknown.
The state is never pruned: the node keeps only the head's state anyway.

Node-local indexes: an `Indexer` registered with `ChainStore.add_indexer` is called by
`commit_block` with the block, its receipts, its state changes and a reader of the state as of
the parent block (the stored rows, which the batch has not overwritten yet); the rows it returns
go into the block's atomic batch, so an index is exactly as durable as the block it describes.
A `ProvingIndexer` (`ChainStore.add_proving_indexer`) is called with the block, its state
changes, the parent reader and the state tree after the block, so its rows may hold state
proofs under that block's state_root (the node keeps no historical state to prove from later).

Read caches: decoded blocks and receipt lists are kept in small LRU caches (`BLOCK_CACHE_SIZE`
entries each). A height's block and receipts never change once committed, so a cached entry is
never stale; the caches are locked, so RPC worker threads may read blocks concurrently with the
event loop (`decoded_blocks` counts real decodes, for tests and metrics).

Invariant: `commit_block` writes a block, its certificate, receipts, index rows, its state
changes, either a journal row of the keys it changed or (a flush, every few blocks) the state
tree nodes changed since the last flush, and the new head in ONE atomic batch, so after a
crash at any instant the store holds exactly the blocks up to `head`, the state as of `head`
and the tree as of the last flush plus the journal since (`open_chain` replays the journal and
checks the tree's root against the head's state root).

Opening reads no whole state: the committed map and the tree read the store on demand
(`ledger.tree_store`) and only the keys journaled since the last flush are replayed (at most
`FLUSH_KEYS`), so a node with 1M state keys is ready in well under 2 s. A store written before
tree nodes were persisted is migrated once on open (the tree is folded from the rows).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Container, Iterator, Mapping, Sequence
from typing import Final, Generic, TypeAlias, TypeVar

from ledger.blocks import Block, BlockHeader, decode_block
from ledger.certificates import CommitCertificate
from ledger.encoding import decode, encode
from ledger.errors import LedgerError, StoreError
from ledger.genesis import Genesis, genesis_block, genesis_state
from ledger.kv import Batch, KeyValueStore
from ledger.receipts import Receipt
from ledger.state import State
from ledger.state_tree import StateTree, key_path
from ledger.transactions import TxTypes
from ledger.tree_store import (
    StoredNodes,
    StoredRows,
    clear_tree_rows,
    journal_key,
    journal_row,
    read_journal,
    read_tree_marker,
    tree_marker,
    tree_rows,
)

log = logging.getLogger("ledger.store")

HEAD_KEY: Final = b"M:head"
PRUNED_KEY: Final = b"M:pruned"
BLOCK_CACHE_SIZE: Final = 64
"""Decoded blocks (and receipt lists) kept; a 2,000-transaction block is about 2 MB decoded."""
GENESIS_KEY: Final = b"M:genesis"
FLUSH_BLOCKS: Final = 64
"""A commit flushes the tree's nodes at least every this many blocks (the journal rows a
restart reads, and the deletes in a flush's batch)."""
FLUSH_KEYS: Final = 10_000
"""... or once this many distinct keys were journaled since the last flush: what a restart
replays over the stored nodes (measured ~120 us a key at 1M random keys on 2 loaded cores:
20,000 keys took 2.4 s, so 10,000 stays well under 2 s)."""
FLUSH_NODES: Final = 200_000
"""... or once the tree holds this many unsaved nodes: the memory they take (~200 bytes
each) and what copying the committed tree for the next block costs."""

StateRowReader: TypeAlias = Callable[[bytes], bytes | None]
"""Reads one committed state row by state key (None: absent)."""
Indexer: TypeAlias = Callable[
    [Block, Sequence[Receipt], Mapping[bytes, bytes | None], StateRowReader], Batch
]
"""Node-local index rows for one block: (block, receipts, state changes, the state as of the
parent block) -> rows to write with the block. Must not raise for any committed block."""
ProvingIndexer: TypeAlias = Callable[
    [Block, Mapping[bytes, bytes | None], StateRowReader, StateTree], Batch
]
"""Node-local rows for one block that may prove state: (block, state changes, the parent's
rows, the state tree after the block) -> rows."""

K = TypeVar("K")
V = TypeVar("V")


class LruCache(Generic[K, V]):
    """A bounded, thread-safe least-recently-used map."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def discard(self, key: K) -> None:
        with self._lock:
            self._entries.pop(key, None)


def _height_key(prefix: bytes, height: int) -> bytes:
    return prefix + height.to_bytes(8, "big")


def pruned_marker(height: int) -> tuple[bytes, bytes]:
    """The row saying the blocks below `height` are not held (see `ChainStore.pruned_below`)."""
    return PRUNED_KEY, height.to_bytes(8, "big")


def block_rows(
    block: Block, certificate: CommitCertificate | None, receipts: Sequence[Receipt] | None
) -> list[tuple[bytes, bytes | None]]:
    """The rows of one block outside the state: the block, its receipts (None: not kept),
    certificate, hash index and transaction index (what `commit_block` writes for it, and a
    snapshot restore for the blocks it brings)."""
    height = block.height
    rows: list[tuple[bytes, bytes | None]] = [
        (_height_key(b"B", height), block.encode()),
        (b"H" + block.hash(), height.to_bytes(8, "big")),
    ]
    if receipts is not None:
        rows.append((_height_key(b"R", height), encode([r.to_wire() for r in receipts])))
    if certificate is not None:
        rows.append((_height_key(b"C", height), encode(certificate.to_wire())))
    for index, tx in enumerate(block.transactions):
        rows.append((b"T" + tx.hash, encode([height, index])))
    return rows


class ChainStore:
    """Typed access to the chain's rows over a KeyValueStore."""

    def __init__(self, kv: KeyValueStore, tx_types: TxTypes) -> None:
        self.kv = kv
        self.tx_types = tx_types
        """The transaction types stored blocks are decoded with (the node's, e.g.
        `contracts.TX_TYPES`)."""
        self._blocks: LruCache[int, Block] = LruCache(BLOCK_CACHE_SIZE)
        self._receipts: LruCache[int, tuple[Receipt, ...]] = LruCache(BLOCK_CACHE_SIZE)
        self.decoded_blocks = 0
        """Blocks decoded from their stored bytes so far (cache misses of `get_block`)."""
        self.nodes = StoredNodes(kv)
        """The persisted state tree nodes, read through a bounded cache."""
        self.rows = StoredRows(kv)
        """The committed state map over the state rows (what `open_chain`'s state holds)."""
        self.state: State | None = None
        """The committed state opened with this store (`open_chain`), whose tree
        `commit_block` saves when it is given none."""
        self.tree_height: int | None = None
        """The height whose tree the stored nodes hold (None: no nodes stored yet)."""
        self.journaled: set[bytes] = set()
        """State keys changed since the stored nodes' height (their journal rows')."""
        self.flush_blocks = FLUSH_BLOCKS
        self.flush_keys = FLUSH_KEYS
        self.flush_nodes = FLUSH_NODES
        self.nodes_written = 0
        """Tree nodes written (and deleted) by flushes so far."""
        self._indexers: list[Indexer] = []
        self._proving_indexers: list[ProvingIndexer] = []

    def add_indexer(self, indexer: Indexer) -> None:
        """Have every later `commit_block` add `indexer`'s rows to its batch (node-local rows,
        outside the state: they change no root)."""
        self._indexers.append(indexer)

    def add_proving_indexer(self, indexer: ProvingIndexer) -> None:
        """Like `add_indexer`, for an index that proves state under the block's state_root:
        it is also given the state tree after the block."""
        self._proving_indexers.append(indexer)

    def _parent_row(self, key: bytes) -> bytes | None:
        """A state row as stored, i.e. as of the last committed block until this commit's
        batch is written (whatever the in-memory state already holds)."""
        return self.kv.get(b"S" + key)

    # --- writing ----------------------------------------------------------------------------

    def commit_block(
        self,
        block: Block,
        certificate: CommitCertificate | None,
        receipts: Sequence[Receipt],
        state_changes: dict[bytes, bytes | None],
        extra: Batch = (),
        *,
        tree: StateTree | None = None,
    ) -> None:
        """Persist one block and everything it changed, atomically (see module invariant).

        `tree` is the state tree after the block (by default that of `self.state`, for callers
        that commit the state first); its root must be the block's state root. Usually the
        batch gets a journal row of the changed keys and the tree keeps its changes in
        memory; every few blocks (`_must_flush`) its unsaved nodes go into the batch instead,
        a node changed in many blocks once, and it then reads them from the store
        (`StateTree.rebase`). Raises StoreError, writing nothing, if the tree does not match
        the block.
        """
        if tree is None:
            if self.state is None:
                raise StoreError("commit_block needs the block's state tree (no state is open)")
            tree = self.state.tree
        if tree.root() != block.header.state_root:
            raise StoreError(
                f"block {block.height} has state root {block.header.state_root.hex()} "
                f"but the tree to store has root {tree.root().hex()}"
            )
        height = block.height
        block_hash = block.hash()
        batch = block_rows(block, certificate, receipts)
        for key, value in state_changes.items():
            batch.append((b"S" + key, value))
        flushed_height = self.tree_height
        nodes = None
        if flushed_height is None or self._must_flush(tree, height, state_changes):
            nodes = self.nodes.unsaved(tree)
            batch.extend(tree_rows(nodes))
            batch.append(tree_marker(len(tree), height))
            if flushed_height is not None:
                batch.extend((journal_key(h), None) for h in range(flushed_height + 1, height))
        elif state_changes:
            batch.append(journal_row(height, state_changes))
        for indexer in self._indexers:
            batch.extend(indexer(block, receipts, state_changes, self._parent_row))
        for proving in self._proving_indexers:
            batch.extend(proving(block, state_changes, self._parent_row, tree))
        batch.extend(extra)
        batch.append((HEAD_KEY, encode([height, block_hash])))
        self.kv.write(batch, sync=True)
        if nodes is None:
            self.journaled.update(state_changes)
        else:
            self.nodes.saved(nodes, tree)
            self.nodes_written += len(nodes)
            self.tree_height = height
            self.journaled = set()
        self.rows.saved(state_changes)
        self._blocks.discard(height)
        self._receipts.discard(height)

    def _must_flush(
        self, tree: StateTree, height: int, state_changes: dict[bytes, bytes | None]
    ) -> bool:
        """Whether the commit of block `height` must write the tree's nodes: a tree not
        over this store's nodes, or one of the bounds (`FLUSH_BLOCKS`, `FLUSH_KEYS`,
        `FLUSH_NODES`) reached."""
        if not tree.reads_from(self.nodes) or tree.unsaved_size > self.flush_nodes:
            return True
        if self.tree_height is None or height - self.tree_height >= self.flush_blocks:
            return True
        journaled = self.journaled
        fresh = sum(1 for key in state_changes if key not in journaled)
        return len(journaled) + fresh > self.flush_keys

    def save_whole_tree(
        self, tree: StateTree, chunk: int = 100_000, *, height: int | None = None
    ) -> int:
        """Write every node of `tree`, a tree folded in memory (from the rows, or a bulk load),
        in batches of `chunk` rows, the marker last; `tree` then reads them from the store.
        `tree` is the state as of block `height` (default: the head's, or 0 with no head).
        Returns the number of nodes written. For a store without persisted nodes: until the
        marker is written, an interrupted save leaves the store as it found it, to be opened
        (and migrated) again.
        """
        if height is None:
            height = self.head_height() or 0
        nodes = self.nodes.unsaved(tree)
        rows = tree_rows(nodes)
        for start in range(0, len(rows), chunk):
            self.kv.write(rows[start : start + chunk], sync=False)
        self.kv.write([tree_marker(len(tree), height)], sync=True)
        self.nodes.saved(nodes, tree)
        self.tree_height = height
        self.journaled = set()
        return len(nodes)

    def prune_blocks(self, below: int, limit: int, keep: Container[int] = ()) -> int:
        """Delete the block, receipts, certificate and block-hash rows of heights from the
        current `pruned_below` up to `below` (never the genesis, the head or a height in
        `keep`), at most `limit` heights per call, and move the marker, in one atomic batch.
        Returns the number of heights visited (0: nothing to do)."""
        start = max(self.pruned_below(), 1)
        head = self.head_height() or 0
        end = min(below, head, start + limit)
        if end <= start:
            return 0
        batch: list[tuple[bytes, bytes | None]] = []
        for height in range(start, end):
            if height in keep:
                continue
            certificate = self.get_certificate(height)  # its block hash, without a decode
            if certificate is not None:
                batch.append((b"H" + certificate.block_hash, None))
            elif (block := self.get_block(height)) is not None:
                batch.append((b"H" + block.hash(), None))
            batch.extend((_height_key(prefix, height), None) for prefix in (b"B", b"R", b"C"))
        batch.append(pruned_marker(end))
        self.kv.write(batch, sync=True)
        for height in range(start, end):
            if height not in keep:
                self._blocks.discard(height)
                self._receipts.discard(height)
        return end - start

    def put_records(self, records: Batch) -> None:
        """Durably write consensus persistence rows (keys are prefixed with b"P")."""
        self.kv.write([(b"P" + key, value) for key, value in records], sync=True)

    def records(self) -> Iterator[tuple[bytes, bytes]]:
        for key, value in self.kv.iterate(b"P"):
            yield key[1:], value

    # --- reading ----------------------------------------------------------------------------

    def pruned_below(self) -> int:
        """The lowest height whose block this store still holds by rule (0: nothing pruned);
        below it only the genesis and the heights pruning was told to keep remain."""
        raw = self.kv.get(PRUNED_KEY)
        return 0 if raw is None else int.from_bytes(raw, "big")

    def head_height(self) -> int | None:
        raw = self.kv.get(HEAD_KEY)
        if raw is None:
            return None
        height: int = decode(raw)[0]
        return height

    def get_block(self, height: int) -> Block | None:
        """The committed block at `height` (decoded once, then served from the LRU cache)."""
        block = self._blocks.get(height)
        if block is not None:
            return block
        raw = self.kv.get(_height_key(b"B", height))
        if raw is None:
            return None
        block = decode_block(raw, self.tx_types)
        self.decoded_blocks += 1
        self._blocks.put(height, block)
        return block

    def cached_block(self, height: int) -> Block | None:
        """The block at `height` if it is decoded already (never reads the database)."""
        return self._blocks.get(height)

    def stored_size(self, height: int) -> int | None:
        """Bytes of the stored block plus its receipts (None if there is no such block): what a
        reply about the whole block is proportional to, known without decoding anything."""
        block = self.kv.get(_height_key(b"B", height))
        if block is None:
            return None
        receipts = self.kv.get(_height_key(b"R", height))
        return len(block) + (0 if receipts is None else len(receipts))

    def get_block_bytes(self, height: int) -> bytes | None:
        return self.kv.get(_height_key(b"B", height))

    def head(self) -> Block:
        height = self.head_height()
        block = None if height is None else self.get_block(height)
        if block is None:
            raise StoreError("the store has no head block; was it initialized?")
        return block

    def get_certificate(self, height: int) -> CommitCertificate | None:
        raw = self.kv.get(_height_key(b"C", height))
        return None if raw is None else CommitCertificate.from_wire(decode(raw))

    def get_receipts(self, height: int) -> list[Receipt] | None:
        cached = self._receipts.get(height)
        if cached is not None:
            return list(cached)
        raw = self.kv.get(_height_key(b"R", height))
        if raw is None:
            return None
        receipts = tuple(Receipt.from_wire(r) for r in decode(raw))
        self._receipts.put(height, receipts)
        return list(receipts)

    def height_of_block(self, block_hash: bytes) -> int | None:
        raw = self.kv.get(b"H" + block_hash)
        return None if raw is None else int.from_bytes(raw, "big")

    def find_transaction(self, tx_hash: bytes) -> tuple[int, int] | None:
        """(height, index) of a committed transaction."""
        raw = self.kv.get(b"T" + tx_hash)
        if raw is None:
            return None
        height, index = decode(raw)
        return height, index

    def index_rows(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Node-local index rows (see `add_indexer`) whose key starts with `prefix`, in key
        order; the caller stops when it has read enough."""
        yield from self.kv.iterate(prefix)

    def load_state_rows(self) -> dict[bytes, bytes]:
        return {key[1:]: value for key, value in self.kv.iterate(b"S")}

    def state_rows(
        self, prefix: bytes, after: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """Committed state entries whose key starts with `prefix`, in key order (as of the
        head; for queries such as listing an account's orders, not for execution). With `after`,
        only keys prefix + s with s > `after`, found by a seek (earlier rows are not read)."""
        start = None if after is None else b"S" + prefix + after + b"\x00"
        for key, value in self.kv.iterate(b"S" + prefix, start):
            yield key[1:], value

    def close(self) -> None:
        self.kv.close()


class CommittedState:
    """The state as of the last committed block, read-only: a `StateScanner` for queries served
    while a block may be executing (the RPC).

    Point reads come from the state's committed map (`State.get_committed`), listings from the
    store's state rows (`ChainStore.state_rows`), whose scan seeks to the cursor, so a deep page
    costs what a first page costs. Both hold the same committed entries as long as the node
    commits the store and the state together (without yielding in between).
    """

    __slots__ = ("_state", "_store")

    def __init__(self, state: State, store: ChainStore) -> None:
        self._state = state
        self._store = store

    def get(self, key: bytes) -> bytes | None:
        return self._state.get_committed(key)

    def scan(
        self, prefix: bytes, *, start_after: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        return self._store.state_rows(prefix, after=start_after)


def open_chain(
    kv: KeyValueStore, genesis: Genesis, tx_types: TxTypes, *, verify_state: bool = False
) -> tuple[ChainStore, State, BlockHeader]:
    """Open (initializing if empty) a chain store whose blocks hold transactions of `tx_types`;
    return it with the state and head header. The state reads the store on demand.

    Raises StoreError if the store belongs to another genesis or its state rows do not fold to
    the head's state root (corruption). A persisted tree that disagrees with the head (blocks
    committed by a binary that did not journal them, or damage) is rebuilt from the rows, with
    a warning. `verify_state` also folds every state row into a fresh tree and checks its root
    (O(state); for audits and tests).
    """
    store = ChainStore(kv, tx_types)
    genesis_hash = genesis.document_hash()
    stored_genesis = kv.get(GENESIS_KEY)
    if stored_genesis is None:
        if store.head_height() is not None:
            raise StoreError("store has blocks but no genesis marker")
        initial = genesis_state(genesis)
        block = genesis_block(genesis, initial.compute_root())
        changes = initial.commit_block()
        store.commit_block(
            block, None, [], changes, extra=[(GENESIS_KEY, genesis_hash)], tree=initial.tree
        )
        store.state = State(store.rows, initial.tree)
        return store, store.state, block.header
    if stored_genesis != genesis_hash:
        raise StoreError(
            "the data directory belongs to a different genesis "
            f"({stored_genesis.hex()[:16]}..., this genesis is {genesis_hash.hex()[:16]}...)"
        )
    try:
        head = store.head()
        marker = read_tree_marker(kv)
        if marker is None:
            tree = _migrate_tree(store, head)
        else:
            tree = _replay_journal(store, head, *marker)
            root = tree.root()
            if root != head.header.state_root:
                # The stored nodes or journal are not the head's (a crash cannot do this, but a
                # binary that predates them writing blocks, or damage, can): rebuild the tree
                # from the state rows, which must match the head's root or the open fails.
                log.warning(
                    "the stored state tree's root %s is not the state root %s of head block "
                    "%d: rebuilding the tree from the state rows",
                    root.hex(),
                    head.header.state_root.hex(),
                    head.height,
                )
                tree = _rebuild_tree(store, head)
        if verify_state:
            _fold_rows(store, head)
    except StoreError:
        raise
    except LedgerError as exc:
        raise StoreError(f"store is unreadable: {exc}") from exc
    store.state = State(store.rows, tree)
    return store, store.state, head.header


def _fold_rows(store: ChainStore, head: Block) -> StateTree:
    """The tree folded from the state rows, checked against the head's state root."""
    tree = StateTree.from_items(store.load_state_rows().items())
    if tree.root() != head.header.state_root:
        raise StoreError(
            f"state rows do not match the state root of head block {head.height} "
            f"({tree.root().hex()} != {head.header.state_root.hex()})"
        )
    return tree


def _replay_journal(store: ChainStore, head: Block, entries: int, height: int | None) -> StateTree:
    """The head's tree: the stored nodes (the tree at `height`, with `entries` entries) plus
    the keys journaled since, each set to its committed value (O(keys journaled))."""
    if height is None:  # written when every block saved its nodes: they are the head's
        height = head.height
        store.kv.write([tree_marker(entries, height)], sync=True)
    elif height > head.height:
        raise StoreError(f"the stored state tree is at height {height}, above head {head.height}")
    tree = StateTree.over(store.nodes, entries)
    keys = read_journal(store.kv, height, head.height)
    rows = store.rows
    for key in sorted(keys, key=key_path):  # path order: the store reads nodes in key order
        value = rows.get(key)
        if value is None:
            tree.delete(key)
        else:
            tree.set(key, value)
    store.tree_height = height
    store.journaled = keys
    if keys:
        log.info("replayed %d state keys journaled since block %d", len(keys), height)
    return tree


def _rebuild_tree(store: ChainStore, head: Block) -> StateTree:
    """Drop the persisted tree and persist the one folded from the rows (checked first)."""
    tree = _fold_rows(store, head)
    clear_tree_rows(store.kv)
    store.nodes = StoredNodes(store.kv)
    written = store.save_whole_tree(tree, height=head.height)
    log.info("persisted %d state tree nodes for %d entries", written, len(tree))
    return tree


def _migrate_tree(store: ChainStore, head: Block) -> StateTree:
    """Fold the tree of a store without a persisted tree (written before nodes were
    persisted, or whose tree was being rebuilt) and persist it, after deleting any node or
    journal rows left behind: a stale node at a position the new tree leaves empty would be
    read back."""
    log.info("the store has no persisted state tree: building it from the state rows, once")
    tree = _fold_rows(store, head)
    clear_tree_rows(store.kv)
    store.nodes = StoredNodes(store.kv)
    written = store.save_whole_tree(tree, height=head.height)
    log.info("persisted %d state tree nodes for %d entries", written, len(tree))
    return tree
