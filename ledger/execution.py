"""Execution: apply transactions and blocks to a `State`.

Two kinds of failure, kept apart on purpose:

* *Inadmissible* transactions (wrong chain, unregistered sender, nonce mismatch, bad signature)
  can never be in a valid block: `check_admission` raises and a block containing one is invalid
  (the proposer leaves them out).
* *Failed* transactions broke a rule while executing (role, balance, contract rule): their
  changes are rolled back inside a snapshot, the receipt says why, and the sender's nonce is
  still consumed, so the outcome is deterministic and the transaction cannot be replayed.

A transaction kind (`TxKind`) ties a body class to its handler, a plain function
`(state, tx, body, context) -> events` that receives the body already narrowed to its class:
the executor looks the kind up by type name and `TxKind.execute` checks `isinstance` once.
The core kinds for accounts, credits, parameters and validators live here (`CORE_KINDS`); the
contracts package adds its own through `ledger.plugins.Contract`. Block hooks run before the
block's transactions (timed transitions). Every handler checks first and changes last, raising
an `ExecutionError` naming the rule.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Generic, Protocol, TypeVar

from ledger.accounts import (
    Account,
    get_account,
    get_supply,
    put_account,
    put_parameter,
    put_supply,
    require_account,
    roles_to_mask,
)
from ledger.errors import (
    AccountExists,
    ExecutionError,
    InsufficientBalance,
    InvalidAmount,
    InvalidParameter,
    InvalidRegistration,
    NonceMismatch,
    NotAuthorized,
    NotImplementedYet,
    UnknownAccount,
    WrongChain,
)
from ledger.keys import address_of, format_address
from ledger.parameters import check_parameter
from ledger.receipts import Receipt
from ledger.schema import MAX_AMOUNT
from ledger.state import State
from ledger.transactions import (
    AccountRegister,
    AccountRoles,
    Burn,
    Mint,
    ParameterSet,
    SignedTransaction,
    Transfer,
    TxBody,
    TxTypes,
    ValidatorUpdate,
    verify_transaction,
)
from ledger.validator_state import schedule_validator_update


@dataclass(frozen=True, slots=True)
class BlockContext:
    """What a transaction may know about the block executing it."""

    chain_id: str
    """The chain being executed."""
    height: int
    """Height of the block."""
    time_s: int
    """Block time in seconds (header timestamp // 1000)."""
    tx_hash: bytes = b""
    """Hash of the transaction being executed (set per transaction)."""


Events = list[dict[str, Any]]


BlockHook = Callable[[State, BlockContext], None]

B = TypeVar("B", bound=TxBody)


@dataclass(frozen=True, slots=True)
class TxKind(Generic[B]):
    """One transaction type: its body class and the handler that executes it.

    mypy checks the pairing: `TxKind(Transfer, apply_transfer)` only type-checks if
    `apply_transfer` takes a `Transfer` body.
    """

    body: type[B]
    """The body class; its `TYPE` is this kind's type name."""
    apply: Callable[[State, SignedTransaction, B, BlockContext], Events]
    """The handler: checks the rules, then changes `state`; returns the receipt's events."""

    @property
    def name(self) -> str:
        return self.body.TYPE

    @property
    def body_class(self) -> type[TxBody]:
        """`body`, typed for tables of mixed kinds (`Kind`)."""
        return self.body

    def execute(self, state: State, tx: SignedTransaction, context: BlockContext) -> Events:
        """Run the handler on `tx`, whose body must be of this kind's class (the one place
        where a body is narrowed from `TxBody` to its class)."""
        body = tx.body
        if not isinstance(body, self.body):
            raise InvalidRegistration(
                f"{tx.describe()} carries a {type(body).__name__} body, but the kind "
                f"{self.name!r} executes {self.body.__name__}: the decoder and the executor "
                "were built from different tables"
            )
        return self.apply(state, tx, body, context)


class Kind(Protocol):
    """A `TxKind` of any body class, as tables of kinds hold it."""

    @property
    def name(self) -> str: ...

    @property
    def body_class(self) -> type[TxBody]: ...

    def execute(self, state: State, tx: SignedTransaction, context: BlockContext) -> Events: ...


# --- admission --------------------------------------------------------------------------------


def check_admission(
    state: State,
    tx: SignedTransaction,
    chain_id: str,
    *,
    verify_signature: bool,
    genesis_hash: bytes,
) -> Account:
    """Raise unless `tx` may be executed now on the network of `genesis_hash`; return the
    sender's account."""
    if tx.chain_id != chain_id:
        raise WrongChain(f"transaction is for chain {tx.chain_id!r}, this is {chain_id!r}")
    sender = get_account(state, tx.sender_address)
    if sender is None:
        raise UnknownAccount(f"sender {format_address(tx.sender_address)} is not registered")
    if sender.public_key != tx.sender:
        raise UnknownAccount(
            f"sender key does not match account {format_address(tx.sender_address)}"
        )
    if tx.nonce != sender.nonce:
        raise NonceMismatch(
            f"nonce {tx.nonce} for {format_address(tx.sender_address)}, expected {sender.nonce}"
        )
    if verify_signature:
        verify_transaction(tx, genesis_hash)
    return sender


def require_role(account: Account, role: str) -> None:
    if not account.has_role(role):
        raise NotAuthorized(f"{format_address(account.address)} lacks the {role!r} role")


# --- core handlers -----------------------------------------------------------------------------


def _sender(state: State, tx: SignedTransaction) -> Account:
    return require_account(state, tx.sender_address, "sender")


def apply_register(
    state: State, tx: SignedTransaction, body: AccountRegister, context: BlockContext
) -> Events:
    require_role(_sender(state, tx), "admin")
    address = address_of(body.public_key)
    if get_account(state, address) is not None:
        raise AccountExists(f"account {format_address(address)} is already registered")
    put_account(state, Account(body.public_key, 0, 0, roles_to_mask(body.roles), body.name or ""))
    return [{"event": "account.registered", "address": address, "roles": list(body.roles)}]


def apply_roles(
    state: State, tx: SignedTransaction, body: AccountRoles, context: BlockContext
) -> Events:
    require_role(_sender(state, tx), "admin")
    account = require_account(state, body.address)
    overlap = set(body.grant) & set(body.revoke)
    if overlap:
        raise InvalidParameter(f"role {sorted(overlap)[0]!r} both granted and revoked")
    if body.address == tx.sender_address and "admin" in body.revoke:
        raise NotAuthorized("an admin cannot revoke its own admin role")
    account.roles = (account.roles | roles_to_mask(body.grant)) & ~roles_to_mask(body.revoke)
    put_account(state, account)
    return [{"event": "account.roles", "address": body.address}]


def apply_mint(state: State, tx: SignedTransaction, body: Mint, context: BlockContext) -> Events:
    require_role(_sender(state, tx), "issuer")
    recipient = require_account(state, body.to, "recipient")
    supply = get_supply(state)
    if recipient.balance + body.amount > MAX_AMOUNT or supply.minted + body.amount > MAX_AMOUNT:
        raise InvalidAmount(f"minting {body.amount} would overflow the 63-bit supply")
    recipient.balance += body.amount
    supply.minted += body.amount
    put_account(state, recipient)
    put_supply(state, supply)
    return [{"event": "credit.minted", "to": body.to, "amount": body.amount}]


def apply_burn(state: State, tx: SignedTransaction, body: Burn, context: BlockContext) -> Events:
    issuer = _sender(state, tx)
    require_role(issuer, "issuer")
    if issuer.balance < body.amount:
        raise InsufficientBalance(f"burn of {body.amount} exceeds balance {issuer.balance}")
    supply = get_supply(state)
    issuer.balance -= body.amount
    supply.burned += body.amount
    put_account(state, issuer)
    put_supply(state, supply)
    return [{"event": "credit.burned", "amount": body.amount}]


def apply_transfer(
    state: State, tx: SignedTransaction, body: Transfer, context: BlockContext
) -> Events:
    sender = _sender(state, tx)
    if body.to == tx.sender_address:
        raise InvalidAmount("a transfer to oneself is not allowed")
    recipient = require_account(state, body.to, "recipient")
    if sender.balance < body.amount:
        raise InsufficientBalance(
            f"transfer of {body.amount} exceeds balance {sender.balance} of "
            f"{format_address(tx.sender_address)}"
        )
    sender.balance -= body.amount
    recipient.balance += body.amount
    put_account(state, sender)
    put_account(state, recipient)
    return []


def apply_parameter(
    state: State, tx: SignedTransaction, body: ParameterSet, context: BlockContext
) -> Events:
    require_role(_sender(state, tx), "admin")
    problem = check_parameter(body.name, body.value)
    if problem:
        raise InvalidParameter(problem)
    put_parameter(state, body.name, body.value)
    return [{"event": "param.set", "name": body.name, "value": body.value}]


def apply_validator_update(
    state: State, tx: SignedTransaction, body: ValidatorUpdate, context: BlockContext
) -> Events:
    require_role(_sender(state, tx), "admin")
    effective = schedule_validator_update(state, body.add, body.remove, context.height)
    return [{"event": "validator.update", "effective_height": effective}]


CORE_KINDS: tuple[Kind, ...] = (
    TxKind(AccountRegister, apply_register),
    TxKind(AccountRoles, apply_roles),
    TxKind(Mint, apply_mint),
    TxKind(Burn, apply_burn),
    TxKind(Transfer, apply_transfer),
    TxKind(ParameterSet, apply_parameter),
    TxKind(ValidatorUpdate, apply_validator_update),
)
"""The ledger's own kinds; contracts may not shadow them (`ledger.plugins`)."""


def kinds_by_name(kinds: Sequence[Kind]) -> dict[str, Kind]:
    """Type name -> kind; refuses (InvalidRegistration) two kinds with one type name."""
    table: dict[str, Kind] = {}
    for kind in kinds:
        if kind.name in table:
            raise InvalidRegistration(
                f"transaction type {kind.name!r} has two kinds: "
                f"{table[kind.name].body_class.__name__} and {kind.body_class.__name__}"
            )
        table[kind.name] = kind
    return table


def tx_types_of(kinds: Sequence[Kind]) -> TxTypes:
    """The decoder's table for exactly the bodies that `kinds` execute."""
    return TxTypes(kind.body_class for kind in kinds)


CORE_TX_TYPES: Final = tx_types_of(CORE_KINDS)
"""The ledger's own transaction types (accounts, credits, parameters, validators)."""


# --- the executor -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Executor:
    """Applies transactions with a fixed table of handlers and block hooks."""

    chain_id: str
    """Transactions for any other chain are inadmissible."""
    genesis_hash: bytes
    """Genesis document hash of this network: part of what every sender signs, so a
    transaction signed for another network (even with the same chain id) is inadmissible."""
    kinds: Mapping[str, Kind] = field(default_factory=lambda: kinds_by_name(CORE_KINDS))
    """Transaction type -> kind. Types without a kind fail with `not_implemented`."""
    block_hooks: Sequence[BlockHook] = ()
    """Run in order at the start of every block (timed transitions, epochs)."""

    def begin_block(self, state: State, context: BlockContext) -> None:
        for hook in self.block_hooks:
            hook(state, context)

    def apply_transaction(
        self,
        state: State,
        tx: SignedTransaction,
        context: BlockContext,
        *,
        verify_signature: bool = True,
    ) -> Receipt:
        """Execute one admissible transaction (raises if inadmissible; then nothing changed)."""
        check_admission(
            state,
            tx,
            self.chain_id,
            verify_signature=verify_signature,
            genesis_hash=self.genesis_hash,
        )
        tx_context = BlockContext(context.chain_id, context.height, context.time_s, tx.hash)
        kind = self.kinds.get(tx.type)
        state.begin_tx()
        try:
            if kind is None:
                raise NotImplementedYet(f"{tx.type} is not executable on this node yet")
            events = kind.execute(state, tx, tx_context)
        except ExecutionError as exc:
            state.rollback_tx()
            receipt = Receipt(tx.hash, False, exc.code, str(exc))
        else:
            state.commit_tx()
            receipt = Receipt(tx.hash, True, "", "", tuple(events))
        # The nonce is consumed whether or not the body succeeded (outside the snapshot).
        sender = get_account(state, tx.sender_address)
        if sender is None:  # only possible if a handler deleted its own sender
            raise UnknownAccount("sender vanished during execution")
        sender.nonce += 1
        put_account(state, sender)
        return receipt
