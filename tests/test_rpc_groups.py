"""sec_getGroup and sec_listGroups over HTTP against a dev chain that runs the contracts."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.groups import GroupCancel, GroupJoin, GroupOpen, group_key, member_key
from ledger.keys import format_address
from ledger.state_tree import verify_state_proof
from ledger.transactions import SignedTransaction
from secnode.network import devnet
from secnode.runtime.rpc import group_methods
from secnode.schema.objects import StateProof
from tests.rpc_node import Served, serve, sign


def _address(name: str) -> bytes:
    return devnet.dev_account_key(name).address


def _text(name: str) -> str:
    return format_address(_address(name))


def _open(served: Served, nonce: int, min_members: int = 2) -> SignedTransaction:
    deadline_s = served.node.head.timestamp_ms // 1000 + 3_600
    body = GroupOpen(bytes(32), 1_000, min_members, 3, deadline_s, 100, 50, _address("arbiter"))
    return sign("merchant1", nonce, "group.open", body)


async def _commit(served: Served, *txs: SignedTransaction) -> None:
    for tx in txs:
        await served.result("sec_sendTransaction", {"tx": tx.encoded.hex()})
    result = served.node.commit_pending()
    assert all(receipt.ok for receipt in result.receipts), result.receipts


def _verify(answer: dict[str, Any], key: bytes, value: str | None, proof: Any) -> None:
    verify_state_proof(
        bytes.fromhex(answer["state_root"]),
        key,
        None if value is None else bytes.fromhex(value),
        StateProof.model_validate(proof).to_proof(),
    )


@pytest.mark.asyncio
async def test_get_group_pages_members_and_proves_every_record() -> None:
    async with serve() as served:
        opened = _open(served, 0)
        await _commit(served, opened)
        group_id = opened.hash
        await _commit(
            served,
            sign("buyer1", 0, "group.join", GroupJoin(group_id, 950, None, None)),
            sign("buyer2", 0, "group.join", GroupJoin(group_id, 1_050, None, None)),
        )
        params = {"group_id": group_id.hex(), "prove": True, "members_limit": 1}
        first = await served.result("sec_getGroup", params)
        group = first["group"]
        assert (group["state"], group["members"], group["pool"]) == ("FORMED", 2, 0)
        assert (group["opener_total"], group["member_total"]) == (950, 1_050)
        assert first["next_member"] == 1 and len(first["members"]) == 1
        assert first["state_root"] == served.node.head.state_root.hex()
        _verify(first, group_key(group_id), first["value"], first["proof"])
        member = first["members"][0]
        assert (member["index"], member["buyer"], member["paid"]) == (0, _text("buyer1"), 950)
        _verify(first, member_key(group_id, 0), member["value"], member["proof"])
        second = await served.result("sec_getGroup", {**params, "members_from": 1})
        assert [m["buyer"] for m in second["members"]] == [_text("buyer2")]
        assert second["next_member"] is None
        order = await served.result("sec_getOrder", {"order_id": second["members"][0]["order_id"]})
        assert (order["order"]["state"], order["order"]["total"]) == ("FUNDED", 1_050)
        plain = await served.result("sec_getGroup", {"group_id": group_id.hex()})
        assert plain["proof"] is None and plain["members"][1]["proof"] is None


@pytest.mark.asyncio
async def test_unknown_group_is_not_found_or_proven_absent() -> None:
    async with serve() as served:
        missing = bytes(range(32))
        error = await served.error("sec_getGroup", {"group_id": missing.hex()})
        assert error["code"] == -32000 and error["data"] == {"what": "group", "key": missing.hex()}
        absent = await served.result("sec_getGroup", {"group_id": missing.hex(), "prove": True})
        assert absent["exists"] is False and absent["group"] is None and absent["members"] == []
        _verify(absent, group_key(missing), None, absent["proof"])


@pytest.mark.asyncio
async def test_list_groups_by_merchant_and_state_with_pages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(group_methods, "MAX_GROUPS_EXAMINED", 2)
    async with serve() as served:
        opens = [_open(served, nonce) for nonce in range(5)]
        await _commit(served, *opens)
        ids = sorted(tx.hash.hex() for tx in opens)
        await _commit(
            served, sign("merchant1", 5, "group.cancel", GroupCancel(bytes.fromhex(ids[3])))
        )
        found: list[str] = []
        params: dict[str, Any] = {"merchant": _text("merchant1"), "limit": 2}
        while True:
            page = await served.result("sec_listGroups", params)
            found += [g["group_id"] for g in page["groups"]]
            if page["next_cursor"] is None:
                break
            params["cursor"] = page["next_cursor"]
        assert found == ids
        cancelled: list[str] = []
        calls = 0
        params = {"merchant": _text("merchant1"), "state": "CANCELLED"}
        while True:
            page = await served.result("sec_listGroups", params)
            calls += 1
            cancelled += [g["group_id"] for g in page["groups"]]
            if page["next_cursor"] is None:
                break
            params["cursor"] = page["next_cursor"]
        assert cancelled == [ids[3]] and calls == 3  # 2 + 2 + 1 entries examined
        other = await served.result("sec_listGroups", {"merchant": _text("merchant2")})
        assert other["groups"] == [] and other["next_cursor"] is None


@pytest.mark.asyncio
async def test_group_methods_reject_bad_params() -> None:
    async with serve() as served:
        for method, params in [
            ("sec_listGroups", {"merchant": _text("merchant1"), "state": "DONE"}),
            ("sec_listGroups", {"merchant": _text("merchant1"), "limit": 101}),
            ("sec_listGroups", {"merchant": "sec1notanaddress"}),
            ("sec_getGroup", {"group_id": "xyz"}),
            ("sec_getGroup", {"group_id": "ab" * 32, "members_limit": 101}),
            ("sec_getGroup", {"group_id": "ab" * 32, "members_from": -1}),
        ]:
            error = await served.error(method, params)
            assert error["code"] == -32602, (method, params)
