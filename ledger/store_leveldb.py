"""LevelDB (plyvel) implementation of the `KeyValueStore` interface.

Every `write` is one LevelDB WriteBatch written with sync=True, so a batch is either entirely
on disk or not at all after a crash or power loss; LevelDB's log replay on open restores it.

The state and its tree are read through from here (`ledger.tree_store`), a few random point
reads per changed key, so the block cache is larger than LevelDB's 8 MB default and tables
carry Bloom filters (a read of an absent key, e.g. a new account, then skips the table).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Final

import plyvel

from ledger.errors import StoreError
from ledger.kv import Batch

BLOCK_CACHE_BYTES: Final = 128 << 20
"""LevelDB's cache of uncompressed table blocks: about half the nodes of a 1M-key tree."""
BLOOM_FILTER_BITS: Final = 10


class LevelDBStore:
    """A LevelDB database in one directory (created if missing). One process at a time."""

    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        try:
            self._db = plyvel.DB(
                str(path),
                create_if_missing=True,
                lru_cache_size=BLOCK_CACHE_BYTES,
                bloom_filter_bits=BLOOM_FILTER_BITS,
            )
        except plyvel.IOError as exc:
            raise StoreError(
                f"cannot open LevelDB at {path}: {exc} (is another node using it?)"
            ) from None
        except plyvel.CorruptionError as exc:
            raise StoreError(f"LevelDB at {path} is corrupt: {exc}") from None
        self.path = path

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self._db.get(key)
        return value

    def write(self, batch: Batch, *, sync: bool = True) -> None:
        with self._db.write_batch(sync=sync) as writer:
            for key, value in batch:
                if value is None:
                    writer.delete(key)
                else:
                    writer.put(key, value)

    def iterate(self, prefix: bytes, start: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        if start is None:
            with self._db.iterator(prefix=prefix) as iterator:
                yield from iterator
            return
        # plyvel takes prefix or a range, not both: seek to `start`, stop when the prefix ends.
        with self._db.iterator(start=max(start, prefix)) as iterator:
            for key, value in iterator:
                if not key.startswith(prefix):
                    return
                yield key, value

    def read_view(self) -> LevelDBView:
        """A LevelDB snapshot: the rows as of now, readable from a worker thread while the
        node commits (plyvel releases the GIL inside LevelDB calls)."""
        return LevelDBView(self._db.snapshot())

    def close(self) -> None:
        if not self._db.closed:
            self._db.close()


class LevelDBView:
    """A `ReadView` over a LevelDB snapshot. Close it before the database closes."""

    def __init__(self, snapshot: plyvel.Snapshot) -> None:
        self._snapshot = snapshot

    def iterate(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        with self._snapshot.iterator(prefix=prefix) as iterator:
            yield from iterator

    def close(self) -> None:
        self._snapshot.close()
