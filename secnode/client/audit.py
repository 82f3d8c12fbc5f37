"""The auditor: verify a trust score, or a whole chain, without trusting the node asked.

Everything is checked against the genesis document the auditor holds (docs/protocol.md §15,
§17.5). Each check has a name; the first that fails raises `AuditFailure(check, detail)`.

`audit_trust(node, genesis, address)`:
  header       the bundle's header hashes to its block hash, is for this chain and commits to
               the state root the proofs are under;
  certificates every block 1..H has a certificate of a quorum of its validator set and links to
               its parent by prev_hash, from the genesis block the auditor computes itself.
               Validator changes are followed as follows: while every header names the
               genesis set (validators_hash) each certificate is checked against it; if a
               header names another set, the chain is replayed from genesis (`replay_chain`),
               which tracks the set through execution. (A set that never changes is the common
               case and costs one certificate check per block.)
  epoch proof  the epoch record's state proof under the certified state root;
  score proof  the score record's state proof (membership, or non-membership: score 0);
  answer       the reported numbers are those of the proven records;
  parameters   the epoch's pre-trusted set is the genesis one;
  inputs       every page of the epoch's inputs proves against the inputs root;
  recompute    the epoch recomputed from the inputs has the scores root bit for bit, and the
               account's recomputed record is the proven one.

`replay_chain(node, genesis, up_to)`: every block from 1: its certificate (checked against the
validator set the replayed state says certifies it), its transactions (raw bytes, whose RFC
6962 root must be the header's tx_root), then execution from the genesis state, which checks
receipts_root, state_root and validators_hash. Reports the first divergence.

`audit_chain(node, genesis, up_to)`: `replay_chain`, then `validators`: the node's
sec_getValidatorsWithProof answer (replaying on to its height if the node moved on) must be a
block the replay certified, its record must prove under that block's state root, and it must be
the replayed state's record byte for byte.

The freshness of an answer (not older than what this auditor verified before, `--max-age`) is
checked by the caller through `on_header` (secnode.client.audit_freshness).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from contracts import build_executor
from contracts.eigentrust import Attestation, scores_root
from contracts.eigentrust_numpy import epoch_scores
from contracts.epochs import (
    EPOCH_KEY,
    EpochRecord,
    parse_epoch_record,
    parse_score_record,
    score_key,
)
from ledger.blocks import Block, BlockHeader
from ledger.certificates import CommitCertificate, verify_certificate
from ledger.chain import execute_block
from ledger.encoding import decode
from ledger.errors import LedgerError
from ledger.genesis import Genesis, genesis_block, genesis_state
from ledger.keys import format_address
from ledger.merkle import EMPTY_ROOT, leaf_hash, merkle_root, verify_inclusion
from ledger.state import State
from ledger.state_tree import verify_state_proof
from ledger.transactions import SignedTransaction
from ledger.validator_state import VALIDATORS_KEY, current_validators
from ledger.validators import ValidatorSet
from secnode.client.rpc import MalformedAnswer, Params, ResultT
from secnode.schema.models import BlockResult, CommitResult, TransactionResult
from secnode.schema.trust import TrustEpochResult, TrustScoreResult
from secnode.schema.validators import ValidatorsWithProofResult

PAGE_SIZE = 4096


class AuditedNode(Protocol):
    """What the auditor needs of a node: JSON-RPC calls whose answers are parsed into the
    shared schema's result models (secnode.client.rpc.RpcClient)."""

    def call_as(self, method: str, params: Params, model: type[ResultT]) -> ResultT: ...


class AuditFailure(Exception):
    """A check failed: `check` names it, the message says what was wrong."""

    def __init__(self, check: str, detail: str) -> None:
        super().__init__(f"{check}: {detail}")
        self.check = check
        self.detail = detail


Report = Callable[[str, str], None]
"""Called with (check, what was verified) after each check that passed."""
Progress = Callable[[int, int], None]
"""Called with (height done, target height) while walking the chain."""


def _quiet(check: str, detail: str) -> None:
    return None


def _no_progress(done: int, total: int) -> None:
    return None


