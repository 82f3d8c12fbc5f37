"""The console's in-browser verifier (secnode/console/static/js/verify/) in a real Chromium.

A test server on 127.0.0.1:0 serves the console bundle, the shared vectors (tests/vectors/),
the fixtures Python produced on a real shopping chain (tests/console_fixtures.py), a
`config.json` with that chain's genesis, and `/rpc` proxied to the served node (same origin,
so no CORS is involved; a test can make the proxy lie). The vectors page must pass every case
with the expected number of cases per suite, and refuse every negative; the `Verifier` must
verify a block, a transaction, an account, an order, a group and a trust score of the node,
and refuse each when the node alters a field, a proof or a signature.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from ledger.keys import PrivateKey, format_address
from secnode.console import STATIC_DIR
from tests.browserkit import browser, console_errors
from tests.conftest import VECTORS, load_vectors
from tests.console_fixtures import Shop, build_fixtures, shop

Tamper = Callable[[str, dict[str, Any]], None]
MERCHANT = format_address(PrivateKey.from_label("account:merchant1").address)
BLANK = (
    b"<!doctype html><html lang='en'><head><link rel='icon' href='data:,'>"
    b"<title>blank</title></head><body></body></html>"
)


@dataclass
class Site:
    """The test server: its URL, the fixtures it serves and the proxy's tamper hook."""

    url: str
    fixtures: dict[str, Any]
    shop: Shop
    tamper: Tamper | None = field(default=None)


def _file_under(root: Path, relative: str) -> Path:
    path = (root / relative).resolve()
    if root.resolve() not in path.parents or not path.is_file():
        raise web.HTTPNotFound()
    return path


def _app(site: Site) -> web.Application:
    config = {"node": "", "genesis": site.shop.document, "pinned": True}

    async def files(request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        if path == "fixtures.json":
            return web.json_response(site.fixtures)
        if path == "config.json":
            return web.json_response(config)
        if path == "blank.html":
            return web.Response(body=BLANK, content_type="text/html")
        if path.startswith("vectors/"):
            return web.FileResponse(_file_under(VECTORS, path.removeprefix("vectors/")))
        return web.FileResponse(_file_under(STATIC_DIR, path))

    async def rpc(request: web.Request) -> web.Response:
        request_body = await request.read()
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                site.shop.url + "/rpc",
                data=request_body,
                headers={"Content-Type": "application/json"},
            ) as response,
        ):
            answer = json.loads(await response.read())
        if site.tamper is not None and "result" in answer:
            site.tamper(json.loads(request_body)["method"], answer["result"])
        return web.json_response(answer)

    app = web.Application()
    app.router.add_post("/rpc", rpc)
    app.router.add_get("/{path:.*}", files)
    return app


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    with shop() as network:
        served = Site("", build_fixtures(network), network)
        loop = network.served.loop

        async def start() -> tuple[web.AppRunner, int]:
            runner = web.AppRunner(_app(served))
            await runner.setup()
            tcp = web.TCPSite(runner, "127.0.0.1", 0)
            await tcp.start()
            port: int = tcp._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            return runner, port

        runner, port = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
        served.url = f"http://127.0.0.1:{port}"
        try:
            yield served
        finally:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)


def _wait_for_results(driver: Any) -> dict[str, Any]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 180).until(
        lambda d: d.find_element(By.ID, "results").text.strip(),
        "the vectors page wrote no results within 180 s",
    )
    results: dict[str, Any] = json.loads(driver.find_element(By.ID, "results").text)
    return results


def _shared_vector_counts() -> dict[str, int]:
    """Cases per shared vector file, counted from the files (so none can be skipped)."""
    merkle = load_vectors("rfc6962_merkle_reference.json")
    return {
        "msgpack-test-suite": sum(len(v) for v in load_vectors("msgpack-test-suite.json").values()),
        "wycheproof": sum(
            len(g["tests"]) for g in load_vectors("wycheproof_ed25519_test.json")["testGroups"]
        ),
        "rfc8032": len(load_vectors("rfc8032_ed25519_vectors.json")["vectors"]),
        # leaf hashes, roots of 0..8 leaves, and per inclusion proof: valid, altered, longer,
        # short hash (consistency proofs do not apply: the console checks no append-only log)
        "rfc6962": len(merkle["leaf_inputs_hex"])
        + len(merkle["root_hashes_by_tree_size_hex"])
        + 4 * len(merkle["inclusion_proofs"]),
    }


