"""A peer that stops reading is dropped; it never slows delivery to the others.

Measured by delivery counts, not timing: the honest peer receives every message, the stalled one
is disconnected, and the sender never waits on it (sends are synchronous; `wait_sent` on the
honest peer keeps returning)."""

from __future__ import annotations

import asyncio

import pytest

from ledger.keys import PrivateKey
from p2p import P2PConfig, P2PHost, PeerAddress, Tuning, allowlist
from tests.p2p_testing import Recorder, ScriptedPeer

CHAIN = "sec-stall-test"
SENDER, HONEST, STALLED = (PrivateKey.from_label(f"stall-{n}") for n in ("a", "b", "s"))
ALLOWED = allowlist(key.public_key for key in (SENDER, HONEST, STALLED))
KIB = 1024


async def broadcast_past_a_stalled_peer(tuning: Tuning, count: int, size: int) -> Recorder:
    """Send `count` payloads of `size` bytes to an honest host and a stalled scripted peer;
    return the sender's recorder once the honest host has every payload."""
    sender_recorder, honest_recorder = Recorder(), Recorder()
    sender = P2PHost(P2PConfig(CHAIN, ALLOWED, tuning=tuning), SENDER, sender_recorder.handlers())
    async with sender.running():
        address = PeerAddress(SENDER.public_key, "127.0.0.1", sender.listen_port)
        honest_config = P2PConfig(CHAIN, ALLOWED, peers=(address,), tuning=tuning)
        honest = P2PHost(honest_config, HONEST, honest_recorder.handlers())
        async with honest.running():
            await asyncio.wait_for(sender.wait_for_peer(HONEST.public_key), 5)
            stalled = await ScriptedPeer.connect(
                sender.listen_port, STALLED, CHAIN, SENDER.public_key, receive_buffer=16 * KIB
            )
            await asyncio.wait_for(sender.wait_for_peer(STALLED.public_key), 5)
            stalled.stop_reading()
            for index in range(count):
                payload = index.to_bytes(4, "big") + bytes(size - 4)
                assert sender.broadcast_consensus(payload) >= 1
                if index % 8 == 7:
                    await asyncio.wait_for(sender.wait_sent(HONEST.public_key), 5)
            await honest_recorder.wait_until(
                lambda: len(honest_recorder.consensus) == count, f"all {count} payloads"
            )
            await sender_recorder.wait_until(
                lambda: any(peer == STALLED.public_key for peer, _ in sender_recorder.disconnected),
                "the stalled peer to be dropped",
            )
            assert sender.connected_peers() == [HONEST.public_key]
            assert sender.stats.peers_dropped == 1
            await stalled.close()
    received = [int.from_bytes(p[:4], "big") for p in honest_recorder.consensus_payloads()]
    assert received == list(range(count))
    return sender_recorder


@pytest.mark.asyncio
async def test_invalid_stalled_peer_overflowing_its_queue_is_dropped() -> None:
    tuning = Tuning(
        max_frame_size=256 * KIB,
        record_target_bytes=64 * KIB,
        send_queue_max_bytes=2 * 1024 * KIB,
        write_timeout=30.0,
    )
    recorder = await broadcast_past_a_stalled_peer(tuning, count=400, size=64 * KIB)
    reason = next(r for peer, r in recorder.disconnected if peer == STALLED.public_key)
    assert "send queue to sec1" in reason
    assert "caps 10000 frames and 2097152 bytes" in reason


@pytest.mark.asyncio
async def test_invalid_stalled_peer_blocking_its_socket_is_dropped() -> None:
    tuning = Tuning(
        max_frame_size=256 * KIB,
        record_target_bytes=256 * KIB,
        send_queue_max_bytes=512 * 1024 * KIB,
        write_timeout=0.3,
    )
    recorder = await broadcast_past_a_stalled_peer(tuning, count=64, size=200 * KIB)
    reason = next(r for peer, r in recorder.disconnected if peer == STALLED.public_key)
    assert "accepted nothing for 0.3 s" in reason
