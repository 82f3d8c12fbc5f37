"""`sec tx ...` and `sec query ...`: the CLI's JSON-RPC client commands.

`sec tx VERB` builds a transaction body (the order and referral verbs are in
`secnode.cli_orders`), takes the sender's next nonce from the node
(sec_getAccount, or --nonce), signs it locally with --key (a key file, or dev:NAME for a public
development account), and submits it with sec_sendTransaction; --wait waits for the commit and
prints the receipt. `sec query` reads status, blocks, transactions and accounts, and verifies the
proofs the node returns (inclusion under the block's tx_root, state proofs under the state root).

Output: aligned key/value lines by default, the RPC result as JSON with --json. Errors: one
line on stderr, exit status 1 (also when a committed transaction failed). Keys never leave
this process; only signed transactions are sent.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from contracts import TX_TYPES
from ledger.accounts import ROLE_NAMES
from ledger.errors import LedgerError
from ledger.keys import (
    PUBLIC_KEY_SIZE,
    PrivateKey,
    format_address,
    parse_address,
    read_key_record,
)
from ledger.merkle import leaf_hash, verify_inclusion
from ledger.schema import MAX_AMOUNT
from ledger.state_tree import verify_state_proof
from ledger.transactions import (
    AccountRegister,
    AccountRoles,
    Burn,
    Mint,
    ParameterSet,
    Transfer,
    TxBody,
    ValidatorUpdate,
    decode_transaction,
    sign_transaction,
)
from secnode.jsonview import hashes_from_json, hex_from_json, state_proof_from_json
from secnode.rpc_client import DEFAULT_RPC_URL, RpcCallError, RpcClient, RpcClientError

DEV_PREFIX: Final = "dev:"
NOT_FOUND_CODE: Final = -32000
NONCE_RETRIES: Final = 100
_HASH_RE: Final = re.compile(r"^[0-9a-fA-F]{64}$")
_VALIDATOR_NAME_RE: Final = re.compile(r"^node[0-9]{1,2}$")

Handler = Callable[[argparse.Namespace], int]


class ClientInputError(Exception):
    """A bad command-line value; the message names the option and the value."""


# --- values from the command line ---------------------------------------------------------------


def _dev_account_names() -> list[str]:
    from secnode.devnet import DEV_ACCOUNTS  # pydantic-heavy: imported only when used

    return [name for name, _, _ in DEV_ACCOUNTS]


def _dev_key(name: str, option: str, *, validator: bool = False) -> PrivateKey:
    from secnode.devnet import account_key, validator_key

    if validator:
        if not _VALIDATOR_NAME_RE.match(name):
            raise ClientInputError(f"{option}: {name!r} is not a development validator (node0...)")
        return validator_key(name)
    names = _dev_account_names()
    if name not in names:
        raise ClientInputError(
            f"{option}: unknown development account {name!r}; known: {', '.join(names)}"
        )
    return account_key(name)


def load_signing_key(spec: str) -> PrivateKey:
    """--key FILE or --key dev:NAME (announcing on stderr that dev keys are public)."""
    return load_signing_record(spec)[0]


def load_signing_record(spec: str) -> tuple[PrivateKey, bytes | None]:
    """`load_signing_key` plus the genesis hash the key file was made for (None for dev keys
    and for key files that record none)."""
    if spec.startswith(DEV_PREFIX):
        name = spec[len(DEV_PREFIX) :]
        key = _dev_key(name, "--key")
        print(
            f"sec: note: {spec} is a development key derived from a PUBLIC label; "
            "anyone can sign as this account",
            file=sys.stderr,
        )
        return key, None
    record = read_key_record(Path(spec))
    return record.key, record.genesis_hash


def check_key_network(spec: str, made_for: bytes | None, rpc: str, status: dict[str, Any]) -> bytes:
    """The node's genesis hash from its `sec_status`; raise ClientInputError if the key file
    `spec` was made for another network (a signature there would be for the wrong network)."""
    node_genesis = hex_from_json(status["genesis_hash"], "sec_status genesis_hash")
    if len(node_genesis) != 32:
        raise ClientInputError(f"{rpc} answered a genesis_hash of {len(node_genesis)} bytes")
    if made_for is not None and made_for != node_genesis:
        raise ClientInputError(
            f"--key {spec} was made for the network with genesis {made_for.hex()}, but the node "
            f"at {rpc} runs chain {status['chain_id']!r} with genesis {node_genesis.hex()}; "
            "refusing to sign for another network"
        )
    return node_genesis


def resolve_address(text: str, option: str, *, validator: bool = False) -> bytes:
    """sec1 text, or dev:NAME (a development account, or dev:nodeN validator)."""
    if text.startswith(DEV_PREFIX):
        return _dev_key(text[len(DEV_PREFIX) :], option, validator=validator).address
    try:
        return parse_address(text)
    except LedgerError as exc:
        raise ClientInputError(f"{option}: {exc}") from None


def resolve_public_key(text: str, option: str, *, validator: bool = False) -> bytes:
    """64 hex characters, or dev:NAME."""
    if text.startswith(DEV_PREFIX):
        return bytes(_dev_key(text[len(DEV_PREFIX) :], option, validator=validator).public_key)
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != PUBLIC_KEY_SIZE:
        raise ClientInputError(
            f"{option}: a public key is {2 * PUBLIC_KEY_SIZE} hex characters, got {text!r}"
        )
    return key


def parse_roles(text: str, option: str) -> tuple[str, ...]:
    roles = tuple(r.strip() for r in text.split(",") if r.strip())
    for role in roles:
        if role not in ROLE_NAMES:
            raise ClientInputError(
                f"{option}: unknown role {role!r}; roles are {', '.join(ROLE_NAMES)}"
            )
    return roles


def _amount(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_AMOUNT:
        raise argparse.ArgumentTypeError(f"must be a whole number of fen >= 1, got {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_AMOUNT:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}")
    return value


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 60:
        raise argparse.ArgumentTypeError(f"must be seconds in (0, 60], got {text!r}")
    return value


def _hash(text: str, what: str) -> str:
    if not _HASH_RE.match(text):
        raise ClientInputError(f"{what} must be 64 hex characters, got {text!r}")
    return text.lower()


# --- output ------------------------------------------------------------------------------------


def print_fields(rows: list[tuple[str, Any]]) -> None:
    """Aligned `key  value` lines."""
    width = max((len(key) for key, _ in rows), default=0) + 2
    for key, value in rows:
        print(f"{key:<{width}}{value}")


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


def _time(ms: int) -> str:
    stamp = datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def _receipt_line(receipt: dict[str, Any]) -> str:
    if receipt["ok"]:
        return "ok"
    return f"failed ({receipt['code']}): {receipt['message']}"


def _guarded(handler: Handler) -> Handler:
    """Turn client-side failures into one line on stderr and exit status 1."""

    def run(args: argparse.Namespace) -> int:
        try:
            status = handler(args)
        except (ClientInputError, RpcClientError, LedgerError) as exc:
            line = " ".join(str(exc).split())
        except (KeyError, TypeError) as exc:
            # A result without the documented fields: another service, or an incompatible node.
            line = (
                f"unexpected answer from {args.rpc} ({type(exc).__name__}: {exc}); "
                "is it a SEC node of a compatible version?"
            )
        else:
            return status
        print(f"sec: error: {line}", file=sys.stderr)
        return 1

    return run


def _client(args: argparse.Namespace, wait_s: float = 0.0) -> RpcClient:
    return RpcClient(args.rpc, timeout_s=30.0 + wait_s)


# --- sec tx ------------------------------------------------------------------------------------


def _sender_nonce(client: RpcClient, address: bytes) -> int:
    try:
        account = client.call("sec_getAccount", {"address": format_address(address)})
    except RpcCallError as exc:
        if exc.code == NOT_FOUND_CODE:
            raise ClientInputError(
                f"sender {format_address(address)} is not registered on this chain"
            ) from None
        raise
    nonce: int = account["nonce"]
    return nonce


def submit(args: argparse.Namespace, body: TxBody, *, creates_order: bool = False) -> int:
    """Sign and submit one transaction; print the outcome (see the module docstring).

    With `creates_order` the output also names the order id (the transaction hash)."""
    key, made_for = load_signing_record(args.key)
    client = _client(args, args.timeout if args.wait else 0.0)
    status = client.call("sec_status")
    genesis_hash = check_key_network(args.key, made_for, args.rpc, status)
    chain_id: str = status["chain_id"]
    nonce = args.nonce if args.nonce is not None else _sender_nonce(client, key.address)
    params = {"wait": "commit" if args.wait else "mempool", "timeout_s": args.timeout}
    for _ in range(NONCE_RETRIES):
        tx = sign_transaction(key, chain_id, nonce, body, genesis_hash=genesis_hash)
        try:
            result = client.call("sec_sendTransaction", {"tx": tx.encoded.hex(), **params})
            break
        except RpcCallError as exc:
            # Transactions of this sender still pending hold the committed nonce: take the next.
            pending = isinstance(exc.data, dict) and exc.data.get("reason") == "nonce_pending"
            if not pending or args.nonce is not None:
                raise
            nonce += 1
    else:
        raise ClientInputError(f"{NONCE_RETRIES} pending transactions ahead; retry with --nonce")
    output = {"type": tx.type, "sender": format_address(key.address), "nonce": nonce, **result}
    if creates_order:
        output["order_id"] = result["hash"]
    if args.json:
        print_json(output)
    else:
        rows: list[tuple[str, Any]] = [
            ("hash", result["hash"]),
            *([("order", result["hash"])] if creates_order else []),
            ("type", tx.type),
            ("sender", output["sender"]),
            ("nonce", nonce),
            ("status", result["status"]),
        ]
        receipt = result.get("receipt")
        if result["status"] == "committed" and receipt is not None:
            rows += [("height", result["height"]), ("index", result["index"])]
            rows.append(("result", _receipt_line(receipt)))
            rows += [("event", json.dumps(event, sort_keys=True)) for event in receipt["events"]]
        print_fields(rows)
    receipt = result.get("receipt")
    return 1 if receipt is not None and not receipt["ok"] else 0


def _tx_account_register(args: argparse.Namespace) -> int:
    body = AccountRegister(
        resolve_public_key(args.public_key, "--public-key"),
        parse_roles(args.roles, "--roles"),
        args.name,
    )
    return submit(args, body)


def _tx_roles(args: argparse.Namespace) -> int:
    body = AccountRoles(
        resolve_address(args.address, "--address"),
        parse_roles(args.grant, "--grant"),
        parse_roles(args.revoke, "--revoke"),
    )
    return submit(args, body)


def _tx_mint(args: argparse.Namespace) -> int:
    return submit(args, Mint(resolve_address(args.to, "--to"), args.amount))


def _tx_burn(args: argparse.Namespace) -> int:
    return submit(args, Burn(args.amount))


def _tx_transfer(args: argparse.Namespace) -> int:
    body = Transfer(resolve_address(args.to, "--to"), args.amount, args.memo)
    return submit(args, body)


def _tx_param_set(args: argparse.Namespace) -> int:
    return submit(args, ParameterSet(args.name, args.value))


def _tx_validator_update(args: argparse.Namespace) -> int:
    add = tuple(resolve_public_key(k, "--add", validator=True) for k in args.add)
    remove = tuple(resolve_address(a, "--remove", validator=True) for a in args.remove)
    if not add and not remove:
        raise ClientInputError("validator-update needs --add and/or --remove")
    return submit(args, ValidatorUpdate(add, remove))


# --- sec query ---------------------------------------------------------------------------------


def _query_status(args: argparse.Namespace) -> int:
    status = _client(args).call("sec_status")
    if args.json:
        print_json(status)
        return 0
    print_fields(
        [
            ("chain", status["chain_id"]),
            ("node", f"{status['node_name']} ({status['node_address']})"),
            ("height", status["height"]),
            ("head", status["head_hash"]),
            ("head time", _time(status["head_time_ms"])),
            ("view", _view_text(status)),
            ("view changes", status["view_changes"]),
            ("validator", "yes" if status["is_validator"] else "no"),
            ("peers", status["peers"]),
            ("syncing", "yes" if status["syncing"] else "no"),
            ("mempool", status["mempool_size"]),
        ]
    )
    return 0


def _view_text(status: dict[str, Any]) -> str:
    """The view, and a warning when the node is known to be outside the group's view."""
    if status.get("view_in_sync", True):
        return str(status["view"])
    return f"{status['view']} (NOT in the group's view {status.get('group_view')}: not voting)"


