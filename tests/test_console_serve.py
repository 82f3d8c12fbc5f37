"""Serving the web console: the bundle and config.json on a node and under `sec console`, the
paths that must not reach the disk, CORS on /rpc and /health, the Origin rule of /ws, and the
testnet's console default. Real aiohttp servers on 127.0.0.1:0; `sec console` as a real
subprocess once."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDictProxy

import secnode.console.bundle as bundle_module
from cli import main as sec_main
from ledger.genesis import load_genesis, parse_genesis
from secnode.console import LOCAL_ORIGINS, STATIC_DIR
from secnode.console.bundle import (
    ConsoleError,
    ConsoleSettings,
    content_security_policy,
    load_bundle,
)
from secnode.console.local import check_node, console_server, node_base_url
from secnode.network.home import enable_console
from secnode.network.testnet import Supervisor, _print_banner, prepare
from secnode.runtime.config import ConfigError, RPCSection, load_config, parse_config
from secnode.runtime.rpc.cors import same_origin
from secnode.runtime.rpc.server import RpcConfig, start_rpc_server
from tests.e2e_cluster import free_port_base, wait_until
from tests.rpc_node import Served, serve

ROOT = Path(__file__).resolve().parents[1]
INDEX = b"<!doctype html><title>SEC console</title><script type=module src=js/app.js></script>"
APP_JS = b"import { x } from './lib/x.js';\nexport const app = x;\n" * 40
SECRET = b"do not serve me"


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    """A bundle directory beside a secret file, with entries that must not be served."""
    (tmp_path / "secret.txt").write_bytes(SECRET)
    root = tmp_path / "static"
    (root / "js" / "lib").mkdir(parents=True)
    (root / "index.html").write_bytes(INDEX)
    (root / "js" / "app.js").write_bytes(APP_JS)
    (root / "js" / "lib" / "x.js").write_bytes(b"export const x = 1;\n")
    (root / "console.css").write_bytes(b"body { margin: 0 }\n")
    (root / ".hidden.js").write_bytes(SECRET)
    (root / "notes.py").write_bytes(SECRET)
    (root / "config.json").write_bytes(b'{"node": "http://evil.example"}')
    os.symlink(tmp_path / "secret.txt", root / "leak.txt")
    os.symlink(tmp_path, root / "up")
    os.symlink(root / "js" / "lib" / "x.js", root / "alias.js")
    return root


async def _get(
    served: Served, path: str, **headers: str
) -> tuple[int, CIMultiDictProxy[str], bytes]:
    async with served.session.get(served.url + path, headers=headers) as response:
        return response.status, response.headers, await response.read()


async def _raw_get(port: int, target: str) -> tuple[int, bytes]:
    """GET with the request target exactly as given (no client-side normalization)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    answer = await reader.read()
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def _console_config(root: Path, *origins: str) -> RpcConfig:
    return RpcConfig(console=True, console_dir=root, cors_origins=origins)


# --- the bundle on a node ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_index_is_served_at_root_with_a_strict_csp(bundle: Path) -> None:
    async with serve(_console_config(bundle)) as served:
        status, headers, body = await _get(served, "/")
        assert (status, body) == (200, INDEX)
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        assert headers["X-Content-Type-Options"] == "nosniff"
        policy = [part.strip() for part in headers["Content-Security-Policy"].split(";")]
        port = served.url.rsplit(":", 1)[1]
        assert "default-src 'self'" in policy
        assert "script-src 'self'" in policy  # no 'unsafe-inline': no inline script runs
        assert f"connect-src 'self' ws://127.0.0.1:{port} wss://127.0.0.1:{port}" in policy
        assert "frame-ancestors 'none'" in policy
        status, headers, body = await _get(served, "/index.html")
        assert (status, body) == (200, INDEX)