NEGATIVES = {
    "fixtures.state_proofs": {
        "tampered-value",
        "tampered-sibling",
        "wrong-key",
        "wrong-root",
        "member-claimed-absent",
        "absent-claimed-present",
        "other-leaf-moved",
        "other-leaf-is-the-key",
        "too-many-siblings",
    },
    "fixtures.headers": {"tampered-timestamp"},
    "fixtures.certificates": {
        "bad-signature",
        "duplicate-signer",
        "non-member",
        "below-quorum",
        "wrong-height",
    },
    "fixtures.records": {"order-24-fields"},
    "fixtures.ed25519": {
        "identity-key-identity-r",
        "small-order-key",
        "small-order-r",
        "non-canonical-key",
        "s-plus-l",
    },
    "fixtures.addresses": {"mixed-case", "bad-checksum", "other-prefix", "bad-character"},
    "fixtures.msgpack": {"depth-33", "unsorted-keys", "duplicate-key", "trailing-byte"},
}


def test_every_vector_and_fixture_passes_in_the_browser(site: Site) -> None:
    with browser() as driver:
        driver.get(f"{site.url}/vectors.html?vectors=/vectors/&fixtures=/fixtures.json")
        results = _wait_for_results(driver)
        errors = console_errors(driver)
    assert "error" not in results, results
    suites = results["suites"]
    expected = _shared_vector_counts() | {
        f"fixtures.{name}": len(cases) for name, cases in site.fixtures.items()
    }
    assert {name: suites[name]["total"] for name in suites} == expected
    failures = {name: suite["failed"] for name, suite in suites.items() if suite["failed"]}
    assert not failures, failures
    assert all(suite["passed"] == suite["total"] for suite in suites.values())
    for name, negatives in NEGATIVES.items():
        assert negatives <= set(suites[name]["rejected"]), (name, suites[name]["rejected"])
    # 63 Wycheproof cases must be rejected, and exactly those were.
    assert len(suites["wycheproof"]["rejected"]) == 63
    assert not errors, errors


# Imports the verifier into a blank page of the test origin and runs the named verifications;
# BigInts come back as strings.
_VERIFY = """
const [calls, done] = [arguments[0], arguments[arguments.length - 1]];
(async () => {
  const { Verifier } = await import("/js/verify/verifier.js");
  const { JsonRpc, parseJson } = await import("/js/verify/jsonrpc.js");
  const config = parseJson(await (await fetch("/config.json")).text());
  const rpc = new JsonRpc(config.node);
  const verifier = new Verifier(rpc, config.genesis, { pinned: config.pinned });
  const reports = {};
  for (const [name, method, argument] of calls) reports[name] = await verifier[method](argument);
  return JSON.stringify(reports, (k, v) => (typeof v === "bigint" ? v.toString() : v));
})().then(done, (error) => done(JSON.stringify({ thrown: String(error) })));
"""


def _verify(site: Site, calls: list[tuple[str, str, Any]]) -> dict[str, Any]:
    with browser() as driver:
        driver.get(f"{site.url}/blank.html")
        answer = driver.execute_async_script(_VERIFY, [list(call) for call in calls])
    reports: dict[str, Any] = json.loads(answer)
    assert "thrown" not in reports, reports
    return reports


