"""Signing and submitting one transaction: the path every `sec tx` verb ends in.

The sender's next nonce comes from the node (sec_getAccount) unless --nonce is given; the key
signs locally for the network the node names (and the key file was made for); `--wait` waits for
the commit and prints the receipt. Exit status 1 also when a committed transaction failed.
"""

from __future__ import annotations

import argparse
import json
from typing import Any, Final

from ledger.keys import (
    format_address,
)
from ledger.transactions import (
    TxBody,
    sign_transaction,
)
from secnode.cli.common import (
    NOT_FOUND_CODE,
    CommandError,
    check_key_network,
    connect,
    load_signing_record,
    print_fields,
    print_json,
    receipt_line,
)
from secnode.client.rpc import RpcCallError, RpcClient
from secnode.schema import models as m

NONCE_RETRIES: Final = 100


def _sender_nonce(client: RpcClient, address: bytes) -> int:
    try:
        account = client.call_as(
            "sec_getAccount", {"address": format_address(address)}, m.AccountResult
        )
    except RpcCallError as exc:
        if exc.code != NOT_FOUND_CODE:
            raise
        account = None
    if account is None or account.nonce is None:
        raise CommandError(f"sender {format_address(address)} is not registered on this chain")
    return account.nonce


def submit(args: argparse.Namespace, body: TxBody, *, creates_order: bool = False) -> int:
    """Sign and submit one transaction; print the outcome (see the module docstring).

    With `creates_order` the output also names the order id (the transaction hash)."""
    key, made_for = load_signing_record(args.key, args.passphrase_file)
    client = connect(args, args.timeout if args.wait else 0.0)
    status = client.call_as("sec_status", None, m.StatusResult)
    genesis_hash = check_key_network(args.key, made_for, args.rpc, status)
    chain_id = status.chain_id
    nonce = args.nonce if args.nonce is not None else _sender_nonce(client, key.address)
    params = {"wait": "commit" if args.wait else "mempool", "timeout_s": args.timeout}
    for _ in range(NONCE_RETRIES):
        tx = sign_transaction(key, chain_id, nonce, body, genesis_hash=genesis_hash)
        try:
            result = client.call_as(
                "sec_sendTransaction", {"tx": tx.encoded.hex(), **params}, m.SendTransactionResult
            )
            break
        except RpcCallError as exc:
            # Transactions of this sender still pending hold the committed nonce: take the next.
            pending = isinstance(exc.data, dict) and exc.data.get("reason") == "nonce_pending"
            if not pending or args.nonce is not None:
                raise
            nonce += 1
    else:
        raise CommandError(f"{NONCE_RETRIES} pending transactions ahead; retry with --nonce")
    sender = format_address(key.address)
    output = {
        "type": tx.type,
        "sender": sender,
        "nonce": nonce,
        **result.model_dump(mode="json"),
    }
    if creates_order:
        output["order_id"] = result.hash.hex()
    receipt = result.receipt
    if args.json:
        print_json(output)
    else:
        rows: list[tuple[str, Any]] = [
            ("hash", result.hash.hex()),
            *([("order", result.hash.hex())] if creates_order else []),
            ("type", tx.type),
            ("sender", sender),
            ("nonce", nonce),
            ("status", result.status),
        ]
        if result.status == "committed" and receipt is not None:
            rows += [("height", result.height), ("index", result.index)]
            rows.append(("result", receipt_line(receipt)))
            rows += [("event", json.dumps(event, sort_keys=True)) for event in receipt.events]
        print_fields(rows)
    return 1 if receipt is not None and not receipt.ok else 0
