"""Ed25519 against RFC 8032 and Wycheproof; addresses; key files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from ledger.errors import InvalidAddress
from ledger.keys import (
    PrivateKey,
    Signer,
    address_of,
    format_address,
    parse_address,
    verify_signature,
)
from secnode.keyfile import KeyFileError, read_key_file, write_key_file
from tests.conftest import load_vectors

RFC8032 = load_vectors("rfc8032_ed25519_vectors.json")["vectors"]
WYCHEPROOF = load_vectors("wycheproof_ed25519_test.json")


@pytest.mark.parametrize("vector", RFC8032, ids=lambda v: v["name"])
def test_rfc8032_vector(vector: dict[str, Any]) -> None:
    key = PrivateKey(bytes.fromhex(vector["secret_key_hex"]))
    message = bytes.fromhex(vector["message_hex"])
    assert key.public_key.hex() == vector["public_key_hex"]
    assert key.sign(message).hex() == vector["signature_hex"]
    assert Signer(key).sign(message).hex() == vector["signature_hex"]
    assert verify_signature(key.public_key, message, bytes.fromhex(vector["signature_hex"]))


def _wycheproof_cases() -> list[tuple[str, bytes, bytes, bytes, bool]]:
    cases = []
    for group in WYCHEPROOF["testGroups"]:
        public_key = bytes.fromhex(group["publicKey"]["pk"])
        for test in group["tests"]:
            cases.append(
                (
                    f"tc{test['tcId']}-{test['result']}",
                    public_key,
                    bytes.fromhex(test["msg"]),
                    bytes.fromhex(test["sig"]),
                    test["result"] == "valid",
                )
            )
    return cases


WYCHEPROOF_CASES = _wycheproof_cases()


def test_wycheproof_has_cases_to_reject() -> None:
    assert len(WYCHEPROOF_CASES) == 151
    assert sum(not valid for *_, valid in WYCHEPROOF_CASES) == 63


@pytest.mark.parametrize(("name", "public_key", "message", "signature", "valid"), WYCHEPROOF_CASES)
def test_wycheproof_verify(
    name: str, public_key: bytes, message: bytes, signature: bytes, valid: bool
) -> None:
    assert verify_signature(public_key, message, signature) is valid


def test_invalid_signature_wrong_lengths_are_false_not_errors() -> None:
    key = PrivateKey.from_label("k")
    signature = key.sign(b"m")
    assert not verify_signature(key.public_key[:31], b"m", signature)
    assert not verify_signature(key.public_key, b"m", signature[:63])
    assert not verify_signature(key.public_key, b"m", signature + b"\x00")


def test_address_roundtrip_and_case() -> None:
    key = PrivateKey.from_label("a")
    text = format_address(key.address)
    assert text.startswith("sec1") and len(text) == 42
    assert parse_address(text) == key.address == address_of(key.public_key)
    assert parse_address(text.upper()) == key.address


def test_invalid_address_every_single_character_typo_detected() -> None:
    text = format_address(PrivateKey.from_label("typo").address)
    alphabet = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
    for position in range(4, len(text)):
        for replacement in alphabet:
            if replacement == text[position]:
                continue
            typo = text[:position] + replacement + text[position + 1 :]
            with pytest.raises(InvalidAddress):
                parse_address(typo)


def test_invalid_address_transposition_detected() -> None:
    text = format_address(PrivateKey.from_label("swap").address)
    for position in range(4, len(text) - 1):
        if text[position] == text[position + 1]:
            continue
        swapped = text[:position] + text[position + 1] + text[position] + text[position + 2 :]
        with pytest.raises(InvalidAddress):
            parse_address(swapped)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("btc1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq", "does not start"),
        ("sec1qqqq", "characters"),
        ("sec1" + "b" * 38, "invalid character"),
        ("Sec1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq", "mixes"),
    ],
)
def test_invalid_address_forms(text: str, reason: str) -> None:
    with pytest.raises(InvalidAddress, match=reason):
        parse_address(text)


def test_key_file_roundtrip_mode_0600(tmp_path: Path) -> None:
    key = PrivateKey.generate()
    path = tmp_path / "keys" / "node.key"
    write_key_file(path, key)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert read_key_file(path) == key
    assert "seed" not in repr(key) and key.seed.hex() not in repr(key)


def test_invalid_key_file_overwrite_refused(tmp_path: Path) -> None:
    path = tmp_path / "k"
    write_key_file(path, PrivateKey.generate())
    with pytest.raises(KeyFileError, match="already exists"):
        write_key_file(path, PrivateKey.generate())


def test_invalid_key_file_world_readable(tmp_path: Path) -> None:
    path = tmp_path / "k"
    write_key_file(path, PrivateKey.generate())
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        read_key_file(path)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("not json", "not JSON"),
        ('{"type": "other"}', "not a sec-ed25519-key"),
        ('{"type": "sec-ed25519-key/v1", "seed": "zz"}', "valid hex"),
        ('{"type": "sec-ed25519-key/v1", "seed": "00"}', "expected 32"),
        (
            '{"type": "sec-ed25519-key/v1", "seed": "' + "00" * 32 + '", "public_key": "ab"}',
            "does not match",
        ),
    ],
)
def test_invalid_key_file_contents(tmp_path: Path, content: str, reason: str) -> None:
    path = tmp_path / "k"
    path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match=reason):
        read_key_file(path)


def test_invalid_key_file_missing(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="does not exist"):
        read_key_file(tmp_path / "nope")