def _query_block(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"full": args.full}
    if args.block is not None:
        if args.block.isdigit():
            params["height"] = int(args.block)
        else:
            params["hash"] = _hash(args.block, "BLOCK (a height or a block hash)")
    block = _client(args).call("sec_getBlock", params)
    if args.json:
        print_json(block)
        return 0
    header = block["header"]
    rows: list[tuple[str, Any]] = [
        ("height", header["height"]),
        ("hash", block["hash"]),
        ("time", _time(header["timestamp_ms"])),
        ("proposer", header["proposer"]),
        ("view", header["view"]),
        ("prev hash", header["prev_hash"]),
        ("tx root", header["tx_root"]),
        ("state root", header["state_root"]),
        ("transactions", block["tx_count"]),
    ]
    if block.get("transactions") is not None:
        receipts = block.get("receipts") or []
        for tx, receipt in zip(block["transactions"], receipts, strict=False):
            summary = f"{tx['type']} from {tx['sender_address']} nonce {tx['nonce']}"
            rows.append(("tx", f"{tx['hash']} {summary}: {_receipt_line(receipt)}"))
    else:
        rows += [("tx", tx_hash) for tx_hash in block["tx_hashes"]]
    print_fields(rows)
    return 0


def verify_transaction_answer(tx_hash: str, answer: dict[str, Any]) -> None:
    """Check the raw bytes hash to `tx_hash` and, when committed, the inclusion proof."""
    raw = hex_from_json(answer["raw"], "raw")
    if decode_transaction(raw, TX_TYPES).hash.hex() != tx_hash:
        raise ClientInputError(f"node returned a transaction that does not hash to {tx_hash}")
    proof = answer.get("proof")
    if proof is not None:
        verify_inclusion(
            leaf_hash(raw),
            proof["leaf_index"],
            proof["tree_size"],
            hashes_from_json(proof["hashes"], "proof.hashes"),
            hex_from_json(proof["tx_root"], "proof.tx_root"),
        )


