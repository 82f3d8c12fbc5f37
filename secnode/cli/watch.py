"""`sec watch heads | orders ADDRESS | epochs`: follow a node's WebSocket subscriptions (GET /ws,
docs/rpc.md "Subscriptions"), one line per notification (one JSON object per line with --json),
until Ctrl-C. The node's URL is the same --rpc URL as every other command."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any, Final

import aiohttp

from ledger.keys import format_address
from secnode.cli.common import (
    ADDRESS_HELP,
    CommandError,
    common_options,
    credentials,
    resolve_address,
)
from secnode.client.rpc import Credentials
from secnode.schema.subscriptions import NewHead, OrderEvent
from secnode.schema.trust import EpochJson

_CONNECT_TIMEOUT_S: Final = 10.0
_KINDS: Final = {"heads": "newHeads", "orders": "orderEvents", "epochs": "epochs"}


def websocket_url(rpc_url: str) -> str:
    """The WebSocket URL of a node from its RPC URL: http://host:port[/rpc] -> ws://host:port/ws."""
    base = rpc_url.rstrip("/")
    base = base.removesuffix("/rpc")
    if base.startswith("https://"):
        return "wss://" + base[len("https://") :] + "/ws"
    if base.startswith("http://"):
        return "ws://" + base[len("http://") :] + "/ws"
    if base.startswith(("ws://", "wss://")):
        return base if base.endswith("/ws") else base + "/ws"
    if "://" not in base:  # a bare host:port, as the other commands accept
        return "ws://" + base + "/ws"
    raise CommandError(f"--rpc {rpc_url!r}: expected an http:// or https:// URL")


def line_of(what: str, result: Any) -> str:
    """One human line for a notification's result."""
    if what == "heads":
        head = NewHead.model_validate(result)
        header = head.header
        return (
            f"height {header.height}  hash {head.hash.hex()}  time_ms {header.timestamp_ms}  "
            f"view {header.view}"
        )
    if what == "orders":
        event = OrderEvent.model_validate(result)
        outcome = "ok" if event.receipt.ok else f"failed {event.receipt.code}"
        kinds = ",".join(str(e.get("event")) for e in event.receipt.events if "event" in e)
        return (
            f"height {event.height}  index {event.index}  {event.type}  {event.tx_hash.hex()}  "
            f"{outcome}" + (f"  events {kinds}" if kinds else "")
        )
    epoch = EpochJson.model_validate(result)
    return (
        f"epoch {epoch.epoch}  committed_height {epoch.committed_height}  "
        f"attestations {epoch.attestations}  accounts {epoch.accounts}"
    )


async def _watch(url: str, what: str, params: list[Any], as_json: bool, secure: Credentials) -> int:
    request = {"jsonrpc": "2.0", "id": 1, "method": "sec_subscribe", "params": params}
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=_CONNECT_TIMEOUT_S)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.ws_connect(
                url,
                heartbeat=30.0,
                headers=secure.headers(),
                ssl=secure.ssl_context if secure.ssl_context is not None else True,
            ) as socket,
        ):
            await socket.send_str(json.dumps(request))
            subscription: str | None = None
            async for message in socket:
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                data = json.loads(message.data)
                if "error" in data:
                    raise CommandError(f"{url}: {data['error'].get('message')}")
                if subscription is None and data.get("id") == 1:
                    subscription = data["result"]
                    print(f"watching {what} on {url} (Ctrl-C to stop)", file=sys.stderr)
                    continue
                notice = data.get("params", {})
                if data.get("method") != "sec_subscription" or notice.get("subscription") != (
                    subscription
                ):
                    continue
                result = notice["result"]
                print(json.dumps(result, sort_keys=True) if as_json else line_of(what, result))
                sys.stdout.flush()
            reason = f" ({socket.close_code}: {message.extra or 'no reason'})"
            raise CommandError(f"{url}: the node closed the connection{reason}")
    except aiohttp.WSServerHandshakeError as exc:
        if exc.status in (401, 403):
            raise CommandError(f"{url}: refused (HTTP {exc.status}): {exc.message}") from None
        raise CommandError(
            f"{url}: no WebSocket endpoint (HTTP {exc.status}); is the node older?"
        ) from None
    except aiohttp.ClientConnectorCertificateError as exc:
        raise CommandError(
            f"{url}: the node's TLS certificate is not trusted ({exc.certificate_error}); if it "
            "uses a private CA, pass --ca FILE or set SEC_RPC_CA"
        ) from None
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise CommandError(f"cannot reach the node at {url}: {exc or type(exc).__name__}") from None


def _run(args: argparse.Namespace) -> int:
    params: list[Any] = [_KINDS[args.what]]
    if args.what == "orders":
        params.append(format_address(resolve_address(args.address, "ADDRESS")))
    secure = credentials(args)
    return asyncio.run(_watch(websocket_url(args.rpc), args.what, params, args.json, secure))


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`sec watch heads | orders ADDRESS | epochs`."""
    watch = commands.add_parser(
        "watch", help="follow new heads, an account's order events or trust epochs (WebSocket)"
    )
    what = watch.add_subparsers(dest="watch_what", metavar="WHAT", required=True)
    common = common_options()
    heads = what.add_parser("heads", parents=[common], help="one line per committed block")
    heads.set_defaults(handler=_run, what="heads")
    orders = what.add_parser(
        "orders", parents=[common], help="transactions touching an account or merchant"
    )
    orders.add_argument("address", metavar="ADDRESS", help=ADDRESS_HELP)
    orders.set_defaults(handler=_run, what="orders")
    epochs = what.add_parser("epochs", parents=[common], help="one line per trust epoch")
    epochs.set_defaults(handler=_run, what="epochs")
