"""A fast deterministic stand-in for Ed25519, for simulator speed only.

A "signature" is BLAKE2b-512 of the message keyed by the public key, so anyone holding the public
key could forge it: it is sound only inside the simulator, where Byzantine replicas are written to
sign with their own keys and forgeries are modelled explicitly (random bytes). It is ~50x cheaper
than libsodium verification, which is what makes 10,000 scenarios feasible; a share of the
scenarios and the unit tests run with real Ed25519 (`consensus.crypto.ED25519`).
"""

from __future__ import annotations

import hashlib
import hmac

from ledger.keys import Address, address_of


class FastSigner:
    """A signer whose public key is derived from a label."""

    __slots__ = ("address", "public_key")

    def __init__(self, label: str) -> None:
        self.public_key = hashlib.sha256(b"SEC/sim-key/v1/" + label.encode()).digest()
        self.address: Address = address_of(self.public_key)

    def sign(self, message: bytes) -> bytes:
        return hashlib.blake2b(message, key=self.public_key, digest_size=64).digest()


class FastScheme:
    """Verification matching `FastSigner`."""

    __slots__ = ()

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        if len(public_key) != 32 or len(signature) != 64:
            return False
        expected = hashlib.blake2b(message, key=public_key, digest_size=64).digest()
        return hmac.compare_digest(expected, signature)


FAST = FastScheme()
