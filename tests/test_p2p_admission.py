"""Handshake slowloris: silent sockets cannot keep an allowlisted peer out, and the allowlist
follows the validator set at runtime.

The pool's rules are tested as pure code; the attacks run over real sockets on 127.0.0.x
(Linux routes all of 127.0.0.0/8 to the loopback interface, so each address is its own source).
Every wait is on an event with a deadline and a message naming what did not happen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import pytest

from ledger.keys import PrivateKey
from p2p import P2PConfig, P2PHost, PeerAddress, Tuning, allowlist
from p2p.admission import UNKNOWN_SOURCE, HandshakePool, source_of
from p2p.channel import dial
from p2p.errors import HandshakeAborted, InvalidConfig
from tests.p2p_testing import Recorder

CHAIN = "sec-admission-test"
HOST_KEY, GENUINE_KEY, OTHER_KEY = (PrivateKey.from_label(f"admission-{n}") for n in "hgo")
HOST, GENUINE, OTHER = HOST_KEY.public_key, GENUINE_KEY.public_key, OTHER_KEY.public_key
ALLOWED = allowlist([HOST, GENUINE, OTHER])
PATIENT = Tuning(
    handshake_timeout=60.0,
    first_message_timeout=60.0,
    reconnect_initial_delay=0.02,
    reconnect_max_delay=0.2,
)
"""Silent sockets are never timed out during a test: only admission can let a peer in."""
DEADLINE = 10.0


# --- the pool, as pure code ---------------------------------------------------------------------


def test_pool_evicts_the_oldest_of_a_source_at_its_limit() -> None:
    pool: HandshakePool[str] = HandshakePool(capacity=10, per_source=2)
    first, none_1 = pool.admit("10.0.0.1", "a1")
    _, none_2 = pool.admit("10.0.0.1", "a2")
    other, none_3 = pool.admit("10.0.0.2", "b1")
    assert (none_1, none_2, none_3) == (None, None, None)
    _, victim = pool.admit("10.0.0.1", "a3")
    assert victim is first
    assert first.evicted
    assert pool.pending_from("10.0.0.1") == 2
    assert len(pool) == 3
    assert not pool.release(first)  # already out: releasing it changes nothing
    assert pool.release(other)
    assert len(pool) == 2


def test_pool_when_full_takes_from_the_fullest_source_oldest_first() -> None:
    pool: HandshakePool[str] = HandshakePool(capacity=4, per_source=3)
    pool.admit("10.0.0.1", "a1")
    oldest_b, _ = pool.admit("10.0.0.2", "b1")
    pool.admit("10.0.0.2", "b2")
    pool.admit("10.0.0.1", "a2")
    # Both sources hold two: the tie goes to the source whose oldest is oldest (10.0.0.1).
    _, victim = pool.admit("10.0.0.3", "c1")
    assert victim is not None
    assert victim.handle == "a1"
    _, victim = pool.admit("10.0.0.4", "d1")
    assert victim is oldest_b
    assert len(pool) == 4
    assert [pool.pending_from(s) for s in ("10.0.0.1", "10.0.0.2")] == [1, 1]


def test_pool_evicts_silent_connections_before_ones_that_spoke() -> None:
    """A genuine peer sends message 1 at once: newer idle sockets go before it."""
    pool: HandshakePool[str] = HandshakePool(capacity=3, per_source=3)
    genuine, _ = pool.admit("10.0.0.1", "genuine")
    pool.mark_spoke(genuine)
    pool.admit("10.0.0.1", "idle-1")
    pool.admit("10.0.0.1", "idle-2")
    evicted = [pool.admit("10.0.0.1", f"idle-{n}")[1] for n in range(3, 9)]
    assert [victim.handle for victim in evicted if victim is not None] == [
        f"idle-{n}" for n in range(1, 7)
    ]
    assert pool.release(genuine)
    # When every connection has spoken, the oldest goes.
    pool = HandshakePool(capacity=3, per_source=3)
    spoken = [pool.admit("10.0.0.2", f"spoke-{n}")[0] for n in range(3)]
    for entry in spoken:
        pool.mark_spoke(entry)
    assert pool.admit("10.0.0.2", "new")[1] is spoken[0]


def test_pool_never_exceeds_its_bounds() -> None:
    pool: HandshakePool[int] = HandshakePool(capacity=16, per_source=4)
    for index in range(500):
        pool.admit(f"10.0.{index % 7}.{index % 3}", index)
        assert len(pool) <= 16
        assert all(pool.pending_from(f"10.0.{a}.{b}") <= 4 for a in range(7) for b in range(3))


def test_invalid_handshake_pool() -> None:
    with pytest.raises(InvalidConfig, match="got 0 and 4"):
        HandshakePool[int](capacity=0, per_source=4)
    with pytest.raises(InvalidConfig, match="got 4 and 0"):
        HandshakePool[int](capacity=4, per_source=0)


def test_source_is_the_ipv4_address_or_the_ipv6_64() -> None:
    assert source_of(("192.0.2.7", 4242)) == "192.0.2.7"
    assert source_of(("2001:db8:1:2:3:4:5:6", 4242, 0, 0)) == "2001:db8:1:2::/64"
    assert source_of(("2001:db8:1:2:ffff::1", 1, 0, 0)) == "2001:db8:1:2::/64"
    assert source_of(("::ffff:192.0.2.7", 1, 0, 0)) == "192.0.2.7"
    assert source_of(("fe80::1%eth0", 1, 0, 2)) == "fe80::/64"
    assert source_of(None) == UNKNOWN_SOURCE
    assert source_of(("not an address", 1)) == UNKNOWN_SOURCE


# --- real sockets -------------------------------------------------------------------------------


class SilentSockets:
    """An attacker holding TCP connections that never send a byte; counts those the host closes."""

    def __init__(self, reopen_up_to: int = 0) -> None:
        self.opened = 0
        self.closed = 0
        self._reopen_up_to = reopen_up_to
        """Replace each socket the host closes with a new one, until this many were opened."""
        self._changed = asyncio.Event()
        self._writers: list[asyncio.StreamWriter] = []
        self._watchers: list[asyncio.Task[None]] = []

    async def open(self, port: int, count: int, source: str = "127.0.0.1") -> None:
        for _ in range(count):
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, local_addr=(source, 0)
            )
            self._writers.append(writer)
            self._watchers.append(asyncio.create_task(self._watch(reader, port, source)))
            self.opened += 1

    async def wait_closed_by_host(self, at_least: int) -> None:
        try:
            async with asyncio.timeout(DEADLINE):
                while self.closed < at_least:
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            pytest.fail(f"the host closed {self.closed} silent sockets, expected {at_least}")

    async def _watch(self, reader: asyncio.StreamReader, port: int, source: str) -> None:
        with contextlib.suppress(ConnectionError):
            await reader.read()
        self.closed += 1
        self._changed.set()
        if self.opened < self._reopen_up_to:
            with contextlib.suppress(ConnectionError):
                await self.open(port, 1, source)

    async def aclose(self) -> None:
        self._reopen_up_to = 0
        for writer in self._writers:
            writer.transport.abort()
        for watcher in self._watchers:
            watcher.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)


@contextlib.asynccontextmanager
async def attacked_host(
    tuning: Tuning = PATIENT, reopen_up_to: int = 0
) -> AsyncIterator[tuple[P2PHost, SilentSockets]]:
    host = P2PHost(P2PConfig(CHAIN, ALLOWED, tuning=tuning), HOST_KEY, Recorder().handlers())
    attacker = SilentSockets(reopen_up_to)
    async with host.running():
        try:
            yield host, attacker
        finally:
            await attacker.aclose()


async def genuine_peer_connects(host: P2PHost) -> None:
    """A real host with an allowlisted key dials `host` (as a restarted node would) and must be
    connected within the deadline."""
    address = PeerAddress(HOST, "127.0.0.1", host.listen_port)
    genuine = P2PHost(P2PConfig(CHAIN, ALLOWED, peers=(address,), tuning=PATIENT), GENUINE_KEY)
    async with genuine.running():
        try:
            await asyncio.wait_for(host.wait_for_peer(GENUINE), DEADLINE)
        except TimeoutError:
            pytest.fail(f"the allowlisted peer was kept out for {DEADLINE} s by silent sockets")


@pytest.mark.asyncio
async def test_invalid_silent_sockets_from_one_source_cannot_starve_an_allowlisted_peer() -> None:
    """Before the fix, 64 idle sockets held every pending-handshake slot for the whole
    handshake deadline and a redialling peer was refused on arrival."""
    async with attacked_host() as (host, attacker):
        await attacker.open(host.listen_port, 80)
        # The pool is full of the attacker's sockets (whatever the admission rule, at most 64
        # are held, so at least 16 were closed) before the genuine peer dials.
        await attacker.wait_closed_by_host(80 - PATIENT.max_pending_handshakes)
        await genuine_peer_connects(host)
        await attacker.wait_closed_by_host(80 - PATIENT.max_pending_handshakes_per_source)
        assert host.stats.handshakes_evicted >= 80 - PATIENT.max_pending_handshakes_per_source


@pytest.mark.asyncio
async def test_invalid_silent_sockets_from_many_sources_cannot_starve_an_allowlisted_peer() -> None:
    async with attacked_host() as (host, attacker):
        sources = [f"127.0.0.{index}" for index in range(2, 12)]
        for source in sources:
            await attacker.open(host.listen_port, PATIENT.max_pending_handshakes_per_source, source)
        assert attacker.opened > PATIENT.max_pending_handshakes
        await attacker.wait_closed_by_host(attacker.opened - PATIENT.max_pending_handshakes)
        await genuine_peer_connects(host)


@pytest.mark.asyncio
async def test_invalid_attacker_reopening_every_closed_socket_cannot_starve_a_peer() -> None:
    """From ten sources, the attacker replaces each socket the host closes at once (as fast
    as this event loop lets it), so the pool is never short of idle sockets."""
    async with attacked_host(reopen_up_to=2_000) as (host, attacker):
        for index in range(2, 12):
            await attacker.open(host.listen_port, 10, f"127.0.0.{index}")
        await attacker.wait_closed_by_host(100 - PATIENT.max_pending_handshakes)
        await genuine_peer_connects(host)


@pytest.mark.asyncio
async def test_invalid_silent_socket_is_closed_at_the_first_message_deadline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "p2p")
    tuning = Tuning(handshake_timeout=60.0, first_message_timeout=0.2)
    async with attacked_host(tuning) as (host, attacker):
        await attacker.open(host.listen_port, 1)
        await attacker.wait_closed_by_host(1)  # long before the 60 s handshake deadline
        assert host.stats.handshakes_refused == 1
    assert "sent no handshake message 1 within 0.2 s" in caplog.text


# --- the allowlist at runtime -------------------------------------------------------------------


@pytest.mark.asyncio
async def test_invalid_key_taken_off_the_allowlist_is_closed_and_refused() -> None:
    recorder = Recorder()
    host = P2PHost(P2PConfig(CHAIN, ALLOWED, tuning=PATIENT), HOST_KEY, recorder.handlers())
    async with host.running():
        address = PeerAddress(HOST, "127.0.0.1", host.listen_port)
        removed = P2PHost(P2PConfig(CHAIN, ALLOWED, peers=(address,), tuning=PATIENT), OTHER_KEY)
        async with removed.running():
            await asyncio.wait_for(host.wait_for_peer(OTHER), DEADLINE)
            assert host.set_allowed_keys(allowlist([HOST, GENUINE])) == [OTHER]
            await recorder.wait_until(lambda: bool(recorder.disconnected), "the link to close")
            assert recorder.disconnected[0][0] == OTHER
            assert "taken off the allowlist" in recorder.disconnected[0][1]
            assert host.allowed_keys == allowlist([HOST, GENUINE])
        # A fresh handshake with the removed key is refused: it is not confirmed.
        with pytest.raises(HandshakeAborted, match="instead of confirming"):
            await dial(address, OTHER_KEY, CHAIN, ALLOWED, PATIENT)
        assert not host.is_connected(OTHER)
        # Allowed again, it is let in again.
        host.set_allowed_keys(ALLOWED)
        channel = await dial(address, OTHER_KEY, CHAIN, ALLOWED, PATIENT)
        await asyncio.wait_for(host.wait_for_peer(OTHER), DEADLINE)
        channel.abort()


def test_invalid_allowlist_update_changes_nothing() -> None:
    address = PeerAddress(GENUINE, "127.0.0.1", 1)
    host = P2PHost(P2PConfig(CHAIN, ALLOWED, peers=(address,)), HOST_KEY)
    with pytest.raises(InvalidConfig, match="is not allowlisted"):
        host.set_allowed_keys(allowlist([HOST, OTHER]))
    with pytest.raises(InvalidConfig, match="allowed key must be 32 bytes, got 3"):
        host.set_allowed_keys(frozenset({GENUINE, b"abc"}))  # type: ignore[arg-type]
    assert host.allowed_keys == ALLOWED
