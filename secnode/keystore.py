"""Encrypted key documents: an Ed25519 seed sealed with a passphrase (docs/protocol.md §4.4.2).

Theory of operation. A passphrase (Unicode NFC, UTF-8) and a random 16-byte salt go through
scrypt (memory-hard; n, r, p recorded in the document) to 64 bytes: the first 32 are the
ChaCha20-Poly1305 key, the last 32 give `check`, a hash that tells a wrong passphrase apart
from a file altered after it was written. The seed is sealed with a random 12-byte nonce and
the *header* as associated data: the canonical JSON of the whole document without
`crypto.ciphertext`. So every clear field — public key, address, genesis binding, KDF
parameters, nonce — is authenticated: change one byte and opening fails. The public key and
address stay in clear so keys can be listed without a passphrase; opening also checks that the
sealed seed derives that public key.

Pure functions over JSON-shaped dicts: no file I/O here (`secnode.keyfile` owns files). Errors
name the broken rule and never carry the passphrase or the seed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import unicodedata
from dataclasses import dataclass
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from ledger.keys import PUBLIC_KEY_SIZE, SEED_SIZE, PrivateKey, address_of, format_address

KEYSTORE_TYPE: Final = "sec-ed25519-keystore"
KEYSTORE_VERSION: Final = 1
KDF_NAME: Final = "scrypt"
CIPHER_NAME: Final = "chacha20-poly1305"
SALT_SIZE: Final = 16
NONCE_SIZE: Final = 12
TAG_SIZE: Final = 16
DERIVED_SIZE: Final = 64
"""scrypt output: 32 bytes of AEAD key, then 32 bytes hashed into `check`."""
CHECK_DOMAIN: Final = b"SEC/keystore/check/v1"

MAX_SCRYPT_MEMORY: Final = 1 << 30
"""A document may ask scrypt for at most 1 GiB (128 * n * r bytes): a hostile file cannot make
`sec keys show --verify` or a node start exhaust the machine."""
MAX_SCRYPT_P: Final = 16


class KeystoreError(Exception):
    """An encrypted key document that cannot be opened (the message names what was wrong)."""


class KeystoreFormatError(KeystoreError):
    """A field is missing, of the wrong type or outside its allowed values."""


class WrongPassphrase(KeystoreError):
    """The passphrase does not derive the key the document was sealed with."""


class KeystoreTampered(KeystoreError):
    """The passphrase is right but the header or ciphertext changed since the file was written,
    or the sealed seed does not derive the public key in clear."""


@dataclass(frozen=True, slots=True)
class ScryptParams:
    """scrypt's cost parameters (RFC 7914)."""

    n: int
    """CPU/memory cost, a power of two above 1; memory used is 128 * n * r bytes."""
    r: int
    """Block size."""
    p: int
    """Parallelisation."""

    def __post_init__(self) -> None:
        for name, value in (("n", self.n), ("r", self.r), ("p", self.p)):
            if type(value) is not int or value < 1:
                raise KeystoreFormatError(
                    f"scrypt {name} must be a positive integer, not {value!r}"
                )
        if self.n < 2 or self.n & (self.n - 1):
            raise KeystoreFormatError(f"scrypt n must be a power of two above 1, not {self.n}")
        if 128 * self.n * self.r > MAX_SCRYPT_MEMORY:
            raise KeystoreFormatError(
                f"scrypt n={self.n}, r={self.r} needs {128 * self.n * self.r >> 20} MiB, "
                f"above the {MAX_SCRYPT_MEMORY >> 20} MiB limit"
            )
        if self.p > MAX_SCRYPT_P:
            raise KeystoreFormatError(f"scrypt p={self.p} is above {MAX_SCRYPT_P}")


DEFAULT_SCRYPT: Final = ScryptParams(n=1 << 17, r=8, p=1)
"""For new files: 128 MiB, the parameters of geth's standard keystore (the unlock time on this
machine is printed by `sec keys new`; docs/operations.md "Encrypted key files")."""


@dataclass(frozen=True, slots=True)
class KeystoreHeader:
    """The clear part of an encrypted key document, readable without the passphrase."""

    public_key: bytes
    """Ed25519 public key (checked against the sealed seed when opened)."""
    genesis_hash: bytes | None
    """Genesis document hash of the network the key is for (the optional binding, §4.4)."""
    scrypt: ScryptParams
    """The KDF cost the passphrase was stretched with."""


def is_keystore(document: object) -> bool:
    """True if `document` claims to be an encrypted key document (of any version)."""
    return isinstance(document, dict) and document.get("type") == KEYSTORE_TYPE


