"""The validator set: who may sign consensus messages and commit certificates.

Invariants: members are unique by address, sorted by address (so index i means the same
validator on every node), each with one vote. n = len(members), f = (n - 1) // 3, and a quorum
is q = floor((n + f) / 2) + 1 signatures: 2f + 1 when n = 3f + 1, and in general the smallest q
with 2q - n >= f + 1, so any two quorums share an honest validator even when a validator update
leaves n != 3f + 1 (2f + 1 of 5 or 6 would not). A set with no members is invalid.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from ledger.encoding import encode
from ledger.errors import InvalidValidatorUpdate
from ledger.keys import PUBLIC_KEY_SIZE, Address, PublicKey, address_of


@dataclass(frozen=True, slots=True)
class Validator:
    """One consensus participant."""

    public_key: PublicKey
    """Its Ed25519 public key (32 bytes); signatures on votes and certificates verify with it."""

    @property
    def address(self) -> Address:
        return address_of(self.public_key)


@dataclass(frozen=True, slots=True)
class ValidatorSet:
    """An ordered, immutable set of validators."""

    members: tuple[Validator, ...]
    """Validators sorted by address, no duplicates."""

    _by_address: dict[bytes, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.members:
            raise InvalidValidatorUpdate("a validator set needs at least one member")
        for member in self.members:
            if len(member.public_key) != PUBLIC_KEY_SIZE:
                raise InvalidValidatorUpdate(
                    f"validator key is {len(member.public_key)} bytes, expected {PUBLIC_KEY_SIZE}"
                )
        addresses = [m.address for m in self.members]
        if addresses != sorted(addresses):
            raise InvalidValidatorUpdate("validators must be sorted by address")
        if len(set(addresses)) != len(addresses):
            raise InvalidValidatorUpdate("duplicate validator")
        object.__setattr__(self, "_by_address", {a: i for i, a in enumerate(addresses)})

    @classmethod
    def from_public_keys(cls, keys: Iterable[bytes]) -> ValidatorSet:
        """Build a set from public keys in any order (sorted here); duplicates are an error."""
        members = sorted((Validator(PublicKey(bytes(k))) for k in keys), key=lambda v: v.address)
        return cls(tuple(members))

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def max_faulty(self) -> int:
        """f: the most Byzantine validators the set tolerates."""
        return (len(self.members) - 1) // 3

    @property
    def quorum(self) -> int:
        """Signatures needed for a certificate: 2f + 1 if n = 3f + 1 (see the module docstring)."""
        return (len(self.members) + self.max_faulty) // 2 + 1

    def index_of(self, address: bytes) -> int | None:
        """Position of `address` in the set, or None if it is not a validator."""
        return self._by_address.get(bytes(address))

    def public_key_of(self, address: bytes) -> PublicKey | None:
        index = self._by_address.get(bytes(address))
        return None if index is None else self.members[index].public_key

    def __contains__(self, address: object) -> bool:
        return isinstance(address, bytes) and address in self._by_address

    def to_wire(self) -> list[bytes]:
        """Public keys in set order: the canonical encoded form."""
        return [bytes(m.public_key) for m in self.members]

    def hash(self) -> bytes:
        """SHA-256 over the canonical encoding of `to_wire()`; committed in every header."""
        return hashlib.sha256(b"SEC/validators/v1" + encode(self.to_wire())).digest()
