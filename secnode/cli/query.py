"""`sec query status|block|tx|account`: reads from a node, verifying the proofs it returns
(inclusion under the block's tx_root, state proofs under the state root).
"""

from __future__ import annotations

import argparse
from typing import Any

from ledger.keys import (
    format_address,
)
from ledger.merkle import leaf_hash, verify_inclusion
from secnode.cli.common import (
    ADDRESS_HELP,
    CommandError,
    connect,
    format_time,
    hash_hex,
    print_fields,
    print_json,
    receipt_line,
    requested_proof,
    resolve_address,
)
from secnode.schema import models as m


def _query_status(args: argparse.Namespace) -> int:
    status = connect(args).call_as("sec_status", None, m.StatusResult)
    if args.json:
        print_json(status.model_dump(mode="json"))
        return 0
    print_fields(
        [
            ("chain", status.chain_id),
            ("node", f"{status.node_name} ({format_address(status.node_address)})"),
            ("height", status.height),
            ("head", status.head_hash.hex()),
            ("head time", format_time(status.head_time_ms)),
            ("view", _view_text(status.view, status.view_in_sync, status.group_view)),
            ("view changes", status.view_changes),
            ("validator", "yes" if status.is_validator else "no"),
            ("peers", status.peers),
            ("syncing", "yes" if status.syncing else "no"),
            ("mempool", status.mempool_size),
        ]
    )
    return 0


def _view_text(view: int, view_in_sync: bool, group_view: int | None) -> str:
    """The view, and a warning when the node is known to be outside the group's view."""
    if view_in_sync:
        return str(view)
    return f"{view} (NOT in the group's view {group_view}: not voting)"


def _query_block(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"full": args.full}
    if args.block is not None:
        if args.block.isdigit():
            params["height"] = int(args.block)
        else:
            params["hash"] = hash_hex(args.block, "BLOCK (a height or a block hash)")
    block = connect(args).call_as("sec_getBlock", params, m.BlockResult)
    if args.json:
        print_json(block.model_dump(mode="json"))
        return 0
    header = block.header
    rows: list[tuple[str, Any]] = [
        ("height", header.height),
        ("hash", block.hash.hex()),
        ("time", format_time(header.timestamp_ms)),
        ("proposer", format_address(header.proposer)),
        ("view", header.view),
        ("prev hash", header.prev_hash.hex()),
        ("tx root", header.tx_root.hex()),
        ("state root", header.state_root.hex()),
        ("transactions", block.tx_count),
    ]
    if block.transactions is not None:
        receipts = block.receipts or []
        for tx, receipt in zip(block.transactions, receipts, strict=False):
            summary = f"{tx.type} from {format_address(tx.sender_address)} nonce {tx.nonce}"
            rows.append(("tx", f"{tx.hash.hex()} {summary}: {receipt_line(receipt)}"))
    else:
        rows += [("tx", tx_hash.hex()) for tx_hash in block.tx_hashes]
    print_fields(rows)
    return 0


def verify_transaction_answer(tx_hash: str, answer: m.TransactionResult) -> None:
    """Check the raw bytes hash to `tx_hash` and, when committed, the inclusion proof."""
    if answer.to_transaction().hash.hex() != tx_hash:
        raise CommandError(f"node returned a transaction that does not hash to {tx_hash}")
    proof = answer.proof
    if proof is not None:
        verify_inclusion(
            leaf_hash(answer.raw), proof.leaf_index, proof.tree_size, proof.hashes, proof.tx_root
        )


def _query_tx(args: argparse.Namespace) -> int:
    tx_hash = hash_hex(args.hash, "HASH")
    answer = connect(args).call_as("sec_getTransaction", {"hash": tx_hash}, m.TransactionResult)
    verify_transaction_answer(tx_hash, answer)
    if args.json:
        print_json({**answer.model_dump(mode="json"), "verified": True})
        return 0
    tx = answer.tx
    rows: list[tuple[str, Any]] = [
        ("hash", answer.hash.hex()),
        ("status", answer.status),
        ("type", tx.type),
        ("sender", format_address(tx.sender_address)),
        ("nonce", tx.nonce),
    ]
    rows += [(f"body.{name}", value) for name, value in tx.body.items()]
    proof, receipt, block_hash = answer.proof, answer.receipt, answer.block_hash
    if proof is not None and receipt is not None and block_hash is not None:  # committed
        rows += [
            ("height", answer.height),
            ("index", answer.index),
            ("block", block_hash.hex()),
            ("result", receipt_line(receipt)),
            ("inclusion", f"verified under tx root {proof.tx_root.hex()}"),
        ]
    print_fields(rows)
    return 0


def _query_account(args: argparse.Namespace) -> int:
    address = resolve_address(args.address, "ADDRESS")
    params = {"address": format_address(address), "prove": args.prove}
    answer = connect(args).call_as("sec_getAccount", params, m.AccountResult)
    if args.prove:
        requested_proof(args, "sec_getAccount", answer.proof)
        if answer.address != address:
            raise CommandError(f"{args.rpc} answered for another account")
        answer.check_proof()
    output = answer.model_dump(mode="json")
    if args.json:
        print_json({**output, "verified": True} if args.prove else output)
        return 0
    rows: list[tuple[str, Any]] = [("address", format_address(answer.address))]
    if answer.exists and answer.public_key is not None:
        rows += [
            ("name", answer.name or "-"),
            ("roles", ", ".join(answer.roles or []) or "-"),
            ("balance", f"{answer.balance} fen"),
            ("nonce", answer.nonce),
            ("public key", answer.public_key.hex()),
        ]
    else:
        rows.append(("exists", "no"))
    rows += [("height", answer.height), ("state root", answer.state_root.hex())]
    if args.prove:
        kind = "membership" if answer.exists else "non-membership"
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
