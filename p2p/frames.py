"""Messages, their frames, and the one strict decoder for frames from the wire.

A *frame* is `u32 big-endian length || body`, the body one msgpack array `[kind, field...]`
(see docs/p2p.md, "Messages"). Frames travel inside encrypted records (p2p/cipher.py); a record's
plaintext is one or more whole frames, so a frame never spans records.

Invariants:

* `decode_message` is the only way bytes from a peer become a `Message`. It accepts exactly the
  canonical encoding of a known shape: an array of the kind's arity, each field of its exact type
  (`bytes` payloads, `int` ids in [0, 2**64), short `str` reasons), nothing nested, no trailing
  bytes, nothing larger than the frame cap. Anything else raises a `FrameError` subclass naming
  what was wrong. Deeply nested input is rejected by the unpacker's limits before any recursion.
* `encode_frame(m)` produces bytes that `decode_message` maps back to `m`.
* Payloads are opaque bytes: p2p never interprets transactions, consensus messages or requests.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

import msgpack

from p2p.config import FRAME_HEADER_SIZE
from p2p.errors import (
    FrameTooLarge,
    MalformedFrame,
    MessageTooLarge,
    TruncatedFrame,
    UnknownMessageType,
)

MAX_REASON_LENGTH: Final = 512
"""Longest reason string (in characters) carried by a failure or goodbye message."""

MAX_REQUEST_ID: Final = 2**64 - 1

_MAX_FIELDS: Final = 3
# msgpack's own limit on arrays; every shape here has at most this many elements.
_MAX_ARRAY: Final = 1 + _MAX_FIELDS


class MessageKind(enum.IntEnum):
    """The first element of every frame body. Numbers are part of the wire format."""

    KEEPALIVE = 0
    TRANSACTION = 1
    CONSENSUS = 2
    REQUEST = 3
    RESPONSE = 4
    REQUEST_FAILED = 5
    GOODBYE = 6


@dataclass(frozen=True, slots=True)
class Keepalive:
    """Sent when the connection has been quiet; proves liveness. `[0]`"""


@dataclass(frozen=True, slots=True)
class TransactionGossip:
    """A transaction to gossip, deduplicated by the SHA-256 of its bytes. `[1, transaction]`"""

    transaction: bytes
    """The transaction's bytes, opaque to p2p."""


@dataclass(frozen=True, slots=True)
class ConsensusMessage:
    """A consensus message for the node's consensus handler; never relayed. `[2, payload]`"""

    payload: bytes
    """Opaque to p2p."""


@dataclass(frozen=True, slots=True)
class Request:
    """A catch-up request (blocks, certificates); answered once. `[3, request_id, payload]`"""

    request_id: int
    """Chosen by the requester, unique among its outstanding requests to this peer."""

    payload: bytes
    """Opaque to p2p."""


@dataclass(frozen=True, slots=True)
class Response:
    """The answer to `Request` with the same id. `[4, request_id, payload]`"""

    request_id: int
    """The id of the request answered."""

    payload: bytes
    """Opaque to p2p."""


@dataclass(frozen=True, slots=True)
class RequestFailure:
    """A request that could not be served, and why. `[5, request_id, reason]`"""

    request_id: int
    """The id of the request refused."""

    reason: str
    """Human-readable; at most `MAX_REASON_LENGTH` characters."""


@dataclass(frozen=True, slots=True)
class Goodbye:
    """Sent before closing on purpose, so the peer can log why. `[6, reason]`"""

    reason: str
    """Human-readable; at most `MAX_REASON_LENGTH` characters."""


Message = (
    Keepalive | TransactionGossip | ConsensusMessage | Request | Response | RequestFailure | Goodbye
)

_ARITY: Final[dict[int, int]] = {
    MessageKind.KEEPALIVE: 1,
    MessageKind.TRANSACTION: 2,
    MessageKind.CONSENSUS: 2,
    MessageKind.REQUEST: 3,
    MessageKind.RESPONSE: 3,
    MessageKind.REQUEST_FAILED: 3,
    MessageKind.GOODBYE: 2,
}

# A reusable packer: packing with it is ~3x cheaper than msgpack.packb, and the event loop is
# single-threaded, so sharing it is safe. msgpack always picks the shortest form (canonical).
_PACKER: Final = msgpack.Packer(use_bin_type=True)


def _pack(value: tuple[object, ...]) -> bytes:
    packed: bytes = _PACKER.pack(value)
    return packed


def encode_body(message: Message) -> bytes:
    """The canonical msgpack body of `message` (no length header)."""
    match message:
        case TransactionGossip(transaction):
            return _payload_body(_TRANSACTION_PREFIX, transaction)
        case ConsensusMessage(payload):
            return _payload_body(_CONSENSUS_PREFIX, payload)
        case Request(request_id, payload):
            return _pack((MessageKind.REQUEST.value, request_id, payload))
        case Response(request_id, payload):
            return _pack((MessageKind.RESPONSE.value, request_id, payload))
        case RequestFailure(request_id, reason):
            return _pack((MessageKind.REQUEST_FAILED.value, request_id, reason))
        case Goodbye(reason):
            return _pack((MessageKind.GOODBYE.value, reason))
        case Keepalive():
            return _pack((MessageKind.KEEPALIVE.value,))


