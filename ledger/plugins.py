"""Contracts as plug-ins: the shape a contract registers, and the tables built from a list of them.

A contract (see `contracts/`) declares one `Contract`: its transaction kinds (body class +
handler), its block hooks, its error classes and its read-only queries. From one ordered list
of contracts, `assemble_kinds` builds the executor's table and `assemble_tx_types` the
decoder's, so the two always agree. The ledger never imports a contract: it only reads the
`Contract` values it is given.

Invariants, checked when the tables are built (`InvalidRegistration`, naming the culprits):
a contract kind never shadows a core kind (`ledger.execution.CORE_KINDS`); no two contracts
register one type name; no two error classes share a receipt `code`, and each declares its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ledger.errors import ExecutionError, InvalidRegistration
from ledger.execution import CORE_KINDS, BlockHook, Kind, kinds_by_name, tx_types_of
from ledger.transactions import TxTypes


@dataclass(frozen=True, slots=True)
class Contract:
    """Everything one contract adds to the ledger."""

    name: str
    """Short name, used in registration errors ("escrow", "referral", ...)."""
    kinds: tuple[Kind, ...]
    """Its transaction kinds (`ledger.execution.TxKind(body class, handler)`)."""
    block_hooks: tuple[BlockHook, ...] = ()
    """Run in this order at the start of every block, after the hooks of earlier contracts."""
    errors: tuple[type[ExecutionError], ...] = ()
    """The rule violations its handlers raise (each with a stable receipt `code`)."""
    queries: tuple[Callable[..., object], ...] = ()
    """Read-only functions `(state, ...) -> value` over its records, for the RPC layer."""


def assemble_kinds(contracts: Sequence[Contract]) -> dict[str, Kind]:
    """Type name -> kind for the core kinds and every contract's, in that order."""
    core = kinds_by_name(CORE_KINDS)
    owner: dict[str, str] = {}
    table = dict(core)
    for contract in contracts:
        for kind in contract.kinds:
            if kind.name in core:
                raise InvalidRegistration(
                    f"contract {contract.name!r} registers {kind.name!r}, which is a core kind"
                )
            if kind.name in owner:
                raise InvalidRegistration(
                    f"transaction type {kind.name!r} is registered by contract "
                    f"{owner[kind.name]!r} and by contract {contract.name!r}"
                )
            owner[kind.name] = contract.name
            table[kind.name] = kind
    _check_error_codes(contracts)
    return table


def assemble_tx_types(contracts: Sequence[Contract]) -> TxTypes:
    """The decoder's table: the body classes of exactly the kinds `assemble_kinds` returns."""
    return tx_types_of(tuple(assemble_kinds(contracts).values()))


def assemble_block_hooks(contracts: Sequence[Contract]) -> tuple[BlockHook, ...]:
    """Every contract's block hooks, contract by contract in list order."""
    return tuple(hook for contract in contracts for hook in contract.block_hooks)


def _check_error_codes(contracts: Sequence[Contract]) -> None:
    codes: dict[str, type[ExecutionError]] = {}
    for contract in contracts:
        for error in contract.errors:
            if "code" not in vars(error):
                raise InvalidRegistration(
                    f"error {error.__name__} of contract {contract.name!r} declares no code"
                )
            seen = codes.setdefault(error.code, error)
            if seen is not error:
                raise InvalidRegistration(
                    f"errors {seen.__name__} and {error.__name__} share the code {error.code!r}"
                )
