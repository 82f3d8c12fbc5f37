"""`sec tx order ...`, `sec tx referral bind` and `sec query order|orders` in-process (cli.main)
against a real dev node served over HTTP from a background thread."""

from __future__ import annotations

import hashlib
import json

import pytest

import cli
from contracts.orders import get_order
from contracts.referral import get_inviter
from ledger.accounts import get_account
from secnode.network import devnet
from tests.clikit import cli_fields as _fields
from tests.clikit import run_cli_main as _run
from tests.rpc_node import ServedNode

CREATE = ("order", "create", "--buyer", "dev:buyer1", "--arbiter", "dev:arbiter")


def _error(err: str) -> str:
    lines = [line for line in err.splitlines() if not line.startswith("sec: note:")]
    assert len(lines) == 1 and lines[0].startswith("sec: error: "), err
    return lines[0]


def _tx(
    served: ServedNode, capsys: pytest.CaptureFixture[str], key: str, *verb: str
) -> dict[str, list[str]]:
    status, out, err = _run(capsys, "tx", *verb, "--rpc", served.url, "--key", key, "--wait")
    assert status == 0, out + err
    fields = _fields(out)
    assert fields["result"] == ["ok"], out
    return fields


def _balance(served: ServedNode, name: str) -> int:
    address = devnet.dev_account_key(name).address
    account = served.call(lambda: get_account(served.node.state, address))
    assert account is not None
    return account.balance


