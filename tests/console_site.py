"""A console site for browser tests: a dev chain with a story, and the bundle on one origin.

`story(served)` commits, on a `ServedNode`, an order's whole life (created, paid, shipped,
confirmed, completed when its return window passes), the buyer's attestation and review of
the merchant, the merchant's reply, an open group buy with one member, and enough blocks for
a trust epoch to be committed. `ConsoleSite` serves `STATIC_DIR`, a `config.json` naming the
same origin, and forwards `POST /rpc` and `GET /ws` to the node, so the page talks to the node
as if the node served it (what `[rpc] console = true` does).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import urllib.request
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from contracts.groups import GroupJoin, GroupOpen
from contracts.orders import OrderConfirm, OrderCreate, OrderItem, OrderPay, OrderShip
from contracts.reviews import ReviewPost, ReviewReply
from contracts.trust import Attest
from ledger.transactions import SignedTransaction
from secnode.console import STATIC_DIR
from secnode.network.devnet import DEV_PARAMETERS, dev_account_key, dev_genesis_document
from tests.rpc_node import ServedNode, sign

EPOCH_BLOCKS = DEV_PARAMETERS["trust_epoch_blocks"]


@dataclass(frozen=True)
class Story:
    """What `story` committed, for the pages to show."""

    order_id: str
    group_id: str
    transfer_hash: str
    merchant: str
    buyer: str


def _address(name: str) -> str:
    from ledger.keys import format_address

    return format_address(dev_account_key(name).address)


def _rpc(url: str, method: str, params: dict[str, Any]) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    request = urllib.request.Request(
        url + "/rpc", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        reply = json.loads(response.read())
    if "error" in reply:
        raise RuntimeError(f"{method}: {reply['error']}")
    return reply["result"]


def _commit(served: ServedNode, *txs: SignedTransaction) -> None:
    """Admit `txs` and commit them in one block; every receipt must be ok."""
    for tx in txs:
        _rpc(served.url, "sec_sendTransaction", {"tx": tx.encoded.hex()})
    result = served.call(served.node.commit_pending)
    failed = [r for r in result.receipts if not r.ok]
    if failed or len(result.receipts) != len(txs):
        raise RuntimeError(f"story block failed: {failed}")


def _empty_blocks(served: ServedNode, count: int) -> None:
    for _ in range(count):
        served.call(served.node.commit_pending)


def story(served: ServedNode) -> Story:
    """Commit the story of the module docstring on `served` (auto_commit off)."""
    merchant, buyer = dev_account_key("merchant1").address, dev_account_key("buyer1").address
    arbiter = dev_account_key("arbiter").address
    create = sign(
        "merchant1",
        0,
        "order.create",
        OrderCreate(
            buyer, (OrderItem("tea", 2, 1_000, None),), 500, arbiter, None, None, None, None
        ),
    )
    order_id = create.hash
    _commit(served, create)
    _commit(served, sign("buyer1", 0, "order.pay", OrderPay(order_id, 2_500, None)))
    shipment = hashlib.sha256(b"parcel 1").digest()
    _commit(served, sign("merchant1", 1, "order.ship", OrderShip(order_id, shipment)))
    _commit(served, sign("buyer1", 1, "order.confirm", OrderConfirm(order_id)))
    _empty_blocks(served, DEV_PARAMETERS["return_window_s"] + 1)  # 1 s per block: completes
    text = hashlib.sha256(b"good tea").digest()
    _commit(
        served,
        sign("buyer1", 2, "trust.attest", Attest(order_id, merchant, 1)),
        sign("buyer1", 3, "review.post", ReviewPost(order_id, 5, text, None)),
    )
    _commit(served, sign("merchant1", 2, "review.reply", ReviewReply(order_id, text)))
    deadline = served.node.head.timestamp_ms // 1000 + 3_600
    item = hashlib.sha256(b"tea crate").digest()
    opened = sign(
        "merchant1",
        3,
        "group.open",
        GroupOpen(item, 3_000, 2, 3, deadline, 500, 200, arbiter, None, None, None),
    )
    _commit(served, opened)
    _commit(
        served, sign("buyer2", 0, "group.join", GroupJoin(opened.hash, 2_700, None, None, None))
    )
    transfer_hash = opened.hash.hex()
    height = served.node.head.height
    _empty_blocks(served, (EPOCH_BLOCKS - height % EPOCH_BLOCKS) + 2)
    return Story(
        order_id.hex(), opened.hash.hex(), transfer_hash, _address("merchant1"), _address("buyer1")
    )


class ConsoleSite:
    """The bundle, `config.json` and a proxy to the node, on 127.0.0.1, served from the node's
    own event loop (its thread)."""

    def __init__(self, served: ServedNode) -> None:
        self.served = served
        self.node_url = served.url
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ConsoleSite:
        asyncio.run_coroutine_threadsafe(self._start(), self.served.loop).result(10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.served.loop).result(10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/config.json", self._config)
        app.router.add_post("/rpc", self._forward_rpc)
        app.router.add_get("/ws", self._forward_socket)
        app.router.add_get("/", self._index)
        app.router.add_static("/", STATIC_DIR)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _config(self, request: web.Request) -> web.Response:
        config = {"node": "", "genesis": dev_genesis_document(), "pinned": False}
        return web.json_response(config)

    async def _index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC_DIR / "index.html")

    async def _forward_rpc(self, request: web.Request) -> web.Response:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                self.node_url + "/rpc",
                data=await request.read(),
                headers={"Content-Type": "application/json"},
            ) as response,
        ):
            return web.Response(
                status=response.status, body=await response.read(), content_type="application/json"
            )

    async def _forward_socket(self, request: web.Request) -> web.WebSocketResponse:
        client = web.WebSocketResponse()
        await client.prepare(request)
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(self.node_url.replace("http", "ws") + "/ws") as upstream,
        ):

            async def down() -> None:
                async for message in upstream:
                    await client.send_str(message.data)
                await client.close()

            async def up() -> None:
                async for message in client:
                    await upstream.send_str(message.data)
                await upstream.close()

            tasks = [asyncio.create_task(down()), asyncio.create_task(up())]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                task.cancel()
        return client
