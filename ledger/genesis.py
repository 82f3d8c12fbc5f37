"""The genesis document: strict validation and loading into the initial state.

Everything a network agrees on before block 1: chain id, genesis time, validators, the first
accounts with roles and balances, parameters and the pre-trusted accounts of the trust score.
Validation is strict (pydantic, `extra="forbid"`, no coercion); errors name the field.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ledger.accounts import (
    ROLE_NAMES,
    Account,
    Supply,
    put_account,
    put_parameter,
    put_supply,
    roles_to_mask,
)
from ledger.blocks import ZERO_HASH, Block, BlockHeader
from ledger.encoding import encode
from ledger.errors import InvalidGenesis, InvalidValidatorUpdate
from ledger.keys import ADDRESS_SIZE, PublicKey, address_of, format_address, parse_address
from ledger.merkle import merkle_root
from ledger.parameters import check_parameter
from ledger.schema import MAX_AMOUNT
from ledger.state import State
from ledger.validation import describe_validation_error
from ledger.validator_state import init_validators
from ledger.validators import ValidatorSet

PRETRUSTED_KEY: Final = b"trust:pretrusted"
_HEX_KEY = r"^[0-9a-f]{64}$"
_NAME = r"^[a-z][a-z0-9_-]{0,31}$"


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class GenesisValidator(_Strict):
    name: str = Field(pattern=_NAME, description="operator-facing node name")
    public_key: str = Field(pattern=_HEX_KEY, description="node's Ed25519 public key, hex")


class GenesisAccount(_Strict):
    name: str = Field(pattern=_NAME, description="label, usable as dev:NAME for dev networks")
    public_key: str = Field(pattern=_HEX_KEY, description="account's Ed25519 public key, hex")
    roles: list[str] = Field(description=f"subset of {list(ROLE_NAMES)}")
    balance: int = Field(ge=0, le=MAX_AMOUNT, description="initial credits in fen")

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, roles: list[str]) -> list[str]:
        for role in roles:
            if role not in ROLE_NAMES:
                raise ValueError(f"unknown role {role!r}; roles are {list(ROLE_NAMES)}")
        if len(set(roles)) != len(roles):
            raise ValueError("roles must be unique")
        return roles


class Genesis(_Strict):
    """The genesis document (genesis.json)."""

    chain_id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    genesis_time_ms: int = Field(ge=0, le=2**53)
    note: str = Field(default="", max_length=1000, description="free text, e.g. a warning")
    dev_key_labels: bool = Field(
        default=False,
        description="true if every key is PrivateKey.from_label(name): public development keys",
    )
    validators: list[GenesisValidator] = Field(min_length=1, max_length=100)
    accounts: list[GenesisAccount] = Field(min_length=1, max_length=100_000)
    parameters: dict[str, int] = Field(default_factory=dict)
    pretrusted: list[str] = Field(default_factory=list, description="account names")

    @model_validator(mode="after")
    def _consistent(self) -> Genesis:
        names = [a.name for a in self.accounts]
        _require_unique("accounts: name", names)
        _require_unique("accounts: public key", [a.public_key for a in self.accounts])
        _require_unique("validators: name", [v.name for v in self.validators])
        _require_unique("validators: public key", [v.public_key for v in self.validators])
        for name, value in self.parameters.items():
            problem = check_parameter(name, value)
            if problem:
                raise ValueError(f"parameters.{name}: {problem}")
        for name in self.pretrusted:
            if name not in names:
                raise ValueError(f"pretrusted: {name!r} is not a genesis account")
        _require_unique("pretrusted:", self.pretrusted)
        if not any("admin" in a.roles for a in self.accounts):
            raise ValueError("accounts: at least one account needs the admin role")
        total = sum(a.balance for a in self.accounts)
        if total > MAX_AMOUNT:
            raise ValueError(f"accounts: total balance {total} exceeds 2**63-1")
        return self

    def validator_set(self) -> ValidatorSet:
        try:
            return ValidatorSet.from_public_keys(
                bytes.fromhex(v.public_key) for v in self.validators
            )
        except InvalidValidatorUpdate as exc:
            raise InvalidGenesis(f"validators: {exc}") from exc

    def document_hash(self) -> bytes:
        """SHA-256 of the canonical encoding of the whole document: the genesis prev_hash."""
        return hashlib.sha256(b"SEC/genesis/v1" + encode(self.model_dump(mode="python"))).digest()

    def account_address(self, name: str) -> bytes:
        for account in self.accounts:
            if account.name == name:
                return address_of(bytes.fromhex(account.public_key))
        raise InvalidGenesis(f"no genesis account named {name!r}")


def _require_unique(what: str, values: list[str]) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what} {value!r} is listed twice")
        seen.add(value)


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON object hook: parsers disagree on which duplicate wins, so a file with one is
    ambiguous (two readers could compute different genesis hashes)."""
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise InvalidGenesis(f"duplicate key {key!r} in a JSON object")
        document[key] = value
    return document


def parse_genesis(document: Any, source: str = "genesis") -> Genesis:
    """Validate a decoded JSON genesis; InvalidGenesis lists each bad field."""
    try:
        return Genesis.model_validate(document)
    except ValidationError as exc:
        raise InvalidGenesis(f"{source}: {describe_validation_error(exc, '(document)')}") from None


def load_genesis(path: Path) -> Genesis:
    try:
        text = path.read_text()
    except OSError as exc:
        raise InvalidGenesis(f"cannot read genesis file {path}: {exc.strerror}") from None
    try:
        document = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise InvalidGenesis(f"{path} is not valid JSON: {exc}") from None
    except InvalidGenesis as exc:
        raise InvalidGenesis(f"{path}: {exc}") from None
    return parse_genesis(document, str(path))


def genesis_state(genesis: Genesis) -> State:
    """The initial state: accounts, supply, parameters, validators, pre-trusted accounts."""
    state = State()
    total = 0
    for account in genesis.accounts:
        public_key = bytes.fromhex(account.public_key)
        put_account(
            state,
            Account(public_key, 0, account.balance, roles_to_mask(account.roles), account.name),
        )
        total += account.balance
    put_supply(state, Supply(total, 0, 0))
    for name, value in sorted(genesis.parameters.items()):
        put_parameter(state, name, value)
    init_validators(state, genesis.validator_set())
    pretrusted = sorted(genesis.account_address(name) for name in genesis.pretrusted)
    state.set(PRETRUSTED_KEY, encode(pretrusted))
    return state


def genesis_block(genesis: Genesis, state_root: bytes) -> Block:
    """Block 0 for `genesis`, given the root of `genesis_state(genesis)`."""
    empty_root = merkle_root([])
    header = BlockHeader(
        chain_id=genesis.chain_id,
        height=0,
        prev_hash=genesis.document_hash(),
        timestamp_ms=genesis.genesis_time_ms,
        proposer=bytes(ADDRESS_SIZE),
        view=0,
        tx_root=empty_root,
        receipts_root=empty_root,
        state_root=state_root,
        validators_hash=genesis.validator_set().hash(),
    )
    return Block(header, ())


def resolve_account(genesis: Genesis, text: str) -> bytes:
    """An address from checksummed text or a genesis account name."""
    if text.startswith("sec1"):
        return parse_address(text)
    return genesis.account_address(text)


__all__ = [
    "PRETRUSTED_KEY",
    "ZERO_HASH",
    "Genesis",
    "PublicKey",
    "format_address",
    "genesis_block",
    "genesis_state",
    "load_genesis",
    "parse_genesis",
    "resolve_account",
]
