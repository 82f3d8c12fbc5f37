"""P2P hosts over real sockets on 127.0.0.1: authentication, tampering, bad frames, requests,
keepalive and reconnection. Every wait is on an event with a deadline (Recorder.wait_until)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import msgpack
import pytest

from ledger.keys import PrivateKey, PublicKey
from p2p import (
    Handlers,
    InvalidPayload,
    MessageTooLarge,
    P2PConfig,
    P2PHost,
    PeerAddress,
    PeerNotConnected,
    RequestFailed,
    RequestRejected,
    RequestTimeout,
    Tuning,
    allowlist,
)
from p2p.channel import dial, read_handshake_message, write_handshake_message
from p2p.errors import HandshakeAborted, HostLifecycleError, PeerIdentityMismatch
from p2p.frames import ConsensusMessage, Request, RequestFailure, Response, consensus_frame
from tests.p2p_testing import Recorder, ScriptedPeer, frame, open_stream

CHAIN = "sec-p2p-test"
KEYS = {name: PrivateKey.from_label(f"p2p-{name}") for name in ("a", "b", "c", "m")}
A, B, C, M = (KEYS[name].public_key for name in ("a", "b", "c", "m"))
UNKNOWN = PrivateKey.from_label("p2p-unknown")
ALLOWED = allowlist(key.public_key for key in KEYS.values())
FAST = Tuning(reconnect_initial_delay=0.02, reconnect_max_delay=0.2, handshake_timeout=2.0)
LOGGER = "p2p"


def make_host(
    name: str,
    recorder: Recorder | None = None,
    *,
    peers: tuple[PeerAddress, ...] = (),
    tuning: Tuning = FAST,
    handlers: Handlers | None = None,
    port: int = 0,
) -> P2PHost:
    config = P2PConfig(CHAIN, ALLOWED, peers=peers, listen_port=port, tuning=tuning)
    if handlers is None and recorder is not None:
        handlers = recorder.handlers()
    return P2PHost(config, KEYS[name], handlers)


def address_of_host(host: P2PHost) -> PeerAddress:
    return PeerAddress(host.public_key, "127.0.0.1", host.listen_port)


@contextlib.asynccontextmanager
async def linked_pair(
    tuning: Tuning = FAST,
    a_handlers: Handlers | None = None,
) -> AsyncIterator[tuple[P2PHost, Recorder, P2PHost, Recorder]]:
    """Host A, and host B dialling A; both connected on entry."""
    a_recorder, b_recorder = Recorder(), Recorder()
    a = make_host("a", a_recorder, tuning=tuning, handlers=a_handlers)
    async with a.running():
        b = make_host("b", b_recorder, peers=(address_of_host(a),), tuning=tuning)
        async with b.running():
            await b_recorder.wait_until(lambda: A in b.connected_peers(), "B connected to A")
            await asyncio.wait_for(a.wait_for_peer(B), 5)
            yield a, a_recorder, b, b_recorder


async def assert_link_works(
    a: P2PHost, a_recorder: Recorder, b: P2PHost, b_recorder: Recorder
) -> None:
    """A and B still exchange consensus messages both ways."""
    token = f"ping {len(a_recorder.consensus)}".encode()
    b.send_consensus(A, token)
    a.send_consensus(B, token)
    await a_recorder.wait_until(lambda: token in a_recorder.consensus_payloads(B), "A hears B")
    await b_recorder.wait_until(lambda: token in b_recorder.consensus_payloads(A), "B hears A")


def scripted_info(host: P2PHost, key: PublicKey) -> tuple[int, float]:
    info = next(info for info in host.peers() if info.public_key == key)
    return info.frames_rejected, info.score


# --- working paths ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_hosts_exchange_consensus_and_serve_requests() -> None:
    async def serve(peer: PublicKey, payload: bytes) -> bytes:
        if payload == b"missing":
            raise RequestRejected("no block 99")
        return b"block " + payload

    a_recorder = Recorder()
    async with linked_pair(a_handlers=a_recorder.handlers(serve)) as (a, _, b, b_recorder):
        b.send_consensus(A, b"prepare")
        assert a.broadcast_consensus(b"commit") == 1
        await a_recorder.wait_until(lambda: a_recorder.consensus_payloads() == [b"prepare"], "A")
        await b_recorder.wait_until(lambda: b_recorder.consensus_payloads() == [b"commit"], "B")
        assert await b.request(A, b"7") == b"block 7"
        with pytest.raises(RequestFailed, match="refused request 1: no block 99"):
            await b.request(A, b"missing")
        assert a_recorder.connected == [B]
        assert b_recorder.connected == [A]
        assert [info.outbound for info in b.peers()] == [True]
        with pytest.raises(PeerNotConnected, match="no connection to sec1"):
            b.send_consensus(C, b"x")
        with pytest.raises(PeerNotConnected):
            await b.request(C, b"x")
        with pytest.raises(MessageTooLarge, match="above the frame cap"):
            b.send_consensus(A, bytes(FAST.max_frame_size))
    assert b_recorder.disconnected[0][0] == A


@pytest.mark.asyncio
async def test_invalid_request_timeout() -> None:
    release = asyncio.Event()

    async def slow(peer: PublicKey, payload: bytes) -> bytes:
        await release.wait()
        return b"late"

    tuning = Tuning(request_timeout=0.2, reconnect_initial_delay=0.02)
    async with linked_pair(tuning, a_handlers=Recorder().handlers(slow)) as (_, _, b, _):
        with pytest.raises(RequestTimeout, match=r"no response within 0\.2 s"):
            await b.request(A, b"block 1")
        release.set()  # the late response is ignored, not an error
        assert await b.request(A, b"block 2") == b"late"


@pytest.mark.asyncio
async def test_invalid_too_many_requests_in_flight() -> None:
    release = asyncio.Event()

    async def slow(peer: PublicKey, payload: bytes) -> bytes:
        await release.wait()
        return payload

    tuning = Tuning(max_inflight_requests=2)
    host = make_host("a", tuning=tuning, handlers=Recorder().handlers(slow))
    async with host.running():
        peer = await ScriptedPeer.connect(host.listen_port, KEYS["m"], CHAIN, A)
        peer.send_messages(Request(1, b"1"), Request(2, b"2"), Request(3, b"3"))
        assert await peer.receive_messages() == [RequestFailure(3, "too many requests in flight")]
        release.set()
        answers: list[object] = []
        while len(answers) < 2:
            answers += await peer.receive_messages()
        assert sorted(answers, key=repr) == [Response(1, b"1"), Response(2, b"2")]
        assert scripted_info(host, M)[0] == 1
        await peer.close()


@pytest.mark.asyncio
async def test_invalid_host_lifecycle() -> None:
    host = make_host("a")
    with pytest.raises(HostLifecycleError, match="not listening yet"):
        _ = host.listen_port
    async with host.running():
        with pytest.raises(HostLifecycleError, match="runs only once"):
            await host.run()
    taken = make_host("b")
    async with taken.running():
        with pytest.raises(OSError, match="address already in use"):
            async with make_host("c", port=taken.listen_port).running():
                pass


# --- authentication -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_invalid_unknown_key_is_refused_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    host = make_host("a")
    async with host.running():
        with pytest.raises(HandshakeAborted, match="instead of confirming"):
            await dial(address_of_host(host), UNKNOWN, CHAIN, allowlist([A]), FAST)
        assert host.connected_peers() == []
        assert host.stats.handshakes_refused == 1
    assert "UnknownPeer: node key sec1" in caplog.text
    assert "is not on the allowlist" in caplog.text


@pytest.mark.asyncio
async def test_invalid_peer_presenting_another_nodes_id(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, LOGGER)

    class Impostor:
        """Claims B's node key, signs with M's."""

        public_key = B

        def sign(self, message: bytes) -> bytes:
            return KEYS["m"].sign(message)

    host = make_host("a")
    async with host.running():
        with pytest.raises(HandshakeAborted):
            await dial(address_of_host(host), Impostor(), CHAIN, ALLOWED, FAST)
        assert host.connected_peers() == []
    assert "BadHandshakeSignature: peer claims node key" in caplog.text
    assert "signature does not verify" in caplog.text


@pytest.mark.asyncio
async def test_invalid_dialled_address_answered_by_another_node() -> None:
    """Config says B is at this address, but (allowlisted) M answers: A refuses it."""
    m_host = make_host("m")
    async with m_host.running():
        wrong = PeerAddress(B, "127.0.0.1", m_host.listen_port)
        with pytest.raises(PeerIdentityMismatch, match=r"dialled sec1.* but the peer proved"):
            await dial(wrong, KEYS["a"], CHAIN, ALLOWED, FAST)
        assert m_host.connected_peers() == []


@pytest.mark.asyncio
async def test_invalid_replayed_handshake_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, LOGGER)
    host = make_host("a")
    async with host.running():
        original = await ScriptedPeer.connect(host.listen_port, KEYS["m"], CHAIN, A)
        message_1, _, message_3 = original.handshake_messages
        await original.close()
        reader, writer = await open_stream(host.listen_port)
        write_handshake_message(writer, message_1)
        await read_handshake_message(reader)  # a fresh message 2
        write_handshake_message(writer, message_3)
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed, no confirmation
        writer.close()
        await writer.wait_closed()
    assert "BadHandshakeSignature" in caplog.text


@pytest.mark.asyncio
async def test_invalid_garbage_before_handshake_is_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, LOGGER)
    host = make_host("a")
    async with host.running():
        reader, writer = await open_stream(host.listen_port)
        writer.write(b"\x00\x10GET / HTTP/1.1\r\n")
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        await writer.wait_closed()
        assert host.stats.handshakes_refused == 1
    assert "MalformedHandshake" in caplog.text


# --- hostile authenticated peers ----------------------------------------------------------------


@pytest.mark.asyncio
async def test_invalid_tampered_ciphertext_closes_only_that_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    async with linked_pair() as (a, a_recorder, b, b_recorder):
        peer = await ScriptedPeer.connect(a.listen_port, KEYS["m"], CHAIN, A)
        record = bytearray(peer.seal(consensus_frame(b"transfer 10", FAST.max_frame_size)))
        record[-20] ^= 0x01
        peer.send_raw(bytes(record))
        await asyncio.wait_for(peer.wait_closed_by_host(), 5)
        await a_recorder.wait_until(lambda: any(k == M for k, _ in a_recorder.disconnected), "M")
        assert b"transfer 10" not in a_recorder.consensus_payloads()
        assert a.connected_peers() == [B]
        await assert_link_works(a, a_recorder, b, b_recorder)
        await peer.close()
    assert "record 0 (" in caplog.text
    assert "failed authentication" in caplog.text


BAD_FRAMES = {
    "oversized": (FAST.max_frame_size + 1).to_bytes(4, "big") + b"x" * 16,
    "truncated": (100).to_bytes(4, "big") + b"\x92\x02\xc4\x60" + b"x" * 10,
    "garbage": frame(b"\xc1\xff\xfe garbage"),
    "deeply nested": frame(b"\x91" * 10_000 + b"\x00"),
    "unknown type": frame(msgpack.packb([42, b"future message"])),
}


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", BAD_FRAMES)
async def test_invalid_frame_is_rejected_counted_and_harms_no_one(kind: str) -> None:
    async with linked_pair() as (a, a_recorder, b, b_recorder):
        peer = await ScriptedPeer.connect(a.listen_port, KEYS["m"], CHAIN, A)
        peer.send_frames(BAD_FRAMES[kind])
        peer.send_messages(ConsensusMessage(b"after"))
        await a_recorder.wait_until(lambda: b"after" in a_recorder.consensus_payloads(M), "after")
        rejected, score = scripted_info(a, M)
        assert rejected == 1
        assert score < 0
        assert sorted(a.connected_peers()) == sorted([B, M])
        await assert_link_works(a, a_recorder, b, b_recorder)
        await peer.close()


@pytest.mark.asyncio
async def test_invalid_misbehaving_peer_is_disconnected_and_banned(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, LOGGER)
    async with linked_pair() as (a, a_recorder, b, b_recorder):
        peer = await ScriptedPeer.connect(a.listen_port, KEYS["m"], CHAIN, A)
        peer.send_frames(*[BAD_FRAMES["garbage"]] * 10)
        await asyncio.wait_for(peer.wait_closed_by_host(), 5)
        await peer.close()
        with pytest.raises(HandshakeAborted):
            await ScriptedPeer.connect(a.listen_port, KEYS["m"], CHAIN, A)
        assert a.stats.peers_dropped == 1
        await assert_link_works(a, a_recorder, b, b_recorder)
    assert "reached the threshold -100" in caplog.text
    assert "PeerBanned" in caplog.text


@pytest.mark.asyncio
async def test_invalid_oversized_record_closes_connection(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    host = make_host("a")
    async with host.running():
        peer = await ScriptedPeer.connect(host.listen_port, KEYS["m"], CHAIN, A)
        peer.send_raw((1 << 31).to_bytes(4, "big"))
        await asyncio.wait_for(peer.wait_closed_by_host(), 5)
        await peer.close()
    assert "record announces 2147483648 bytes" in caplog.text


@pytest.mark.asyncio
async def test_invalid_truncated_record_closes_connection(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    recorder = Recorder()
    host = make_host("a", recorder)
    async with host.running():
        peer = await ScriptedPeer.connect(host.listen_port, KEYS["m"], CHAIN, A)
        record = peer.seal(consensus_frame(b"x" * 100, FAST.max_frame_size))
        peer.send_raw(record[:50])
        peer.writer.write_eof()
        await recorder.wait_until(lambda: bool(recorder.disconnected), "M dropped")
        await peer.close()
    assert (
        f"stream ended 46 bytes into a record of {len(record) - 4}" in recorder.disconnected[0][1]
    )


@pytest.mark.asyncio
async def test_invalid_payload_reported_by_handler_penalises_sender() -> None:
    recorder = Recorder()
    record = recorder.handlers().on_consensus

    def judge(peer: PublicKey, payload: bytes) -> None:
        if payload == b"bad":
            raise InvalidPayload("consensus message with a bad signature")
        record(peer, payload)

    async with linked_pair(a_handlers=Handlers(on_consensus=judge)) as (a, _, b, _):
        b.send_consensus(A, b"bad")
        b.send_consensus(A, b"bad")
        b.send_consensus(A, b"good")
        await recorder.wait_until(lambda: recorder.consensus_payloads() == [b"good"], "good")
        rejected, score = scripted_info(a, B)
        assert rejected == 2
        assert score == pytest.approx(-40, abs=1)
        a.penalize(B, "invalid block in a catch-up response")
        assert scripted_info(a, B)[0] == 3


@pytest.mark.asyncio
async def test_handler_bug_closes_only_that_connection_and_it_recovers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, LOGGER)
    recorder = Recorder()
    record_consensus = recorder.handlers().on_consensus

    def buggy(peer: PublicKey, payload: bytes) -> None:
        if payload == b"boom":
            raise KeyError("a bug in the node")
        record_consensus(peer, payload)

    handlers = Handlers(
        on_consensus=buggy,
        on_peer_connected=recorder.handlers().on_peer_connected,
        on_peer_disconnected=recorder.handlers().on_peer_disconnected,
    )
    async with linked_pair(a_handlers=handlers) as (_, _, b, _):
        b.send_consensus(A, b"boom")
        await recorder.wait_until(lambda: len(recorder.connected) == 2, "B to reconnect")
        await asyncio.wait_for(b.wait_for_peer(A), 5)
        b.send_consensus(A, b"fine")
        await recorder.wait_until(lambda: recorder.consensus_payloads() == [b"fine"], "fine")
    assert "p2p connection to sec1" in caplog.text
    assert "KeyError: 'a bug in the node'" in caplog.text


@pytest.mark.asyncio
async def test_peer_event_handler_bug_closes_the_connection_not_the_host(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, LOGGER)
    recorder = Recorder()
    record_connected = recorder.handlers().on_peer_connected

    def buggy_connected(peer: PublicKey) -> None:
        record_connected(peer)
        if len(recorder.connected) == 1:
            raise RuntimeError("node not ready")

    handlers = Handlers(
        on_consensus=recorder.handlers().on_consensus, on_peer_connected=buggy_connected
    )
    async with linked_pair(a_handlers=handlers) as (_, _, b, _):
        await recorder.wait_until(lambda: len(recorder.connected) == 2, "B to reconnect")
        await asyncio.wait_for(b.wait_for_peer(A), 5)
        b.send_consensus(A, b"works")
        await recorder.wait_until(lambda: recorder.consensus_payloads() == [b"works"], "works")
    assert "RuntimeError: node not ready" in caplog.text


# --- liveness -----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_invalid_silent_peer_is_dropped_as_dead() -> None:
    recorder = Recorder()
    host = make_host("a", recorder, tuning=Tuning(keepalive_interval=0.05, idle_timeout=0.3))
    async with host.running():
        peer = await ScriptedPeer.connect(host.listen_port, KEYS["m"], CHAIN, A)
        await asyncio.wait_for(peer.wait_closed_by_host(), 5)
        await peer.close()
    assert recorder.disconnected[0][0] == M
    assert "nothing received from sec1" in recorder.disconnected[0][1]


@pytest.mark.asyncio
async def test_keepalives_hold_a_quiet_connection_open() -> None:
    tuning = Tuning(keepalive_interval=0.05, idle_timeout=0.2)
    async with linked_pair(tuning) as (a, a_recorder, b, b_recorder):

        def keepalives_seen() -> bool:
            return all(info.frames_received >= 8 for info in [*a.peers(), *b.peers()])

        async with asyncio.timeout(5):
            while not keepalives_seen():  # noqa: ASYNC110 - keepalives fire no callback to await
                await asyncio.sleep(0.05)
        assert a_recorder.disconnected == [] and b_recorder.disconnected == []
        assert a.connected_peers() == [B]


@pytest.mark.asyncio
async def test_restarted_peer_is_reconnected() -> None:
    a_recorder, b_recorder = Recorder(), Recorder()
    first_b = make_host("b")
    first_run = asyncio.create_task(first_b.run())
    try:
        await first_b.wait_listening()
        port = first_b.listen_port
        a = make_host("a", a_recorder, peers=(address_of_host(first_b),))
        async with a.running():
            await a_recorder.wait_until(lambda: a_recorder.connected == [B], "first connection")
            first_b.stop()
            await first_run
            await a_recorder.wait_until(lambda: len(a_recorder.disconnected) == 1, "B down")
            async with make_host("b", b_recorder, port=port).running():
                await a_recorder.wait_until(lambda: len(a_recorder.connected) == 2, "redial")
                a.send_consensus(B, b"after restart")
                await b_recorder.wait_until(
                    lambda: b_recorder.consensus_payloads() == [b"after restart"], "delivery"
                )
    finally:
        first_b.stop()
        await first_run
    assert "said goodbye: host stopping" in a_recorder.disconnected[0][1]


@pytest.mark.asyncio
async def test_simultaneous_dials_settle_on_one_connection() -> None:
    a_recorder, b_recorder = Recorder(), Recorder()
    probe = make_host("a")  # find a free port for A, so B can be configured to dial it
    async with probe.running():
        a_address = address_of_host(probe)
    b = make_host("b", b_recorder, peers=(a_address,))
    async with b.running():
        a = make_host("a", a_recorder, peers=(address_of_host(b),), port=a_address.port)
        async with a.running():

            def settled() -> bool:
                a_peers, b_peers = a.peers(), b.peers()
                return (
                    len(a_peers) == 1
                    and len(b_peers) == 1
                    and a_peers[0].outbound != b_peers[0].outbound
                )

            async with asyncio.timeout(5):
                while not settled():  # noqa: ASYNC110 - a replacement fires no callback to await
                    await asyncio.sleep(0.01)
            await assert_link_works(a, a_recorder, b, b_recorder)
            assert a_recorder.connected == [B] and b_recorder.connected == [A]
            assert a_recorder.disconnected == [] and b_recorder.disconnected == []


@pytest.mark.asyncio
async def test_rate_limit_pauses_reading_instead_of_dropping() -> None:
    recorder = Recorder()
    tuning = Tuning(rate_messages_per_second=20.0, rate_message_burst=5.0)
    host = make_host("a", recorder, tuning=tuning)
    async with host.running():
        peer = await ScriptedPeer.connect(host.listen_port, KEYS["m"], CHAIN, A)
        peer.send_messages(*(ConsensusMessage(bytes([i])) for i in range(10)))
        peer.send_messages(ConsensusMessage(b"after"))
        await recorder.wait_until(lambda: len(recorder.consensus) == 11, "all 11 messages")
        await peer.close()
    first, last = recorder.consensus[0], recorder.consensus[-1]
    assert last.payload == b"after"
    assert last.time - first.time >= (10 - 5) / 20 * 0.9  # 5 over the burst at 20/s
    assert host.stats.peers_dropped == 0
