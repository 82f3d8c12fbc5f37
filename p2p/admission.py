"""Who may hold a pending-handshake slot: the pool of unauthenticated inbound connections.

Theory of operation. Until its handshake proves an allowlisted key, an inbound connection is
anonymous and costs us a socket, a task and (after message 1) a key exchange. The pool bounds
them: at most `capacity` at once, at most `per_source` from one source (an IPv4 address, or
the /64 prefix of an IPv6 address: one host usually holds a whole /64). A newcomer is never
refused for lack of room; instead the pool names a *victim* to close:

* if the newcomer's own source is at `per_source`, a pending connection of that source;
* else, if the pool is full, a pending connection of the source holding the most (ties: the
  source whose oldest connection is oldest).

Within the chosen source the victim is its oldest connection that has not yet delivered
handshake message 1 (`mark_spoke`), or its oldest connection if all have. A genuine peer sends
message 1 the moment it connects, so idle sockets go first even when they are newer.

Why evict instead of refuse: a slowloris attacker *holds* sockets open. Refusing newcomers lets
whoever holds the pool keep everyone else out for as long as it likes (repeatedly, so a dropped
link or a restarted node never reconnects); evicting the oldest lets a genuine peer in, and its
handshake (one round trip) finishes long before the attacker can cycle the pool again. Holding
the pool now takes a sustained connection rate from several sources, not a handful of idle
sockets - and each idle socket is closed anyway after `first_message_timeout`.

Outbound dials to configured peers never enter the pool: our own dials cannot be starved by
strangers connecting to us.

Invariants: `len(pool) <= capacity`; no source holds more than `per_source` entries; `admit` and
`release` are the only ways in and out, and releasing an evicted or already released entry
changes nothing. Sans-io: the pool closes nothing itself, it returns the victim.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from itertools import count
from typing import Generic, TypeVar

from p2p.errors import InvalidConfig

T = TypeVar("T")

UNKNOWN_SOURCE = "unknown"
"""The source of a connection whose peer address the transport does not report."""


def source_of(peername: object) -> str:
    """The source a connection counts against: its IPv4 address, or its IPv6 /64 prefix.

    An IPv4-mapped IPv6 address counts as the IPv4 address it maps."""
    if not isinstance(peername, tuple) or not peername or not isinstance(peername[0], str):
        return UNKNOWN_SOURCE
    try:
        address = ipaddress.ip_address(peername[0].split("%", 1)[0])
    except ValueError:
        return UNKNOWN_SOURCE
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


@dataclass(eq=False, slots=True)
class PendingHandshake(Generic[T]):
    """One slot in the pool; compared by identity."""

    source: str
    """What the per-source limit counts this connection against (see `source_of`)."""
    handle: T
    """What the caller needs to close the connection if it is evicted."""
    order: int = field(default=0)
    """Arrival order in the pool (smaller is older)."""
    spoke: bool = False
    """Whether handshake message 1 arrived (set by `HandshakePool.mark_spoke`)."""
    evicted: bool = False
    """Whether the pool chose this entry as a victim (the caller closes it; logs nothing more)."""


class HandshakePool(Generic[T]):
    """Pending inbound handshakes by source, oldest first. See the module docstring."""

    __slots__ = ("_arrivals", "_by_source", "_capacity", "_per_source", "_size")

    def __init__(self, capacity: int, per_source: int) -> None:
        if capacity < 1 or per_source < 1:
            raise InvalidConfig(
                f"handshake pool needs a positive capacity and per-source limit, "
                f"got {capacity} and {per_source}"
            )
        self._capacity = capacity
        self._per_source = min(per_source, capacity)
        self._by_source: dict[str, dict[PendingHandshake[T], None]] = {}
        self._size = 0
        self._arrivals = count()

    def __len__(self) -> int:
        return self._size

    def pending_from(self, source: str) -> int:
        """How many pending handshakes `source` holds."""
        return len(self._by_source.get(source, ()))

    def admit(
        self, source: str, handle: T
    ) -> tuple[PendingHandshake[T], PendingHandshake[T] | None]:
        """Add a newcomer; return its slot and the victim to close (already out of the pool)."""
        victim = self._choose_victim(source)
        if victim is not None:
            self.release(victim)
            victim.evicted = True
        entry = PendingHandshake(source, handle, next(self._arrivals))
        self._by_source.setdefault(source, {})[entry] = None
        self._size += 1
        return entry, victim

    def mark_spoke(self, entry: PendingHandshake[T]) -> None:
        """Record that `entry` delivered handshake message 1: it is evicted after silent ones."""
        entry.spoke = True

    def release(self, entry: PendingHandshake[T]) -> bool:
        """Take `entry` out (handshake finished, failed or evicted); False if it was not in."""
        held = self._by_source.get(entry.source)
        if held is None or entry not in held:
            return False
        del held[entry]
        if not held:
            del self._by_source[entry.source]
        self._size -= 1
        return True

    def _choose_victim(self, source: str) -> PendingHandshake[T] | None:
        own = self._by_source.get(source)
        if own is not None and len(own) >= self._per_source:
            return _oldest_silent_first(own)
        if self._size < self._capacity:
            return None
        # The pool is full and the newcomer's source is under its share: take from the source
        # holding the most.
        fullest = max(
            self._by_source.values(), key=lambda held: (len(held), -next(iter(held)).order)
        )
        return _oldest_silent_first(fullest)


def _oldest_silent_first(held: dict[PendingHandshake[T], None]) -> PendingHandshake[T]:
    """The oldest entry that has not spoken, else the oldest (`held` is in arrival order)."""
    for entry in held:
        if not entry.spoke:
            return entry
    return next(iter(held))
