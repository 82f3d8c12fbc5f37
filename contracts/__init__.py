"""Built-in contracts (escrow/orders, referral, trust) as handlers plugged into the executor.

`build_executor(chain_id, genesis_hash)` is the one place that assembles the transaction handlers
and block hooks every node runs; all nodes of a network must run the same table, in the same order.

* `contracts.escrow`: the `order.*` handlers and the deadline hook (`run_deadlines`), over the
  records of `contracts.orders`, the due-queue of `contracts.deadlines` and the arithmetic of
  `contracts.payout`;
* `contracts.referral`: `referral.bind`;
* `contracts.trust`: `trust.attest` and the attestation log; `contracts.epochs`: the trust
  epoch hook (`run_trust_epochs`), over the fixed-point EigenTrust of `contracts.eigentrust`.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Final

from contracts import epochs, escrow, referral, trust
from ledger.execution import CORE_HANDLERS, BlockHook, Executor, Handler

CONTRACT_HANDLERS: Final[Mapping[str, Handler]] = {
    "order.create": escrow.apply_create,
    "order.pay": escrow.apply_pay,
    "order.ship": escrow.apply_ship,
    "order.confirm": escrow.apply_confirm,
    "order.cancel": escrow.apply_cancel,
    "order.dispute": escrow.apply_dispute,
    "order.resolve": escrow.apply_resolve,
    "referral.bind": referral.apply_bind,
    "trust.attest": trust.apply_attest,
}

BLOCK_HOOKS: Final[tuple[BlockHook, ...]] = (escrow.run_deadlines, epochs.run_trust_epochs)
"""Run in this order at the start of every block."""


def build_executor(
    chain_id: str, genesis_hash: bytes, score_cache: epochs.ScoreCache | None = None
) -> Executor:
    """The executor with every built-in handler and block hook. `score_cache` gives the trust
    epoch hook scores computed ahead of time (the same records either way: contracts.epochs)."""
    hooks = BLOCK_HOOKS
    if score_cache is not None:
        trust_hook = partial(epochs.run_trust_epochs, cache=score_cache)
        hooks = tuple(trust_hook if h is epochs.run_trust_epochs else h for h in BLOCK_HOOKS)
    return Executor(
        chain_id, genesis_hash, handlers={**CORE_HANDLERS, **CONTRACT_HANDLERS}, block_hooks=hooks
    )
