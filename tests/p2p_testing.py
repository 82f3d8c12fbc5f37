"""Test tools: a `Recorder` of what a host delivers, and a `ScriptedPeer` under a test's control.

The scripted peer speaks the real protocol but sends whatever the test says. It completes a
genuine handshake (so the host under test treats it as an authenticated peer), then writes chosen
records - valid, malformed, tampered, oversized - or raw bytes, reads what the host sends, and can
stop reading to play a stalled peer. It keeps the three handshake messages so tests can replay
them. Used by tests/test_p2p_*.py and available to the node's own tests; the host never uses it.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

from ledger.keys import PublicKey
from p2p.channel import STREAM_LIMIT, read_handshake_message, write_handshake_message
from p2p.cipher import RECORD_HEADER_SIZE, RecordOpener, RecordSealer
from p2p.config import FRAME_HEADER_SIZE, Tuning
from p2p.errors import HandshakeAborted, MalformedHandshake, RemoteClosed, TruncatedRecord
from p2p.frames import Keepalive, Message, decode_message, encode_frame, split_frames
from p2p.handlers import Handlers
from p2p.handshake import InitiatorHandshake, NodeIdentity

_DEFAULT_TUNING: Final = Tuning()
WAIT_SECONDS: Final = 5.0
"""How long `Recorder.wait_until` waits before failing: generous, as it is only hit on failure."""


class _AnyKey:
    """An allowlist that admits every key: a scripted peer talks to whoever it dialled."""

    def __contains__(self, key: object) -> bool:
        return True


def frame(body: bytes) -> bytes:
    """`body` with a frame length header, whatever it contains (for crafting bad frames)."""
    return len(body).to_bytes(FRAME_HEADER_SIZE, "big") + body


async def open_stream(
    port: int, host: str = "127.0.0.1", receive_buffer: int | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A plain TCP stream, optionally with a small receive buffer (so stalling bites sooner)."""
    if receive_buffer is None:
        return await asyncio.open_connection(host, port, limit=STREAM_LIMIT)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
    except BaseException:
        sock.close()
        raise
    return await asyncio.open_connection(sock=sock, limit=STREAM_LIMIT)


class ScriptedPeer:
    """An authenticated connection driven by a test; see the module docstring."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        send_key: bytes,
        receive_key: bytes,
        handshake_messages: tuple[bytes, bytes, bytes],
        tuning: Tuning,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.handshake_messages = handshake_messages
        """Messages 1, 2 and 3 of the handshake, as sent on the wire (without u16 headers)."""
        self._tuning = tuning
        self._sealer = RecordSealer(send_key)
        self._opener = RecordOpener(receive_key, tuning.max_record_plaintext)

    @classmethod
    async def connect(
        cls,
        port: int,
        identity: NodeIdentity,
        chain_id: str,
        expected: PublicKey | None = None,
        *,
        host: str = "127.0.0.1",
        tuning: Tuning = _DEFAULT_TUNING,
        receive_buffer: int | None = None,
    ) -> ScriptedPeer:
        """Dial a host and complete the handshake including its confirmation record."""
        reader, writer = await open_stream(port, host, receive_buffer)
        try:
            handshake = InitiatorHandshake(identity, chain_id, _AnyKey(), expected)
            message_1 = handshake.first_message()
            write_handshake_message(writer, message_1)
            message_2 = await read_handshake_message(reader)
            message_3, keys = handshake.finish(message_2)
            write_handshake_message(writer, message_3)
            peer = cls(
                reader,
                writer,
                keys.send_key,
                keys.receive_key,
                (message_1, message_2, message_3),
                tuning,
            )
            try:
                confirmation = await peer.receive_messages()
            except RemoteClosed as exc:
                raise HandshakeAborted(f"host closed instead of confirming: {exc}") from None
            if confirmation != [Keepalive()]:
                raise MalformedHandshake(f"expected a keepalive confirmation, got {confirmation}")
        except BaseException:
            writer.transport.abort()
            raise
        return peer

    def seal(self, plaintext: bytes) -> bytes:
        """`plaintext` as the next record, not yet written (tests may tamper with it first)."""
        return bytes(self._sealer.seal(plaintext))

    def send_record(self, plaintext: bytes) -> None:
        """Seal and write one record with any plaintext."""
        self.writer.write(self._sealer.seal(plaintext))

    def send_frames(self, *frames: bytes) -> None:
        """Write framed bodies (see `frame`) in one record."""
        self.send_record(b"".join(frames))

    def send_messages(self, *messages: Message) -> None:
        """Write well-formed messages in one record."""
        self.send_frames(*(encode_frame(m, self._tuning.max_frame_size) for m in messages))

    def send_raw(self, data: bytes) -> None:
        """Write bytes as they are, outside any record."""
        self.writer.write(data)

    async def receive_messages(self) -> list[Message]:
        """The messages of the next record from the host; RemoteClosed when it closes."""
        try:
            header = await self.reader.readexactly(RECORD_HEADER_SIZE)
            ciphertext = await self.reader.readexactly(self._opener.read_header(header))
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise TruncatedRecord(
                    f"host closed mid-record ({len(exc.partial)} bytes)"
                ) from None
            raise RemoteClosed("host closed the connection") from None
        except ConnectionError as exc:
            raise RemoteClosed(f"host reset the connection: {exc}") from None
        plaintext = self._opener.open(header, ciphertext)
        max_frame = self._tuning.max_frame_size
        return [decode_message(body, max_frame) for body in split_frames(plaintext, max_frame)]

    async def wait_closed_by_host(self) -> None:
        """Read and discard until the host closes the connection."""
        while True:
            try:
                data = await self.reader.read(65536)
            except ConnectionError:
                return
            if not data:
                return

    def stop_reading(self) -> None:
        """Stop reading from the socket: the host's writes back up as for a stalled peer."""
        transport = self.writer.transport
        if not isinstance(transport, asyncio.ReadTransport):
            raise TypeError(f"cannot pause reading on {type(transport).__name__}")
        transport.pause_reading()

    async def close(self) -> None:
        """Abort the connection and wait until the socket is closed."""
        self.writer.transport.abort()
        try:
            await self.writer.wait_closed()
        except OSError:
            return


