"""Ordered byte-key storage with atomic batches: the interface the chain store writes through.

`ledger.store_leveldb.LevelDBStore` is the node's implementation; `MemoryStore` is the tests'.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

Batch = Sequence[tuple[bytes, bytes | None]]
"""Puts (key, value) and deletes (key, None), applied atomically."""


class KeyValueStore(Protocol):
    """Ordered byte-key storage with atomic batches."""

    def get(self, key: bytes) -> bytes | None: ...

    def write(self, batch: Batch, *, sync: bool = True) -> None: ...

    def iterate(self, prefix: bytes, start: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        """Rows whose key starts with `prefix`, in key order, from the first key >= `start`
        (a seek: rows before `start` are not visited)."""
        ...

    def close(self) -> None: ...

    def read_view(self) -> ReadView:
        """A consistent read-only view of the rows as they are now: later writes do not show
        in it. Close it when done (it pins old data)."""
        ...


class ReadView(Protocol):
    """Rows frozen at one instant (`KeyValueStore.read_view`); safe to read from another thread
    while the store goes on writing."""

    def iterate(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]: ...

    def close(self) -> None: ...


class MemoryView:
    """A `ReadView` of a `MemoryStore`: a copy of its rows."""

    def __init__(self, rows: dict[bytes, bytes]) -> None:
        self._rows = dict(rows)

    def iterate(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        for key in sorted(k for k in self._rows if k.startswith(prefix)):
            yield key, self._rows[key]

    def close(self) -> None:
        self._rows = {}


class MemoryStore:
    """A dict-backed KeyValueStore for tests (a batch is applied all at once)."""

    def __init__(self) -> None:
        self.rows: dict[bytes, bytes] = {}

    def get(self, key: bytes) -> bytes | None:
        return self.rows.get(key)

    def write(self, batch: Batch, *, sync: bool = True) -> None:
        for key, value in batch:
            if value is None:
                self.rows.pop(key, None)
            else:
                self.rows[key] = value

    def iterate(self, prefix: bytes, start: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        keys = sorted(k for k in self.rows if k.startswith(prefix))
        for key in keys if start is None else (k for k in keys if k >= start):
            yield key, self.rows[key]

    def close(self) -> None:
        pass

    def read_view(self) -> MemoryView:
        return MemoryView(self.rows)
