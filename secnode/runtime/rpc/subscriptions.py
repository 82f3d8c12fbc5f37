"""Live updates over WebSocket (GET /ws), in the style of eth_subscribe.

Theory of operation:

* `SubscriptionHub` knows every open WebSocket connection (`Subscriber`) and its subscriptions.
  The node calls `publish(block, receipts)` from its commit path; publish is synchronous and
  never waits: each notification is encoded once per kind and put on each subscriber's bounded
  queue with `put_nowait`. A subscriber whose queue is full is dropped (its connection is closed
  with the reason), so a slow client never slows a commit.
* `serve_socket` runs one connection: a reader (JSON-RPC calls in, replies queued), a writer
  (queue out to the socket) and a watcher (the drop signal), all in one TaskGroup; the first to
  end ends the others. sec_subscribe / sec_unsubscribe are answered here (they belong to the
  connection); every other call goes to the ordinary `Dispatcher`.
* An order event touches an address when the transaction's sender, body or receipt events name
  it, or, for a transaction on an order (order.pay, order.ship, review.reply...), when the address
  is one of that order's parties (merchant, buyer, arbiter, sharer, leader).
* Limits: at most `max_connections` connections (one over it gets a JSON-RPC error, then the
  close code 1013 "try again later"), at most `max_per_connection` subscriptions per
  connection (then a `subscription_limit` error). Documented in docs/rpc.md "Subscriptions".
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import aiohttp
from aiohttp import web
from pydantic import BaseModel, ValidationError

from contracts.epochs import read_epoch
from contracts.orders import find_order
from ledger.blocks import Block
from ledger.errors import InvalidAddress
from ledger.keys import ADDRESS_SIZE, parse_address
from ledger.receipts import Receipt
from ledger.schema import to_wire
from ledger.store import CommittedState
from secnode.runtime.rpc.errors import (
    SUBSCRIPTION_LIMIT,
    RpcError,
    invalid_params,
    invalid_request,
    subscription_limit,
)
from secnode.runtime.rpc.jsonrpc import Method, encode_json, error_response
from secnode.runtime.rpc.view import NodeView
from secnode.schema.objects import BlockHeader
from secnode.schema.subscriptions import (
    NewHead,
    OrderEvent,
    SubscribeParams,
    SubscriptionId,
    Unsubscribed,
    UnsubscribeParams,
)
from secnode.schema.trust import EpochJson
from secnode.schema.values import problems_text

log = logging.getLogger("secnode.rpc")

DEFAULT_MAX_CONNECTIONS: Final = 256
DEFAULT_MAX_PER_CONNECTION: Final = 16
DEFAULT_QUEUE_SIZE: Final = 256
CLOSE_TOO_SLOW: Final = 1008  # policy violation
CLOSE_TOO_MANY: Final = 1013  # try again later
_CLOSE_TIMEOUT_S: Final = 2.0
SUBSCRIPTION_METHODS: Final = frozenset({"sec_subscribe", "sec_unsubscribe"})


@dataclass(frozen=True, slots=True)
class SubscriptionLimits:
    """Caps of the WebSocket endpoint ([rpc] section of the config)."""

    max_connections: int = DEFAULT_MAX_CONNECTIONS
    """Most WebSocket connections open at once."""
    max_per_connection: int = DEFAULT_MAX_PER_CONNECTION
    """Most subscriptions one connection may hold."""
    queue_size: int = DEFAULT_QUEUE_SIZE
    """Most messages waiting for one connection; one more drops the connection."""


@dataclass(frozen=True, slots=True)
class Filter:
    """What one subscription wants."""

    kind: str
    """newHeads, orderEvents or epochs."""
    address: bytes | None
    """The account of orderEvents."""


class Subscriber:
    """One WebSocket connection: its subscriptions and its bounded outgoing queue."""

    def __init__(self, queue_size: int) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue(queue_size)
        self.subscriptions: dict[str, Filter] = {}
        self.dropped: str | None = None
        """Why the connection is being closed by the node (None while it is served)."""
        self.drop_signal = asyncio.Event()

    def send(self, message: str) -> None:
        """Queue `message`; a full queue drops the connection (never waits)."""
        if self.dropped is not None:
            return
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.drop(f"too slow: {self.queue.maxsize} messages unread")

    def drop(self, reason: str) -> None:
        self.dropped = reason
        self.drop_signal.set()


def _addresses_in(value: Any) -> Iterator[bytes]:
    """Every address-sized bytes value inside a wire value (body or event)."""
    if isinstance(value, bytes):
        if len(value) == ADDRESS_SIZE:
            yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _addresses_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _addresses_in(item)


def _notification(subscription: str, result: str) -> str:
    return (
        '{"jsonrpc":"2.0","method":"sec_subscription","params":{"subscription":'
        f'"{subscription}","result":{result}}}}}'
    )


def _result_json(model: BaseModel) -> str:
    return encode_json(model.model_dump(mode="json")).decode()


class SubscriptionHub:
    """Every connection and subscription of the node (see the module docstring)."""

    def __init__(self, view: NodeView, limits: SubscriptionLimits | None = None) -> None:
        self.view = view
        self.limits = limits or SubscriptionLimits()
        self.subscribers: set[Subscriber] = set()

    def connect(self) -> Subscriber | None:
        """A new connection, or None when `max_connections` are open."""
        if len(self.subscribers) >= self.limits.max_connections:
            return None
        subscriber = Subscriber(self.limits.queue_size)
        self.subscribers.add(subscriber)
        return subscriber

    def disconnect(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)

    def subscribe(self, subscriber: Subscriber, params: SubscribeParams) -> str:
        if len(subscriber.subscriptions) >= self.limits.max_per_connection:
            limit = self.limits.max_per_connection
            raise subscription_limit("subscriptions on this connection", limit)
        address = None
        if params.address is not None:
            try:
                address = parse_address(params.address)
            except InvalidAddress as exc:
                raise invalid_params([("address", str(exc))]) from None
        subscription = "0x" + secrets.token_hex(16)
        subscriber.subscriptions[subscription] = Filter(params.kind, address)
        return subscription

    @staticmethod
    def unsubscribe(subscriber: Subscriber, params: UnsubscribeParams) -> bool:
        return subscriber.subscriptions.pop(params.subscription, None) is not None

    def publish(self, block: Block, receipts: tuple[Receipt, ...] | list[Receipt]) -> None:
        """Notify every matching subscription of committed `block` (never waits)."""
        wanted: dict[str, list[tuple[Subscriber, str, Filter]]] = {}
        for subscriber in self.subscribers:
            for subscription, what in subscriber.subscriptions.items():
                wanted.setdefault(what.kind, []).append((subscriber, subscription, what))
        if not wanted:
            return
        if heads := wanted.get("newHeads"):
            head = _result_json(NewHead(hash=block.hash(), header=BlockHeader.of(block.header)))
            for subscriber, subscription, _ in heads:
                subscriber.send(_notification(subscription, head))
        if orders := wanted.get("orderEvents"):
            self._publish_orders(block, receipts, orders)
        if epochs := wanted.get("epochs"):
            stored = read_epoch(CommittedState(self.view.state, self.view.store))
            if stored is not None and stored.record.committed_height == block.height:
                epoch = _result_json(EpochJson.of(stored.record))
                for subscriber, subscription, _ in epochs:
                    subscriber.send(_notification(subscription, epoch))

    def _publish_orders(
        self,
        block: Block,
        receipts: tuple[Receipt, ...] | list[Receipt],
        orders: list[tuple[Subscriber, str, Filter]],
    ) -> None:
        watched = {what.address for _, _, what in orders}
        committed = CommittedState(self.view.state, self.view.store)
        for index, (tx, receipt) in enumerate(zip(block.transactions, receipts, strict=True)):
            touched: set[bytes] = {tx.sender_address}
            touched.update(_addresses_in(to_wire(tx.body)))
            touched.update(_addresses_in(list(receipt.events)))
            order_id = getattr(tx.body, "order_id", None)
            if isinstance(order_id, bytes) and (order := find_order(committed, order_id)):
                # order.pay, ship, confirm...: name only the order; its parties are touched
                parties = (order.merchant, order.buyer, order.arbiter, order.sharer, order.leader)
                touched.update(party for party in parties if party is not None)
            if touched.isdisjoint(watched):
                continue
            event = _result_json(OrderEvent.of(block.height, index, tx, receipt))
            for subscriber, subscription, what in orders:
                if what.address in touched:
                    subscriber.send(_notification(subscription, event))


M = TypeVar("M", bound=BaseModel)
Respond = Callable[[bytes], Awaitable[bytes | None]]
Refuse = Callable[[str], RpcError | None]
"""Given a method name, the error that refuses it to this connection, or None (auth: a
restricted sec_subscribe, secnode.runtime.rpc.auth)."""


def _bind(model: type[M], params: Any) -> M:
    if isinstance(params, list):
        names = list(model.model_fields)
        if len(params) > len(names):
            raise invalid_params([("", f"at most {len(names)} positional params")])
        params = dict(zip(names, params, strict=False))
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise invalid_request("params must be an object or an array")
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        raise invalid_params([("", problems_text(exc))]) from None


def _subscription_call(
    hub: SubscriptionHub, subscriber: Subscriber, request: Any, refuse: Refuse
) -> str:
    """The reply to one sec_subscribe / sec_unsubscribe request object."""
    request_id = request.get("id")
    try:
        if request.get("jsonrpc") != "2.0":
            raise invalid_request("jsonrpc must be '2.0'")
        if (refusal := refuse(request["method"])) is not None:
            raise refusal
        if request["method"] == "sec_subscribe":
            result: Any = hub.subscribe(subscriber, _bind(SubscribeParams, request.get("params")))
        else:
            result = hub.unsubscribe(subscriber, _bind(UnsubscribeParams, request.get("params")))
    except RpcError as error:
        return encode_json(error_response(error, request_id)).decode()
    return encode_json({"jsonrpc": "2.0", "result": result, "id": request_id}).decode()


def _subscription_request(data: str | bytes) -> Any | None:
    """The request object if `data` is one sec_subscribe/sec_unsubscribe call, else None."""
    try:
        request = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(request, dict) and request.get("method") in SUBSCRIPTION_METHODS:
        return request
    return None


async def serve_socket(
    request: web.Request,
    hub: SubscriptionHub,
    respond: Respond,
    max_message_bytes: int,
    refuse: Refuse = lambda method: None,
) -> web.WebSocketResponse:
    """Serve one WebSocket connection until either side ends it; `refuse` may turn away
    sec_subscribe / sec_unsubscribe calls (every other call goes to `respond`)."""
    socket = web.WebSocketResponse(max_msg_size=max_message_bytes, autoping=True)
    await socket.prepare(request)
    subscriber = hub.connect()
    if subscriber is None:
        limit = hub.limits.max_connections
        error = subscription_limit("WebSocket connections", limit)
        await socket.send_str(encode_json(error_response(error)).decode())
        await socket.close(code=CLOSE_TOO_MANY, message=f"over {limit} connections".encode())
        return socket
    try:
        await _run(socket, hub, subscriber, respond, refuse)
    finally:
        hub.disconnect(subscriber)
    if subscriber.dropped is not None and not socket.closed:
        try:
            async with asyncio.timeout(_CLOSE_TIMEOUT_S):
                await socket.close(code=CLOSE_TOO_SLOW, message=subscriber.dropped.encode())
        except TimeoutError:
            # The client reads nothing, so the close frame cannot be sent: hang up.
            if request.transport is not None:
                request.transport.abort()
    return socket


async def _run(
    socket: web.WebSocketResponse,
    hub: SubscriptionHub,
    subscriber: Subscriber,
    respond: Respond,
    refuse: Refuse,
) -> None:
    async def read() -> None:
        async for message in socket:
            if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                break
            data: str | bytes = message.data
            call = _subscription_request(data)
            if call is not None:
                subscriber.send(_subscription_call(hub, subscriber, call, refuse))
                continue
            reply = await respond(data.encode() if isinstance(data, str) else data)
            if reply is not None:
                subscriber.send(reply.decode())

    async def write() -> None:
        while True:
            await socket.send_str(await subscriber.queue.get())

    async def watch() -> None:
        await subscriber.drop_signal.wait()

    try:
        async with asyncio.TaskGroup() as tasks:
            started = [tasks.create_task(work()) for work in (read, write, watch)]

            def end_all(_: asyncio.Task[None]) -> None:
                for task in started:
                    task.cancel()

            for task in started:
                task.add_done_callback(end_all)
    except* (ConnectionResetError, aiohttp.ClientError) as group:
        log.info("WebSocket connection lost: %s", group.exceptions[0])


def subscription_method_table() -> dict[str, Method]:
    """sec_subscribe and sec_unsubscribe for rpc.discover; over HTTP they are an error (a
    subscription lives on a WebSocket connection, GET /ws, where `serve_socket` answers them)."""

    async def websocket_only(params: Any) -> BaseModel:
        raise invalid_request("sec_subscribe and sec_unsubscribe are served only over GET /ws")

    return {
        "sec_subscribe": Method(
            "sec_subscribe",
            "Subscribe to new heads, an account's order events, or new trust epochs (WebSocket).",
            "Over GET /ws only. Returns a subscription id; each match arrives as a notification "
            '{"jsonrpc":"2.0","method":"sec_subscription","params":{"subscription":id,'
            '"result":...}} whose result is a NewHead (newHeads), an OrderEvent (orderEvents, '
            "transactions whose sender, body or receipt events name the address, or acting on "
            "an order the address is a party of) or an EpochJson "
            "(epochs). subscription_limit past the per-connection limit; a client that does not "
            "read its notifications is disconnected (close code 1008).",
            SubscribeParams,
            SubscriptionId,
            websocket_only,
            (SUBSCRIPTION_LIMIT.code,),
        ),
        "sec_unsubscribe": Method(
            "sec_unsubscribe",
            "Cancel a subscription of this WebSocket connection.",
            "Over GET /ws only. true if the id was a subscription of this connection, else false.",
            UnsubscribeParams,
            Unsubscribed,
            websocket_only,
        ),
    }
