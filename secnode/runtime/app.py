"""The ledger as the consensus core's application: proposals, validation, commits.

PBFT may have several heights in flight, so blocks are built and validated on top of blocks
that are not committed yet. Each such block is kept as a `Speculative` entry: the block, its
receipts, its state changes and the state tree after it. A state for building on a speculative
parent reads that parent's changes and its ancestors' over the committed state
(`State.speculate`), so nothing is executed twice: on `commit`, a block validated here is
applied from its entry; only a block that arrives with a certificate but was never validated
here (catch-up) is executed at commit time.

Invariants: `self.state` and the store always hold exactly the committed chain up to
`self.head`; speculative entries are dropped once their height is committed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from consensus.app import Proposal
from consensus.errors import InvalidProposal, UnjudgeableProposal
from contracts import TX_TYPES
from ledger.accounts import get_account
from ledger.blocks import Block, BlockHeader, decode_block
from ledger.certificates import CommitCertificate
from ledger.chain import build_block, execute_block
from ledger.errors import LedgerError
from ledger.execution import Executor
from ledger.receipts import Receipt
from ledger.state import State
from ledger.state_tree import StateTree
from ledger.store import ChainStore
from secnode.runtime.mempool import Mempool
from secnode.runtime.metrics import Metrics

log = logging.getLogger("secnode.app")


@dataclass(frozen=True, slots=True)
class Speculative:
    """A block executed on top of an uncommitted parent."""

    block: Block
    receipts: tuple[Receipt, ...]
    changes: dict[bytes, bytes | None]
    tree: StateTree
    parent: bytes


@dataclass(frozen=True, slots=True)
class Committed:
    """What `LedgerApp.commit` reports to the node (for waiters, metrics, logs)."""

    block: Block
    receipts: tuple[Receipt, ...]
    executed_at_commit: bool


class CommitDivergence(LedgerError):
    """A certified block failed to execute here: this node's state diverged; stop the node."""


