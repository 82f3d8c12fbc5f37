"""Commit certificates and the validator set: a quorum verifies; every broken rule is rejected
with a reason (docs/protocol.md, "Commit certificates")."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable
from typing import Any

import pytest

from ledger.accounts import put_parameter
from ledger.certificates import (
    CommitCertificate,
    CommitSignature,
    build_certificate,
    commit_signing_bytes,
    verify_certificate,
)
from ledger.encoding import decode, encode
from ledger.errors import InvalidCertificate, InvalidValidatorUpdate, MalformedBlock
from ledger.genesis import genesis_state
from ledger.keys import PrivateKey, PublicKey
from ledger.state import State
from ledger.validator_state import (
    activate_due_validators,
    current_validators,
    schedule_validator_update,
    validators_at,
)
from ledger.validators import Validator, ValidatorSet
from secnode.network.devnet import DEV_CHAIN_ID, dev_genesis, validator_key

KEYS = [validator_key(f"node{i}") for i in range(4)]
VALIDATORS = ValidatorSet.from_public_keys(key.public_key for key in KEYS)
HEIGHT = 7
BLOCK_HASH = hashlib.sha256(b"header of block 7").digest()
OUTSIDER = validator_key("node9")


def _signatures(
    keys: list[PrivateKey],
    *,
    chain_id: str = DEV_CHAIN_ID,
    height: int = HEIGHT,
    block_hash: bytes = BLOCK_HASH,
) -> dict[bytes, bytes]:
    message = commit_signing_bytes(chain_id, height, block_hash)
    return {key.address: key.sign(message) for key in keys}


def _certificate(keys: list[PrivateKey], **signed_over: Any) -> CommitCertificate:
    return build_certificate(HEIGHT, BLOCK_HASH, _signatures(keys, **signed_over))


def _verify(certificate: CommitCertificate, validators: ValidatorSet = VALIDATORS) -> None:
    verify_certificate(certificate, DEV_CHAIN_ID, validators, height=HEIGHT, block_hash=BLOCK_HASH)


# --- certificates that verify ------------------------------------------------------------------


def test_commit_signing_bytes_are_domain_prefix_and_encoded_list() -> None:
    expected = b"SEC/commit/v1" + encode([DEV_CHAIN_ID, HEIGHT, BLOCK_HASH])
    assert commit_signing_bytes(DEV_CHAIN_ID, HEIGHT, BLOCK_HASH) == expected


@pytest.mark.parametrize("signers", [*itertools.combinations(range(4), 3), (0, 1, 2, 3)])
def test_certificate_with_a_quorum_verifies(signers: tuple[int, ...]) -> None:
    certificate = _certificate([KEYS[i] for i in signers])
    _verify(certificate)
    verify_certificate(certificate, DEV_CHAIN_ID, VALIDATORS)  # no expectation given


def test_build_certificate_sorts_signatures_by_address() -> None:
    certificate = _certificate(list(reversed(KEYS)))
    addresses = [entry.validator for entry in certificate.signatures]
    assert addresses == sorted(addresses) == [m.address for m in VALIDATORS.members]


def test_certificate_wire_roundtrip() -> None:
    certificate = _certificate(KEYS[:3])
    wire = certificate.to_wire()
    assert set(wire) == {"height", "block_hash", "signatures"}
    assert wire["signatures"][0] == [certificate.signatures[0].validator, _first_signature(wire)]
    assert CommitCertificate.from_wire(decode(encode(wire))) == certificate


def _first_signature(wire: dict[str, Any]) -> bytes:
    signature: bytes = wire["signatures"][0][1]
    return signature


def test_single_validator_certifies_alone() -> None:
    solo = ValidatorSet.from_public_keys([KEYS[0].public_key])
    _verify(_certificate([KEYS[0]]), solo)


# --- certificates that do not ------------------------------------------------------------------


@pytest.mark.parametrize("count", [0, 1, 2])
def test_invalid_too_few_signatures(count: int) -> None:
    with pytest.raises(InvalidCertificate, match=f"has {count} signatures, a quorum of 3 of 4"):
        _verify(_certificate(KEYS[:count]))


def test_invalid_duplicate_signer() -> None:
    good = _certificate(KEYS[:2])
    doubled = CommitCertificate(HEIGHT, BLOCK_HASH, (*good.signatures, good.signatures[0]))
    with pytest.raises(InvalidCertificate, match="signed twice"):
        _verify(doubled)


def test_invalid_unknown_signer_even_beside_a_quorum() -> None:
    certificate = _certificate([*KEYS[:3], OUTSIDER])
    with pytest.raises(InvalidCertificate, match="is not in the validator set"):
        _verify(certificate)


def test_invalid_bad_signature() -> None:
    signatures = _signatures(KEYS[:3])
    address = KEYS[1].address
    signatures[address] = bytes([signatures[address][0] ^ 0x01]) + signatures[address][1:]
    with pytest.raises(InvalidCertificate, match="does not verify"):
        _verify(build_certificate(HEIGHT, BLOCK_HASH, signatures))


def test_invalid_signature_by_another_member_under_its_name() -> None:
    signatures = _signatures(KEYS[:3])
    signatures[KEYS[3].address] = signatures.pop(KEYS[2].address)
    with pytest.raises(InvalidCertificate, match="does not verify"):
        _verify(build_certificate(HEIGHT, BLOCK_HASH, signatures))


def test_invalid_wrong_height_expectation() -> None:
    certificate = _certificate(KEYS)
    with pytest.raises(InvalidCertificate, match=f"is for height {HEIGHT}, not 8"):
        verify_certificate(certificate, DEV_CHAIN_ID, VALIDATORS, height=8)


def test_invalid_wrong_block_hash_expectation() -> None:
    certificate = _certificate(KEYS)
    other = hashlib.sha256(b"another header").digest()
    with pytest.raises(InvalidCertificate, match=f"not {other.hex()}"):
        verify_certificate(certificate, DEV_CHAIN_ID, VALIDATORS, block_hash=other)


def test_invalid_signatures_over_another_chain_id() -> None:
    with pytest.raises(InvalidCertificate, match="does not verify"):
        _verify(_certificate(KEYS, chain_id="sec-testnet"))


def test_invalid_verified_against_another_chain_id() -> None:
    certificate = _certificate(KEYS)
    with pytest.raises(InvalidCertificate, match="does not verify"):
        verify_certificate(certificate, "sec-testnet", VALIDATORS)


def test_injected_verify_checks_every_signature_of_the_certificate() -> None:
    seen: list[tuple[bytes, bytes, bytes]] = []

    def record(public_key: bytes, message: bytes, signature: bytes) -> bool:
        seen.append((public_key, message, signature))
        return True

    unsigned = build_certificate(HEIGHT, BLOCK_HASH, {key.address: bytes(64) for key in KEYS[:3]})
    with pytest.raises(InvalidCertificate, match="does not verify"):
        _verify(unsigned)  # default: Ed25519
    verify_certificate(unsigned, DEV_CHAIN_ID, VALIDATORS, verify=record)
    message = commit_signing_bytes(DEV_CHAIN_ID, HEIGHT, BLOCK_HASH)
    assert sorted(seen) == sorted((key.public_key, message, bytes(64)) for key in KEYS[:3])


def test_invalid_signature_refused_by_the_injected_verify() -> None:
    with pytest.raises(InvalidCertificate, match="does not verify"):
        verify_certificate(
            _certificate(KEYS), DEV_CHAIN_ID, VALIDATORS, verify=lambda key, message, sig: False
        )


def test_injected_verify_keeps_the_quorum_and_signer_rules() -> None:
    def accept(public_key: bytes, message: bytes, signature: bytes) -> bool:
        return True

    outsider = build_certificate(HEIGHT, BLOCK_HASH, {OUTSIDER.address: bytes(64)})
    with pytest.raises(InvalidCertificate, match="not in the validator set"):
        verify_certificate(outsider, DEV_CHAIN_ID, VALIDATORS, verify=accept)
    too_few = build_certificate(HEIGHT, BLOCK_HASH, {key.address: bytes(64) for key in KEYS[:2]})
    with pytest.raises(InvalidCertificate, match="quorum of 3"):
        verify_certificate(too_few, DEV_CHAIN_ID, VALIDATORS, verify=accept)


@pytest.mark.parametrize(
    "signed_over",
    [{"height": HEIGHT + 1}, {"block_hash": hashlib.sha256(b"another header").digest()}],
    ids=["other height", "other block"],
)
def test_invalid_signatures_over_another_block(signed_over: dict[str, Any]) -> None:
    # The certificate claims (HEIGHT, BLOCK_HASH) but its signatures are over something else.
    with pytest.raises(InvalidCertificate, match="does not verify"):
        _verify(_certificate(KEYS, **signed_over))


def test_invalid_quorum_of_another_validator_set() -> None:
    others = [validator_key(f"other{i}") for i in range(4)]
    with pytest.raises(InvalidCertificate, match="is not in the validator set"):
        _verify(_certificate(others))


def test_invalid_old_quorum_after_validator_change() -> None:
    # Three old members are not a quorum of the grown set of seven (quorum 5).
    grown = ValidatorSet.from_public_keys(
        [*(k.public_key for k in KEYS), *(validator_key(f"node{i}").public_key for i in (4, 5, 6))]
    )
    with pytest.raises(InvalidCertificate, match="a quorum of 5 of 7"):
        _verify(_certificate(KEYS[:3]), grown)


def _replace(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda wire: wire.update({name: value})


def _replace_entry(index: int, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(wire: dict[str, Any]) -> None:
        wire["signatures"][0][index] = value

    return mutate


MALFORMED: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("missing height", lambda wire: wire.pop("height"), "map of height, block_hash, signatures"),
    ("extra field", _replace("view", 0), "map of height, block_hash, signatures"),
    ("height negative", _replace("height", -1), "height -1 is not a non-negative integer"),
    ("height bool", _replace("height", True), "height True is not"),
    ("height text", _replace("height", "7"), "height '7' is not"),
    ("hash short", _replace("block_hash", BLOCK_HASH[:31]), "block_hash must be 32 bytes"),
    ("hash hex", _replace("block_hash", BLOCK_HASH.hex()), "block_hash must be 32 bytes"),
    ("signatures map", _replace("signatures", {}), "signatures must be a list"),
    ("signatures huge", _replace("signatures", [[]] * 1025), "a list of at most 1024"),
    ("entry not list", _replace("signatures", [b"x" * 84]), r"\[20-byte address, 64 bytes\]"),
    (
        "entry of three",
        lambda wire: wire["signatures"][0].append(b""),
        r"\[20-byte address, 64 bytes\]",
    ),
    ("address short", _replace_entry(0, bytes(19)), r"\[20-byte address, 64 bytes\]"),
    ("address text", _replace_entry(0, "sec1"), r"\[20-byte address, 64 bytes\]"),
    ("signature short", _replace_entry(1, bytes(63)), r"\[20-byte address, 64 bytes\]"),
    ("signature long", _replace_entry(1, bytes(65)), r"\[20-byte address, 64 bytes\]"),
]


@pytest.mark.parametrize(
    ("mutate", "match"), [(m, e) for _, m, e in MALFORMED], ids=[n for n, *_ in MALFORMED]
)
def test_invalid_malformed_wire(mutate: Callable[[dict[str, Any]], None], match: str) -> None:
    wire: dict[str, Any] = decode(encode(_certificate(KEYS[:3]).to_wire()))
    mutate(wire)
    with pytest.raises(MalformedBlock, match=match):
        CommitCertificate.from_wire(wire)


@pytest.mark.parametrize("value", [None, [], b"certificate", 7])
def test_invalid_wire_not_a_map(value: Any) -> None:
    with pytest.raises(MalformedBlock, match="certificate must be a map"):
        CommitCertificate.from_wire(value)


# --- the validator set -------------------------------------------------------------------------


def _set_of(size: int) -> ValidatorSet:
    return ValidatorSet.from_public_keys(validator_key(f"node{i}").public_key for i in range(size))


@pytest.mark.parametrize(
    ("size", "faulty", "quorum"), [(1, 0, 1), (4, 1, 3), (7, 2, 5), (10, 3, 7)]
)
def test_quorum_and_fault_tolerance(size: int, faulty: int, quorum: int) -> None:
    validators = _set_of(size)
    assert (validators.size, validators.max_faulty, validators.quorum) == (size, faulty, quorum)


@pytest.mark.parametrize("size", range(1, 41))
def test_quorums_intersect_in_an_honest_validator_for_every_size(size: int) -> None:
    # Validator updates can leave n != 3f + 1. Safety needs any two quorums to share at least
    # f + 1 validators (so at least one honest one); liveness needs a quorum among the n - f
    # validators that are not faulty.
    validators = _set_of(size)
    n, f, q = validators.size, validators.max_faulty, validators.quorum
    assert 2 * q - n >= f + 1, f"two quorums of {q} of {n} may share only {2 * q - n}"
    assert q <= n - f, f"a quorum of {q} of {n} is unreachable with {f} faulty"


def test_from_public_keys_sorts_by_address_and_ignores_input_order() -> None:
    keys = [key.public_key for key in KEYS]
    validators = ValidatorSet.from_public_keys(keys)
    assert ValidatorSet.from_public_keys(reversed(keys)) == validators
    addresses = [member.address for member in validators.members]
    assert addresses == sorted(addresses)
    for index, member in enumerate(validators.members):
        assert validators.index_of(member.address) == index
        assert validators.public_key_of(member.address) == member.public_key
        assert member.address in validators
    assert validators.index_of(OUTSIDER.address) is None
    assert validators.public_key_of(OUTSIDER.address) is None
    assert OUTSIDER.address not in validators


def test_validator_set_hash_is_domain_prefixed_key_list() -> None:
    expected = hashlib.sha256(b"SEC/validators/v1" + encode(VALIDATORS.to_wire())).digest()
    assert VALIDATORS.hash() == expected
    assert VALIDATORS.to_wire() == [bytes(m.public_key) for m in VALIDATORS.members]


def test_validator_set_hash_changes_with_membership() -> None:
    keys = [key.public_key for key in KEYS]
    hashes = {
        ValidatorSet.from_public_keys(keys).hash(),
        ValidatorSet.from_public_keys(keys[:3]).hash(),
        ValidatorSet.from_public_keys([*keys, OUTSIDER.public_key]).hash(),
        ValidatorSet.from_public_keys([*keys[:3], OUTSIDER.public_key]).hash(),
    }
    assert len(hashes) == 4


def test_invalid_unsorted_members() -> None:
    members = tuple(reversed(VALIDATORS.members))
    with pytest.raises(InvalidValidatorUpdate, match="sorted by address"):
        ValidatorSet(members)


def test_invalid_duplicate_member() -> None:
    with pytest.raises(InvalidValidatorUpdate, match="duplicate validator"):
        ValidatorSet.from_public_keys([KEYS[0].public_key, KEYS[1].public_key, KEYS[0].public_key])
    member = VALIDATORS.members[0]
    with pytest.raises(InvalidValidatorUpdate, match="duplicate validator"):
        ValidatorSet((member, member))


def test_invalid_empty_set() -> None:
    with pytest.raises(InvalidValidatorUpdate, match="at least one member"):
        ValidatorSet.from_public_keys([])


@pytest.mark.parametrize("size", [31, 33])
def test_invalid_member_key_length(size: int) -> None:
    with pytest.raises(InvalidValidatorUpdate, match=f"validator key is {size} bytes"):
        ValidatorSet((Validator(PublicKey(bytes(size))),))


def test_commit_signature_fields() -> None:
    entry = _certificate(KEYS[:1]).signatures[0]
    assert entry == CommitSignature(KEYS[0].address, entry.signature)
    assert len(entry.signature) == 64


# --- validator changes (the set that certifies each height) ------------------------------------


def _validator_state() -> State:
    state = genesis_state(dev_genesis())
    state.commit_block()
    return state


def test_validator_change_takes_effect_after_the_delay() -> None:
    state = _validator_state()
    new_key = validator_key("node4").public_key
    effective = schedule_validator_update(state, (new_key,), (), 10)
    assert effective == 10 + 8  # validator_change_delay of the development genesis (default)
    assert validators_at(state, effective - 1) == VALIDATORS
    assert validators_at(state, effective).size == 5
    assert not activate_due_validators(state, effective - 1)
    assert activate_due_validators(state, effective)
    assert current_validators(state) == validators_at(state, effective)


def test_validator_changes_apply_in_order_after_the_delay_is_lowered() -> None:
    # The second change is built on the first (pending) set; lowering the delay in between must
    # not let it take effect first, or the first would later overwrite it.
    state = _validator_state()
    first = schedule_validator_update(state, (validator_key("node4").public_key,), (), 10)
    put_parameter(state, "validator_change_delay", 2)
    second = schedule_validator_update(state, (validator_key("node5").public_key,), (), 11)
    assert second == first + 1  # after the pending change, never replacing it
    expected = validators_at(state, 100)
    assert expected.size == 6
    for height in range(11, 30):
        activate_due_validators(state, height)
        assert current_validators(state) == validators_at(state, height)
    assert current_validators(state) == expected