@pytest.mark.asyncio
async def test_modules_are_served_as_javascript_and_revalidated(bundle: Path) -> None:
    async with serve(_console_config(bundle)) as served:
        status, headers, body = await _get(served, "/js/app.js", **{"Accept-Encoding": "identity"})
        assert (status, body) == (200, APP_JS)
        assert headers["Content-Type"] == "text/javascript; charset=utf-8"
        assert headers["Cache-Control"] == "no-cache"
        assert "Content-Security-Policy" not in headers
        etag = headers["ETag"]
        status, _, body = await _get(served, "/js/app.js", **{"If-None-Match": etag})
        assert (status, body) == (304, b"")
        status, headers, _ = await _get(served, "/console.css")
        assert (status, headers["Content-Type"]) == (200, "text/css; charset=utf-8")
        status, _, body = await _get(served, "/alias.js")  # a symlink inside the bundle
        assert (status, body) == (200, b"export const x = 1;\n")


@pytest.mark.asyncio
async def test_text_is_sent_gzipped_to_clients_that_accept_it(bundle: Path) -> None:
    async with (
        serve(_console_config(bundle)) as served,
        served.session.get(
            served.url + "/js/app.js", headers={"Accept-Encoding": "gzip"}, auto_decompress=False
        ) as response,
    ):
        raw = await response.read()
        assert response.headers["Content-Encoding"] == "gzip"
        assert response.headers["Vary"] == "Accept-Encoding"
        assert len(raw) < len(APP_JS)
        assert gzip.decompress(raw) == APP_JS


@pytest.mark.parametrize(
    "target",
    [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/js/../../secret.txt",
        "/js/%2e%2e/%2e%2e/secret.txt",
        "/js%2f..%2f..%2fsecret.txt",
        "/..%5csecret.txt",
        "//etc/passwd",
        "/etc/passwd",
        "/leak.txt",  # a symlink out of the bundle
        "/up/secret.txt",  # through a symlinked directory
        "/up/static/index.html",
        "/.hidden.js",
        "/notes.py",
        "/js/",  # no directory listing
        "/js",
        "/static/index.html",
    ],
)
@pytest.mark.asyncio
async def test_invalid_paths_outside_the_bundle_are_404(bundle: Path, target: str) -> None:
    async with serve(_console_config(bundle)) as served:
        status, body = await _raw_get(int(served.url.rsplit(":", 1)[1]), target)
        assert SECRET not in body
        assert status == 404, (target, status, body[:200])


@pytest.mark.asyncio
async def test_an_absolute_path_on_disk_is_404(bundle: Path) -> None:
    async with serve(_console_config(bundle)) as served:
        port = int(served.url.rsplit(":", 1)[1])
        for target in (str(bundle.parent / "secret.txt"), str(bundle / "index.html")):
            status, body = await _raw_get(port, target)
            assert (status, SECRET in body) == (404, False), target


@pytest.mark.asyncio
async def test_config_json_on_a_node_is_its_own_genesis(bundle: Path) -> None:
    async with serve(_console_config(bundle)) as served:
        status, headers, body = await _get(served, "/config.json")
        assert status == 200
        assert headers["Content-Type"] == "application/json"
        assert headers["Cache-Control"] == "no-store"
        document = json.loads(body)  # the generated one, never the bundle's stray file
        genesis = served.node.genesis
        assert document == {
            "node": "",
            "genesis": genesis.model_dump(mode="json"),
            "pinned": False,
        }
        # The document as sent hashes to the chain's genesis hash (what the verifier checks).
        assert parse_genesis(document["genesis"]).document_hash() == genesis.document_hash()


def test_the_console_keys_are_documented_with_their_defaults() -> None:
    operations = (ROOT / "docs" / "operations.md").read_text()
    assert "| `console` | `false` |" in operations
    assert "| `cors_origins` | `[]` |" in operations
    assert "## Web console" in operations


@pytest.mark.asyncio
async def test_console_is_off_by_default_on_a_node() -> None:
    assert RPCSection().console is False
    assert RPCSection().cors_origins == []
    async with serve() as served:
        for path in ("/", "/index.html", "/config.json"):
            status, _, _ = await _get(served, path)
            assert status == 404, path
        # The node's own routes are unchanged.
        assert await served.result("sec_status")
        status, _, _ = await _get(served, "/health")
        assert status == 200


