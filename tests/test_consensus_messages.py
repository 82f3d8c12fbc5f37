"""Wire forms, signing bytes, persistence records and configuration of the consensus core."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus.config import ReplicaConfig, ValidatorSchedule
from consensus.errors import (
    ConfigError,
    MalformedMessage,
    MessageTooLarge,
    RestoreError,
    ValidatorScheduleError,
)
from consensus.messages import (
    Certify,
    Checkpoint,
    CheckpointProof,
    Commit,
    Message,
    NewView,
    Prepare,
    PreparedProof,
    PrePrepare,
    ViewChange,
    Vote,
    _pack,
    decode_message,
    encode_message,
)
from consensus.records import (
    CheckpointRecord,
    PreparedRecord,
    SignedRecord,
    decode_record,
    encode_record,
    record_is_obsolete,
)
from consensus.sim.toychain import GENESIS_DIGEST
from ledger.certificates import CommitCertificate, CommitSignature, commit_signing_bytes
from ledger.encoding import encode
from ledger.keys import Address, PrivateKey
from ledger.validators import ValidatorSet

uint = st.integers(min_value=0, max_value=2**63 - 1)
digest = st.binary(min_size=32, max_size=32)
address = st.binary(min_size=20, max_size=20).map(Address)
signature = st.binary(min_size=64, max_size=64)
payload = st.binary(max_size=64)
votes = st.lists(st.builds(Vote, address, signature), max_size=4).map(tuple)

pre_prepares = st.builds(PrePrepare, uint, uint, digest, digest, payload, address, signature)
prepares = st.builds(Prepare, uint, uint, digest, address, signature)
commits = st.builds(Commit, uint, uint, digest, address, signature)
certifies = st.builds(Certify, uint, digest, address, signature)
checkpoints = st.builds(Checkpoint, uint, digest, address, signature)
checkpoint_proofs = st.builds(CheckpointProof, uint, digest, votes)
prepared_proofs = st.builds(PreparedProof, uint, uint, digest, digest, address, signature, votes)
certificates = st.builds(
    CommitCertificate,
    uint,
    digest,
    st.lists(st.builds(CommitSignature, address, signature), max_size=3).map(tuple),
)


@st.composite
def view_changes(draw: st.DrawFn, with_payloads: bool = True) -> ViewChange:
    proofs = tuple(draw(st.lists(prepared_proofs, max_size=3)))
    attached = tuple(draw(payload) for _ in proofs) if with_payloads else ()
    return ViewChange(
        draw(uint),
        draw(checkpoint_proofs),
        proofs,
        tuple(draw(st.lists(certificates, max_size=2))),
        attached,
        draw(address),
        draw(signature),
    )


new_views = st.builds(
    NewView,
    uint,
    st.lists(view_changes(with_payloads=False), max_size=2).map(tuple),
    st.lists(pre_prepares, max_size=2).map(tuple),
    address,
    signature,
)
messages = st.one_of(
    pre_prepares, prepares, commits, certifies, checkpoints, view_changes(), new_views
)


@given(messages)
def test_wire_round_trip(message: Message) -> None:
    assert decode_message(encode_message(message)) == message


@given(st.lists(st.one_of(uint, digest, st.text(max_size=20)), max_size=6))
def test_fast_signing_encoding_is_canonical(items: list[Any]) -> None:
    assert _pack(items) == encode(items)


@given(uint, digest)
def test_certify_signs_exactly_the_ledger_commit_bytes(seq: int, block: bytes) -> None:
    certify = Certify(seq, block, Address(bytes(20)), bytes(64))
    assert certify.signing_bytes("sec-main") == commit_signing_bytes("sec-main", seq, block)


def test_signing_bytes_bind_kind_chain_view_and_seq() -> None:
    sender, sig, block = Address(bytes(20)), bytes(64), bytes(32)
    base = Prepare(1, 2, block, sender, sig).signing_bytes("c")
    assert Commit(1, 2, block, sender, sig).signing_bytes("c") != base
    assert Prepare(1, 2, block, sender, sig).signing_bytes("d") != base
    assert Prepare(2, 2, block, sender, sig).signing_bytes("c") != base
    assert Prepare(1, 3, block, sender, sig).signing_bytes("c") != base


def test_pre_prepare_payload_is_not_signed() -> None:
    """Proofs carry pre-prepares without payloads; the digest binds the block instead."""
    sender, sig, block = Address(bytes(20)), bytes(64), bytes(32)
    one = PrePrepare(1, 2, block, block, b"a", sender, sig)
    two = PrePrepare(1, 2, block, block, b"b", sender, sig)
    assert one.signing_bytes("c") == two.signing_bytes("c")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ({"kind": "prepare"}, "a message is a list"),
        ([], "a message is a list"),
        (["vote", 1], "unknown message kind"),
        (["prepare", 1, 2, bytes(32), bytes(20)], "fields"),
        (["prepare", -1, 2, bytes(32), bytes(20), bytes(64)], "view"),
        (["prepare", True, 2, bytes(32), bytes(20), bytes(64)], "view"),
        (["prepare", 1, 2, bytes(31), bytes(20), bytes(64)], "digest must be 32 bytes"),
        (["prepare", 1, 2, bytes(32), bytes(19), bytes(64)], "sender must be 20 bytes"),
        (["prepare", 1, 2, bytes(32), bytes(20), bytes(63)], "signature must be 64 bytes"),
        (["prepare", 1, 2, "digest", bytes(20), bytes(64)], "digest must be 32 bytes"),
        (
            ["pre-prepare", 1, 2, bytes(32), bytes(32), "text", bytes(20), bytes(64)],
            "payload must be bytes",
        ),
        (["checkpoint", 1, bytes(32), bytes(20)], "fields"),
    ],
)
def test_invalid_message_shape(value: Any, reason: str) -> None:
    with pytest.raises(MalformedMessage, match=reason):
        decode_message(encode(value))


def test_invalid_message_not_msgpack() -> None:
    with pytest.raises(MalformedMessage, match="canonical"):
        decode_message(b"\xc1garbage")


def test_invalid_message_non_canonical_encoding() -> None:
    # 0xcd 0x00 0x01 is 1 as uint16: valid msgpack, not the shortest form.
    data = bytes([0x96]) + encode("prepare") + b"\xcd\x00\x01" + encode(2)
    with pytest.raises(MalformedMessage, match="non-canonical"):
        decode_message(data + encode(bytes(32)) + encode(bytes(20)) + encode(bytes(64)))


def test_invalid_message_too_large() -> None:
    message = PrePrepare(0, 1, bytes(32), bytes(32), bytes(2000), Address(bytes(20)), bytes(64))
    with pytest.raises(MessageTooLarge, match="cap of 1000"):
        decode_message(encode_message(message), max_size=1000)


def test_invalid_new_view_with_attached_payloads() -> None:
    proof = PreparedProof(0, 1, bytes(32), bytes(32), Address(bytes(20)), bytes(64), ())
    change = ViewChange(
        1, CheckpointProof(0, bytes(32), ()), (proof,), (), (b"x",), Address(bytes(20)), bytes(64)
    )
    new_view = NewView(1, (change,), (), Address(bytes(20)), bytes(64))
    with pytest.raises(MalformedMessage, match="no payloads"):
        decode_message(encode_message(new_view))


# --- records ------------------------------------------------------------------------------------


@given(st.one_of(prepares, commits, certifies, checkpoints, view_changes(), new_views))
def test_record_round_trip(message: Message) -> None:
    record = SignedRecord(message)
    assert decode_record(encode_record(record)) == record


@given(prepared_proofs, payload, checkpoint_proofs)
def test_proof_records_round_trip(proof: PreparedProof, block: bytes, cp: CheckpointProof) -> None:
    for record in (PreparedRecord(proof, block), CheckpointRecord(cp)):
        assert decode_record(encode_record(record)) == record


@pytest.mark.parametrize("data", [encode(["nope", 1]), encode([]), b"\xc1", encode(["signed"])])
def test_invalid_record(data: bytes) -> None:
    with pytest.raises(RestoreError):
        decode_record(data)


def test_record_obsolescence_rule() -> None:
    sender, sig, block = Address(bytes(20)), bytes(64), bytes(32)
    proof = PreparedProof(1, 9, block, block, sender, sig, ())
    stable = CheckpointProof(8, block, ())
    assert record_is_obsolete(SignedRecord(Prepare(5, 8, block, sender, sig)), 8, 0)
    assert not record_is_obsolete(SignedRecord(Prepare(5, 9, block, sender, sig)), 8, 5)
    assert record_is_obsolete(SignedRecord(Prepare(4, 9, block, sender, sig)), 8, 5)
    assert not record_is_obsolete(PreparedRecord(proof, b""), 8, 5)  # old view, still latest
    assert not record_is_obsolete(CheckpointRecord(stable), 8, 5)
    assert record_is_obsolete(CheckpointRecord(CheckpointProof(4, block, ())), 8, 5)
    assert not record_is_obsolete(SignedRecord(Certify(9, block, sender, sig)), 8, 5)


# --- configuration --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"chain_id": ""}, "chain_id"),
        ({"genesis_digest": b"short"}, "genesis_digest"),
        ({"checkpoint_interval": 0}, "checkpoint_interval"),
        ({"watermark_window": 3}, "watermark_window"),
        ({"watermark_window": 40}, "watermark_window"),
        ({"max_in_flight": 20}, "max_in_flight"),
        ({"view_timeout": 1.0, "empty_block_interval": 2.0}, "view_timeout"),
        ({"batch_wait": 0.0}, "batch_wait"),
        ({"max_future_total": 1, "max_future_per_peer": 2}, "max_future_total"),
    ],
)
def test_invalid_config(overrides: dict[str, Any], reason: str) -> None:
    values: dict[str, Any] = {
        "chain_id": "c",
        "genesis_digest": GENESIS_DIGEST,
        "checkpoint_interval": 16,
        "watermark_window": 32,
    }
    values.update(overrides)
    with pytest.raises(ConfigError, match=reason):
        ReplicaConfig(**values)


def test_view_timeout_backs_off_to_a_cap() -> None:
    config = ReplicaConfig(
        "c", GENESIS_DIGEST, view_timeout=2.0, empty_block_interval=1.0, max_timeout_doublings=3
    )
    assert [config.timeout(a) for a in (0, 1, 2, 3, 9)] == [2.0, 4.0, 8.0, 16.0, 16.0]


def _set(*labels: str) -> ValidatorSet:
    return ValidatorSet.from_public_keys(PrivateKey.from_label(x).public_key for x in labels)


def test_schedule_lookup_and_epoch_ends() -> None:
    first, second = _set("a", "b", "c", "d"), _set("a", "b", "c", "e")
    schedule = ValidatorSchedule.of(first).with_change(10, second)
    assert schedule.at(1) is first
    assert schedule.at(9) is first
    assert schedule.at(10) is second
    assert schedule.is_epoch_end(9)
    assert not schedule.is_epoch_end(10)
    assert schedule.next_change_after(3) == 10
    assert schedule.next_change_after(10) is None


def test_invalid_schedule() -> None:
    validators = _set("a")
    with pytest.raises(ValidatorScheduleError, match="height 1"):
        ValidatorSchedule(((2, validators),))
    with pytest.raises(ValidatorScheduleError, match="increase"):
        ValidatorSchedule(((1, validators), (5, validators), (5, validators)))
    with pytest.raises(ValidatorScheduleError, match="exceed 1"):
        ValidatorSchedule.of(validators).with_change(1, validators)
