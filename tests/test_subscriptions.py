"""WebSocket subscriptions (GET /ws) over real sockets: heads, order events, unsubscribe, limits,
a slow subscriber dropped while blocks keep committing, malformed params, and `sec watch`."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any
from unittest import mock

import aiohttp
import pytest

import tests.rpc_node
from contracts.epochs import get_epoch
from contracts.orders import OrderCreate, OrderItem, OrderPay
from ledger.genesis import parse_genesis
from ledger.keys import format_address
from ledger.transactions import Transfer
from secnode.cli.watch import websocket_url
from secnode.network import devnet
from secnode.network.devnet import dev_genesis_document
from secnode.runtime.config import RPCSection
from secnode.runtime.rpc.server import RpcConfig
from secnode.runtime.rpc.subscriptions import Subscriber, SubscriptionHub
from secnode.schema.subscriptions import SubscribeParams
from tests.rpc_node import RpcTestNode, Served, ServedNode, serve, sign

ROOT = Path(__file__).resolve().parent.parent


async def _call(ws: aiohttp.ClientWebSocketResponse, method: str, params: Any, id_: int = 1) -> Any:
    await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": id_, "method": method, "params": params}))
    return await _receive(ws)


async def _receive(ws: aiohttp.ClientWebSocketResponse) -> Any:
    message = await asyncio.wait_for(ws.receive(), 5)
    assert message.type == aiohttp.WSMsgType.TEXT, message
    return json.loads(message.data)


async def _connect(served: Served) -> aiohttp.ClientWebSocketResponse:
    return await served.session.ws_connect(served.url + "/ws")


def _transfer(nonce: int, to: str = "buyer2") -> str:
    body = Transfer(devnet.dev_account_key(to).address, 1)
    return sign("buyer1", nonce, "credit.transfer", body).encoded.hex()


@pytest.mark.asyncio
async def test_new_heads_arrive_for_each_committed_block() -> None:
    async with serve() as served:
        ws = await _connect(served)
        reply = await _call(ws, "sec_subscribe", {"kind": "newHeads"})
        subscription = reply["result"]
        served.node.commit_pending()
        served.node.commit_pending()
        first, second = await _receive(ws), await _receive(ws)
        assert first["method"] == "sec_subscription" and "id" not in first
        assert first["params"]["subscription"] == subscription
        assert first["params"]["result"]["header"]["height"] == 1
        assert second["params"]["result"]["header"]["height"] == 2
        block = await served.result("sec_getBlock", {"height": 2})
        assert second["params"]["result"] == {"hash": block["hash"], "header": block["header"]}
        await ws.close()


@pytest.mark.asyncio
async def test_ordinary_calls_are_served_over_the_socket() -> None:
    async with serve() as served:
        ws = await _connect(served)
        reply = await _call(ws, "sec_status", {})
        assert reply["result"]["height"] == 0
        await ws.close()


@pytest.mark.asyncio
async def test_order_events_of_an_account_only() -> None:
    async with serve() as served:
        ws = await _connect(served)
        buyer2 = format_address(devnet.dev_account_key("buyer2").address)
        reply = await _call(ws, "sec_subscribe", ["orderEvents", buyer2])
        subscription = reply["result"]
        await served.result("sec_sendTransaction", {"tx": _transfer(0, "buyer3")})
        served.node.commit_pending()  # does not touch buyer2
        tx = _transfer(1)
        sent = await served.result("sec_sendTransaction", {"tx": tx})
        served.node.commit_pending()
        event = await _receive(ws)
        assert event["params"]["subscription"] == subscription
        result = event["params"]["result"]
        assert result["tx_hash"] == sent["hash"] and result["height"] == 2
        assert result["type"] == "credit.transfer" and result["receipt"]["ok"] is True
        await ws.close()


@pytest.mark.asyncio
async def test_unsubscribe_stops_notifications() -> None:
    async with serve() as served:
        ws = await _connect(served)
        subscription = (await _call(ws, "sec_subscribe", {"kind": "newHeads"}))["result"]
        assert (await _call(ws, "sec_unsubscribe", [subscription]))["result"] is True
        assert (await _call(ws, "sec_unsubscribe", [subscription]))["result"] is False
        served.node.commit_pending()
        status = await _call(ws, "sec_status", {})  # the next message is this reply, no head
        assert status["result"]["height"] == 1
        await ws.close()


@pytest.mark.asyncio
async def test_invalid_subscribe_params_are_clear_errors() -> None:
    async with serve() as served:
        ws = await _connect(served)
        cases: list[Any] = [
            {"kind": "blocks"},
            {"kind": "orderEvents"},
            {"kind": "newHeads", "address": format_address(b"\x01" * 20)},
            {"kind": "orderEvents", "address": "sec1notanaddress"},
            ["newHeads", None, 3],
        ]
        for params in cases:
            error = (await _call(ws, "sec_subscribe", params))["error"]
            assert error["code"] == -32602, (params, error)
        error = (await _call(ws, "sec_subscribe", {"kind": "orderEvents"}))["error"]
        assert "needs an account or merchant address" in error["message"]
        await ws.close()


@pytest.mark.asyncio
async def test_subscribe_over_http_says_websocket_only() -> None:
    async with serve() as served:
        error = await served.error("sec_subscribe", {"kind": "newHeads"})
        assert error["code"] == -32600 and "/ws" in error["message"]


@pytest.mark.asyncio
async def test_invalid_over_the_limits() -> None:
    config = RpcConfig(max_ws_connections=1, max_subscriptions=2)
    async with serve(config) as served:
        ws = await _connect(served)
        for _ in range(2):
            assert "result" in await _call(ws, "sec_subscribe", {"kind": "newHeads"})
        error = (await _call(ws, "sec_subscribe", {"kind": "epochs"}))["error"]
        assert error["code"] == -32007 and error["data"]["limit"] == 2
        second = await _connect(served)
        refusal = await _receive(second)
        assert (
            refusal["error"]["code"] == -32007
            and "1 WebSocket connections" in (refusal["error"]["message"])
        )
        closing = await asyncio.wait_for(second.receive(), 5)
        assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == 1013
        await ws.close()
        await second.close()


def _raw_websocket(port: int) -> socket.socket:
    """A WebSocket client that subscribes to new heads and then never reads (tiny buffer)."""
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", port))
    raw.sendall(
        b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    handshake = b""
    while b"\r\n\r\n" not in handshake:
        handshake += raw.recv(1)
    assert b" 101 " in handshake
    payload = json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "sec_subscribe", "params": ["newHeads"]}
    ).encode()
    mask = b"\x00\x00\x00\x00"
    raw.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + payload)
    return raw


@pytest.mark.asyncio
async def test_a_slow_subscriber_is_dropped_while_blocks_commit() -> None:
    config = RpcConfig(subscriber_queue=8)
    async with serve(config) as served:
        port = int(served.url.rsplit(":", 1)[1])
        raw = await asyncio.to_thread(_raw_websocket, port)
        hub = served.hub
        for _ in range(100):  # let the subscription land
            if any(s.subscriptions for s in hub.subscribers):
                break
            await asyncio.sleep(0.01)
        (subscriber,) = hub.subscribers
        height = 0
        while subscriber.dropped is None and height < 20_000:
            served.node.commit_pending()  # publish never waits on the subscriber
            height += 1
            await asyncio.sleep(0)
        assert subscriber.dropped is not None and "too slow" in subscriber.dropped
        for _ in range(5):
            served.node.commit_pending()
        for _ in range(300):  # the connection is closed and forgotten
            if not hub.subscribers:
                break
            await asyncio.sleep(0.01)
        assert not hub.subscribers
        raw.close()


def test_sec_watch_heads_prints_lines(served: ServedNode) -> None:
    command = [sys.executable, str(ROOT / "cli.py"), "watch", "heads", "--rpc", served.url]
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment
    ) as process:
        watchdog = threading.Timer(30, process.kill)  # a hung readline ends at EOF
        watchdog.start()
        try:
            assert process.stdout is not None and process.stderr is not None
            first = process.stderr.readline()  # "watching ..." once subscribed
            assert "watching heads" in first, first
            served.call(served.node.commit_pending)
            served.call(served.node.commit_pending)
            lines = [process.stdout.readline(), process.stdout.readline()]
            assert lines[0].startswith("height 1 "), lines
            assert lines[1].startswith("height 2 "), lines
        finally:
            watchdog.cancel()
            process.terminate()
            process.wait(10)


def test_sec_watch_says_when_the_node_is_unreachable() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "watch", "heads", "--rpc", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode != 0
    assert "cannot reach" in done.stderr and "127.0.0.1:9" in done.stderr, done.stderr


def _every_10_blocks() -> Any:
    """Patch the dev chains of tests.rpc_node to commit a trust epoch every 10 blocks."""
    document = dev_genesis_document()
    document["parameters"] = {**document["parameters"], "trust_epoch_blocks": 10}
    return mock.patch.object(tests.rpc_node, "dev_genesis", return_value=parse_genesis(document))


def _epoch_node() -> RpcTestNode:
    """A dev chain committing a trust epoch every 10 blocks."""
    with _every_10_blocks():
        return RpcTestNode()


def _notices(subscriber: Subscriber) -> list[Any]:
    notices = []
    while not subscriber.queue.empty():
        notices.append(json.loads(subscriber.queue.get_nowait())["params"]["result"])
    return notices


@pytest.mark.asyncio
async def test_epochs_arrive_once_per_committed_epoch() -> None:
    node = _epoch_node()
    hub = SubscriptionHub(node)
    node.on_commit = hub.publish
    subscriber = hub.connect()
    assert subscriber is not None
    hub.subscribe(subscriber, SubscribeParams(kind="epochs"))
    for _ in range(25):
        node.commit_pending()
    epochs = _notices(subscriber)
    stored = get_epoch(node.state)
    assert stored is not None and len(epochs) >= 1
    assert [e["epoch"] for e in epochs] == list(range(epochs[0]["epoch"], stored.epoch + 1))
    assert epochs[-1]["committed_height"] == stored.committed_height


@pytest.mark.asyncio
async def test_epochs_arrive_over_the_socket_as_sec_get_trust_epoch_answers() -> None:
    with _every_10_blocks():
        async with serve() as served:
            ws = await _connect(served)
            subscription = (await _call(ws, "sec_subscribe", ["epochs"]))["result"]
            for _ in range(25):
                served.node.commit_pending()
            notice = await _receive(ws)
            assert notice["method"] == "sec_subscription"
            assert notice["params"]["subscription"] == subscription
            epoch = notice["params"]["result"]
            answer = await served.result(
                "sec_getTrustEpoch", {"epoch": epoch["epoch"], "decoded": False}
            )
            assert epoch == answer["epoch"]
            await ws.close()


@pytest.mark.asyncio
async def test_order_events_reach_the_merchant_and_the_buyer() -> None:
    node = RpcTestNode()
    hub = SubscriptionHub(node)
    node.on_commit = hub.publish
    merchant, buyer = (hub.connect(), hub.connect())
    assert merchant is not None and buyer is not None
    for subscriber, name in ((merchant, "merchant1"), (buyer, "buyer2")):
        address = format_address(devnet.dev_account_key(name).address)
        hub.subscribe(subscriber, SubscribeParams(kind="orderEvents", address=address))
    buyer2 = devnet.dev_account_key("buyer2").address
    arbiter = devnet.dev_account_key("arbiter").address
    sharer = devnet.dev_account_key("sharer1").address
    body = OrderCreate(buyer2, (OrderItem("tea", 2, 1000),), 500, arbiter, sharer, 500)
    create = sign("merchant1", 0, "order.create", body)
    await node.submit(create)
    node.commit_pending()
    await node.submit(sign("buyer2", 0, "order.pay", OrderPay(create.hash, 2500)))
    node.commit_pending()
    seen_by_merchant = [(n["type"], n["receipt"]["code"]) for n in _notices(merchant)]
    seen_by_buyer = [(n["type"], n["receipt"]["code"]) for n in _notices(buyer)]
    assert seen_by_buyer == [("order.create", ""), ("order.pay", "")]
    assert seen_by_merchant == [("order.create", ""), ("order.pay", "")], seen_by_merchant


def test_config_defaults_are_the_documented_limits() -> None:
    section, config = RPCSection(), RpcConfig()
    assert (section.max_ws_connections, config.max_ws_connections) == (256, 256)
    assert (section.max_subscriptions, config.max_subscriptions) == (16, 16)
    assert (section.subscriber_queue, config.subscriber_queue) == (256, 256)
    operations = (ROOT / "docs" / "operations.md").read_text()
    for name in ("max_ws_connections", "max_subscriptions", "subscriber_queue"):
        assert f"| `{name}` |" in operations, name


def test_websocket_url_from_the_rpc_url() -> None:
    assert websocket_url("http://127.0.0.1:8545") == "ws://127.0.0.1:8545/ws"
    assert websocket_url("http://node:8545/rpc/") == "ws://node:8545/ws"
    assert websocket_url("https://node.example/rpc") == "wss://node.example/ws"
    assert websocket_url("127.0.0.1:8546") == "ws://127.0.0.1:8546/ws"