@pytest.mark.asyncio
async def test_node_routes_keep_working_with_the_console_on(bundle: Path) -> None:
    async with serve(_console_config(bundle)) as served:
        assert (await served.result("sec_status"))["chain_id"] == served.node.genesis.chain_id
        for path, status_wanted in (("/health", 200), ("/metrics", 200), ("/rpc", 405)):
            status, _, _ = await _get(served, path)
            assert status == status_wanted, path
        async with served.session.ws_connect(served.url + "/ws") as socket_:
            await socket_.send_json({"jsonrpc": "2.0", "id": 1, "method": "sec_status"})
            assert "result" in await socket_.receive_json()


@pytest.mark.parametrize(
    ("node", "host", "connect"),
    [
        ("", "127.0.0.1:8545", "'self' ws://127.0.0.1:8545 wss://127.0.0.1:8545"),
        ("", "bad host\r\nX: y", "'self'"),  # a Host that is not host[:port] adds nothing
        (
            "http://127.0.0.1:8545",
            "127.0.0.1:8080",
            "'self' http://127.0.0.1:8545 ws://127.0.0.1:8545",
        ),
        (
            "https://node.example/sec",
            "127.0.0.1:8080",
            "'self' https://node.example wss://node.example",
        ),
    ],
)
def test_csp_connects_only_to_the_node(node: str, host: str, connect: str) -> None:
    policy = content_security_policy(ConsoleSettings(node, None, False), host)
    assert f"connect-src {connect};" in policy


def test_invalid_bundles_are_refused_at_start(
    bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConsoleError, match="is not a directory"):
        load_bundle(tmp_path / "missing")
    monkeypatch.setattr(bundle_module, "MAX_FILES", 2)
    with pytest.raises(ConsoleError, match="more than 2 files"):
        load_bundle(bundle)
    monkeypatch.setattr(bundle_module, "MAX_FILES", 100)
    monkeypatch.setattr(bundle_module, "MAX_TOTAL_BYTES", len(APP_JS))
    with pytest.raises(ConsoleError, match=f"over {len(APP_JS)} bytes"):
        load_bundle(bundle)


def test_every_file_of_the_shipped_bundle_is_served() -> None:
    """A file pages add with an unknown extension or an odd name would be skipped silently."""
    shipped = {
        path.relative_to(STATIC_DIR).as_posix()
        for path in STATIC_DIR.rglob("*")
        if path.is_file() and not path.name.startswith(".")
    }
    assets = load_bundle(STATIC_DIR)
    assert set(assets) == shipped
    for path, asset in assets.items():
        if asset.content_type.startswith("text/html"):
            assert b"<script>" not in asset.body, path  # the CSP blocks inline script


# --- CORS on /rpc and /health ------------------------------------------------------------------

ALLOWED = "http://127.0.0.1:8080"
STATUS_CALL = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "sec_status"})


async def _preflight(served: Served, origin: str) -> tuple[int, CIMultiDictProxy[str]]:
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    async with served.session.options(served.url + "/rpc", headers=headers) as response:
        return response.status, response.headers


async def _post(served: Served, origin: str) -> CIMultiDictProxy[str]:
    headers = {"Origin": origin, "Content-Type": "application/json"}
    async with served.session.post(served.url + "/rpc", data=STATUS_CALL, headers=headers) as r:
        assert r.status == 200
        return r.headers


@pytest.mark.asyncio
async def test_cors_for_an_allowed_origin() -> None:
    async with serve(RpcConfig(cors_origins=(ALLOWED,))) as served:
        status, headers = await _preflight(served, ALLOWED)
        assert status == 204
        assert headers["Access-Control-Allow-Origin"] == ALLOWED
        assert headers["Access-Control-Allow-Methods"] == "POST"
        assert headers["Access-Control-Allow-Headers"] == "Content-Type"
        headers = await _post(served, ALLOWED)
        assert headers["Access-Control-Allow-Origin"] == ALLOWED
        assert "Origin" in headers.getall("Vary")
        status, headers, _ = await _get(served, "/health", Origin=ALLOWED)
        assert (status, headers["Access-Control-Allow-Origin"]) == (200, ALLOWED)


