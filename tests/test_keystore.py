"""Encrypted key files (docs/protocol.md §4.4.2): sealing and opening, every way a file can be
wrong, where passphrases come from, `sec keys`, and a real `sec node start` with an encrypted
node.key whose passphrase is in a file.

Files here are sealed with scrypt n=16 through the explicit `scrypt=` / `--scrypt-n` option, so
the suite stays fast; one test checks that the default writes n=2^17, r=8, p=1.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

import cli
from ledger.genesis import GenesisValidator
from ledger.keys import PrivateKey, format_address
from secnode import keystore
from secnode.keyfile import (
    KeyFileError,
    WrongPassphraseError,
    encrypt_key_file,
    read_key_info,
    read_key_record,
    write_key_file,
)
from secnode.keystore import DEFAULT_SCRYPT, ScryptParams
from secnode.network import devnet
from secnode.passphrase import (
    PASSPHRASE_FILE_VARIABLE,
    PASSPHRASE_VARIABLE,
    PassphraseSource,
)
from tests.e2e_cluster import CLI, PYTHON, ROOT, Cluster, run_cli

FAST = ScryptParams(n=16, r=8, p=1)
PASSPHRASE = "correct horse battery staple"
GENESIS_HASH = bytes(range(32))


def given(passphrase: str) -> Any:
    return lambda _path: passphrase


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sealed_file(tmp_path: Path, *, genesis: bool = True) -> tuple[Path, PrivateKey]:
    key = PrivateKey.generate()
    path = tmp_path / "node.key"
    write_key_file(
        path,
        key,
        genesis_hash=GENESIS_HASH if genesis else None,
        passphrase=PASSPHRASE,
        scrypt=FAST,
    )
    return path, key


def rewrite(path: Path, change: Any) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


@pytest.fixture(autouse=True)
def no_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may block on a prompt, and none inherits a passphrase from the environment."""
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    monkeypatch.delenv(PASSPHRASE_VARIABLE, raising=False)
    monkeypatch.delenv(PASSPHRASE_FILE_VARIABLE, raising=False)


# --- sealing and opening ------------------------------------------------------------------------


def test_an_encrypted_file_opens_to_the_same_key_and_network(tmp_path: Path) -> None:
    path, key = sealed_file(tmp_path)

    record = read_key_record(path, given(PASSPHRASE))

    assert record.key == key
    assert record.genesis_hash == GENESIS_HASH
    assert path.stat().st_mode & 0o777 == 0o600
    text = path.read_text()
    assert key.seed.hex() not in text
    document = json.loads(text)
    assert document["type"] == "sec-ed25519-keystore"
    assert document["version"] == 1
    assert document["public_key"] == key.public_key.hex()
    assert document["address"] == format_address(key.address)
    assert document["crypto"]["kdf"] == "scrypt"
    assert document["crypto"]["cipher"] == "chacha20-poly1305"


def test_new_files_default_to_scrypt_n_2_17_r_8_p_1(tmp_path: Path) -> None:
    key = PrivateKey.generate()
    path = tmp_path / "k"
    write_key_file(path, key, passphrase=PASSPHRASE)

    assert ScryptParams(n=1 << 17, r=8, p=1) == DEFAULT_SCRYPT
    params = json.loads(path.read_text())["crypto"]["kdfparams"]
    assert (params["n"], params["r"], params["p"]) == (1 << 17, 8, 1)
    assert read_key_record(path, given(PASSPHRASE)).key == key


def test_the_passphrase_is_unicode_normalised(tmp_path: Path) -> None:
    key = PrivateKey.generate()
    path = tmp_path / "k"
    write_key_file(path, key, passphrase="cafe\u0301", scrypt=FAST)  # e + combining accent

    assert read_key_record(path, given("caf\u00e9")).key == key


def test_the_public_part_reads_without_a_passphrase(tmp_path: Path) -> None:
    path, key = sealed_file(tmp_path)

    info = read_key_info(path)

    assert info.public_key == key.public_key
    assert info.genesis_hash == GENESIS_HASH
    assert info.scrypt == FAST


