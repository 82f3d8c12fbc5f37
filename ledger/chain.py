"""Building and checking blocks: the header rules and block execution.

`build_block` (proposer) and `execute_block` (every replica, and auditors replaying the chain)
run the same code path, so a block one honest node builds is a block every honest node accepts.

Header rules, checked by `execute_block` in this order (InvalidBlock names the first broken one):
chain id; height = parent + 1; prev_hash = parent hash; timestamp_ms > parent's; every
transaction admissible (chain, registered sender, nonce, signature); no duplicate transaction;
receipts_root, state_root and validators_hash equal what execution produced.
Wall-clock drift of the timestamp is a node policy, checked by the node, not here.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from dataclasses import dataclass

from ledger.blocks import MAX_BLOCK_TRANSACTIONS, Block, BlockHeader, transactions_root
from ledger.errors import ExecutionError, InvalidBlock, InvalidSignature
from ledger.execution import BlockContext, Executor
from ledger.receipts import Receipt, receipts_root
from ledger.state import State
from ledger.transactions import SignedTransaction
from ledger.validator_state import activate_due_validators, current_validators


@dataclass(frozen=True, slots=True)
class BlockResult:
    """A block with the receipts its execution produced (state holds the uncommitted overlay)."""

    block: Block
    receipts: tuple[Receipt, ...]


def _begin(executor: Executor, state: State, height: int, timestamp_ms: int) -> BlockContext:
    context = BlockContext(executor.chain_id, height, timestamp_ms // 1000)
    activate_due_validators(state, height)
    executor.begin_block(state, context)
    return context


def build_block(
    executor: Executor,
    state: State,
    parent: BlockHeader,
    candidates: Iterable[SignedTransaction],
    *,
    timestamp_ms: int,
    proposer: bytes,
    view: int,
    verified: Container[bytes] | None = None,
    max_transactions: int = MAX_BLOCK_TRANSACTIONS,
) -> BlockResult:
    """Execute admissible candidates in order and return the block.

    Inadmissible candidates are skipped (they may become admissible later, e.g. a future
    nonce). `verified` holds hashes whose signatures were already checked. On return the
    state holds the block's overlay with its root computed: commit or abort it.
    """
    if timestamp_ms <= parent.timestamp_ms:
        timestamp_ms = parent.timestamp_ms + 1
    height = parent.height + 1
    context = _begin(executor, state, height, timestamp_ms)
    included: list[SignedTransaction] = []
    receipts: list[Receipt] = []
    seen: set[bytes] = set()
    for tx in candidates:
        if len(included) >= max_transactions:
            break
        if tx.hash in seen:
            continue
        try:
            receipt = executor.apply_transaction(
                state,
                tx,
                context,
                verify_signature=verified is None or tx.hash not in verified,
            )
        except (ExecutionError, InvalidSignature):
            continue
        seen.add(tx.hash)
        included.append(tx)
        receipts.append(receipt)
    state_root = state.compute_root()
    header = BlockHeader(
        chain_id=executor.chain_id,
        height=height,
        prev_hash=parent.hash(),
        timestamp_ms=timestamp_ms,
        proposer=proposer,
        view=view,
        tx_root=transactions_root(included),
        receipts_root=receipts_root(receipts),
        state_root=state_root,
        validators_hash=current_validators(state).hash(),
    )
    return BlockResult(Block(header, tuple(included)), tuple(receipts))


def execute_block(
    executor: Executor,
    state: State,
    parent: BlockHeader,
    block: Block,
    *,
    verified: Container[bytes] | None = None,
) -> BlockResult:
    """Check `block` against `parent` and execute it; on any failure the state is unchanged.

    On success the state holds the block's overlay with its root computed.
    """
    try:
        return _execute_checked(executor, state, parent, block, verified)
    except Exception:
        state.abort_block()
        raise


def _execute_checked(
    executor: Executor,
    state: State,
    parent: BlockHeader,
    block: Block,
    verified: Container[bytes] | None,
) -> BlockResult:
    header = block.header
    if header.chain_id != executor.chain_id:
        raise InvalidBlock(f"block is for chain {header.chain_id!r}, not {executor.chain_id!r}")
    if header.height != parent.height + 1:
        raise InvalidBlock(f"block height {header.height} does not follow {parent.height}")
    if header.prev_hash != parent.hash():
        raise InvalidBlock(f"block {header.height} prev_hash does not match its parent")
    if header.timestamp_ms <= parent.timestamp_ms:
        raise InvalidBlock(
            f"block {header.height} timestamp {header.timestamp_ms} is not after its parent's "
            f"{parent.timestamp_ms}"
        )
    if header.tx_root != transactions_root(block.transactions):
        raise InvalidBlock(f"block {header.height} tx_root does not match its transactions")
    if len({tx.hash for tx in block.transactions}) != len(block.transactions):
        raise InvalidBlock(f"block {header.height} contains a transaction twice")
    context = _begin(executor, state, header.height, header.timestamp_ms)
    receipts: list[Receipt] = []
    for index, tx in enumerate(block.transactions):
        try:
            receipt = executor.apply_transaction(
                state,
                tx,
                context,
                verify_signature=verified is None or tx.hash not in verified,
            )
        except (ExecutionError, InvalidSignature) as exc:
            raise InvalidBlock(
                f"block {header.height} transaction {index} is inadmissible: {exc}"
            ) from exc
        receipts.append(receipt)
    if receipts_root(receipts) != header.receipts_root:
        raise InvalidBlock(f"block {header.height} receipts_root does not match execution")
    actual_root = state.compute_root()
    if actual_root != header.state_root:
        raise InvalidBlock(
            f"block {header.height} state_root {header.state_root.hex()} does not match "
            f"execution ({actual_root.hex()})"
        )
    if current_validators(state).hash() != header.validators_hash:
        raise InvalidBlock(f"block {header.height} validators_hash does not match the state")
    return BlockResult(block, tuple(receipts))
