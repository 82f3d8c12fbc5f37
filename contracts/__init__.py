"""Built-in contracts (escrow/orders, referral, trust) as plug-ins of the executor.

Each contract declares one `ledger.plugins.Contract` (its transaction kinds, block hooks,
errors and read-only queries); `CONTRACTS` is the one list of them, in execution order of their
block hooks. Everything a node runs is built from it: `build_executor(chain_id, genesis_hash)`
(kinds and hooks) and `TX_TYPES` (what the decoders accept: core + contract bodies). All nodes
of a network must run the same list, in the same order. Adding a contract is one new module
declaring `CONTRACT` plus one entry in `CONTRACTS`.

* `contracts.escrow`: the `order.*` kinds (bodies in `contracts.orders`) and the deadline hook
  (`run_deadlines`), over the records of `contracts.orders`, the due-queue of
  `contracts.deadlines` and the arithmetic of `contracts.payout`;
* `contracts.referral`: `referral.bind`;
* `contracts.epochs` (declares the trust plug-in): `trust.attest` and the attestation log of
  `contracts.trust`, and the trust epoch hook (`run_trust_epochs`) over the fixed-point
  EigenTrust of `contracts.eigentrust`;
* `contracts.reviews`: `review.post` and `review.reply`, the review records and their indexes
  (and the item references `order.create` records for them).
* `contracts.groups`: the `group.*` kinds (group buy) and the join-deadline hook
  (`run_group_deadlines`) over the due-heap of `contracts.due_heap`; member orders are opened
  through `contracts.escrow.open_funded_order`.

Errors of all of them live in `contracts.errors`.
"""

from __future__ import annotations

from functools import partial
from typing import Final

from contracts import epochs, escrow, groups, referral, reviews
from ledger.execution import BlockHook, Executor
from ledger.plugins import Contract, assemble_block_hooks, assemble_kinds, assemble_tx_types

CONTRACTS: Final[tuple[Contract, ...]] = (
    escrow.CONTRACT,
    referral.CONTRACT,
    epochs.CONTRACT,
    reviews.CONTRACT,
    groups.CONTRACT,
)
"""Every built-in contract; their block hooks run in this order at the start of every block."""

TX_TYPES: Final = assemble_tx_types(CONTRACTS)
"""Every transaction type a node accepts (core + contracts): what its decoders are given."""


def build_executor(
    chain_id: str, genesis_hash: bytes, score_cache: epochs.ScoreCache | None = None
) -> Executor:
    """The executor with every core and contract kind and every block hook. `score_cache` gives
    the trust epoch hook scores computed ahead of time (the same records either way:
    contracts.epochs)."""
    hooks: tuple[BlockHook, ...] = assemble_block_hooks(CONTRACTS)
    if score_cache is not None:
        trust_hook = partial(epochs.run_trust_epochs, cache=score_cache)
        hooks = tuple(trust_hook if h is epochs.run_trust_epochs else h for h in hooks)
    return Executor(chain_id, genesis_hash, kinds=assemble_kinds(CONTRACTS), block_hooks=hooks)
