"""Records: sealed and opened in order; any modification, replay or reordering is detected."""

from __future__ import annotations

import pytest

from p2p.cipher import RECORD_HEADER_SIZE, TAG_SIZE, RecordOpener, RecordSealer
from p2p.errors import RecordTooLarge, SessionExhausted, TamperedRecord

KEY = bytes(range(32))
CAP = 1000


def split(record: bytes) -> tuple[bytes, bytes]:
    return record[:RECORD_HEADER_SIZE], record[RECORD_HEADER_SIZE:]


def open_record(opener: RecordOpener, record: bytes) -> bytes:
    header, ciphertext = split(record)
    assert opener.read_header(header) == len(ciphertext)
    return opener.open(header, ciphertext)


def open_tampered(opener: RecordOpener, header: bytes, ciphertext: bytes) -> bytes:
    opener.read_header(header)
    return opener.open(header, ciphertext)


def test_records_open_in_order() -> None:
    sealer, opener = RecordSealer(KEY), RecordOpener(KEY, CAP)
    records = [bytes(sealer.seal(f"record {i}".encode())) for i in range(5)]
    assert [open_record(opener, r) for r in records] == [f"record {i}".encode() for i in range(5)]
    assert len(records[0]) == RECORD_HEADER_SIZE + len(b"record 0") + TAG_SIZE


def test_same_plaintext_seals_differently_each_time() -> None:
    sealer = RecordSealer(KEY)
    assert sealer.seal(b"same") != sealer.seal(b"same")


@pytest.mark.parametrize("position", [0, 3, 4, 10, -1])
def test_invalid_tampered_record(position: int) -> None:
    sealer, opener = RecordSealer(KEY), RecordOpener(KEY, CAP)
    record = bytearray(sealer.seal(b"pay merchant 100"))
    record[position] ^= 0x01
    header, ciphertext = split(bytes(record))
    with pytest.raises((TamperedRecord, RecordTooLarge)):
        open_tampered(opener, header, ciphertext)


def test_invalid_replayed_record() -> None:
    sealer, opener = RecordSealer(KEY), RecordOpener(KEY, CAP)
    record = bytes(sealer.seal(b"once"))
    assert open_record(opener, record) == b"once"
    with pytest.raises(TamperedRecord, match=r"record 1 .* failed authentication"):
        open_record(opener, record)


def test_invalid_reordered_record_and_failure_does_not_advance() -> None:
    sealer, opener = RecordSealer(KEY), RecordOpener(KEY, CAP)
    first, second = bytes(sealer.seal(b"first")), bytes(sealer.seal(b"second"))
    with pytest.raises(TamperedRecord):
        open_record(opener, second)
    assert open_record(opener, first) == b"first"
    assert open_record(opener, second) == b"second"


def test_invalid_record_from_another_key() -> None:
    record = bytes(RecordSealer(bytes(32)).seal(b"forged"))
    with pytest.raises(TamperedRecord):
        open_record(RecordOpener(KEY, CAP), record)


def test_invalid_record_too_large() -> None:
    opener = RecordOpener(KEY, CAP)
    with pytest.raises(RecordTooLarge, match=f"announces {CAP + TAG_SIZE + 1} bytes"):
        opener.read_header((CAP + TAG_SIZE + 1).to_bytes(4, "big"))
    with pytest.raises(RecordTooLarge, match="too short"):
        opener.read_header(TAG_SIZE.to_bytes(4, "big"))
    assert opener.read_header((CAP + TAG_SIZE).to_bytes(4, "big")) == CAP + TAG_SIZE


def test_invalid_exhausted_session() -> None:
    sealer = RecordSealer(KEY)
    sealer._counter = 2**64 - 1  # white-box: reaching it honestly takes 2**64 records
    with pytest.raises(SessionExhausted, match="counter reached"):
        sealer.seal(b"x")