def test_invalid_wrong_passphrase_leaves_the_file_unchanged(tmp_path: Path) -> None:
    path, _ = sealed_file(tmp_path)
    before = digest(path)

    with pytest.raises(WrongPassphraseError) as caught:
        read_key_record(path, given("Tr0ub4dor&3"))

    assert str(caught.value) == f"wrong passphrase for {path} (the file is unchanged)"
    assert digest(path) == before


def test_invalid_no_passphrase_for_an_encrypted_file(tmp_path: Path) -> None:
    path, _ = sealed_file(tmp_path)

    with pytest.raises(KeyFileError, match="is encrypted and no passphrase was given"):
        read_key_record(path)


def flip_hex(value: str, index: int = 0) -> str:
    raw = bytearray(bytes.fromhex(value))
    raw[index] ^= 0x01
    return raw.hex()


def other_public_key(document: dict[str, Any]) -> None:
    """A consistent swap: another key's public key and its address (no format error)."""
    other = PrivateKey.generate()
    document["public_key"] = other.public_key.hex()
    document["address"] = format_address(other.address)


# Fields whose change is caught by the authentication tag (the passphrase is still right).
ALTERED_UNDER_THE_TAG = {
    "public key and address swapped": other_public_key,
    "genesis changed": lambda d: d.update(genesis=flip_hex(d["genesis"])),
    "genesis removed": lambda d: d.pop("genesis"),
    "field added": lambda d: d.update(note="hello"),
    "nonce": lambda d: d["crypto"]["cipherparams"].update(
        nonce=flip_hex(d["crypto"]["cipherparams"]["nonce"])
    ),
}
# Fields the key is derived from: a change cannot be told from a wrong passphrase (§4.4.2).
ALTERED_KDF_INPUTS = {
    "salt": lambda d: d["crypto"]["kdfparams"].update(
        salt=flip_hex(d["crypto"]["kdfparams"]["salt"])
    ),
    "scrypt n": lambda d: d["crypto"]["kdfparams"].update(n=32),
    "scrypt r": lambda d: d["crypto"]["kdfparams"].update(r=4),
    "scrypt p": lambda d: d["crypto"]["kdfparams"].update(p=2),
    "check": lambda d: d["crypto"].update(check=flip_hex(d["crypto"]["check"])),
}
# Changes refused from the clear fields alone, before any key is derived.
MALFORMED = {
    "type": (lambda d: d.update(type="sec-ed25519-key/v9"), "not a sec-ed25519-key/v1"),
    "version": (lambda d: d.update(version=2), "version is not 1"),
    "address": (
        lambda d: d.update(address=format_address(bytes(20))),
        "'address' is not the address of 'public_key'",
    ),
    "kdf": (lambda d: d["crypto"].update(kdf="pbkdf2"), "crypto.kdf is not 'scrypt'"),
    "cipher": (lambda d: d["crypto"].update(cipher="aes-128-ctr"), "crypto.cipher is not"),
    "n not a power of two": (
        lambda d: d["crypto"]["kdfparams"].update(n=1000),
        "n must be a power of two",
    ),
    "n as text": (lambda d: d["crypto"]["kdfparams"].update(n="16"), "positive integer"),
    "n as boolean": (lambda d: d["crypto"]["kdfparams"].update(n=True), "positive integer"),
    "n asks for 1 TiB": (lambda d: d["crypto"]["kdfparams"].update(n=1 << 33), "MiB limit"),
    "p too high": (lambda d: d["crypto"]["kdfparams"].update(p=1000), "p=1000 is above"),
    "salt short": (lambda d: d["crypto"]["kdfparams"].update(salt="00"), "kdfparams.salt"),
    "nonce not hex": (lambda d: d["crypto"]["cipherparams"].update(nonce="zz"), "nonce"),
    "ciphertext cut": (
        lambda d: d["crypto"].update(ciphertext=d["crypto"]["ciphertext"][:-2]),
        "crypto.ciphertext",
    ),
    "crypto missing": (lambda d: d.pop("crypto"), "'crypto' is not an object"),
    "kdfparams a list": (lambda d: d["crypto"].update(kdfparams=[]), "kdfparams' is not an obj"),
}


