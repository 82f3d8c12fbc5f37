"""The connection registry: at most one authenticated connection per peer.

Two connections to one peer happen when both sides dial at once, or when a peer reconnects
before we noticed its old connection die. The tie-break (`prefers`) keeps the newer connection
if both have the same direction - the old one is most likely dead - and otherwise the one
dialled by the node with the smaller key. Both ends apply the same rule to the same pair, so they
keep the same connection. The loser is closed with `ConnectionReplaced`.

Invariants: `adopt` and `release` are the only ways in and out; a released connection that had
already been replaced changes nothing; per-peer `up`/`down` events always reflect whether a
connection is registered, so dial loops and `wait_up` need no polling.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass, field

from ledger.keys import PublicKey
from p2p.errors import ConnectionReplaced
from p2p.peer import PeerConnection


class Adoption(enum.Enum):
    """What `PeerRegistry.adopt` did."""

    NEW_PEER = "new_peer"
    """Registered; the peer had no connection before."""
    REPLACED = "replaced"
    """Registered in place of an existing connection, which is now closing."""
    REFUSED = "refused"
    """Not registered: the existing connection wins the tie-break."""


@dataclass(slots=True)
class _Slot:
    up: asyncio.Event = field(default_factory=asyncio.Event)
    down: asyncio.Event = field(default_factory=asyncio.Event)


class PeerRegistry:
    """Connections by peer key, with the tie-break and per-peer up/down events."""

    __slots__ = ("_connections", "_own_key", "_slots")

    def __init__(self, own_key: PublicKey) -> None:
        self._own_key = own_key
        self._connections: dict[PublicKey, PeerConnection] = {}
        self._slots: dict[PublicKey, _Slot] = {}

    def __contains__(self, peer: object) -> bool:
        return peer in self._connections

    def __len__(self) -> int:
        return len(self._connections)

    def get(self, peer: PublicKey) -> PeerConnection | None:
        return self._connections.get(peer)

    def keys(self) -> list[PublicKey]:
        """Connected peers, sorted."""
        return sorted(self._connections)

    def connections(self) -> list[PeerConnection]:
        """A snapshot (safe to iterate while connections close)."""
        return list(self._connections.values())

    def prefers(self, new: PeerConnection, existing: PeerConnection) -> bool:
        """Whether `new` should replace `existing` (the same answer at both ends)."""
        if new.outbound == existing.outbound:
            return True
        new_dialler = self._own_key if new.outbound else new.peer_id
        return new_dialler == min(self._own_key, new.peer_id)

    def adopt(self, connection: PeerConnection) -> Adoption:
        """Register `connection` unless the tie-break keeps the existing one."""
        peer = connection.peer_id
        existing = self._connections.get(peer)
        if existing is not None and not self.prefers(connection, existing):
            return Adoption.REFUSED
        self._connections[peer] = connection
        if existing is not None:
            existing.close(ConnectionReplaced(f"{existing.name} replaced by {connection.name}"))
            return Adoption.REPLACED
        slot = self._slot(peer)
        slot.down.clear()
        slot.up.set()
        return Adoption.NEW_PEER

    def release(self, connection: PeerConnection) -> bool:
        """Unregister a finished connection; True if its peer is now disconnected."""
        peer = connection.peer_id
        if self._connections.get(peer) is not connection:
            return False
        del self._connections[peer]
        slot = self._slot(peer)
        slot.up.clear()
        slot.down.set()
        return True

    async def wait_up(self, peer: PublicKey) -> None:
        """Return once `peer` has a registered connection."""
        await self._slot(peer).up.wait()

    async def wait_down(self, peer: PublicKey) -> None:
        """Return once `peer` has no registered connection."""
        await self._slot(peer).down.wait()

    def _slot(self, peer: PublicKey) -> _Slot:
        slot = self._slots.get(peer)
        if slot is None:
            slot = self._slots[peer] = _Slot()
            slot.down.set()
        return slot
