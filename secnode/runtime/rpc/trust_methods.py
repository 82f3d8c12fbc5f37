"""RPC methods of the trust contract: sec_getAttestations, sec_getTrustScore, sec_getTrustEpoch.

Like every method they read only the committed view and the store, without an `await` in between, so
one answer is one committed height: records through the trust contract's queries (contracts.trust,
contracts.epochs) over `ledger.store.CommittedState`, proofs and the root through `state.prove` and
`state.committed_root`. The proof bundle of sec_getTrustScore is what `sec audit trust` needs to
check a score without trusting this node: the score and epoch records with state proofs under the
head's state root, the head header and its commit certificate. sec_getTrustEpoch serves an epoch's
inputs in aligned pages of a power-of-two size; page k (leaves k*size .. ) is a node of the RFC 6962
tree over all inputs, so its root and an inclusion proof of it in the tree of page roots
(`ledger.merkle.verify_inclusion(page_root, k, pages, proof, inputs_root)`) prove the page.

The params and result models are the shared schema's (`secnode.schema.trust`); results are built
from the contract's records with their constructors (`EpochJson.of`, `AttestationJson.of`).

Leaf hashes of committed attestations are cached (attestations never change once committed), and the
page roots of the last few (count, page size) pairs, so paging through 10**6 inputs hashes each leaf
once."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any, Final

from contracts.epochs import StoredEpoch, read_epoch, read_score
from contracts.trust import AttestationRole, attestations_of, log_range, log_size
from ledger.errors import StoreError
from ledger.keys import parse_address
from ledger.merkle import inclusion_proof, leaf_hash, merkle_root
from ledger.store import CommittedState
from secnode.runtime.rpc.errors import NOT_FOUND, invalid_params, not_found
from secnode.runtime.rpc.jsonrpc import Method
from secnode.runtime.rpc.view import NodeView
from secnode.schema.objects import BlockHeader, CommitCertificate, StateProof
from secnode.schema.trust import (
    AttestationJson,
    EpochJson,
    GetAttestationsParams,
    GetAttestationsResult,
    GetTrustEpochParams,
    GetTrustScoreParams,
    PageProof,
    TrustEpochResult,
    TrustProofs,
    TrustScoreResult,
    TrustValues,
)

PAGE_ROOT_CACHE: Final = 4


# --- methods -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _CertifiedHead:
    """The head block's certified header and state root, for a proof bundle."""

    height: int
    """The head height, which the proofs are read at."""
    state_root: bytes
    """The committed state root: the head header's `state_root`."""
    block_hash: bytes
    """The head header's hash."""
    header: BlockHeader
    """The head header."""
    certificate: CommitCertificate | None
    """Its commit certificate (None only at genesis)."""


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

    def _certified_head(self) -> _CertifiedHead:
        height = self._head()
        root = self.view.state.committed_root()
        block = self.view.store.get_block(height)
        if block is None:
            raise StoreError(f"the store has no head block {height}")
        if block.header.state_root != root:
            raise StoreError(f"committed state root is not that of head block {height}")
        certificate = self.view.store.get_certificate(height)
        return _CertifiedHead(
            height=height,
            state_root=root,
            block_hash=block.hash(),
            header=BlockHeader.of(block.header),
            certificate=CommitCertificate.of_optional(certificate),
        )

    async def get_attestations(self, params: GetAttestationsParams) -> GetAttestationsResult:
        role: AttestationRole = "subject" if params.subject is not None else "attester"
        text = params.subject or params.attester or ""  # the model guarantees exactly one
        address = parse_address(text)
        page = attestations_of(
            self._committed(), address, role, start=params.cursor, limit=params.limit
        )
        return GetAttestationsResult(
            address=address,
            role=role,
            total=page.total,
            attestations=[
                AttestationJson.of(logged.sequence, logged.attestation)
                for logged in page.attestations
            ],
            next_cursor=page.next_position,
            height=self._head(),
        )

    async def get_trust_score(self, params: GetTrustScoreParams) -> TrustScoreResult:
        address = parse_address(params.address)
        state = self.view.state
        epoch = self._epoch(None)
        score = read_score(self._committed(), address)
        head = self._certified_head()
        return TrustScoreResult(
            address=address,
            scored=score.raw is not None,
            score=score.score,
            positive=score.positive,
            negative=score.negative,
            epoch=EpochJson.of(epoch.record),
            height=head.height,
            state_root=head.state_root,
            block_hash=head.block_hash,
            header=head.header,
            certificate=head.certificate,
            values=TrustValues(score=score.raw, epoch=epoch.raw),
            proofs=TrustProofs(
                score=StateProof.of(state.prove(score.key)),
                epoch=StateProof.of(state.prove(epoch.key)),
            ),
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
        return TrustEpochResult(
            epoch=EpochJson.of(epoch),
            value=stored.raw,
            proof=StateProof.of(self.view.state.prove(stored.key)),
            height=self._head(),
            state_root=self.view.state.committed_root(),
            page=PageProof(index=params.page, size=size, pages=pages, hashes=proof),
            leaves=[logged.leaf for logged in leaves],
            attestations=[
                AttestationJson.of(logged.sequence, logged.attestation) for logged in leaves
            ]
            if params.decoded
            else [],
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