@pytest.mark.parametrize("change", ALTERED_UNDER_THE_TAG.values(), ids=ALTERED_UNDER_THE_TAG)
def test_invalid_header_field_altered(tmp_path: Path, change: Any) -> None:
    path, _ = sealed_file(tmp_path)
    rewrite(path, change)
    before = digest(path)

    with pytest.raises(KeyFileError, match="file was altered after it was written") as caught:
        read_key_record(path, given(PASSPHRASE))

    assert not isinstance(caught.value, WrongPassphraseError)
    assert digest(path) == before


def test_invalid_any_ciphertext_byte_altered(tmp_path: Path) -> None:
    path, _ = sealed_file(tmp_path)
    length = len(bytes.fromhex(json.loads(path.read_text())["crypto"]["ciphertext"]))
    original = path.read_text()
    for index in range(length):
        path.write_text(original)
        rewrite(
            path,
            lambda d, i=index: d["crypto"].update(
                ciphertext=flip_hex(d["crypto"]["ciphertext"], i)
            ),
        )
        with pytest.raises(KeyFileError, match="file was altered"):
            read_key_record(path, given(PASSPHRASE))


@pytest.mark.parametrize("change", ALTERED_KDF_INPUTS.values(), ids=ALTERED_KDF_INPUTS)
def test_invalid_kdf_input_altered_reads_as_a_wrong_passphrase(tmp_path: Path, change: Any) -> None:
    path, _ = sealed_file(tmp_path)
    rewrite(path, change)

    with pytest.raises(WrongPassphraseError):
        read_key_record(path, given(PASSPHRASE))


@pytest.mark.parametrize(("change", "reason"), MALFORMED.values(), ids=MALFORMED)
def test_invalid_malformed_field(tmp_path: Path, change: Any, reason: str) -> None:
    path, _ = sealed_file(tmp_path)
    rewrite(path, change)

    with pytest.raises(KeyFileError, match=reason):
        read_key_info(path)
    with pytest.raises(KeyFileError, match=reason):
        read_key_record(path, given(PASSPHRASE))


def test_invalid_sealed_seed_of_another_key(tmp_path: Path) -> None:
    """Someone who knows the passphrase seals key A under key B's public key: the tag is valid,
    yet opening refuses, since the seed must derive the public key in clear."""
    path, _ = sealed_file(tmp_path)
    document = json.loads(path.read_text())
    other_public_key(document)
    derived = keystore._derive(
        PASSPHRASE, bytes.fromhex(document["crypto"]["kdfparams"]["salt"]), FAST
    )
    sealed = ChaCha20Poly1305(derived[:32]).encrypt(
        bytes.fromhex(document["crypto"]["cipherparams"]["nonce"]),
        PrivateKey.generate().seed,
        keystore.header_bytes(document),
    )
    document["crypto"]["ciphertext"] = sealed.hex()
    path.write_text(json.dumps(document))

    with pytest.raises(KeyFileError, match="does not derive 'public_key'"):
        read_key_record(path, given(PASSPHRASE))


def test_invalid_empty_passphrase_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "k"
    with pytest.raises(KeyFileError, match="passphrase is empty"):
        write_key_file(path, PrivateKey.generate(), passphrase="", scrypt=FAST)
    assert not path.exists()


# --- plain files, conversion, atomic writes -----------------------------------------------------


