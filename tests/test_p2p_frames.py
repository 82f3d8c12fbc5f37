"""The frame codec: every message round-trips; everything else is rejected with a FrameError."""

from __future__ import annotations

import contextlib

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2p.errors import (
    FrameError,
    FrameTooLarge,
    MalformedFrame,
    MessageTooLarge,
    TruncatedFrame,
    UnknownMessageType,
)
from p2p.frames import (
    MAX_REASON_LENGTH,
    ConsensusMessage,
    Goodbye,
    Keepalive,
    Message,
    Request,
    RequestFailure,
    Response,
    TransactionGossip,
    consensus_frame,
    decode_message,
    encode_body,
    encode_frame,
    split_frames,
    transaction_frame,
)
from tests.p2p_testing import frame

CAP = 1 << 20

MESSAGES: list[Message] = [
    Keepalive(),
    TransactionGossip(b"tx"),
    ConsensusMessage(b""),
    ConsensusMessage(b"\x00" * 300),
    Request(0, b"blocks 1..10"),
    Request(2**64 - 1, b"x"),
    Response(7, b"\xff" * 70_000),
    RequestFailure(7, "unknown block"),
    Goodbye("host stopping"),
    Goodbye("é" * MAX_REASON_LENGTH),
]


def decode_frames(data: bytes) -> list[Message]:
    return [decode_message(body, CAP) for body in split_frames(data, CAP)]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_message_round_trips(message: Message) -> None:
    encoded = encode_frame(message, CAP)
    assert decode_frames(encoded) == [message]
    assert encode_body(message) == msgpack.packb(
        msgpack.unpackb(encode_body(message)), use_bin_type=True
    )


@pytest.mark.parametrize("size", [0, 1, 255, 256, 65_535, 65_536, 100_000])
def test_hot_path_frames_equal_general_encoding(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    assert consensus_frame(payload, CAP) == encode_frame(ConsensusMessage(payload), CAP)
    assert transaction_frame(payload, CAP) == encode_frame(TransactionGossip(payload), CAP)
    assert decode_frames(consensus_frame(payload, CAP)) == [ConsensusMessage(payload)]


def test_several_frames_in_one_record_decode_in_order() -> None:
    record = b"".join(encode_frame(m, CAP) for m in MESSAGES)
    assert decode_frames(record) == MESSAGES


@given(st.binary(max_size=2000))
def test_arbitrary_bytes_raise_only_frame_errors(data: bytes) -> None:
    with contextlib.suppress(FrameError):
        decode_frames(data)


@given(st.binary(max_size=500), st.integers(min_value=0, max_value=2**64 - 1))
def test_payload_messages_round_trip(payload: bytes, request_id: int) -> None:
    for message in (ConsensusMessage(payload), Request(request_id, payload)):
        assert decode_frames(encode_frame(message, CAP)) == [message]


def test_invalid_oversized_frame_on_send() -> None:
    with pytest.raises(MessageTooLarge, match="above the frame cap of 100"):
        consensus_frame(b"x" * 100, 100)
    with pytest.raises(MessageTooLarge, match="Response encodes to"):
        encode_frame(Response(1, b"x" * 100), 100)


def test_invalid_oversized_frame_header() -> None:
    record = (CAP + 1).to_bytes(4, "big") + b"x" * 10
    with pytest.raises(FrameTooLarge, match=f"announces {CAP + 1} bytes, cap is {CAP}"):
        decode_frames(record)


def test_invalid_oversized_frame_body() -> None:
    with pytest.raises(FrameTooLarge, match="exceeds the cap of 10"):
        decode_message(encode_body(ConsensusMessage(b"x" * 20)), 10)


def test_invalid_truncated_frame_yields_the_good_frames_first() -> None:
    good = encode_frame(ConsensusMessage(b"ok"), CAP)
    truncated = encode_frame(ConsensusMessage(b"cut short"), CAP)[:-3]
    bodies = split_frames(good + truncated, CAP)
    assert decode_message(next(bodies), CAP) == ConsensusMessage(b"ok")
    with pytest.raises(TruncatedFrame, match="only 10 remain"):
        next(bodies)


def test_invalid_truncated_frame_header() -> None:
    with pytest.raises(TruncatedFrame, match="too few for a frame header"):
        decode_frames(b"\x00\x00")


def test_invalid_empty_record_and_body() -> None:
    with pytest.raises(MalformedFrame, match="record carries no frame"):
        decode_frames(b"")
    with pytest.raises(MalformedFrame, match="empty frame body"):
        decode_frames(frame(b""))


@pytest.mark.parametrize("body", [b"\xc1", b"\x92\x02", bytes(range(40)), b"\xff" * 7])
def test_invalid_garbage_frame(body: bytes) -> None:
    with pytest.raises(MalformedFrame):
        decode_message(body, CAP)


def test_invalid_deeply_nested_frame() -> None:
    nested = b"\x91" * 5000 + b"\x00"
    with pytest.raises(MalformedFrame):
        decode_message(nested, CAP)
    inside_a_message = b"\x92\x02" + b"\x91" * 50 + b"\xc4\x00"
    with pytest.raises(MalformedFrame, match="CONSENSUS field 1 must be bytes, got tuple"):
        decode_message(inside_a_message, CAP)


def test_invalid_unknown_message_type() -> None:
    with pytest.raises(UnknownMessageType, match="unknown message kind 99"):
        decode_message(msgpack.packb([99, b"x"]), CAP)


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ({"kind": 2}, "exceeds max_map_len"),
        (7, "non-empty array, got int 7"),
        ([], "non-empty array, got tuple of length 0"),
        ([b"\x02", b"x"], "kind must be an int, got bytes"),
        ([True, b"x"], "kind must be an int, got bool"),
        ([2, b"x", b"y"], "CONSENSUS has 2 elements, got 3"),
        ([2, "text"], "CONSENSUS field 1 must be bytes, got str"),
        ([3, -1, b"x"], "REQUEST field 1 must be a request id"),
        ([3, True, b"x"], "REQUEST field 1 must be a request id"),
        ([5, 1, b"reason"], "REQUEST_FAILED field 2 must be a str"),
        ([6, "x" * (MAX_REASON_LENGTH + 1)], "reason has 513 characters"),
        ([2, 1.5], "not a valid msgpack message|must be bytes"),
    ],
)
def test_invalid_malformed_frame(value: object, match: str) -> None:
    with pytest.raises(MalformedFrame, match=match):
        decode_message(msgpack.packb(value, use_bin_type=True), CAP)


def test_invalid_noncanonical_encoding() -> None:
    # b"ok" with a bin16 header instead of bin8; the kind as uint8 instead of a fixint.
    long_header = b"\x92\x02\xc5\x00\x02ok"
    wide_kind = b"\x92\xcc\x02\xc4\x02ok"
    array16 = b"\xdc\x00\x02\x02\xc4\x02ok"
    wide_id = b"\x93\x03\xcd\x00\x01\xc4\x00"
    for body in (long_header, wide_kind, array16, wide_id):
        with pytest.raises(MalformedFrame, match="not canonically encoded"):
            decode_message(body, CAP)


def test_invalid_trailing_bytes() -> None:
    with pytest.raises(MalformedFrame, match="trailing bytes"):
        decode_message(encode_body(Keepalive()) + b"\x00", CAP)


def test_invalid_extension_type() -> None:
    with pytest.raises(MalformedFrame):
        decode_message(msgpack.packb([2, msgpack.ExtType(1, b"x")]), CAP)