@dataclass
class _Check:
    """Turns a ledger error, a malformed answer or a malformed record inside a `with` block
    into AuditFailure(check)."""

    name: str

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, trace: object) -> None:
        if exc is None or isinstance(exc, AuditFailure):
            return
        if isinstance(exc, LedgerError | MalformedAnswer | ValueError):
            raise AuditFailure(self.name, f"{type(exc).__name__}: {exc}") from exc


# --- untrusted records -------------------------------------------------------------------------


def attestation_from_leaf(leaf: bytes) -> Attestation:
    """An attestation from untrusted leaf bytes: canonical decoding, every field checked."""
    value = decode(leaf)
    if not isinstance(value, list) or len(value) != 7:
        raise ValueError("an attestation leaf is a 7-item array")
    order_id, attester, subject, sign, total, completed_s, height = value
    sizes = ((order_id, 32), (attester, 20), (subject, 20))
    if not all(isinstance(v, bytes) and len(v) == n for v, n in sizes):
        raise ValueError("attestation order_id/attester/subject have the wrong size")
    counts = (total, completed_s, height)
    if (
        sign not in (1, -1)
        or isinstance(sign, bool)
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts)
    ):
        raise ValueError("attestation value must be +1 or -1 and the counts non-negative")
    return Attestation(order_id, attester, subject, sign, total, completed_s, height)


# --- the certified chain ---------------------------------------------------------------------


def _genesis_header(genesis: Genesis) -> tuple[State, BlockHeader]:
    state = genesis_state(genesis)
    header = genesis_block(genesis, state.compute_root()).header
    state.commit_block()
    return state, header


def _commit(node: AuditedNode, height: int) -> tuple[BlockHeader, CommitCertificate | None]:
    with _Check("certificates"):
        answer = node.call_as("sec_getCommit", {"height": height}, CommitResult)
        certificate = None if answer.certificate is None else answer.certificate.to_certificate()
        return answer.header.to_header(), certificate


def _check_link(header: BlockHeader, parent: BlockHeader, genesis: Genesis) -> None:
    if header.chain_id != genesis.chain_id:
        raise AuditFailure("certificates", f"block {header.height} is for chain {header.chain_id}")
    if header.height != parent.height + 1 or header.prev_hash != parent.hash():
        raise AuditFailure(
            "certificates", f"block {header.height} does not link to block {parent.height}"
        )


def _check_certificate(
    header: BlockHeader, certificate: CommitCertificate | None, validators: ValidatorSet, chain: str
) -> None:
    if certificate is None:
        raise AuditFailure("certificates", f"block {header.height} has no commit certificate")
    with _Check("certificates"):
        verify_certificate(
            certificate, chain, validators, height=header.height, block_hash=header.hash()
        )


def certified_headers(
    node: AuditedNode, genesis: Genesis, up_to: int, progress: Progress = _no_progress
) -> tuple[BlockHeader, bool]:
    """The certified header at `up_to` and whether the chain had to be replayed (the validator
    set changed; see the module docstring); AuditFailure otherwise."""
    _, parent = _genesis_header(genesis)
    served, _ = _commit(node, 0)
    if served.hash() != parent.hash():
        raise AuditFailure("certificates", "the node's genesis block is not this genesis")
    validators = genesis.validator_set()
    for height in range(1, up_to + 1):
        header, certificate = _commit(node, height)
        _check_link(header, parent, genesis)
        if header.validators_hash != validators.hash():
            return replay_chain(node, genesis, up_to, progress), True
        _check_certificate(header, certificate, validators, genesis.chain_id)
        parent = header
        progress(height, up_to)
    return parent, False


def _transactions(node: AuditedNode, height: int) -> tuple[SignedTransaction, ...]:
    with _Check("transactions"):
        block = node.call_as("sec_getBlock", {"height": height}, BlockResult)
        transactions = []
        for tx_hash in block.tx_hashes:
            answer = node.call_as("sec_getTransaction", {"hash": tx_hash.hex()}, TransactionResult)
            tx = answer.to_transaction()
            if tx.hash != tx_hash:
                raise AuditFailure(
                    "transactions", f"block {height}: {tx_hash.hex()} has other bytes"
                )
            transactions.append(tx)
        return tuple(transactions)