def test_verifier_verifies_what_a_real_node_serves(site: Site) -> None:
    network = site.shop
    head = network.served.node.head.height
    reports = _verify(
        site,
        [
            ("block", "verifyBlock", head),
            ("block0", "verifyBlock", 0),
            ("transaction", "verifyTransaction", network.transfer_hash),
            ("account", "verifyAccount", MERCHANT),
            ("order", "verifyOrder", network.order_id),
            ("group", "verifyGroup", network.group_id),
            ("trust", "verifyTrustScore", MERCHANT),
            ("nobody", "verifyAccount", format_address(bytes(20))),
            ("no-order", "verifyOrder", "00" * 32),
            ("future", "verifyBlock", head + 100),
        ],
    )
    future = reports.pop("future")
    assert future["ok"] is False and future["record"] is None, future
    assert future["error"].startswith("the node answered with an error"), future
    assert reports.pop("no-order")["record"] == {"order_id": "00" * 32, "exists": False}
    for name, report in reports.items():
        assert report["ok"] is True, (name, report)
        assert report["error"] is None and report["summary"].startswith("Verified: "), report
        assert any("block 0 fetched" in check for check in report["checks"]), report
    assert "signed by 3 of 4 validators" in reports["block"]["summary"]
    assert reports["block"]["height"] == head
    for name in ("account", "order", "group", "trust", "nobody"):
        assert "signed by 3 of 4 validators, proof" in reports[name]["summary"], reports[name]
    assert reports["transaction"]["record"]["type"] == "credit.transfer"
    assert reports["account"]["record"]["name"] == "merchant1"
    assert reports["order"]["record"]["state"] == "COMPLETED"
    assert [line["sku"] for line in reports["order"]["record"]["items"]] == ["tea", "cake"]
    assert reports["group"]["record"]["group"]["state"] == "FORMED"
    assert len(reports["group"]["record"]["members"]) == 2
    assert reports["trust"]["record"]["positive"] == 1
    assert reports["nobody"]["record"] == {"address": format_address(bytes(20)), "exists": False}


_VERIFY_WITH_NODE_GENESIS = """
const [address, done] = [arguments[0], arguments[arguments.length - 1]];
(async () => {
  const { Verifier } = await import("/js/verify/verifier.js");
  const { JsonRpc } = await import("/js/verify/jsonrpc.js");
  const rpc = new JsonRpc("");
  const { document } = await rpc.call("sec_getGenesis");
  return JSON.stringify(await new Verifier(rpc, document).verifyAccount(address),
    (k, v) => (typeof v === "bigint" ? v.toString() : v));
})().then(done, (error) => done(JSON.stringify({ thrown: String(error) })));
"""


def test_verifier_with_the_genesis_the_node_supplies_says_it_is_not_pinned(site: Site) -> None:
    with browser() as driver:
        driver.get(f"{site.url}/blank.html")
        report = json.loads(driver.execute_async_script(_VERIFY_WITH_NODE_GENESIS, MERCHANT))
    assert report.get("ok") is True, report
    assert any("supplied by the node (not pinned" in check for check in report["checks"]), report


def _lying(site: Site, tamper: Tamper, calls: list[tuple[str, str, Any]]) -> dict[str, Any]:
    site.tamper = tamper
    try:
        return _verify(site, calls)
    finally:
        site.tamper = None


def test_invalid_answers_of_a_lying_node_are_refused(site: Site) -> None:
    network = site.shop
    head = network.served.node.head.height

    def flip(text: str) -> str:
        return ("1" if text[0] == "0" else "0") + text[1:]

    def tamper(method: str, result: dict[str, Any]) -> None:
        if method == "sec_getAccount":
            result["balance"] += 1  # a genuine proof beside another balance
        elif method == "sec_getOrder":
            result["proof"]["siblings"][0] = flip(result["proof"]["siblings"][0])
        elif method == "sec_getGroup":
            result["members"][1]["paid"] -= 1
        elif method == "sec_getTrustScore":
            result["score"] += 1
        elif method == "sec_getTransaction":
            result["tx"]["body"]["amount"] += 1

    def forge(method: str, result: dict[str, Any]) -> None:
        if method == "sec_getCommit" and result["height"] == head:
            signature = result["certificate"]["signatures"][0]
            signature["signature"] = flip(signature["signature"])

    reports = _lying(site, forge, [("block", "verifyBlock", head)]) | _lying(
        site,
        tamper,
        [
            ("transaction", "verifyTransaction", network.transfer_hash),
            ("account", "verifyAccount", MERCHANT),
            ("order", "verifyOrder", network.order_id),
            ("group", "verifyGroup", network.group_id),
            ("trust", "verifyTrustScore", MERCHANT),
        ],
    )
    for name, report in reports.items():
        assert report["ok"] is False and report["record"] is None, (name, report)
        assert report["summary"] == f"Verification failed: {report['error']}", report
    assert "does not verify" in reports["block"]["error"]
    assert "tx.body.amount" in reports["transaction"]["error"]
    assert "account.balance" in reports["account"]["error"]
    assert "computes root" in reports["order"]["error"]
    assert "member 1.paid" in reports["group"]["error"]
    assert "trust.score" in reports["trust"]["error"]


