"""`sec tx group open|join|cancel` and `sec query group|groups` in-process (cli.main) against a
real dev node served over HTTP from a background thread."""

from __future__ import annotations

import hashlib
import json

import pytest

import cli
from contracts.groups import get_group
from tests.clikit import cli_fields as _fields
from tests.clikit import run_cli_main as _run
from tests.rpc_node import ServedNode


def _tx(
    served: ServedNode, capsys: pytest.CaptureFixture[str], key: str, *verb: str
) -> tuple[int, dict[str, list[str]]]:
    status, out, err = _run(capsys, "tx", *verb, "--rpc", served.url, "--key", key, "--wait")
    errors = [line for line in err.splitlines() if not line.startswith("sec: note:")]
    assert not errors or status != 0, err
    return status, _fields(out)


def _open(served: ServedNode, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    status, fields = _tx(
        served,
        capsys,
        "dev:merchant1",
        *("group", "open", "--item", "rice 5 kg", "--price", "3000", "--min", "2", "--max", "3"),
        *("--deadline-in", "3600", "--opener-discount", "500", "--shipping", "200"),
        *("--arbiter", "dev:arbiter", "--commission-bps", "500", *extra),
    )
    assert status == 0 and fields["result"] == ["ok"], fields
    return fields["hash"][0]


def test_group_flow_through_the_cli(served: ServedNode, capsys: pytest.CaptureFixture[str]) -> None:
    group_id = _open(served, capsys)
    group = served.call(lambda: get_group(served.node.state, bytes.fromhex(group_id)))
    assert group is not None and group.item_hash == hashlib.sha256(b"rice 5 kg").digest()
    status, fields = _tx(served, capsys, "dev:buyer1", "group", "join", "--group", group_id)
    assert status == 0 and fields["result"] == ["ok"], fields
    joined = [json.loads(line) for line in fields["event"]]
    assert joined[0]["event"] == "group.joined" and joined[0]["paid"] == 2_700
    status, fields = _tx(
        served,
        capsys,
        "dev:buyer2",
        *("group", "join", "--group", group_id, "--sharer", "dev:sharer1"),
        *("--commission-bps", "500"),
    )
    assert status == 0 and fields["result"] == ["ok"], fields
    status, again = _tx(served, capsys, "dev:buyer2", "group", "join", "--group", group_id)
    assert status == 1 and again["result"][0].startswith("failed (already_joined)"), again

    status, out, err = _run(
        capsys, "query", "group", group_id, "--prove", "--json", "--rpc", served.url
    )
    assert status == 0, err
    answer = json.loads(out)
    assert answer["verified"] is True and answer["group"]["state"] == "FORMED"
    assert [m["paid"] for m in answer["members"]] == [2_700, 3_200]
    assert all(m["order_id"] is not None for m in answer["members"])
    status, out, err = _run(capsys, "query", "group", group_id, "--rpc", served.url)
    assert status == 0, err
    fields = _fields(out)
    assert fields["state"] == ["FORMED"] and fields["members"] == ["2 (min 2, max 3)"]

    other = _open(served, capsys)
    status, fields = _tx(served, capsys, "dev:merchant1", "group", "cancel", "--group", other)
    assert status == 0 and fields["result"] == ["ok"], fields
    status, out, err = _run(
        capsys,
        *("query", "groups", "--merchant", "dev:merchant1", "--state", "CANCELLED"),
        *("--json", "--rpc", served.url),
    )
    assert status == 0, err
    assert [g["group_id"] for g in json.loads(out)["groups"]] == [other]
    status, out, err = _run(
        capsys, "query", "groups", "--merchant", "dev:merchant1", "--all", "--rpc", served.url
    )
    assert status == 0, err
    assert sorted(line.split()[0] for line in out.splitlines()) == sorted([group_id, other])


def test_group_cli_refuses_bad_input(
    served: ServedNode, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = _run(capsys, "query", "group", "xyz", "--rpc", served.url)
    assert status == 1 and "GROUP_ID must be 64 hex characters" in err
    status, _, err = _run(capsys, "query", "group", "ab" * 32, "--rpc", served.url)
    assert status == 1 and "not found" in err.lower(), err
    with pytest.raises(SystemExit):
        cli.main(["tx", "group", "open", "--key", "dev:merchant1", "--min", "1"])
    status, fields = _tx(
        served,
        capsys,
        "dev:buyer1",
        *("group", "join", "--group", "ab" * 32, "--amount", "5"),
    )
    assert status == 1 and fields["result"][0].startswith("failed (unknown_group)"), fields
