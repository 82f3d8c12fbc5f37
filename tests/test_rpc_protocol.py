"""JSON-RPC 2.0 conformance over real HTTP: every case of the specification's examples, the caps,
and hostile bodies. Each malformed request gets a JSON-RPC error (never a 500)."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from secnode.runtime.rpc.server import RpcConfig
from tests.rpc_node import serve

SMALL = RpcConfig(max_body_bytes=4096, max_batch_size=5)


def _error_code(response: Any) -> int:
    assert isinstance(response, dict) and "error" in response, response
    code: int = response["error"]["code"]
    return code


@pytest.mark.asyncio
async def test_single_call_by_name_and_by_position() -> None:
    async with serve() as served:
        by_name = await served.call("sec_getBlock", {"height": 0}, request_id="a")
        by_position = await served.call("sec_getBlock", [0], request_id=7)
        assert by_name["id"] == "a" and by_position["id"] == 7
        assert by_name["result"] == by_position["result"]
        assert by_name["jsonrpc"] == "2.0" and "error" not in by_name


@pytest.mark.asyncio
async def test_null_id_is_answered_with_null_id() -> None:
    async with serve() as served:
        response = await served.call("sec_status", request_id=None)
        assert response["id"] is None and "result" in response


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "body",
    [
        '{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]',
        "\xff\xfe not utf-8",
        "",
        "{" * 100_000,
        '{"jsonrpc": "2.0", "method": "sec_status", "id": NaN}',
        "[1, 2",
    ],
)
async def test_invalid_parse_error(body: str) -> None:
    async with serve() as served:
        status, response = await served.post(body.encode("utf-8", "surrogateescape"))
        assert status == 200
        assert _error_code(response) == -32700 and response["id"] is None


@pytest.mark.asyncio
async def test_invalid_parse_error_garbage_bytes() -> None:
    async with serve() as served:
        status, response = await served.post(bytes(range(256)) * 4)
        assert status == 200 and _error_code(response) == -32700


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("request_object", "reply_id", "fragment"),
    [
        ({"jsonrpc": "2.0", "method": 1, "params": "bar"}, None, '"method" must be a string'),
        ({"jsonrpc": "1.0", "method": "sec_status", "id": 1}, 1, '"jsonrpc"'),
        ({"method": "sec_status", "id": 2}, 2, '"jsonrpc"'),
        ({"jsonrpc": "2.0", "method": "sec_status", "id": [1]}, None, '"id" must be'),
        ({"jsonrpc": "2.0", "method": "sec_status", "id": {"a": 1}}, None, '"id" must be'),
        ({"jsonrpc": "2.0", "method": "sec_status", "id": 1.5}, None, '"id" must be'),
        ({"jsonrpc": "2.0", "method": "sec_status", "id": True}, None, '"id" must be'),
        ({"jsonrpc": "2.0", "method": "sec_status", "params": 3, "id": 3}, 3, '"params"'),
        ({"jsonrpc": "2.0", "method": "sec_status", "params": None, "id": 4}, 4, '"params"'),
        ({"jsonrpc": "2.0", "method": "sec_status", "id": 5, "extra": 1}, 5, "unknown member"),
    ],
)
async def test_invalid_request(
    request_object: dict[str, Any], reply_id: Any, fragment: str
) -> None:
    async with serve() as served:
        status, response = await served.post(json.dumps(request_object))
        assert status == 200 and _error_code(response) == -32600
        assert response["id"] == reply_id
        assert fragment in response["error"]["message"]


@pytest.mark.asyncio
@pytest.mark.parametrize("body", ["1", '"text"', "null", "true", "[]"])
async def test_invalid_request_not_an_object(body: str) -> None:
    async with serve() as served:
        status, response = await served.post(body)
        assert status == 200 and _error_code(response) == -32600 and response["id"] is None


@pytest.mark.asyncio
async def test_invalid_batch_of_non_objects_answers_each() -> None:
    async with serve() as served:
        status, response = await served.post("[1, 2, 3]")
        assert status == 200 and isinstance(response, list) and len(response) == 3
        assert all(_error_code(r) == -32600 and r["id"] is None for r in response)


@pytest.mark.asyncio
async def test_invalid_method_not_found() -> None:
    async with serve() as served:
        response = await served.call("sec_noSuchMethod", {}, request_id="x")
        assert _error_code(response) == -32601 and response["id"] == "x"
        assert response["error"]["data"] == {"method": "sec_noSuchMethod"}
        reserved = await served.call("rpc.unknown")
        assert _error_code(reserved) == -32601


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("method", "params", "field"),
    [
        ("sec_getTransaction", {"hash": "zz"}, "hash"),
        ("sec_getTransaction", {}, "hash"),
        ("sec_getTransaction", [123], "hash"),
        ("sec_getBlock", {"height": -1}, "height"),
        ("sec_getBlock", {"height": "1"}, "height"),
        ("sec_getBlock", {"full": 1}, "full"),
        ("sec_getBlock", {"heigth": 1}, "heigth"),
        ("sec_getAccount", {"address": "sec1qqqq"}, "address"),
        ("sec_sendTransaction", {"tx": "abc"}, "tx"),
        ("sec_sendTransaction", {"tx": "00", "wait": "forever"}, "wait"),
        ("sec_sendTransaction", {"tx": "00", "timeout_s": 61}, "timeout_s"),
    ],
)
async def test_invalid_params_names_the_field(method: str, params: Any, field: str) -> None:
    async with serve() as served:
        error = await served.error(method, params)
        assert error["code"] == -32602
        assert error["data"]["errors"][0]["field"] == field
        assert f"invalid params: {field}: " in error["message"]


@pytest.mark.asyncio
async def test_invalid_params_too_many_positional() -> None:
    async with serve() as served:
        error = await served.error("sec_getTransaction", ["00" * 32, "extra"])
        assert error["code"] == -32602 and "2 positional params" in error["message"]


@pytest.mark.asyncio
async def test_batch_with_mixed_results_keeps_request_order() -> None:
    batch = [
        {"jsonrpc": "2.0", "method": "sec_getBlock", "params": [0], "id": "1"},
        {"jsonrpc": "2.0", "method": "sec_status", "params": {}},
        {"jsonrpc": "2.0", "method": "sec_getBlock", "params": {"height": 99}, "id": "2"},
        {"foo": "boo"},
        {"jsonrpc": "2.0", "method": "nope", "params": {"name": "myself"}, "id": "5"},
        {"jsonrpc": "2.0", "method": "sec_status", "id": "9"},
    ]
    async with serve() as served:
        status, response = await served.post(json.dumps(batch))
        assert status == 200 and isinstance(response, list)
        assert [r["id"] for r in response] == ["1", "2", None, "5", "9"]
        assert "result" in response[0] and "result" in response[4]
        assert [_error_code(r) for r in response[1:4]] == [-32000, -32600, -32601]


@pytest.mark.asyncio
async def test_notification_gets_no_response() -> None:
    async with serve() as served:
        status, response = await served.post('{"jsonrpc": "2.0", "method": "sec_status"}')
        assert status == 204 and response is None
        status, response = await served.post('{"jsonrpc": "2.0", "method": "no_such"}')
        assert status == 204 and response is None


@pytest.mark.asyncio
async def test_batch_of_notifications_only_is_empty() -> None:
    batch = [
        {"jsonrpc": "2.0", "method": "sec_status", "params": []},
        {"jsonrpc": "2.0", "method": "sec_getBlock", "params": {"height": 5}},
    ]
    async with serve() as served:
        status, response = await served.post(json.dumps(batch))
        assert status == 204 and response is None


@pytest.mark.asyncio
async def test_invalid_body_over_the_cap_is_413_with_a_jsonrpc_error() -> None:
    async with serve(SMALL) as served:
        body = json.dumps({"jsonrpc": "2.0", "method": "sec_status", "id": 1, "p": "x" * 5000})
        status, response = await served.post(body)
        assert status == 413 and _error_code(response) == -32003 and response["id"] is None
        assert response["error"]["data"]["limit"] == 4096
        assert "exceeds the limit of 4096 bytes" in response["error"]["message"]
        # The server still answers normally afterwards.
        assert (await served.result("sec_status"))["height"] == 0


@pytest.mark.asyncio
async def test_invalid_chunked_body_over_the_cap() -> None:
    async def chunks() -> Any:
        for _ in range(10):
            yield b" " * 1000

    async with (
        serve(SMALL) as served,
        served.session.post(served.url + "/rpc", data=chunks()) as http_response,
    ):
        assert http_response.status == 413
        assert _error_code(await http_response.json()) == -32003


@pytest.mark.asyncio
async def test_invalid_compressed_body_is_capped_after_decompression() -> None:
    bomb = gzip.compress(b" " * 1_000_000)
    assert len(bomb) < SMALL.max_body_bytes
    headers = {"Content-Encoding": "gzip"}
    async with (
        serve(SMALL) as served,
        served.session.post(served.url + "/rpc", data=bomb, headers=headers) as http_response,
    ):
        assert http_response.status == 413
        assert _error_code(await http_response.json()) == -32003


@pytest.mark.asyncio
async def test_invalid_batch_over_the_cap() -> None:
    batch = [{"jsonrpc": "2.0", "method": "sec_status", "id": i} for i in range(6)]
    async with serve(SMALL) as served:
        status, response = await served.post(json.dumps(batch))
        assert status == 200 and isinstance(response, dict)
        assert _error_code(response) == -32003 and response["error"]["data"]["limit"] == 5


@pytest.mark.asyncio
async def test_invalid_lone_surrogate_id_is_echoed_safely() -> None:
    async with serve() as served:
        body = '{"jsonrpc": "2.0", "method": "sec_status", "id": "\\ud800"}'
        status, response = await served.post(body)
        assert status == 200 and response["id"] == "\ud800"


@pytest.mark.asyncio
async def test_get_on_rpc_is_not_a_server_error() -> None:
    async with serve() as served, served.session.get(served.url + "/rpc") as response:
        assert response.status == 405
