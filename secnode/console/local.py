"""`sec console`: the console's bundle served from the user's own machine and pointed at any
node (docs/console.md). This is the trustworthy way to use the console: the code that checks
proofs comes from the user's own installation, not from the node whose answers it checks.

The node must let the console's origin read it (`[rpc] cors_origins`, secnode.runtime.rpc.cors);
`check_node` asks it the way a browser will (a CORS preflight) and says in one line what to
change when it would refuse, and whether a pinned genesis is the node's chain.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import aiohttp
from aiohttp import hdrs, web

from secnode.console import STATIC_DIR
from secnode.console.bundle import ConsoleError, ConsoleSettings, add_console_routes, load_bundle

CHECK_TIMEOUT_S: Final = 5.0
MAX_STATUS_BYTES: Final = 64 << 10
"""Most of a sec_status answer read: it is under 1 KiB; a larger one is not a SEC node's."""
_ANY_HOST: Final = frozenset({"0.0.0.0", "::", ""})
_HASH: Final = re.compile(r"[0-9a-f]{64}")


def node_base_url(text: str) -> str:
    """The node's base URL for config.json from what the user typed: `http(s)://host[:port]
    [/path]` or a bare `host:port` (taken as http), without a trailing `/` or `/rpc` (the
    console appends `/rpc` and `/ws`); ConsoleError naming what is wrong."""
    value = text.strip()
    if "://" not in value:
        value = "http://" + value
    parts = urllib.parse.urlsplit(value)
    problem = None
    if parts.scheme not in ("http", "https"):
        problem = "the scheme must be http:// or https://"
    elif not parts.hostname:
        problem = "it names no host"
    elif parts.query or parts.fragment or parts.username or parts.password:
        problem = "it must not carry a query, a fragment or credentials"
    else:
        try:
            parts.port  # noqa: B018 - parsing the port is the check
        except ValueError:
            problem = "its port is not a number in 0..65535"
    if problem is not None:
        raise ConsoleError(
            f"--node {text!r} is not a node URL like http://127.0.0.1:8545: {problem}"
        )
    path = parts.path.rstrip("/").removesuffix("/rpc")
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def page_url(host: str, port: int) -> str:
    """The URL a browser on this machine opens for a server bound to host:port."""
    shown = "127.0.0.1" if host in _ANY_HOST else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


@dataclass(frozen=True, slots=True)
class NodeCheck:
    """What the node said to the console's origin."""

    ok: bool
    """True if the node answered the preflight for `origin` (the console can read it)."""
    line: str
    """One line for the user: all is well, or what to change."""


async def check_node(node: str, origin: str, genesis_hash: str | None) -> NodeCheck:
    """Ask `node` as a browser at `origin` would: the CORS preflight of POST /rpc, then
    `sec_status`; and compare the genesis it runs with a pinned `genesis_hash` (hex)."""
    timeout = aiohttp.ClientTimeout(total=CHECK_TIMEOUT_S)
    preflight = {
        hdrs.ORIGIN: origin,
        hdrs.ACCESS_CONTROL_REQUEST_METHOD: "POST",
        hdrs.ACCESS_CONTROL_REQUEST_HEADERS: "content-type",
    }
    call = {"jsonrpc": "2.0", "id": 1, "method": "sec_status"}
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.options(node + "/rpc", headers=preflight) as answer:
                allowed = answer.headers.get(hdrs.ACCESS_CONTROL_ALLOW_ORIGIN)
                if answer.status >= 300 or allowed not in (origin, "*"):
                    return NodeCheck(
                        False,
                        f"hint: node {node} does not let pages from {origin} read it; add to "
                        f'the [rpc] table of its config.toml: cors_origins = ["{origin}"] '
                        "(then restart it)",
                    )
            headers = {hdrs.ORIGIN: origin}
            async with session.post(node + "/rpc", json=call, headers=headers) as answer:
                status = json.loads(await _read_capped(answer))["result"]
            chain, running = str(status["chain_id"]), str(status["genesis_hash"])
            if not _HASH.fullmatch(running):  # printed as is: no terminal escapes from a node
                raise ValueError("genesis_hash is not 32 bytes of hex")
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        reason = _unreachable_reason(exc)
        return NodeCheck(
            False, f"hint: node {node} is unreachable ({reason}); is it running, at this URL?"
        )
    except (ValueError, LookupError, TypeError):
        return NodeCheck(False, f"hint: {node} did not answer sec_status: is this a SEC node?")
    if genesis_hash is not None and running != genesis_hash:
        return NodeCheck(
            False,
            f"hint: node {node} runs chain {chain!r} with genesis hash {running}, not the "
            f"--genesis file's {genesis_hash}: the console will refuse what it shows",
        )
    return NodeCheck(True, f"node {node} (chain {chain!r}) lets this console read it")


async def _read_capped(answer: aiohttp.ClientResponse) -> bytes:
    body = b""
    while len(body) <= MAX_STATUS_BYTES and (
        chunk := await answer.content.read(MAX_STATUS_BYTES + 1 - len(body))
    ):
        body += chunk
    if len(body) > MAX_STATUS_BYTES:
        raise ValueError("over the size of a sec_status answer")
    return body


def _unreachable_reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {CHECK_TIMEOUT_S:g} s"
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, ConnectionRefusedError):
            return "connection refused"
        return exc.os_error.strerror or str(exc.os_error)
    return str(exc) or type(exc).__name__


@asynccontextmanager
async def console_server(
    settings: ConsoleSettings, host: str, port: int, bundle: Path = STATIC_DIR
) -> AsyncIterator[int]:
    """Serve the bundle with `settings` on host:port (0: any free port) while the block runs;
    yields the bound port. ConsoleError if the bundle cannot be read or the address bound."""
    app = web.Application()
    add_console_routes(app, load_bundle(bundle), settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise ConsoleError(
                f"--listen {host}:{port}: {reason}; choose another with --listen HOST:PORT"
            ) from None
        bound: int = runner.addresses[0][1]
        yield bound
    finally:
        await runner.cleanup()
