"""`sec tx` and `sec query` in-process (cli.main) against a real node served over HTTP from a
background thread: every verb, the queries with their proof checks, and one-line errors."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import cli
from ledger.accounts import get_account
from ledger.keys import PrivateKey, format_address
from secnode.cli.query import _view_text
from secnode.keyfile import write_key_file
from secnode.network import devnet
from secnode.schema import models as m
from tests.foreign_node import ForeignNode
from tests.rpc_node import RpcTestNode, ServedNode


@pytest.fixture
def manual() -> Iterator[ServedNode]:
    """A node that commits only when the test says so."""
    node = ServedNode(auto_commit=False).start()
    yield node
    node.stop()


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def _fields(out: str) -> dict[str, str]:
    rows = [line.split(None, 1) for line in out.splitlines() if line.strip()]
    return {row[0]: row[1] if len(row) > 1 else "" for row in rows}


def _one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if not line.startswith("sec: note:")]
    assert len(lines) == 1 and lines[0].startswith("sec: error: "), err
    return lines[0]


def _balance(served: ServedNode, name: str) -> int:
    address = devnet.dev_account_key(name).address
    account = served.call(lambda: get_account(served.node.state, address))
    assert account is not None
    return account.balance


def _block_tx_hashes(served: ServedNode, height: int) -> list[str]:
    block = served.call(lambda: served.node.store.get_block(height))
    assert block is not None
    return [tx.hash.hex() for tx in block.transactions]


def test_tx_transfer_wait_commits_and_says_dev_keys_are_public(
    served: ServedNode, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _balance(served, "buyer2")
    status, out, err = _run(
        capsys,
        *("tx", "transfer", "--rpc", served.url, "--key", "dev:buyer1"),
        *("--to", "dev:buyer2", "--amount", "250", "--memo", "tea", "--wait"),
    )
    assert status == 0, err
    fields = _fields(out)
    assert fields["status"] == "committed" and fields["result"] == "ok"
    assert fields["type"] == "credit.transfer" and fields["height"] == "1"
    assert "dev:buyer1" in err and "PUBLIC" in err and len(err.splitlines()) == 1
    assert _balance(served, "buyer2") == before + 250


@pytest.mark.parametrize(
    ("key", "verb"),
    [
        ("dev:admin", ("account-register", "--public-key", "ab" * 32, "--roles", "merchant")),
        ("dev:admin", ("roles", "--address", "dev:buyer3", "--grant", "arbiter")),
        ("dev:issuer", ("mint", "--to", "dev:buyer3", "--amount", "1000")),
        ("dev:issuer", ("burn", "--amount", "10")),
        ("dev:admin", ("param-set", "--name", "ship_deadline_s", "--value", "900")),
        ("dev:admin", ("validator-update", "--add", "dev:node4", "--remove", "dev:node3")),
    ],
)
def test_tx_verbs_commit(
    served: ServedNode, capsys: pytest.CaptureFixture[str], key: str, verb: tuple[str, ...]
) -> None:
    status, out, err = _run(capsys, "tx", *verb, "--rpc", served.url, "--key", key, "--wait")
    assert status == 0, out + err
    assert _fields(out)["result"] == "ok"


def test_tx_json_output_and_failed_receipt_exit_status(
    served: ServedNode, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = _run(
        capsys,
        *("tx", "transfer", "--rpc", served.url, "--key", "dev:sharer1", "--json"),
        *("--to", "dev:buyer1", "--amount", "99999999", "--wait"),
    )
    result = json.loads(out)
    assert status == 1 and result["status"] == "committed"
    assert result["receipt"]["ok"] is False and result["receipt"]["code"] == "insufficient_balance"
    assert result["sender"] == format_address(devnet.dev_account_key("sharer1").address)


def test_tx_with_key_file_end_to_end(
    served: ServedNode, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    key = PrivateKey.from_label("test:shop")
    path = tmp_path / "shop.json"
    write_key_file(path, key)
    address = format_address(key.address)
    common = ("--rpc", served.url, "--wait")
    register = ("--public-key", key.public_key.hex(), "--name", "shop")
    assert _run(capsys, "tx", "account-register", "--key", "dev:admin", *register, *common)[0] == 0
    mint = ("--to", address, "--amount", "500")
    assert _run(capsys, "tx", "mint", "--key", "dev:issuer", *mint, *common)[0] == 0
    status, out, err = _run(
        capsys, "tx", "transfer", "--key", str(path), "--to", "dev:buyer1", "--amount", "5", *common
    )
    assert status == 0 and _fields(out)["sender"] == address and "note" not in err
    status, out, _ = _run(capsys, "query", "account", address, "--rpc", served.url)
    fields = _fields(out)
    assert fields["balance"] == "495 fen" and fields["name"] == "shop" and fields["nonce"] == "1"


def test_tx_takes_the_next_nonce_while_earlier_ones_are_pending(
    manual: ServedNode, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("--rpc", manual.url, "--key", "dev:buyer1", "--to", "dev:buyer2", "--amount")
    assert _fields(_run(capsys, "tx", "transfer", *args, "1")[1])["nonce"] == "0"
    assert _fields(_run(capsys, "tx", "transfer", *args, "2")[1])["nonce"] == "1"
    block = manual.call(manual.node.commit_pending)
    assert [tx.nonce for tx in block.block.transactions] == [0, 1]


def test_query_status_block_tx_account(
    served: ServedNode, capsys: pytest.CaptureFixture[str]
) -> None:
    rpc = ("--rpc", served.url)
    _run(
        capsys, "tx", "transfer", *rpc, "--key", "dev:buyer1", "--to", "dev:buyer2", "--amount", "7"
    )
    [tx_hash] = _block_tx_hashes(served, 1)
    status, out, _ = _run(capsys, "query", "status", *rpc)
    assert status == 0 and _fields(out)["chain"] == devnet.DEV_CHAIN_ID
    status, out, _ = _run(capsys, "query", "block", *rpc)
    assert status == 0 and _fields(out)["height"] == "1" and _fields(out)["tx"] == tx_hash
    status, out, _ = _run(capsys, "query", "block", "0", *rpc, "--json")
    assert status == 0 and json.loads(out)["header"]["height"] == 0
    status, out, _ = _run(capsys, "query", "block", "1", "--full", *rpc)
    assert status == 0 and "credit.transfer" in out and ": ok" in out
    status, out, _ = _run(capsys, "query", "tx", tx_hash, *rpc)
    fields = _fields(out)
    assert status == 0 and fields["status"] == "committed" and fields["body.amount"] == "7"
    assert fields["inclusion"].startswith("verified under tx root")
    status, out, _ = _run(capsys, "query", "tx", tx_hash.upper(), *rpc, "--json")
    assert status == 0 and json.loads(out)["verified"] is True


def test_query_account_with_membership_and_non_membership_proofs(
    served: ServedNode, capsys: pytest.CaptureFixture[str]
) -> None:
    rpc = ("--rpc", served.url)
    status, out, _ = _run(capsys, "query", "account", "dev:buyer1", "--prove", *rpc)
    fields = _fields(out)
    assert status == 0 and fields["name"] == "buyer1" and fields["balance"] == "100000000 fen"
    assert fields["proof"] == "membership verified under the state root"
    stranger = format_address(PrivateKey.from_label("nobody").address)
    status, out, _ = _run(capsys, "query", "account", stranger, "--prove", *rpc)
    fields = _fields(out)
    assert status == 0 and fields["exists"] == "no"
    assert fields["proof"] == "non-membership verified under the state root"
    status, out, _ = _run(capsys, "query", "account", stranger, "--prove", "--json", *rpc)
    assert json.loads(out)["verified"] is True and json.loads(out)["exists"] is False
    status, _, err = _run(capsys, "query", "account", stranger, *rpc)
    assert status == 1 and "not found" in _one_line_error(err)


def test_invalid_address_typo_is_one_line(
    served: ServedNode, capsys: pytest.CaptureFixture[str]
) -> None:
    text = format_address(devnet.dev_account_key("buyer2").address)
    typo = text[:10] + ("q" if text[10] != "q" else "p") + text[11:]
    status, out, err = _run(
        capsys,
        *("tx", "transfer", "--rpc", served.url, "--key", "dev:buyer1"),
        *("--to", typo, "--amount", "1"),
    )
    assert status == 1 and out == ""
    assert "--to:" in _one_line_error(err) and "bad checksum" in err
    status, _, err = _run(capsys, "query", "account", typo, "--rpc", served.url)
    assert status == 1 and "bad checksum" in _one_line_error(err)


def test_invalid_connection_refused_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    status, _, err = _run(capsys, "query", "status", "--rpc", f"http://127.0.0.1:{port}")
    assert status == 1 and "connection refused" in _one_line_error(err)


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (("query", "tx", "xyz"), "HASH must be 64 hex characters"),
        (("query", "block", "nothex"), "a height or a block hash"),
        (("query", "block", "99"), "block 99 not found"),
        (("query", "account", "dev:nobody"), "unknown development account 'nobody'"),
        (("tx", "burn", "--key", "/nonexistent/key.json", "--amount", "1"), "does not exist"),
        (
            ("tx", "mint", "--key", "dev:issuer", "--to", "dev:x", "--amount", "1"),
            "unknown development account 'x'",
        ),
        (
            ("tx", "roles", "--key", "dev:admin", "--address", "dev:buyer1", "--grant", "king"),
            "king",
        ),
        (("tx", "validator-update", "--key", "dev:admin"), "needs --add and/or --remove"),
        (("tx", "account-register", "--key", "dev:admin", "--public-key", "abc"), "64 hex"),
        (
            (
                "tx",
                "transfer",
                "--key",
                "dev:buyer1",
                "--to",
                "dev:buyer2",
                "--amount",
                "1",
                "--memo",
                "x" * 200,
            ),
            "memo",
        ),
    ],
)
def test_invalid_inputs_are_one_line(
    served: ServedNode, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], fragment: str
) -> None:
    status, out, err = _run(capsys, *argv, "--rpc", served.url)
    assert status == 1 and out == ""
    assert fragment in _one_line_error(err)


def test_invalid_unregistered_sender(
    served: ServedNode, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "k.json"
    write_key_file(path, PrivateKey.from_label("test:unregistered"))
    status, _, err = _run(
        capsys,
        *("tx", "transfer", "--rpc", served.url, "--key", str(path)),
        *("--to", "dev:buyer1", "--amount", "1"),
    )
    assert status == 1 and "is not registered on this chain" in _one_line_error(err)


def test_invalid_wait_timeout(manual: ServedNode, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = _run(
        capsys,
        *("tx", "transfer", "--rpc", manual.url, "--key", "dev:buyer1", "--to", "dev:buyer2"),
        *("--amount", "1", "--wait", "--timeout", "0.2"),
    )
    assert status == 1 and "may still commit" in _one_line_error(err)


def test_invalid_rpc_url_that_is_not_jsonrpc(
    served: ServedNode, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = _run(capsys, "query", "status", "--rpc", served.url + "/health")
    assert status == 1 and "answered HTTP 405" in _one_line_error(err)
    status, _, err = _run(capsys, "query", "status", "--rpc", "ftp://example.org")
    assert status == 1 and "http:// or https://" in _one_line_error(err)


def test_invalid_answer_of_the_wrong_shape_is_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with ForeignNode({}) as node:
        status, out, err = _run(capsys, "query", "status", "--rpc", node.url)
    line = _one_line_error(err)
    assert status == 1 and out == ""
    assert f"node {node.url} answered sec_status with a malformed result: " in line
    assert "chain_id: Field required" in line


def _genesis_answers() -> dict[str, dict[str, Any]]:
    """Well-formed answers about the dev chain's genesis block, as JSON."""
    node = RpcTestNode()
    block = node.store.get_block(0)
    assert block is not None
    status = m.StatusResult(
        chain_id=node.genesis.chain_id,
        genesis_hash=node.genesis.document_hash(),
        node_name="node0",
        node_address=devnet.validator_key("node0").address,
        height=0,
        head_hash=block.hash(),
        head_time_ms=block.header.timestamp_ms,
        view=0,
        view_changes=0,
        is_validator=True,
        peers=0,
        syncing=False,
        mempool_size=0,
    )
    return {
        "sec_status": status.model_dump(mode="json"),
        "sec_getBlock": m.BlockResult.of(block).model_dump(mode="json"),
    }