@pytest.mark.asyncio
async def test_cors_refuses_other_origins() -> None:
    async with serve(RpcConfig(cors_origins=(ALLOWED,))) as served:
        for origin in ("http://localhost:8080", "http://127.0.0.1:8081", "https://127.0.0.1:8080"):
            status, headers = await _preflight(served, origin)
            assert status == 403
            assert "Access-Control-Allow-Origin" not in headers
            assert "Access-Control-Allow-Origin" not in await _post(served, origin)


@pytest.mark.asyncio
async def test_without_cors_origins_no_cors_headers_as_before() -> None:
    async with serve() as served:
        status, headers = await _preflight(served, ALLOWED)
        assert (status, "Access-Control-Allow-Origin" in headers) == (403, False)
        headers = await _post(served, ALLOWED)
        assert "Access-Control-Allow-Origin" not in headers
        assert "Vary" not in headers


@pytest.mark.asyncio
async def test_cors_star_allows_any_origin() -> None:
    async with serve(RpcConfig(cors_origins=("*",))) as served:
        origin = "https://console.example.org"
        status, headers = await _preflight(served, origin)
        assert (status, headers["Access-Control-Allow-Origin"]) == (204, origin)
        assert (await _post(served, origin))["Access-Control-Allow-Origin"] == origin


@pytest.mark.asyncio
async def test_refusals_carry_cors_headers_so_the_page_can_read_them() -> None:
    config = RpcConfig(cors_origins=(ALLOWED,), max_body_bytes=1024)
    async with serve(config) as served:
        headers = {"Origin": ALLOWED, "Content-Type": "application/json"}
        async with served.session.post(
            served.url + "/rpc", data=b"[" + b" " * 4096 + b"]", headers=headers
        ) as response:
            assert response.status == 413
            assert response.headers["Access-Control-Allow-Origin"] == ALLOWED


@pytest.mark.parametrize(
    "origin",
    [
        "http://127.0.0.1:8080/",
        "HTTP://127.0.0.1:8080",
        "http://Example.org",
        "http://example.org:80",
        "https://example.org:443",
        "http://example.org/path",
        "ftp://example.org",
        "null",
        "127.0.0.1:8080",
    ],
)
def test_invalid_cors_origin_in_config_is_refused(origin: str) -> None:
    with pytest.raises(ConfigError, match="cors_origins"):
        parse_config({"name": "n", "rpc": {"cors_origins": [origin]}}, "config.toml")


def test_valid_cors_origins_are_kept_as_written() -> None:
    origins = ["*", "http://127.0.0.1:8080", "https://console.example.org", "http://[::1]:8080"]
    assert parse_config({"name": "n", "rpc": {"cors_origins": origins}}, "c").rpc.cors_origins == (
        origins
    )


@pytest.mark.parametrize(
    ("origin", "host", "same"),
    [
        ("http://127.0.0.1:8545", "127.0.0.1:8545", True),
        ("http://node.example", "node.example:80", True),
        ("https://node.example", "node.example", True),  # behind a TLS proxy that keeps Host
        ("http://localhost:8545", "127.0.0.1:8545", False),
        ("http://127.0.0.1:8546", "127.0.0.1:8545", False),
        ("http://[::1]:8545", "[::1]:8545", True),
        ("null", "127.0.0.1:8545", False),
        ("ws://127.0.0.1:8545", "127.0.0.1:8545", False),
    ],
)
def test_same_origin(origin: str, host: str, same: bool) -> None:
    assert same_origin(origin, host) is same


# --- the WebSocket's Origin rule ---------------------------------------------------------------


async def _socket_status(served: Served, origin: str | None) -> int:
    headers = {} if origin is None else {"Origin": origin}
    try:
        async with served.session.ws_connect(served.url + "/ws", headers=headers) as socket_:
            await socket_.send_json({"jsonrpc": "2.0", "id": 1, "method": "sec_status"})
            assert "result" in await socket_.receive_json()
            return 101
    except aiohttp.WSServerHandshakeError as exc:
        return exc.status


@pytest.mark.asyncio
async def test_websocket_origin_rule() -> None:
    async with serve(RpcConfig(cors_origins=(ALLOWED,))) as served:
        assert await _socket_status(served, None) == 101  # the CLI sends no Origin
        assert await _socket_status(served, ALLOWED) == 101
        assert await _socket_status(served, served.url) == 101  # the console the node serves
        assert await _socket_status(served, "http://evil.example") == 403
        assert await _socket_status(served, "http://localhost:8080") == 403


