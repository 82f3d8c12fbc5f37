"""mypy --strict checks the body boundary: a body cannot be signed under another type's name, a
kind cannot pair a body class with another body's handler, and a handler sees only its own body.

Each snippet runs through mypy's API with the project's configuration; the well-typed one is the
control (it must pass, so a broken mypy setup cannot make the ill-typed lines pass unnoticed).
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import mypy.api
import pytest

ROOT = Path(__file__).resolve().parent.parent

PRELUDE = """\
from contracts.orders import OrderPay, OrderShip
from ledger.execution import BlockContext, Events, TxKind
from ledger.keys import PrivateKey
from ledger.state import State
from ledger.transactions import Mint, SignedTransaction, Transfer, sign_transaction

KEY = PrivateKey.from_label("account:buyer1")


def apply_pay(state: State, tx: SignedTransaction, body: OrderPay, context: BlockContext) -> Events:
    return [{"amount": body.amount}]


def apply_mint(state: State, tx: SignedTransaction, body: Mint, context: BlockContext) -> Events:
    return [{"to": body.to}]
"""

WELL_TYPED = """\
tx = sign_transaction(KEY, "c", 0, Transfer(bytes(20), 1), genesis_hash=bytes(32))
kinds = (TxKind(OrderPay, apply_pay), TxKind(Mint, apply_mint))
if isinstance(tx.body, Transfer):
    print(tx.body.amount)
"""

ILL_TYPED = """\
sign_transaction(KEY, "c", 0, "order.pay", Transfer(bytes(20), 1), genesis_hash=bytes(32))  # E
TxKind(OrderShip, apply_pay)  # E
TxKind(Transfer, apply_mint)  # E
print(sign_transaction(KEY, "c", 0, Mint(bytes(20), 1), genesis_hash=bytes(32)).body.amount)  # E


def apply_ship(
    state: State, tx: SignedTransaction, body: OrderShip, context: BlockContext
) -> Events:
    return [{"amount": body.amount}]  # E
"""


def _mypy(code: str, tmp_path: Path) -> list[tuple[int, str]]:
    """(line, message) of every error mypy --strict reports on `code` (project config)."""
    snippet = tmp_path / "snippet.py"
    snippet.write_text(code)
    stdout, stderr, _ = mypy.api.run(
        ["--strict", "--config-file", str(ROOT / "pyproject.toml"), str(snippet)]
    )
    if stderr:
        raise AssertionError(f"mypy failed to run: {stderr}")
    errors = []
    for line in stdout.splitlines():
        found = re.match(rf"{re.escape(str(snippet))}:(\d+): error: (.*)", line)
        if found:
            errors.append((int(found.group(1)), found.group(2)))
    return errors


@pytest.fixture
def in_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # so the snippet imports the project's packages


@pytest.mark.usefixtures("in_root")
def test_well_typed_bodies_and_kinds_pass_mypy(tmp_path: Path) -> None:
    assert _mypy(PRELUDE + "\n\n" + WELL_TYPED, tmp_path) == []


@pytest.mark.usefixtures("in_root")
def test_invalid_body_type_mismatches_are_mypy_errors(tmp_path: Path) -> None:
    code = PRELUDE + "\n\n" + textwrap.dedent(ILL_TYPED)
    marked = [n for n, text in enumerate(code.splitlines(), start=1) if text.endswith("# E")]
    errors = _mypy(code, tmp_path)
    assert sorted({line for line, _ in errors}) == marked, errors
