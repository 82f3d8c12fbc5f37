"""Reviews on a development chain with the contracts: each rule of `review.post` and
`review.reply` (`test_invalid_*`: a receipt code, and nothing changed but the sender's nonce), the
indexes by merchant and by item with their rating summaries, and append-only records."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import pytest

from contracts import CONTRACTS
from contracts.orders import (
    RESOLVED,
    OrderCancel,
    OrderConfirm,
    OrderDispute,
    OrderPay,
    OrderResolve,
    OrderShip,
)
from contracts.reviews import (
    RatingSummary,
    Review,
    ReviewPost,
    ReviewReply,
    get_review,
    item_ref,
    order_item_refs,
    rating_summary,
    record_order_items,
    reviews_of,
)
from ledger.accounts import account_key
from ledger.errors import MalformedTransaction
from ledger.plugins import assemble_kinds
from ledger.receipts import Receipt
from ledger.schema import parse_struct
from tests.orderkit import OrderChain, order_genesis, shipment

TOTAL = 2 * 1_000 + 500  # the default order of OrderChain.create
REVIEW_WINDOW_S = 100
ITEMS = (("tea", 2, 1_000), ("cup", 1, 0))


def text(words: str) -> bytes:
    return hashlib.sha256(words.encode()).digest()


@pytest.fixture
def chain() -> OrderChain:
    return OrderChain(genesis=order_genesis(review_window_s=REVIEW_WINDOW_S))


def complete(chain: OrderChain, buyer: str = "buyer2", merchant: str = "merchant1") -> bytes:
    """An order of `merchant` for `buyer` (lines tea and cup) taken to COMPLETED; its id."""
    order_id = chain.create(merchant=merchant, buyer=buyer, items=ITEMS)
    for name, tx_type, body in (
        (buyer, "order.pay", OrderPay(order_id, TOTAL)),
        (merchant, "order.ship", OrderShip(order_id, shipment(order_id.hex()))),
        (buyer, "order.confirm", OrderConfirm(order_id)),
    ):
        receipt = chain.send(name, tx_type, body)
        assert receipt.ok, receipt
    chain.run([], at_s=chain.now + 11)  # the 10 s return window passes
    assert chain.order(order_id).state == "COMPLETED"
    return order_id


def post(
    chain: OrderChain,
    order_id: bytes,
    rating: int = 5,
    item: bytes | None = None,
    name: str = "buyer2",
    at_s: int | None = None,
) -> Receipt:
    body = ReviewPost(order_id, rating, text(f"{name} on {order_id.hex()}"), item)
    return chain.send(name, "review.post", body, at_s)


def rejected(
    chain: OrderChain,
    name: str,
    tx_type: str,
    body: Any,
    code: str,
    at_s: int | None = None,
    *,
    names: bytes,
) -> None:
    """The transaction fails with `code`, its message names `names` (hex), and it changes nothing
    but the sender's nonce (and the deadline hook's due-queue, which any block may tidy)."""
    before = dict(chain.state.committed)
    balances = {n: chain.balance(n) for n in ("buyer2", "merchant1", "buyer3")}
    receipt = chain.send(name, tx_type, body, at_s)
    assert (receipt.ok, receipt.code) == (False, code), receipt
    assert names.hex() in receipt.message, receipt.message
    changed = {
        key
        for key in set(before) | set(chain.state.committed)
        if before.get(key) != chain.state.committed.get(key)
    }
    changed = {key for key in changed if not key.startswith(b"due")}
    assert changed <= {account_key(chain.address(name))}, sorted(changed)
    assert balances == {n: chain.balance(n) for n in balances}


# --- posting and replying -----------------------------------------------------------------------


def test_the_buyer_reviews_and_the_merchant_replies(chain: OrderChain) -> None:
    order_id = complete(chain)
    receipt = post(chain, order_id, rating=4, item=item_ref("tea"))
    assert receipt.ok, receipt
    (event,) = receipt.events
    assert event == {
        "event": "review.posted",
        "order_id": order_id,
        "merchant": chain.address("merchant1"),
        "rating": 4,
    }
    posted = get_review(chain.state, order_id)
    assert posted == Review(
        order_id=order_id,
        author=chain.address("buyer2"),
        merchant=chain.address("merchant1"),
        item=item_ref("tea"),
        rating=4,
        text_hash=text(f"buyer2 on {order_id.hex()}"),
        time_s=chain.now,
        height=chain.head.height,
        reply_hash=None,
        reply_s=None,
        reply_height=None,
    )
    reply = chain.send("merchant1", "review.reply", ReviewReply(order_id, text("thanks")))
    assert reply.ok, reply
    replied = get_review(chain.state, order_id)
    assert replied is not None and posted is not None
    assert (replied.reply_hash, replied.reply_s, replied.reply_height) == (
        text("thanks"),
        chain.now,
        chain.head.height,
    )
    # The review part of the record is unchanged by the reply.
    assert dataclasses.replace(replied, reply_hash=None, reply_s=None, reply_height=None) == posted


def test_a_resolved_order_can_be_reviewed(chain: OrderChain) -> None:
    order_id = chain.create(buyer="buyer2")
    chain.send("buyer2", "order.pay", OrderPay(order_id, TOTAL))
    chain.send("buyer2", "order.dispute", OrderDispute(order_id, None))
    chain.send("arbiter", "order.resolve", OrderResolve(order_id, 1_000))
    assert chain.order(order_id).state == RESOLVED
    assert post(chain, order_id, rating=1).ok


def test_orders_record_the_item_references_of_their_lines(chain: OrderChain) -> None:
    order_id = chain.create(items=(("tea", 1, 10), ("cup", 2, 5), ("tea", 3, 1)))
    assert order_item_refs(chain.state, order_id) == tuple(
        sorted({item_ref("tea"), item_ref("cup")})
    )


def test_an_item_reference_recorded_by_another_contract_is_reviewable(chain: OrderChain) -> None:
    """A contract that opens orders of its own (a group buy, whose offer names an item reference
    hash, not a SKU) records that reference with `record_order_items`; a review names it."""
    order_id = complete(chain)
    offer_item = hashlib.sha256(b"group offer 7: tea, 500 g").digest()
    record_order_items(chain.state, order_id, [offer_item])
    chain.state.commit_block()
    assert order_item_refs(chain.state, order_id) == (offer_item,)
    assert post(chain, order_id, rating=5, item=offer_item).ok
    merchant = chain.address("merchant1")
    assert rating_summary(chain.state, merchant, offer_item) == RatingSummary(1, 5)


def test_reviews_are_indexed_by_merchant_and_item_with_summaries(chain: OrderChain) -> None:
    tea, cup = item_ref("tea"), item_ref("cup")
    plan = [("buyer2", 5, tea), ("buyer3", 2, cup), ("buyer2", 4, tea), ("buyer3", 3, None)]
    order_ids = []
    for buyer, rating, item in plan:
        order_id = complete(chain, buyer=buyer)
        assert post(chain, order_id, rating, item, name=buyer).ok
        order_ids.append(order_id)
    merchant = chain.address("merchant1")
    assert rating_summary(chain.state, merchant) == RatingSummary(4, 14)
    assert rating_summary(chain.state, merchant, tea) == RatingSummary(2, 9)
    assert rating_summary(chain.state, merchant, cup) == RatingSummary(1, 2)
    assert rating_summary(chain.state, chain.address("merchant2")) == RatingSummary(0, 0)

    first = reviews_of(chain.state, merchant, start=0, limit=3)
    assert [r.review.order_id for r in first.reviews] == order_ids[:3]
    assert [r.position for r in first.reviews] == [0, 1, 2]
    assert first.next_position == 3
    last = reviews_of(chain.state, merchant, start=3, limit=3)
    assert [r.review.order_id for r in last.reviews] == order_ids[3:]
    assert last.next_position is None
    by_tea = reviews_of(chain.state, merchant, tea, limit=10)
    assert [r.review.order_id for r in by_tea.reviews] == [order_ids[0], order_ids[2]]
    assert by_tea.summary == RatingSummary(2, 9) and by_tea.next_position is None
    assert reviews_of(chain.state, merchant, start=9, limit=5).reviews == ()


def test_queries_refuse_bad_arguments(chain: OrderChain) -> None:
    merchant = chain.address("merchant1")
    for who, item, start, limit in (
        (merchant, None, 0, 0),
        (merchant, None, -1, 1),
        (merchant[:5], None, 0, 1),
        (merchant, b"short", 0, 1),
    ):
        with pytest.raises(ValueError, match="not"):
            reviews_of(chain.state, who, item, start=start, limit=limit)


# --- the rules ---------------------------------------------------------------------------------


def test_invalid_second_review_of_an_order(chain: OrderChain) -> None:
    order_id = complete(chain)
    assert post(chain, order_id, rating=5).ok
    body = ReviewPost(order_id, 1, text("changed my mind"), None)
    rejected(chain, "buyer2", "review.post", body, "already_reviewed", names=order_id)
    review = get_review(chain.state, order_id)
    assert review is not None and review.rating == 5


def test_invalid_review_by_a_stranger_or_the_merchant(chain: OrderChain) -> None:
    order_id = complete(chain)
    for outsider in ("buyer3", "arbiter", "merchant1", "merchant2"):
        body = ReviewPost(order_id, 1, text("fake"), None)
        rejected(chain, outsider, "review.post", body, "not_reviewer", names=order_id)


@pytest.mark.parametrize("stage", ["created", "funded", "shipped", "received", "cancelled"])
def test_invalid_review_of_an_order_not_completed(chain: OrderChain, stage: str) -> None:
    order_id = chain.create(buyer="buyer2")
    pay = ("buyer2", "order.pay", OrderPay(order_id, TOTAL))
    ship = ("merchant1", "order.ship", OrderShip(order_id, shipment("s")))
    plans: dict[str, list[tuple[str, str, Any]]] = {
        "created": [],
        "cancelled": [("buyer2", "order.cancel", OrderCancel(order_id))],
        "funded": [pay],
        "shipped": [pay, ship],
        "received": [pay, ship, ("buyer2", "order.confirm", OrderConfirm(order_id))],
    }
    for name, tx_type, body in plans[stage]:
        assert chain.send(name, tx_type, body).ok
    body = ReviewPost(order_id, 3, text("early"), None)
    rejected(chain, "buyer2", "review.post", body, "order_not_completed", names=order_id)


def test_invalid_review_of_an_unknown_order(chain: OrderChain) -> None:
    body = ReviewPost(bytes(32), 3, text("x"), None)
    rejected(chain, "buyer2", "review.post", body, "unknown_order", names=bytes(32))


@pytest.mark.parametrize("rating", [0, 6, -1, True])
def test_invalid_rating_is_rejected_by_the_schema(rating: int) -> None:
    fields = {"order_id": bytes(32), "rating": rating, "text_hash": bytes(32)}
    with pytest.raises(MalformedTransaction, match="rating"):
        parse_struct(ReviewPost, fields, "body")


def test_ratings_one_to_five_parse() -> None:
    for rating in range(1, 6):
        fields = {"order_id": bytes(32), "rating": rating, "text_hash": bytes(32)}
        assert parse_struct(ReviewPost, fields, "body").rating == rating


def test_invalid_review_after_the_window(chain: OrderChain) -> None:
    order_id = complete(chain)
    completed_s = chain.order(order_id).updated_s
    body = ReviewPost(order_id, 2, text("late"), None)
    at_s = completed_s + REVIEW_WINDOW_S
    rejected(
        chain, "buyer2", "review.post", body, "review_window_closed", at_s=at_s, names=order_id
    )
    # One second earlier is still inside the window (checked on a fresh order).
    other = complete(chain)
    assert post(chain, other, at_s=chain.order(other).updated_s + REVIEW_WINDOW_S - 1).ok


def test_invalid_item_not_in_the_order(chain: OrderChain) -> None:
    order_id = complete(chain)
    for item in (item_ref("coffee"), item_ref("Tea"), bytes(32)):
        body = ReviewPost(order_id, 4, text("x"), item)
        rejected(chain, "buyer2", "review.post", body, "item_not_in_order", names=item)


def test_invalid_reply_by_someone_other_than_the_merchant(chain: OrderChain) -> None:
    order_id = complete(chain)
    assert post(chain, order_id).ok
    for outsider in ("buyer2", "buyer3", "arbiter", "merchant2"):
        body = ReviewReply(order_id, text("not mine"))
        rejected(chain, outsider, "review.reply", body, "not_replier", names=order_id)


def test_invalid_second_reply(chain: OrderChain) -> None:
    order_id = complete(chain)
    assert post(chain, order_id).ok
    assert chain.send("merchant1", "review.reply", ReviewReply(order_id, text("first"))).ok
    body = ReviewReply(order_id, text("edited"))
    rejected(chain, "merchant1", "review.reply", body, "already_replied", names=order_id)
    review = get_review(chain.state, order_id)
    assert review is not None and review.reply_hash == text("first")


def test_invalid_reply_to_a_missing_review(chain: OrderChain) -> None:
    order_id = complete(chain)
    body = ReviewReply(order_id, text("pre-emptive"))
    rejected(chain, "merchant1", "review.reply", body, "unknown_review", names=order_id)
    body = ReviewReply(bytes(32), text("x"))
    rejected(chain, "merchant1", "review.reply", body, "unknown_review", names=bytes(32))


def test_no_transaction_type_can_remove_or_rewrite_a_review() -> None:
    """The only review kinds are post and reply; both refuse to touch an existing entry (the
    `test_invalid_second_*` tests)."""
    review_kinds = {name for name in assemble_kinds(CONTRACTS) if name.startswith("review.")}
    assert review_kinds == {"review.post", "review.reply"}
