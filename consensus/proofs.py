"""Signature and proof checks, and the assembly of proofs from votes.

`Verifier` binds the chain id and the signature scheme. Each check raises the error named for
the broken rule and never changes anything. Single messages are verified once (the log
recognises duplicates before verifying); signatures inside proofs go through a bounded cache of
successful verifications, so a prepared proof carried by 2f+1 view-change messages is verified
once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from consensus.crypto import SignatureScheme, VerifiedCache
from consensus.errors import InvalidProof, InvalidSignature, NotAValidator
from consensus.messages import (
    Checkpoint,
    CheckpointProof,
    Prepare,
    PreparedProof,
    PrePrepare,
    Vote,
    checkpoint_signing_bytes,
)
from ledger.certificates import CommitCertificate, verify_certificate
from ledger.errors import InvalidCertificate
from ledger.keys import Address, format_address
from ledger.validators import ValidatorSet


class Signed(Protocol):
    @property
    def sender(self) -> Address: ...

    @property
    def signature(self) -> bytes: ...

    def signing_bytes(self, chain_id: str) -> bytes: ...


_ADDRESSES: dict[int, tuple[ValidatorSet, tuple[Address, ...]]] = {}


def member_addresses(validators: ValidatorSet) -> tuple[Address, ...]:
    """Addresses of the members, in set order (memoised per set object: derivation hashes)."""
    entry = _ADDRESSES.get(id(validators))
    if entry is None or entry[0] is not validators:
        if len(_ADDRESSES) >= 256:
            _ADDRESSES.clear()
        entry = (validators, tuple(member.address for member in validators.members))
        _ADDRESSES[id(validators)] = entry
    return entry[1]


def primary_of(validators: ValidatorSet, view: int) -> Address:
    """The primary of `view`: member number view mod n (round robin)."""
    addresses = member_addresses(validators)
    return addresses[view % len(addresses)]


_NAMES: dict[bytes, str] = {}


def short(address: bytes) -> str:
    """A readable validator name for error messages (memoised: bech32 is slow)."""
    name = _NAMES.get(address)
    if name is None:
        if len(_NAMES) >= 1024:
            _NAMES.clear()
        name = _NAMES[address] = format_address(address)[:16] if len(address) == 20 else "?"
    return name


class Verifier:
    """Signature checks bound to one chain and scheme."""

    __slots__ = ("cache", "chain_id", "scheme")

    def __init__(self, chain_id: str, scheme: SignatureScheme) -> None:
        self.chain_id = chain_id
        self.scheme = scheme
        self.cache = VerifiedCache()

    def public_key(self, validators: ValidatorSet, sender: bytes) -> bytes:
        key = validators.public_key_of(sender)
        if key is None:
            raise NotAValidator(f"{short(sender)} is not in the validator set")
        return key

    def check_message(self, validators: ValidatorSet, message: Signed) -> None:
        """Raise unless `message` is signed by its sender, a member of `validators`."""
        key = self.public_key(validators, message.sender)
        # Single messages are deduplicated by the log before this check, so no cache here.
        if not self.scheme.verify(key, message.signing_bytes(self.chain_id), message.signature):
            raise InvalidSignature(
                f"{type(message).__name__} signature of {short(message.sender)} does not verify"
            )

    def _check_votes(
        self,
        validators: ValidatorSet,
        votes: Iterable[Vote],
        message: bytes,
        needed: int,
        what: str,
        excluded: bytes | None = None,
    ) -> None:
        seen: set[bytes] = set()
        for vote in votes:
            if vote.sender in seen:
                raise InvalidProof(f"{what}: {short(vote.sender)} appears twice")
            if vote.sender == excluded:
                raise InvalidProof(f"{what}: the primary cannot vote PREPARE")
            seen.add(vote.sender)
            key = validators.public_key_of(vote.sender)
            if key is None:
                raise InvalidProof(f"{what}: {short(vote.sender)} is not a validator")
            if not self.cache.verify(self.scheme, key, message, vote.signature):
                raise InvalidProof(f"{what}: signature of {short(vote.sender)} does not verify")
        if len(seen) < needed:
            raise InvalidProof(f"{what}: {len(seen)} signatures, {needed} needed")

    def check_prepared_proof(self, validators: ValidatorSet, proof: PreparedProof) -> None:
        """Raise `InvalidProof` unless the primary and quorum - 1 distinct backups signed it."""
        what = f"prepared proof for seq {proof.seq} view {proof.view}"
        primary = primary_of(validators, proof.view)
        if proof.primary != primary:
            raise InvalidProof(f"{what}: {short(proof.primary)} is not the primary")
        key = self.public_key(validators, primary)
        signed = proof.pre_prepare_signing_bytes(self.chain_id)
        if not self.cache.verify(self.scheme, key, signed, proof.primary_signature):
            raise InvalidProof(f"{what}: pre-prepare signature does not verify")
        self._check_votes(
            validators,
            proof.prepares,
            proof.prepare_signing_bytes(self.chain_id),
            validators.quorum - 1,  # 2f backups when n = 3f + 1
            what,
            excluded=primary,
        )

    def check_checkpoint_proof(
        self, validators: ValidatorSet, proof: CheckpointProof, genesis_digest: bytes
    ) -> None:
        """Raise `InvalidProof` unless a quorum signed the checkpoint (genesis needs none)."""
        if proof.seq == 0:
            if proof.digest != genesis_digest or proof.votes:
                raise InvalidProof("checkpoint 0 must be the genesis block with no signatures")
            return
        self._check_votes(
            validators,
            proof.votes,
            checkpoint_signing_bytes(self.chain_id, proof.seq, proof.digest),
            validators.quorum,
            f"checkpoint proof for seq {proof.seq}",
        )

    def check_certificate(self, validators: ValidatorSet, certificate: CommitCertificate) -> None:
        """Raise `InvalidProof` unless a quorum of `validators` signed the certificate."""
        try:
            verify_certificate(certificate, self.chain_id, validators, verify=self.scheme.verify)
        except InvalidCertificate as exc:
            raise InvalidProof(f"certificate for height {certificate.height}: {exc}") from exc


def build_prepared_proof(
    pre_prepare: PrePrepare, prepares: Iterable[Prepare], needed: int
) -> PreparedProof:
    """A proof from the accepted pre-prepare and `needed` matching prepares (lowest senders)."""
    votes = sorted((Vote(p.sender, p.signature) for p in prepares), key=lambda v: v.sender)
    return PreparedProof(
        pre_prepare.view,
        pre_prepare.seq,
        pre_prepare.digest,
        pre_prepare.parent,
        pre_prepare.sender,
        pre_prepare.signature,
        tuple(votes[:needed]),
    )


def build_checkpoint_proof(
    seq: int, digest: bytes, checkpoints: Iterable[Checkpoint]
) -> CheckpointProof:
    votes = sorted((Vote(c.sender, c.signature) for c in checkpoints), key=lambda v: v.sender)
    return CheckpointProof(seq, digest, tuple(votes))
