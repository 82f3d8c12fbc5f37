"""Parameter and result models of the trust contract's RPC methods: sec_getAttestations,
sec_getTrustScore and sec_getTrustEpoch (docs/rpc.md), with constructors from the contract's
records. The server builds its answers with them; `sec query trust|attestations` and the
auditor (`secnode.client.audit`) parse the answers with them.
"""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import Field, model_validator

from contracts.eigentrust import (
    RULE_VERSION,
    SCALE,
    Attestation,
    TrustParameters,
    order_weight,
)
from contracts.epochs import EpochRecord
from secnode.schema.models import AddressText
from secnode.schema.objects import BlockHeader, CommitCertificate, StateProof
from secnode.schema.values import AddressBytes, Hash32, HexBytes, StrictModel

MAX_ATTESTATION_PAGE: Final = 100
DEFAULT_PAGE_SIZE: Final = 1024
MIN_PAGE_SIZE: Final = 16
MAX_PAGE_SIZE: Final = 4096


# --- params ------------------------------------------------------------------------------------


class GetAttestationsParams(StrictModel):
    subject: AddressText | None = Field(None, description="list attestations about this account")
    attester: AddressText | None = Field(None, description="list attestations by this account")
    cursor: int = Field(0, ge=0, le=2**63 - 1, description="position to start at (next_cursor)")
    limit: int = Field(20, ge=1, le=MAX_ATTESTATION_PAGE, description="at most this many")

    @model_validator(mode="after")
    def _one_selector(self) -> GetAttestationsParams:
        if (self.subject is None) == (self.attester is None):
            raise ValueError("give exactly one of subject or attester")
        return self


class GetTrustScoreParams(StrictModel):
    address: AddressText


PageSize = Annotated[
    int,
    Field(
        ge=MIN_PAGE_SIZE,
        le=MAX_PAGE_SIZE,
        description=f"leaves per page: a power of two, {MIN_PAGE_SIZE}..{MAX_PAGE_SIZE}",
    ),
]


class GetTrustEpochParams(StrictModel):
    epoch: int | None = Field(None, ge=1, le=2**63 - 1, description="default: the latest")
    page: int = Field(0, ge=0, le=2**63 - 1, description="page of the inputs to include")
    page_size: PageSize = DEFAULT_PAGE_SIZE
    decoded: bool = Field(True, description="also return the page's attestations decoded")

    @model_validator(mode="after")
    def _power_of_two(self) -> GetTrustEpochParams:
        if self.page_size & (self.page_size - 1):
            raise ValueError(f"page_size {self.page_size} is not a power of two")
        return self


# --- results -----------------------------------------------------------------------------------


class AttestationJson(StrictModel):
    sequence: int = Field(description="position in the attestation log (the Merkle leaf index)")
    order_id: Hash32
    attester: AddressBytes
    subject: AddressBytes
    value: int = Field(description="+1 or -1")
    order_total: int = Field(description="fen")
    weight: int = Field(
        description="order_weight(order_total): digits of the whole yuan of this order alone; "
        "a pair is credited by its summed value per window (docs/protocol.md §17.4.1)"
    )
    completed_s: int = Field(description="block time the order completed or was resolved")
    height: int = Field(description="block that recorded the attestation")

    @classmethod
    def of(cls, sequence: int, record: Attestation) -> AttestationJson:
        """Attestation number `sequence` of the log, with its weight."""
        return cls(
            sequence=sequence,
            order_id=record.order_id,
            attester=record.attester,
            subject=record.subject,
            value=record.value,
            order_total=record.order_total,
            weight=order_weight(record.order_total),
            completed_s=record.completed_s,
            height=record.height,
        )


class GetAttestationsResult(StrictModel):
    address: AddressBytes
    role: str = Field(description="subject or attester")
    total: int = Field(description="all attestations with this address in this role")
    attestations: list[AttestationJson]
    next_cursor: int | None = Field(description="pass as cursor for the next page; null at end")
    height: int


class TrustParametersJson(StrictModel):
    version: int = Field(description="local-trust rule version (2: value-weighted, §17.4.1)")
    min_order_fen: int = Field(description="smallest order total whose attestation has weight")
    scale: int = Field(description="fixed-point one (10**9)")
    iterations: int
    alpha_ppm: int
    pair_cap: int
    pair_window_s: int
    pretrusted: list[AddressBytes]

    @classmethod
    def of(cls, parameters: TrustParameters) -> TrustParametersJson:
        """The parameters as committed in the epoch record (docs/protocol.md §17.3)."""
        return cls(
            version=RULE_VERSION,
            min_order_fen=parameters.min_order_fen,
            scale=SCALE,
            iterations=parameters.iterations,
            alpha_ppm=parameters.alpha_ppm,
            pair_cap=parameters.pair_cap,
            pair_window_s=parameters.pair_window_s,
            pretrusted=list(parameters.pretrusted),
        )


class EpochJson(StrictModel):
    epoch: int
    input_height: int = Field(description="the last block whose attestations are inputs")
    committed_height: int = Field(description="the block that wrote the scores")
    attestations: int = Field(description="number of inputs")
    accounts: int = Field(description="accounts scored (leaves of scores_root)")
    inputs_root: Hash32
    scores_root: Hash32
    parameters: TrustParametersJson

    @classmethod
    def of(cls, record: EpochRecord) -> EpochJson:
        return cls(
            epoch=record.epoch,
            input_height=record.input_height,
            committed_height=record.committed_height,
            attestations=record.attestations,
            accounts=record.accounts,
            inputs_root=record.inputs_root,
            scores_root=record.scores_root,
            parameters=TrustParametersJson.of(record.parameters),
        )


class TrustProofs(StrictModel):
    score: StateProof = Field(description="of trust:score:<address> (non-membership if absent)")
    epoch: StateProof = Field(description="of trust:epoch")


class TrustValues(StrictModel):
    score: HexBytes | None = Field(description="raw score record, hex; null if unscored")
    epoch: HexBytes = Field(description="raw epoch record, hex")


class TrustScoreResult(StrictModel):
    address: AddressBytes
    scored: bool = Field(description="false: no record, the account's score is 0")
    score: int = Field(description="trust in units of 1/10**9 of the whole")
    positive: int = Field(description="+1 attestations about the account (beta count)")
    negative: int = Field(description="-1 attestations about the account (beta count)")
    epoch: EpochJson
    height: int = Field(description="committed height of the proofs")
    state_root: Hash32
    block_hash: Hash32
    header: BlockHeader
    certificate: CommitCertificate | None
    values: TrustValues
    proofs: TrustProofs


class PageProof(StrictModel):
    index: int
    size: int = Field(description="page size")
    pages: int = Field(description="number of pages of this epoch")
    hashes: list[Hash32] = Field(description="inclusion path of the page root among page roots")


class TrustEpochResult(StrictModel):
    epoch: EpochJson
    value: HexBytes = Field(description="raw epoch record, hex")
    proof: StateProof = Field(description="of trust:epoch:<k> (8-byte k) under state_root")
    height: int
    state_root: Hash32
    page: PageProof
    leaves: list[HexBytes] = Field(description="canonical leaf bytes, hex, in sequence order")
    attestations: list[AttestationJson] = Field(description="the leaves decoded ([] if not asked)")
