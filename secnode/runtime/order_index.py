"""The node-local index of order events: what happened to each order, block by block.

An order's record shows only where it is now; its life cycle (who paid, shipped, confirmed,
when a deadline refunded it) is spread over receipts and over block hooks that leave no receipt
(docs/protocol.md §16.3, §16.4). `index_order_events` is a `ledger.store.Indexer`: at each commit
it derives the block's order events from what the block itself records, without executing
anything again, and the store writes them in the block's atomic batch:

* **Deadlines** run at the start of the block, before its transactions. The due-queue entries
  the hook popped are the block's deleted ``due:`` rows; their values, read from the state as of
  the parent block, are ``[due_s, order_id, state]``. An entry whose order was, at the parent,
  still in that state with that deadline took its default outcome (§16.1's table,
  `DEADLINE_OUTCOMES`); any other entry was superseded and did nothing.
* **Transactions**: each `order.state` event of a successful receipt, in receipt order, with
  the transaction's type, hash, index and sender (the actor). The transition that opens an
  order (right after its `order.created` event) is named "created", whatever state it enters
  (CREATED for `order.create`, FUNDED for a group member's order).
* **Chained defaults** taken by the hook (SHIPPED or AT_PICKUP -> RECEIVED -> COMPLETED when the
  return window had passed too) leave only the final record: an order whose record after the
  block is past the last state derived above followed `DEADLINE_OUTCOMES` from there.

Rows: ``b"O" || order id (32) || height (8, BE) || position (4, BE)`` ->
``encode([height, index|nil, tx_hash|nil, time_s, type, event, actor|nil, state])``, so one
order's events are one prefix scan, oldest first. `time_s` is the block time in seconds; a
deadline's row has type ``"deadline"`` and no index, hash or actor. The rows are node-local:
outside the state tree, they change no root, and a store written before this index holds no
rows for the blocks before the upgrade (no backfill: the deadline steps of old blocks could
only be recovered by executing them again).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from contracts.deadlines import ENTRY_PREFIX as DUE_ENTRY_PREFIX
from contracts.orders import (
    AT_PICKUP,
    CANCELLED,
    COMPLETED,
    CREATED,
    DISPUTED,
    FUNDED,
    ORDER_ID_SIZE,
    RECEIVED,
    REFUNDED,
    RESOLVED,
    RETURN_REQUESTED,
    RETURN_SHIPPED,
    SHIPPED,
    Order,
    decode_order,
    order_key,
)
from ledger.blocks import Block
from ledger.encoding import decode, encode
from ledger.errors import DecodeError, LedgerError, StoreError
from ledger.receipts import Receipt
from ledger.store import ChainStore, StateRowReader

log = logging.getLogger("secnode.order_index")

ORDER_EVENTS_PREFIX: Final = b"O"
DEADLINE: Final = "deadline"
"""The `type` of an event no transaction caused: a deadline's default outcome."""
MAX_CHAINED_DEFAULTS: Final = 3
"""A hook takes at most two defaults in a row (§16.1); more means the records disagree."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happens to an order when the deadline of its state passes (§16.1)."""

    state: str
    """The state it then enters."""
    words: str
    """The outcome for a reader."""


DEADLINE_OUTCOMES: Final[dict[str, Outcome]] = {
    CREATED: Outcome(CANCELLED, "cancelled if the buyer has not paid"),
    FUNDED: Outcome(REFUNDED, "full refund to the buyer if not shipped"),
    SHIPPED: Outcome(RECEIVED, "receipt assumed if the buyer does not confirm it"),
    RECEIVED: Outcome(COMPLETED, "completed and paid out if nothing is returned or disputed"),
    DISPUTED: Outcome(REFUNDED, "full refund to the buyer if the arbiter does not resolve it"),
    AT_PICKUP: Outcome(RECEIVED, "receipt assumed if not picked up (the return window starts)"),
    RETURN_REQUESTED: Outcome(
        COMPLETED, "the return lapses and the order is paid out if not shipped back"
    ),
    RETURN_SHIPPED: Outcome(
        COMPLETED,
        "returned lines refunded and the rest paid out if the merchant does not confirm receipt",
    ),
}
"""docs/protocol.md §16.1's table: each open state's default outcome."""

EVENT_NAMES: Final[dict[str, str]] = {
    CREATED: "created",
    FUNDED: "paid",
    SHIPPED: "shipped",
    RECEIVED: "received",
    DISPUTED: "disputed",
    AT_PICKUP: "arrived",
    RETURN_REQUESTED: "return_requested",
    RETURN_SHIPPED: "return_shipped",
    COMPLETED: "completed",
    CANCELLED: "cancelled",
    REFUNDED: "refunded",
    RESOLVED: "resolved",
}
"""The event name of entering each state (the first transition of an order is "created")."""
OPENED: Final = "created"


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """One change of an order's state."""

    height: int
    """The block it happened in."""
    index: int | None
    """Position of its transaction in the block; None for a deadline."""
    tx_hash: bytes | None
    """Hash of that transaction; None for a deadline."""
    time_s: int
    """Block time in seconds."""
    type: str
    """The transaction type, or "deadline"."""
    event: str
    """`EVENT_NAMES` of the state entered ("created" for the order's first)."""
    actor: bytes | None
    """The transaction's signer; None for a deadline."""
    state: str
    """The order's state after it."""

    def to_wire(self) -> list[Any]:
        return [
            self.height,
            self.index,
            self.tx_hash,
            self.time_s,
            self.type,
            self.event,
            self.actor,
            self.state,
        ]

    @classmethod
    def from_wire(cls, value: Any) -> OrderEvent:
        if not isinstance(value, list) or len(value) != 8:
            raise DecodeError("an order event row is an array of 8 values")
        height, index, tx_hash, time_s, kind, event, actor, state = value
        return cls(height, index, tx_hash, time_s, kind, event, actor, state)


