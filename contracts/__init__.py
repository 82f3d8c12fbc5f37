"""Built-in contracts (escrow/orders, referral, trust) as handlers plugged into the executor.

`build_executor(chain_id)` is the one place that assembles the transaction handlers and block
hooks every node runs; all nodes of a network must run the same table. Order, referral and
trust handlers arrive with their issues; until then those transaction types fail with
`not_implemented`.
"""

from __future__ import annotations

from ledger.execution import CORE_HANDLERS, Executor


def build_executor(chain_id: str) -> Executor:
    """The executor with every built-in handler and block hook."""
    return Executor(chain_id, handlers=dict(CORE_HANDLERS), block_hooks=())
