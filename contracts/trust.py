"""Trust attestations: the `trust.attest` handler and the append-only attestation log.

Rules (docs/protocol.md §17.1), checked in this order, each with its own error:

* the order exists (`unknown_order`) and is COMPLETED or RESOLVED (`order_not_completed`);
* the sender is the order's buyer or merchant (`wrong_actor`);
* the subject is one the sender may attest about: buyer -> merchant, buyer -> sharer (if the
  order has one), merchant -> buyer (`invalid_subject`);
* the block time is before completion + attest_window_s (`attest_window_closed`), completion
  being the order's `updated_s` (the time it reached its terminal state);
* no attestation yet for this (order, attester, subject) (`already_attested`).
The value (+1 or -1) is checked by the transaction schema.

State layout (all records canonical encodings; §17.2):

    trust:att:      || seq (8 bytes BE)           -> leaf [order_id, attester, subject, value,
                                                       order_total, completed_s, height]
    trust:log                                      -> [count, frontier]
    trust:attested: || order_id || attester || subject -> seq
    trust:counts:   || address                     -> [about it, by it]
    trust:subject:  || address || index (8 bytes)  -> seq   (index < its "about it" count)
    trust:attester: || address || index (8 bytes)  -> seq   (index < its "by it" count)

Invariant: attestations are numbered 0, 1, 2, ... in execution order and never change; the
log's frontier holds the roots of the perfect subtrees of the RFC 6962 tree over the leaves
0..count-1 (one per set bit of count, largest first), so `log_root` is the Merkle root of all
attestations so far in O(log count), and an epoch's inputs root is read from it for free.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar, Final, Literal

import msgpack

from contracts.eigentrust import Attestation, encode_attestation
from contracts.errors import (
    AlreadyAttested,
    AttestWindowClosed,
    InvalidSubject,
    OrderNotCompleted,
    WrongActor,
)
from contracts.orders import COMPLETED, RESOLVED, Order, require_order
from ledger.accounts import get_parameter
from ledger.encoding import decode, encode
from ledger.errors import DecodeError, StoreError
from ledger.execution import BlockContext, Events
from ledger.keys import format_address
from ledger.merkle import EMPTY_ROOT, leaf_hash, node_hash
from ledger.schema import field, one_of
from ledger.state import State, StateReader
from ledger.transactions import ADDRESS_KIND, HASH_KIND, SignedTransaction, TxBody

ATTESTATION_PREFIX: Final = b"trust:att:"
LOG_KEY: Final = b"trust:log"
ATTESTED_PREFIX: Final = b"trust:attested:"
COUNTS_PREFIX: Final = b"trust:counts:"
BY_SUBJECT_PREFIX: Final = b"trust:subject:"
BY_ATTESTER_PREFIX: Final = b"trust:attester:"
ATTESTABLE_STATES: Final = (COMPLETED, RESOLVED)


@dataclass(frozen=True, slots=True)
class Attest(TxBody):
    """A party of a completed or resolved order attests about another party (+1 or -1)."""

    TYPE: ClassVar[str] = "trust.attest"

    order_id: bytes = field(HASH_KIND, "order id")
    subject: bytes = field(ADDRESS_KIND, "the account attested about")
    value: int = field(one_of(1, -1), "+1 or -1")


def attestation_key(sequence: int) -> bytes:
    return ATTESTATION_PREFIX + sequence.to_bytes(8, "big")


def attested_key(order_id: bytes, attester: bytes, subject: bytes) -> bytes:
    return ATTESTED_PREFIX + order_id + attester + subject


def counts_key(address: bytes) -> bytes:
    return COUNTS_PREFIX + address


def index_key(prefix: bytes, address: bytes, index: int) -> bytes:
    return prefix + address + index.to_bytes(8, "big")


# --- reads ------------------------------------------------------------------------------------


def get_log(state: StateReader) -> tuple[int, list[bytes]]:
    """(number of attestations, frontier) of the attestation log."""
    raw = state.get(LOG_KEY)
    if raw is None:
        return 0, []
    count, frontier = msgpack.unpackb(raw)
    return count, frontier


def frontier_root(frontier: list[bytes]) -> bytes:
    """The RFC 6962 root of the tree whose perfect subtrees are `frontier` (largest first)."""
    if not frontier:
        return EMPTY_ROOT
    root = frontier[-1]
    for subtree in reversed(frontier[:-1]):
        root = node_hash(subtree, root)
    return root


def extend_frontier(frontier: list[bytes], count: int, leaf: bytes) -> None:
    """Append `leaf`, leaf number `count`, to the frontier of the first `count` leaves."""
    frontier.append(leaf_hash(leaf))
    while count & 1:
        right = frontier.pop()
        frontier[-1] = node_hash(frontier[-1], right)
        count >>= 1


def log_root(state: State) -> bytes:
    return frontier_root(get_log(state)[1])


def get_attestation_bytes(state: State, sequence: int) -> bytes | None:
    return state.get(attestation_key(sequence))


def decode_attestation(raw: bytes) -> Attestation:
    """An attestation from its leaf bytes (trusted state bytes, written by `apply_attest`)."""
    return Attestation(*msgpack.unpackb(raw))


def load_attestations(state: State, count: int) -> list[Attestation]:
    """Attestations 0..count-1 in sequence order (they must exist)."""
    get = state.get
    unpack = msgpack.unpackb
    records = []
    for sequence in range(count):
        raw = get(ATTESTATION_PREFIX + sequence.to_bytes(8, "big"))
        if raw is None:
            raise LookupError(f"attestation {sequence} of {count} is missing from state")
        records.append(Attestation(*unpack(raw)))
    return records


def get_counts(state: StateReader, address: bytes) -> tuple[int, int]:
    """(attestations about `address`, attestations by `address`)."""
    raw = state.get(counts_key(address))
    if raw is None:
        return 0, 0
    about, by = msgpack.unpackb(raw)
    return about, by


# --- the handler ------------------------------------------------------------------------------


def _allowed_subjects(order: Order, attester: bytes) -> tuple[bytes, ...]:
    if attester == order.buyer:
        return (order.merchant,) if order.sharer is None else (order.merchant, order.sharer)
    return (order.buyer,)


def _append(state: State, attestation: Attestation) -> int:
    """Record `attestation` as the next in the log, with its indexes; return its number."""
    count, frontier = get_log(state)
    leaf = encode_attestation(attestation)
    state.set(attestation_key(count), leaf)
    extend_frontier(frontier, count, leaf)
    state.set(LOG_KEY, encode([count + 1, frontier]))
    state.set(
        attested_key(attestation.order_id, attestation.attester, attestation.subject),
        encode(count),
    )
    subject_about, subject_by = get_counts(state, attestation.subject)
    state.set(index_key(BY_SUBJECT_PREFIX, attestation.subject, subject_about), encode(count))
    state.set(counts_key(attestation.subject), encode([subject_about + 1, subject_by]))
    # Read after the subject's write: the rules keep attester != subject, this keeps it exact.
    attester_about, attester_by = get_counts(state, attestation.attester)
    state.set(index_key(BY_ATTESTER_PREFIX, attestation.attester, attester_by), encode(count))
    state.set(counts_key(attestation.attester), encode([attester_about, attester_by + 1]))
    return count


def apply_attest(
    state: State, tx: SignedTransaction, body: Attest, context: BlockContext
) -> Events:
    """`trust.attest`: a party of a completed or resolved order attests about another party."""
    attester = tx.sender_address
    order = require_order(state, body.order_id)
    if order.state not in ATTESTABLE_STATES:
        raise OrderNotCompleted(
            f"order {body.order_id.hex()} is {order.state}; only a COMPLETED or RESOLVED order "
            "can be attested"
        )
    if attester not in (order.buyer, order.merchant):
        raise WrongActor(
            f"{format_address(attester)} is not the buyer or merchant of order "
            f"{body.order_id.hex()}"
        )
    allowed = _allowed_subjects(order, attester)
    if body.subject not in allowed:
        role = "buyer" if attester == order.buyer else "merchant"
        raise InvalidSubject(
            f"the {role} of order {body.order_id.hex()} may attest about "
            f"{' or '.join(format_address(a) for a in allowed)}, not {format_address(body.subject)}"
        )
    window_s = get_parameter(state, "attest_window_s")
    if context.time_s >= order.updated_s + window_s:
        raise AttestWindowClosed(
            f"order {body.order_id.hex()} completed at {order.updated_s}; attestations were "
            f"accepted until {order.updated_s + window_s} (block time {context.time_s})"
        )
    if state.get(attested_key(body.order_id, attester, body.subject)) is not None:
        raise AlreadyAttested(
            f"{format_address(attester)} already attested about {format_address(body.subject)} "
            f"for order {body.order_id.hex()}"
        )
    sequence = _append(
        state,
        Attestation(
            body.order_id,
            attester,
            body.subject,
            body.value,
            order.total,
            order.updated_s,
            context.height,
        ),
    )
    return [
        {
            "event": "trust.attested",
            "order_id": body.order_id,
            "subject": body.subject,
            "value": body.value,
            "sequence": sequence,
        }
    ]


# --- read-only queries ---
# For readers outside execution (the RPC reads a `ledger.store.CommittedState`): a record that is
# missing where an index or the log count says it is, or malformed, is a corrupt store
# (`StoreError`).

AttestationRole = Literal["subject", "attester"]
"""How an address takes part in an attestation: it is about the subject, by the attester."""


@dataclass(frozen=True, slots=True)
class LoggedAttestation:
    """One attestation of the log, as its leaf bytes (decoded on demand)."""

    sequence: int
    """Its position in the log: the leaf index in the log's Merkle tree."""
    leaf: bytes
    """Its canonical leaf bytes (what the log's Merkle tree hashes)."""

    @property
    def attestation(self) -> Attestation:
        """The decoded leaf."""
        return decode_attestation(self.leaf)