@pytest.mark.asyncio
async def test_websocket_from_a_foreign_page_is_refused_even_without_cors_origins() -> None:
    async with serve() as served:
        assert await _socket_status(served, None) == 101
        assert await _socket_status(served, served.url) == 101
        assert await _socket_status(served, "http://evil.example") == 403


# --- sec console -------------------------------------------------------------------------------


def test_node_base_url_forms() -> None:
    assert node_base_url("http://127.0.0.1:8545") == "http://127.0.0.1:8545"
    assert node_base_url("http://127.0.0.1:8545/") == "http://127.0.0.1:8545"
    assert node_base_url("http://127.0.0.1:8545/rpc") == "http://127.0.0.1:8545"
    assert node_base_url("127.0.0.1:8546") == "http://127.0.0.1:8546"
    assert node_base_url("https://node.example/sec/") == "https://node.example/sec"


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        (["--node", "ftp://x"], "http:// or https://"),
        (["--node", "http://"], "names no host"),
        (["--node", "http://x:99999"], "port"),
        (["--node", "http://x/?a=1"], "query"),
        (["--listen", "8080"], "is not HOST:PORT"),
        (["--genesis", "/nonexistent/genesis.json"], "cannot read genesis file"),
    ],
)
def test_invalid_sec_console_arguments_are_one_line_errors(
    arguments: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sec_main(["console", *arguments]) == 1
    error = capsys.readouterr().err
    assert error.startswith("sec: error: ") and says in error, error
    assert error.count("\n") == 1


def test_invalid_genesis_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = json.loads((ROOT / "genesis.json").read_text())
    document["validators"] = []
    (tmp_path / "genesis.json").write_text(json.dumps(document))
    assert sec_main(["console", "--genesis", str(tmp_path / "genesis.json")]) == 1
    assert "validators" in capsys.readouterr().err


def test_invalid_busy_port_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        assert sec_main(["console", "--listen", f"127.0.0.1:{port}"]) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"sec: error: --listen 127.0.0.1:{port}: ")
    assert "choose another with --listen HOST:PORT" in error


@pytest.mark.asyncio
async def test_check_node_says_which_cors_line_to_add() -> None:
    async with serve() as served:
        check = await check_node(served.url, ALLOWED, None)
        assert not check.ok
        assert f'cors_origins = ["{ALLOWED}"]' in check.line
    async with serve(RpcConfig(cors_origins=(ALLOWED,))) as served:
        check = await check_node(served.url, ALLOWED, None)
        assert check.ok, check.line
        check = await check_node(served.url, ALLOWED, served.node.genesis.document_hash().hex())
        assert check.ok, check.line
        check = await check_node(served.url, ALLOWED, "00" * 32)
        assert not check.ok and f"not the --genesis file's {'00' * 32}" in check.line
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    check = await check_node(f"http://127.0.0.1:{port}", ALLOWED, None)
    assert not check.ok and "unreachable (connection refused)" in check.line


@pytest.mark.asyncio
async def test_invalid_health_answer_of_a_hostile_node_is_a_hint() -> None:
    async def allow(request: web.Request) -> web.Response:
        return web.Response(status=204, headers={"Access-Control-Allow-Origin": ALLOWED})

    async def huge(request: web.Request) -> web.Response:
        return web.Response(body=b"[" + b"0," * (1 << 20) + b"0]")

    app = web.Application()
    app.router.add_route("OPTIONS", "/rpc", allow)
    app.router.add_post("/rpc", huge)
    runner, port = await start_rpc_server(app, "127.0.0.1", 0)
    try:
        check = await check_node(f"http://127.0.0.1:{port}", ALLOWED, None)
    finally:
        await runner.cleanup()
    assert not check.ok and "did not answer sec_status" in check.line


@pytest.fixture
def sec_console_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    out = tmp_path / "console.out"
    with out.open("w") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "cli.py"),
                "console",
                "--node",
                "http://127.0.0.1:1/",
                "--listen",
                "127.0.0.1:0",
                "--genesis",
                str(ROOT / "genesis.json"),
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        yield process, out
    finally:
        process.terminate()
        process.wait(10)


