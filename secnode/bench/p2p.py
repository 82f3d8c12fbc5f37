"""`sec bench p2p`: throughput between two local peers, encrypted vs a plain-stream baseline.

Both measurements run in this process, on one event loop, over 127.0.0.1, one after the other,
with the same payloads and the same pacing, so the ratio compares like with like:

* **p2p**: two `P2PHost`s (handshake done before timing). The sender calls `send_consensus` for
  a batch, then `wait_sent`; the receiver's `on_consensus` counts payloads. Timed from the
  first send until the last payload reached the handler - encryption, framing, strict decoding
  and dispatch included.
* **plain**: an asyncio stream pair carrying `u32 length || payload` frames, no encryption and no
  decoding. The sender writes a batch and awaits `drain()`; the receiver reads each frame with
  `readexactly` (header, then body) and counts it.

MB/s counts payload bytes only.
Run: `python -m secnode.bench.p2p [--small-count N] [--large-count N]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from dataclasses import asdict, dataclass

from ledger.keys import PrivateKey, PublicKey
from p2p.config import MiB, P2PConfig, PeerAddress, Tuning, allowlist
from p2p.handlers import Handlers
from p2p.host import P2PHost

_SMALL = 200
_LARGE = 64 * 1024
_BATCH_BYTES = 1 * MiB
"""Each batch queues about this many payload bytes before waiting for the socket."""


@dataclass(frozen=True, slots=True)
class Measurement:
    """One timed transfer."""

    transport: str
    """"p2p" (encrypted) or "plain" (baseline)."""
    payload_size: int
    """Bytes per payload."""
    count: int
    """Payloads delivered."""
    seconds: float
    """Wall time from first send to last delivery."""

    @property
    def frames_per_second(self) -> float:
        return self.count / self.seconds

    @property
    def megabytes_per_second(self) -> float:
        return self.count * self.payload_size / self.seconds / 1e6


def _bench_tuning() -> Tuning:
    """Defaults, with rate limits and queue caps out of the way of a deliberate flood."""
    return Tuning(
        rate_messages_per_second=1e9,
        rate_message_burst=1e9,
        rate_bytes_per_second=1e12,
        rate_byte_burst=1e12,
        send_queue_max_messages=1_000_000,
        send_queue_max_bytes=256 * MiB,
    )


def _batch_size(payload_size: int) -> int:
    return max(1, _BATCH_BYTES // payload_size)


async def measure_p2p(payload_size: int, count: int) -> Measurement:
    """Time `count` payloads of `payload_size` bytes through two connected P2PHosts."""
    sender_key, receiver_key = PrivateKey.generate(), PrivateKey.generate()
    allowed = allowlist([sender_key.public_key, receiver_key.public_key])
    tuning = _bench_tuning()
    done = asyncio.Event()
    received = 0

    def on_consensus(peer: PublicKey, payload: bytes) -> None:
        nonlocal received
        received += 1
        if received == count:
            done.set()

    receiver = P2PHost(
        P2PConfig("bench", allowed, tuning=tuning),
        receiver_key,
        Handlers(on_consensus=on_consensus),
    )
    async with receiver.running():
        peer = PeerAddress(receiver_key.public_key, "127.0.0.1", receiver.listen_port)
        sender = P2PHost(P2PConfig("bench", allowed, peers=(peer,), tuning=tuning), sender_key)
        async with sender.running():
            await sender.wait_for_peer(receiver_key.public_key)
            target = receiver_key.public_key
            payload = os.urandom(payload_size)
            batch = _batch_size(payload_size)
            started = time.perf_counter()
            sent = 0
            while sent < count:
                for _ in range(min(batch, count - sent)):
                    sender.send_consensus(target, payload)
                sent += min(batch, count - sent)
                await sender.wait_sent(target)
            await done.wait()
            seconds = time.perf_counter() - started
    return Measurement("p2p", payload_size, count, seconds)


async def measure_plain(payload_size: int, count: int) -> Measurement:
    """Time `count` length-prefixed payloads over a plain asyncio stream pair."""
    done = asyncio.Event()
    received = 0

    async def receive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal received
        while received < count:
            header = await reader.readexactly(4)
            await reader.readexactly(int.from_bytes(header, "big"))
            received += 1
        done.set()
        writer.close()

    server = await asyncio.start_server(receive, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    frame = payload_size.to_bytes(4, "big") + os.urandom(payload_size)
    batch = _batch_size(payload_size)
    started = time.perf_counter()
    sent = 0
    while sent < count:
        for _ in range(min(batch, count - sent)):
            writer.write(frame)
        sent += min(batch, count - sent)
        await writer.drain()
    await done.wait()
    seconds = time.perf_counter() - started
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()
    return Measurement("plain", payload_size, count, seconds)


async def _run(small_count: int, large_count: int, rounds: int) -> list[tuple[Measurement, ...]]:
    results: list[tuple[Measurement, ...]] = []
    for size, count in ((_SMALL, small_count), (_LARGE, large_count)):
        best: dict[str, Measurement] = {}
        for _ in range(rounds):
            for measurement in (
                await measure_plain(size, count),
                await measure_p2p(size, count),
            ):
                previous = best.get(measurement.transport)
                if previous is None or measurement.seconds < previous.seconds:
                    best[measurement.transport] = measurement
        results.append((best["plain"], best["p2p"]))
    return results


def main(argv: list[str] | None = None) -> int:
    """Print frames/s and MB/s for 200 B and 64 KiB payloads, p2p vs plain, and the ratio."""
    parser = argparse.ArgumentParser(
        prog="sec bench p2p",
        description="Frames/s and MB/s between two local peers, encrypted vs a plain stream.",
    )
    parser.add_argument("--small-count", type=int, default=200_000, help="200-byte payloads")
    parser.add_argument("--large-count", type=int, default=5_000, help="64 KiB payloads")
    parser.add_argument("--rounds", type=int, default=3, help="best of this many runs each")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if args.small_count <= 0 or args.large_count <= 0 or args.rounds <= 0:
        parser.error("counts and rounds must be positive")
    results = asyncio.run(_run(args.small_count, args.large_count, args.rounds))
    if args.json:
        rows = [
            {
                **asdict(measurement),
                "frames_per_second": measurement.frames_per_second,
                "megabytes_per_second": measurement.megabytes_per_second,
            }
            for pair in results
            for measurement in pair
        ]
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'payload':>9} {'transport':>9} {'frames/s':>12} {'MB/s':>9} {'vs plain':>9}")
    for plain, encrypted in results:
        for measurement in (plain, encrypted):
            ratio = measurement.frames_per_second / plain.frames_per_second
            print(
                f"{measurement.payload_size:>9} {measurement.transport:>9} "
                f"{measurement.frames_per_second:>12,.0f} {measurement.megabytes_per_second:>9.1f} "
                f"{ratio:>8.2f}x"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
