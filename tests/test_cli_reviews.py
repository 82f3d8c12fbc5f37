"""`sec tx review post|reply` and `sec query reviews` in-process (cli.main) against a real dev
node served over HTTP from a background thread."""

from __future__ import annotations

import hashlib
import json

import pytest

import cli
from contracts.reviews import get_review, item_ref
from ledger.keys import format_address
from secnode.network import devnet
from tests.clikit import cli_fields as _fields
from tests.clikit import run_cli_main as _run
from tests.rpc_node import ServedNode


def _tx(
    served: ServedNode, capsys: pytest.CaptureFixture[str], key: str, *verb: str, ok: bool = True
) -> list[str]:
    """Run `sec tx VERB...` signed by `key`, waiting for its receipt; the receipt lines. The
    command succeeds when the transaction does (`ok`), else exits 1."""
    status, out, err = _run(capsys, "tx", *verb, "--rpc", served.url, "--key", key, "--wait")
    assert status == (0 if ok else 1), out + err
    return _fields(out)["result"]


def _resolved_order(served: ServedNode, capsys: pytest.CaptureFixture[str]) -> str:
    """An order of merchant1 for buyer1 (lines tea, cup) taken to RESOLVED; its id."""
    status, out, err = _run(
        capsys,
        *("tx", "order", "create", "--buyer", "dev:buyer1", "--arbiter", "dev:arbiter"),
        *("--item", "tea:2:1000", "--item", "cup:1:250", "--shipping", "500"),
        *("--rpc", served.url, "--key", "dev:merchant1", "--wait"),
    )
    assert status == 0, out + err
    order_id = _fields(out)["order"][0]
    for key, verb in (
        ("dev:buyer1", ("order", "pay", "--order", order_id)),
        ("dev:buyer1", ("order", "dispute", "--order", order_id)),
        ("dev:arbiter", ("order", "resolve", "--order", order_id, "--refund", "100")),
    ):
        assert _tx(served, capsys, key, *verb) == ["ok"]
    return order_id


def test_review_post_reply_and_query_through_the_cli(
    served: ServedNode, capsys: pytest.CaptureFixture[str]
) -> None:
    order_id = _resolved_order(served, capsys)
    post = ("review", "post", "--order", order_id, "--rating", "4", "--item", "tea")
    assert _tx(served, capsys, "dev:buyer1", *post, "--text", "good tea") == ["ok"]
    reply = ("review", "reply", "--order", order_id, "--text", "thank you")
    assert _tx(served, capsys, "dev:merchant1", *reply) == ["ok"]
    stored = served.call(lambda: get_review(served.node.state, bytes.fromhex(order_id)))
    assert stored is not None
    assert stored.text_hash == hashlib.sha256(b"good tea").digest()
    assert stored.item == item_ref("tea") and stored.rating == 4

    merchant = "dev:merchant1"
    status, out, err = _run(
        capsys, "query", "reviews", merchant, "--item", "tea", "--prove", "--rpc", served.url
    )
    assert status == 0, out + err
    fields = _fields(out)
    assert fields["reviews"] == ["1"] and fields["average"] == ["4.00 of 1"]
    assert fields["#0"][0].startswith("4/5 by ") and order_id in fields["#0"][0]
    assert fields["reply"] == [hashlib.sha256(b"thank you").hexdigest()]
    assert fields["proofs"][0].startswith("verified under state root")

    status, out, err = _run(capsys, "query", "reviews", merchant, "--json", "--rpc", served.url)
    assert status == 0, out + err
    answer = json.loads(out)
    assert answer["count"] == 1 and answer["rating_sum"] == 4
    assert answer["reviews"][0]["order_id"] == order_id and "verified" not in answer

    # A second review and a second reply are refused by the chain; the record is unchanged.
    again = ("review", "post", "--order", order_id, "--rating", "1", "--text", "edited")
    refused = _tx(served, capsys, "dev:buyer1", *again, ok=False)
    assert refused[0].startswith("failed (already_reviewed): order " + order_id)
    refused = _tx(served, capsys, "dev:merchant1", *reply, ok=False)
    assert refused[0].startswith("failed (already_replied): the review of order " + order_id)
    after = served.call(lambda: get_review(served.node.state, bytes.fromhex(order_id)))
    assert after == stored


def test_a_merchant_without_reviews(served: ServedNode, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = _run(
        capsys, "query", "reviews", "dev:merchant2", "--prove", "--rpc", served.url
    )
    assert status == 0, out + err
    fields = _fields(out)
    assert fields["reviews"] == ["0"] and fields["average"] == ["none"]
    address = devnet.dev_account_key("merchant2").address
    assert fields["merchant"] == [format_address(address)]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("tx", "review", "post", "--order", "ab" * 32, "--rating", "4"), "--text or --text-hash"),
        (
            (
                *("tx", "review", "post", "--order", "ab" * 32, "--rating", "4", "--text", "x"),
                *("--item", "tea", "--item-ref", "ab" * 32),
            ),
            "at most one of --item or --item-ref",
        ),
        (("tx", "review", "reply", "--order", "abc", "--text", "x"), "--order must be 64 hex"),
        (("query", "reviews", "dev:merchant1", "--item-ref", "xyz"), "--item-ref must be 64 hex"),
    ],
)
def test_invalid_arguments_are_refused_before_any_call(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str
) -> None:
    key = ("--key", "dev:buyer1") if argv[0] == "tx" else ()
    status, _, err = _run(capsys, *argv, "--rpc", "http://127.0.0.1:9", *key)
    assert status != 0 and message in err, err


@pytest.mark.parametrize("rating", ["0", "6", "x"])
def test_invalid_rating_is_refused_by_the_parser(
    capsys: pytest.CaptureFixture[str], rating: str
) -> None:
    with pytest.raises(SystemExit):
        cli.main(["tx", "review", "post", "--order", "ab" * 32, "--rating", rating, "--text", "x"])
    assert "must be 1..5" in capsys.readouterr().err
