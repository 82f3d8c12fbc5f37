"""Parameter and result models of sec_getReviews (docs/rpc.md), with constructors from the
reviews contract's records and the check a client runs on the proofs of an answer.

An answer with `prove: true` carries, under the committed `state_root` it names:
* the summary record (`review:summary:<merchant>` or `review:isummary:<merchant><item>`):
  membership, or non-membership for a merchant without reviews, so `count` and `rating_sum`
  are proven and with them how many positions the index has;
* for each review of the page, the index entry at its position (-> the order id) and the review
  record (`review:<order id>`), both memberships.
`GetReviewsResult.check_proofs` verifies all of it and that the decoded records are the reviews
listed, so a client learns the page without trusting the node beyond `state_root` (which a
client that trusts no node checks against a certified header: `sec audit`).
"""

from __future__ import annotations

from typing import Final

from pydantic import Field, model_validator

from contracts.reviews import (
    MAX_RATING,
    MIN_RATING,
    Review,
    decode_review,
    position_key,
    review_key,
    summary_key,
)
from ledger.encoding import decode
from ledger.errors import DecodeError, InvalidProof, StoreError
from ledger.state_tree import verify_state_proof
from secnode.schema.models import AddressText, Hash
from secnode.schema.objects import StateProof
from secnode.schema.values import AddressBytes, Hash32, HexBytes, StrictModel

MAX_REVIEW_PAGE: Final = 100


class GetReviewsParams(StrictModel):
    merchant: AddressText = Field(description="the merchant whose reviews to list")
    item: Hash | None = Field(
        None, description="only reviews of this item reference (SHA-256 of a SKU), hex"
    )
    cursor: int = Field(0, ge=0, le=2**63 - 1, description="position to start at (next_cursor)")
    limit: int = Field(20, ge=1, le=MAX_REVIEW_PAGE, description="at most this many")
    prove: bool = Field(False, description="include state proofs of the summary and each review")


class ReviewJson(StrictModel):
    position: int = Field(description="position in the listed index (0: the first posted)")
    order_id: Hash32 = Field(description="the reviewed order (one review per order)")
    author: AddressBytes = Field(description="the order's buyer")
    merchant: AddressBytes
    item: Hash32 | None = Field(description="item reference reviewed (null: the order)")
    rating: int = Field(ge=MIN_RATING, le=MAX_RATING)
    text_hash: Hash32 = Field(description="SHA-256 of the review text (kept off-chain)")
    time_s: int = Field(description="block time of the review")
    height: int = Field(description="block that recorded the review")
    reply_hash: Hash32 | None = Field(description="SHA-256 of the merchant's reply, once any")
    reply_s: int | None = Field(description="block time of the reply")
    reply_height: int | None = Field(description="block that recorded the reply")

    @classmethod
    def of(cls, position: int, review: Review) -> ReviewJson:
        return cls(
            position=position,
            order_id=review.order_id,
            author=review.author,
            merchant=review.merchant,
            item=review.item,
            rating=review.rating,
            text_hash=review.text_hash,
            time_s=review.time_s,
            height=review.height,
            reply_hash=review.reply_hash,
            reply_s=review.reply_s,
            reply_height=review.reply_height,
        )

    def to_review(self) -> Review:
        """The contract's record this entry shows."""
        return Review(
            order_id=self.order_id,
            author=self.author,
            merchant=self.merchant,
            item=self.item,
            rating=self.rating,
            text_hash=self.text_hash,
            time_s=self.time_s,
            height=self.height,
            reply_hash=self.reply_hash,
            reply_s=self.reply_s,
            reply_height=self.reply_height,
        )


class ReviewEntryProof(StrictModel):
    index_value: HexBytes = Field(description="the raw index entry at the review's position")
    index_proof: StateProof
    value: HexBytes = Field(description="the raw review record")
    proof: StateProof


class ReviewsProofs(StrictModel):
    summary_value: HexBytes | None = Field(
        description="the raw summary record [count, rating_sum]; null when there is none"
    )
    summary: StateProof
    entries: list[ReviewEntryProof] = Field(description="one per review, in page order")


class GetReviewsResult(StrictModel):
    merchant: AddressBytes
    item: Hash32 | None
    count: int = Field(description="all reviews listed (every page)")
    rating_sum: int = Field(description="sum of their ratings: average = rating_sum / count")
    reviews: list[ReviewJson]
    next_cursor: int | None = Field(description="pass as cursor for the next page; null at end")
    height: int = Field(description="committed height the answer is read at")
    state_root: Hash32 = Field(description="committed state root at that height")
    proofs: ReviewsProofs | None = Field(None, description="with prove=true")

    @model_validator(mode="after")
    def _consecutive(self) -> GetReviewsResult:
        """Invariant: the page is consecutive positions below count."""
        positions = [review.position for review in self.reviews]
        if positions and (
            positions != list(range(positions[0], positions[0] + len(positions)))
            or positions[-1] >= self.count
        ):
            raise ValueError(f"positions {positions} are not consecutive below {self.count}")
        return self

    def check_proofs(self, cursor: int) -> None:
        """Raise InvalidProof unless the proofs show, under `state_root`, the count and rating
        sum, and exactly the reviews listed at positions `cursor`, `cursor` + 1, ...; and that
        `next_cursor` is where the listing goes on (null only at its end)."""
        proofs = self.proofs
        if proofs is None:
            raise InvalidProof("the answer carries no proofs")
        root, merchant, item = self.state_root, self.merchant, self.item
        verify_state_proof(
            root, summary_key(merchant, item), proofs.summary_value, proofs.summary.to_proof()
        )
        summary = [0, 0] if proofs.summary_value is None else _decoded(proofs.summary_value)
        if summary != [self.count, self.rating_sum]:
            raise InvalidProof(
                f"proven summary {summary} is not count {self.count}, sum {self.rating_sum}"
            )
        if len(proofs.entries) != len(self.reviews):
            raise InvalidProof(
                f"{len(proofs.entries)} entry proofs for {len(self.reviews)} reviews"
            )
        end = min(self.count, cursor + len(self.reviews))
        expected_next = end if end < self.count else None
        if len(self.reviews) != max(0, end - cursor) or self.next_cursor != expected_next:
            raise InvalidProof(
                f"a page of {len(self.reviews)} from {cursor} of {self.count} reviews with "
                f"next_cursor {self.next_cursor} is not a complete page"
            )
        pairs = zip(self.reviews, proofs.entries, strict=True)
        for position, (review, entry) in enumerate(pairs, cursor):
            if review.position != position:
                raise InvalidProof(f"review at position {review.position}, expected {position}")
            key = position_key(merchant, item, position)
            verify_state_proof(root, key, entry.index_value, entry.index_proof.to_proof())
            if _decoded(entry.index_value) != review.order_id:
                raise InvalidProof(f"index entry {position} names another order")
            verify_state_proof(
                root, review_key(review.order_id), entry.value, entry.proof.to_proof()
            )
            try:
                record = decode_review(entry.value)
            except StoreError as exc:
                raise InvalidProof(f"review at {position}: {exc}") from None
            if record != review.to_review():
                raise InvalidProof(f"review at position {position} is not the proven record")
            if record.merchant != merchant or (item is not None and record.item != item):
                raise InvalidProof(f"review at position {position} is of another listing")


def _decoded(raw: bytes) -> object:
    try:
        return decode(raw)
    except DecodeError as exc:
        raise InvalidProof(f"proven value is not canonical: {exc}") from None
