"""The HTTP face of a node: POST /rpc (JSON-RPC 2.0), GET /ws (JSON-RPC over WebSocket, with
subscriptions: secnode.runtime.rpc.subscriptions), GET /health, GET /metrics, and with
`[rpc] console = true` the web console's bundle at `/` (secnode.console.bundle). Which browser
pages may read the node: secnode.runtime.rpc.cors (CORS on /rpc and /health, the Origin rule
of /ws).

`make_app` wires a `Dispatcher` over the method table of a `NodeView` into an aiohttp app;
`start_rpc_server` binds it. HTTP statuses: 200 with a JSON-RPC body for every call or batch
that has a response (JSON-RPC errors included), 204 when there is nothing to answer (only
notifications), 413 with a JSON-RPC `too_large` error body when the body exceeds the cap, 429
with a `rate_limited` error body and a Retry-After header when the client (keyed by its
credential's identity, else its remote IP)
has spent its cost units (secnode.runtime.rpc.ratelimit; docs/rpc.md "Budgets and rate limits"),
401 / 403 with an `unauthorized` / `forbidden` error body when a single call to a restricted
method lacks a credential that opens it (secnode.runtime.rpc.auth; a batch answers 200 with the
error in its entry), 403 for a Host not in `allowed_hosts` or a cross-site simple POST
(secnode.runtime.rpc.hosts). TLS (and mutual TLS) is the `ssl_context` of `start_rpc_server`
(secnode.tls); the same app serves http and https.

Invariants: a body is never buffered beyond `max_body_bytes` + one read chunk (the declared
Content-Length is checked first, then the (decompressed) stream is counted while read; aiohttp
drains the rest of an oversized body for at most its lingering time after answering, then
closes the connection); nothing a client sends yields a 500 (the dispatcher answers every
failure with a JSON-RPC error).
"""

from __future__ import annotations

import logging
import math
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import aiohttp
from aiohttp import web

from secnode.console import STATIC_DIR
from secnode.console.bundle import ConsoleSettings, add_console_routes, load_bundle
from secnode.runtime.metrics import CONTENT_TYPE, Metrics
from secnode.runtime.rpc.auth import (
    AccessPolicy,
    AuthenticationFailed,
    Grant,
    TokenTable,
    check_restricted,
)
from secnode.runtime.rpc.budget import (
    DEFAULT_MAX_REPLY_BYTES,
    DEFAULT_MAX_REQUEST_COST,
    DEFAULT_RPC_SHARE,
    DEFAULT_WORKER_THREADS,
    DutyCycle,
    Turnstile,
    Worker,
)
from secnode.runtime.rpc.cors import CorsPolicy
from secnode.runtime.rpc.errors import UNAUTHORIZED, RpcError
from secnode.runtime.rpc.hosts import LOOPBACK_NAMES, HostPolicy, guarded
from secnode.runtime.rpc.jsonrpc import Dispatcher, Limits, encode_json, error_response
from secnode.runtime.rpc.methods import DEFAULT_MAX_COMMIT_WAITERS, method_table
from secnode.runtime.rpc.ratelimit import DEFAULT_BURST, DEFAULT_RATE_PER_S, RateLimit, RateLimiter
from secnode.runtime.rpc.subscriptions import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_PER_CONNECTION,
    DEFAULT_QUEUE_SIZE,
    SUBSCRIPTION_METHODS,
    SubscriptionHub,
    SubscriptionLimits,
    serve_socket,
)
from secnode.runtime.rpc.view import NodeView

log = logging.getLogger("secnode.rpc")

