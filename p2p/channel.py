"""The asyncio shell around the handshake and the record cipher: a `SecureChannel` per socket.

`dial` and `accept` run the sans-io handshake (p2p/handshake.py) over a TCP stream and return a
channel that reads and writes encrypted records (p2p/cipher.py). Nothing here knows about
messages, queues or peers' scores; that is p2p/peer.py.

Wire layout before the records: each handshake message is `u16 big-endian length || body`,
at most `MAX_HANDSHAKE_MESSAGE` bytes. After message 3 the responder sends record 0 carrying a
single keepalive frame - the *confirmation*. `dial` returns only once the confirmation
decrypts, so the initiator knows that the responder derived the same keys and accepted it (a
refused initiator sees the connection close instead, never a half-open "connected" state).

Invariants: the whole handshake, confirmation included, runs under `handshake_timeout`, and an
inbound connection must deliver message 1 within `first_message_timeout` (a silent socket is
closed after that, not after the whole handshake deadline); a channel is only ever built from
a completed handshake; any failure closes the socket.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Container
from typing import Final

from ledger.keys import PublicKey
from p2p.cipher import RECORD_HEADER_SIZE, RecordOpener, RecordSealer
from p2p.config import PeerAddress, Tuning
from p2p.errors import (
    FrameError,
    HandshakeAborted,
    HandshakeTimeout,
    MalformedHandshake,
    RemoteClosed,
    RemoteProtocolError,
    TruncatedRecord,
)
from p2p.frames import Keepalive, decode_message, encode_frame, split_frames
from p2p.handshake import (
    MAX_HANDSHAKE_MESSAGE,
    InitiatorHandshake,
    NodeIdentity,
    ResponderHandshake,
    SessionKeys,
)

_HANDSHAKE_HEADER: Final = 2
STREAM_LIMIT: Final = 256 * 1024
"""asyncio stream buffer limit: reading pauses when more than twice this is buffered unread."""


class SecureChannel:
    """One authenticated, encrypted TCP connection: whole records in, whole records out."""

    __slots__ = (
        "_high_water",
        "_opener",
        "_reader",
        "_sealer",
        "_writer",
        "bytes_received",
        "bytes_sent",
        "keys",
        "outbound",
        "remote_address",
    )

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        keys: SessionKeys,
        tuning: Tuning,
        *,
        outbound: bool,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._sealer = RecordSealer(keys.send_key)
        self._opener = RecordOpener(keys.receive_key, tuning.max_record_plaintext)
        self.keys = keys
        """The session's keys; `keys.remote_key` is the peer's proven node key."""
        self.outbound = outbound
        """True if we dialled this connection."""
        self.remote_address = _peer_name(writer)
        """`host:port` of the other end, for logs."""
        self._high_water = writer.transport.get_write_buffer_limits()[1]
        self.bytes_received = 0
        """Record bytes read (headers and ciphertext), for per-peer traffic metrics."""
        self.bytes_sent = 0
        """Record bytes handed to the transport."""

    @property
    def remote_key(self) -> PublicKey:
        return self.keys.remote_key

    async def read_record(self) -> bytes:
        """The next record's plaintext. Raises RemoteClosed at a clean end of stream,
        TruncatedRecord mid-record, RecordTooLarge or TamperedRecord (all fatal)."""
        try:
            header = await self._reader.readexactly(RECORD_HEADER_SIZE)
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise TruncatedRecord(
                    f"stream ended {len(exc.partial)} bytes into a record header"
                ) from None
            raise RemoteClosed("peer closed the connection") from None
        length = self._opener.read_header(header)
        try:
            ciphertext = await self._reader.readexactly(length)
        except asyncio.IncompleteReadError as exc:
            raise TruncatedRecord(
                f"stream ended {len(exc.partial)} bytes into a record of {length}"
            ) from None
        self.bytes_received += RECORD_HEADER_SIZE + length
        return self._opener.open(header, ciphertext)

    def write_record(self, plaintext: bytes) -> None:
        """Seal `plaintext` as the next record and hand it to the transport (no waiting)."""
        record = self._sealer.seal(plaintext)
        self.bytes_sent += len(record)
        self._writer.write(record)

    def write_buffer_size(self) -> int:
        """Bytes handed to the transport that the kernel has not yet accepted."""
        return self._writer.transport.get_write_buffer_size()

    def needs_drain(self) -> bool:
        """True when the transport's buffer is above its high-water mark (`drain` would wait)."""
        return self._writer.transport.get_write_buffer_size() > self._high_water

    async def drain(self) -> None:
        """Wait until the transport's buffer is below its high-water mark."""
        await self._writer.drain()

    def close(self) -> None:
        """Close after flushing what is buffered (a clean close)."""
        self._writer.close()

    def abort(self) -> None:
        """Close at once, discarding anything buffered (for stalled or hostile peers)."""
        self._writer.transport.abort()

    async def wait_closed(self) -> None:
        """Wait for the socket to close; errors while closing do not matter any more."""
        try:
            await self._writer.wait_closed()
        except OSError:
            return


