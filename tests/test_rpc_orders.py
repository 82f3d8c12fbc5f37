"""sec_getOrder and sec_listOrders over HTTP against a dev chain that runs the contracts."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.orders import OrderCreate, OrderItem, OrderPay, OrderShip, order_key
from ledger.keys import format_address
from ledger.state_tree import verify_state_proof
from ledger.transactions import SignedTransaction, TxBody
from secnode.network import devnet
from secnode.runtime.rpc import methods
from secnode.schema.objects import StateProof
from tests.rpc_node import Served, serve, sign


def _address(name: str) -> bytes:
    return devnet.dev_account_key(name).address


def _text(name: str) -> str:
    return format_address(_address(name))


def _create(nonce: int, buyer: str = "buyer1", sharer: str | None = None) -> SignedTransaction:
    body = OrderCreate(
        _address(buyer),
        (OrderItem("tea", 2, 1_000), OrderItem("cup", 1, 250)),
        500,
        _address("arbiter"),
        None if sharer is None else _address(sharer),
        None if sharer is None else 1_000,
    )
    return sign("merchant1", nonce, "order.create", body)


async def _commit(served: Served, *txs: SignedTransaction) -> None:
    for tx in txs:
        await served.result("sec_sendTransaction", {"tx": tx.encoded.hex()})
    result = served.node.commit_pending()
    assert all(receipt.ok for receipt in result.receipts), result.receipts


async def _send(served: Served, name: str, nonce: int, tx_type: str, body: TxBody) -> None:
    await _commit(served, sign(name, nonce, tx_type, body))


@pytest.mark.asyncio
async def test_get_order_follows_the_order_and_proves_it() -> None:
    async with serve() as served:
        create = _create(0, sharer="sharer1")
        await _commit(served, create)
        order_id = create.hash
        answer = await served.result("sec_getOrder", {"order_id": order_id.hex()})
        order = answer["order"]
        assert answer["exists"] is True and answer["created_height"] == 1
        lines = [
            {"sku": "tea", "quantity": 2, "unit_price": 1_000, "returnable": True},
            {"sku": "cup", "quantity": 1, "unit_price": 250, "returnable": True},
        ]
        assert answer["items"] == lines and order["items"] == lines
        assert (order["leader"], order["leader_commission_bps"], order["pickup_hash"]) == (
            None,
            0,
            None,
        )
        assert (order["returned"], order["return_hash"]) == ([], None)
        assert (order["state"], order["goods"], order["total"], order["held"]) == (
            "CREATED",
            2_250,
            2_750,
            0,
        )
        assert order["merchant"] == _text("merchant1") and order["sharer"] == _text("sharer1")
        assert order["due_s"] == order["created_s"] + devnet.DEV_PARAMETERS["cancel_window_s"]
        assert order["settlement"] == {"refunded": 0, "merchant": 0, "sharer": 0, "leader": 0}
        await _send(served, "buyer1", 0, "order.pay", OrderPay(order_id, 2_750))
        await _send(served, "merchant1", 1, "order.ship", OrderShip(order_id, bytes(32)))
        proven = await served.result("sec_getOrder", [order_id.hex(), True])
        assert proven["order"]["state"] == "SHIPPED" and proven["order"]["held"] == 2_750
        assert proven["order"]["shipment_hash"] == bytes(32).hex()
        assert proven["state_root"] == served.node.head.state_root.hex()
        verify_state_proof(
            bytes.fromhex(proven["state_root"]),
            order_key(order_id),
            bytes.fromhex(proven["value"]),
            StateProof.model_validate(proven["proof"]).to_proof(),
        )


@pytest.mark.asyncio
async def test_unknown_order_is_not_found_or_proven_absent() -> None:
    async with serve() as served:
        missing = bytes(range(32))
        error = await served.error("sec_getOrder", {"order_id": missing.hex()})
        assert error["code"] == -32000 and error["data"] == {"what": "order", "key": missing.hex()}
        absent = await served.result("sec_getOrder", {"order_id": missing.hex(), "prove": True})
        assert absent["exists"] is False and absent["order"] is None and absent["value"] is None
        verify_state_proof(
            bytes.fromhex(absent["state_root"]),
            order_key(missing),
            None,
            StateProof.model_validate(absent["proof"]).to_proof(),
        )


async def _list(served: Served, **params: Any) -> dict[str, Any]:
    result: dict[str, Any] = await served.result("sec_listOrders", params)
    return result


@pytest.mark.asyncio
async def test_list_orders_by_party_state_and_role_with_pages() -> None:
    async with serve() as served:
        creates = [_create(n, buyer="buyer1" if n % 2 == 0 else "buyer2") for n in range(7)]
        creates.append(_create(7, buyer="buyer2", sharer="sharer1"))
        await _commit(served, *creates)
        ids = sorted(tx.hash.hex() for tx in creates)
        paid = creates[0].hash
        await _send(served, "buyer1", 0, "order.pay", OrderPay(paid, 2_750))

        everything = await _list(served, party=_text("merchant1"), limit=100)
        assert [e["order"]["order_id"] for e in everything["orders"]] == ids
        assert {e["role"] for e in everything["orders"]} == {"merchant"}
        assert everything["next_cursor"] is None

        pages: list[str] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"party": _text("merchant1"), "limit": 3}
            if cursor is not None:
                params["cursor"] = cursor
            page = await _list(served, **params)
            assert len(page["orders"]) <= 3
            pages += [e["order"]["order_id"] for e in page["orders"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert pages == ids

        funded = await _list(served, party=_text("merchant1"), state="FUNDED")
        assert [e["order"]["order_id"] for e in funded["orders"]] == [paid.hex()]
        buyer2 = await _list(served, party=_text("buyer2"), role="buyer")
        assert len(buyer2["orders"]) == 4
        shared = await _list(served, party=_text("sharer1"))
        assert [(e["role"], e["order"]["order_id"]) for e in shared["orders"]] == [
            ("sharer", creates[7].hash.hex())
        ]
        assert (await _list(served, party=_text("buyer3")))["orders"] == []
        assert (await _list(served, party=_text("buyer1"), role="merchant"))["orders"] == []


@pytest.mark.asyncio
async def test_list_orders_rejects_bad_params() -> None:
    async with serve() as served:
        for params in [
            {"party": _text("buyer1"), "state": "PAID"},
            {"party": _text("buyer1"), "role": "friend"},
            {"party": _text("buyer1"), "limit": 0},
            {"party": _text("buyer1"), "limit": 101},
            {"party": _text("buyer1"), "cursor": "xyz"},
            {"party": "sec1notanaddress"},
        ]:
            error = await served.error("sec_listOrders", params)
            assert error["code"] == -32602, params


@pytest.mark.asyncio
async def test_list_orders_examines_a_bounded_number_of_entries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(methods, "MAX_ORDERS_EXAMINED", 2)
    async with serve() as served:
        creates = [_create(n) for n in range(5)]
        await _commit(served, *creates)
        paid = max(creates, key=lambda tx: tx.hash).hash
        await _send(served, "buyer1", 0, "order.pay", OrderPay(paid, 2_750))
        found: list[str] = []
        calls = 0
        params: dict[str, Any] = {"party": _text("buyer1"), "state": "FUNDED"}
        while True:
            page = await _list(served, **params)
            calls += 1
            found += [e["order"]["order_id"] for e in page["orders"]]
            if page["next_cursor"] is None:
                break
            params["cursor"] = page["next_cursor"]
        assert found == [paid.hex()]
        assert calls == 3  # 2 + 2 + 1 entries examined


@pytest.mark.asyncio
async def test_list_orders_cursor_is_the_hex_id_of_the_last_order_examined() -> None:
    async with serve() as served:
        creates = [_create(n) for n in range(5)]
        await _commit(served, *creates)
        ids = sorted(tx.hash.hex() for tx in creates)
        first = await _list(served, party=_text("merchant1"), limit=2)
        assert first["next_cursor"] == ids[1]
        second = await _list(served, party=_text("merchant1"), limit=2, cursor=ids[1].upper())
        assert [e["order"]["order_id"] for e in second["orders"]] == ids[2:4]
        assert second["next_cursor"] == ids[3]
        last = await _list(served, party=_text("merchant1"), limit=2, cursor=ids[3])
        assert [e["order"]["order_id"] for e in last["orders"]] == ids[4:]
        assert last["next_cursor"] is None
