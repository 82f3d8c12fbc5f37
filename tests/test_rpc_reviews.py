"""sec_getReviews on a real in-process node over HTTP: pages by merchant and by item, the
summary, and proofs that a client checks (and that fail when the answer is tampered with)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from contracts.orders import OrderCreate, OrderDispute, OrderItem, OrderPay, OrderResolve
from contracts.reviews import ReviewPost, ReviewReply, item_ref
from ledger.errors import InvalidProof
from ledger.keys import format_address
from ledger.transactions import SignedTransaction
from secnode.network import devnet
from secnode.schema.reviews import GetReviewsResult
from tests.rpc_node import Served, serve, sign

TOTAL = 2 * 1_000 + 250 + 500


def _address(name: str) -> bytes:
    return devnet.dev_account_key(name).address


def _text(words: str) -> bytes:
    return hashlib.sha256(words.encode()).digest()


async def _commit(served: Served, *txs: SignedTransaction) -> None:
    for tx in txs:
        await served.result("sec_sendTransaction", {"tx": tx.encoded.hex()})
    result = served.node.commit_pending()
    assert all(receipt.ok for receipt in result.receipts), result.receipts


async def resolved_order(served: Served, buyer: str, nonces: dict[str, int]) -> bytes:
    """An order of merchant1 for `buyer` (lines tea, cup) taken to RESOLVED; its id."""

    def next_nonce(name: str) -> int:
        nonces[name] = nonces.get(name, -1) + 1
        return nonces[name]

    body = OrderCreate(
        _address(buyer),
        (OrderItem("tea", 2, 1_000), OrderItem("cup", 1, 250)),
        500,
        _address("arbiter"),
        None,
        None,
    )
    create = sign("merchant1", next_nonce("merchant1"), "order.create", body)
    await _commit(served, create)
    order_id = create.hash
    for name, tx_type, step in (
        (buyer, "order.pay", OrderPay(order_id, TOTAL)),
        (buyer, "order.dispute", OrderDispute(order_id, None)),
        ("arbiter", "order.resolve", OrderResolve(order_id, 100)),
    ):
        await _commit(served, sign(name, next_nonce(name), tx_type, step))
    return order_id


async def reviewed_shop(served: Served) -> list[bytes]:
    """Three resolved orders of merchant1, reviewed 5 (tea), 2 (cup), 4 (tea); the first replied."""
    nonces: dict[str, int] = {}
    order_ids = []
    for buyer, rating, sku in (("buyer1", 5, "tea"), ("buyer2", 2, "cup"), ("buyer1", 4, "tea")):
        order_id = await resolved_order(served, buyer, nonces)
        nonces[buyer] += 1
        body = ReviewPost(order_id, rating, _text(f"review {rating}"), item_ref(sku))
        await _commit(served, sign(buyer, nonces[buyer], "review.post", body))
        order_ids.append(order_id)
    nonces["merchant1"] += 1
    reply = ReviewReply(order_ids[0], _text("thank you"))
    await _commit(served, sign("merchant1", nonces["merchant1"], "review.reply", reply))
    return order_ids


async def _reviews(served: Served, **params: Any) -> GetReviewsResult:
    answer = await served.result("sec_getReviews", params)
    return GetReviewsResult.model_validate(answer)


@pytest.mark.asyncio
async def test_reviews_page_by_merchant_and_item_with_proofs() -> None:
    async with serve() as served:
        order_ids = await reviewed_shop(served)
        merchant = format_address(_address("merchant1"))
        first = await _reviews(served, merchant=merchant, limit=2, prove=True)
        assert (first.count, first.rating_sum, first.next_cursor) == (3, 11, 2)
        assert [r.order_id for r in first.reviews] == order_ids[:2]
        assert first.reviews[0].reply_hash == _text("thank you")
        assert first.reviews[0].author == _address("buyer1")
        assert first.state_root == served.node.head.state_root
        first.check_proofs(cursor=0)
        rest = await _reviews(served, merchant=merchant, cursor=2, limit=2, prove=True)
        assert [r.order_id for r in rest.reviews] == order_ids[2:] and rest.next_cursor is None
        rest.check_proofs(cursor=2)

        tea = item_ref("tea").hex()
        by_item = await _reviews(served, merchant=merchant, item=tea, prove=True)
        assert (by_item.count, by_item.rating_sum) == (2, 9)
        assert [r.order_id for r in by_item.reviews] == [order_ids[0], order_ids[2]]
        by_item.check_proofs(cursor=0)
        plain = await _reviews(served, merchant=merchant)
        assert plain.proofs is None and len(plain.reviews) == 3


@pytest.mark.asyncio
async def test_a_merchant_without_reviews_is_proven_empty() -> None:
    async with serve() as served:
        merchant = format_address(_address("merchant2"))
        empty = await _reviews(served, merchant=merchant, prove=True)
        assert (empty.count, empty.reviews, empty.next_cursor) == (0, [], None)
        assert empty.proofs is not None and empty.proofs.summary_value is None
        empty.check_proofs(cursor=0)


@pytest.mark.asyncio
async def test_tampered_answers_fail_the_proof_check() -> None:
    async with serve() as served:
        await reviewed_shop(served)
        merchant = format_address(_address("merchant1"))
        honest = await _reviews(served, merchant=merchant, prove=True)
        honest.check_proofs(cursor=0)
        higher = honest.reviews[1].model_copy(update={"rating": 5})
        tampered: list[GetReviewsResult] = [
            honest.model_copy(update={"rating_sum": honest.rating_sum + 3}),
            honest.model_copy(update={"reviews": [honest.reviews[0], higher, honest.reviews[2]]}),
            honest.model_copy(update={"count": 2, "reviews": honest.reviews[:2]}),
        ]
        for answer in tampered:
            with pytest.raises(InvalidProof):
                answer.check_proofs(cursor=0)
        # A page that silently drops the last review (and claims the listing is complete).
        assert honest.proofs is not None
        short = honest.model_copy(
            update={
                "reviews": honest.reviews[:2],
                "proofs": honest.proofs.model_copy(update={"entries": honest.proofs.entries[:2]}),
            }
        )
        with pytest.raises(InvalidProof, match="not a complete page"):
            short.check_proofs(cursor=0)


@pytest.mark.asyncio
async def test_get_reviews_rejects_bad_params() -> None:
    async with serve() as served:
        merchant = format_address(_address("merchant1"))
        for params in (
            {"merchant": "sec1nothing"},
            {"merchant": merchant, "limit": 101},
            {"merchant": merchant, "limit": 0},
            {"merchant": merchant, "cursor": -1},
            {"merchant": merchant, "item": "ab"},
            {"merchant": merchant, "surprise": 1},
        ):
            error = await served.error("sec_getReviews", params)
            assert error["code"] == -32602, (params, error)
