"""The world state: a key-value map with a block overlay, a snapshot journal and a state root.

Layers, from durable to volatile:

* `committed`: the map as of the last committed block (mirrors the store's state rows; a
  node's is `ledger.tree_store.StoredRows`, which reads them on demand, and its tree reads
  its nodes from the store too);
* the block overlay `_pending`: changes made by the block being executed (None = deleted);
* the journal: per-transaction undo entries, so `rollback_tx` restores the overlay exactly.

Invariants: reads see overlay-then-committed; `rollback_tx` leaves the overlay as `begin_tx`
found it; `compute_root` folds the overlay into a copy of the committed tree (cost ~ keys
changed x tree depth; copies share an immutable base, so a copy costs O(recent changes));
`self.tree` always matches `committed`.

Record values are canonical encodings (see docs/protocol.md, "State"). Keys are namespaced:
b"acct:" + address, b"param:" + name, b"supply", b"validators", b"order:" + id, ...
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Iterator, MutableMapping
from typing import Final, Protocol

from ledger.errors import LedgerError
from ledger.state_tree import StateProof, StateTree

_MISSING: Final = object()


class StateError(LedgerError):
    """Misuse of the state API (unbalanced snapshots, commit without root, ...)."""


class StateReader(Protocol):
    """What a read-only query needs of state: point reads.

    `State` satisfies it (reads see the block being executed) and so does
    `ledger.store.CommittedState` (reads see the last committed block only, as the RPC must).
    """

    def get(self, key: bytes) -> bytes | None: ...


class StateScanner(StateReader, Protocol):
    """A `StateReader` that also lists entries by key prefix, for paged listings."""

    def scan(
        self, prefix: bytes, *, start_after: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """Entries whose key starts with `prefix`, in key order; with `start_after`, only the
        keys ``prefix + s`` with ``s > start_after`` (the next page after a cursor)."""
        ...


class _Layers(ChainMap[bytes, bytes | None]):
    """Uncommitted blocks' changes (None: deleted) over a committed map, read once per layer:
    `ChainMap.get` asks `in` and then reads, two store reads for a stored committed map."""

    def get(self, key: bytes, default: bytes | None = None) -> bytes | None:  # type: ignore[override]  # same meaning, one read
        *layers, committed = self.maps
        for layer in layers:
            value = layer.get(key, _MISSING)
            if value is not _MISSING:
                return value  # type: ignore[return-value]  # bytes | None once not _MISSING
        return committed.get(key, default)


class State:
    """Committed map + block overlay + transaction journal + Merkle tree."""

    def __init__(
        self,
        committed: MutableMapping[bytes, bytes] | None = None,
        tree: StateTree | None = None,
    ) -> None:
        """`tree`, if given, must be the tree of exactly `committed` (it is not rebuilt)."""
        self.committed: MutableMapping[bytes, bytes] = committed if committed is not None else {}
        self.tree = tree if tree is not None else StateTree.from_items(self.committed.items())
        self._pending: dict[bytes, bytes | None] = {}
        self._journal: list[tuple[bytes, object]] = []
        self._snapshots: list[int] = []
        self._working: StateTree | None = None
        self._root_computed = False

    # --- reads and writes ------------------------------------------------------------------

    def get(self, key: bytes) -> bytes | None:
        value = self._pending.get(key, _MISSING)
        if value is _MISSING:
            return self.committed.get(key)
        return value  # type: ignore[return-value]  # bytes | None once not _MISSING

    def set(self, key: bytes, value: bytes) -> None:
        self._remember(key)
        self._pending[key] = value

    def delete(self, key: bytes) -> None:
        self._remember(key)
        self._pending[key] = None

    def _remember(self, key: bytes) -> None:
        if self._root_computed:
            raise StateError("state changed after compute_root; commit or abort the block first")
        if self._snapshots:
            self._journal.append((key, self._pending.get(key, _MISSING)))

    def iterate_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Current (overlay-aware) entries whose key starts with `prefix`, in key order.

        Cost is proportional to the whole committed map: for queries and tests, not execution.
        """
        merged = {k: v for k, v in self.committed.items() if k.startswith(prefix) and v is not None}
        for key, value in self._pending.items():
            if key.startswith(prefix):
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = value
        for key in sorted(merged):
            yield key, merged[key]

    def scan(
        self, prefix: bytes, *, start_after: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """`StateScanner.scan` over the current (overlay-aware) entries.

        The committed map is unordered, so every call costs what `iterate_prefix` costs (the
        whole map), however late the page: for execution-side queries and tests. A node serves
        listings from `ledger.store.CommittedState`, whose scan seeks in the store.
        """
        start = None if start_after is None else prefix + start_after
        for key, value in self.iterate_prefix(prefix):
            if start is None or key > start:
                yield key, value

    # --- transaction snapshots -------------------------------------------------------------

    def begin_tx(self) -> None:
        self._snapshots.append(len(self._journal))

    def commit_tx(self) -> None:
        if not self._snapshots:
            raise StateError("commit_tx without begin_tx")
        mark = self._snapshots.pop()
        if not self._snapshots:
            del self._journal[mark:]

    def rollback_tx(self) -> None:
        if not self._snapshots:
            raise StateError("rollback_tx without begin_tx")
        mark = self._snapshots.pop()
        while len(self._journal) > mark:
            key, previous = self._journal.pop()
            if previous is _MISSING:
                self._pending.pop(key, None)
            else:
                self._pending[key] = previous  # type: ignore[assignment]  # bytes | None

    # --- block lifecycle -------------------------------------------------------------------

    def changes(self) -> dict[bytes, bytes | None]:
        """The block overlay: key -> new value, None for deleted."""
        return dict(self._pending)

    def compute_root(self) -> bytes:
        """Fold the overlay into a copy of the committed tree; return the resulting root.

        The committed tree is untouched (nodes are immutable and shared), so proofs against the
        committed root stay available while a block is being executed.
        """
        if self._snapshots:
            raise StateError("compute_root inside an open transaction snapshot")
        if not self._pending:
            return self.tree.root()
        if self._working is None:
            working = self.tree.copy()
            for key, value in self._pending.items():
                if value is None:
                    working.delete(key)
                else:
                    working.set(key, value)
            self._working = working
            self._root_computed = True
        return self._working.root()

    def commit_block(self) -> dict[bytes, bytes | None]:
        """Make the overlay committed; return the changes (for the store's write batch)."""
        self.compute_root()
        changes = self._pending
        for key, value in changes.items():
            if value is None:
                self.committed.pop(key, None)
            else:
                self.committed[key] = value
        if self._working is not None:
            self.tree = self._working
        self._pending = {}
        self._working = None
        self._root_computed = False
        return changes

    def abort_block(self) -> None:
        """Drop the overlay; the committed map and tree were never touched."""
        self._pending = {}
        self._working = None
        self._journal.clear()
        self._snapshots.clear()
        self._root_computed = False

    def working_tree(self) -> StateTree:
        """The tree of committed + overlay (after `compute_root`)."""
        self.compute_root()
        return self._working if self._working is not None else self.tree

    def speculate(self, layers: list[dict[bytes, bytes | None]], tree: StateTree) -> State:
        """A state on top of uncommitted blocks: reads see `layers` (newest first) over this
        state's committed map; `tree` must be the tree of that combination. Writes to the
        returned state go to its own overlay; this state is never modified through it.
        """
        view = _Layers({}, *layers, self.committed)  # type: ignore[arg-type]  # deleted keys hold None
        return State(view, tree)  # type: ignore[arg-type]  # see above

    def apply_committed(self, changes: dict[bytes, bytes | None], tree: StateTree) -> None:
        """Commit a block executed elsewhere (on a `speculate` state): `tree` is its result."""
        if self._pending:
            raise StateError("apply_committed with an uncommitted block in progress")
        for key, value in changes.items():
            if value is None:
                self.committed.pop(key, None)
            else:
                self.committed[key] = value
        self.tree = tree

    def root(self) -> bytes:
        """Root of committed + overlay (folds the overlay in; see `compute_root`)."""
        return self.compute_root()

    def committed_root(self) -> bytes:
        """Root of the committed map alone."""
        return self.tree.root()

    def get_committed(self, key: bytes) -> bytes | None:
        """Read ignoring any uncommitted block (for queries served while a block executes)."""
        return self.committed.get(key)

    def prove(self, key: bytes) -> StateProof:
        """Proof for `key` under the committed root (valid even while a block executes)."""
        return self.tree.prove(key)
