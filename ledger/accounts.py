"""Account, supply and parameter records in state, with typed accessors.

Records are msgpack arrays of ints/bytes/str (no maps), which the C packer already encodes
canonically, so hot paths pack and unpack them directly without the generic canonical checks.

Account record: [public_key (32 bytes), nonce, balance, roles bitmask, name]
Supply record:  [minted, burned, escrow]  (conservation: sum(balances) + escrow = minted - burned)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import msgpack

from ledger.errors import UnknownAccount
from ledger.keys import Address, address_of, format_address
from ledger.parameters import PARAMETERS, spec_of
from ledger.state import State

ACCOUNT_PREFIX: Final = b"acct:"
PARAM_PREFIX: Final = b"param:"
SUPPLY_KEY: Final = b"supply"

ROLE_NAMES: Final = ("admin", "issuer", "merchant", "arbiter", "member", "leader")
"""Every account role, in bit order: the one list of roles (schemas and genesis read it)."""
ROLE_BITS: Final[dict[str, int]] = {name: 1 << bit for bit, name in enumerate(ROLE_NAMES)}
"""Role -> its bit in `Account.roles` (admin 1, issuer 2, merchant 4, arbiter 8, member 16,
leader 32: a new role takes the next bit, so stored masks keep their meaning)."""


def roles_to_mask(roles: tuple[str, ...] | list[str]) -> int:
    mask = 0
    for role in roles:
        mask |= ROLE_BITS[role]
    return mask


def mask_to_roles(mask: int) -> list[str]:
    return [name for name, bit in ROLE_BITS.items() if mask & bit]


@dataclass(slots=True)
class Account:
    """A registered account (mutable while a transaction works on it; stored as a record)."""

    public_key: bytes
    """The Ed25519 key that signs for this account."""
    nonce: int
    """Number of transactions executed from this account; the next one must carry it."""
    balance: int
    """Credits in fen."""
    roles: int
    """Bitmask of ROLE_BITS."""
    name: str
    """Optional human label ("" if none)."""

    def has_role(self, role: str) -> bool:
        return bool(self.roles & ROLE_BITS[role])

    @property
    def address(self) -> Address:
        return address_of(self.public_key)


def account_key(address: bytes) -> bytes:
    return ACCOUNT_PREFIX + address


def decode_account(raw: bytes) -> Account:
    """An account from its stored record (trusted state bytes, see the module docstring)."""
    public_key, nonce, balance, roles, name = msgpack.unpackb(raw)
    return Account(public_key, nonce, balance, roles, name)


def get_account(state: State, address: bytes) -> Account | None:
    raw = state.get(ACCOUNT_PREFIX + address)
    return None if raw is None else decode_account(raw)


def require_account(state: State, address: bytes, what: str = "account") -> Account:
    account = get_account(state, address)
    if account is None:
        raise UnknownAccount(f"{what} {format_address(address)} is not registered")
    return account


def put_account(state: State, account: Account) -> None:
    state.set(
        ACCOUNT_PREFIX + address_of(account.public_key),
        encode_account(account),
    )


def encode_account(account: Account) -> bytes:
    packed: bytes = msgpack.packb(
        [account.public_key, account.nonce, account.balance, account.roles, account.name],
        use_bin_type=True,
    )
    return packed


@dataclass(slots=True)
class Supply:
    """Chain-wide credit totals."""

    minted: int
    """All credits ever created (genesis balances included)."""
    burned: int
    """All credits ever destroyed."""
    escrow: int
    """Credits currently held by orders."""


def get_supply(state: State) -> Supply:
    raw = state.get(SUPPLY_KEY)
    if raw is None:
        return Supply(0, 0, 0)
    minted, burned, escrow = msgpack.unpackb(raw)
    return Supply(minted, burned, escrow)


def put_supply(state: State, supply: Supply) -> None:
    state.set(
        SUPPLY_KEY, msgpack.packb([supply.minted, supply.burned, supply.escrow], use_bin_type=True)
    )


def get_parameter(state: State, name: str) -> int:
    """Current value of a chain parameter (its default if never set)."""
    raw = state.get(PARAM_PREFIX + name.encode())
    if raw is None:
        return spec_of(name).default
    value: int = msgpack.unpackb(raw)
    return value


def put_parameter(state: State, name: str, value: int) -> None:
    spec_of(name)
    state.set(PARAM_PREFIX + name.encode(), msgpack.packb(value))


def all_parameters(state: State) -> dict[str, int]:
    return {name: get_parameter(state, name) for name in sorted(PARAMETERS)}