def encode_frame(message: Message, max_frame_size: int) -> bytes:
    """`message` as a frame (length header + body); raise MessageTooLarge above the cap."""
    body = encode_body(message)
    if len(body) > max_frame_size:
        raise MessageTooLarge(
            f"{type(message).__name__} encodes to {len(body)} bytes, "
            f"above the frame cap of {max_frame_size}"
        )
    return len(body).to_bytes(FRAME_HEADER_SIZE, "big") + body


def transaction_frame(transaction: bytes, max_frame_size: int) -> bytes:
    """`encode_frame(TransactionGossip(transaction))` without building the message (hot path)."""
    return _payload_frame(_TRANSACTION_PREFIX, transaction, max_frame_size)


def consensus_frame(payload: bytes, max_frame_size: int) -> bytes:
    """`encode_frame(ConsensusMessage(payload))` without building the message (hot path)."""
    return _payload_frame(_CONSENSUS_PREFIX, payload, max_frame_size)


# `[kind, bin]` bodies are built by hand on the hot path: a fixarray(2), the fixint kind, the
# shortest bin header, the payload - exactly what msgpack produces, with one copy of the payload.
_TRANSACTION_PREFIX: Final = bytes((0x92, MessageKind.TRANSACTION))
_CONSENSUS_PREFIX: Final = bytes((0x92, MessageKind.CONSENSUS))


def _bin_header(length: int) -> bytes:
    if length < 2**8:
        return bytes((0xC4, length))
    if length < 2**16:
        return b"\xc5" + length.to_bytes(2, "big")
    return b"\xc6" + length.to_bytes(4, "big")


def _payload_body(prefix: bytes, payload: bytes) -> bytes:
    return b"".join((prefix, _bin_header(len(payload)), payload))


def _payload_frame(prefix: bytes, payload: bytes, max_frame_size: int) -> bytes:
    if type(payload) is not bytes:
        raise TypeError(f"payload must be bytes, got {type(payload).__name__}")
    length = len(payload)
    header = _bin_header(length)
    body_size = len(prefix) + len(header) + length
    if body_size > max_frame_size:
        raise MessageTooLarge(
            f"a {length}-byte payload encodes to {body_size} bytes, "
            f"above the frame cap of {max_frame_size}"
        )
    return b"".join((body_size.to_bytes(FRAME_HEADER_SIZE, "big"), prefix, header, payload))


def split_frames(plaintext: bytes, max_frame_size: int) -> Iterator[memoryview]:
    """Yield the frame bodies of a record's plaintext, in order.

    Raises (after yielding the good frames before it) FrameTooLarge for a length prefix above
    the cap, TruncatedFrame for one that runs past the end, MalformedFrame for an empty record.
    """
    if not plaintext:
        raise MalformedFrame("record carries no frame")
    view = memoryview(plaintext)
    end = len(plaintext)
    offset = 0
    while offset < end:
        body_start = offset + FRAME_HEADER_SIZE
        if body_start > end:
            raise TruncatedFrame(
                f"{end - offset} bytes left at offset {offset}, too few for a frame header"
            )
        length = int.from_bytes(view[offset:body_start], "big")
        if length > max_frame_size:
            raise FrameTooLarge(
                f"frame at offset {offset} announces {length} bytes, cap is {max_frame_size}"
            )
        body_end = body_start + length
        if body_end > end:
            raise TruncatedFrame(
                f"frame at offset {offset} announces {length} bytes, "
                f"only {end - body_start} remain in the record"
            )
        yield view[body_start:body_end]
        offset = body_end


