"""What a replica persists so that a restart never makes it sign two different things.

A driver executes `Persist(record)` durably before any action after it in the same list (see
`consensus.actions`). Records are append-only; `DiscardRecords(through_seq, before_view)` tells
the driver which may be deleted, by the rule in `record_is_obsolete` (drivers must use it).

* `SignedRecord`: a message this replica signed (pre-prepare, prepare, commit, certify,
  checkpoint, view-change, new-view). Restored, these stop it from signing a different digest for
  the same (kind, view, seq), and it can re-send them unchanged.
* `PreparedRecord`: a prepared proof and its block, written before the COMMIT it justifies, so a
  restarted replica still reports it in view changes (the safety argument relies on that).
* `CheckpointRecord`: the latest stable checkpoint proof.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from consensus.errors import MalformedMessage, RestoreError
from consensus.messages import (
    Certify,
    Checkpoint,
    CheckpointProof,
    Message,
    NewView,
    PreparedProof,
    ViewChange,
    checkpoint_proof_from_wire,
    message_from_wire,
    prepared_proof_from_wire,
)
from ledger.encoding import decode, encode
from ledger.errors import DecodeError


@dataclass(frozen=True, slots=True)
class SignedRecord:
    """A message this replica signed and is about to send."""

    message: Message
    """The signed message, exactly as sent."""

    def to_wire(self) -> list[Any]:
        return ["signed", self.message.to_wire()]


@dataclass(frozen=True, slots=True)
class PreparedRecord:
    """A prepared proof with its block, persisted before the COMMIT it justifies."""

    proof: PreparedProof
    """The prepared proof."""
    payload: bytes
    """The prepared block."""

    def to_wire(self) -> list[Any]:
        return ["prepared", self.proof.to_wire(), self.payload]


@dataclass(frozen=True, slots=True)
class CheckpointRecord:
    """The replica's latest stable checkpoint."""

    proof: CheckpointProof
    """A quorum of checkpoint signatures."""

    def to_wire(self) -> list[Any]:
        return ["checkpoint", self.proof.to_wire()]


Record = SignedRecord | PreparedRecord | CheckpointRecord
"""Anything a replica persists."""


def encode_record(record: Record) -> bytes:
    return encode(record.to_wire())


def decode_record(data: bytes) -> Record:
    """Parse a stored record; raise `RestoreError` naming the problem."""
    try:
        value = decode(data)
        if not isinstance(value, list) or len(value) < 2:
            raise RestoreError("a record is a list [kind, ...]")
        kind = value[0]
        if kind == "signed" and len(value) == 2:
            return SignedRecord(message_from_wire(value[1]))
        if kind == "prepared" and len(value) == 3 and isinstance(value[2], bytes):
            return PreparedRecord(prepared_proof_from_wire(value[1]), value[2])
        if kind == "checkpoint" and len(value) == 2:
            return CheckpointRecord(checkpoint_proof_from_wire(value[1]))
    except (DecodeError, MalformedMessage) as exc:
        raise RestoreError(f"unreadable consensus record: {exc}") from exc
    raise RestoreError(f"unknown consensus record {value[0]!r}")


def record_seq(record: Record) -> int | None:
    """The height a record is about, or None for view-level records."""
    if isinstance(record, PreparedRecord):
        return record.proof.seq
    if isinstance(record, CheckpointRecord):
        return record.proof.seq
    message = record.message
    if isinstance(message, ViewChange | NewView):
        return None
    return message.seq


def record_view(record: Record) -> int | None:
    """The view of a signed message record (None for view-less records)."""
    if not isinstance(record, SignedRecord):
        return None
    message = record.message
    if isinstance(message, Certify | Checkpoint):
        return None
    return message.view


def record_is_obsolete(record: Record, through_seq: int, before_view: int) -> bool:
    """True if a driver may delete `record` after `DiscardRecords(through_seq, before_view)`.

    Kept: the newest checkpoint record (at `through_seq`), every prepared record above it (an old
    view's proof may still be the latest for its height), and signed messages of the current view.
    """
    if isinstance(record, CheckpointRecord):
        return record.proof.seq < through_seq
    seq = record_seq(record)
    if seq is not None and seq <= through_seq:
        return True
    view = record_view(record)
    return view is not None and view < before_view
