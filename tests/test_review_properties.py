"""Review invariants under random use and abuse (a hypothesis state machine).

Three completed orders (two of merchant1, one of merchant2); each step is one real block: a
review or a reply by a random account (the right party or not), with a random rating and item
(one of the order's, another, or none), at a random time (inside the review window or past it).
An oracle written from docs/protocol.md §19.2 predicts each receipt. After every step:

* every receipt is the one the rules predict (accepted, or the code of the first broken rule);
* a review's fields never change once posted; its reply slots are filled at most once, and then
  never change; nothing is ever removed;
* every merchant's and merchant-item's summary is [number of its reviews, sum of their
  ratings], and its listing is its reviews in the order they were posted.
"""

from __future__ import annotations

import dataclasses

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from contracts.reviews import (
    Review,
    ReviewPost,
    ReviewReply,
    get_review,
    item_ref,
    rating_summary,
    reviews_of,
)
from tests.orderkit import OrderChain, order_genesis
from tests.test_reviews import complete, text

WINDOW_S = 500
ROLES = (*("buyer",) * 5, *("merchant",) * 4, "other buyer", "other merchant", "arbiter")
"""Who sends, relative to the order (the right party most of the time)."""
OFFSETS = st.integers(0, 60).map(lambda n: n if n <= 50 else WINDOW_S + n - 55)
"""Block time of a step, in seconds after the order's completion: mostly early, sometimes just
before the window's end or at/after it (time only moves forward, so a late step closes the
window for good)."""
ITEM_CHOICES = (None, "tea", "cup", "coffee")
PLAN = (("buyer1", "merchant1"), ("buyer2", "merchant1"), ("buyer3", "merchant2"))
"""(buyer, merchant) of the three orders; each has the lines tea and cup."""


class ReviewMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.chain = OrderChain(genesis=order_genesis(review_window_s=WINDOW_S))
        self.orders: list[tuple[bytes, str, str, int]] = []
        """(order id, buyer, merchant, completion time) of each order."""
        self.posted: dict[bytes, Review] = {}
        """The review of each order as first recorded (reply slots as first filled)."""
        self.listing: dict[tuple[str, bytes | None], list[bytes]] = {}
        """(merchant, item or None) -> order ids in posting order."""

    @initialize()
    def complete_orders(self) -> None:
        for buyer, merchant in PLAN:
            order_id = complete(self.chain, buyer=buyer, merchant=merchant)
            completed_s = self.chain.order(order_id).updated_s
            self.orders.append((order_id, buyer, merchant, completed_s))

    def _sender(self, which: int, role: str) -> str:
        _, buyer, merchant, _ = self.orders[which]
        others = {
            "buyer": buyer,
            "merchant": merchant,
            "other buyer": "buyer3" if buyer != "buyer3" else "buyer1",
            "other merchant": "merchant2" if merchant != "merchant2" else "merchant1",
        }
        return others.get(role, role)

    def _at(self, completed_s: int, offset: int) -> int:
        return max(self.chain.now + 1, completed_s + offset)

    @rule(
        which=st.integers(0, len(PLAN) - 1),
        role=st.sampled_from(ROLES),
        rating=st.integers(1, 5),
        item=st.sampled_from(ITEM_CHOICES),
        offset=OFFSETS,
    )
    def post(self, which: int, role: str, rating: int, item: str | None, offset: int) -> None:
        order_id, buyer, merchant, completed_s = self.orders[which]
        sender = self._sender(which, role)
        at_s = self._at(completed_s, offset)
        ref = None if item is None else item_ref(item)
        body = ReviewPost(order_id, rating, text(f"{sender} {at_s}"), ref)
        receipt = self.chain.send(sender, "review.post", body, at_s)
        if sender != buyer:
            expected = "not_reviewer"
        elif at_s >= completed_s + WINDOW_S:
            expected = "review_window_closed"
        elif item == "coffee":
            expected = "item_not_in_order"
        elif order_id in self.posted:
            expected = "already_reviewed"
        else:
            expected = None
        assert (receipt.ok, receipt.code) == (expected is None, expected or ""), receipt
        if expected is None:
            review = get_review(self.chain.state, order_id)
            assert review is not None
            self.posted[order_id] = review
            self.listing.setdefault((merchant, None), []).append(order_id)
            if ref is not None:
                self.listing.setdefault((merchant, ref), []).append(order_id)

    @rule(
        which=st.integers(0, len(PLAN) - 1),
        role=st.sampled_from(ROLES),
        offset=OFFSETS,
    )
    def reply(self, which: int, role: str, offset: int) -> None:
        order_id, _, merchant, completed_s = self.orders[which]
        sender = self._sender(which, role)
        at_s = self._at(completed_s, offset)
        body = ReviewReply(order_id, text(f"reply {at_s}"))
        receipt = self.chain.send(sender, "review.reply", body, at_s)
        review = self.posted.get(order_id)
        if review is None:
            expected = "unknown_review"
        elif sender != merchant:
            expected = "not_replier"
        elif review.reply_hash is not None:
            expected = "already_replied"
        else:
            expected = None
        assert (receipt.ok, receipt.code) == (expected is None, expected or ""), receipt
        if expected is None:
            replied = get_review(self.chain.state, order_id)
            assert replied is not None and replied.reply_hash == body.text_hash
            # The reply filled its slots and touched nothing else.
            unreplied = dataclasses.replace(
                replied, reply_hash=None, reply_s=None, reply_height=None
            )
            assert unreplied == review
            self.posted[order_id] = replied

    @invariant()
    def records_never_change(self) -> None:
        for order_id, _, _, _ in self.orders:
            stored = get_review(self.chain.state, order_id)
            if order_id not in self.posted:
                assert stored is None
                continue
            assert stored == self.posted[order_id]

    @invariant()
    def summaries_and_listings_match_the_reviews(self) -> None:
        for merchant in ("merchant1", "merchant2"):
            address = self.chain.address(merchant)
            for ref in (None, item_ref("tea"), item_ref("cup"), item_ref("coffee")):
                listed = self.listing.get((merchant, ref), [])
                ratings = [self.posted[order_id].rating for order_id in listed]
                summary = rating_summary(self.chain.state, address, ref)
                assert (summary.count, summary.rating_sum) == (len(listed), sum(ratings))
                page = reviews_of(self.chain.state, address, ref, limit=10)
                assert [r.review.order_id for r in page.reviews] == listed


ReviewMachine.TestCase.settings = settings(max_examples=50, stateful_step_count=20, deadline=None)
TestReviews = ReviewMachine.TestCase
