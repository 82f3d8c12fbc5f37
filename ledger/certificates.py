"""Commit certificates: transferable proof that a quorum of validators committed a block.

A certificate for a block at `height` with header hash `block_hash` holds signatures of distinct
validators over `commit_signing_bytes(chain_id, height, block_hash)`. Replicas sign these bytes
in PBFT's CERTIFY round, only after the block is decided (committed-local), never earlier: the
bytes carry no view, and a signature given at "prepared" could end up on two different blocks
of one height across views (docs/consensus.md has the counterexample). So two conflicting
certificates for one height cannot both exist while at most f validators are faulty.

Invariant: `verify_certificate` accepts only if at least `quorum` distinct members of the
validator set signed; unknown signers, duplicates and bad signatures are rejected with a reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ledger.encoding import encode
from ledger.errors import InvalidCertificate, MalformedBlock
from ledger.hashing import HASH_SIZE
from ledger.keys import ADDRESS_SIZE, SIGNATURE_SIZE, Address, format_address, verify_signature
from ledger.validators import ValidatorSet

COMMIT_CERTIFICATE_DOMAIN: Final = b"SEC/commit/v1"
"""Prefix of `commit_signing_bytes`: what a CERTIFY signature and a certificate sign."""

SignatureCheck = Callable[[bytes, bytes, bytes], bool]
"""`(public_key, message, signature) -> bool`: True iff the signature verifies; never raises."""


def commit_signing_bytes(chain_id: str, height: int, block_hash: bytes) -> bytes:
    """The bytes a validator signs to commit `block_hash` at `height` on `chain_id`."""
    return COMMIT_CERTIFICATE_DOMAIN + encode([chain_id, height, block_hash])


@dataclass(frozen=True, slots=True)
class CommitSignature:
    """One validator's commit signature."""

    validator: Address
    """Address of the signing validator."""
    signature: bytes
    """64-byte Ed25519 signature over `commit_signing_bytes`."""


@dataclass(frozen=True, slots=True)
class CommitCertificate:
    """2f+1 commit signatures over one block's header hash."""

    height: int
    """Height of the certified block."""
    block_hash: bytes
    """Header hash of the certified block."""
    signatures: tuple[CommitSignature, ...]
    """Signatures sorted by validator address, one per validator."""

    def to_wire(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "block_hash": self.block_hash,
            "signatures": [[s.validator, s.signature] for s in self.signatures],
        }

    @classmethod
    def from_wire(cls, value: Any) -> CommitCertificate:
        """Parse the wire form; raise MalformedBlock naming the bad field."""
        if not isinstance(value, dict) or set(value) != {"height", "block_hash", "signatures"}:
            raise MalformedBlock("certificate must be a map of height, block_hash, signatures")
        height, block_hash, signatures = value["height"], value["block_hash"], value["signatures"]
        if not isinstance(height, int) or isinstance(height, bool) or height < 0:
            raise MalformedBlock(f"certificate height {height!r} is not a non-negative integer")
        if not isinstance(block_hash, bytes) or len(block_hash) != HASH_SIZE:
            raise MalformedBlock(f"certificate block_hash must be {HASH_SIZE} bytes")
        if not isinstance(signatures, list) or len(signatures) > 1024:
            raise MalformedBlock("certificate signatures must be a list of at most 1024")
        parsed = []
        for item in signatures:
            if (
                not isinstance(item, list)
                or len(item) != 2
                or not isinstance(item[0], bytes)
                or len(item[0]) != ADDRESS_SIZE
                or not isinstance(item[1], bytes)
                or len(item[1]) != SIGNATURE_SIZE
            ):
                raise MalformedBlock("each certificate signature is [20-byte address, 64 bytes]")
            parsed.append(CommitSignature(Address(item[0]), item[1]))
        return cls(height, block_hash, tuple(parsed))


def build_certificate(
    height: int, block_hash: bytes, signatures: Mapping[bytes, bytes]
) -> CommitCertificate:
    """A certificate from a map validator address -> signature (sorted for a canonical form)."""
    ordered = tuple(
        CommitSignature(Address(address), signatures[address]) for address in sorted(signatures)
    )
    return CommitCertificate(height, block_hash, ordered)


def verify_certificate(
    certificate: CommitCertificate,
    chain_id: str,
    validators: ValidatorSet,
    *,
    height: int | None = None,
    block_hash: bytes | None = None,
    verify: SignatureCheck = verify_signature,
) -> None:
    """Raise InvalidCertificate unless a quorum of `validators` signed this block.

    If `height` / `block_hash` are given, the certificate must be for exactly that block.
    `verify` checks one signature: Ed25519 (`ledger.keys.verify_signature`) everywhere but in
    the consensus simulator, which injects its fast stand-in and so checks the same rules.
    """
    if height is not None and certificate.height != height:
        raise InvalidCertificate(f"certificate is for height {certificate.height}, not {height}")
    if block_hash is not None and certificate.block_hash != block_hash:
        raise InvalidCertificate(
            f"certificate is for block {certificate.block_hash.hex()}, not {block_hash.hex()}"
        )
    message = commit_signing_bytes(chain_id, certificate.height, certificate.block_hash)
    seen: set[bytes] = set()
    for entry in certificate.signatures:
        # The address is spelled out only on failure: bech32m costs more than a fast `verify`.
        if entry.validator in seen:
            raise InvalidCertificate(f"validator {format_address(entry.validator)} signed twice")
        seen.add(entry.validator)
        public_key = validators.public_key_of(entry.validator)
        if public_key is None:
            raise InvalidCertificate(
                f"signer {format_address(entry.validator)} is not in the validator set"
            )
        if not verify(public_key, message, entry.signature):
            raise InvalidCertificate(
                f"signature of {format_address(entry.validator)} does not verify"
            )
    if len(seen) < validators.quorum:
        raise InvalidCertificate(
            f"certificate has {len(seen)} signatures, a quorum of {validators.quorum} "
            f"of {validators.size} validators is needed"
        )