class LedgerApp:
    """Implements consensus.app.Application over the ledger, mempool and store."""

    def __init__(
        self,
        executor: Executor,
        store: ChainStore,
        state: State,
        head: BlockHeader,
        mempool: Mempool,
        proposer: bytes,
        *,
        max_block_transactions: int,
        max_clock_drift_s: float,
        clock_ms: Callable[[float], int] = lambda now: int(now * 1000),
        metrics: Metrics | None = None,
    ) -> None:
        self.executor = executor
        self.store = store
        self.state = state
        self.head = head
        self.mempool = mempool
        self.proposer = proposer
        self.max_block_transactions = max_block_transactions
        self.max_clock_drift_ms = int(max_clock_drift_s * 1000)
        self.clock_ms = clock_ms
        self.speculative: dict[bytes, Speculative] = {}
        self.view = 0
        self.metrics = Metrics() if metrics is None else metrics
        """Where the block stages timed here go (proposal build, execution, store write)."""

    # --- helpers -----------------------------------------------------------------------------

    def _chain_to(self, parent: bytes) -> list[Speculative] | None:
        """Speculative ancestors from `parent` back to the committed head (newest first)."""
        chain: list[Speculative] = []
        cursor = parent
        head_hash = self.head.hash()
        while cursor != head_hash:
            entry = self.speculative.get(cursor)
            if entry is None:
                return None
            chain.append(entry)
            cursor = entry.parent
        return chain

    def _state_on(self, parent: bytes) -> tuple[State, BlockHeader]:
        chain = self._chain_to(parent)
        if chain is None:
            raise UnjudgeableProposal(
                f"parent {parent.hex()[:16]} is neither committed nor validated"
            )
        if not chain:
            return self.state.speculate([], self.state.tree), self.head
        return (
            self.state.speculate([entry.changes for entry in chain], chain[0].tree),
            chain[0].block.header,
        )

    def _remember(
        self, state: State, block: Block, receipts: tuple[Receipt, ...], parent: bytes
    ) -> None:
        tree = state.working_tree()
        self.speculative[block.hash()] = Speculative(block, receipts, state.changes(), tree, parent)

    # --- consensus.app.Application -----------------------------------------------------------

    def can_build_on(self, seq: int, parent: bytes) -> bool:
        chain = self._chain_to(parent)
        if chain is None:
            return False
        parent_height = chain[0].block.height if chain else self.head.height
        return parent_height == seq - 1

    def make_proposal(
        self, seq: int, parent: bytes, now: float, *, required: bool
    ) -> Proposal | None:
        if not required and len(self.mempool) == 0:
            return None
        started = time.perf_counter()
        state, parent_header = self._state_on(parent)
        if parent_header.height != seq - 1:
            raise InvalidProposal(f"parent is at height {parent_header.height}, not {seq - 1}")

        def next_nonce(address: bytes) -> int:
            account = get_account(state, address)
            return 0 if account is None else account.nonce

        candidates = self.mempool.select(self.max_block_transactions, next_nonce)
        if not candidates and not required:
            return None
        result = build_block(
            self.executor,
            state,
            parent_header,
            candidates,
            timestamp_ms=self.clock_ms(now),
            proposer=self.proposer,
            view=self.view,
            verified=self.mempool.verified,
            max_transactions=self.max_block_transactions,
        )
        if not result.block.transactions and not required:
            return None
        self._remember(state, result.block, result.receipts, parent)
        self._observe_proposal(result.block, now, time.perf_counter() - started)
        return Proposal(seq, parent, result.block.hash(), result.block.encode())

    def full_block_ready(self, seq: int, parent: bytes) -> bool:
        """An upper estimate, O(blocks in flight): pooled transactions that are not gapped and
        not in the uncommitted blocks up to `parent` fill a block (`consensus.app`)."""
        chain = self._chain_to(parent)
        if chain is None:
            return False
        in_flight = sum(len(entry.block.transactions) for entry in chain)
        ready = len(self.mempool) - self.mempool.gapped_count - in_flight
        return ready >= self.max_block_transactions

    def validate_proposal(self, proposal: Proposal, now: float, *, fresh: bool = False) -> None:
        if proposal.digest in self.speculative:
            return  # validated before (a re-proposal after a view change)
        block = self._decode(proposal.seq, proposal.digest, proposal.payload)
        if block.header.prev_hash != proposal.parent:
            raise InvalidProposal("block prev_hash does not match the proposal's parent")
        self._check_block_time(block.header.timestamp_ms, self.clock_ms(now), fresh=fresh)
        state, parent_header = self._state_on(proposal.parent)
        started = time.perf_counter()
        try:
            result = execute_block(
                self.executor, state, parent_header, block, verified=self.mempool.verified
            )
        except LedgerError as exc:
            raise InvalidProposal(str(exc)) from exc
        self.metrics.observe_stage("execution", time.perf_counter() - started)
        self.mempool.remember_verified(block.transactions)  # their gossiped copies: no re-check
        self._remember(state, block, result.receipts, proposal.parent)

    def _observe_proposal(self, block: Block, now: float, build_s: float) -> None:
        """Proposal build time, and the mean mempool wait of the proposed transactions."""
        self.metrics.observe_stage("proposal_build", build_s)
        waits = [
            now - admitted
            for tx in block.transactions
            if (admitted := self.mempool.admitted_at(tx.hash)) is not None
        ]
        if waits:
            self.metrics.observe_stage("mempool_wait", sum(waits) / len(waits))

    def _check_block_time(self, block_ms: int, local_ms: int, *, fresh: bool) -> None:
        """Block time within `max_clock_drift_ms` of the local clock: never further ahead; and,
        for a fresh proposal, never further behind (so a primary cannot freeze or pick time).
        The header rule (after the parent's time) is checked by `execute_block`."""
        drift = self.max_clock_drift_ms
        if block_ms > local_ms + drift:
            raise UnjudgeableProposal(
                f"block time {block_ms} is more than {drift} ms ahead of the local clock {local_ms}"
            )
        if fresh and block_ms < local_ms - drift:
            raise UnjudgeableProposal(
                f"block time {block_ms} of a fresh proposal is more than {drift} ms behind "
                f"the local clock {local_ms}"
            )

    def verify_payload(self, seq: int, digest: bytes, payload: bytes) -> None:
        self._decode(seq, digest, payload)

    def _decode(self, seq: int, digest: bytes, payload: bytes) -> Block:
        try:
            block = decode_block(payload, TX_TYPES, self.mempool.by_hash)
        except LedgerError as exc:
            raise InvalidProposal(f"block {seq}: {exc}") from exc
        if block.height != seq:
            raise InvalidProposal(f"block height {block.height} is not sequence {seq}")
        if block.hash() != digest:
            raise InvalidProposal(f"block {seq} does not hash to the proposed digest")
        return block

    # --- commits -----------------------------------------------------------------------------

    def commit(
        self, seq: int, digest: bytes, payload: bytes, certificate: CommitCertificate
    ) -> Committed:
        """Persist the decided block (one atomic batch) and move the committed state on."""
        if seq != self.head.height + 1:
            raise CommitDivergence(f"commit of height {seq} after head {self.head.height}")
        entry = self.speculative.get(digest)
        executed_here = entry is None or entry.parent != self.head.hash()
        if entry is None or entry.parent != self.head.hash():
            block = self._decode(seq, digest, payload)
            state = self.state.speculate([], self.state.tree)
            try:
                result = execute_block(
                    self.executor, state, self.head, block, verified=self.mempool.verified
                )
            except LedgerError as exc:
                raise CommitDivergence(
                    f"certified block {seq} ({digest.hex()[:16]}) does not execute here: {exc}"
                ) from exc
            entry = Speculative(
                block, result.receipts, state.changes(), state.working_tree(), self.head.hash()
            )
        started = time.perf_counter()
        self.store.commit_block(
            entry.block, certificate, entry.receipts, entry.changes, tree=entry.tree
        )
        self.metrics.observe_stage("store_write", time.perf_counter() - started)
        self.state.apply_committed(entry.changes, entry.tree)
        self.head = entry.block.header
        self.speculative = {d: s for d, s in self.speculative.items() if s.block.height > seq}

        def next_nonce(address: bytes) -> int:
            account = get_account(self.state, address)
            return 0 if account is None else account.nonce

        self.mempool.remove_committed(entry.block.transactions, next_nonce)
        log.debug("stored block %d in %.1f ms", seq, (time.perf_counter() - started) * 1000)
        return Committed(entry.block, entry.receipts, executed_here)

    def oldest_waiting_since(self) -> float | None:
        """The request timer's input (`consensus.app.Application`): when, on the node clock, the
        oldest pending transaction that can execute on the committed state entered the pool."""

        def next_nonce(address: bytes) -> int:
            account = get_account(self.state, address)
            return 0 if account is None else account.nonce

        return self.mempool.oldest_ready_since(next_nonce)