def event_key(order_id: bytes, height: int, position: int) -> bytes:
    return ORDER_EVENTS_PREFIX + order_id + height.to_bytes(8, "big") + position.to_bytes(4, "big")


def _stored_order(read: StateRowReader, order_id: bytes) -> Order | None:
    raw = read(order_key(order_id))
    return None if raw is None else decode_order(raw)


def _deadline_events(
    block: Block, changes: Mapping[bytes, bytes | None], parent: StateRowReader
) -> dict[bytes, list[OrderEvent]]:
    """The first default outcome of each order whose due-queue entry the block's hook popped
    and which was still in that state with that deadline at the parent (not superseded)."""
    popped = []
    for key, value in changes.items():
        if value is None and key.startswith(DUE_ENTRY_PREFIX):
            raw = parent(key)
            if raw is not None:
                due_s, order_id, state = decode(raw)
                popped.append((due_s, order_id, state))
    events: dict[bytes, list[OrderEvent]] = defaultdict(list)
    time_s = block.header.time_s
    for due_s, order_id, state in sorted(popped):
        order = _stored_order(parent, order_id)
        outcome = DEADLINE_OUTCOMES.get(state)
        if order is None or outcome is None or order.state != state or order.due_s != due_s:
            continue
        events[order_id].append(_deadline_event(block.height, time_s, outcome.state))
    return events


def _deadline_event(height: int, time_s: int, state: str) -> OrderEvent:
    return OrderEvent(height, None, None, time_s, DEADLINE, EVENT_NAMES[state], None, state)


def _transaction_events(
    block: Block, receipts: Sequence[Receipt], events: dict[bytes, list[OrderEvent]]
) -> None:
    """Append each successful receipt's `order.state` events to `events`, in block order."""
    time_s = block.header.time_s
    for index, (tx, receipt) in enumerate(zip(block.transactions, receipts, strict=True)):
        if not receipt.ok:
            continue
        opened: set[bytes] = set()
        for fields in receipt.events:
            kind = fields.get("event")
            order_id = fields.get("order_id")
            if not isinstance(order_id, bytes) or len(order_id) != ORDER_ID_SIZE:
                continue
            if kind == "order.created":
                opened.add(order_id)
            elif kind == "order.state":
                state = fields["state"]
                name = OPENED if order_id in opened else EVENT_NAMES[state]
                opened.discard(order_id)
                events[order_id].append(
                    OrderEvent(
                        block.height,
                        index,
                        tx.hash,
                        time_s,
                        tx.type,
                        name,
                        tx.sender_address,
                        state,
                    )
                )


def _chained_defaults(
    block: Block,
    changes: Mapping[bytes, bytes | None],
    parent: StateRowReader,
    events: dict[bytes, list[OrderEvent]],
) -> None:
    """Complete each order whose record after the block is past the last state derived so far
    by following `DEADLINE_OUTCOMES` (a default the hook chained onto another)."""
    prefix = order_key(b"")
    for key, raw in changes.items():
        if raw is None or not key.startswith(prefix):
            continue
        order_id = key[len(prefix) :]
        derived = events.get(order_id)
        if derived:
            last: str | None = derived[-1].state
        else:
            before = _stored_order(parent, order_id)
            last = None if before is None else before.state
        final = decode_order(raw).state
        steps = 0
        while last is not None and last != final and steps < MAX_CHAINED_DEFAULTS:
            outcome = DEADLINE_OUTCOMES.get(last)
            last = None if outcome is None else outcome.state
            if last is not None:
                events[order_id].append(_deadline_event(block.height, block.header.time_s, last))
            steps += 1
        if last != final:
            log.warning(
                "order %s: block %d's events do not lead to its state %s; history incomplete",
                order_id.hex(),
                block.height,
                final,
            )


def index_order_events(
    block: Block,
    receipts: Sequence[Receipt],
    changes: Mapping[bytes, bytes | None],
    parent: StateRowReader,
) -> list[tuple[bytes, bytes | None]]:
    """The order event rows of one block (a `ledger.store.Indexer`; see the module docstring).

    A record it cannot read is logged and the block's rows are skipped: the index is a
    convenience, and it must never stop a commit."""
    try:
        events = _deadline_events(block, changes, parent)
        _transaction_events(block, receipts, events)
        _chained_defaults(block, changes, parent, events)
    except (LedgerError, TypeError, ValueError, KeyError):
        log.exception("cannot index the order events of block %d", block.height)
        return []
    return [
        (event_key(order_id, block.height, position), encode(event.to_wire()))
        for order_id, derived in events.items()
        for position, event in enumerate(derived)
    ]


def order_events(store: ChainStore, order_id: bytes, limit: int) -> Iterator[OrderEvent]:
    """At most `limit` indexed events of `order_id`, oldest first."""
    if len(order_id) != ORDER_ID_SIZE:
        return
    for count, (_, raw) in enumerate(store.index_rows(ORDER_EVENTS_PREFIX + order_id)):
        if count >= limit:
            return
        try:
            yield OrderEvent.from_wire(decode(raw))
        except DecodeError as exc:
            raise StoreError(f"order event row of {order_id.hex()}: {exc}") from None