def _broken(answer: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of `answer` with the field at dotted `path` set to `value`."""
    broken: dict[str, Any] = json.loads(json.dumps(answer))
    *parents, name = path.split(".")
    target = broken
    for parent in parents:
        target = target[parent]
    target[name] = value
    return broken


@pytest.mark.parametrize(
    ("method", "argv", "path", "value", "problem"),
    [
        ("sec_getBlock", ("query", "block", "0"), "header.height", "0", "header.height: Input"),
        (
            "sec_getBlock",
            ("query", "block"),
            "header.state_root",
            "zz",
            "header.state_root: not hex",
        ),
        ("sec_getBlock", ("query", "block"), "tx_hashes", ["ab"], "tx_hashes.0: a hash is 32"),
        ("sec_status", ("query", "status"), "node_address", "sec1nope", "node_address: "),
        ("sec_status", ("query", "status", "--json"), "height", None, "height: Input should"),
    ],
)
def test_invalid_malformed_answer_names_the_node_method_and_field(
    capsys: pytest.CaptureFixture[str],
    method: str,
    argv: tuple[str, ...],
    path: str,
    value: Any,
    problem: str,
) -> None:
    answers = _genesis_answers()
    answers[method] = _broken(answers[method], path, value)
    with ForeignNode(answers) as node:
        status, out, err = _run(capsys, *argv, "--rpc", node.url)
    line = _one_line_error(err)
    assert status == 1 and out == ""
    assert f"node {node.url} answered {method} with a malformed result: " in line
    assert problem in line


def test_well_formed_foreign_answers_are_read(capsys: pytest.CaptureFixture[str]) -> None:
    """The control for the test above: the unbroken answers print as a node's would."""
    answers = _genesis_answers()
    with ForeignNode(answers) as node:
        status, out, _ = _run(capsys, "query", "block", "--rpc", node.url, "--json")
    assert status == 0 and json.loads(out) == answers["sec_getBlock"]


def test_query_status_says_when_the_node_is_outside_the_group_view() -> None:
    assert _view_text(3, True, 3) == "3"
    text = _view_text(5, False, 3)
    assert text.startswith("5") and "NOT in the group's view 3" in text


def test_follow_pages_stops_at_the_end_and_refuses_an_endless_listing() -> None:
    """`--all` follows next cursors to the end; a node whose listing never ends costs at most
    MAX_PAGES calls and is one clear error."""
    from secnode.cli.common import MAX_PAGES, CommandError, follow_pages

    asked: list[int | None] = []

    def three(cursor: int | None) -> int | None:
        asked.append(cursor)
        start = cursor or 0
        return start + 1 if start < 2 else None

    assert follow_pages(three, None, lambda nxt: nxt, follow=True) == [1, 2, None]
    assert asked == [None, 1, 2]
    assert follow_pages(three, None, lambda nxt: nxt, follow=False) == [1]
    calls = 0

    def endless(cursor: int | None) -> int:
        nonlocal calls
        calls += 1
        return (cursor or 0) + 1

    with pytest.raises(CommandError, match=f"did not end after {MAX_PAGES} pages"):
        follow_pages(endless, None, lambda nxt: nxt, follow=True)
    assert calls == MAX_PAGES
