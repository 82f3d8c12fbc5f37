"""The RPC endpoint in public (issue 16 part 3, docs/operations.md): TLS with a private CA,
restricted methods behind bearer tokens or client certificates over /rpc and /ws, rate limits
per authenticated identity, the Host allowlist and the cross-site simple POST guard.

Real sockets on 127.0.0.1:0 and real certificates made in the test (tests/tlskit.py)."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from secnode.cli.common import CommandError
from secnode.cli.watch import _watch, websocket_url
from secnode.client.rpc import RpcCallError, RpcClient, RpcClientError, load_credentials
from secnode.runtime.config import ConfigError, RPCSection
from secnode.runtime.metrics import Metrics
from secnode.runtime.rpc.auth import (
    AuthConfigError,
    Grant,
    TokenTable,
    hash_token,
    load_tokens,
    parse_tokens,
)
from secnode.runtime.rpc.security import load_rpc_security
from secnode.runtime.rpc.server import SUBSCRIPTIONS, RpcConfig, make_app, start_rpc_server
from secnode.tls import TlsConfigError, server_context
from tests.clikit import run_cli_main
from tests.rpc_node import RpcTestNode
from tests.tlskit import Authority, Issued

OPS_TOKEN = "ops-0123456789abcdef0123456789abcdef"
READER_TOKEN = "reader-0123456789abcdef0123456789abcd"
RESTRICTED = ("sec_status", "sec_getNetwork", "sec_subscribe")
OPEN_METHOD = "sec_getGenesis"


def _tokens() -> TokenTable:
    document = {
        "tokens": [
            {"name": "ops", "sha256": hash_token(OPS_TOKEN)},
            {"name": "reader", "sha256": hash_token(READER_TOKEN), "methods": ["sec_getNetwork"]},
        ]
    }
    return parse_tokens(document, "tokens.toml", frozenset(RESTRICTED))


def _restricted(**changes: Any) -> RpcConfig:
    settings: dict[str, Any] = {"restricted_methods": RESTRICTED, "tokens": _tokens()}
    settings.update(changes)
    return RpcConfig(**settings)


@asynccontextmanager
async def _serve(config: RpcConfig, context: ssl.SSLContext | None = None) -> AsyncIterator[str]:
    node = RpcTestNode()
    app = make_app(node, Metrics(), config)
    node.on_commit = app[SUBSCRIPTIONS].publish
    runner, port = await start_rpc_server(app, "127.0.0.1", 0, context)
    try:
        yield f"{'https' if context else 'http'}://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def _call(method: str, request_id: Any = 1) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method})


async def _post(
    url: str,
    body: str,
    *,
    context: ssl.SSLContext | None = None,
    extra: dict[str, str] | None = None,
    **headers: str,
) -> tuple[int, Any, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            url + "/rpc",
            data=body.encode(),
            headers={"Content-Type": "application/json", **headers, **(extra or {})},
            ssl=context if context is not None else True,
        ) as response,
    ):
        raw = await response.read()
        is_json = response.content_type == "application/json" and raw
        return response.status, (json.loads(raw) if is_json else raw.decode()), response.headers


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("pki")
    server_ca = Authority(directory, "server-ca")
    client_ca = Authority(directory, "client-ca")
    stranger = Authority(directory, "stranger-ca")
    return {
        "ca": server_ca.pem,
        "server": server_ca.issue("node0", server=True),
        "other_server": server_ca.issue("node1", server=True),
        "client_ca": client_ca.pem,
        "client": client_ca.issue("auditor", server=False),
        "stranger": stranger.issue("mallory", server=False),
        "dir": directory,
    }


# --- TLS ----------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_https_and_wss_with_a_private_ca(pki: dict[str, Any]) -> None:
    server: Issued = pki["server"]
    context = server_context(server.cert, server.key)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    async with _serve(RpcConfig(), context) as url:
        trusted = load_credentials(ca=str(pki["ca"]), environ={})
        client = RpcClient(url, 10.0, trusted)
        status = await asyncio.to_thread(client.call, "sec_status")
        assert status["height"] == 0
        # The CA also comes from SEC_RPC_CA
        from_env = load_credentials(environ={"SEC_RPC_CA": str(pki["ca"])})
        env_client = RpcClient(url, 10.0, from_env)
        assert (await asyncio.to_thread(env_client.call, "sec_status"))["height"] == 0
        # wss: a subscription over TLS
        assert trusted.ssl_context is not None
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(
                url.replace("https://", "wss://") + "/ws", ssl=trusted.ssl_context
            ) as socket,
        ):
            await socket.send_str(
                json.dumps(
                    {"jsonrpc": "2.0", "id": 1, "method": "sec_subscribe", "params": ["newHeads"]}
                )
            )
            reply = json.loads((await socket.receive()).data)
            assert isinstance(reply["result"], str), reply


@pytest.mark.asyncio
async def test_invalid_untrusted_certificate_says_to_pass_ca(pki: dict[str, Any]) -> None:
    server: Issued = pki["server"]
    async with _serve(RpcConfig(), server_context(server.cert, server.key)) as url:
        client = RpcClient(url, 10.0, load_credentials(environ={}))
        with pytest.raises(RpcClientError, match=r"not trusted.*--ca FILE"):
            await asyncio.to_thread(client.call, "sec_status")
        plain = RpcClient(url.replace("https://", "http://"), 10.0)
        with pytest.raises(RpcClientError):  # plain http to a TLS port is no answer
            await asyncio.to_thread(plain.call, "sec_status")


def test_invalid_tls_files_are_named_at_start(pki: dict[str, Any], tmp_path: Path) -> None:
    server: Issued = pki["server"]
    other: Issued = pki["other_server"]
    with pytest.raises(TlsConfigError, match=r"tls_cert .*missing.pem does not exist"):
        server_context(tmp_path / "missing.pem", server.key)
    with pytest.raises(TlsConfigError, match=r"tls_key .* is not the private key of tls_cert"):
        server_context(server.cert, other.key)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(TlsConfigError, match=r"not a PEM certificate"):
        server_context(garbage, server.key)
    with pytest.raises(TlsConfigError, match=r"client_ca .*garbage.pem: not PEM CA"):
        server_context(server.cert, server.key, garbage)
    # through the node's loader: a ConfigError naming the file, relative to the home
    section = RPCSection(tls_cert="missing.pem", tls_key=str(server.key))
    with pytest.raises(ConfigError, match=r"missing\.pem"):
        load_rpc_security(section, lambda name: tmp_path / name)


def test_invalid_tls_pairing_in_config() -> None:
    with pytest.raises(ValueError, match="tls_cert and tls_key must be set together"):
        RPCSection(tls_cert="cert.pem")
    with pytest.raises(ValueError, match="client_ca needs TLS"):
        RPCSection(client_ca="ca.pem")


# --- restricted methods over /rpc ---------------------------------------------------------------


@pytest.mark.asyncio
async def test_restricted_methods_need_a_token_open_ones_do_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with _serve(_restricted()) as url:
        status, body, _ = await _post(url, _call(OPEN_METHOD))
        assert status == 200 and "result" in body
        status, body, headers = await _post(url, _call("sec_status"))
        assert status == 401
        assert headers["WWW-Authenticate"].startswith("Bearer")
        assert body["error"]["code"] == -32008
        assert body["error"]["data"] == {"method": "sec_status"}
        status, body, _ = await _post(url, _call("sec_status"), Authorization=f"Bearer {OPS_TOKEN}")
        assert status == 200 and body["result"]["height"] == 0
        # a scoped token: its method yes, another restricted one 403
        reader = {"Authorization": f"Bearer {READER_TOKEN}"}
        status, body, _ = await _post(url, _call("sec_getNetwork"), extra=reader)
        assert status == 200 and "result" in body
        status, body, _ = await _post(url, _call("sec_status"), extra=reader)
        assert status == 403
        assert body["error"]["code"] == -32009
        assert body["error"]["data"] == {"method": "sec_status", "identity": "token:reader"}
        # a batch answers 200, each entry on its own
        batch = f"[{_call(OPEN_METHOD, 1)},{_call('sec_status', 2)}]"
        status, body, _ = await _post(url, batch)
        assert status == 200
        assert "result" in body[0] and body[1]["error"]["code"] == -32008
    assert OPS_TOKEN not in caplog.text and READER_TOKEN not in caplog.text


@pytest.mark.asyncio
async def test_invalid_token_is_refused_even_for_open_methods(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-token-0123456789abcdef012345"
    async with _serve(_restricted()) as url:
        for authorization in (f"Bearer {wrong}", f"bearer {wrong}", "Bearer "):
            status, body, headers = await _post(
                url, _call(OPEN_METHOD), Authorization=authorization
            )
            assert status == 401, authorization
            assert 'error="invalid_token"' in headers["WWW-Authenticate"]
            assert body["error"]["code"] == -32008 and body["id"] is None
            assert wrong not in json.dumps(body)
        # another scheme (a proxy's Basic auth) is not a credential of the node: anonymous
        basic = {"Authorization": "Basic dXNlcjpwYXNz"}
        status, _, _ = await _post(url, _call(OPEN_METHOD), extra=basic)
        assert status == 200
        status, body, _ = await _post(url, _call("sec_status"), extra=basic)
        assert (status, body["error"]["code"]) == (401, -32008)
    assert wrong not in caplog.text


@pytest.mark.asyncio
async def test_cli_client_sends_the_token(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(OPS_TOKEN + "\n")
    async with _serve(_restricted()) as url:
        anonymous = RpcClient(url, 10.0, load_credentials(environ={}))
        with pytest.raises(RpcCallError) as refused:
            await asyncio.to_thread(anonymous.call, "sec_status")
        assert refused.value.code == -32008
        for credentials in (
            load_credentials(token_file=str(token_file), environ={}),
            load_credentials(environ={"SEC_RPC_TOKEN": OPS_TOKEN}),
            load_credentials(environ={"SEC_RPC_TOKEN_FILE": str(token_file)}),
        ):
            client = RpcClient(url, 10.0, credentials)
            assert (await asyncio.to_thread(client.call, "sec_status"))["height"] == 0


def test_invalid_token_file_for_the_client(tmp_path: Path) -> None:
    with pytest.raises(RpcClientError, match="cannot read token file"):
        load_credentials(token_file=str(tmp_path / "none"), environ={})
    two = tmp_path / "two"
    two.write_text("a b\n")
    with pytest.raises(RpcClientError, match="one token on one line"):
        load_credentials(token_file=str(two), environ={})


# --- restricted methods over /ws ----------------------------------------------------------------


async def _ws_exchange(url: str, calls: list[str], **headers: str) -> list[Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url + "/ws", headers=headers) as socket,
    ):
        replies = []
        for call in calls:
            await socket.send_str(call)
            replies.append(json.loads((await socket.receive()).data))
        return replies


@pytest.mark.asyncio
async def test_restricted_methods_over_websocket() -> None:
    subscribe = json.dumps(
        {"jsonrpc": "2.0", "id": 3, "method": "sec_subscribe", "params": ["newHeads"]}
    )
    calls = [_call(OPEN_METHOD, 1), _call("sec_status", 2), subscribe]
    async with _serve(_restricted()) as url:
        anonymous = await _ws_exchange(url, calls)
        assert "result" in anonymous[0]
        assert anonymous[1]["error"]["code"] == -32008
        assert anonymous[2]["error"]["code"] == -32008 and anonymous[2]["id"] == 3
        holder = await _ws_exchange(url, calls, Authorization=f"Bearer {OPS_TOKEN}")
        assert all("result" in reply for reply in holder), holder
        reader = await _ws_exchange(url, calls, Authorization=f"Bearer {READER_TOKEN}")
        assert reader[1]["error"]["code"] == -32009
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await _ws_exchange(url, calls, Authorization="Bearer not-a-token")
        assert refused.value.status == 401


# --- mutual TLS ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_client_certificate_opens_restricted_methods(pki: dict[str, Any]) -> None:
    server: Issued = pki["server"]
    client_cert: Issued = pki["client"]
    stranger: Issued = pki["stranger"]
    context = server_context(server.cert, server.key, pki["client_ca"])
    config = RpcConfig(restricted_methods=RESTRICTED)
    async with _serve(config, context) as url:
        with_cert = load_credentials(
            ca=str(pki["ca"]),
            client_cert=str(client_cert.cert),
            client_key=str(client_cert.key),
            environ={},
        )
        assert (await asyncio.to_thread(RpcClient(url, 10.0, with_cert).call, "sec_status"))[
            "height"
        ] == 0
        without = load_credentials(ca=str(pki["ca"]), environ={})
        status, body, _ = await _post(url, _call("sec_status"), context=without.ssl_context)
        assert (status, body["error"]["code"]) == (401, -32008)
        status, body, _ = await _post(url, _call(OPEN_METHOD), context=without.ssl_context)
        assert status == 200
        foreign = load_credentials(
            ca=str(pki["ca"]),
            client_cert=str(stranger.cert),
            client_key=str(stranger.key),
            environ={},
        )
        with pytest.raises(RpcClientError):  # the handshake refuses a stranger's certificate
            await asyncio.to_thread(RpcClient(url, 10.0, foreign).call, OPEN_METHOD)


# --- rate limits per client ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_rate_limit_is_per_identity_and_reported() -> None:
    config = _restricted(rate_limit_per_s=0.01, rate_limit_burst=3)
    ops = {"Authorization": f"Bearer {OPS_TOKEN}"}
    async with _serve(config) as url:
        statuses = [(await _post(url, _call("sec_status"), extra=ops))[0] for _ in range(4)]
        assert statuses[:3] == [200, 200, 200]
        status, body, headers = await _post(url, _call("sec_status"), extra=ops)
        assert status == 429
        data = body["error"]["data"]
        assert (data["limit_per_s"], data["burst"]) == (0.01, 3)
        assert data["retry_after_s"] > 0
        assert int(headers["Retry-After"]) >= 1
        # the same IP without the token is another client with its own bucket
        status, body, _ = await _post(url, _call(OPEN_METHOD))
        assert status == 200, body


# --- Host allowlist and cross-site simple POSTs -------------------------------------------------


@pytest.mark.asyncio
async def test_invalid_host_names_are_refused() -> None:
    async with _serve(RpcConfig(allowed_hosts=("localhost", "node0.example.org"))) as url:
        port = url.rsplit(":", 1)[1]
        for host, expected in (
            (f"evil.example:{port}", 403),
            (f"localhost:{port}", 200),
            (f"NODE0.example.org:{port}", 200),
            (f"127.0.0.1:{port}", 200),
            (f"[::1]:{port}", 200),
        ):
            status, _, _ = await _post(url, _call(OPEN_METHOD), Host=host)
            assert status == expected, host
        async with aiohttp.ClientSession() as session:
            headers = {"Host": f"evil.example:{port}"}
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(url + "/ws", headers=headers)
            assert refused.value.status == 403
            # monitoring reads /health and /metrics under any name (compose: node0:8545)
            for path in ("/health", "/metrics"):
                async with session.get(url + path, headers={"Host": "node0:8545"}) as response:
                    assert response.status == 200, path
    async with _serve(RpcConfig(allowed_hosts=("*",))) as url:
        status, _, _ = await _post(url, _call(OPEN_METHOD), Host="anything.example")
        assert status == 200


@pytest.mark.asyncio
async def test_invalid_cross_site_simple_post_is_refused() -> None:
    allowed = "http://127.0.0.1:8080"
    async with _serve(RpcConfig(cors_origins=(allowed,))) as url:
        simple = {"Content-Type": "text/plain"}
        status, _, _ = await _post(
            url, _call(OPEN_METHOD), extra=simple, Origin="https://evil.example"
        )
        assert status == 403
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        status, _, _ = await _post(
            url, _call(OPEN_METHOD), extra=form, Origin="https://evil.example"
        )
        assert status == 403
        # CORS composes: an allowed origin, the node's own origin, and non-browsers pass
        status, _, headers = await _post(url, _call(OPEN_METHOD), extra=simple, Origin=allowed)
        assert (status, headers["Access-Control-Allow-Origin"]) == (200, allowed)
        status, _, _ = await _post(url, _call(OPEN_METHOD), extra=simple, Origin=url)
        assert status == 200
        status, _, _ = await _post(url, _call(OPEN_METHOD), extra=simple)
        assert status == 200


# --- configuration ------------------------------------------------------------------------------


def test_invalid_tokens_files_and_restricted_names(tmp_path: Path) -> None:
    restricted = frozenset(RESTRICTED)
    digest = hash_token(OPS_TOKEN)
    cases = [
        ({"tokens": [{"name": "a", "sha256": "xyz"}]}, "sha256"),
        ({"tokens": [{"name": "a", "sha256": digest, "extra": 1}]}, "extra"),
        (
            {"tokens": [{"name": "a", "sha256": digest}, {"name": "a", "sha256": "0" * 64}]},
            "appears twice",
        ),
        (
            {"tokens": [{"name": "a", "sha256": digest, "methods": ["sec_getGenesis"]}]},
            "not in \\[rpc\\] restricted_methods",
        ),
    ]
    for document, problem in cases:
        with pytest.raises(AuthConfigError, match=problem):
            parse_tokens(document, "tokens.toml", restricted)
    bad_toml = tmp_path / "tokens.toml"
    bad_toml.write_text("[[tokens]\n")
    section = RPCSection(restricted_methods=list(RESTRICTED), auth_tokens_file="tokens.toml")
    with pytest.raises(ConfigError, match=r"tokens\.toml is not valid TOML"):
        load_rpc_security(section, lambda name: tmp_path / name)
    with pytest.raises(AuthConfigError, match="'sec_sendTransacton', which is not a method"):
        make_app(RpcTestNode(), Metrics(), RpcConfig(restricted_methods=("sec_sendTransacton",)))


def test_default_allowed_hosts_add_the_listen_name(tmp_path: Path) -> None:
    def hosts(listen: str, extra: list[str]) -> tuple[str, ...]:
        section = RPCSection(listen=listen, allowed_hosts=extra)
        return load_rpc_security(section, lambda name: tmp_path / name).allowed_hosts

    assert hosts("127.0.0.1:8545", []) == ("localhost",)
    assert hosts("0.0.0.0:8545", ["rpc.example.org"]) == ("localhost", "rpc.example.org")
    assert hosts("node0:8545", []) == ("localhost", "node0")
    with pytest.raises(ValueError, match="not a host name"):
        RPCSection(allowed_hosts=["http://rpc.example.org"])


# --- sec rpc token ------------------------------------------------------------------------------


def test_rpc_token_command_writes_a_digest_the_node_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tokens, out = tmp_path / "tokens.toml", tmp_path / "wallet.token"
    argv = ["rpc", "token", "wallet", "--tokens-file", str(tokens), "--out", str(out)]
    status, printed, _ = run_cli_main(capsys, *argv, "--method", "sec_status")
    assert status == 0
    token = out.read_text().strip()
    assert token not in printed and token not in tokens.read_text()
    assert out.stat().st_mode & 0o777 == 0o600
    table = load_tokens(tokens, frozenset(RESTRICTED))
    assert table.grant_for(token) == Grant("token:wallet", frozenset({"sec_status"}))
    before = tokens.read_bytes()
    status, _, error = run_cli_main(capsys, *argv[:-1], str(tmp_path / "other.token"))
    assert status == 1 and "'wallet' exists already" in error
    status, _, error = run_cli_main(capsys, "rpc", "token", "ops", *argv[3:])
    assert status == 1 and "exists already" in error
    assert tokens.read_bytes() == before  # a refused command changes nothing


def test_every_rpc_setting_is_documented() -> None:
    operations = (Path(__file__).resolve().parent.parent / "docs" / "operations.md").read_text()
    for name in RPCSection.model_fields:
        assert f"| `{name}` |" in operations, name


@pytest.mark.asyncio
async def test_sec_watch_over_wss_sends_trust_and_token(
    pki: dict[str, Any], tmp_path: Path
) -> None:
    server: Issued = pki["server"]
    token_file = tmp_path / "token"
    token_file.write_text(READER_TOKEN + "\n")
    async with _serve(_restricted(), server_context(server.cert, server.key)) as url:
        wss = websocket_url(url)
        assert wss.startswith("wss://")
        heads = ["newHeads"]
        untrusted = load_credentials(environ={})
        with pytest.raises(CommandError, match=r"not trusted.*--ca FILE"):
            await _watch(wss, "heads", heads, False, untrusted)
        scoped = load_credentials(ca=str(pki["ca"]), token_file=str(token_file), environ={})
        with pytest.raises(CommandError, match="token:reader may not call sec_subscribe"):
            await _watch(wss, "heads", heads, False, scoped)
        wrong = load_credentials(ca=str(pki["ca"]), environ={"SEC_RPC_TOKEN": "not-a-token"})
        with pytest.raises(CommandError, match="refused \\(HTTP 401\\)"):
            await _watch(wss, "heads", heads, False, wrong)
