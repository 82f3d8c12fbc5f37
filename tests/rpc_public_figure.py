"""What TLS and a bearer token cost an RPC client: `python -m tests.rpc_public_figure [CALLS]`
prints calls per second of `sec_status` over one keep-alive connection for plain http, https
(certificate from a private CA made here) and https with a restricted method and a token, plus
the cost of a new TLS connection (handshake included) per call. Figures in docs/operations.md,
"The RPC endpoint in public"."""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from secnode.client.rpc import load_credentials
from secnode.runtime.metrics import Metrics
from secnode.runtime.rpc.auth import hash_token, parse_tokens
from secnode.runtime.rpc.server import RpcConfig, make_app, start_rpc_server
from secnode.tls import server_context
from tests.rpc_node import RpcTestNode
from tests.tlskit import Authority

TOKEN = "figure-token-0123456789abcdef0123456789"
BODY = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "sec_status"}).encode()


async def _rate(
    config: RpcConfig,
    server: ssl.SSLContext | None,
    client: ssl.SSLContext | None,
    headers: dict[str, str],
    calls: int,
    fresh_connections: bool = False,
) -> float:
    app = make_app(RpcTestNode(), Metrics(), config)
    runner, port = await start_rpc_server(app, "127.0.0.1", 0, server)
    url = f"{'https' if server else 'http'}://127.0.0.1:{port}/rpc"
    headers = {"Content-Type": "application/json", **headers}
    connector = aiohttp.TCPConnector(force_close=fresh_connections)
    try:
        async with aiohttp.ClientSession(connector=connector) as session:
            started = time.perf_counter()
            for _ in range(calls):
                ssl_option = client if client is not None else True
                async with session.post(url, data=BODY, headers=headers, ssl=ssl_option) as r:
                    if r.status != 200:
                        raise SystemExit(f"HTTP {r.status}: {await r.text()}")
                    await r.read()
            return calls / (time.perf_counter() - started)
    finally:
        await runner.cleanup()


async def main(calls: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        authority = Authority(Path(directory), "figure-ca")
        issued = authority.issue("node0", server=True)
        server = server_context(issued.cert, issued.key)
        client = load_credentials(ca=str(authority.pem), environ={}).ssl_context
        restricted = ("sec_status",)
        tokens = parse_tokens(
            {"tokens": [{"name": "figure", "sha256": hash_token(TOKEN)}]},
            "figure",
            frozenset(restricted),
        )
        secured = RpcConfig(restricted_methods=restricted, tokens=tokens)
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        rows = [
            ("http, keep-alive", await _rate(RpcConfig(), None, None, {}, calls)),
            ("https, keep-alive", await _rate(RpcConfig(), server, client, {}, calls)),
            ("https + token, keep-alive", await _rate(secured, server, client, bearer, calls)),
            (
                "https + token, new connection per call",
                await _rate(secured, server, client, bearer, max(1, calls // 4), True),
            ),
        ]
    print(f"sec_status calls/s, one client, {calls} calls (python {sys.version.split()[0]})")
    for name, rate in rows:
        print(f"  {name:40s} {rate:8.0f}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))
