"""Receipts: the outcome of each transaction in a block.

Wire map: {"tx_hash": 32 bytes, "ok": bool, "code": str, "message": str, "events": [map, ...]}
`code` is "" on success, else the stable name of the broken rule (ExecutionError.code).
The block's `receipts_root` is the RFC 6962 root over each receipt's *committed form*: the
canonical encoding of {"tx_hash", "ok", "code", "events"}. The human-readable `message` is
stored and served but not hashed, so rewording an error message is not a consensus change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ledger.encoding import encode
from ledger.errors import MalformedBlock
from ledger.merkle import leaf_hash, merkle_root


@dataclass(frozen=True, slots=True)
class Receipt:
    """What happened to one transaction."""

    tx_hash: bytes
    """Hash of the transaction."""
    ok: bool
    """True if its effects were applied; False if rolled back (the nonce is still consumed)."""
    code: str = ""
    """Broken rule's code when not ok."""
    message: str = ""
    """Human-readable reason when not ok."""
    events: tuple[dict[str, Any], ...] = field(default=())
    """Structured effects (e.g. order created with its id, payouts)."""

    def to_wire(self) -> dict[str, Any]:
        return {  # keys in canonical (sorted) order: encoding takes the packer's fast path
            "code": self.code,
            "events": list(self.events),
            "message": self.message,
            "ok": self.ok,
            "tx_hash": self.tx_hash,
        }

    def encode(self) -> bytes:
        return encode(self.to_wire())

    @classmethod
    def from_wire(cls, value: Any) -> Receipt:
        if not isinstance(value, dict) or set(value) != {
            "tx_hash",
            "ok",
            "code",
            "message",
            "events",
        }:
            raise MalformedBlock("receipt must be a map of tx_hash, ok, code, message, events")
        return cls(
            value["tx_hash"], value["ok"], value["code"], value["message"], tuple(value["events"])
        )


def committed_form(receipt: Receipt) -> bytes:
    """The bytes of a receipt that the receipts root commits to (no `message`)."""
    return encode(
        {  # keys in canonical (sorted) order, as in `Receipt.to_wire`
            "code": receipt.code,
            "events": list(receipt.events),
            "ok": receipt.ok,
            "tx_hash": receipt.tx_hash,
        }
    )


def receipts_root(receipts: list[Receipt] | tuple[Receipt, ...]) -> bytes:
    return merkle_root([leaf_hash(committed_form(r)) for r in receipts])
