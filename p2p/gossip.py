"""Transaction gossip bookkeeping (sans-io): which transactions we have seen, from whom, and
whether we have relayed them.

A transaction is identified by the SHA-256 of its bytes. The first copy to arrive is delivered
to the node; later copies are dropped. A delivered transaction is relayed once - to every
connected peer except the one it came from - when the node accepts it (its handler returns True,
or it calls `P2PHost.broadcast_transaction` later). In a connected network every node therefore
receives each transaction, and its handler sees it once while the digest stays in the cache.

Invariant: the cache holds at most `capacity` digests, evicting the least recently seen; an
evicted digest arriving again is treated as new (the node's mempool deduplicates it anyway).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

from ledger.keys import PublicKey
from p2p.errors import InvalidConfig

TransactionDigest = bytes
"""SHA-256 of a transaction's bytes."""


def transaction_digest(transaction: bytes) -> TransactionDigest:
    """The gossip identity of a transaction."""
    return hashlib.sha256(transaction).digest()


@dataclass(slots=True)
class _Entry:
    origin: PublicKey | None
    """The peer that sent us the first copy; None if the node submitted it."""

    relayed: bool
    """Whether we have already sent it to our peers."""


class SeenCache:
    """A bounded LRU of transaction digests."""

    __slots__ = ("_capacity", "_entries")

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise InvalidConfig(f"seen cache capacity must be positive, got {capacity}")
        self._capacity = capacity
        self._entries: OrderedDict[TransactionDigest, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, digest: object) -> bool:
        return digest in self._entries

    def observe(self, digest: TransactionDigest, origin: PublicKey | None) -> bool:
        """Record a copy of `digest` from `origin`; True if it is the first copy."""
        entry = self._entries.get(digest)
        if entry is not None:
            self._entries.move_to_end(digest)
            return False
        self._entries[digest] = _Entry(origin, relayed=False)
        if len(self._entries) > self._capacity:
            self._entries.popitem(last=False)
        return True

    def claim_relay(self, digest: TransactionDigest) -> tuple[bool, PublicKey | None]:
        """Mark `digest` relayed. Returns (whether to send it now, the peer to skip)."""
        entry = self._entries.get(digest)
        if entry is None:
            entry = self._entries[digest] = _Entry(None, relayed=False)
            if len(self._entries) > self._capacity:
                self._entries.popitem(last=False)
        if entry.relayed:
            return False, entry.origin
        entry.relayed = True
        return True, entry.origin