def test_a_plain_file_loads_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = PrivateKey.generate()
    path = tmp_path / "plain.key"
    write_key_file(path, key)

    with caplog.at_level(logging.WARNING, logger="secnode.keyfile"):
        assert read_key_record(path).key == key
        assert read_key_record(path).key == key

    warnings = [r.getMessage() for r in caplog.records if "NOT encrypted" in r.getMessage()]
    assert warnings == [
        f"key file {path} is NOT encrypted (anyone who can read it can sign with it); "
        f"encrypt it with: sec keys encrypt {path}"
    ]


def test_encrypt_converts_in_place_keeping_key_and_network(tmp_path: Path) -> None:
    key = PrivateKey.generate()
    path = tmp_path / "node.key"
    write_key_file(path, key, genesis_hash=GENESIS_HASH)

    info = encrypt_key_file(path, PASSPHRASE, FAST)

    assert info.encrypted
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_key_record(path, given(PASSPHRASE)) == read_key_record(path, given(PASSPHRASE))
    record = read_key_record(path, given(PASSPHRASE))
    assert (record.key, record.genesis_hash) == (key, GENESIS_HASH)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["node.key"]  # no temporary left


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_encrypt_in_place_keeps_the_owner(tmp_path: Path) -> None:
    """`sudo sec keys encrypt` on the key of a node that runs as another user."""
    path = tmp_path / "node.key"
    write_key_file(path, PrivateKey.generate())
    os.chown(path, 4321, 4321)

    encrypt_key_file(path, PASSPHRASE, FAST)

    assert (path.stat().st_uid, path.stat().st_gid) == (4321, 4321)


def test_invalid_encrypt_an_encrypted_file(tmp_path: Path) -> None:
    path, _ = sealed_file(tmp_path)
    before = digest(path)

    with pytest.raises(KeyFileError, match="already encrypted"):
        encrypt_key_file(path, "another", FAST)

    assert digest(path) == before


def test_a_write_that_fails_leaves_the_old_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = PrivateKey.generate()
    path = tmp_path / "node.key"
    write_key_file(path, key)
    before = digest(path)

    def disk_full(_descriptor: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        encrypt_key_file(path, PASSPHRASE, FAST)

    assert digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["node.key"]


# --- where the passphrase comes from ------------------------------------------------------------


def test_passphrase_file_first_line_without_its_line_ending(tmp_path: Path) -> None:
    path, key = sealed_file(tmp_path)
    for ending in ("\n", "\r\n", "\nignored second line\n", ""):
        secret = tmp_path / "pass"
        secret.write_text(PASSPHRASE + ending)
        secret.chmod(0o600)

        assert read_key_record(path, PassphraseSource(file=secret).existing).key == key


def test_passphrase_precedence_file_then_file_variable_then_variable(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("from option")
    (tmp_path / "b").write_text("from file variable")
    environ = {PASSPHRASE_FILE_VARIABLE: str(tmp_path / "b"), PASSPHRASE_VARIABLE: "from variable"}
    key_path = tmp_path / "k"

    assert PassphraseSource(tmp_path / "a", environ).existing(key_path) == "from option"
    assert PassphraseSource(None, environ).existing(key_path) == "from file variable"
    del environ[PASSPHRASE_FILE_VARIABLE]
    assert PassphraseSource(None, environ).existing(key_path) == "from variable"


def test_a_new_passphrase_is_asked_twice(tmp_path: Path) -> None:
    answers = iter(["first", "first"])
    asked: list[str] = []

    def prompt(text: str) -> str:
        asked.append(text)
        return next(answers)

    source = PassphraseSource(environ={}, interactive=True, prompt=prompt)

    assert source.new(tmp_path / "k") == "first"
    assert asked == [f"New passphrase for {tmp_path / 'k'}: ", "Repeat the passphrase: "]


@pytest.mark.parametrize(
    ("answers", "reason"),
    [(["one", "two"], "differ"), (["", ""], "empty")],
    ids=["differ", "empty"],
)
def test_invalid_new_passphrase_typed(tmp_path: Path, answers: list[str], reason: str) -> None:
    typed = iter(answers)
    source = PassphraseSource(environ={}, interactive=True, prompt=lambda _: next(typed))

    with pytest.raises(KeyFileError, match=reason):
        source.new(tmp_path / "k")


def test_invalid_no_passphrase_source_and_no_terminal(tmp_path: Path) -> None:
    source = PassphraseSource(environ={}, interactive=False)

    with pytest.raises(KeyFileError, match="--passphrase-file FILE, SEC_KEY_PASSPHRASE_FILE"):
        source.existing(tmp_path / "k")


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "is empty"), (b"\nsecond", "is empty"), (b"\xff\xfe", "not UTF-8")],
    ids=["empty", "blank first line", "not utf-8"],
)
def test_invalid_passphrase_file(tmp_path: Path, content: bytes, reason: str) -> None:
    secret = tmp_path / "pass"
    secret.write_bytes(content)

    with pytest.raises(KeyFileError, match=reason):
        PassphraseSource(file=secret).existing(tmp_path / "k")


