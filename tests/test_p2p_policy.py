"""Pure policy: config validation, backoff, token buckets, peer scores, bans, the seen-cache."""

from __future__ import annotations

import asyncio
import inspect
import random
import re
from typing import cast

import pytest

from ledger.keys import PrivateKey, PublicKey
from p2p.backoff import Backoff
from p2p.config import P2PConfig, PeerAddress, Tuning, allowlist
from p2p.errors import (
    ConnectionReplaced,
    FrameTooLarge,
    InvalidConfig,
    MalformedFrame,
    P2PError,
    TruncatedFrame,
    UnknownMessageType,
)
from p2p.gossip import SeenCache, transaction_digest
from p2p.peer import PeerConnection
from p2p.ratelimit import TokenBucket
from p2p.registry import Adoption, PeerRegistry
from p2p.score import BanList, Offense, PeerScore, offense_of

A = PrivateKey.from_label("policy-a").public_key
B = PrivateKey.from_label("policy-b").public_key


# --- config -------------------------------------------------------------------------------------


def test_default_tuning_is_valid_and_every_field_documented() -> None:
    tuning = Tuning()
    assert tuning.max_record_plaintext == tuning.max_frame_size + 4
    source = inspect.getsource(Tuning)
    for name in Tuning.__dataclass_fields__:
        assert re.search(rf"\n    {name}: \w+ = [^\n]+\n    \"\"\"\w", source), name


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"max_frame_size": 0}, "max_frame_size must be positive, got 0"),
        ({"write_timeout": -1.0}, "write_timeout must be positive"),
        ({"send_queue_max_messages": True}, "must be a number, got True"),
        ({"reconnect_jitter": 1.0}, r"reconnect_jitter must be in \[0, 1\)"),
        ({"score_disconnect_threshold": 5.0}, "must be negative"),
        ({"max_frame_size": 100, "record_target_bytes": 200}, "exceeds max_frame_size"),
        ({"send_queue_max_bytes": 10}, "cannot hold one maximal frame"),
        ({"keepalive_interval": 30.0}, "idle_timeout 20.0 must exceed keepalive_interval 30.0"),
        ({"reconnect_max_delay": 0.1}, "reconnect_max_delay 0.1 is below"),
    ],
)
def test_invalid_tuning(overrides: dict[str, float], match: str) -> None:
    with pytest.raises(InvalidConfig, match=match):
        Tuning(**overrides)  # type: ignore[arg-type]


def test_invalid_network_config() -> None:
    allowed = allowlist([A])
    with pytest.raises(InvalidConfig, match="chain_id must not be empty"):
        P2PConfig("", allowed)
    with pytest.raises(InvalidConfig, match="is not allowlisted"):
        P2PConfig("c", allowed, peers=(PeerAddress(B, "127.0.0.1", 1),))
    with pytest.raises(InvalidConfig, match="listed twice"):
        P2PConfig("c", allowed, peers=(PeerAddress(A, "h", 1), PeerAddress(A, "h", 2)))
    with pytest.raises(InvalidConfig, match=r"port 0 outside 1\.\.65535"):
        PeerAddress(A, "h", 0)
    with pytest.raises(InvalidConfig, match="must be 32 bytes, got 3"):
        P2PConfig("c", allowlist([b"abc"]))
    with pytest.raises(InvalidConfig, match="must be a frozenset"):
        P2PConfig("c", {A})  # type: ignore[arg-type]


# --- backoff ------------------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap_with_jitter_and_resets() -> None:
    backoff = Backoff(0.1, 1.0, 0.5, random.Random(7))
    delays = [backoff.next_delay() for _ in range(8)]
    bases = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0]
    for delay, base in zip(delays, bases, strict=True):
        assert base * 0.5 <= delay <= base
    assert backoff.attempts == 8
    backoff.reset()
    assert 0.05 <= backoff.next_delay() <= 0.1


def test_backoff_is_deterministic_for_a_seed() -> None:
    first = Backoff(0.1, 5.0, 0.5, random.Random(1))
    second = Backoff(0.1, 5.0, 0.5, random.Random(1))
    assert [first.next_delay() for _ in range(5)] == [second.next_delay() for _ in range(5)]


def test_backoff_survives_many_failures() -> None:
    backoff = Backoff(0.1, 30.0, 0.0, random.Random(0))
    for _ in range(2000):
        delay = backoff.next_delay()
    assert delay == 30.0


def test_invalid_backoff() -> None:
    with pytest.raises(InvalidConfig, match="0 < initial <= maximum"):
        Backoff(2.0, 1.0, 0.0, random.Random())
    with pytest.raises(InvalidConfig, match="jitter"):
        Backoff(1.0, 2.0, 1.5, random.Random())


# --- token bucket -------------------------------------------------------------------------------


def test_token_bucket_allows_a_burst_then_asks_to_wait() -> None:
    bucket = TokenBucket(rate=10.0, burst=5.0, now=0.0)
    assert bucket.take(5, now=0.0) == 0.0
    assert bucket.take(2, now=0.0) == pytest.approx(0.2)
    assert bucket.take(1, now=0.5) == 0.0  # refilled 5 tokens, 2 owed: 3 left, 1 taken
    assert bucket.tokens == pytest.approx(2.0)


def test_token_bucket_never_exceeds_burst_or_refills_backwards() -> None:
    bucket = TokenBucket(rate=10.0, burst=5.0, now=0.0)
    bucket.take(0, now=1000.0)
    assert bucket.tokens == 5.0
    bucket.take(5, now=1000.0)
    bucket.take(0, now=999.0)
    assert bucket.tokens == 0.0


