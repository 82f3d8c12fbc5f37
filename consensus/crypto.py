"""The signature scheme the core uses, injectable so the simulator can run thousands of seeds fast.

Production uses `ED25519`: libsodium verification (`ledger.keys.verify_signature`). A scheme
only checks single signatures: commit certificates are always checked by the ledger's own
`verify_certificate` with the scheme's `verify` injected, so a certificate the core accepts is
exactly one an auditor accepts, and the simulator's fast scheme cannot drift from those rules.
A signer is anything with an `address` and `sign(bytes) -> bytes`; `ledger.keys.Signer`
qualifies.

`VerifiedCache` remembers (public key, message, signature) triples that verified, bounded in
size, so a prepared proof carried by several view-change messages costs one verification.
"""

from __future__ import annotations

from typing import Protocol

from ledger.keys import Address, verify_signature


class MessageSigner(Protocol):
    """A validator's signing key."""

    @property
    def address(self) -> Address: ...

    def sign(self, message: bytes) -> bytes: ...


class SignatureScheme(Protocol):
    """Signature verification (also what `ledger.certificates.verify_certificate` is given)."""

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        """True iff `signature` is `public_key`'s signature of `message`; never raises."""
        ...


class Ed25519Scheme:
    """Real Ed25519 (libsodium)."""

    __slots__ = ()

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        return verify_signature(public_key, message, signature)


ED25519 = Ed25519Scheme()
"""The production scheme."""


class VerifiedCache:
    """A bounded set of signature checks that succeeded (oldest forgotten first)."""

    __slots__ = ("_capacity", "_entries")

    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._entries: dict[tuple[bytes, bytes, bytes], None] = {}

    def verify(
        self, scheme: SignatureScheme, public_key: bytes, message: bytes, signature: bytes
    ) -> bool:
        key = (public_key, signature, message)
        if key in self._entries:
            return True
        if not scheme.verify(public_key, message, signature):
            return False
        if len(self._entries) >= self._capacity:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = None
        return True

    def __len__(self) -> int:
        return len(self._entries)
