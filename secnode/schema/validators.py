"""Result model of sec_getValidatorsWithProof: the validators record proven under the head's
certified state root (docs/rpc.md; the server side is `secnode.runtime.rpc.validator_methods`,
the checking side `secnode.client.audit.audit_chain`)."""

from __future__ import annotations

from pydantic import Field

from secnode.schema.objects import BlockHeader, CommitCertificate, StateProof, Validator
from secnode.schema.values import Hash32, HexBytes, StrictModel


class PendingValidators(StrictModel):
    effective_height: int = Field(description="first block this set certifies")
    hash: Hash32 = Field(description="its validators_hash")
    validators: list[Validator]


class ValidatorsWithProofResult(StrictModel):
    height: int = Field(description="the head block whose state root the proof is under")
    block_hash: Hash32
    state_root: Hash32 = Field(description="the header's state_root")
    header: BlockHeader
    certificate: CommitCertificate | None = Field(
        description="the head's commit certificate; null only at height 0 (genesis)"
    )
    value: HexBytes = Field(description="the raw validators record (canonical encoding), hex")
    proof: StateProof = Field(description='membership proof of key "validators"')
    validators: list[Validator] = Field(description="current: the set that certified height")
    hash: Hash32 = Field(description="validators_hash of current (= header.validators_hash)")
    quorum: int = Field(description="signatures a certificate of this set needs: (n+f)//2+1")
    pending: list[PendingValidators] = Field(description="scheduled sets, by effective height")


class ValidatorChange(StrictModel):
    scheduled_height: int = Field(
        description="the block whose execution scheduled the change (sec_getCommit certifies "
        "its header)"
    )
    effective_height: int = Field(description="first block the scheduled set certifies")
    value: HexBytes = Field(
        description="the raw validators record after block scheduled_height, hex"
    )
    proof: StateProof = Field(
        description='membership proof of key "validators" under that block\'s state_root'
    )


class ValidatorChangesResult(StrictModel):
    changes: list[ValidatorChange] = Field(
        description="every validator change this node can prove, oldest first (at most 256)"
    )
    complete: bool = Field(
        description="false when the head's record knows of a change this list lacks (a store "
        "written before the index, or more than 256 changes): a client cannot trace the set "
        "from genesis with it"
    )
