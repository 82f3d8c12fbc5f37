"""Reviews: the `review.post` and `review.reply` handlers, the review records and their indexes.

Rules (docs/protocol.md "Reviews"), checked in this order, each with its own error:

`review.post` {order_id, rating, text_hash, item?}
* the order exists (`unknown_order`) and is COMPLETED or RESOLVED (`order_not_completed`);
* the sender is the order's buyer (`not_reviewer`): the buyer reviews the merchant; the
  merchant answers with `review.reply`, never with a review of its own;
* the block time is before completion + review_window_s (`review_window_closed`), completion
  being the order's `updated_s`, as for attestations;
* `item`, if given, is one of the order's item references (`item_not_in_order`);
* the order has no review yet (`already_reviewed`).
The rating (1..5) and the sizes of the hashes are checked by the transaction schema.

`review.reply` {order_id, text_hash}
* a review of the order exists (`unknown_review`);
* the sender is the order's merchant (`not_replier`);
* the review has no reply yet (`already_replied`).

Append-only: no transaction type removes or rewrites a review. The review fields of a record
never change after `review.post`; `review.reply` fills its three reply slots once (from null).
The text itself stays off-chain (it can be deleted there); the chain keeps its SHA-256 and who
wrote it.

Item references: the item reference of an order line is SHA-256 of the UTF-8 bytes of its SKU
(`item_ref`). `order.create` records the references of its lines (`record_order_items`, sorted,
without repeats); another contract that opens orders (a group buy, whose offer names an item
reference hash) records its own references the same way. An order created before this record
existed has none, and its review names no item.

State layout (canonical encodings; docs/protocol.md "Reviews"):

    items:           || order_id                        -> [item_ref, ...] (sorted, unique)
    review:          || order_id                        -> REVIEW_FIELDS (see `Review`)
    review:summary:  || merchant                        -> [count, rating_sum]
    review:merchant: || merchant || position (8 bytes)  -> order_id
    review:isummary: || merchant || item                -> [count, rating_sum]
    review:item:     || merchant || item || position    -> order_id

Invariant: a merchant's (and a merchant-item pair's) index positions are 0 .. count - 1 of its
summary, in the order the reviews were posted, and rating_sum is the sum of their ratings.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar, Final

from contracts.errors import (
    AlreadyReplied,
    AlreadyReviewed,
    ItemNotInOrder,
    NotReplier,
    NotReviewer,
    OrderNotCompleted,
    ReviewWindowClosed,
    UnknownOrder,
    UnknownReview,
)
from contracts.orders import COMPLETED, RESOLVED, require_order
from ledger.accounts import get_parameter
from ledger.encoding import decode, encode
from ledger.errors import DecodeError, StoreError
from ledger.execution import BlockContext, Events, TxKind
from ledger.keys import ADDRESS_SIZE, format_address
from ledger.plugins import Contract
from ledger.schema import Optional, field, integer
from ledger.state import State, StateReader
from ledger.transactions import HASH_KIND, SignedTransaction, TxBody

ORDER_ITEMS_PREFIX: Final = b"items:"
REVIEW_PREFIX: Final = b"review:"
SUMMARY_PREFIX: Final = b"review:summary:"
MERCHANT_INDEX_PREFIX: Final = b"review:merchant:"
ITEM_SUMMARY_PREFIX: Final = b"review:isummary:"
ITEM_INDEX_PREFIX: Final = b"review:item:"
REVIEWABLE_STATES: Final = (COMPLETED, RESOLVED)
MIN_RATING: Final = 1
MAX_RATING: Final = 5
ITEM_REF_SIZE: Final = 32


# --- transaction bodies -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReviewPost(TxBody):
    """The buyer of a completed or resolved order reviews its merchant (once per order)."""

    TYPE: ClassVar[str] = "review.post"

    order_id: bytes = field(HASH_KIND, "order id")
    rating: int = field(integer(MIN_RATING, MAX_RATING), "1 (worst) .. 5 (best)")
    text_hash: bytes = field(HASH_KIND, "SHA-256 of the review text (kept off-chain)")
    item: bytes | None = field(Optional(HASH_KIND), "item reference: one of the order's")


@dataclass(frozen=True, slots=True)
class ReviewReply(TxBody):
    """The order's merchant answers its review (once)."""

    TYPE: ClassVar[str] = "review.reply"

    order_id: bytes = field(HASH_KIND, "order id of the review")
    text_hash: bytes = field(HASH_KIND, "SHA-256 of the reply text (kept off-chain)")


# --- records ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Review:
    """One review with its reply slots (stored as the array of REVIEW_FIELDS)."""

    order_id: bytes
    """The reviewed order (a review is keyed by it: one per order)."""
    author: bytes
    """Who wrote it: the order's buyer."""
    merchant: bytes
    """The order's merchant: whom the review is about."""
    item: bytes | None
    """Item reference the review is about (one of the order's), or None for the order."""
    rating: int
    """1..5."""
    text_hash: bytes
    """SHA-256 of the review text."""
    time_s: int
    """Block time of the review."""
    height: int
    """Height of the block that recorded it."""
    reply_hash: bytes | None
    """SHA-256 of the merchant's reply text, once replied."""
    reply_s: int | None
    """Block time of the reply, once replied."""
    reply_height: int | None
    """Height of the block that recorded the reply, once replied."""