@dataclass(frozen=True, slots=True)
class AttestationsPage:
    """One page of `attestations_of`."""

    total: int
    """All attestations with the address in the role asked for."""
    attestations: tuple[LoggedAttestation, ...]
    """The page, in the order the attestations were recorded."""
    next_position: int | None
    """Pass as `start` for the next page; None when the listing is complete."""


def log_size(state: StateReader) -> int:
    """Number of attestations recorded (they are numbered 0 .. log_size - 1)."""
    return get_log(state)[0]


def logged_attestation(state: StateReader, sequence: int) -> LoggedAttestation:
    """Attestation number `sequence`, which must exist (sequence < `log_size`)."""
    leaf = state.get(attestation_key(sequence))
    if leaf is None:
        raise StoreError(f"attestation {sequence} is missing from state")
    return LoggedAttestation(sequence, leaf)


def log_range(state: StateReader, start: int, end: int) -> Iterator[LoggedAttestation]:
    """Attestations `start` .. `end` - 1 in sequence order, read one at a time."""
    for sequence in range(start, end):
        yield logged_attestation(state, sequence)


def attestations_of(
    state: StateReader, address: bytes, role: AttestationRole, *, start: int = 0, limit: int
) -> AttestationsPage:
    """The attestations with `address` as `role`, in the order they were recorded: at most
    `limit` of them, from position `start` of that address's index."""
    if start < 0 or limit < 1:
        raise ValueError(f"start must be >= 0 and limit >= 1, not start {start}, limit {limit}")
    about, by = get_counts(state, address)
    total, prefix = (about, BY_SUBJECT_PREFIX) if role == "subject" else (by, BY_ATTESTER_PREFIX)
    end = min(total, start + limit)
    page = []
    for position in range(start, end):
        raw = state.get(index_key(prefix, address, position))
        if raw is None:
            raise StoreError(
                f"attestation index {role} {position} of {format_address(address)} is missing"
            )
        try:
            sequence = decode(raw)
        except DecodeError as exc:
            raise StoreError(f"attestation index {role} {position}: {exc}") from None
        if not isinstance(sequence, int) or isinstance(sequence, bool):
            raise StoreError(f"attestation index {role} {position} is not a sequence number")
        page.append(logged_attestation(state, sequence))
    return AttestationsPage(total, tuple(page), end if end < total else None)
