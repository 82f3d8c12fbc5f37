"""`sec query status|block|tx|account`: reads from a node, verifying the proofs it returns
(inclusion under the block's tx_root, state proofs under the state root).
"""

from __future__ import annotations

import argparse
from typing import Any

from contracts import TX_TYPES
from ledger.keys import (
    format_address,
)
from ledger.merkle import leaf_hash, verify_inclusion
from ledger.state_tree import verify_state_proof
from ledger.transactions import (
    decode_transaction,
)
from secnode.cli.common import (
    ADDRESS_HELP,
    CommandError,
    connect,
    format_time,
    hash_hex,
    print_fields,
    print_json,
    receipt_line,
    resolve_address,
)
from secnode.schema.jsonview import hashes_from_json, hex_from_json, state_proof_from_json


def _query_status(args: argparse.Namespace) -> int:
    status = connect(args).call("sec_status")
    if args.json:
        print_json(status)
        return 0
    print_fields(
        [
            ("chain", status["chain_id"]),
            ("node", f"{status['node_name']} ({status['node_address']})"),
            ("height", status["height"]),
            ("head", status["head_hash"]),
            ("head time", format_time(status["head_time_ms"])),
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
            params["hash"] = hash_hex(args.block, "BLOCK (a height or a block hash)")
    block = connect(args).call("sec_getBlock", params)
    if args.json:
        print_json(block)
        return 0
    header = block["header"]
    rows: list[tuple[str, Any]] = [
        ("height", header["height"]),
        ("hash", block["hash"]),
        ("time", format_time(header["timestamp_ms"])),
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
            rows.append(("tx", f"{tx['hash']} {summary}: {receipt_line(receipt)}"))
    else:
        rows += [("tx", tx_hash) for tx_hash in block["tx_hashes"]]
    print_fields(rows)
    return 0


def verify_transaction_answer(tx_hash: str, answer: dict[str, Any]) -> None:
    """Check the raw bytes hash to `tx_hash` and, when committed, the inclusion proof."""
    raw = hex_from_json(answer["raw"], "raw")
    if decode_transaction(raw, TX_TYPES).hash.hex() != tx_hash:
        raise CommandError(f"node returned a transaction that does not hash to {tx_hash}")
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
    tx_hash = hash_hex(args.hash, "HASH")
    answer = connect(args).call("sec_getTransaction", {"hash": tx_hash})
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
            ("result", receipt_line(answer["receipt"])),
            ("inclusion", f"verified under tx root {proof['tx_root']}"),
        ]
    print_fields(rows)
    return 0


def _query_account(args: argparse.Namespace) -> int:
    address = resolve_address(args.address, "ADDRESS")
    params = {"address": format_address(address), "prove": args.prove}
    answer = connect(args).call("sec_getAccount", params)
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


def add_commands(
    what: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add status, block, tx and account to `sec query`."""
    status = what.add_parser("status", help="node and chain status", parents=[common])
    status.set_defaults(handler=_query_status)
    block = what.add_parser("block", help="a block (default: latest)", parents=[common])
    block.add_argument("block", nargs="?", metavar="HEIGHT|HASH")
    block.add_argument("--full", action="store_true", help="with transactions and receipts")
    block.set_defaults(handler=_query_block)
    tx_query = what.add_parser("tx", help="a transaction and its inclusion proof", parents=[common])
    tx_query.add_argument("hash", metavar="HASH")
    tx_query.set_defaults(handler=_query_tx)
    account = what.add_parser("account", help="an account (optionally proven)", parents=[common])
    account.add_argument("address", metavar="ADDRESS", help=ADDRESS_HELP)
    account.add_argument("--prove", action="store_true", help="fetch and verify a state proof")
    account.set_defaults(handler=_query_account)
