"""What a host is told: who it may talk to (`P2PConfig`) and the tuning numbers (`Tuning`).

`Tuning` is the one place for the numbers that bound memory and time per peer; every field has a
documented default (also tabulated in docs/p2p.md). Both classes validate in `__post_init__` and
raise `InvalidConfig` naming the field and value, so a bad config fails at construction, never
in the middle of a connection.

Invariants checked here and relied on elsewhere:

* `record_target_bytes <= max_frame_size + FRAME_HEADER_SIZE`, so coalescing never builds a
  record the receiver would refuse, and a frame under the cap always fits one record;
* `send_queue_max_bytes >= max_frame_size + FRAME_HEADER_SIZE`, so any legal frame can be queued;
* `idle_timeout > keepalive_interval`, so a live but quiet peer is never taken for dead.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Final

from ledger.keys import PUBLIC_KEY_SIZE, PublicKey
from p2p.errors import InvalidConfig

FRAME_HEADER_SIZE: Final = 4
"""Every frame is prefixed by its length as a 4-byte big-endian unsigned integer."""

MiB: Final = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Tuning:
    """The numbers that bound each peer's memory, bandwidth and patience."""

    max_frame_size: int = 4 * MiB
    """Largest encoded message (frame body) accepted or sent; larger ones are refused."""

    record_target_bytes: int = 256 * 1024
    """The writer coalesces queued frames into one encrypted record up to about this size."""

    send_queue_max_messages: int = 10_000
    """A peer whose send queue would exceed this many frames is dropped as too slow."""

    send_queue_max_bytes: int = 16 * MiB
    """A peer whose send queue would exceed this many bytes is dropped as too slow."""

    write_timeout: float = 10.0
    """Seconds a write may wait for the socket to drain before the peer is dropped as stalled."""

    handshake_timeout: float = 5.0
    """Seconds allowed for the whole handshake, inbound or outbound."""

    max_pending_handshakes: int = 64
    """Inbound connections still handshaking at once; a newcomer beyond it evicts the oldest
    pending connection of the source holding the most (p2p/admission.py)."""

    max_pending_handshakes_per_source: int = 8
    """Pending inbound handshakes from one IPv4 address or IPv6 /64; a newcomer beyond it
    evicts that source's oldest pending connection."""

    first_message_timeout: float = 1.0
    """Seconds an inbound connection has to deliver handshake message 1 (its first bytes);
    the whole handshake must still finish within `handshake_timeout`."""

    dial_timeout: float = 5.0
    """Seconds allowed to open the TCP connection to a configured peer."""

    keepalive_interval: float = 5.0
    """A keepalive frame is sent after this many seconds without sending anything."""

    idle_timeout: float = 20.0
    """A peer from which nothing arrived for this many seconds is dropped as dead."""

    reconnect_initial_delay: float = 0.25
    """First delay before redialling a lost or unreachable peer."""

    reconnect_max_delay: float = 30.0
    """Cap of the exponential redial delay."""

    reconnect_jitter: float = 0.5
    """Each redial delay is multiplied by a random factor in [1 - jitter, 1]."""

    rate_messages_per_second: float = 50_000.0
    """Sustained frames per second read from one peer; beyond it reading pauses (backpressure)."""

    rate_message_burst: float = 100_000.0
    """Frames one peer may send in a burst above the sustained rate."""

    rate_bytes_per_second: float = 64.0 * MiB
    """Sustained bytes per second read from one peer; beyond it reading pauses."""

    rate_byte_burst: float = 128.0 * MiB
    """Bytes one peer may send in a burst above the sustained rate."""

    seen_cache_size: int = 100_000
    """Transaction hashes remembered for gossip deduplication (least recently seen evicted)."""

    score_disconnect_threshold: float = -100.0
    """A peer whose score falls to this value or below is disconnected and banned."""

    score_half_life: float = 60.0
    """Seconds for a peer's (negative) score to decay halfway back to zero."""

    ban_duration: float = 60.0
    """Seconds a disconnected misbehaving peer is refused and not redialled."""

    request_timeout: float = 10.0
    """Default seconds `P2PHost.request` waits for a response."""

    max_inflight_requests: int = 16
    """Requests one peer may have outstanding with us; more are refused and penalised."""

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidConfig(f"tuning {spec.name} must be a number, got {value!r}")
            if spec.name == "score_disconnect_threshold":
                if value >= 0:
                    raise InvalidConfig(f"tuning {spec.name} must be negative, got {value!r}")
            elif spec.name == "reconnect_jitter":
                if not 0 <= value < 1:
                    raise InvalidConfig(f"tuning {spec.name} must be in [0, 1), got {value!r}")
            elif not value > 0:
                raise InvalidConfig(f"tuning {spec.name} must be positive, got {value!r}")
        record_cap = self.max_frame_size + FRAME_HEADER_SIZE
        if self.record_target_bytes > record_cap:
            raise InvalidConfig(
                f"record_target_bytes {self.record_target_bytes} exceeds "
                f"max_frame_size + {FRAME_HEADER_SIZE} = {record_cap}"
            )
        if self.send_queue_max_bytes < record_cap:
            raise InvalidConfig(
                f"send_queue_max_bytes {self.send_queue_max_bytes} cannot hold one maximal "
                f"frame of {record_cap} bytes"
            )
        if self.idle_timeout <= self.keepalive_interval:
            raise InvalidConfig(
                f"idle_timeout {self.idle_timeout} must exceed "
                f"keepalive_interval {self.keepalive_interval}"
            )
        if self.reconnect_max_delay < self.reconnect_initial_delay:
            raise InvalidConfig(
                f"reconnect_max_delay {self.reconnect_max_delay} is below "
                f"reconnect_initial_delay {self.reconnect_initial_delay}"
            )

    @property
    def max_record_plaintext(self) -> int:
        """Largest decrypted record: one maximal frame with its header."""
        return self.max_frame_size + FRAME_HEADER_SIZE


