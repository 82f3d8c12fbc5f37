"""RPC method sec_getReviews: a merchant's reviews (all, or of one item) page by page, with
state proofs on request.

Like every method it reads only the committed view, without an `await` in between, so one answer
is one committed height: records through the reviews contract's queries (`contracts.reviews`)
over `ledger.store.CommittedState`, raw values, proofs and the root through
`state.get_committed`, `state.prove` and `state.committed_root`. The page size is capped by the
params model (`MAX_REVIEW_PAGE`), so an answer costs at most that many records and proofs.
What the proofs show and how a client checks them: `secnode.schema.reviews`.
"""

from __future__ import annotations

from typing import Final

from contracts.reviews import position_key, review_key, reviews_of, summary_key
from ledger.keys import parse_address
from ledger.store import CommittedState
from secnode.runtime.rpc.jsonrpc import Method
from secnode.runtime.rpc.view import NodeView
from secnode.schema.objects import StateProof
from secnode.schema.reviews import (
    GetReviewsParams,
    GetReviewsResult,
    ReviewEntryProof,
    ReviewJson,
    ReviewsProofs,
)

METHOD: Final = "sec_getReviews"


async def get_reviews(view: NodeView, params: GetReviewsParams) -> GetReviewsResult:
    """See the module docstring. Reads one committed height (no await below)."""
    merchant = parse_address(params.merchant)
    item = None if params.item is None else bytes.fromhex(params.item)
    state = view.state
    page = reviews_of(
        CommittedState(state, view.store), merchant, item, start=params.cursor, limit=params.limit
    )
    proofs = None
    if params.prove:
        entries = []
        for listed in page.reviews:
            index = position_key(merchant, item, listed.position)
            record = review_key(listed.review.order_id)
            entries.append(
                ReviewEntryProof(
                    index_value=state.get_committed(index) or b"",
                    index_proof=StateProof.of(state.prove(index)),
                    value=state.get_committed(record) or b"",
                    proof=StateProof.of(state.prove(record)),
                )
            )
        summary = summary_key(merchant, item)
        proofs = ReviewsProofs(
            summary_value=state.get_committed(summary),
            summary=StateProof.of(state.prove(summary)),
            entries=entries,
        )
    head = view.store.head_height()
    return GetReviewsResult(
        merchant=merchant,
        item=item,
        count=page.summary.count,
        rating_sum=page.summary.rating_sum,
        reviews=[ReviewJson.of(listed.position, listed.review) for listed in page.reviews],
        next_cursor=page.next_position,
        height=0 if head is None else head,
        state_root=state.committed_root(),
        proofs=proofs,
    )


SUMMARY: Final = "A merchant's reviews (all, or of one item), paginated, with optional proofs."
DESCRIPTION: Final = (
    "Reviews in the order they were posted, from position cursor; next_cursor is null when the "
    "listing is complete. count and rating_sum cover the whole listing (average = rating_sum / "
    "count). With item (SHA-256 of a SKU, or a group offer's item reference) only the reviews "
    "of that item. prove=true adds, under state_root, the state proof of the summary record "
    "(review:summary:<merchant>, or review:isummary:<merchant><item>; non-membership when there "
    "are no reviews) and for each review the proofs of its index entry and its record "
    "(review:<order id>); verify with GetReviewsResult.check_proofs (docs/protocol.md §19)."
)


def review_method_table(view: NodeView) -> dict[str, Method]:
    """sec_getReviews by name (merged into the node's method table)."""

    async def call(params: GetReviewsParams) -> GetReviewsResult:
        return await get_reviews(view, params)

    return {METHOD: Method(METHOD, SUMMARY, DESCRIPTION, GetReviewsParams, GetReviewsResult, call)}