async def dial(
    peer: PeerAddress,
    identity: NodeIdentity,
    chain_id: str,
    allowed: Container[PublicKey],
    tuning: Tuning,
) -> SecureChannel:
    """Connect to `peer` and authenticate it as `peer.public_key`; raise OSError, TimeoutError
    (connect) or HandshakeError."""
    async with asyncio.timeout(tuning.dial_timeout):
        reader, writer = await asyncio.open_connection(peer.host, peer.port, limit=STREAM_LIMIT)
    try:
        async with asyncio.timeout(tuning.handshake_timeout):
            handshake = InitiatorHandshake(identity, chain_id, allowed, peer.public_key)
            write_handshake_message(writer, handshake.first_message())
            message_3, keys = handshake.finish(await read_handshake_message(reader))
            write_handshake_message(writer, message_3)
            channel = SecureChannel(reader, writer, keys, tuning, outbound=True)
            await _read_confirmation(channel, tuning)
    except TimeoutError:
        writer.transport.abort()
        raise HandshakeTimeout(
            f"handshake with {peer.host}:{peer.port} took over {tuning.handshake_timeout} s"
        ) from None
    except BaseException:
        writer.transport.abort()
        raise
    return channel


async def accept(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    identity: NodeIdentity,
    chain_id: str,
    allowed: Container[PublicKey],
    tuning: Tuning,
    on_first_message: Callable[[], None] | None = None,
) -> SecureChannel:
    """Authenticate an inbound connection; raise HandshakeError. The caller decides whether to
    keep the peer and then calls `confirm` (or closes the channel). `on_first_message` is
    called once handshake message 1 has arrived (admission prefers evicting silent sockets)."""
    first_deadline = min(tuning.first_message_timeout, tuning.handshake_timeout)
    message_1: bytes | None = None
    try:
        async with asyncio.timeout(tuning.handshake_timeout):
            handshake = ResponderHandshake(identity, chain_id, allowed)
            async with asyncio.timeout(first_deadline):
                message_1 = await read_handshake_message(reader)
            if on_first_message is not None:
                on_first_message()
            write_handshake_message(writer, handshake.respond(message_1))
            keys = handshake.finish(await read_handshake_message(reader))
    except TimeoutError:
        writer.transport.abort()
        if message_1 is None:
            raise HandshakeTimeout(
                f"{_peer_name(writer)} sent no handshake message 1 within {first_deadline} s"
            ) from None
        raise HandshakeTimeout(
            f"handshake from {_peer_name(writer)} took over {tuning.handshake_timeout} s"
        ) from None
    except BaseException:
        writer.transport.abort()
        raise
    return SecureChannel(reader, writer, keys, tuning, outbound=False)


def confirm(channel: SecureChannel, tuning: Tuning) -> None:
    """Send the confirmation record (record 0) that completes an accepted handshake."""
    channel.write_record(encode_frame(Keepalive(), tuning.max_frame_size))


async def _read_confirmation(channel: SecureChannel, tuning: Tuning) -> None:
    try:
        plaintext = await channel.read_record()
    except RemoteClosed:
        raise HandshakeAborted(
            f"{channel.remote_address} closed the connection instead of confirming (refused us?)"
        ) from None
    except RemoteProtocolError as exc:
        raise MalformedHandshake(f"confirmation record is invalid: {exc}") from None
    try:
        bodies = split_frames(plaintext, tuning.max_frame_size)
        messages = [decode_message(body, tuning.max_frame_size) for body in bodies]
    except FrameError as exc:
        raise MalformedHandshake(f"confirmation record is malformed: {exc}") from None
    if messages != [Keepalive()]:
        raise MalformedHandshake(f"confirmation record must be one keepalive, got {messages}")


def write_handshake_message(writer: asyncio.StreamWriter, message: bytes) -> None:
    """Frame and write one handshake message (`u16 length || message`)."""
    writer.write(len(message).to_bytes(_HANDSHAKE_HEADER, "big") + message)


async def read_handshake_message(reader: asyncio.StreamReader) -> bytes:
    """Read one framed handshake message; raise MalformedHandshake or HandshakeAborted."""
    try:
        header = await reader.readexactly(_HANDSHAKE_HEADER)
        length = int.from_bytes(header, "big")
        if length > MAX_HANDSHAKE_MESSAGE:
            raise MalformedHandshake(
                f"handshake message announces {length} bytes, cap is {MAX_HANDSHAKE_MESSAGE}"
            )
        return await reader.readexactly(length)
    except asyncio.IncompleteReadError as exc:
        raise HandshakeAborted(
            f"connection closed during the handshake after {len(exc.partial)} bytes"
        ) from None
    except ConnectionError as exc:
        raise HandshakeAborted(f"connection failed during the handshake: {exc}") from None


def _peer_name(writer: asyncio.StreamWriter) -> str:
    name = writer.get_extra_info("peername")
    if isinstance(name, tuple) and len(name) >= 2:
        return f"{name[0]}:{name[1]}"
    return str(name)
