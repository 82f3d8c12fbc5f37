"""LevelDB (plyvel) implementation of the `KeyValueStore` interface.

Every `write` is one LevelDB WriteBatch written with sync=True, so a batch is either entirely
on disk or not at all after a crash or power loss; LevelDB's log replay on open restores it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import plyvel

from ledger.errors import StoreError
from ledger.store import Batch


class LevelDBStore:
    """A LevelDB database in one directory (created if missing). One process at a time."""

    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        try:
            self._db = plyvel.DB(str(path), create_if_missing=True)
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

    def close(self) -> None:
        if not self._db.closed:
            self._db.close()