def _create(served: ServedNode, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    fields = _tx(
        served,
        capsys,
        "dev:merchant1",
        *("order", "create", "--buyer", "dev:buyer1", "--arbiter", "dev:arbiter"),
        *("--item", "tea:2:1000", "--item", "cup:with:colons:1:250", "--shipping", "500"),
        *extra,
    )
    assert fields["order"] == fields["hash"]
    return fields["order"][0]


def test_order_flow_through_the_cli(served: ServedNode, capsys: pytest.CaptureFixture[str]) -> None:
    buyer = _balance(served, "buyer1")
    order_id = _create(served, capsys, "--sharer", "dev:sharer1", "--commission-bps", "1000")
    _tx(served, capsys, "dev:buyer1", "order", "pay", "--order", order_id)  # amount from node
    assert _balance(served, "buyer1") == buyer - 2_750
    _tx(served, capsys, "dev:merchant1", "order", "ship", "--order", order_id, "--shipment", "SF1")
    _tx(served, capsys, "dev:buyer1", "order", "confirm", "--order", order_id)
    order = served.call(lambda: get_order(served.node.state, bytes.fromhex(order_id)))
    assert order is not None and order.state == "RECEIVED"
    assert order.shipment_hash == hashlib.sha256(b"SF1").digest()

    status, out, err = _run(capsys, "query", "order", order_id, "--prove", "--rpc", served.url)
    assert status == 0, err
    fields = _fields(out)
    assert fields["state"] == ["RECEIVED"] and fields["total"] == ["2750 fen"]
    assert fields["line 0"] == ["tea x 2 @ 1000 fen (returnable)"]
    assert fields["line 1"] == ["cup:with:colons x 1 @ 250 fen (returnable)"]
    assert fields["sharer"][0].endswith("(1000 bps)")
    assert fields["proof"] == ["membership verified under the state root"]

    _tx(served, capsys, "dev:buyer1", "order", "dispute", "--order", order_id, "--reason", "bad")
    fields = _tx(
        served, capsys, "dev:arbiter", "order", "resolve", "--order", order_id, "--refund", "750"
    )
    payouts = [json.loads(e) for e in fields["event"] if "order.payout" in e]
    assert {p["role"]: p["amount"] for p in payouts} == {
        "buyer": 750,
        "merchant": 2_000 - 163,
        "sharer": 2_250 * 1_000 * 2_000 // (10_000 * 2_750),  # 163
    }
    status, out, _ = _run(capsys, "query", "order", order_id, "--rpc", served.url, "--json")
    answer = json.loads(out)
    assert answer["order"]["state"] == "RESOLVED"
    assert answer["order"]["settlement"]["refunded"] == 750


def test_leader_pickup_and_return_through_the_cli(
    served: ServedNode, capsys: pytest.CaptureFixture[str]
) -> None:
    _tx(served, capsys, "dev:admin", "roles", "--address", "dev:sharer2", "--grant", "leader")
    before = {name: _balance(served, name) for name in ("buyer1", "merchant1", "sharer2")}
    order_id = _create(
        served,
        capsys,
        *("--item-not-returnable", "cake:1:600", "--leader", "dev:sharer2"),
        *("--leader-commission-bps", "500"),
    )
    status, out, err = _run(
        capsys,
        "tx",
        "order",
        "pay",
        "--order",
        order_id,
        "--rpc",
        served.url,
        "--key",
        "dev:buyer1",
        "--wait",
    )
    assert status == 0 and _fields(out)["result"] == ["ok"], out + err
    code = next(line.split()[2] for line in err.splitlines() if line.startswith("pickup code "))
    _tx(served, capsys, "dev:merchant1", "order", "ship", "--order", order_id, "--shipment", "S")
    _tx(served, capsys, "dev:sharer2", "order", "arrive", "--order", order_id)
    status, out, err = _run(
        capsys,
        "tx",
        "order",
        "pickup",
        "--order",
        order_id,
        "--code",
        "00" * 16,
        "--rpc",
        served.url,
        "--key",
        "dev:sharer2",
        "--wait",
    )
    assert "wrong_pickup_code" in out + err
    _tx(served, capsys, "dev:sharer2", "order", "pickup", "--order", order_id, "--code", code)
    _tx(served, capsys, "dev:buyer1", "order", "return", "--order", order_id, "--line", "1")
    _tx(
        served,
        capsys,
        "dev:buyer1",
        "order",
        "return-ship",
        "--order",
        order_id,
        "--tracking",
        "YT1",
    )
    status, out, _ = _run(capsys, "query", "order", order_id, "--rpc", served.url)
    fields = _fields(out)
    assert fields["state"] == ["RETURN_SHIPPED"] and fields["returned lines"] == ["1"]
    assert fields["leader"][0].endswith("(500 bps)")
    assert fields["line 2"] == ["cake x 1 @ 600 fen (not returnable)"]
    assert fields["pickup hash"] == [hashlib.sha256(bytes.fromhex(code)).hexdigest()]
    assert fields["return shipment"] == [hashlib.sha256(b"YT1").hexdigest()]
    _tx(served, capsys, "dev:merchant1", "order", "return-received", "--order", order_id)
    # goods 2000 + 250 + 600 = 2850, shipping 500; the cup (250) comes back; the leader gets
    # 5 % of the kept 2600 = 130
    assert _balance(served, "buyer1") == before["buyer1"] - 3_350 + 250
    assert _balance(served, "sharer2") == before["sharer2"] + 130
    assert _balance(served, "merchant1") == before["merchant1"] + 3_100 - 130
    status, out, _ = _run(capsys, "query", "order", order_id, "--rpc", served.url, "--json")
    answer = json.loads(out)["order"]
    assert (answer["state"], answer["returned"]) == ("COMPLETED", [1])
    assert answer["settlement"] == {"refunded": 250, "merchant": 2_970, "sharer": 0, "leader": 130}
    assert [item["returnable"] for item in answer["items"]] == [True, True, False]


def test_cancel_and_query_orders_with_pages(
    served: ServedNode, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = sorted(_create(served, capsys) for _ in range(3))
    _tx(served, capsys, "dev:buyer1", "order", "cancel", "--order", ids[1])
    status, out, _ = _run(capsys, "query", "orders", "--party", "dev:buyer1", "--rpc", served.url)
    assert status == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == ids
    assert [line.split()[1] for line in lines] == ["CREATED", "CANCELLED", "CREATED"]
    assert all(line.split()[2] == "buyer" for line in lines)
    status, out, _ = _run(
        capsys, "query", "orders", "--party", "dev:merchant1", "--limit", "2", "--rpc", served.url
    )
    assert out.splitlines()[-1] == f"more: --cursor {ids[1]}"
    status, out, _ = _run(
        capsys,
        *("query", "orders", "--party", "dev:merchant1", "--limit", "1", "--all", "--json"),
        *("--state", "CREATED", "--rpc", served.url),
    )
    listing = json.loads(out)
    assert [e["order"]["order_id"] for e in listing["orders"]] == [ids[0], ids[2]]
    assert listing["next_cursor"] is None


def test_referral_bind(served: ServedNode, capsys: pytest.CaptureFixture[str]) -> None:
    _tx(served, capsys, "dev:sharer1", "referral", "bind", "--inviter", "dev:sharer2")
    inviter = served.call(
        lambda: get_inviter(served.node.state, devnet.dev_account_key("sharer1").address)
    )
    assert inviter == devnet.dev_account_key("sharer2").address
    status, out, _ = _run(
        capsys,
        *("tx", "referral", "bind", "--inviter", "dev:sharer1", "--key", "dev:sharer2"),
        *("--rpc", served.url, "--wait"),
    )
    assert status == 1 and "failed (referral_cycle)" in out


def test_failed_order_transaction_exits_1(
    served: ServedNode, capsys: pytest.CaptureFixture[str]
) -> None:
    order_id = _create(served, capsys)
    status, out, _ = _run(
        capsys,
        *("tx", "order", "ship", "--order", order_id, "--shipment", "x"),
        *("--key", "dev:buyer1", "--rpc", served.url, "--wait"),
    )
    assert status == 1 and "failed (wrong_actor)" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            (*CREATE, "--item", "tea:1:1", "--sharer", "dev:sharer1"),
            "--sharer and --commission-bps go together",
        ),
        (("order", "pay", "--order", "abc"), "--order must be 64 hex characters"),
        (
            (
                "order",
                "create",
                "--buyer",
                "dev:nobody",
                "--arbiter",
                "dev:arbiter",
                "--item",
                "t:1:1",
            ),
            "unknown development account",
        ),
    ],
)
def test_bad_order_input_is_one_line(
    served: ServedNode, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str
) -> None:
    status, _, err = _run(capsys, "tx", *argv, "--key", "dev:merchant1", "--rpc", served.url)
    assert status == 1 and message in _error(err)


def test_unknown_order_query_is_one_line(
    served: ServedNode, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = _run(capsys, "query", "order", "ab" * 32, "--rpc", served.url)
    assert status == 1 and "not found" in _error(err)
    status, out, _ = _run(capsys, "query", "order", "ab" * 32, "--prove", "--rpc", served.url)
    assert status == 0 and _fields(out)["exists"] == ["no"]
    assert _fields(out)["proof"] == ["non-membership verified under the state root"]


@pytest.mark.parametrize("item", ["tea", "tea:x:1", ":1:1", "tea:0:1", "tea:1:-5"])
def test_bad_item_is_a_usage_error(
    served: ServedNode, capsys: pytest.CaptureFixture[str], item: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["tx", *CREATE, "--item", item, "--key", "dev:merchant1", "--rpc", served.url])
    assert exc.value.code == 2
    assert "argument --item:" in capsys.readouterr().err
