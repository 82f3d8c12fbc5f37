"""Bounded buffer for early messages (a future view, or heights just above the watermark).

Invariants: at most `per_peer` messages per sender and `total` overall; a message already
buffered is not stored twice; order of release is arrival order (deterministic). Messages are
verified before they are buffered, so a sender's quota can only be spent by that sender.
"""

from __future__ import annotations

from collections.abc import Callable

from consensus.errors import BufferFull, DuplicateMessage
from consensus.messages import Message


class FutureBuffer:
    """Early messages with per-sender and global caps."""

    __slots__ = ("_items", "_per_peer", "_per_peer_cap", "_total_cap")

    def __init__(self, per_peer: int, total: int) -> None:
        self._per_peer_cap = per_peer
        self._total_cap = total
        self._items: dict[Message, None] = {}
        self._per_peer: dict[bytes, int] = {}

    def add(self, message: Message) -> None:
        """Buffer `message`; raise `DuplicateMessage` or `BufferFull` (nothing changes then)."""
        if message in self._items:
            raise DuplicateMessage(f"{type(message).KIND} already buffered")
        used = self._per_peer.get(message.sender, 0)
        if used >= self._per_peer_cap:
            raise BufferFull(f"sender already has {used} buffered messages (cap)")
        if len(self._items) >= self._total_cap:
            raise BufferFull(f"buffer holds {len(self._items)} messages (global cap)")
        self._items[message] = None
        self._per_peer[message.sender] = used + 1

    def take(self, ready: Callable[[Message], bool]) -> list[Message]:
        """Remove and return, in arrival order, the messages `ready` accepts."""
        taken = [m for m in self._items if ready(m)]
        for message in taken:
            self._remove(message)
        return taken

    def drop(self, obsolete: Callable[[Message], bool]) -> None:
        for message in [m for m in self._items if obsolete(m)]:
            self._remove(message)

    def _remove(self, message: Message) -> None:
        del self._items[message]
        left = self._per_peer[message.sender] - 1
        if left:
            self._per_peer[message.sender] = left
        else:
            del self._per_peer[message.sender]

    def __len__(self) -> int:
        return len(self._items)

    def largest_share(self) -> int:
        """The most messages any one sender has buffered."""
        return max(self._per_peer.values(), default=0)