DEFAULT_RPC_PORT: Final = 8545
"""RPC port of node0 in the local testnet; node i uses DEFAULT_RPC_PORT + i."""
_READ_CHUNK: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class RpcConfig:
    """Caps of the RPC server (documented defaults, docs/rpc.md)."""

    max_body_bytes: int = 2 * 1024 * 1024
    """Largest request body in bytes."""
    max_batch_size: int = 100
    """Most calls in one batch."""
    max_commit_waiters: int = DEFAULT_MAX_COMMIT_WAITERS
    """Most sec_sendTransaction calls waiting for commit at once (then `busy`)."""
    max_request_cost: int = DEFAULT_MAX_REQUEST_COST
    """Most cost units one call or batch may need (then `over_budget`)."""
    max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES
    """Largest response body (then `over_budget` for the call that would pass it)."""
    rate_limit_per_s: float = DEFAULT_RATE_PER_S
    """Cost units each client (remote IP) earns per second; 0 disables the limit."""
    rate_limit_burst: float = DEFAULT_BURST
    """Cost units a client may spend at once."""
    worker_threads: int = DEFAULT_WORKER_THREADS
    """Threads that serialize heavy replies (full blocks) off the event loop."""
    rpc_share: float = DEFAULT_RPC_SHARE
    """Most of the event loop's time (and of the worker thread's) RPC reads may take."""
    max_ws_connections: int = DEFAULT_MAX_CONNECTIONS
    """Most WebSocket connections (GET /ws) open at once."""
    max_subscriptions: int = DEFAULT_MAX_PER_CONNECTION
    """Most subscriptions one WebSocket connection may hold."""
    subscriber_queue: int = DEFAULT_QUEUE_SIZE
    """Most messages waiting for one WebSocket client; one more drops the client."""
    console: bool = False
    """Serve the web console at `/` (off by default: a validator serves no pages)."""
    console_dir: Path = STATIC_DIR
    """Where the console's bundle is read from (once, at start)."""
    cors_origins: tuple[str, ...] = ()
    """Origins whose pages may read /rpc and /health and open /ws (secnode.runtime.rpc.cors)."""
    allowed_hosts: tuple[str, ...] = LOOPBACK_NAMES
    """Host names requests may be addressed to; IP literals always pass (rpc.hosts)."""
    restricted_methods: tuple[str, ...] = ()
    """Methods only a bearer token or a client certificate opens (secnode.runtime.rpc.auth)."""
    tokens: TokenTable | None = None
    """The bearer tokens of `[rpc] auth_tokens_file` (None: bearer tokens are refused)."""


SUBSCRIPTIONS: Final = web.AppKey("subscriptions", SubscriptionHub)
"""The app's `SubscriptionHub`: the node publishes committed blocks to it."""


async def _read_capped(request: web.Request, cap: int) -> bytes | int:
    """The body, or its (at least partial) size if it exceeds `cap`."""
    declared = request.content_length
    if declared is not None and declared > cap:
        return declared
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(_READ_CHUNK):
        size += len(chunk)
        if size > cap:
            return size
        chunks.append(chunk)
    return b"".join(chunks)


