"""RPC methods of the trust contract: sec_getAttestations, sec_getTrustScore, sec_getTrustEpoch.

Like every method they read only the committed view and the store, without an `await` in
between, so one answer is one committed height: records through the trust contract's queries
(contracts.trust, contracts.epochs) over `ledger.store.CommittedState`, proofs and the root
through `state.prove` and `state.committed_root`. The proof bundle of sec_getTrustScore is what
`sec audit trust` needs to check a score without trusting this node: the score and epoch
records with state proofs under the head's state root, the head header and its commit
certificate. sec_getTrustEpoch serves an epoch's inputs in aligned pages of a power-of-two
size; page k (leaves k*size .. ) is a node of the RFC 6962 tree over all inputs, so its root and
an inclusion proof of it in the tree of page roots
(`ledger.merkle.verify_inclusion(page_root, k, pages, proof, inputs_root)`) prove the page.

Leaf hashes of committed attestations are cached (attestations never change once committed), and
the page roots of the last few (count, page size) pairs, so paging through 10**6 inputs hashes
each leaf once.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.eigentrust import order_weight
from contracts.epochs import EpochRecord, StoredEpoch, read_epoch, read_score
from contracts.trust import (
    AttestationRole,
    LoggedAttestation,
    attestations_of,
    log_range,
    log_size,
)
from ledger.errors import StoreError
from ledger.keys import format_address, parse_address
from ledger.merkle import inclusion_proof, leaf_hash, merkle_root
from ledger.store import CommittedState
from secnode.runtime.rpc.errors import NOT_FOUND, invalid_params, not_found
from secnode.runtime.rpc.jsonrpc import Method
from secnode.runtime.rpc.view import NodeView
from secnode.schema import jsonview
from secnode.schema import models as m

MAX_ATTESTATION_PAGE: Final = 100
DEFAULT_PAGE_SIZE: Final = 1024
MIN_PAGE_SIZE: Final = 16
MAX_PAGE_SIZE: Final = 4096
PAGE_ROOT_CACHE: Final = 4


class _Params(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class _Result(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


# --- params ------------------------------------------------------------------------------------


class GetAttestationsParams(_Params):
    subject: m.AddressText | None = Field(None, description="list attestations about this account")
    attester: m.AddressText | None = Field(None, description="list attestations by this account")
    cursor: int = Field(0, ge=0, le=2**63 - 1, description="position to start at (next_cursor)")
    limit: int = Field(20, ge=1, le=MAX_ATTESTATION_PAGE, description="at most this many")

    @model_validator(mode="after")
    def _one_selector(self) -> GetAttestationsParams:
        if (self.subject is None) == (self.attester is None):
            raise ValueError("give exactly one of subject or attester")
        return self


class GetTrustScoreParams(_Params):
    address: m.AddressText


PageSize = Annotated[
    int,
    Field(
        ge=MIN_PAGE_SIZE,
        le=MAX_PAGE_SIZE,
        description=f"leaves per page: a power of two, {MIN_PAGE_SIZE}..{MAX_PAGE_SIZE}",
    ),
]


class GetTrustEpochParams(_Params):
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


class AttestationJson(_Result):
    sequence: int = Field(description="position in the attestation log (the Merkle leaf index)")
    order_id: str
    attester: str
    subject: str
    value: int = Field(description="+1 or -1")
    order_total: int = Field(description="fen")
    weight: int = Field(
        description="order_weight(order_total): digits of the whole yuan of this order alone; "
        "a pair is credited by its summed value per window (docs/protocol.md §17.4.1)"
    )
    completed_s: int = Field(description="block time the order completed or was resolved")
    height: int = Field(description="block that recorded the attestation")


class GetAttestationsResult(_Result):
    address: str
    role: str = Field(description="subject or attester")
    total: int = Field(description="all attestations with this address in this role")
    attestations: list[AttestationJson]
    next_cursor: int | None = Field(description="pass as cursor for the next page; null at end")
    height: int


class TrustParametersJson(_Result):
    version: int = Field(description="local-trust rule version (2: value-weighted, §17.4.1)")
    min_order_fen: int = Field(description="smallest order total whose attestation has weight")
    scale: int = Field(description="fixed-point one (10**9)")
    iterations: int
    alpha_ppm: int
    pair_cap: int
    pair_window_s: int
    pretrusted: list[str]


class EpochJson(_Result):
    epoch: int
    input_height: int = Field(description="the last block whose attestations are inputs")
    committed_height: int = Field(description="the block that wrote the scores")
    attestations: int = Field(description="number of inputs")
    accounts: int = Field(description="accounts scored (leaves of scores_root)")
    inputs_root: str
    scores_root: str
    parameters: TrustParametersJson


class TrustProofs(_Result):
    score: m.StateProof = Field(description="of trust:score:<address> (non-membership if absent)")
    epoch: m.StateProof = Field(description="of trust:epoch")


class TrustValues(_Result):
    score: str | None = Field(description="raw score record, hex; null if unscored")
    epoch: str = Field(description="raw epoch record, hex")


class TrustScoreResult(_Result):
    address: str
    scored: bool = Field(description="false: no record, the account's score is 0")
    score: int = Field(description="trust in units of 1/10**9 of the whole")
    positive: int = Field(description="+1 attestations about the account (beta count)")
    negative: int = Field(description="-1 attestations about the account (beta count)")
    epoch: EpochJson
    height: int = Field(description="committed height of the proofs")
    state_root: str
    block_hash: str
    header: m.BlockHeader
    certificate: m.CommitCertificate | None
    values: TrustValues
    proofs: TrustProofs


class PageProof(_Result):
    index: int
    size: int = Field(description="page size")
    pages: int = Field(description="number of pages of this epoch")
    hashes: list[str] = Field(description="inclusion path of the page root among page roots")


class TrustEpochResult(_Result):
    epoch: EpochJson
    value: str = Field(description="raw epoch record, hex")
    proof: m.StateProof = Field(description="of trust:epoch:<k> (8-byte k) under state_root")
    height: int
    state_root: str
    page: PageProof
    leaves: list[str] = Field(description="canonical leaf bytes, hex, in sequence order")
    attestations: list[AttestationJson] = Field(description="the leaves decoded ([] if not asked)")


# --- JSON views --------------------------------------------------------------------------------


def attestation_json(logged: LoggedAttestation) -> dict[str, Any]:
    record = logged.attestation
    return {
        "sequence": logged.sequence,
        "order_id": record.order_id.hex(),
        "attester": format_address(record.attester),
        "subject": format_address(record.subject),
        "value": record.value,
        "order_total": record.order_total,
        "weight": order_weight(record.order_total),
        "completed_s": record.completed_s,
        "height": record.height,
    }


def epoch_json(record: EpochRecord) -> dict[str, Any]:
    params = record.parameters
    return {
        "epoch": record.epoch,
        "input_height": record.input_height,
        "committed_height": record.committed_height,
        "attestations": record.attestations,
        "accounts": record.accounts,
        "inputs_root": record.inputs_root.hex(),
        "scores_root": record.scores_root.hex(),
        "parameters": {
            **params.to_wire(),
            "pretrusted": list(map(format_address, params.pretrusted)),
        },
    }


# --- methods -----------------------------------------------------------------------------------


class TrustMethods:
    """The trust methods bound to one node view, with the leaf-hash cache."""

    def __init__(self, view: NodeView) -> None:
        self.view = view
        self._leaf_hashes: list[bytes] = []
        self._page_roots: dict[tuple[int, int], list[bytes]] = {}
        self._hashing = threading.Lock()

    def _head(self) -> int:
        height = self.view.store.head_height()
        if height is None:
            raise StoreError("the store has no head block")
        return height

    def _committed(self) -> CommittedState:
        return CommittedState(self.view.state, self.view.store)

    def _epoch(self, epoch: int | None) -> StoredEpoch:
        stored = read_epoch(self._committed(), epoch)
        if stored is None:
            raise not_found("trust epoch", "latest" if epoch is None else str(epoch))
        return stored

    def _root_and_certificate(self) -> dict[str, Any]:
        height = self._head()
        root = self.view.state.committed_root()
        block = self.view.store.get_block(height)
        if block is None:
            raise StoreError(f"the store has no head block {height}")
        if block.header.state_root != root:
            raise StoreError(f"committed state root is not that of head block {height}")
        certificate = self.view.store.get_certificate(height)
        return {
            "height": height,
            "state_root": root.hex(),
            "block_hash": block.hash().hex(),
            "header": jsonview.header_json(block.header),
            "certificate": None if certificate is None else jsonview.certificate_json(certificate),
        }

    async def get_attestations(self, params: GetAttestationsParams) -> GetAttestationsResult:
        role: AttestationRole = "subject" if params.subject is not None else "attester"
        text = params.subject or params.attester or ""  # the model guarantees exactly one
        address = parse_address(text)
        page = attestations_of(
            self._committed(), address, role, start=params.cursor, limit=params.limit
        )
        return GetAttestationsResult.model_validate(
            {
                "address": format_address(address),
                "role": role,
                "total": page.total,
                "attestations": [attestation_json(logged) for logged in page.attestations],
                "next_cursor": page.next_position,
                "height": self._head(),
            }
        )

    async def get_trust_score(self, params: GetTrustScoreParams) -> TrustScoreResult:
        address = parse_address(params.address)
        state = self.view.state
        epoch = self._epoch(None)
        score = read_score(self._committed(), address)
        return TrustScoreResult.model_validate(
            {
                "address": format_address(address),
                "scored": score.raw is not None,
                "score": score.score,
                "positive": score.positive,
                "negative": score.negative,
                "epoch": epoch_json(epoch.record),
                **self._root_and_certificate(),
                "values": {
                    "score": None if score.raw is None else score.raw.hex(),
                    "epoch": epoch.raw.hex(),
                },
                "proofs": {
                    "score": jsonview.state_proof_json(state.prove(score.key)),
                    "epoch": jsonview.state_proof_json(state.prove(epoch.key)),
                },
            }
        )

    def _hashes_up_to(self, count: int) -> list[bytes]:
        hashes = self._leaf_hashes
        for logged in log_range(self._committed(), len(hashes), count):
            hashes.append(leaf_hash(logged.leaf))
        return hashes

    def _roots(self, count: int, size: int) -> list[bytes]:
        """Page roots of the first `count` leaves (run in a worker thread: it may hash 10**6
        leaves; committed leaves never change, so reading them off the loop is safe)."""
        with self._hashing:
            return self._roots_locked(count, size)

    def _roots_locked(self, count: int, size: int) -> list[bytes]:
        key = (count, size)
        roots = self._page_roots.get(key)
        if roots is None:
            hashes = self._hashes_up_to(count)
            roots = [
                merkle_root(hashes[start : min(start + size, count)])
                for start in range(0, count, size)
            ]
            if len(self._page_roots) >= PAGE_ROOT_CACHE:
                self._page_roots.pop(next(iter(self._page_roots)))
            self._page_roots[key] = roots
        return roots

    async def get_trust_epoch(self, params: GetTrustEpochParams) -> TrustEpochResult:
        number = self._epoch(None).record.epoch if params.epoch is None else params.epoch
        stored = self._epoch(number)
        epoch = stored.record
        if epoch.attestations > log_size(self._committed()):
            raise StoreError(f"epoch {number} has more inputs than the attestation log")
        size = params.page_size
        pages = max(1, -(-epoch.attestations // size))
        if params.page >= pages:
            raise invalid_params([("page", f"epoch {number} has {pages} pages of {size}")])
        roots = []
        if epoch.attestations:
            roots = await asyncio.to_thread(self._roots, epoch.attestations, size)
        # Everything below is read after the await, in one go: one committed height. The epoch
        # record and its leaves are immutable, so the roots computed above still hold.
        proof = inclusion_proof(roots, params.page) if roots else []
        start = params.page * size
        end = min(start + size, epoch.attestations)
        leaves = list(log_range(self._committed(), start, end))
        return TrustEpochResult.model_validate(
            {
                "epoch": epoch_json(epoch),
                "value": stored.raw.hex(),
                "proof": jsonview.state_proof_json(self.view.state.prove(stored.key)),
                "height": self._head(),
                "state_root": self.view.state.committed_root().hex(),
                "page": {
                    "index": params.page,
                    "size": size,
                    "pages": pages,
                    "hashes": [h.hex() for h in proof],
                },
                "leaves": [logged.leaf.hex() for logged in leaves],
                "attestations": [attestation_json(logged) for logged in leaves]
                if params.decoded
                else [],
            }
        )


DESCRIPTIONS: Final[dict[str, tuple[str, str]]] = {
    "sec_getAttestations": (
        "Attestations about or by an account, paginated.",
        "Exactly one of subject or attester. Attestations in the order they were recorded, "
        "from position cursor; next_cursor is null when the listing is complete. Each entry "
        "carries its sequence number (its leaf index in the attestation log) and its weight.",
    ),
    "sec_getTrustScore": (
        "An account's trust score with everything needed to verify it.",
        "Score (units of 1/10**9 of all trust), beta counts and the latest committed epoch, "
        "with state proofs of the score record (trust:score:<address>; non-membership means "
        "score 0) and of the epoch record (trust:epoch) under the head's state root, the head "
        "header and its commit certificate. `sec audit trust` checks all of it and recomputes "
        "the epoch. not_found until the first epoch is committed.",
    ),
    "sec_getTrustEpoch": (
        "A trust epoch: parameters, roots, and its inputs page by page with proofs.",
        "The epoch record (latest, or epoch k) with its state proof (trust:epoch:<k>), and page "
        "`page` of its inputs: the canonical leaf bytes and their decoded form. The page is an "
        "aligned subtree of the inputs' RFC 6962 tree; verify with ledger.merkle.verify_inclusion("
        "merkle_root(leaf hashes of the page), page, pages, hashes, inputs_root).",
    ),
}


def trust_method_table(view: NodeView) -> dict[str, Method]:
    """The trust methods by name (merged into the node's method table)."""
    impl = TrustMethods(view)
    specs: list[tuple[str, type[Any], type[Any], Any, tuple[int, ...]]] = [
        (
            "sec_getAttestations",
            GetAttestationsParams,
            GetAttestationsResult,
            impl.get_attestations,
            (),
        ),
        (
            "sec_getTrustScore",
            GetTrustScoreParams,
            TrustScoreResult,
            impl.get_trust_score,
            (NOT_FOUND.code,),
        ),
        (
            "sec_getTrustEpoch",
            GetTrustEpochParams,
            TrustEpochResult,
            impl.get_trust_epoch,
            (NOT_FOUND.code,),
        ),
    ]
    table = {}
    for name, params, result, call, errors in specs:
        summary, description = DESCRIPTIONS[name]
        table[name] = Method(name, summary, description, params, result, call, errors)
    return table