def _query_tx(args: argparse.Namespace) -> int:
    tx_hash = _hash(args.hash, "HASH")
    answer = _client(args).call("sec_getTransaction", {"hash": tx_hash})
    verify_transaction_answer(tx_hash, answer)
    if args.json:
        print_json({**answer, "verified": True})
        return 0
    tx = answer["tx"]
    rows: list[tuple[str, Any]] = [
        ("hash", answer["hash"]),
        ("status", answer["status"]),
        ("type", tx["type"]),
        ("sender", tx["sender_address"]),
        ("nonce", tx["nonce"]),
    ]
    rows += [(f"body.{name}", value) for name, value in tx["body"].items()]
    if answer["status"] == "committed":
        proof = answer["proof"]
        rows += [
            ("height", answer["height"]),
            ("index", answer["index"]),
            ("block", answer["block_hash"]),
            ("result", _receipt_line(answer["receipt"])),
            ("inclusion", f"verified under tx root {proof['tx_root']}"),
        ]
    print_fields(rows)
    return 0


def _query_account(args: argparse.Namespace) -> int:
    address = resolve_address(args.address, "ADDRESS")
    params = {"address": format_address(address), "prove": args.prove}
    answer = _client(args).call("sec_getAccount", params)
    if args.prove:
        value = answer.get("value")
        verify_state_proof(
            hex_from_json(answer["state_root"], "state_root"),
            b"acct:" + address,
            None if value is None else hex_from_json(value, "value"),
            state_proof_from_json(answer["proof"]),
        )
    if args.json:
        print_json({**answer, "verified": True} if args.prove else answer)
        return 0
    rows: list[tuple[str, Any]] = [("address", answer["address"])]
    if answer["exists"]:
        rows += [
            ("name", answer["name"] or "-"),
            ("roles", ", ".join(answer["roles"]) or "-"),
            ("balance", f"{answer['balance']} fen"),
            ("nonce", answer["nonce"]),
            ("public key", answer["public_key"]),
        ]
    else:
        rows.append(("exists", "no"))
    rows += [("height", answer["height"]), ("state root", answer["state_root"])]
    if args.prove:
        kind = "membership" if answer["exists"] else "non-membership"
        rows.append(("proof", f"{kind} verified under the state root"))
    print_fields(rows)
    return 0