def make_app(view: NodeView, metrics: Metrics, config: RpcConfig | None = None) -> web.Application:
    """The node's HTTP application (routes in the module docstring); its subscription hub is
    `app[SUBSCRIPTIONS]`. ConsoleError if the console is on and its bundle cannot be read."""
    config = config or RpcConfig()
    cors = CorsPolicy.of(config.cors_origins)
    hosts = HostPolicy.of(config.allowed_hosts)
    hub = SubscriptionHub(
        view,
        SubscriptionLimits(
            config.max_ws_connections, config.max_subscriptions, config.subscriber_queue
        ),
    )
    worker = Worker(config.worker_threads, DutyCycle(config.rpc_share, work_clock=time.thread_time))
    methods = method_table(view, config.max_commit_waiters, worker)
    access = AccessPolicy(
        check_restricted(config.restricted_methods, [*methods, *SUBSCRIPTION_METHODS]),
        config.tokens,
    )
    dispatcher = Dispatcher(
        methods,
        Limits(
            config.max_body_bytes,
            config.max_batch_size,
            config.max_request_cost,
            config.max_reply_bytes,
        ),
        observe=metrics.record_rpc,
        time_call=metrics.observe_rpc_duration,
        limiter=RateLimiter(RateLimit(config.rate_limit_per_s, config.rate_limit_burst)),
        worker=worker,
        turnstile=Turnstile(DutyCycle(config.rpc_share, work_clock=time.thread_time)),
        restricted=access.restricted,
    )

    def authenticate(request: web.Request) -> Grant | web.Response:
        """The request's grant, or the 401 that refuses its invalid credential."""
        peercert = request.transport.get_extra_info("peercert") if request.transport else None
        try:
            return access.authenticate(request.headers.get(aiohttp.hdrs.AUTHORIZATION), peercert)
        except AuthenticationFailed as exc:
            metrics.record_rpc("none", UNAUTHORIZED.name)
            error = RpcError(UNAUTHORIZED, f"{exc}; send a valid token or none", None)
            return web.Response(
                status=401,
                body=encode_json(error_response(error)),
                content_type="application/json",
                headers={"WWW-Authenticate": 'Bearer realm="sec", error="invalid_token"'},
            )

    async def rpc(request: web.Request) -> web.Response:
        try:
            body = await _read_capped(request, config.max_body_bytes)
        except (ConnectionResetError, web.HTTPException, aiohttp.ClientPayloadError) as exc:
            # The client hung up or sent a broken body: nobody to answer, nothing to log loudly.
            log.info("RPC request body unreadable: %s", exc)
            raise web.HTTPBadRequest(text="unreadable request body") from None
        if isinstance(body, int):
            refusal = web.Response(
                status=413, body=dispatcher.oversized(body), content_type="application/json"
            )
            refusal.force_close()  # aiohttp drains the rest (bounded in time), then hangs up
            return refusal
        grant = authenticate(request)
        if isinstance(grant, web.Response):
            return grant
        reply = await dispatcher.respond(body, grant.rate_key(request.remote or "unknown"), grant)
        if reply.denied is not None:
            unauthenticated = reply.denied == UNAUTHORIZED.name
            return web.Response(
                status=401 if unauthenticated else 403,
                body=reply.body,
                content_type="application/json",
                headers={"WWW-Authenticate": 'Bearer realm="sec"'} if unauthenticated else None,
            )
        if reply.retry_after_s is not None:
            retry_after = str(max(1, math.ceil(reply.retry_after_s)))
            return web.Response(
                status=429,
                body=reply.body,
                content_type="application/json",
                headers={"Retry-After": retry_after},
            )
        if reply.body is None:
            return web.Response(status=204)
        return web.Response(body=reply.body, content_type="application/json")

    async def websocket(request: web.Request) -> web.WebSocketResponse:
        if not cors.allows_socket(request):
            raise web.HTTPForbidden(
                text=f"WebSocket from origin {request.headers.get('Origin')} refused: not this "
                "node's own origin and not in [rpc] cors_origins of its config.toml\n"
            )
        grant = authenticate(request)
        if isinstance(grant, web.Response):
            raise web.HTTPUnauthorized(
                text="WebSocket refused: the Authorization header carries a token this node "
                "does not accept\n",
                headers={"WWW-Authenticate": 'Bearer realm="sec", error="invalid_token"'},
            )
        client = grant.rate_key(request.remote or "unknown")

        async def respond(body: bytes) -> bytes | None:
            return (await dispatcher.respond(body, client, grant)).body

        def refuse(method: str) -> RpcError | None:
            return grant.refusal(method, access.restricted)

        return await serve_socket(request, hub, respond, config.max_body_bytes, refuse)

    async def health(request: web.Request) -> web.Response:
        status = view.status()
        document = {
            "status": "syncing" if status.syncing else "ok",
            "chain_id": view.genesis.chain_id,
            "node_name": status.node_name,
            "height": status.height,
            "head_time_ms": status.head_time_ms,
            "view": status.view,
            "peers": status.peers,
            "syncing": status.syncing,
            "is_validator": status.is_validator,
            "view_in_sync": status.view_in_sync,
            "group_view": status.group_view,
        }
        return web.json_response(document, status=503 if status.syncing else 200)

    async def prometheus(request: web.Request) -> web.Response:
        metrics.refresh_from_status(view.status(), len(view.mempool), view.mempool.size_bytes)
        return web.Response(body=metrics.render().encode(), headers={"Content-Type": CONTENT_TYPE})

    guard = guarded(hosts, cors)
    app = web.Application()
    app[SUBSCRIPTIONS] = hub
    app.router.add_post("/rpc", guard(rpc))
    app.router.add_get("/ws", guard(websocket))
    # Not guarded: read-only operational data that Prometheus and load balancers fetch by
    # whatever name they know the node under (node0:8545 in deploy/compose.yaml), as Geth's
    # metrics server is not under --http.vhosts.
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", prometheus)
    cors.install(app)
    if config.console:
        genesis = view.genesis.model_dump(mode="json")
        settings = ConsoleSettings(node="", genesis=genesis, pinned=False)
        add_console_routes(app, load_bundle(config.console_dir), settings)
    return app


async def start_rpc_server(
    app: web.Application, host: str, port: int, ssl_context: ssl.SSLContext | None = None
) -> tuple[web.AppRunner, int]:
    """Serve `app` on host:port (0 picks a free port), over TLS with `ssl_context`
    (secnode.tls.server_context); return the runner and the bound port.

    Stop with `await runner.cleanup()`.
    """
    # aiohttp logs every malformed request (oversized header, bad chunking) at ERROR with a
    # traceback; a hostile client could flood the node log that way. They are answered with
    # 400 regardless, so aiohttp's own server logger only speaks for real server failures.
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    address = runner.addresses[0]
    bound: int = address[1]
    return runner, bound