class _Replay:
    """The replayed chain so far: the state after `parent`, which it has verified."""

    def __init__(self, node: AuditedNode, genesis: Genesis) -> None:
        self.node = node
        self.genesis = genesis
        self.executor = build_executor(genesis.chain_id, genesis.document_hash())
        self.state, self.parent = _genesis_header(genesis)
        served, _ = _commit(node, 0)
        if served.hash() != self.parent.hash():
            raise AuditFailure("genesis", "the node's genesis block is not this genesis")

    def advance(self, up_to: int, progress: Progress) -> BlockHeader:
        """Verify and re-execute the blocks after `parent` up to `up_to`."""
        state, genesis = self.state, self.genesis
        for height in range(self.parent.height + 1, up_to + 1):
            header, certificate = _commit(self.node, height)
            _check_link(header, self.parent, genesis)
            block = Block(header, _transactions(self.node, height))
            try:
                execute_block(self.executor, state, self.parent, block)
            except LedgerError as exc:
                raise AuditFailure("execution", f"block {height}: {exc}") from exc
            _check_certificate(header, certificate, current_validators(state), genesis.chain_id)
            state.commit_block()
            self.parent = header
            progress(height, up_to)
        return self.parent


def replay_chain(
    node: AuditedNode, genesis: Genesis, up_to: int, progress: Progress = _no_progress
) -> BlockHeader:
    """Verify and re-execute blocks 1..up_to; return the header at up_to."""
    return _Replay(node, genesis).advance(up_to, progress)


MAX_CATCH_UP_BLOCKS = 10_000
"""How far past the replayed height a validators answer may be before the audit gives up."""


def audit_chain(
    node: AuditedNode,
    genesis: Genesis,
    up_to: int,
    progress: Progress = _no_progress,
    report: Report = _quiet,
    *,
    check_validators: bool = True,
) -> BlockHeader:
    """`replay_chain` to `up_to`, then the `validators` check (module docstring); return the
    newest header verified (at `up_to`, or at the validators answer's height if later).
    Without `check_validators` (a height pinned below the head: proofs exist only at the head)
    the replay alone."""
    replay = _Replay(node, genesis)
    header = replay.advance(up_to, progress)
    report("replay", f"blocks 1..{up_to}: certificates, transaction roots, state roots")
    if not check_validators:
        return header
    with _Check("validators"):
        answer = node.call_as("sec_getValidatorsWithProof", {}, ValidatorsWithProofResult)
        served = answer.header.to_header()
        value = answer.value
        proof = answer.proof.to_proof()
    if served.height < up_to:
        raise AuditFailure(
            "validators", f"the node answered at height {served.height}, below {up_to}"
        )
    if served.height - up_to > MAX_CATCH_UP_BLOCKS:
        raise AuditFailure(
            "validators", f"the node answered at height {served.height}, far past {up_to}"
        )
    header = replay.advance(served.height, progress)
    if served.hash() != header.hash():
        raise AuditFailure(
            "validators", f"the proof's block {served.height} is not the certified one"
        )
    with _Check("validators"):
        verify_state_proof(header.state_root, VALIDATORS_KEY, value, proof)
    if value != replay.state.get(VALIDATORS_KEY):
        raise AuditFailure(
            "validators", f"the proven record at height {served.height} is not the replayed one"
        )
    report(
        "validators",
        f"record proven under the state root of block {served.height}, equal to the replay",
    )
    return header


# --- trust ---------------------------------------------------------------------------------


