"""End to end: subscriptions on real validator processes (issue 15, live updates).

A client subscribes over `GET /ws` to node1's new heads and to merchant1's order events on
node2 while a transfer goes in through node0: the heads it is told about are the blocks node1
serves, and the transfer reaches the merchant's subscription on a node that never saw it over
RPC (it came by gossip and consensus).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from tests.e2e_cluster import Cluster, dev_address

pytestmark = pytest.mark.slow

WAIT_S = 30.0


async def _subscribe(ws: aiohttp.ClientWebSocketResponse, params: list[Any]) -> str:
    await ws.send_str(
        json.dumps({"jsonrpc": "2.0", "id": 1, "method": "sec_subscribe", "params": params})
    )
    reply = json.loads((await ws.receive(timeout=WAIT_S)).data)
    assert "result" in reply, reply
    return str(reply["result"])


async def _notifications(ws: aiohttp.ClientWebSocketResponse, subscription: str) -> Any:
    while True:
        message = json.loads((await ws.receive(timeout=WAIT_S)).data)
        if message.get("method") == "sec_subscription":
            assert message["params"]["subscription"] == subscription, message
            return message["params"]["result"]


async def _watch(cluster: Cluster) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    merchant = dev_address("merchant1")
    async with aiohttp.ClientSession() as session:
        heads_ws = await session.ws_connect(cluster.nodes[1].rpc_url + "/ws")
        orders_ws = await session.ws_connect(cluster.nodes[2].rpc_url + "/ws")
        heads = await _subscribe(heads_ws, ["newHeads"])
        orders = await _subscribe(orders_ws, ["orderEvents", merchant])
        seen = [await _notifications(heads_ws, heads) for _ in range(3)]
        sent = asyncio.create_task(
            asyncio.to_thread(cluster.transfers, [(0, "buyer1", "merchant1", 77)])
        )
        event = await _notifications(orders_ws, orders)
        outcome = (await sent)[0]
        await heads_ws.close()
        await orders_ws.close()
    assert event["tx_hash"] == outcome["hash"] and event["height"] == outcome["height"], (
        event,
        outcome,
    )
    return seen, event


def test_heads_and_order_events_arrive_from_real_validators(cluster: Cluster) -> None:
    heads, event = asyncio.run(_watch(cluster))
    heights = [head["header"]["height"] for head in heads]
    assert heights == list(range(heights[0], heights[0] + 3)), heights
    for head in heads:
        block = cluster.call(1, "sec_getBlock", {"height": head["header"]["height"]})
        assert block["hash"] == head["hash"], (block, head)
    assert event["type"] == "credit.transfer", event