def test_a_passphrase_file_others_can_read_is_used_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "pass"
    secret.write_text(PASSPHRASE)
    secret.chmod(0o644)

    assert PassphraseSource(file=secret).existing(tmp_path / "k") == PASSPHRASE
    assert f"passphrase file {secret} is readable by others (mode 644)" in capsys.readouterr().err


def test_invalid_missing_passphrase_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot read passphrase file"):
        PassphraseSource(file=tmp_path / "nope").existing(tmp_path / "k")


def test_the_passphrase_appears_in_no_message_or_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every path a passphrase goes through: success, wrong, altered, a CLI error line."""
    path, _ = sealed_file(tmp_path)
    secret = tmp_path / "pass"
    secret.write_text(PASSPHRASE)
    wrong = "wrong-" + PASSPHRASE
    texts: list[str] = []
    with caplog.at_level(logging.DEBUG):
        read_key_record(path, given(PASSPHRASE))
        for passphrase in (wrong, PASSPHRASE):
            if passphrase == PASSPHRASE:
                rewrite(path, lambda d: d.update(genesis=flip_hex(d["genesis"])))
            with pytest.raises(KeyFileError) as caught:
                read_key_record(path, given(passphrase))
            texts += traceback.format_exception(caught.value)
            texts.append(repr(caught.value))
        assert cli.main(["keys", "show", str(path), "--passphrase-file", str(secret)]) == 1
    output = capsys.readouterr()
    texts += [output.out, output.err, caplog.text]

    assert "file was altered" in output.err
    assert not [t for t in texts if PASSPHRASE in t]


# --- sec keys -----------------------------------------------------------------------------------


def sec(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, str, str]:
    status = cli.main(list(arguments))
    output = capsys.readouterr()
    return status, output.out, output.err


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "passphrase"
    path.write_text(PASSPHRASE + "\n")
    path.chmod(0o400)
    return path


@pytest.fixture
def wrong(tmp_path: Path) -> Path:
    path = tmp_path / "wrong"
    path.write_text("not it\n")
    path.chmod(0o400)
    return path


def test_keys_new_encrypts_with_a_passphrase_file(
    tmp_path: Path, secret: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "shop.key"
    status, out, err = sec(
        capsys, "keys", "new", "--out", str(path), "--passphrase-file", str(secret),
        "--scrypt-n", "16", "--json",
    )  # fmt: skip

    assert status == 0, err
    data = json.loads(out)
    assert data["encrypted"] is True
    assert data["scrypt"] == {"n": 16, "r": 8, "p": 1}
    assert data["unlock_seconds"] >= 0
    assert "weaker than the default" in err  # a low cost is never silent
    key = read_key_record(path, given(PASSPHRASE)).key
    assert data["address"] == format_address(key.address)


def test_keys_new_takes_the_passphrase_from_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSPHRASE_VARIABLE, PASSPHRASE)
    path = tmp_path / "k"

    status, _, err = sec(capsys, "keys", "new", "--out", str(path), "--scrypt-n", "16")

    assert status == 0, err
    assert read_key_record(path, given(PASSPHRASE)).key.public_key == read_key_info(path).public_key


def test_keys_new_prompts_twice_on_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    typed = iter([PASSPHRASE, PASSPHRASE])
    monkeypatch.setattr("getpass.getpass", lambda _prompt: next(typed))
    path = tmp_path / "k"

    status, _, err = sec(capsys, "keys", "new", "--out", str(path), "--scrypt-n", "16")

    assert status == 0, err
    assert read_key_info(path).encrypted
    assert next(typed, None) is None  # asked exactly twice


def test_invalid_keys_new_without_passphrase_or_plain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "k"

    status, _, err = sec(capsys, "keys", "new", "--out", str(path))

    assert status == 1
    assert "no passphrase to encrypt" in err
    assert not path.exists()


def test_invalid_keys_new_plain_with_a_passphrase(
    tmp_path: Path, secret: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "k"
    status, _, err = sec(
        capsys, "keys", "new", "--plain", "--out", str(path), "--passphrase-file", str(secret)
    )
    assert status == 1
    assert "--plain" in err
    assert not path.exists()


@pytest.mark.parametrize("option", ["--passphrase", "--password", "--passphrase=", "--passphr"])
def test_invalid_passphrase_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str
) -> None:
    path, _ = sealed_file(tmp_path)
    argv = ["keys", "show", str(path)]
    argv += [option + PASSPHRASE] if option.endswith("=") else [option, PASSPHRASE]

    with pytest.raises(SystemExit) as exit_status:
        cli.main(argv)
    output = capsys.readouterr()

    assert exit_status.value.code == 2
    if option == "--passphr":  # no abbreviation: not read as --passphrase-file PASSPHRASE
        assert "unrecognized arguments: --passphr" in output.err
    else:
        assert "a passphrase is never taken from the command line" in output.err
        assert PASSPHRASE not in output.err


def test_keys_show_reads_the_clear_part_and_verifies_with_a_passphrase(
    tmp_path: Path, secret: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, key = sealed_file(tmp_path)

    status, out, _ = sec(capsys, "keys", "show", str(path), "--json")
    assert status == 0
    shown = json.loads(out)
    assert shown["public_key"] == key.public_key.hex()
    assert shown["address"] == format_address(key.address)
    assert shown["genesis"] == GENESIS_HASH.hex()
    assert shown["verified"] is False

    status, out, _ = sec(capsys, "keys", "show", str(path), "--passphrase-file", str(secret))
    assert status == 0
    assert "verified    the passphrase opens it" in out


def test_invalid_keys_show_with_a_wrong_passphrase(
    tmp_path: Path, wrong: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = sealed_file(tmp_path)
    before = digest(path)

    status, _, err = sec(capsys, "keys", "show", str(path), "--passphrase-file", str(wrong))

    assert status == 1
    assert err == f"sec: error: wrong passphrase for {path} (the file is unchanged)\n"
    assert digest(path) == before


def test_keys_list_shows_every_key_file_without_passphrases(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    encrypted, key = sealed_file(tmp_path)
    plain_key = PrivateKey.generate()
    write_key_file(tmp_path / "accounts" / "admin.key", plain_key)
    damaged = tmp_path / "accounts" / "broken.key"
    damaged.write_text('{"type": "sec-ed25519-keystore", "version": 1}')
    damaged.chmod(0o600)
    (tmp_path / "genesis.json").write_text('{"chain_id": "x"}')
    (tmp_path / "tls.key").write_text("-----BEGIN PRIVATE KEY-----\n")

    status, out, _ = sec(capsys, "keys", "list", str(tmp_path), "--json")

    assert status == 0
    rows = {Path(row["path"]).name: row for row in json.loads(out)}
    assert sorted(rows) == ["admin.key", "broken.key", "node.key"]
    assert rows["node.key"]["encrypted"] is True
    assert rows["node.key"]["public_key"] == key.public_key.hex()
    assert rows["node.key"]["genesis"] == GENESIS_HASH.hex()
    assert rows["admin.key"]["encrypted"] is False
    assert rows["admin.key"]["address"] == format_address(plain_key.address)
    assert "'public_key' is not 64 hex digits" in rows["broken.key"]["error"]

    status, out, _ = sec(capsys, "keys", "list", str(tmp_path))
    assert f"{encrypted}  encrypted  {format_address(key.address)}" in out
    assert "PLAIN" in out


def test_keys_encrypt_converts_a_plain_file(
    tmp_path: Path, secret: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = PrivateKey.generate()
    path = tmp_path / "admin.key"
    write_key_file(path, key)

    status, out, err = sec(
        capsys, "keys", "encrypt", str(path), "--passphrase-file", str(secret),
        "--scrypt-n", "16",
    )  # fmt: skip

    assert status == 0, err
    assert f"encrypted {path} in place" in out
    assert read_key_record(path, given(PASSPHRASE)).key == key


def test_invalid_keys_encrypt_twice(
    tmp_path: Path, secret: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = sealed_file(tmp_path)
    before = digest(path)

    status, _, err = sec(capsys, "keys", "encrypt", str(path), "--passphrase-file", str(secret))

    assert status == 1
    assert "already encrypted (the file is unchanged)" in err
    assert digest(path) == before


def test_keys_change_passphrase_reseals_under_the_new_one(
    tmp_path: Path, secret: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, key = sealed_file(tmp_path)
    old_salt = json.loads(path.read_text())["crypto"]["kdfparams"]["salt"]
    new_secret = tmp_path / "new"
    new_secret.write_text("a new passphrase\n")
    new_secret.chmod(0o600)

    status, out, err = sec(
        capsys, "keys", "change-passphrase", str(path), "--passphrase-file", str(secret),
        "--new-passphrase-file", str(new_secret), "--scrypt-n", "16",
    )  # fmt: skip

    assert status == 0, err
    assert f"changed the passphrase of {path}" in out
    record = read_key_record(path, given("a new passphrase"))
    assert (record.key, record.genesis_hash) == (key, GENESIS_HASH)
    assert json.loads(path.read_text())["crypto"]["kdfparams"]["salt"] != old_salt
    with pytest.raises(WrongPassphraseError):
        read_key_record(path, given(PASSPHRASE))


def test_invalid_change_passphrase_with_a_wrong_current_one(
    tmp_path: Path, wrong: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = sealed_file(tmp_path)
    before = digest(path)

    status, _, err = sec(
        capsys, "keys", "change-passphrase", str(path), "--passphrase-file", str(wrong),
        "--new-passphrase-file", str(wrong),
    )  # fmt: skip

    assert status == 1
    assert err == f"sec: error: wrong passphrase for {path} (the file is unchanged)\n"
    assert digest(path) == before


def test_genesis_new_encrypt_seals_every_key_it_writes(
    tmp_path: Path, secret: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "net"
    status, _, err = sec(
        capsys, "genesis", "new", "--validators", "2", "--out", str(out), "--encrypt",
        "--passphrase-file", str(secret), "--scrypt-n", "16",
    )  # fmt: skip
    assert status == 0, err

    status, listing, _ = sec(capsys, "keys", "list", str(out), "--json")
    rows = json.loads(listing)
    names = sorted(str(Path(row["path"]).relative_to(out)) for row in rows)
    assert names == sorted(
        ["node0/node.key", "node1/node.key"]
        + [f"accounts/{name}.key" for name, _, _ in devnet.DEV_ACCOUNTS]
    )
    assert all(row["encrypted"] for row in rows)
    genesis = json.loads((out / "genesis.json").read_text())
    node0 = read_key_record(out / "node0" / "node.key", given(PASSPHRASE))
    assert node0.key.public_key.hex() == genesis["validators"][0]["public_key"]
    assert node0.genesis_hash is not None


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        (["--dev", "--encrypt"], "development keys are public"),
        (["--passphrase-file", "x"], "--passphrase-file needs --encrypt"),
    ],
    ids=["dev", "file without encrypt"],
)
def test_invalid_genesis_new_encrypt_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], reason: str
) -> None:
    out = tmp_path / "net"
    status, _, err = sec(capsys, "genesis", "new", "--out", str(out), *options)

    assert status == 1
    assert reason in err
    assert not out.exists()


def test_keys_export_public_prints_a_genesis_validator_entry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "node4"
    home.mkdir()
    path, key = sealed_file(home)

    status, out, err = sec(capsys, "keys", "export-public", str(path))

    assert status == 0
    entry = GenesisValidator.model_validate(json.loads(out))  # strict, extra="forbid"
    assert (entry.name, entry.public_key) == ("node4", key.public_key.hex())
    assert format_address(key.address) in err

    status, out, _ = sec(capsys, "keys", "export-public", str(path), "--name", "v9", "--json")
    assert json.loads(out) == {
        "name": "v9",
        "public_key": key.public_key.hex(),
        "address": format_address(key.address),
    }


def test_invalid_tx_with_an_encrypted_key_and_no_passphrase(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = sealed_file(tmp_path)
    argv = ["tx", "transfer", "--to", "dev:buyer1", "--amount", "1", "--key", str(path)]

    status, _, err = sec(capsys, *argv, "--rpc", "http://127.0.0.1:9")

    assert status == 1
    assert f"key file {path} is encrypted: give its passphrase with --passphrase-file" in err


# --- a real node ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_node_starts_unattended_with_an_encrypted_key_and_a_passphrase_file(
    tmp_path: Path,
) -> None:
    """`sec node start --passphrase-file`: blocks are made, an encrypted account key signs a
    transaction through `sec tx`, and the passphrase is in no argument, environment or log."""
    secret = tmp_path / "passphrase"
    secret.write_text(PASSPHRASE + "\n")
    secret.chmod(0o400)
    with Cluster.create(tmp_path / "net", validators=1) as single:
        node = single.nodes[0]
        node_key = node.home / "node.key"
        run_cli("keys", "encrypt", str(node_key), "--passphrase-file", str(secret),
                "--scrypt-n", "1024")  # fmt: skip
        assert read_key_info(node_key).encrypted

        wrong = tmp_path / "wrong"
        wrong.write_text("not it\n")
        failed = start_and_fail(node.home, "--passphrase-file", str(wrong))
        assert f"sec: error: wrong passphrase for {node_key} (the file is unchanged)" in failed
        failed = start_and_fail(node.home)
        assert f"key file {node_key} is encrypted: give its passphrase with" in failed

        node.start_options = ("--passphrase-file", str(secret))
        single.start()
        single.wait_for_heights([0], 2, timeout=60)
        assert node.process is not None
        proc = Path("/proc") / str(node.process.pid)
        assert PASSPHRASE.encode() not in (proc / "cmdline").read_bytes()
        assert PASSPHRASE.encode() not in (proc / "environ").read_bytes()

        issuer = tmp_path / "issuer.key"
        write_key_file(issuer, devnet.dev_account_key("issuer"), passphrase=PASSPHRASE, scrypt=FAST)
        sent = run_cli(
            "tx", "mint", "--to", "dev:buyer1", "--amount", "5", "--key", str(issuer),
            "--passphrase-file", str(secret), "--rpc", node.rpc_url, "--wait", "--json",
        )  # fmt: skip
        assert json.loads(sent.stdout)["receipt"]["ok"] is True, sent.stdout

        assert single.stop(0) == 0, single.diagnostics()
        assert PASSPHRASE not in node.log_path.read_text()


def start_and_fail(home: Path, *options: str) -> str:
    """`sec node start` that must give up with one error line; its stderr."""
    result = subprocess.run(
        [PYTHON, str(CLI), "node", "start", "--home", str(home), *options],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert result.returncode == 1, f"exit {result.returncode}\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr
