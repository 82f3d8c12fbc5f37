"""The node-local proofs of each validator change, so a light client can trace the set from genesis.

A header names its validator set only by hash, and the "validators" record at the head is
certified by the set it names (docs/protocol.md §15.1): a client holding the genesis document
alone must see each change scheduled, under the state root of a header the set ruling then
certified. The node keeps no historical state, so the proof is made when the block is stored:
`index_validator_changes` is a `ledger.store.ProvingIndexer` and writes, in the block's own
atomic batch, one row for each block whose execution adds entries to the record's `pending`
schedule (§13.2): the raw record after the block and its state proof under that block's
state_root.

Rows: ``b"V" || height (8, BE)`` -> ``encode([height, [effective heights added], raw record,
proof wire])``, so the changes are one prefix scan, oldest first. The rows are node-local
(outside the state tree, they change no root). A store written before this index has no row for
the changes scheduled before the upgrade and none can be made (their state is gone):
`validator_changes` then says the list is incomplete (there is no backfill; `sec audit chain`
replays the chain instead).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from ledger.blocks import Block
from ledger.encoding import decode, encode
from ledger.errors import DecodeError, LedgerError, StoreError
from ledger.kv import Batch
from ledger.state_tree import StateProof, StateTree
from ledger.store import ChainStore, StateRowReader
from ledger.validator_state import VALIDATORS_KEY

log = logging.getLogger("ledger.validator_changes")

VALIDATOR_CHANGES_PREFIX: Final = b"V"
MAX_VALIDATOR_CHANGES: Final = 256
"""sec_getValidatorChanges lists at most this many changes (each is an admin action)."""


@dataclass(frozen=True, slots=True)
class ScheduledChange:
    """The block that scheduled validator changes, and the proof of the record after it."""

    height: int
    """The block whose execution added the entries (its header certifies the proof's root)."""
    effective_heights: tuple[int, ...]
    """The effective heights of the `pending` entries it added, ascending."""
    record: bytes
    """The raw "validators" record after the block."""
    proof: StateProof
    """Its state proof under the block's state_root."""


def change_key(height: int) -> bytes:
    return VALIDATOR_CHANGES_PREFIX + height.to_bytes(8, "big")


def _pending_heights(raw: bytes | None) -> set[int]:
    if raw is None:
        return set()
    record = decode(raw)
    return {int(effective) for effective, _ in record["pending"]}


def index_validator_changes(
    block: Block,
    changes: Mapping[bytes, bytes | None],
    parent: StateRowReader,
    tree: StateTree,
) -> Batch:
    """The block's row if it scheduled validator changes (a `ledger.store.ProvingIndexer`).

    A record it cannot read is logged and no row written: the index must never stop a commit
    (the RPC then reports the list incomplete)."""
    raw = changes.get(VALIDATORS_KEY)
    if raw is None:
        return []
    try:
        added = sorted(_pending_heights(raw) - _pending_heights(parent(VALIDATORS_KEY)))
        if not added:
            return []
        proof = tree.prove(VALIDATORS_KEY)
    except (LedgerError, TypeError, ValueError, KeyError):
        log.exception("cannot index the validator change of block %d", block.height)
        return []
    return [(change_key(block.height), encode([block.height, added, raw, proof.to_wire()]))]


def scheduled_changes(store: ChainStore, limit: int) -> list[ScheduledChange]:
    """At most `limit` indexed blocks that scheduled validator changes, oldest first."""
    found: list[ScheduledChange] = []
    for _, raw in store.index_rows(VALIDATOR_CHANGES_PREFIX):
        if len(found) >= limit:
            break
        try:
            height, added, record, proof = decode(raw)
            found.append(ScheduledChange(height, tuple(added), record, StateProof.from_wire(proof)))
        except (DecodeError, TypeError, ValueError) as exc:
            raise StoreError(f"validator change row: {exc}") from None
    return found


def scheduling_heights(store: ChainStore) -> set[int]:
    """The heights of the blocks that scheduled a change (kept by pruning: their headers and
    certificates are what a client traces the set from the genesis with)."""
    prefix = len(VALIDATOR_CHANGES_PREFIX)
    return {
        int.from_bytes(key[prefix:], "big") for key, _ in store.index_rows(VALIDATOR_CHANGES_PREFIX)
    }


def known_effective_heights(record: dict[str, Any]) -> list[int]:
    """Every effective height the head's "validators" record knows of: each former set's
    `until` (the height its successor took effect) and each pending entry's height."""
    return sorted(
        [int(until) for until, _ in record.get("history", [])]
        + [int(effective) for effective, _ in record["pending"]]
    )
