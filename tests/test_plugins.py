"""Contracts as plug-ins: the tables built from `contracts.CONTRACTS`, and every registration
mistake refused when the tables are built (`InvalidRegistration`), not when a block executes."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import ClassVar

import pytest

from contracts import CONTRACTS, TX_TYPES, build_executor, epochs, escrow, groups
from contracts.errors import WrongActor
from contracts.orders import OrderPay, OrderShip
from ledger.accounts import ROLE_BITS, ROLE_NAMES
from ledger.errors import ExecutionError, InvalidRegistration, MalformedTransaction
from ledger.execution import CORE_TX_TYPES, BlockContext, Events, TxKind, kinds_by_name
from ledger.keys import PrivateKey
from ledger.plugins import Contract, assemble_kinds, assemble_tx_types
from ledger.schema import field
from ledger.state import State
from ledger.transactions import (
    HASH_KIND,
    SignedTransaction,
    Transfer,
    TxBody,
    TxTypes,
    decode_transaction,
    sign_transaction,
)

KEY = PrivateKey.from_label("account:buyer1")
GENESIS = hashlib.sha256(b"genesis").digest()
ORDER = hashlib.sha256(b"order").digest()


@dataclass(frozen=True, slots=True)
class Refund(TxBody):
    """A body of a would-be new contract."""

    TYPE: ClassVar[str] = "returns.refund"

    order_id: bytes = field(HASH_KIND, "order id")


@dataclass(frozen=True, slots=True)
class SecondPay(TxBody):
    """A body that claims a type name another class already has."""

    TYPE: ClassVar[str] = "order.pay"

    order_id: bytes = field(HASH_KIND, "order id")


def apply_refund(
    state: State, tx: SignedTransaction, body: Refund, context: BlockContext
) -> Events:
    return []


def apply_transfer_again(
    state: State, tx: SignedTransaction, body: Transfer, context: BlockContext
) -> Events:
    return []


def apply_second_pay(
    state: State, tx: SignedTransaction, body: SecondPay, context: BlockContext
) -> Events:
    return []


class Unlisted(ExecutionError):
    """An error class that forgot its own code."""


class AlsoWrongActor(ExecutionError):
    code = "wrong_actor"


# --- the built-in tables -----------------------------------------------------------------------


def test_decoder_and_executor_tables_come_from_one_list() -> None:
    executor = build_executor("c", GENESIS)
    assert list(TX_TYPES.bodies) == list(executor.kinds)
    for name, kind in executor.kinds.items():
        assert TX_TYPES.bodies[name] is kind.body_class
    assert set(CORE_TX_TYPES.bodies) < set(TX_TYPES.bodies)


def test_block_hooks_run_in_contract_order() -> None:
    assert [contract.name for contract in CONTRACTS] == [
        "escrow",
        "referral",
        "trust",
        "reviews",
        "groups",
    ]
    hooks = build_executor("c", GENESIS).block_hooks
    assert tuple(hooks) == (
        escrow.run_deadlines,
        epochs.run_trust_epochs,
        groups.run_group_deadlines,
    )


def test_core_table_decodes_no_contract_type() -> None:
    tx = sign_transaction(KEY, "c", 0, OrderPay(ORDER, 1), genesis_hash=GENESIS)
    assert decode_transaction(tx.encoded, TX_TYPES) == tx
    with pytest.raises(MalformedTransaction, match=r"unknown transaction type 'order\.pay'"):
        decode_transaction(tx.encoded, CORE_TX_TYPES)


def test_a_new_contract_is_one_more_entry() -> None:
    returns = Contract("returns", kinds=(TxKind(Refund, apply_refund),))
    kinds = assemble_kinds((*CONTRACTS, returns))
    assert list(kinds)[-1] == "returns.refund"
    tx = sign_transaction(KEY, "c", 0, Refund(ORDER), genesis_hash=GENESIS)
    assert decode_transaction(tx.encoded, assemble_tx_types((*CONTRACTS, returns))) == tx


def test_roles_are_listed_once_with_stable_bits() -> None:
    # Stored account records hold these bits: they must never move.
    assert ROLE_BITS == {
        "admin": 1,
        "issuer": 2,
        "merchant": 4,
        "arbiter": 8,
        "member": 16,
        "leader": 32,
    }
    assert tuple(ROLE_BITS) == ROLE_NAMES


# --- registration mistakes ---------------------------------------------------------------------


def test_invalid_tx_types_with_one_name_twice() -> None:
    with pytest.raises(InvalidRegistration, match=r"'order.pay' is registered twice: by OrderPay"):
        TxTypes((OrderPay, OrderShip, SecondPay))


def test_invalid_kinds_with_one_name_twice() -> None:
    twice = (TxKind(OrderPay, escrow.apply_pay), TxKind(SecondPay, apply_second_pay))
    with pytest.raises(
        InvalidRegistration, match=r"'order\.pay' has two kinds: OrderPay and SecondPay"
    ):
        kinds_by_name(twice)
    with pytest.raises(InvalidRegistration, match=r"'order\.pay' is registered by contract 'x'"):
        assemble_kinds((Contract("x", kinds=twice),))


def test_invalid_contract_shadowing_a_core_kind() -> None:
    rogue = Contract("rogue", kinds=(TxKind(Transfer, apply_transfer_again),))
    with pytest.raises(
        InvalidRegistration, match=r"contract 'rogue' registers 'credit\.transfer', which is a core"
    ):
        assemble_kinds((*CONTRACTS, rogue))


def test_invalid_two_contracts_with_one_type_name() -> None:
    rogue = Contract("rogue", kinds=(TxKind(SecondPay, apply_second_pay),))
    with pytest.raises(
        InvalidRegistration,
        match=r"'order\.pay' is registered by contract 'escrow' and by contract 'rogue'",
    ):
        assemble_kinds((*CONTRACTS, rogue))


def test_invalid_two_errors_with_one_code() -> None:
    rogue = Contract("rogue", kinds=(), errors=(AlsoWrongActor,))
    with pytest.raises(
        InvalidRegistration,
        match=f"errors {WrongActor.__name__} and AlsoWrongActor share the code 'wrong_actor'",
    ):
        assemble_kinds((*CONTRACTS, rogue))


def test_invalid_error_without_its_own_code() -> None:
    rogue = Contract("rogue", kinds=(), errors=(Unlisted,))
    with pytest.raises(InvalidRegistration, match="error Unlisted of contract 'rogue' declares no"):
        assemble_kinds((rogue,))


def test_invalid_body_of_another_class_reaches_a_kind() -> None:
    # A transaction decoded with one table and executed with another: refused, not miscast.
    tx = sign_transaction(KEY, "c", 0, OrderPay(ORDER, 1), genesis_hash=GENESIS)
    kind = TxKind(SecondPay, apply_second_pay)
    with pytest.raises(InvalidRegistration, match="carries a OrderPay body, but the kind"):
        kind.execute(State(), tx, BlockContext("c", 1, 0))


# --- the escrow table --------------------------------------------------------------------------


def test_escrow_docstring_table_is_the_actions_table() -> None:
    doc = escrow.__doc__ or ""
    rows = re.findall(
        r"^    (?!action )([a-z_]+) +(.+?)  +(\S+) +(.+(?:\n {20,}[A-Z].*)*)$", doc, re.M
    )
    assert [row[0] for row in rows] == list(escrow.ACTIONS)
    for action, parties, role, states in rows:
        rule = escrow.ACTIONS[action]
        assert parties.split(", ") == list(rule.parties), action
        assert role == (rule.sender_role or "-"), action
        assert re.findall(r"[A-Z][A-Z_]{3,}", states) == list(rule.states), action
