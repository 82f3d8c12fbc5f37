"""The development network: deterministic keys from public labels and the default genesis.

DEVELOPMENT ONLY. Every key here is derived from a public label with
`PrivateKey.from_label(label)`, so anyone can sign as these accounts. Labels:
validators "validator:<name>", accounts "account:<name>". The committed `genesis.json` is
`dev_genesis()` serialized; `tests/test_devnet.py` checks they still match.
"""

from __future__ import annotations

import functools
from typing import Any, Final

from ledger.genesis import Genesis, parse_genesis
from ledger.keys import PrivateKey

DEV_CHAIN_ID: Final = "sec-devnet"
DEV_GENESIS_TIME_MS: Final = 1_764_000_000_000
DEV_NOTE: Final = (  # part of the genesis document hash: frozen, even the old path of this file
    "DEVELOPMENT NETWORK. Every key of this genesis is derived from a PUBLIC label "
    "(see secnode/devnet.py); anyone can sign as these accounts. Never hold value here."
)

DEV_ACCOUNTS: Final[tuple[tuple[str, tuple[str, ...], int], ...]] = (
    ("admin", ("admin", "member"), 0),
    ("issuer", ("issuer", "member"), 100_000_000_00),
    ("arbiter", ("arbiter", "member"), 0),
    ("merchant1", ("merchant", "member"), 0),
    ("merchant2", ("merchant", "member"), 0),
    ("buyer1", ("member",), 1_000_000_00),
    ("buyer2", ("member",), 1_000_000_00),
    ("buyer3", ("member",), 1_000_000_00),
    ("sharer1", ("member",), 10_000_00),
    ("sharer2", ("member",), 10_000_00),
)
"""(name, roles, balance in fen) of each development account."""

DEV_PARAMETERS: Final[dict[str, int]] = {
    "ship_deadline_s": 600,
    "confirm_window_s": 300,
    "return_window_s": 120,
    "dispute_deadline_s": 600,
    "cancel_window_s": 3_600,
    "attest_window_s": 86_400,
    "trust_epoch_blocks": 30,
}
"""Short windows so a newcomer sees escrow deadlines pass within minutes."""


def validator_key(name: str) -> PrivateKey:
    return PrivateKey.from_label(f"validator:{name}")


def dev_account_key(name: str) -> PrivateKey:
    return PrivateKey.from_label(f"account:{name}")


def dev_genesis_document(validators: int = 4) -> dict[str, Any]:
    return {
        "chain_id": DEV_CHAIN_ID,
        "genesis_time_ms": DEV_GENESIS_TIME_MS,
        "note": DEV_NOTE,
        "dev_key_labels": True,
        "validators": [
            {"name": f"node{i}", "public_key": validator_key(f"node{i}").public_key.hex()}
            for i in range(validators)
        ],
        "accounts": [
            {
                "name": name,
                "public_key": dev_account_key(name).public_key.hex(),
                "roles": list(roles),
                "balance": balance,
            }
            for name, roles, balance in DEV_ACCOUNTS
        ],
        "parameters": dict(DEV_PARAMETERS),
        "pretrusted": ["merchant1", "buyer1"],
    }


def dev_genesis(validators: int = 4) -> Genesis:
    return parse_genesis(dev_genesis_document(validators), "development genesis")


@functools.cache
def dev_genesis_hash(validators: int = 4) -> bytes:
    """Genesis document hash of the development network (part of every signature on it)."""
    return dev_genesis(validators).document_hash()