def test_invalid_node_of_another_network_is_refused(site: Site) -> None:
    def other_genesis(method: str, result: dict[str, Any]) -> None:
        if method == "sec_getCommit" and result["height"] == 0:
            result["header"]["prev_hash"] = "00" * 32

    report = _lying(site, other_genesis, [("account", "verifyAccount", MERCHANT)])["account"]
    assert report["ok"] is False
    assert "genesis document hash" in report["error"], report


def test_verifier_traces_a_validator_change_from_genesis_and_refuses_a_hidden_one(
    site: Site,
) -> None:
    """Last in this module: it changes the shared chain's validator set (node3 leaves). The
    verifier traces the change from the genesis set (sec_getValidatorChanges: the scheduling
    block certified by the genesis set, the record proven under its root); a node that hides
    the change, calls its list incomplete or alters a proven record fails, naming the height."""
    network = site.shop
    answer = network.sec("tx", "validator-update", "--key", "dev:admin", "--remove", "dev:node3")
    scheduled = answer["height"]
    effective = answer["receipt"]["events"][0]["effective_height"]
    network.blocks(effective - network.served.node.head.height + 1)
    head = network.served.node.head.height
    calls = [("head", "verifyBlock", head), ("block1", "verifyBlock", 1)]
    reports = _verify(site, [*calls, ("account", "verifyAccount", MERCHANT)])
    for name, report in reports.items():
        assert report["ok"] is True, (name, report)
        assert not any("weaker" in check for check in report["checks"]), (name, report)
    assert "signed by 3 of 3 validators" in reports["head"]["summary"], reports["head"]
    assert "signed by 3 of 4 validators" in reports["block1"]["summary"], reports["block1"]
    traced = (
        f"validator change traced from genesis: block {scheduled:,} (certified by the set "
        "ruling it) schedules set"
    )
    for name in ("head", "account"):
        checks = reports[name]["checks"]
        assert any(traced in c and f"from height {effective:,}" in c for c in checks), checks
        assert any("1 validator change since genesis, none hidden" in c for c in checks), checks
    assert any("(the genesis set)" in c for c in reports["block1"]["checks"])

    def flip_last_byte(text: str) -> str:
        return text[:-2] + ("00" if text[-2:] != "00" else "01")

    def hide(method: str, result: dict[str, Any]) -> None:
        if method == "sec_getValidatorChanges":
            result["changes"] = []

    def incomplete(method: str, result: dict[str, Any]) -> None:
        if method == "sec_getValidatorChanges":
            result["complete"] = False

    def forge_change(method: str, result: dict[str, Any]) -> None:
        if method == "sec_getValidatorChanges":
            result["changes"][0]["value"] = flip_last_byte(result["changes"][0]["value"])

    def forge_head(method: str, result: dict[str, Any]) -> None:
        if method == "sec_getValidatorsWithProof":
            result["value"] = flip_last_byte(result["value"])

    at = f" at height {effective:,}"
    for tamper, where, why in [
        (hide, at, "the set traced from genesis"),
        (incomplete, at, "its list of validator changes is incomplete"),
        (forge_change, at, "value hashes to"),
        (forge_head, at, "value hashes to"),
    ]:
        report = _lying(site, tamper, calls)["block1"]
        assert report["ok"] is False, (tamper.__name__, report)
        assert report["summary"].startswith(
            f"Verification failed: the validator set changed{where} and this node cannot prove "
            "the change from genesis ("
        ), report
        assert why in report["error"] and "sec audit chain replays the chain" in report["error"]