REVIEW_FIELDS: Final = tuple(f.name for f in dataclasses.fields(Review))
"""Record positions: the record is the array of these fields, in this order."""


@dataclass(frozen=True, slots=True)
class RatingSummary:
    """How many reviews and the sum of their ratings (average = rating_sum / count)."""

    count: int
    rating_sum: int


def item_ref(sku: str) -> bytes:
    """The item reference of an order line: SHA-256 of its SKU's UTF-8 bytes."""
    return hashlib.sha256(sku.encode()).digest()


def order_items_key(order_id: bytes) -> bytes:
    return ORDER_ITEMS_PREFIX + order_id


def review_key(order_id: bytes) -> bytes:
    return REVIEW_PREFIX + order_id


def summary_key(merchant: bytes, item: bytes | None = None) -> bytes:
    """The [count, rating_sum] record of `merchant` (of `merchant` and `item` if given)."""
    return SUMMARY_PREFIX + merchant if item is None else ITEM_SUMMARY_PREFIX + merchant + item


def position_key(merchant: bytes, item: bytes | None, position: int) -> bytes:
    """The index entry at `position` of `merchant`'s reviews (for `item` if given)."""
    at = position.to_bytes(8, "big")
    if item is None:
        return MERCHANT_INDEX_PREFIX + merchant + at
    return ITEM_INDEX_PREFIX + merchant + item + at


def encode_review(review: Review) -> bytes:
    return encode([getattr(review, name) for name in REVIEW_FIELDS])


def decode_review(raw: bytes) -> Review:
    """A review from its record bytes; StoreError if they are not one."""
    try:
        values = decode(raw)
        if not isinstance(values, list) or len(values) != len(REVIEW_FIELDS):
            raise DecodeError(f"expected an array of {len(REVIEW_FIELDS)} fields")
        return Review(*values)
    except DecodeError as exc:
        raise StoreError(f"review record: {exc}") from None


def record_order_items(state: State, order_id: bytes, refs: Iterable[bytes]) -> None:
    """Record the item references of a new order (sorted, without repeats)."""
    state.set(order_items_key(order_id), encode(sorted(set(refs))))


# --- reads ------------------------------------------------------------------------------------
# For readers outside execution too (the RPC reads a `ledger.store.CommittedState`): a record
# that is malformed, or missing where an index says it is, is a corrupt store (`StoreError`).


def _decode_record(raw: bytes, what: str) -> object:
    try:
        return decode(raw)
    except DecodeError as exc:
        raise StoreError(f"{what}: {exc}") from None


def order_item_refs(state: StateReader, order_id: bytes) -> tuple[bytes, ...]:
    """The item references recorded for `order_id` (empty if none were)."""
    raw = state.get(order_items_key(order_id))
    if raw is None:
        return ()
    refs = _decode_record(raw, f"item references of order {order_id.hex()}")
    if not isinstance(refs, list) or not all(isinstance(r, bytes) for r in refs):
        raise StoreError(f"item references of order {order_id.hex()} are malformed")
    return tuple(refs)


def get_review(state: StateReader, order_id: bytes) -> Review | None:
    """The review of `order_id`, or None if there is none."""
    raw = state.get(review_key(order_id))
    return None if raw is None else decode_review(raw)


def rating_summary(state: StateReader, merchant: bytes, item: bytes | None = None) -> RatingSummary:
    """Count and rating sum of `merchant`'s reviews (only those about `item` if given)."""
    raw = state.get(summary_key(merchant, item))
    if raw is None:
        return RatingSummary(0, 0)
    values = _decode_record(raw, f"rating summary of {format_address(merchant)}")
    if not isinstance(values, list) or len(values) != 2:
        raise StoreError(f"rating summary of {format_address(merchant)} is malformed")
    return RatingSummary(*values)


@dataclass(frozen=True, slots=True)
class IndexedReview:
    """One entry of a review listing."""

    position: int
    """Its position in the index listed (0 is the first review posted)."""
    review: Review


@dataclass(frozen=True, slots=True)
class ReviewsPage:
    """One page of `reviews_of`."""

    summary: RatingSummary
    """Count and rating sum of everything listed (all pages)."""
    reviews: tuple[IndexedReview, ...]
    """The page, in the order the reviews were posted."""
    next_position: int | None
    """Pass as `start` for the next page; None when the listing is complete."""


