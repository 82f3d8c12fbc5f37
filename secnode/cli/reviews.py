"""`sec tx review post|reply` and `sec query reviews MERCHANT [--item SKU]`.

The text of a review or reply never leaves this machine: `--text` is hashed here (SHA-256 of its
UTF-8 bytes) and only the hash goes on-chain; `--text-hash` gives the hash of a text kept
elsewhere. An item is named by its SKU (`--item`, hashed here: `contracts.reviews.item_ref`) or by
its reference (`--item-ref`, e.g. a group offer's item hash). `sec query reviews --prove` asks for
state proofs and checks them (`GetReviewsResult.check_proofs`) under the state root the node
names before printing anything.
"""

from __future__ import annotations

import argparse
import hashlib
from typing import Any

from contracts.reviews import MAX_RATING, MIN_RATING, ReviewPost, ReviewReply, item_ref
from ledger.keys import format_address
from secnode.cli.common import (
    ADDRESS_HELP,
    CommandError,
    connect,
    follow_pages,
    hash_hex,
    print_fields,
    print_json,
    resolve_address,
)
from secnode.cli.submit import submit
from secnode.schema.reviews import MAX_REVIEW_PAGE, GetReviewsResult, ReviewJson


def _rating(text: str) -> int:
    if text not in {str(n) for n in range(MIN_RATING, MAX_RATING + 1)}:
        raise argparse.ArgumentTypeError(f"must be {MIN_RATING}..{MAX_RATING}, got {text!r}")
    return int(text)


def _page_size(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_REVIEW_PAGE:
        raise argparse.ArgumentTypeError(f"must be 1..{MAX_REVIEW_PAGE}, got {text!r}")
    return int(text)


def _text_hash(args: argparse.Namespace) -> bytes:
    if (args.text is None) == (args.text_hash is None):
        raise CommandError("give exactly one of --text or --text-hash")
    if args.text is not None:
        return hashlib.sha256(args.text.encode()).digest()
    return bytes.fromhex(hash_hex(args.text_hash, "--text-hash"))


def _item(args: argparse.Namespace) -> bytes | None:
    if args.item is not None and args.item_ref is not None:
        raise CommandError("give at most one of --item or --item-ref")
    if args.item is not None:
        return item_ref(args.item)
    if args.item_ref is not None:
        return bytes.fromhex(hash_hex(args.item_ref, "--item-ref"))
    return None


def _order(args: argparse.Namespace) -> bytes:
    return bytes.fromhex(hash_hex(args.order, "--order"))


# --- sec tx review post|reply, sec query reviews ------------------------------------------------


def _tx_post(args: argparse.Namespace) -> int:
    body = ReviewPost(_order(args), args.rating, _text_hash(args), _item(args))
    return submit(args, body)


def _tx_reply(args: argparse.Namespace) -> int:
    return submit(args, ReviewReply(_order(args), _text_hash(args)))


def _query_reviews(args: argparse.Namespace) -> int:
    merchant = resolve_address(args.merchant, "MERCHANT")
    item = _item(args)
    client = connect(args)

    def fetch(cursor: int | None) -> GetReviewsResult:
        start = 0 if cursor is None else cursor
        params: dict[str, Any] = {
            "merchant": format_address(merchant),
            "cursor": start,
            "limit": args.limit,
            "prove": args.prove,
        }
        if item is not None:
            params["item"] = item.hex()
        answer = client.call_as("sec_getReviews", params, GetReviewsResult)
        if answer.merchant != merchant or answer.item != item:
            raise CommandError("the node answered for another merchant or item")
        if args.prove:
            answer.check_proofs(start)
        return answer

    pages = follow_pages(fetch, args.cursor, lambda page: page.next_cursor, follow=args.all)
    entries = [entry for page in pages for entry in page.reviews]
    answer = pages[-1]
    verified = {"verified": True} if args.prove else {}
    if args.json:
        print_json({**answer.model_dump(mode="json"), **verified, "reviews": _json(entries)})
        return 0
    average = (
        f"{answer.rating_sum / answer.count:.2f} of {answer.count}" if answer.count else "none"
    )
    rows: list[tuple[str, Any]] = [
        ("merchant", format_address(merchant)),
        ("item", "all" if item is None else item.hex()),
        ("reviews", answer.count),
        ("average", average),
    ]
    for entry in entries:
        line = f"{entry.rating}/5 by {format_address(entry.author)} order {entry.order_id.hex()}"
        rows.append((f"#{entry.position}", line))
        rows.append(("text", entry.text_hash.hex()))
        if entry.reply_hash is not None:
            rows.append(("reply", entry.reply_hash.hex()))
    if answer.next_cursor is not None:
        rows.append(("next", f"--cursor {answer.next_cursor}"))
    if args.prove:
        rows.append(("proofs", f"verified under state root {answer.state_root.hex()}"))
    print_fields(rows)
    return 0


def _json(entries: list[ReviewJson]) -> list[Any]:
    return [entry.model_dump(mode="json") for entry in entries]


# --- parsers -------------------------------------------------------------------------------------


def _add_text(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--order", required=True, metavar="ID", help="order id (hex)")
    parser.add_argument("--text", help="the text: hashed here, only the hash is sent")
    parser.add_argument("--text-hash", metavar="HEX", help="SHA-256 of a text kept elsewhere")


def _add_item(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--item", metavar="SKU", help="an order line's SKU (hashed here)")
    parser.add_argument("--item-ref", metavar="HEX", help="an item reference (32 bytes, hex)")


def add_commands(
    verbs: argparse._SubParsersAction[argparse.ArgumentParser],
    what: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """Add `tx review post|reply` and `query reviews`."""
    review = verbs.add_parser("review", help="reviews of completed orders")
    actions = review.add_subparsers(dest="review_action", metavar="ACTION", required=True)
    post = actions.add_parser(
        "post", help="buyer of a completed order: rate it 1..5 (once)", parents=parents
    )
    _add_text(post)
    post.add_argument("--rating", required=True, type=_rating, metavar="1..5")
    _add_item(post)
    post.set_defaults(handler=_tx_post)
    reply = actions.add_parser("reply", help="merchant: answer a review (once)", parents=parents)
    _add_text(reply)
    reply.set_defaults(handler=_tx_reply)
    listing = what.add_parser(
        "reviews", help="a merchant's reviews (proofs verified with --prove)", parents=[common]
    )
    listing.add_argument("merchant", metavar="MERCHANT", help=ADDRESS_HELP)
    _add_item(listing)
    listing.add_argument("--cursor", type=int, default=0, metavar="N")
    listing.add_argument("--limit", type=_page_size, default=20, metavar="N", help="per page")
    listing.add_argument("--all", action="store_true", help="follow next_cursor to the end")
    listing.add_argument("--prove", action="store_true", help="fetch and verify state proofs")
    listing.set_defaults(handler=_query_reviews)