def _inputs(node: AuditedNode, epoch: EpochRecord, epoch_raw: bytes) -> list[Attestation]:
    records: list[Attestation] = []
    pages = max(1, -(-epoch.attestations // PAGE_SIZE))
    for page in range(pages):
        with _Check("inputs"):
            answer = node.call_as(
                "sec_getTrustEpoch",
                {"epoch": epoch.epoch, "page": page, "page_size": PAGE_SIZE, "decoded": False},
                TrustEpochResult,
            )
            if answer.value != epoch_raw:
                raise AuditFailure("inputs", f"page {page} is of another epoch record")
            leaves = answer.leaves
            expected = min(PAGE_SIZE, epoch.attestations - page * PAGE_SIZE)
            if len(leaves) != expected:
                raise AuditFailure(
                    "inputs", f"page {page} has {len(leaves)} leaves, not {expected}"
                )
            if not epoch.attestations and epoch.inputs_root != EMPTY_ROOT:
                raise AuditFailure("inputs", "an epoch without inputs must have the empty root")
            if epoch.attestations:
                verify_inclusion(
                    merkle_root([leaf_hash(leaf) for leaf in leaves]),
                    page,
                    pages,
                    answer.page.hashes,
                    epoch.inputs_root,
                )
            records.extend(attestation_from_leaf(leaf) for leaf in leaves)
    return records


def audit_trust(
    node: AuditedNode,
    genesis: Genesis,
    address: bytes,
    report: Report = _quiet,
    progress: Progress = _no_progress,
    on_header: Callable[[BlockHeader], None] | None = None,
) -> tuple[int, int, int]:
    """Verify `address`'s trust score as served by `node`; (score, positive, negative).
    `on_header` sees the answer's header before anything costly is checked (freshness)."""
    name = format_address(address)
    with _Check("answer"):
        bundle = node.call_as("sec_getTrustScore", {"address": name}, TrustScoreResult)
    height, state_root = bundle.height, bundle.state_root
    score_raw, epoch_raw = bundle.values.score, bundle.values.epoch
    with _Check("header"):
        header = bundle.header.to_header()
        if header.hash() != bundle.block_hash or header.height != height:
            raise AuditFailure("header", "the header does not hash to the block hash given")
        if header.chain_id != genesis.chain_id:
            raise AuditFailure("header", f"the header is for chain {header.chain_id}")
        if header.state_root != state_root:
            raise AuditFailure("header", "the proofs' state root is not the header's")
    if on_header is not None:
        on_header(header)
    report("header", f"block {height} {bundle.block_hash.hex()}")
    certified, replayed = certified_headers(node, genesis, height, progress)
    if certified.hash() != header.hash():
        raise AuditFailure("certificates", f"the certified block {height} is not the bundle's")
    if bundle.certificate is None:
        raise AuditFailure("certificates", f"the bundle has no certificate of block {height}")
    with _Check("certificates"):
        served = bundle.certificate.to_certificate()
        if served.block_hash != header.hash():
            raise AuditFailure("certificates", "the bundle's certificate is for another block")
    if replayed:
        report("certificates", f"blocks 1..{height} replayed from genesis (validator change)")
    else:
        report("certificates", f"blocks 1..{height} certified by the genesis validator set")
    with _Check("epoch proof"):
        verify_state_proof(state_root, EPOCH_KEY, epoch_raw, bundle.proofs.epoch.to_proof())
        epoch = parse_epoch_record(epoch_raw)
    report("epoch proof", f"epoch {epoch.epoch} under state root {state_root.hex()}")
    with _Check("score proof"):
        verify_state_proof(
            state_root,
            score_key(address),
            score_raw,
            bundle.proofs.score.to_proof(),
        )
        proven = (0, 0, 0) if score_raw is None else parse_score_record(score_raw)
    report("score proof", "membership" if score_raw is not None else "non-membership (score 0)")
    answered = (bundle.score, bundle.positive, bundle.negative)
    if answered != proven or bundle.epoch.epoch != epoch.epoch:
        raise AuditFailure("answer", f"reported {answered}, the proven record says {proven}")
    pretrusted = tuple(sorted(genesis.account_address(n) for n in genesis.pretrusted))
    if epoch.parameters.pretrusted != pretrusted:
        raise AuditFailure("parameters", "the epoch's pre-trusted set is not the genesis one")
    report("parameters", f"{epoch.parameters.iterations} iterations, pre-trusted from genesis")
    inputs = _inputs(node, epoch, epoch_raw)
    report("inputs", f"{len(inputs)} attestations prove against the inputs root")
    scores = epoch_scores(inputs, epoch.parameters)
    root = scores_root(scores)
    if root != epoch.scores_root or len(scores) != epoch.accounts:
        raise AuditFailure(
            "recompute",
            f"recomputed scores root {root.hex()} over {len(scores)} accounts, the epoch "
            f"commits {epoch.scores_root.hex()} over {epoch.accounts}",
        )
    mine = next((s for s in scores if s.address == address), None)
    expected = (0, 0, 0) if mine is None else (mine.score, mine.positive, mine.negative)
    if expected != proven or (mine is None) != (score_raw is None):
        raise AuditFailure("recompute", f"recomputed {expected}, the proven record says {proven}")
    report("recompute", f"scores root {root.hex()} over {len(scores)} accounts")
    return proven
