"""The genesis document: the committed genesis.json is the development genesis; every rule is
rejected with InvalidGenesis naming the field; the initial state conserves credits."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest

from ledger.accounts import (
    ACCOUNT_PREFIX,
    ROLE_BITS,
    get_account,
    get_parameter,
    get_supply,
    mask_to_roles,
)
from ledger.encoding import decode, encode
from ledger.errors import InvalidGenesis
from ledger.genesis import (
    PRETRUSTED_KEY,
    genesis_block,
    genesis_state,
    load_genesis,
    parse_genesis,
)
from ledger.keys import address_of
from ledger.merkle import EMPTY_ROOT
from ledger.parameters import PARAMETERS
from ledger.validator_state import current_validators
from secnode.network.devnet import DEV_ACCOUNTS, dev_account_key, dev_genesis, dev_genesis_document

GENESIS_FILE = Path(__file__).resolve().parent.parent / "genesis.json"

Mutation = Callable[[dict[str, Any]], object]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "genesis.json"
    path.write_text(text)
    return path


# --- the committed development genesis ---------------------------------------------------------


def test_committed_genesis_file_is_the_development_genesis() -> None:
    # If this fails, regenerate genesis.json from secnode.network.devnet (or fix the code): the file
    # and the code must never drift, or `sec testnet` would run a different chain.
    assert json.loads(GENESIS_FILE.read_text()) == dev_genesis_document()


def test_committed_genesis_file_loads() -> None:
    genesis = load_genesis(GENESIS_FILE)
    assert genesis == dev_genesis()
    assert genesis.document_hash() == dev_genesis().document_hash()
    assert genesis.dev_key_labels
    assert "DEVELOPMENT" in genesis.note


def test_development_accounts_use_their_labelled_keys() -> None:
    genesis = dev_genesis()
    assert [a.name for a in genesis.accounts] == [name for name, _, _ in DEV_ACCOUNTS]
    for account in genesis.accounts:
        assert account.public_key == dev_account_key(account.name).public_key.hex()
        assert genesis.account_address(account.name) == dev_account_key(account.name).address


def test_document_hash_is_domain_prefixed_encoding_of_the_full_document() -> None:
    genesis = dev_genesis()
    document = dev_genesis_document()
    expected = hashlib.sha256(b"SEC/genesis/v1" + encode(document)).digest()
    assert genesis.document_hash() == expected


def test_protocol_document_worked_example() -> None:
    # Printed in docs/protocol.md, "Worked example": change both together.
    genesis = dev_genesis()
    assert genesis.document_hash().hex() == (
        "9e773a5b88c50077ae27120deb6f705b3928e65e99a00aa0b1c0f7c5df15cbf1"
    )
    assert genesis.validator_set().hash().hex() == (
        "03afdfa9cd9f7f61967f4a56ad00ab61c1127875fc341990af320f798c00ab18"
    )


def test_document_hash_fills_in_defaults_and_ignores_key_order() -> None:
    explicit = dev_genesis_document() | {"note": "", "dev_key_labels": False}
    explicit.update(parameters={}, pretrusted=[])
    implicit = {
        key: value
        for key, value in reversed(explicit.items())
        if key not in ("note", "dev_key_labels", "parameters", "pretrusted")
    }
    assert parse_genesis(implicit).document_hash() == parse_genesis(explicit).document_hash()


def test_document_hash_changes_with_any_field() -> None:
    base = parse_genesis(dev_genesis_document()).document_hash()
    changed = dev_genesis_document()
    changed["accounts"][5]["balance"] += 1
    assert parse_genesis(changed).document_hash() != base


# --- the genesis state and block ---------------------------------------------------------------


def test_genesis_state_conserves_credits() -> None:
    genesis = dev_genesis()
    state = genesis_state(genesis)
    balances = [msgpack.unpackb(raw)[2] for _, raw in state.iterate_prefix(ACCOUNT_PREFIX)]
    supply = get_supply(state)
    assert len(balances) == len(genesis.accounts)
    assert supply.minted == sum(balances) == sum(a.balance for a in genesis.accounts)
    assert (supply.burned, supply.escrow) == (0, 0)


def test_genesis_state_holds_accounts_parameters_validators_and_pretrusted() -> None:
    genesis = dev_genesis()
    state = genesis_state(genesis)
    for entry in genesis.accounts:
        account = get_account(state, address_of(bytes.fromhex(entry.public_key)))
        assert account is not None
        assert (account.nonce, account.balance, account.name) == (0, entry.balance, entry.name)
        assert mask_to_roles(account.roles) == sorted(entry.roles, key=list(ROLE_BITS).index)
    for name, spec in PARAMETERS.items():
        assert get_parameter(state, name) == genesis.parameters.get(name, spec.default)
    assert current_validators(state) == genesis.validator_set()
    pretrusted = sorted(genesis.account_address(name) for name in genesis.pretrusted)
    raw = state.get(PRETRUSTED_KEY)
    assert raw is not None and decode(raw) == pretrusted


def test_genesis_block() -> None:
    genesis = dev_genesis()
    root = genesis_state(genesis).compute_root()
    header = genesis_block(genesis, root).header
    assert (header.height, header.view, header.proposer) == (0, 0, bytes(20))
    assert header.prev_hash == genesis.document_hash()
    assert header.timestamp_ms == genesis.genesis_time_ms
    assert header.tx_root == header.receipts_root == EMPTY_ROOT
    assert header.state_root == root
    assert header.validators_hash == genesis.validator_set().hash()


# --- rejected documents ------------------------------------------------------------------------


def test_invalid_not_json(tmp_path: Path) -> None:
    with pytest.raises(InvalidGenesis, match="is not valid JSON"):
        load_genesis(_write(tmp_path, '{"chain_id": "sec-devnet",'))


def test_invalid_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidGenesis, match="cannot read genesis file"):
        load_genesis(tmp_path / "absent.json")


def test_invalid_duplicate_json_key(tmp_path: Path) -> None:
    # JSON parsers disagree on which duplicate wins, so an independent verifier could compute
    # another genesis hash from the same file: such a file is ambiguous and refused.
    text = json.dumps(dev_genesis_document())
    text = text.replace('"chain_id": "sec-devnet"', '"chain_id": "sec-devnet", "chain_id": "x"')
    with pytest.raises(InvalidGenesis, match="duplicate key 'chain_id'"):
        load_genesis(_write(tmp_path, text))


@pytest.mark.parametrize("document", [[], "genesis", 1, None])
def test_invalid_not_an_object(document: Any) -> None:
    with pytest.raises(InvalidGenesis, match="valid dictionary"):
        parse_genesis(document)


def _account(name: str, *, key: str | None = None, roles: list[str] | None = None) -> Any:
    return {
        "name": name,
        "public_key": key or dev_account_key(name).public_key.hex(),
        "roles": roles or ["member"],
        "balance": 0,
    }


def _first_validator_key(document: dict[str, Any]) -> str:
    key: str = document["validators"][0]["public_key"]
    return key


INVALID: list[tuple[str, Mutation, str]] = [
    # (name, mutation of the development document, pattern the error must contain)
    ("unknown top-level field", lambda d: d.update(fee=1), r"fee: Extra inputs are not permitted"),
    ("missing chain id", lambda d: d.pop("chain_id"), r"chain_id: Field required"),
    ("chain id upper case", lambda d: d.update(chain_id="SEC"), r"chain_id: String should match"),
    ("chain id with space", lambda d: d.update(chain_id="sec net"), r"chain_id: String should"),
    ("chain id empty", lambda d: d.update(chain_id=""), r"chain_id: String should match"),
    ("chain id too long", lambda d: d.update(chain_id="c" * 65), r"chain_id: String should"),
    ("chain id not text", lambda d: d.update(chain_id=7), r"chain_id: Input should be a valid str"),
    ("time negative", lambda d: d.update(genesis_time_ms=-1), r"genesis_time_ms: .*greater than"),
    ("time float", lambda d: d.update(genesis_time_ms=1.5e12), r"genesis_time_ms: .*valid integer"),
    ("time text", lambda d: d.update(genesis_time_ms="1"), r"genesis_time_ms: .*valid integer"),
    ("note too long", lambda d: d.update(note="n" * 1001), r"note: String should have at most"),
    ("dev labels int", lambda d: d.update(dev_key_labels=1), r"dev_key_labels: .*valid boolean"),
    ("no validators", lambda d: d.update(validators=[]), r"validators: List should have at least"),
    (
        "duplicate validator key",
        lambda d: d["validators"].append(d["validators"][0] | {"name": "node9"}),
        r"validators: public key 'f1619036.* is listed twice",
    ),
    (
        "duplicate validator name",
        lambda d: d["validators"][1].update(name="node0"),
        r"validators: name 'node0' is listed twice",
    ),
    (
        "validator key not hex",
        lambda d: d["validators"][0].update(public_key="zz" * 32),
        r"validators\.0\.public_key: String should match pattern",
    ),
    (
        "validator key upper-case hex",
        lambda d: d["validators"][0].update(public_key=_first_validator_key(d).upper()),
        r"validators\.0\.public_key: String should match pattern",
    ),
    (
        "validator key short",
        lambda d: d["validators"][0].update(public_key="ab" * 31),
        r"validators\.0\.public_key: String should match pattern",
    ),
    (
        "validator unknown field",
        lambda d: d["validators"][0].update(power=10),
        r"validators\.0\.power: Extra inputs are not permitted",
    ),
    ("no accounts", lambda d: d.update(accounts=[]), r"accounts: List should have at least 1"),
    (
        "unknown role",
        lambda d: d["accounts"][3]["roles"].append("root"),
        r"accounts\.3\.roles: Value error, unknown role 'root'",
    ),
    (
        "duplicate role",
        lambda d: d["accounts"][3]["roles"].append("merchant"),
        r"accounts\.3\.roles: Value error, roles must be unique",
    ),
    (
        "duplicate account name",
        lambda d: d["accounts"].append(_account("buyer1", key="ab" * 32)),
        r"accounts: name 'buyer1' is listed twice",
    ),
    (
        "duplicate account key",
        lambda d: d["accounts"].append(
            _account("buyer9", key=dev_account_key("buyer1").public_key.hex())
        ),
        r"accounts: public key '082f3a87.* is listed twice",
    ),
    (
        "account name upper case",
        lambda d: d["accounts"].append(_account("Buyer9")),
        r"accounts\.10\.name: String should match pattern",
    ),
    (
        "account key not hex",
        lambda d: d["accounts"][0].update(public_key="g" * 64),
        r"accounts\.0\.public_key: String should match pattern",
    ),
    (
        "negative balance",
        lambda d: d["accounts"][5].update(balance=-1),
        r"accounts\.5\.balance: Input should be greater than or equal to 0",
    ),
    (
        "balance above 2**63-1",
        lambda d: d["accounts"][5].update(balance=2**63),
        r"accounts\.5\.balance: Input should be less than or equal to",
    ),
    (
        "total balance above 2**63-1",
        lambda d: [a.update(balance=2**62) for a in d["accounts"]],
        r"accounts: total balance .* exceeds 2\*\*63-1",
    ),
    (
        "balance as text",
        lambda d: d["accounts"][5].update(balance="5"),
        r"accounts\.5\.balance: Input should be a valid integer",
    ),
    (
        "balance as float",
        lambda d: d["accounts"][5].update(balance=5.0),
        r"accounts\.5\.balance: Input should be a valid integer",
    ),
    (
        "balance as bool",
        lambda d: d["accounts"][5].update(balance=True),
        r"accounts\.5\.balance: Input should be a valid integer",
    ),
    (
        "roles as text",
        lambda d: d["accounts"][5].update(roles="member"),
        r"accounts\.5\.roles: Input should be a valid list",
    ),
    (
        "account unknown field",
        lambda d: d["accounts"][5].update(nonce=3),
        r"accounts\.5\.nonce: Extra inputs are not permitted",
    ),
    (
        "no admin account",
        lambda d: d["accounts"][0].update(roles=["member"]),
        r"accounts: at least one account needs the admin role",
    ),
    (
        "unknown parameter",
        lambda d: d["parameters"].update(block_reward=1),
        r"parameters\.block_reward: unknown parameter 'block_reward'",
    ),
    (
        "parameter above its range",
        lambda d: d["parameters"].update(max_commission_bps=3001),
        r"parameters\.max_commission_bps: .*3001 outside \[0, 3000\]",
    ),
    (
        "parameter below its range",
        lambda d: d["parameters"].update(validator_change_delay=1),
        r"parameters\.validator_change_delay: .*1 outside \[8, 10000\]",
    ),
    (
        # Below the replicas' bound: a genesis the ledger accepts must be one consensus follows.
        "validator change delay below the replica bound",
        lambda d: d["parameters"].update(validator_change_delay=7),
        r"validator_change_delay=7 outside \[8, 10000\] \(MIN_VALIDATOR_CHANGE_DELAY=8",
    ),
    (
        "parameter as text",
        lambda d: d["parameters"].update(referral_levels="2"),
        r"parameters\.referral_levels: Input should be a valid integer",
    ),
    (
        "parameter as bool",
        lambda d: d["parameters"].update(referral_levels=True),
        r"parameters\.referral_levels: Input should be a valid integer",
    ),
    (
        "pretrusted name not an account",
        lambda d: d["pretrusted"].append("nobody"),
        r"pretrusted: 'nobody' is not a genesis account",
    ),
    (
        "pretrusted name twice",
        lambda d: d["pretrusted"].append("buyer1"),
        r"pretrusted: 'buyer1' is listed twice",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "match"), [(m, e) for _, m, e in INVALID], ids=[name for name, *_ in INVALID]
)
def test_invalid_document(mutate: Mutation, match: str) -> None:
    document = dev_genesis_document()
    mutate(document)
    with pytest.raises(InvalidGenesis, match=match):
        parse_genesis(document)


def test_invalid_document_from_file_names_the_file(tmp_path: Path) -> None:
    document = dev_genesis_document()
    document["accounts"][5]["balance"] = "5"
    path = _write(tmp_path, json.dumps(document))
    with pytest.raises(InvalidGenesis, match=r"genesis\.json: accounts\.5\.balance"):
        load_genesis(path)


def test_invalid_every_problem_is_listed() -> None:
    document = dev_genesis_document() | {"chain_id": "BAD", "fee": 1}
    with pytest.raises(InvalidGenesis, match=r"chain_id: .*; fee: "):
        parse_genesis(document)