def test_invalid_token_bucket() -> None:
    with pytest.raises(InvalidConfig, match="positive rate and burst"):
        TokenBucket(0.0, 1.0, 0.0)


# --- score and bans -----------------------------------------------------------------------------


def test_score_reaches_threshold_after_repeated_offenses_and_decays() -> None:
    score = PeerScore(threshold=-100.0, half_life=10.0, now=0.0)
    assert not score.penalize(Offense.MALFORMED_FRAME, now=0.0)
    assert not score.penalize(Offense.MALFORMED_FRAME, now=0.0)
    assert not score.penalize(Offense.MALFORMED_FRAME, now=0.0)
    assert score.value(now=10.0) == pytest.approx(-37.5)
    assert not score.penalize(Offense.MALFORMED_FRAME, now=10.0)
    assert score.penalize(Offense.MALFORMED_FRAME, now=10.0) is False
    assert score.penalize(Offense.INVALID_PAYLOAD, now=10.0)


def test_offense_of_each_frame_error() -> None:
    assert offense_of(FrameTooLarge("x")) is Offense.OVERSIZED_FRAME
    assert offense_of(TruncatedFrame("x")) is Offense.TRUNCATED_FRAME
    assert offense_of(UnknownMessageType("x")) is Offense.UNKNOWN_MESSAGE
    assert offense_of(MalformedFrame("x")) is Offense.MALFORMED_FRAME
    assert len({offense.points for offense in Offense}) >= 3
    assert len(set(Offense)) == 6


def test_bans_expire_and_only_extend() -> None:
    bans = BanList()
    bans.ban(A, until=10.0)
    bans.ban(A, until=5.0)
    assert bans.banned_until(A, now=6.0) == 10.0
    assert bans.banned_until(B, now=6.0) is None
    assert bans.banned_until(A, now=10.0) is None


# --- seen-cache ---------------------------------------------------------------------------------


def test_seen_cache_reports_first_copies_and_relays_once() -> None:
    cache = SeenCache(capacity=10)
    digest = transaction_digest(b"tx")
    assert cache.observe(digest, A)
    assert not cache.observe(digest, B)
    assert cache.claim_relay(digest) == (True, A)
    assert cache.claim_relay(digest) == (False, A)


def test_seen_cache_is_bounded_and_evicts_least_recently_seen() -> None:
    cache = SeenCache(capacity=3)
    digests = [transaction_digest(bytes([i])) for i in range(4)]
    for digest in digests[:3]:
        cache.observe(digest, None)
    cache.observe(digests[0], None)  # refresh the oldest
    cache.observe(digests[3], None)
    assert len(cache) == 3
    assert digests[0] in cache
    assert digests[1] not in cache


def test_seen_cache_relay_of_an_unknown_digest() -> None:
    cache = SeenCache(capacity=1)
    assert cache.claim_relay(b"d" * 32) == (True, None)
    assert cache.claim_relay(b"d" * 32) == (False, None)


def test_invalid_seen_cache() -> None:
    with pytest.raises(InvalidConfig, match="capacity must be positive"):
        SeenCache(0)


# --- registry tie-break -------------------------------------------------------------------------


class FakeConnection:
    """Just what the registry looks at."""

    def __init__(self, peer_id: PublicKey, outbound: bool) -> None:
        self.peer_id = peer_id
        self.outbound = outbound
        self.name = f"{'out' if outbound else 'in'}:{peer_id.hex()[:6]}"
        self.closed_for: P2PError | None = None

    def close(self, reason: P2PError) -> None:
        self.closed_for = reason


def connection(peer: PublicKey, outbound: bool) -> PeerConnection:
    return cast(PeerConnection, FakeConnection(peer, outbound))


def test_tie_break_keeps_the_same_connection_at_both_ends() -> None:
    low, high = sorted([A, B])
    # The low node dialled (outbound at low, inbound at high) and the high node dialled too.
    low_dialled = (connection(high, outbound=True), connection(low, outbound=False))
    high_dialled = (connection(high, outbound=False), connection(low, outbound=True))
    for first, second in ((low_dialled, high_dialled), (high_dialled, low_dialled)):
        at_low, at_high = PeerRegistry(low), PeerRegistry(high)
        assert at_low.adopt(first[0]) is Adoption.NEW_PEER
        assert at_high.adopt(first[1]) is Adoption.NEW_PEER
        at_low.adopt(second[0])
        at_high.adopt(second[1])
        assert at_low.get(high) is low_dialled[0]
        assert at_high.get(low) is low_dialled[1]


def test_newer_connection_in_the_same_direction_replaces_the_old() -> None:
    registry = PeerRegistry(A)
    old, new = connection(B, outbound=False), connection(B, outbound=False)
    registry.adopt(old)
    assert registry.adopt(new) is Adoption.REPLACED
    assert isinstance(cast(FakeConnection, old).closed_for, ConnectionReplaced)
    assert not registry.release(old)  # the replaced one leaves quietly
    assert registry.release(new)
    assert B not in registry


@pytest.mark.asyncio
async def test_registry_events_follow_registration() -> None:
    registry = PeerRegistry(A)
    await asyncio.wait_for(registry.wait_down(B), 1)
    only = connection(B, outbound=True)
    registry.adopt(only)
    await asyncio.wait_for(registry.wait_up(B), 1)
    assert registry.keys() == [B] and len(registry) == 1
    registry.release(only)
    await asyncio.wait_for(registry.wait_down(B), 1)