def decode_message(body: bytes | memoryview, max_frame_size: int) -> Message:
    """Decode one frame body strictly; raise a FrameError subclass saying what was wrong."""
    if len(body) > max_frame_size:
        raise FrameTooLarge(f"frame body of {len(body)} bytes exceeds the cap of {max_frame_size}")
    if len(body) == 0:
        raise MalformedFrame("empty frame body")
    try:
        value = msgpack.unpackb(
            body,
            raw=False,
            use_list=False,
            strict_map_key=True,
            max_array_len=_MAX_ARRAY,
            max_map_len=0,
            max_ext_len=0,
        )
    except msgpack.ExtraData:
        raise MalformedFrame("trailing bytes after the message") from None
    except (ValueError, TypeError, msgpack.UnpackException, RecursionError) as exc:
        raise MalformedFrame(f"not a valid msgpack message: {exc}") from None
    if type(value) is not tuple or not value:
        raise MalformedFrame(f"a message is a non-empty array, got {_describe(value)}")
    kind = value[0]
    if type(kind) is not int:
        raise MalformedFrame(f"message kind must be an int, got {_describe(kind)}")
    if kind in (_CONSENSUS, _TRANSACTION) and len(value) == 2:
        # Hot path for the two payload messages: the same checks as `_build` and
        # `_canonical_size`, inlined (a bin of n bytes has a 2-, 3- or 5-byte header).
        payload = value[1]
        if type(payload) is bytes:
            length = len(payload)
            if len(body) != length + (4 if length < 2**8 else 5 if length < 2**16 else 7):
                raise MalformedFrame(f"{MessageKind(kind).name} is not canonically encoded")
            return ConsensusMessage(payload) if kind == _CONSENSUS else TransactionGossip(payload)
    arity = _ARITY.get(kind)
    if arity is None:
        raise UnknownMessageType(f"unknown message kind {kind}")
    if len(value) != arity:
        raise MalformedFrame(f"{MessageKind(kind).name} has {arity} elements, got {len(value)}")
    message = _build(MessageKind(kind), value)
    if _canonical_size(value) != len(body):
        raise MalformedFrame(f"{MessageKind(kind).name} is not canonically encoded")
    return message


_CONSENSUS: Final = int(MessageKind.CONSENSUS)
_TRANSACTION: Final = int(MessageKind.TRANSACTION)


def _canonical_size(value: tuple[object, ...]) -> int:
    """Length of the canonical encoding of a decoded message array.

    Every field type here (non-negative int, bytes, str) and the array header have exactly one
    shortest msgpack form and every other form is longer, so a decoded value whose body has this
    length is byte-for-byte canonical - checked without re-encoding (and copying) the payload.
    """
    size = 1 if len(value) < 16 else 3
    for item in value:
        if isinstance(item, bytes):
            length = len(item)
            size += length + (2 if length < 2**8 else 3 if length < 2**16 else 5)
        elif isinstance(item, str):
            length = len(item.encode("utf-8"))
            size += length + (
                1 if length < 32 else 2 if length < 2**8 else 3 if length < 2**16 else 5
            )
        elif isinstance(item, int):
            size += (
                1
                if item < 2**7
                else 2
                if item < 2**8
                else 3
                if item < 2**16
                else 5
                if item < 2**32
                else 9
            )
    return size


def _build(kind: MessageKind, value: tuple[object, ...]) -> Message:
    """The message of `kind` from its decoded array, checking every field's exact type."""
    if kind is MessageKind.TRANSACTION:
        return TransactionGossip(_bytes_field(kind, value, 1))
    if kind is MessageKind.CONSENSUS:
        return ConsensusMessage(_bytes_field(kind, value, 1))
    if kind is MessageKind.REQUEST:
        return Request(_id_field(kind, value, 1), _bytes_field(kind, value, 2))
    if kind is MessageKind.RESPONSE:
        return Response(_id_field(kind, value, 1), _bytes_field(kind, value, 2))
    if kind is MessageKind.REQUEST_FAILED:
        return RequestFailure(_id_field(kind, value, 1), _reason_field(kind, value, 2))
    if kind is MessageKind.GOODBYE:
        return Goodbye(_reason_field(kind, value, 1))
    return Keepalive()


def _bytes_field(kind: MessageKind, value: tuple[object, ...], index: int) -> bytes:
    field = value[index]
    if type(field) is not bytes:
        raise MalformedFrame(f"{kind.name} field {index} must be bytes, got {_describe(field)}")
    return field


def _id_field(kind: MessageKind, value: tuple[object, ...], index: int) -> int:
    field = value[index]
    if type(field) is not int or not 0 <= field <= MAX_REQUEST_ID:
        raise MalformedFrame(
            f"{kind.name} field {index} must be a request id in [0, 2**64), got {_describe(field)}"
        )
    return field


def _reason_field(kind: MessageKind, value: tuple[object, ...], index: int) -> str:
    field = value[index]
    if type(field) is not str:
        raise MalformedFrame(f"{kind.name} field {index} must be a str, got {_describe(field)}")
    if len(field) > MAX_REASON_LENGTH:
        raise MalformedFrame(
            f"{kind.name} reason has {len(field)} characters, cap is {MAX_REASON_LENGTH}"
        )
    return field


def _describe(value: object) -> str:
    """A short description of an unexpected value for error messages (never the whole value)."""
    if isinstance(value, bytes | str | tuple | list):
        return f"{type(value).__name__} of length {len(value)}"
    if isinstance(value, int):
        return f"{type(value).__name__} {value}"
    return type(value).__name__


def truncate_reason(reason: str) -> str:
    """`reason` cut to `MAX_REASON_LENGTH` characters so it can always be sent."""
    return reason if len(reason) <= MAX_REASON_LENGTH else reason[: MAX_REASON_LENGTH - 3] + "..."
