"""Ledger objects as JSON values: what the RPC returns and the CLI prints with --json.

Conventions (docs/rpc.md, "Encoding"):

* bytes are lowercase hex without "0x";
* addresses (20 bytes) are checksummed sec1 text. Inside transaction bodies and receipt events
  every 20-byte value is an address (no other field of those has that size), so the rule is
  applied by size there; elsewhere fields are converted by name;
* integers stay JSON numbers (amounts go up to 2**63 - 1: JavaScript clients need a big-integer
  aware parser);
* tuples become arrays; optional body fields that are absent are omitted, as on the wire.

The `*_from_json` functions invert the proof views so a client (the CLI, an auditor) can verify
what a node returned with the ledger's own verifiers.
"""

from __future__ import annotations

from typing import Any

from contracts.orders import Order
from ledger.accounts import Account, mask_to_roles
from ledger.blocks import BlockHeader
from ledger.certificates import CommitCertificate
from ledger.errors import InvalidProof
from ledger.keys import ADDRESS_SIZE, format_address
from ledger.receipts import Receipt
from ledger.schema import to_wire
from ledger.state_tree import StateProof
from ledger.transactions import SignedTransaction
from ledger.validators import ValidatorSet


def json_value(value: Any) -> Any:
    """A wire value (as in bodies and events) with bytes rendered per the module conventions."""
    if isinstance(value, bytes):
        return format_address(value) if len(value) == ADDRESS_SIZE else value.hex()
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return value


def header_json(header: BlockHeader) -> dict[str, Any]:
    return {
        "chain_id": header.chain_id,
        "height": header.height,
        "prev_hash": header.prev_hash.hex(),
        "timestamp_ms": header.timestamp_ms,
        "proposer": format_address(header.proposer),
        "view": header.view,
        "tx_root": header.tx_root.hex(),
        "receipts_root": header.receipts_root.hex(),
        "state_root": header.state_root.hex(),
        "validators_hash": header.validators_hash.hex(),
    }


def transaction_json(tx: SignedTransaction) -> dict[str, Any]:
    return {
        "hash": tx.hash.hex(),
        "chain_id": tx.chain_id,
        "sender": tx.sender.hex(),
        "sender_address": format_address(tx.sender_address),
        "nonce": tx.nonce,
        "type": tx.type,
        "body": json_value(to_wire(tx.body)),
        "signature": tx.signature.hex(),
        "size": len(tx.encoded),
    }


def receipt_json(receipt: Receipt) -> dict[str, Any]:
    return {
        "tx_hash": receipt.tx_hash.hex(),
        "ok": receipt.ok,
        "code": receipt.code,
        "message": receipt.message,
        "events": [json_value(event) for event in receipt.events],
    }


def certificate_json(certificate: CommitCertificate) -> dict[str, Any]:
    return {
        "height": certificate.height,
        "block_hash": certificate.block_hash.hex(),
        "signatures": [
            {"validator": format_address(s.validator), "signature": s.signature.hex()}
            for s in certificate.signatures
        ],
    }


def validators_json(validators: ValidatorSet) -> list[dict[str, Any]]:
    return [
        {
            "index": index,
            "address": format_address(member.address),
            "public_key": member.public_key.hex(),
        }
        for index, member in enumerate(validators.members)
    ]


def account_json(account: Account) -> dict[str, Any]:
    return {
        "address": format_address(account.address),
        "public_key": account.public_key.hex(),
        "nonce": account.nonce,
        "balance": account.balance,
        "roles": mask_to_roles(account.roles),
        "name": account.name,
    }


def _optional_address(value: bytes | None) -> str | None:
    return None if value is None else format_address(value)


def _optional_hex(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


def order_json(order_id: bytes, order: Order) -> dict[str, Any]:
    """An order record (contracts.orders) with its id, total and settlement."""
    return {
        "order_id": order_id.hex(),
        "state": order.state,
        "merchant": format_address(order.merchant),
        "buyer": format_address(order.buyer),
        "arbiter": format_address(order.arbiter),
        "sharer": _optional_address(order.sharer),
        "commission_bps": order.commission_bps,
        "inviter": _optional_address(order.inviter),
        "inviter_share_bps": order.inviter_share_bps,
        "goods": order.goods,
        "shipping": order.shipping,
        "total": order.total,
        "held": order.held,
        "created_s": order.created_s,
        "updated_s": order.updated_s,
        "due_s": order.due_s,
        "shipment_hash": _optional_hex(order.shipment_hash),
        "reason_hash": _optional_hex(order.reason_hash),
        "disputed_by": _optional_address(order.disputed_by),
        "settlement": {
            "refunded": order.refunded,
            "merchant": order.merchant_paid,
            "sharer": order.sharer_paid,
            "inviter": order.inviter_paid,
        },
    }


def inclusion_proof_json(
    leaf_index: int, tree_size: int, leaf_hash: bytes, hashes: list[bytes], tx_root: bytes
) -> dict[str, Any]:
    return {
        "leaf_index": leaf_index,
        "tree_size": tree_size,
        "leaf_hash": leaf_hash.hex(),
        "hashes": [h.hex() for h in hashes],
        "tx_root": tx_root.hex(),
    }


def state_proof_json(proof: StateProof) -> dict[str, Any]:
    """`StateProof.to_wire()` with every byte string as hex."""
    wire = proof.to_wire()
    other = wire["other_leaf"]
    return {
        "key": wire["key"].hex(),
        "value_hash": None if wire["value_hash"] is None else wire["value_hash"].hex(),
        "siblings": [s.hex() for s in wire["siblings"]],
        "other_leaf": None
        if other is None
        else {"path": other["path"].hex(), "value_hash": other["value_hash"].hex()},
    }


def _unhex(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise InvalidProof(f"{what} must be hex text, got {type(value).__name__}")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise InvalidProof(f"{what} is not hex: {value[:80]!r}") from None


def state_proof_from_json(value: Any) -> StateProof:
    """Inverse of `state_proof_json`; raise InvalidProof naming the malformed field."""
    if not isinstance(value, dict):
        raise InvalidProof(f"state proof must be an object, got {type(value).__name__}")
    try:
        key, value_hash = value["key"], value["value_hash"]
        siblings, other = value["siblings"], value["other_leaf"]
    except KeyError as exc:
        raise InvalidProof(f"state proof is missing {exc.args[0]!r}") from None
    if not isinstance(siblings, list):
        raise InvalidProof("state proof siblings must be an array")
    wire: dict[str, Any] = {
        "key": _unhex(key, "key"),
        "value_hash": None if value_hash is None else _unhex(value_hash, "value_hash"),
        "siblings": [_unhex(s, f"siblings[{i}]") for i, s in enumerate(siblings)],
        "other_leaf": None,
    }
    if other is not None:
        if not isinstance(other, dict) or set(other) != {"path", "value_hash"}:
            raise InvalidProof("state proof other_leaf must be null or {path, value_hash}")
        wire["other_leaf"] = {
            "path": _unhex(other["path"], "other_leaf.path"),
            "value_hash": _unhex(other["value_hash"], "other_leaf.value_hash"),
        }
    return StateProof.from_wire(wire)


def hashes_from_json(values: Any, what: str) -> list[bytes]:
    """A JSON array of hex hashes as bytes; raise InvalidProof naming the bad entry."""
    if not isinstance(values, list):
        raise InvalidProof(f"{what} must be an array")
    return [_unhex(v, f"{what}[{i}]") for i, v in enumerate(values)]


def hex_from_json(value: Any, what: str) -> bytes:
    return _unhex(value, what)
