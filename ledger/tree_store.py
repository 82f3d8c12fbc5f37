"""The committed state in the block store, read through: the state tree's nodes and the rows.

A node opens in O(1) instead of folding every state row into a tree (10-14 s at 1M keys):
the tree's nodes are rows of the store, written in the same atomic batch as the block whose
state they hash (`ledger.store.ChainStore.commit_block`), and both the tree and the committed
map read the store on demand.

Rows (see `ledger.store` for the others):
    b"N" + position (33 bytes, big-endian) -> node
    b"M:tree" -> encode([entries, height])   b"J" + height (8 bytes) -> encode([state keys])

A node is what `ledger.state_tree.StateTree` keeps in memory for a position: a leaf (96 bytes)
or a branch record (64 bytes); an empty subtree has no row. `b"M:tree"` marks a store whose
nodes are persisted (a store written before they were has state rows only and is migrated
once on open) and holds the number of entries and the height whose state the nodes hash (a
marker of one field, written before the journal existed, means the head's). Nodes are
flushed every few blocks, not every block: each block in between writes a journal row
listing the state keys it changed, so the nodes plus the journal rows above the marker's
height, replayed over the state rows, give the head's tree.

Invariant: after every committed batch, the node rows are exactly the canonical tree of the
state as of the marker's height, and the journal rows are exactly those of the heights above
it up to the head that changed keys, so `open_chain` rebuilds the head's root and checks it.

The stored nodes move on with each commit, so a tree over them stays right only if it
descends from the committed tree (a speculative block's tree does; one on an abandoned fork
does not, and is dropped with its fork): a snapshot for work off the event loop must not be
a tree copy. Trees and `StoredNodes` are used on the event loop; committed rows
(`StoredRows`) may also be read from worker threads.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Iterator, MutableMapping
from typing import TYPE_CHECKING, Final, Generic, TypeVar, cast

from ledger.encoding import decode, encode
from ledger.errors import StoreError
from ledger.kv import Batch, KeyValueStore

if TYPE_CHECKING:
    from ledger.state_tree import StateTree

NODE_PREFIX: Final = b"N"
TREE_KEY: Final = b"M:tree"
JOURNAL_PREFIX: Final = b"J"
STATE_PREFIX: Final = b"S"
NODE_CACHE_SIZE: Final = 1 << 17
"""Nodes kept per cache generation (two generations): the top ~17 levels of a busy tree, about
30 MB each; deeper nodes are read from the store (whose own block cache holds recent ones)."""
_POSITION_SIZE: Final = 33  # positions run up to 2**257 - 1
_ABSENT: Final = b""  # cached "no node here"
_MISSING: Final = object()
_NO_ROW: Final = object()  # cached "no such state row"
ROW_CACHE_SIZE: Final = 1 << 16
"""State rows kept per cache generation: the accounts and records of recent blocks."""
K = TypeVar("K")
V = TypeVar("V")


def node_key(position: int) -> bytes:
    """The store key of the tree node at `position` (heap numbering, root 1)."""
    return NODE_PREFIX + position.to_bytes(_POSITION_SIZE, "big")


def tree_marker(entries: int, height: int) -> tuple[bytes, bytes]:
    """The row saying that nodes are persisted, for a tree of `entries` entries: the state
    as of block `height`."""
    return TREE_KEY, encode([entries, height])


def read_tree_marker(kv: KeyValueStore) -> tuple[int, int | None] | None:
    """(entries, height) of the persisted tree, or None for a store without persisted nodes;
    height None for a marker written when every block saved its nodes (the head's height)."""
    raw = kv.get(TREE_KEY)
    if raw is None:
        return None
    fields = decode(raw)
    if (
        not isinstance(fields, list)
        or len(fields) not in (1, 2)
        or not all(isinstance(field, int) and field >= 0 for field in fields)
    ):
        raise StoreError(f"tree marker {TREE_KEY!r} is malformed: {raw.hex()}")
    return fields[0], fields[1] if len(fields) == 2 else None


def clear_tree_rows(kv: KeyValueStore, chunk: int = 100_000) -> int:
    """Delete the persisted tree: the marker first (so an interrupted clear leaves a store
    without a tree, which the next open rebuilds from the state rows), then every node and
    journal row, in batches of `chunk`. Returns the number of rows deleted."""
    kv.write([(TREE_KEY, None)], sync=True)
    deleted = 0
    for prefix in (NODE_PREFIX, JOURNAL_PREFIX):
        while True:
            keys = [key for key, _ in itertools.islice(kv.iterate(prefix), chunk)]
            if not keys:
                break
            kv.write([(key, None) for key in keys], sync=False)
            deleted += len(keys)
    return deleted


def journal_key(height: int) -> bytes:
    """The store key of the journal row of block `height`."""
    return JOURNAL_PREFIX + height.to_bytes(8, "big")


def journal_row(height: int, keys: Iterable[bytes]) -> tuple[bytes, bytes]:
    """The journal row of block `height`: the state keys it changed (set or deleted)."""
    return journal_key(height), encode(sorted(keys))


def read_journal(kv: KeyValueStore, after: int, head: int) -> set[bytes]:
    """The state keys changed by the blocks above height `after` up to `head`, from their
    journal rows (one seek, then a row per block that changed keys)."""
    keys: set[bytes] = set()
    for row, raw in kv.iterate(JOURNAL_PREFIX, journal_key(after + 1)):
        height = int.from_bytes(row[len(JOURNAL_PREFIX) :], "big")
        if height > head:
            raise StoreError(f"journal row of block {height} is above the head {head}")
        listed = decode(raw, max_size=len(raw))  # the store's own row: no cap
        if not isinstance(listed, list) or not all(isinstance(key, bytes) for key in listed):
            raise StoreError(f"journal row of block {height} is malformed")
        keys.update(listed)
    return keys


class RecentCache(Generic[K, V]):
    """A bounded map of recently used entries, at the cost of two dict lookups per read.

    Two generations of `capacity` entries: a hit in the old one moves to the young one, and
    when the young one fills up it becomes the old one (an LRU would reorder on every read).
    Not locked: `StoredNodes` is used from the event loop only, as the trees over it are;
    `StoredRows` locks around it where worker threads read.
    """

    __slots__ = ("_capacity", "_old", "_young")

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._young: dict[K, V] = {}
        self._old: dict[K, V] = {}

    def __len__(self) -> int:
        return len(self._young) + len(self._old)

    def get(self, key: K) -> V | None:
        """The entry for `key`, None if it is not cached."""
        value = self._young.get(key)
        if value is None:
            value = self._old.get(key)
            if value is not None:
                self.put(key, value)
        return value

    def put(self, key: K, value: V) -> None:
        young = self._young
        if len(young) >= self._capacity:
            self._old = young
            young = self._young = {}
        young[key] = value


class StoredNodes(RecentCache[int, bytes]):
    """The persisted tree nodes, read through the `RecentCache` it is (a
    `state_tree.NodeSource`).

    The cache keeps the hot top of the tree. Absent positions are cached too (a new key's
    leaf position, a deleted key's sibling). It only ever holds what the store holds: `saved`
    updates it after each write.
    """

    __slots__ = ("_kv", "reads")

    def __init__(self, kv: KeyValueStore, cache_size: int = NODE_CACHE_SIZE) -> None:
        super().__init__(cache_size)
        self._kv = kv
        self.reads = 0
        """Nodes read from the store so far (cache misses)."""

    def get(self, position: int) -> bytes | None:
        """The node at `position`, None if there is none (read from the store on a miss)."""
        node = self._young.get(position)  # RecentCache.get, inlined: called per tree level
        if node is None:
            node = self._old.get(position)
            if node is None:
                node = self._kv.get(node_key(position)) or _ABSENT
                self.reads += 1
            self.put(position, node)
        return node or None

    def __getitem__(self, position: int) -> bytes:
        """The node at `position`, which the tree knows exists; StoreError if it is missing."""
        node = self.get(position)
        if node is None:
            raise StoreError(f"state tree node {position:#x} is missing from the store")
        return node

    def holds(self, position: int, node: bytes | None) -> bool:
        """Whether the store is known (from the cache) to hold exactly `node` at `position`:
        such a node needs no write. Compares identity, so the check costs a lookup."""
        cached = RecentCache.get(self, position)
        if node is None:
            return cached is _ABSENT
        return cached is node

    def unsaved(self, tree: StateTree) -> list[tuple[int, bytes | None]]:
        """The nodes (None: delete) the store must write to hold `tree`, a descendant of the
        tree it holds (`StateTree.unsaved_nodes`), less those it is known to hold already (a
        pipelined block's tree repeats its committed parent's changes)."""
        holds = self.holds
        return [(p, node) for p, node in tree.unsaved_nodes(self) if not holds(p, node)]

    def saved(self, nodes: Iterable[tuple[int, bytes | None]], tree: StateTree) -> None:
        """Record that `nodes` (from `unsaved(tree)`) were written: `tree` now reads them here."""
        put = self.put
        for position, node in nodes:
            put(position, _ABSENT if node is None else node)
        tree.rebase(self)


class StoredRows(MutableMapping[bytes, bytes]):
    """The committed state map over the store's state rows (``b"S" + key``), read through.

    Changes made here that the store has not written yet live in `_unsaved` (None: deleted)
    and are dropped once `saved` reports them written; a change equal to what the last write
    stored needs no entry (a caller may commit the store before the map). Point reads go
    through a `RecentCache` of rows (kept equal to the store's by `saved`); iteration and
    `len` cost the whole map (for tests and tools, not execution).

    Point reads may come from worker threads (the RPC, the trust precomputation) while the
    event loop commits: a read that raced with a write must not cache the older value, so a
    store read is cached only if no write was recorded since it started (`_writes`); the
    cache itself is used under `_lock`.
    """

    def __init__(self, kv: KeyValueStore, cache_size: int = ROW_CACHE_SIZE) -> None:
        self._kv = kv
        self._cache: RecentCache[bytes, object] = RecentCache(cache_size)
        self._lock = threading.Lock()
        self._writes = 0
        self._unsaved: dict[bytes, bytes | None] = {}
        self._last_saved: dict[bytes, bytes | None] = {}

    @property
    def unsaved_entries(self) -> int:
        """Changes held in memory until the store reports them written."""
        return len(self._unsaved)

    def get(self, key: bytes, default: bytes | None = None) -> bytes | None:  # type: ignore[override]  # one read, where the mixin's takes two
        value = self._unsaved.get(key, _MISSING)
        if value is _MISSING:
            with self._lock:
                value = self._cache.get(key)
                writes = self._writes
            if value is None:
                value = self._kv.get(STATE_PREFIX + key)
                with self._lock:
                    if writes == self._writes:
                        self._cache.put(key, _NO_ROW if value is None else value)
            elif value is _NO_ROW:
                value = None
        return default if value is None else cast(bytes, value)

    def __getitem__(self, key: bytes) -> bytes:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._change(key, value)

    def __delitem__(self, key: bytes) -> None:
        if key not in self:
            raise KeyError(key)
        self._change(key, None)

    def pop(self, key: bytes, default: object = _MISSING) -> bytes:
        """Remove `key` and return its value (one store read, where the mixin's takes two)."""
        value = self.get(key)
        if value is None:
            if default is _MISSING:
                raise KeyError(key)
            return default  # type: ignore[return-value]  # the caller's default
        self._change(key, None)
        return value

    def _change(self, key: bytes, value: bytes | None) -> None:
        if self._last_saved.get(key, _MISSING) == value:
            self._unsaved.pop(key, None)  # the store holds it already
        else:
            self._unsaved[key] = value

    def saved(self, changes: dict[bytes, bytes | None]) -> None:
        """Record state changes just written to the store (the batch of one block)."""
        unsaved, put = self._unsaved, self._cache.put
        with self._lock:
            self._writes += 1
            for key, value in changes.items():
                put(key, _NO_ROW if value is None else value)
        for key, value in changes.items():
            if unsaved.get(key, _MISSING) == value:
                del unsaved[key]
        self._last_saved = changes

    def __iter__(self) -> Iterator[bytes]:
        unsaved = self._unsaved
        for row, _ in self._kv.iterate(STATE_PREFIX):
            key = row[len(STATE_PREFIX) :]
            if key not in unsaved:
                yield key
        yield from (key for key, value in unsaved.items() if value is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def tree_rows(nodes: Iterable[tuple[int, bytes | None]]) -> Batch:
    """Store rows (puts and deletes) for tree nodes (None: removed)."""
    return [(node_key(position), node) for position, node in nodes]