@dataclass(frozen=True, slots=True)
class Delivery:
    """One payload handed to a recorder, with the loop time it arrived."""

    peer: PublicKey
    payload: bytes
    time: float


@dataclass(slots=True)
class Recorder:
    """Handlers for a host under test that record every callback and let tests wait on them."""

    relay: bool = True
    """What `on_transaction` returns."""
    transactions: list[Delivery] = field(default_factory=list)
    consensus: list[Delivery] = field(default_factory=list)
    connected: list[PublicKey] = field(default_factory=list)
    disconnected: list[tuple[PublicKey, str]] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def handlers(
        self, on_request: Callable[[PublicKey, bytes], Awaitable[bytes]] | None = None
    ) -> Handlers:
        """Handlers that record into this object (and serve requests with `on_request`)."""
        base = Handlers(
            on_transaction=self._on_transaction,
            on_consensus=self._on_consensus,
            on_peer_connected=self._on_connected,
            on_peer_disconnected=self._on_disconnected,
        )
        if on_request is None:
            return base
        return Handlers(
            base.on_transaction,
            base.on_consensus,
            on_request,
            base.on_peer_connected,
            base.on_peer_disconnected,
        )

    def consensus_payloads(self, peer: PublicKey | None = None) -> list[bytes]:
        return [d.payload for d in self.consensus if peer is None or d.peer == peer]

    def transaction_payloads(self) -> list[bytes]:
        return [d.payload for d in self.transactions]

    async def wait_until(self, condition: Callable[[], bool], what: str) -> None:
        """Wait until `condition()` holds after some callback; after `WAIT_SECONDS`, raise
        TimeoutError naming `what`."""
        timeout = WAIT_SECONDS
        try:
            async with asyncio.timeout(timeout):
                while not condition():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}") from None

    def _record(self) -> None:
        self._changed.set()

    def _on_transaction(self, peer: PublicKey, transaction: bytes) -> bool:
        self.transactions.append(Delivery(peer, transaction, asyncio.get_running_loop().time()))
        self._record()
        return self.relay

    def _on_consensus(self, peer: PublicKey, payload: bytes) -> None:
        self.consensus.append(Delivery(peer, payload, asyncio.get_running_loop().time()))
        self._record()

    def _on_connected(self, peer: PublicKey) -> None:
        self.connected.append(peer)
        self._record()

    def _on_disconnected(self, peer: PublicKey, reason: str) -> None:
        self.disconnected.append((peer, reason))
        self._record()