@pytest.mark.asyncio
async def test_sec_console_serves_config_json_with_the_pinned_genesis(
    sec_console_process: tuple[subprocess.Popen[str], Path],
) -> None:
    process, out = sec_console_process
    deadline = asyncio.get_running_loop().time() + 30
    while "Ctrl-C stops it." not in out.read_text():
        assert process.poll() is None, out.read_text()
        assert asyncio.get_running_loop().time() < deadline, f"no URL in 30 s: {out.read_text()}"
        await asyncio.sleep(0.1)
    said = out.read_text()
    url = said.split("console: ", 1)[1].split("/ ", 1)[0]
    assert "node http://127.0.0.1:1 is unreachable" in said
    genesis = load_genesis(ROOT / "genesis.json")
    assert f"genesis pinned (hash {genesis.document_hash().hex()})" in said
    async with aiohttp.ClientSession() as session, session.get(url + "/config.json") as response:
        assert response.status == 200
        document = json.loads(await response.read())
    assert document == {
        "node": "http://127.0.0.1:1",
        "genesis": genesis.model_dump(mode="json"),
        "pinned": True,
    }


# --- in a real browser --------------------------------------------------------------------------

PROBE_HTML = b"""<!doctype html><meta charset=utf-8><title>probe</title>
<script>document.title = "inline ran";</script>
<p id=out>waiting</p>
<script type=module src=js/probe.js></script>
"""
PROBE_JS = b"""// What the console does first (interface A): config.json, then its node.
const out = document.getElementById("out");
const config = await (await fetch("config.json")).json();
out.dataset.node = config.node;
try {
  const reply = await fetch(`${config.node}/rpc`, {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify({jsonrpc: "2.0", id: 1, method: "sec_status"}),
  });
  out.dataset.rpc = (await reply.json()).result.chain_id;
} catch (error) {
  out.dataset.rpc = "refused";
}
const base = config.node || location.origin;
const socket = new WebSocket(base.replace(/^http/, "ws") + "/ws");
socket.onopen = () => socket.send(JSON.stringify({jsonrpc: "2.0", id: 1, method: "sec_status"}));
socket.onmessage = (event) => { out.dataset.ws = JSON.parse(event.data).result.chain_id; };
socket.onerror = () => { out.dataset.ws = "refused"; };
"""


@pytest.fixture
def probe_bundle(tmp_path: Path) -> Path:
    root = tmp_path / "probe"
    (root / "js").mkdir(parents=True)
    (root / "index.html").write_bytes(PROBE_HTML)
    (root / "js" / "probe.js").write_bytes(PROBE_JS)
    return root


def _probe(url: str) -> tuple[str, dict[str, str]]:
    """Open `url` in Chromium; the page title and what the probe module found."""
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.browserkit import browser

    with browser() as driver:
        driver.get(url)
        out = driver.find_element("id", "out")
        WebDriverWait(driver, 30).until(
            lambda _: out.get_attribute("data-rpc") and out.get_attribute("data-ws"),
            message=f"the probe did not finish on {url}",
        )
        found = {name: out.get_attribute(f"data-{name}") or "" for name in ("node", "rpc", "ws")}
        return driver.title, found


@pytest.mark.asyncio
async def test_browser_runs_the_node_served_bundle_under_its_csp(probe_bundle: Path) -> None:
    async with serve(_console_config(probe_bundle)) as served:
        title, found = await asyncio.to_thread(_probe, served.url + "/")
    chain = served.node.genesis.chain_id
    assert title == "probe"  # the inline script was blocked by the CSP
    assert found == {"node": "", "rpc": chain, "ws": chain}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.asyncio