def seal_key(
    key: PrivateKey,
    passphrase: str,
    *,
    genesis_hash: bytes | None = None,
    scrypt: ScryptParams = DEFAULT_SCRYPT,
) -> dict[str, Any]:
    """The encrypted document of `key` under `passphrase` (fresh random salt and nonce)."""
    if not passphrase:
        raise KeystoreFormatError("the passphrase is empty")
    salt, nonce = os.urandom(SALT_SIZE), os.urandom(NONCE_SIZE)
    derived = _derive(passphrase, salt, scrypt)
    document: dict[str, Any] = {
        "type": KEYSTORE_TYPE,
        "version": KEYSTORE_VERSION,
        "public_key": key.public_key.hex(),
        "address": format_address(key.address),
    }
    if genesis_hash is not None:
        document["genesis"] = genesis_hash.hex()
    document["crypto"] = {
        "kdf": KDF_NAME,
        "kdfparams": {"n": scrypt.n, "r": scrypt.r, "p": scrypt.p, "salt": salt.hex()},
        "cipher": CIPHER_NAME,
        "cipherparams": {"nonce": nonce.hex()},
        "check": _check_value(derived).hex(),
    }
    sealed = ChaCha20Poly1305(derived[:32]).encrypt(nonce, key.seed, header_bytes(document))
    document["crypto"]["ciphertext"] = sealed.hex()
    return document


def read_header(document: dict[str, Any]) -> KeystoreHeader:
    """Check the document's shape and clear fields (no passphrase needed)."""
    _expect(document.get("version") == KEYSTORE_VERSION, f"version is not {KEYSTORE_VERSION}")
    public_key = _hex_field(document, "public_key", PUBLIC_KEY_SIZE)
    if document.get("address") != format_address(address_of(public_key)):
        raise KeystoreFormatError("'address' is not the address of 'public_key'")
    genesis = None if document.get("genesis") is None else _hex_field(document, "genesis", 32)
    crypto = _object(document, "crypto")
    _expect(crypto.get("kdf") == KDF_NAME, f"crypto.kdf is not {KDF_NAME!r}")
    _expect(crypto.get("cipher") == CIPHER_NAME, f"crypto.cipher is not {CIPHER_NAME!r}")
    kdf = _object(crypto, "kdfparams", "crypto.")
    costs: dict[str, Any] = {name: kdf.get(name) for name in ("n", "r", "p")}
    scrypt = ScryptParams(**costs)  # checks types and bounds: a hostile file cannot ask 1 TiB
    _hex_field(kdf, "salt", SALT_SIZE, "crypto.kdfparams.")
    cipher = _object(crypto, "cipherparams", "crypto.")
    _hex_field(cipher, "nonce", NONCE_SIZE, "crypto.cipherparams.")
    _hex_field(crypto, "check", 32, "crypto.")
    _hex_field(crypto, "ciphertext", SEED_SIZE + TAG_SIZE, "crypto.")
    return KeystoreHeader(public_key, genesis, scrypt)


def open_key(document: dict[str, Any], passphrase: str) -> PrivateKey:
    """The sealed key: WrongPassphrase, KeystoreTampered or KeystoreFormatError otherwise."""
    header = read_header(document)
    crypto = document["crypto"]
    salt = bytes.fromhex(crypto["kdfparams"]["salt"])
    derived = _derive(passphrase, salt, header.scrypt)
    if not hmac.compare_digest(_check_value(derived), bytes.fromhex(crypto["check"])):
        raise WrongPassphrase("wrong passphrase")
    nonce = bytes.fromhex(crypto["cipherparams"]["nonce"])
    try:
        seed = ChaCha20Poly1305(derived[:32]).decrypt(
            nonce, bytes.fromhex(crypto["ciphertext"]), header_bytes(document)
        )
    except InvalidTag:
        raise KeystoreTampered(
            "the passphrase is right but the file was altered after it was written "
            "(a header field or the ciphertext does not match the authentication tag)"
        ) from None
    key = PrivateKey(seed)
    if key.public_key != header.public_key:  # sealed by someone who knew the passphrase
        raise KeystoreTampered("the sealed seed does not derive 'public_key'")
    return key


def header_bytes(document: dict[str, Any]) -> bytes:
    """The associated data: canonical JSON (sorted keys, no spaces, ASCII) of `document` without
    crypto.ciphertext. Any added, removed or changed field outside the ciphertext changes it."""
    header = dict(document)
    header["crypto"] = {k: v for k, v in document["crypto"].items() if k != "ciphertext"}
    return json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _derive(passphrase: str, salt: bytes, scrypt: ScryptParams) -> bytes:
    secret = unicodedata.normalize("NFC", passphrase).encode()
    kdf = Scrypt(salt=salt, length=DERIVED_SIZE, n=scrypt.n, r=scrypt.r, p=scrypt.p)
    return kdf.derive(secret)


def _check_value(derived: bytes) -> bytes:
    return hashlib.sha256(CHECK_DOMAIN + derived[32:]).digest()


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise KeystoreFormatError(message)


def _object(container: dict[str, Any], name: str, prefix: str = "") -> dict[str, Any]:
    value = container.get(name)
    if not isinstance(value, dict):
        raise KeystoreFormatError(f"'{prefix}{name}' is not an object")
    return value


def _hex_field(container: dict[str, Any], name: str, size: int, prefix: str = "") -> bytes:
    value = container.get(name)
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else None
    except ValueError:
        raw = None
    if raw is None or len(raw) != size:
        raise KeystoreFormatError(f"'{prefix}{name}' is not {2 * size} hex digits")
    return raw