@dataclass(frozen=True, slots=True)
class PeerAddress:
    """A configured peer to dial: the key it must prove and where to reach it."""

    public_key: PublicKey
    """The Ed25519 node key the peer must prove in the handshake."""

    host: str
    """Host name or IP address."""

    port: int
    """TCP port."""

    def __post_init__(self) -> None:
        _check_key("peer public_key", self.public_key)
        if not self.host:
            raise InvalidConfig("peer host must not be empty")
        if isinstance(self.port, bool) or not isinstance(self.port, int):
            raise InvalidConfig(f"peer port must be an int, got {self.port!r}")
        if not 0 < self.port < 65536:
            raise InvalidConfig(f"peer port {self.port} outside 1..65535")


@dataclass(frozen=True, slots=True)
class P2PConfig:
    """Who this host is on the network and whom it may talk to."""

    chain_id: str
    """The chain's identifier; bound into every handshake so chains never cross-connect."""

    allowed_keys: frozenset[PublicKey]
    """Node keys allowed to connect at start: validators plus configured observers and peers.
    `P2PHost.set_allowed_keys` replaces it at runtime (when the validator set changes)."""

    peers: tuple[PeerAddress, ...] = ()
    """Peers this host dials and keeps connected; each key must be in `allowed_keys`."""

    listen_host: str = "127.0.0.1"
    """Address to accept connections on."""

    listen_port: int = 0
    """Port to accept connections on; 0 picks a free port (see `P2PHost.listen_port`)."""

    tuning: Tuning = field(default_factory=Tuning)
    """Limits and timeouts."""

    def __post_init__(self) -> None:
        if not self.chain_id:
            raise InvalidConfig("chain_id must not be empty")
        check_allowlist(self.allowed_keys, self.peers)
        seen: set[PublicKey] = set()
        for peer in self.peers:
            if peer.public_key in seen:
                raise InvalidConfig(f"peer key {peer.public_key.hex()} is listed twice")
            seen.add(peer.public_key)
        if not 0 <= self.listen_port < 65536:
            raise InvalidConfig(f"listen_port {self.listen_port} outside 0..65535")


def check_allowlist(allowed: object, peers: Iterable[PeerAddress]) -> None:
    """Raise InvalidConfig unless `allowed` is a frozenset of node keys holding every peer's."""
    if not isinstance(allowed, frozenset):
        raise InvalidConfig(f"allowed_keys must be a frozenset, got {type(allowed).__name__}")
    for key in allowed:
        _check_key("allowed key", key)
    for peer in peers:
        if peer.public_key not in allowed:
            raise InvalidConfig(
                f"peer {peer.host}:{peer.port} key {peer.public_key.hex()} is not allowlisted"
            )


def allowlist(keys: Iterable[bytes]) -> frozenset[PublicKey]:
    """The allowlist of `keys` (helper for building a `P2PConfig` from genesis and config)."""
    return frozenset(PublicKey(bytes(key)) for key in keys)


def _check_key(what: str, key: bytes) -> None:
    if not isinstance(key, bytes) or len(key) != PUBLIC_KEY_SIZE:
        size = len(key) if isinstance(key, bytes) else type(key).__name__
        raise InvalidConfig(f"{what} must be {PUBLIC_KEY_SIZE} bytes, got {size}")