def reviews_of(
    state: StateReader,
    merchant: bytes,
    item: bytes | None = None,
    *,
    start: int = 0,
    limit: int,
) -> ReviewsPage:
    """`merchant`'s reviews (only those about `item` if given) in the order they were posted:
    at most `limit` of them, from position `start` of the index."""
    if len(merchant) != ADDRESS_SIZE:
        raise ValueError(f"merchant {merchant.hex()} is {len(merchant)} bytes, not an address")
    if item is not None and len(item) != ITEM_REF_SIZE:
        raise ValueError(f"item {item.hex()} is {len(item)} bytes, not {ITEM_REF_SIZE}")
    if start < 0 or limit < 1:
        raise ValueError(f"start must be >= 0 and limit >= 1, not start {start}, limit {limit}")
    summary = rating_summary(state, merchant, item)
    end = min(summary.count, start + limit)
    page = []
    for position in range(start, end):
        raw = state.get(position_key(merchant, item, position))
        if raw is None:
            raise StoreError(f"review index {position} of {format_address(merchant)} is missing")
        order_id = _decode_record(raw, f"review index {position} of {format_address(merchant)}")
        review = get_review(state, order_id) if isinstance(order_id, bytes) else None
        if review is None:
            raise StoreError(f"review index {position} of {format_address(merchant)} is dangling")
        page.append(IndexedReview(position, review))
    return ReviewsPage(summary, tuple(page), end if end < summary.count else None)


# --- the handlers -----------------------------------------------------------------------------


def _append(state: State, merchant: bytes, item: bytes | None, review: Review) -> None:
    """Add `review` at the end of one index and its summary."""
    summary = rating_summary(state, merchant, item)
    state.set(position_key(merchant, item, summary.count), encode(review.order_id))
    state.set(
        summary_key(merchant, item), encode([summary.count + 1, summary.rating_sum + review.rating])
    )


def apply_post(
    state: State, tx: SignedTransaction, body: ReviewPost, context: BlockContext
) -> Events:
    """`review.post`: the buyer of a completed or resolved order reviews its merchant."""
    author = tx.sender_address
    order = require_order(state, body.order_id)
    if order.state not in REVIEWABLE_STATES:
        raise OrderNotCompleted(
            f"order {body.order_id.hex()} is {order.state}; only a COMPLETED or RESOLVED order "
            "can be reviewed"
        )
    if author != order.buyer:
        raise NotReviewer(
            f"{format_address(author)} is not the buyer of order {body.order_id.hex()}; only "
            f"its buyer {format_address(order.buyer)} may review it (the merchant replies)"
        )
    window_s = get_parameter(state, "review_window_s")
    if context.time_s >= order.updated_s + window_s:
        raise ReviewWindowClosed(
            f"order {body.order_id.hex()} completed at {order.updated_s}; reviews were accepted "
            f"until {order.updated_s + window_s} (block time {context.time_s})"
        )
    if body.item is not None:
        refs = order_item_refs(state, body.order_id)
        if body.item not in refs:
            raise ItemNotInOrder(
                f"item {body.item.hex()} is not one of the {len(refs)} item references of order "
                f"{body.order_id.hex()}: {[ref.hex() for ref in refs]}"
            )
    if state.get(review_key(body.order_id)) is not None:
        raise AlreadyReviewed(f"order {body.order_id.hex()} already has a review")
    review = Review(
        order_id=body.order_id,
        author=author,
        merchant=order.merchant,
        item=body.item,
        rating=body.rating,
        text_hash=body.text_hash,
        time_s=context.time_s,
        height=context.height,
        reply_hash=None,
        reply_s=None,
        reply_height=None,
    )
    state.set(review_key(body.order_id), encode_review(review))
    _append(state, order.merchant, None, review)
    if body.item is not None:
        _append(state, order.merchant, body.item, review)
    return [
        {
            "event": "review.posted",
            "order_id": body.order_id,
            "merchant": order.merchant,
            "rating": body.rating,
        }
    ]


def apply_reply(
    state: State, tx: SignedTransaction, body: ReviewReply, context: BlockContext
) -> Events:
    """`review.reply`: the order's merchant answers its review, once."""
    sender = tx.sender_address
    review = get_review(state, body.order_id)
    if review is None:
        raise UnknownReview(f"order {body.order_id.hex()} has no review to reply to")
    if sender != review.merchant:
        raise NotReplier(
            f"{format_address(sender)} is not the merchant of order {body.order_id.hex()}; only "
            f"{format_address(review.merchant)} may reply to its review"
        )
    if review.reply_hash is not None:
        raise AlreadyReplied(
            f"the review of order {body.order_id.hex()} was already replied to at {review.reply_s}"
        )
    replied = dataclasses.replace(
        review, reply_hash=body.text_hash, reply_s=context.time_s, reply_height=context.height
    )
    state.set(review_key(body.order_id), encode_review(replied))
    return [{"event": "review.replied", "order_id": body.order_id, "merchant": sender}]


CONTRACT: Final = Contract(
    name="reviews",
    kinds=(TxKind(ReviewPost, apply_post), TxKind(ReviewReply, apply_reply)),
    errors=(
        UnknownOrder,
        OrderNotCompleted,
        NotReviewer,
        ReviewWindowClosed,
        ItemNotInOrder,
        AlreadyReviewed,
        UnknownReview,
        NotReplier,
        AlreadyReplied,
    ),
    queries=(get_review, reviews_of, rating_summary, order_item_refs),
)
"""The reviews plug-in (collected by `contracts.CONTRACTS`)."""
