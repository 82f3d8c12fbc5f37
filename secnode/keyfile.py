"""Key files: an Ed25519 seed as JSON with mode 0600, plain or sealed with a passphrase, optionally
bound to one network's genesis (docs/protocol.md §4.4).

Two formats. Plain (`type` "sec-ed25519-key/v1"): {"type", "seed": hex, "public_key": hex,
"address": sec1, "genesis": hex (optional)}. Encrypted (`type` "sec-ed25519-keystore",
`version` 1): the seed sealed by `secnode.keystore` (scrypt + ChaCha20-Poly1305), public key,
address and genesis in clear. Reading checks the permissions (no group or other access), the
format, that the stored public key matches the seed, and the genesis field's shape; a plain file
still loads but is reported once per file as unencrypted (`sec keys encrypt` converts it). Every
write goes to a temporary file in the same directory (mode 0600 from its creation), is fsynced
and renamed over the target: a crash leaves the old file or the new one, never half of one.

Used by the node (its node.key), `sec keys`, `sec tx --key` and `sec genesis new`. An encrypted
file needs a passphrase: readers take a `PassphraseReader` (secnode/passphrase.py builds one
from a file, the environment or a prompt) that is only called for encrypted files.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ledger.keys import SEED_SIZE, PrivateKey, format_address
from secnode import keystore
from secnode.keystore import DEFAULT_SCRYPT, KeystoreError, ScryptParams

logger = logging.getLogger(__name__)


class KeyFileError(Exception):
    """A key file that is missing, unreadable, malformed or has the wrong permissions."""


class WrongPassphraseError(KeyFileError):
    """The passphrase given for an encrypted key file is not its passphrase."""


KEY_FILE_TYPE: Final = "sec-ed25519-key/v1"

PassphraseReader = Callable[[Path], str]
"""Gives the passphrase of the encrypted key file at the path (asked only when one is met)."""

_warned_plain: set[Path] = set()


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A key file's contents."""

    key: PrivateKey
    """The private key."""
    genesis_hash: bytes | None
    """Genesis document hash of the network the key was made for (optional field "genesis";
    None in key files written before it existed, or made with no network in mind). `sec`
    refuses to sign with this key for a node whose genesis differs."""


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What a key file tells without its passphrase (`sec keys list|show`)."""

    path: Path
    """The file."""
    public_key: bytes
    """Ed25519 public key."""
    genesis_hash: bytes | None
    """The network binding, as in KeyRecord."""
    scrypt: ScryptParams | None
    """The KDF cost of an encrypted file; None for a plain one."""

    @property
    def encrypted(self) -> bool:
        return self.scrypt is not None


def write_key_file(
    path: Path,
    key: PrivateKey,
    *,
    overwrite: bool = False,
    genesis_hash: bytes | None = None,
    passphrase: str | None = None,
    scrypt: ScryptParams = DEFAULT_SCRYPT,
) -> None:
    """Write `key` as JSON with mode 0600 (created that way, never world-readable in between),
    recording `genesis_hash` (the network it is for) when given; sealed with `passphrase` (scrypt
    cost `scrypt`) when one is given, plain otherwise."""
    if path.exists() and not overwrite:
        raise KeyFileError(f"{path} already exists; refusing to overwrite a key")
    document: dict[str, Any]
    if passphrase is not None:
        try:
            document = keystore.seal_key(key, passphrase, genesis_hash=genesis_hash, scrypt=scrypt)
        except KeystoreError as exc:
            raise KeyFileError(f"cannot encrypt {path}: {exc}") from None
    else:
        document = {
            "type": KEY_FILE_TYPE,
            "seed": key.seed.hex(),
            "public_key": key.public_key.hex(),
            "address": format_address(key.address),
        }
        if genesis_hash is not None:
            document["genesis"] = genesis_hash.hex()
    _replace_atomically(path, (json.dumps(document, indent=2) + "\n").encode())


def read_key_file(path: Path, passphrase: PassphraseReader | None = None) -> PrivateKey:
    """Load a key file, checking permissions, format and that the stored public key matches."""
    return read_key_record(path, passphrase).key


def read_key_record(path: Path, passphrase: PassphraseReader | None = None) -> KeyRecord:
    """Load a key file with its optional genesis (checked as `read_key_file` does). An encrypted
    file asks `passphrase` for its passphrase (KeyFileError if there is none to ask); a plain one
    loads with a warning, logged once per file."""
    document = _load_document(path)
    if keystore.is_keystore(document):
        if passphrase is None:
            raise KeyFileError(f"key file {path} is encrypted and no passphrase was given")
        return _open_encrypted(path, document, passphrase(path))
    key, genesis_hash = _read_plain(path, document)
    resolved = path.resolve()
    if resolved not in _warned_plain:
        _warned_plain.add(resolved)
        logger.warning(
            "key file %s is NOT encrypted (anyone who can read it can sign with it); "
            "encrypt it with: sec keys encrypt %s",
            path,
            path,
        )
    return KeyRecord(key, genesis_hash)


def read_key_info(path: Path) -> KeyInfo:
    """The public part of a key file, plain or encrypted, without a passphrase."""
    document = _load_document(path)
    if keystore.is_keystore(document):
        try:
            header = keystore.read_header(document)
        except KeystoreError as exc:
            raise KeyFileError(f"key file {path}: {exc}") from None
        return KeyInfo(path, header.public_key, header.genesis_hash, header.scrypt)
    key, genesis_hash = _read_plain(path, document)
    return KeyInfo(path, bytes(key.public_key), genesis_hash, None)


def encrypt_key_file(path: Path, passphrase: str, scrypt: ScryptParams = DEFAULT_SCRYPT) -> KeyInfo:
    """Replace the plain key file at `path` by its encrypted form (same key, same genesis
    binding), atomically; KeyFileError if it is already encrypted."""
    document = _load_document(path)
    if keystore.is_keystore(document):
        raise KeyFileError(f"key file {path} is already encrypted (the file is unchanged)")
    key, genesis_hash = _read_plain(path, document)
    write_key_file(
        path, key, overwrite=True, genesis_hash=genesis_hash, passphrase=passphrase, scrypt=scrypt
    )
    return read_key_info(path)


def change_passphrase(
    path: Path,
    passphrase: PassphraseReader,
    new_passphrase: Callable[[], str],
    scrypt: ScryptParams = DEFAULT_SCRYPT,
) -> KeyInfo:
    """Re-seal the encrypted key file at `path` under `new_passphrase()` (asked only once the
    current passphrase opened it) with fresh salt and nonce, atomically."""
    document = _load_document(path)
    if not keystore.is_keystore(document):
        raise KeyFileError(f"key file {path} is not encrypted; use: sec keys encrypt {path}")
    record = _open_encrypted(path, document, passphrase(path))
    write_key_file(
        path,
        record.key,
        overwrite=True,
        genesis_hash=record.genesis_hash,
        passphrase=new_passphrase(),
        scrypt=scrypt,
    )
    return read_key_info(path)


def _open_encrypted(path: Path, document: dict[str, Any], passphrase: str) -> KeyRecord:
    try:
        key = keystore.open_key(document, passphrase)
    except keystore.WrongPassphrase:
        raise WrongPassphraseError(f"wrong passphrase for {path} (the file is unchanged)") from None
    except KeystoreError as exc:
        raise KeyFileError(f"key file {path}: {exc}") from None
    genesis = document.get("genesis")
    return KeyRecord(key, None if genesis is None else bytes.fromhex(genesis))


def _load_document(path: Path) -> dict[str, Any]:
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except FileNotFoundError:
        raise KeyFileError(f"key file {path} does not exist") from None
    except UnicodeDecodeError:
        raise KeyFileError(f"key file {path} is not UTF-8 text") from None
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"key file {path} is accessible by group or others (mode {stat.S_IMODE(mode):o}); "
            f"run: chmod 600 {path}"
        )
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise KeyFileError(f"key file {path} is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise KeyFileError(f"key file {path} is not a JSON object")
    return document


def _read_plain(path: Path, document: dict[str, Any]) -> tuple[PrivateKey, bytes | None]:
    if document.get("type") != KEY_FILE_TYPE:
        raise KeyFileError(
            f"key file {path} is not a {KEY_FILE_TYPE} or {keystore.KEYSTORE_TYPE} document "
            f"(type {document.get('type')!r})"
        )
    try:
        seed = bytes.fromhex(document["seed"])
    except (KeyError, TypeError, ValueError):
        raise KeyFileError(f"key file {path} has no valid hex 'seed'") from None
    key = PrivateKey(seed) if len(seed) == SEED_SIZE else None
    if key is None:
        raise KeyFileError(f"key file {path}: seed is {len(seed)} bytes, expected {SEED_SIZE}")
    if document.get("public_key") not in (None, key.public_key.hex()):
        raise KeyFileError(f"key file {path}: public_key does not match the seed")
    genesis = document.get("genesis")
    if genesis is None:
        return key, None
    try:
        genesis_hash = bytes.fromhex(genesis) if isinstance(genesis, str) else b""
    except ValueError:
        genesis_hash = b""
    if len(genesis_hash) != 32:
        raise KeyFileError(f"key file {path}: 'genesis' is not 64 hex characters: {genesis!r}")
    return key, genesis_hash


def _replace_atomically(path: Path, content: bytes) -> None:
    """Write `content` to a 0600 temporary file beside `path`, fsync it, rename it over `path`
    and fsync the directory: readers see the old file or the new one, never a part. A replaced
    file keeps its owner where we may set it (`sudo sec keys encrypt` on a node's key must leave
    it readable by the node's user)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        owner: os.stat_result | None = path.stat()
    except FileNotFoundError:
        owner = None
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(descriptor, 0o600)
        if owner is not None and (owner.st_uid, owner.st_gid) != (os.geteuid(), os.getegid()):
            with contextlib.suppress(PermissionError):  # not root: the file is ours anyway
                os.fchown(descriptor, owner.st_uid, owner.st_gid)
        view = memoryview(content)
        while view:
            view = view[os.write(descriptor, view) :]
        os.fsync(descriptor)
    except BaseException:
        os.close(descriptor)
        os.unlink(temporary)
        raise
    os.close(descriptor)
    try:
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
