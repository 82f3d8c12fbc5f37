"""Peer scores and bans (sans-io: time is an argument).

Each offense costs a fixed number of points (`Offense`); the score decays back towards zero with
a half-life, so an occasional glitch is forgiven while a stream of bad frames is not. A peer at
or below the threshold is disconnected and banned for `ban_duration`: its connections are
refused after the handshake and it is not redialled until the ban ends.

Invariants: a score is never positive (good behaviour earns no credit to spend on bad); a ban's
end only moves later, never earlier, while it lasts.
"""

from __future__ import annotations

import enum

from ledger.keys import PublicKey
from p2p.errors import (
    FrameError,
    FrameTooLarge,
    MalformedFrame,
    TruncatedFrame,
    UnknownMessageType,
)


class Offense(enum.Enum):
    """What a peer did wrong; `points` is what it costs."""

    MALFORMED_FRAME = "malformed_frame"
    TRUNCATED_FRAME = "truncated_frame"
    OVERSIZED_FRAME = "oversized_frame"
    UNKNOWN_MESSAGE = "unknown_message"
    INVALID_PAYLOAD = "invalid_payload"
    TOO_MANY_REQUESTS = "too_many_requests"

    @property
    def points(self) -> int:
        return _POINTS[self]


# With the default threshold of -100, four bad frames in quick succession disconnect a peer;
# an unknown message kind costs less because a newer peer may send one by mistake.
_POINTS: dict[Offense, int] = {
    Offense.MALFORMED_FRAME: 25,
    Offense.TRUNCATED_FRAME: 25,
    Offense.OVERSIZED_FRAME: 25,
    Offense.UNKNOWN_MESSAGE: 10,
    Offense.INVALID_PAYLOAD: 20,
    Offense.TOO_MANY_REQUESTS: 10,
}


def offense_of(error: FrameError) -> Offense:
    """The offense a frame error counts as."""
    if isinstance(error, FrameTooLarge):
        return Offense.OVERSIZED_FRAME
    if isinstance(error, TruncatedFrame):
        return Offense.TRUNCATED_FRAME
    if isinstance(error, UnknownMessageType):
        return Offense.UNKNOWN_MESSAGE
    if isinstance(error, MalformedFrame):
        return Offense.MALFORMED_FRAME
    return Offense.MALFORMED_FRAME


class PeerScore:
    """One peer's score: 0 for a well-behaved peer, more negative with each offense."""

    __slots__ = ("_half_life", "_threshold", "_updated", "_value")

    def __init__(self, threshold: float, half_life: float, now: float) -> None:
        self._threshold = threshold
        self._half_life = half_life
        self._value = 0.0
        self._updated = now

    def value(self, now: float) -> float:
        """The score at `now`, after decay."""
        self._decay(now)
        return self._value

    def penalize(self, offense: Offense, now: float) -> bool:
        """Charge `offense`; True if the peer has now reached the disconnect threshold."""
        self._decay(now)
        self._value -= offense.points
        return self._value <= self._threshold

    def _decay(self, now: float) -> None:
        elapsed = now - self._updated
        if elapsed > 0:
            self._value *= 0.5 ** (elapsed / self._half_life)
            self._updated = now


class BanList:
    """Peers refused until a deadline."""

    __slots__ = ("_until",)

    def __init__(self) -> None:
        self._until: dict[PublicKey, float] = {}

    def ban(self, peer: PublicKey, until: float) -> None:
        """Refuse `peer` until `until` (extends an existing ban, never shortens it)."""
        self._until[peer] = max(until, self._until.get(peer, until))

    def banned_until(self, peer: PublicKey, now: float) -> float | None:
        """When `peer`'s ban ends, or None if it is not banned at `now`."""
        until = self._until.get(peer)
        if until is None:
            return None
        if until <= now:
            del self._until[peer]
            return None
        return until
