"""GET /health, GET /metrics, rpc.discover, the metrics registry, and the documented error table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ledger.transactions import Transfer
from secnode.bench.stages import parse_exposition
from secnode.network import devnet
from secnode.runtime.metrics import Metrics
from secnode.runtime.rpc.errors import ALL_ERRORS, APPLICATION_ERRORS, MEMPOOL_REASONS
from secnode.runtime.rpc.jsonrpc import Dispatcher, Limits
from secnode.runtime.rpc.methods import method_table
from secnode.schema import models
from tests.rpc_node import RpcTestNode, serve, sign

DOCS = Path(__file__).resolve().parent.parent / "docs" / "rpc.md"
METHODS = (
    "sec_status",
    "sec_sendTransaction",
    "sec_getTransaction",
    "sec_getBlock",
    "sec_getCommit",
    "sec_getValidators",
    "sec_getAccount",
    "sec_getOrder",
    "sec_listOrders",
    "sec_getAttestations",
    "sec_getTrustScore",
    "sec_getTrustEpoch",
    "sec_getValidatorsWithProof",
    "sec_getValidatorChanges",
    "sec_getReviews",
    "sec_getGroup",
    "sec_listGroups",
    "sec_subscribe",
    "sec_unsubscribe",
    "sec_getGenesis",
    "sec_getNetwork",
    "sec_getOrderHistory",
    "sec_getTrustDistribution",
    "rpc.discover",
)


@pytest.mark.asyncio
async def test_health_reports_ok_then_syncing() -> None:
    async with serve() as served:
        async with served.session.get(served.url + "/health") as response:
            assert response.status == 200
            health = await response.json()
        assert health["status"] == "ok" and health["height"] == 0
        assert health["chain_id"] == devnet.DEV_CHAIN_ID and health["peers"] == 3
        served.node.syncing = True
        async with served.session.get(served.url + "/health") as response:
            assert response.status == 503 and (await response.json())["status"] == "syncing"


@pytest.mark.asyncio
async def test_health_says_when_the_node_is_outside_the_group_view() -> None:
    async with serve() as served:
        async with served.session.get(served.url + "/health") as response:
            health = await response.json()
        assert health["view_in_sync"] is True and health["group_view"] is None
        served.node.group_view = 7  # f+1 validators are in view 7, this node in view 0
        async with served.session.get(served.url + "/health") as response:
            health = await response.json()
        assert health["view_in_sync"] is False and health["group_view"] == 7
        status = await served.result("sec_status")
        assert status["view_in_sync"] is False and status["group_view"] == 7


@pytest.mark.asyncio
async def test_metrics_exposes_the_named_metrics() -> None:
    async with serve() as served:
        tx = sign(
            "buyer1", 0, "credit.transfer", Transfer(devnet.dev_account_key("buyer2").address, 1)
        )
        await served.result("sec_sendTransaction", {"tx": tx.encoded.hex()})
        await served.error("sec_getBlock", {"height": 9})
        await served.call("no_such_method")
        await served.post(b"{")
        served.node.commit_pending()
        served.metrics.observe_commit(0.3, 1)
        async with served.session.get(served.url + "/metrics") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            text = await response.text()
    samples = parse_exposition(text)
    assert samples["sec_height"] == 1
    assert samples["sec_view"] == 0 and samples["sec_view_changes_total"] == 0
    assert samples["sec_peers"] == 3 and samples["sec_mempool_transactions"] == 0
    assert samples["sec_committed_transactions_total"] == 1
    assert samples['sec_commit_latency_seconds_bucket{le="0.25"}'] == 0
    assert samples['sec_commit_latency_seconds_bucket{le="0.5"}'] == 1
    assert samples['sec_commit_latency_seconds_bucket{le="+Inf"}'] == 1
    assert samples["sec_commit_latency_seconds_count"] == 1
    rpc = 'sec_rpc_requests_total{method="%s",outcome="%s"}'
    assert samples[rpc % ("sec_sendTransaction", "ok")] == 1
    assert samples[rpc % ("sec_getBlock", "not_found")] == 1
    assert samples[rpc % ("unknown", "method_not_found")] == 1
    assert samples[rpc % ("none", "parse_error")] == 1
    # Latency: calls that ran (a failing one too); refused before running: not timed.
    duration = 'sec_rpc_request_duration_seconds_count{method="%s"}'
    assert samples[duration % "sec_sendTransaction"] == 1
    assert samples[duration % "sec_getBlock"] == 1
    assert duration % "unknown" not in samples
    assert "# TYPE sec_commit_latency_seconds histogram" in text


@pytest.mark.asyncio
async def test_discover_lists_every_method_with_schemas() -> None:
    async with serve() as served:
        document = await served.result("rpc.discover")
    assert document["openrpc"] == "1.2.6"
    by_name = {method["name"]: method for method in document["methods"]}
    assert tuple(by_name) == METHODS
    schemas = document["components"]["schemas"]
    for method in by_name.values():
        reference = method["result"]["schema"].get("$ref", "")
        assert reference.startswith("#/components/schemas/")
        assert reference.rsplit("/", 1)[1] in schemas
        assert method["paramStructure"] == "either"
    send = by_name["sec_sendTransaction"]
    assert [p["name"] for p in send["params"]] == ["tx", "wait", "timeout_s"]
    assert [p["required"] for p in send["params"]] == [True, False, False]
    assert send["params"][1]["schema"]["enum"] == ["mempool", "commit"]
    assert send["params"][2]["schema"]["maximum"] == models.MAX_WAIT_S
    assert {e["$ref"] for e in send["errors"]} == {
        "#/components/errors/rejected",
        "#/components/errors/timeout",
        "#/components/errors/busy",
    }
    account = by_name["sec_getAccount"]["params"]
    assert account[0]["schema"]["pattern"].startswith("^sec1")
    errors = document["components"]["errors"]
    assert {e["code"] for e in errors.values()} == {e.code for e in ALL_ERRORS}


def test_discover_schema_is_the_validating_model() -> None:
    table = method_table(RpcTestNode())
    for name, method in table.items():
        schema = method.params.model_json_schema()
        assert list(schema.get("properties", {})) == list(method.params.model_fields), name
        assert method.params.model_config.get("extra") == "forbid", name
        assert method.params.model_config.get("strict") is True, name


def test_error_table_is_documented() -> None:
    text = DOCS.read_text()
    for error in ALL_ERRORS:
        assert re.search(rf"\|\s*{error.code}\s*\|\s*`{error.name}`", text), error.name
    for reason in MEMPOOL_REASONS:
        assert f"`{reason}`" in text, reason
    for method in METHODS:
        assert f"### `{method}`" in text, method
    assert all(-32099 <= e.code <= -32000 for e in APPLICATION_ERRORS)


@pytest.mark.asyncio
async def test_dispatcher_is_sans_io_and_labels_are_bounded() -> None:
    seen: list[tuple[str, str]] = []
    dispatcher = Dispatcher(method_table(RpcTestNode()), Limits(), lambda m, o: seen.append((m, o)))
    reply = await dispatcher.handle(b'{"jsonrpc":"2.0","method":"x' + b"y" * 1000 + b'","id":1}')
    assert reply is not None and b"-32601" in reply
    assert await dispatcher.handle(b'{"jsonrpc":"2.0","method":"sec_status"}') is None
    assert seen == [("unknown", "method_not_found"), ("sec_status", "ok")]


def test_each_node_has_its_own_registry() -> None:
    # prometheus_client's global registry would refuse the second node's metric names.
    first, second = Metrics(), Metrics()
    first.observe_commit(0.3, 2)
    first.raise_view_changes(3)
    first.raise_view_changes(2)  # a counter never goes back
    samples = [parse_exposition(node.render()) for node in (first, second)]
    assert samples[0]["sec_committed_transactions_total"] == 2
    assert samples[1]["sec_committed_transactions_total"] == 0
    assert samples[0]["sec_view_changes_total"] == 3
    assert "process_cpu_seconds_total" in samples[0] and "python_info" in "".join(samples[0])


def test_invalid_metric_use() -> None:
    metrics = Metrics()
    with pytest.raises(ValueError, match="negative"):
        metrics.transactions.inc(-1)
    with pytest.raises(ValueError, match="Incorrect label count"):
        metrics.rpc_requests.labels("only-one")
