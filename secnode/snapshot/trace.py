"""Which validator set certifies a height, traced from the genesis through proven changes.

A header names its certifying set only by hash (`validators_hash`). Starting from the genesis
set alone, `ValidatorTrace.follow` accepts the proof of each validator change in height order
(docs/protocol.md §15.1): the block that scheduled it, certified by the set ruling its height,
and the "validators" record after it with a state proof under that block's state root; the
record's `pending` entries then rule from their effective heights. `certify` checks a block's
commit certificate against the set the trace gives for its height.

Invariant: the trace only ever learns a set from a record proven under a header that the set
ruling at that header's height certified, so a snapshot cannot bring in a set of its own.
Pure: no I/O; every refusal is a SnapshotError naming the height and what failed.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any

from ledger.blocks import BlockHeader
from ledger.certificates import CommitCertificate, verify_certificate
from ledger.encoding import decode
from ledger.errors import LedgerError
from ledger.state_tree import StateProof, verify_state_proof
from ledger.validator_state import VALIDATORS_KEY
from ledger.validators import ValidatorSet
from secnode.snapshot.format import SnapshotError


@dataclass
class ValidatorTrace:
    """The validator schedule learned so far: (first height, set), ascending."""

    chain_id: str
    """The chain whose certificates are checked."""
    schedule: list[tuple[int, ValidatorSet]] = field(default_factory=list)
    """Sets by the first height they certify; the genesis set from height 1."""

    @classmethod
    def from_genesis(cls, chain_id: str, validators: ValidatorSet) -> ValidatorTrace:
        return cls(chain_id, [(1, validators)])

    def set_at(self, height: int) -> ValidatorSet:
        """The set that certifies `height` as far as the trace knows."""
        index = bisect_right([first for first, _ in self.schedule], height) - 1
        return self.schedule[max(index, 0)][1]

    def certify(self, header: BlockHeader, certificate: CommitCertificate | None) -> None:
        """Raise SnapshotError unless `certificate` is a quorum of the traced set for the
        block of `header`, and the header names that set."""
        if header.chain_id != self.chain_id:
            raise SnapshotError(
                f"block {header.height} is of chain {header.chain_id!r}, not {self.chain_id!r}"
            )
        if certificate is None:
            raise SnapshotError(f"block {header.height} has no commit certificate")
        validators = self.set_at(header.height)
        if header.validators_hash != validators.hash():
            raise SnapshotError(
                f"block {header.height} names validator set {header.validators_hash.hex()[:16]}"
                f"..., but the set traced from the genesis is {validators.hash().hex()[:16]}..."
            )
        try:
            verify_certificate(
                certificate,
                self.chain_id,
                validators,
                height=header.height,
                block_hash=header.hash(),
            )
        except LedgerError as exc:
            raise SnapshotError(f"block {header.height}'s commit certificate: {exc}") from None

    def follow(
        self, header: BlockHeader, certificate: CommitCertificate | None, change_row: bytes
    ) -> None:
        """Learn the changes scheduled by the block of `header` from its change row (the
        `ledger.validator_changes` row: [height, effective heights, record, proof])."""
        self.certify(header, certificate)
        try:
            height, _, record, proof_wire = decode(change_row)
            proof = StateProof.from_wire(proof_wire)
            if height != header.height:
                raise SnapshotError(
                    f"the validator change row of height {height} comes with block {header.height}"
                )
            verify_state_proof(header.state_root, VALIDATORS_KEY, record, proof)
            pending = _pending(decode(record))
        except (LedgerError, TypeError, ValueError) as exc:
            raise SnapshotError(
                f"the validator change proof of block {header.height}: {exc}"
            ) from None
        known = {first for first, _ in self.schedule}
        for effective, validators in pending:
            if effective not in known:
                self.schedule.append((effective, validators))
        self.schedule.sort(key=lambda entry: entry[0])


def _pending(record: Any) -> list[tuple[int, ValidatorSet]]:
    if not isinstance(record, dict) or not isinstance(record.get("pending"), list):
        raise ValueError("the validators record has no pending list")
    return [(int(h), ValidatorSet.from_public_keys(keys)) for h, keys in record["pending"]]