# --- parser ------------------------------------------------------------------------------------


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--rpc",
        default=DEFAULT_RPC_URL,
        metavar="URL",
        help=f"node RPC URL (default {DEFAULT_RPC_URL})",
    )
    common.add_argument("--json", action="store_true", help="machine-readable output")
    return common


def _tx_options() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--key",
        required=True,
        metavar="FILE|dev:NAME",
        help="signing key file, or dev:NAME for a development account (public keys!)",
    )
    options.add_argument("--wait", action="store_true", help="wait for commit; print the receipt")
    options.add_argument(
        "--timeout", type=_timeout, default=30.0, metavar="S", help="seconds --wait waits (<= 60)"
    )
    options.add_argument("--nonce", type=_count, help="sender nonce (default: asked from the node)")
    return options


ADDRESS_HELP: Final = "sec1 address or dev:NAME"


def add_client_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Add the `tx` and `query` command groups to the `sec` parser."""
    common = _common_options()
    parents = [common, _tx_options()]
    tx = subparsers.add_parser("tx", help="sign and submit a transaction")
    verbs = tx.add_subparsers(dest="tx_verb", metavar="VERB", required=True)

    def verb(name: str, help_text: str, handler: Handler) -> argparse.ArgumentParser:
        parser = verbs.add_parser(name, help=help_text, parents=parents)
        parser.set_defaults(handler=_guarded(handler))
        return parser

    register = verb("account-register", "admin: register an account", _tx_account_register)
    register.add_argument("--public-key", required=True, metavar="HEX|dev:NAME")
    register.add_argument("--roles", default="member", metavar="ROLE,...", help="default member")
    register.add_argument("--name", help="optional label")
    roles = verb("roles", "admin: grant or revoke roles", _tx_roles)
    roles.add_argument("--address", required=True, metavar="ADDRESS", help=ADDRESS_HELP)
    roles.add_argument("--grant", default="", metavar="ROLE,...")
    roles.add_argument("--revoke", default="", metavar="ROLE,...")
    mint = verb("mint", "issuer: create credits", _tx_mint)
    mint.add_argument("--to", required=True, metavar="ADDRESS", help=ADDRESS_HELP)
    mint.add_argument("--amount", required=True, type=_amount, metavar="FEN")
    burn = verb("burn", "issuer: destroy own credits", _tx_burn)
    burn.add_argument("--amount", required=True, type=_amount, metavar="FEN")
    transfer = verb("transfer", "move credits to another account", _tx_transfer)
    transfer.add_argument("--to", required=True, metavar="ADDRESS", help=ADDRESS_HELP)
    transfer.add_argument("--amount", required=True, type=_amount, metavar="FEN")
    transfer.add_argument("--memo", help="free text, at most 140 characters")
    param = verb("param-set", "admin: change a chain parameter", _tx_param_set)
    param.add_argument("--name", required=True)
    param.add_argument("--value", required=True, type=_count)
    validators = verb("validator-update", "admin: add/remove validators", _tx_validator_update)
    validators.add_argument("--add", nargs="+", default=[], metavar="HEX|dev:nodeN")
    validators.add_argument("--remove", nargs="+", default=[], metavar="ADDRESS|dev:nodeN")

    query = subparsers.add_parser("query", help="read from a node (verifying proofs)")
    what = query.add_subparsers(dest="query_what", metavar="WHAT", required=True)
    status = what.add_parser("status", help="node and chain status", parents=[common])
    status.set_defaults(handler=_guarded(_query_status))
    block = what.add_parser("block", help="a block (default: latest)", parents=[common])
    block.add_argument("block", nargs="?", metavar="HEIGHT|HASH")
    block.add_argument("--full", action="store_true", help="with transactions and receipts")
    block.set_defaults(handler=_guarded(_query_block))
    tx_query = what.add_parser("tx", help="a transaction and its inclusion proof", parents=[common])
    tx_query.add_argument("hash", metavar="HASH")
    tx_query.set_defaults(handler=_guarded(_query_tx))
    account = what.add_parser("account", help="an account (optionally proven)", parents=[common])
    account.add_argument("address", metavar="ADDRESS", help=ADDRESS_HELP)
    account.add_argument("--prove", action="store_true", help="fetch and verify a state proof")
    account.set_defaults(handler=_guarded(_query_account))

    from secnode.cli_orders import add_order_commands  # imports this module's helpers

    add_order_commands(verbs, what, parents, common)

    from secnode.cli_audit import add_trust_commands  # tx attest, query trust|attestations

    add_trust_commands(verbs, what, parents, common)