@pytest.mark.parametrize("allowed", [True, False])
async def test_browser_reads_a_node_from_sec_console_only_if_the_node_allows_it(
    probe_bundle: Path, allowed: bool
) -> None:
    port = _free_port()  # the console's origin must be known before the node starts
    origins = (f"http://127.0.0.1:{port}",) if allowed else ("http://localhost:" + str(port),)
    async with serve(RpcConfig(cors_origins=origins)) as node:
        settings = ConsoleSettings(node.url, None, False)
        async with console_server(settings, "127.0.0.1", port, probe_bundle):
            title, found = await asyncio.to_thread(_probe, f"http://127.0.0.1:{port}/")
    wanted = node.node.genesis.chain_id if allowed else "refused"
    assert (title, found) == ("probe", {"node": node.url, "rpc": wanted, "ws": wanted})


# --- sec testnet's default ---------------------------------------------------------------------


def test_testnet_homes_serve_the_console_and_allow_sec_console(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    homes = prepare(tmp_path / "net", 4, p2p_base=40000, rpc_base=41000)
    for home in homes:
        rpc = load_config(home).rpc
        assert rpc.console is True
        assert tuple(rpc.cors_origins) == LOCAL_ORIGINS
    supervisor = Supervisor(tmp_path / "net", homes, False, sys.stderr)
    _print_banner(tmp_path / "net", 4, "sec-dev", supervisor)
    assert "console: http://127.0.0.1:41000/\n" in capsys.readouterr().out


def test_an_older_testnet_home_gets_the_console_an_explicit_choice_is_kept(tmp_path: Path) -> None:
    homes = prepare(tmp_path / "net", 2, p2p_base=40000, rpc_base=41000)
    old, chosen = homes
    for home, rpc_lines in ((old, ""), (chosen, "console = false\n")):
        path = home / "config.toml"
        document = tomllib.loads(path.read_text())
        kept = [line for line in path.read_text().splitlines() if "console" not in line]
        kept = [line for line in kept if "cors_origins" not in line]
        text = "\n".join(kept) + "\n"
        path.write_text(text.replace("[rpc]\n", "[rpc]\n" + rpc_lines))
        assert document["rpc"]["console"] is True
    assert load_config(old).rpc.console is False  # as written before the console existed
    prepare(tmp_path / "net", 2)
    assert load_config(old).rpc.console is True
    assert tuple(load_config(old).rpc.cors_origins) == LOCAL_ORIGINS
    assert load_config(chosen).rpc.console is False
    assert tuple(load_config(chosen).rpc.cors_origins) == LOCAL_ORIGINS
    assert enable_console(old) is False  # nothing left to add: the file is not rewritten


def test_sec_genesis_new_homes_keep_the_console_off(tmp_path: Path) -> None:
    assert sec_main(["genesis", "new", "--validators", "1", "--out", str(tmp_path / "n")]) == 0
    rpc = load_config(tmp_path / "n" / "node0").rpc
    assert (rpc.console, rpc.cors_origins) == (False, [])


@pytest.mark.slow
def test_sec_testnet_node_serves_the_console_it_prints(tmp_path: Path) -> None:
    """The real path: `sec testnet` writes the config, `sec node start` reads it and serves."""
    base = free_port_base(2)
    out = tmp_path / "testnet.out"
    arguments = ["testnet", "--nodes", "1", "--dir", str(tmp_path / "net")]
    arguments += ["--p2p-port-base", str(base), "--rpc-port-base", str(base + 1)]
    with out.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "cli.py"), *arguments],
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    url = f"http://127.0.0.1:{base + 1}/"

    def config_json() -> dict[str, object] | None:
        try:
            with urllib.request.urlopen(url + "config.json", timeout=2) as answer:
                document: dict[str, object] = json.loads(answer.read())
                return document
        except OSError:
            return None

    try:
        document = wait_until(config_json, 60, "config.json from the testnet node", out.read_text)
        assert f"console: {url}\n" in out.read_text()
        genesis = load_genesis(tmp_path / "net" / "genesis.json")
        assert document == {"node": "", "genesis": genesis.model_dump(mode="json"), "pinned": False}
        preflight = urllib.request.Request(
            url + "rpc",
            method="OPTIONS",
            headers={"Origin": LOCAL_ORIGINS[1], "Access-Control-Request-Method": "POST"},
        )
        with urllib.request.urlopen(preflight, timeout=5) as answer:
            assert answer.headers["Access-Control-Allow-Origin"] == LOCAL_ORIGINS[1]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
