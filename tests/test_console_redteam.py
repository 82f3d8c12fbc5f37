"""An attacker's view of the console: a lying node against the real pages in Chromium.

Uses the verifier tests' site (tests/test_console_verify.py: the bundle, a pinned genesis and
`/rpc` proxied to a real node through a tamper hook). The pages read the node for what they
show and the verifier reads it again for its proof: a node that tells the page one value and proves
another must not get a "✓ Verified" beside the value it made up.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiohttp import web

from ledger.certificates import CommitCertificate, CommitSignature, commit_signing_bytes
from ledger.encoding import encode
from ledger.keys import Address, PrivateKey
from ledger.state_tree import StateTree
from ledger.validators import ValidatorSet
from secnode.console import STATIC_DIR
from secnode.console.local import check_node
from secnode.runtime.rpc.server import start_rpc_server
from secnode.schema.objects import BlockHeader
from secnode.schema.objects import CommitCertificate as CertificateJson
from secnode.schema.objects import StateProof as StateProofJson
from tests import test_console_verify
from tests.browserkit import browser
from tests.test_console_serve import ALLOWED
from tests.test_console_verify import MERCHANT, Site

site = test_console_verify.site  # the verifier tests' fixture, shared

WAIT_S = 60
Tamper = Callable[[str, dict[str, Any]], None]


def _verify_results(site: Site, route: str, tamper: Tamper | None) -> list[tuple[str, str]]:
    """Open `route` with the proxy lying by `tamper`, click every verify control and return
    each result's (data-status, text)."""
    from selenium.webdriver.support.ui import WebDriverWait

    site.tamper = tamper
    try:
        with browser() as driver:
            driver.get(f"{site.url}/index.html{route}")
            buttons = WebDriverWait(driver, WAIT_S).until(
                lambda d: d.find_elements("css selector", '[data-testid="verify"]'),
                f"{route}: no verify control",
            )
            results = []
            for button in buttons:
                button.click()
                results.append(button.find_element("xpath", "../*[@data-testid='verify-result']"))
            WebDriverWait(driver, WAIT_S).until(
                lambda _: all(r.get_attribute("data-status") in ("ok", "failed") for r in results),
                f"{route}: no verify result",
            )
            return [(r.get_attribute("data-status"), r.text) for r in results]
    finally:
        site.tamper = None


def _first(method: str, change: Callable[[dict[str, Any]], None]) -> Tamper:
    """Change the first answer to `method`: the page's (it loads before any verify), not the
    verifier's, which the proof covers."""
    seen: list[str] = []

    def tamper(called: str, result: dict[str, Any]) -> None:
        if called == method and not seen:
            seen.append(called)
            change(result)

    return tamper


def _add(result: dict[str, Any], *path: str) -> None:
    for name in path[:-1]:
        result = result[name]
    result[path[-1]] += 100


def test_a_verify_fails_when_the_page_shows_what_the_node_did_not_prove(site: Site) -> None:
    network = site.shop
    head = network.served.node.head.height
    cases: list[tuple[str, str, Callable[[dict[str, Any]], None], str]] = [
        (f"#/account/{MERCHANT}", "sec_getAccount", lambda r: _add(r, "balance"), "page.balance"),
        (
            f"#/order/{network.order_id}",
            "sec_getOrder",
            lambda r: _add(r, "order", "held"),
            "page.held",
        ),
        (
            f"#/group/{network.group_id}",
            "sec_getGroup",
            lambda r: _add(r, "group", "pool"),
            "page.group.pool",
        ),
        (
            f"#/tx/{network.transfer_hash}",
            "sec_getTransaction",
            lambda r: _add(r, "tx", "body", "amount"),
            "page.body.amount",
        ),
        (
            f"#/block/{head}",
            "sec_getBlock",
            lambda r: _add(r, "header", "timestamp_ms"),
            "page.header.timestamp_ms",
        ),
    ]
    for route, method, change, field in cases:
        honest = _verify_results(site, route, None)
        assert honest and all(status == "ok" for status, _ in honest), (route, honest)
        status, text = _verify_results(site, route, _first(method, change))[0]
        assert status == "failed", (route, text)
        assert f"this page shows {field} other than the proven record" in text, (route, text)
        assert text.count(f"shows {field} other than") == 2, text  # summary + one check line


def _forged_validator_set(site: Site, height: int) -> Tamper:
    """A node holding no validator key: fresh keys, a "validators" record naming them in a
    state tree of its own, and block `height` rewritten to name that set, all certified by
    the made-up keys."""
    node = site.shop.served.node
    keys = [PrivateKey.from_label(f"forger:{i}") for i in range(4)]
    fake = ValidatorSet.from_public_keys(key.public_key for key in keys)
    record = encode({"current": fake.to_wire(), "pending": [], "history": []})
    tree = StateTree.from_items([(b"validators", record)])
    real = site.shop.served.call(lambda: node.store.get_block(height))
    assert real is not None
    header = dataclasses.replace(
        real.header, state_root=tree.root(), validators_hash=fake.hash(), view=real.header.view + 1
    )
    block_hash = header.hash()
    message = commit_signing_bytes(header.chain_id, height, block_hash)
    signatures = [CommitSignature(Address(key.address), key.sign(message)) for key in keys]
    certificate = CertificateJson.of(CommitCertificate(height, block_hash, tuple(signatures)))
    forged = {
        "header": BlockHeader.of(header).model_dump(mode="json"),
        "certificate": certificate.model_dump(mode="json"),
    }

    def tamper(method: str, result: dict[str, Any]) -> None:
        if method == "sec_getCommit" and result["height"] == height:
            result.update(forged, hash=block_hash.hex())
        elif method == "sec_getValidatorsWithProof":
            result.update(
                forged,
                block_hash=block_hash.hex(),
                state_root=tree.root().hex(),
                value=record.hex(),
                proof=StateProofJson.of(tree.prove(b"validators")).model_dump(mode="json"),
            )

    return tamper


def test_a_made_up_validator_set_is_never_a_plain_verified(site: Site) -> None:
    """A set from the head's proven record is certified by itself, so any node can make one
    up: the summary (what the page shows beside ✓) must say the set was not traced from
    genesis, not only a check further down the list."""
    head = site.shop.served.node.head.height
    site.tamper = _forged_validator_set(site, head)
    try:
        report = test_console_verify._verify(site, [("head", "verifyBlock", head)])["head"]
    finally:
        site.tamper = None
    assert report["ok"] is True, report  # what the browser alone can check passes ...
    assert (
        "(weaker: the validator set is the node's head record, certified by itself, not "
        "traced from the genesis set" in report["summary"]
    ), report  # ... and it says so
    honest = test_console_verify._verify(site, [("head", "verifyBlock", head)])["head"]
    assert honest["ok"] is True and "weaker" not in honest["summary"], honest


_CALL = """
const done = arguments[arguments.length - 1];
import("/js/rpc.js").then(({RpcClient}) => new RpcClient("").call("sec_status"))
  .then((result) => done("answered: " + JSON.stringify(result)), (error) => done(error.message));
"""


@contextlib.contextmanager
def _endless_node() -> Iterator[str]:
    """A server of the console's files whose /rpc answers 200 and then bytes without end."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def endless(request: web.Request) -> web.StreamResponse:
        answer = web.StreamResponse(headers={"Content-Type": "application/json"})
        await answer.prepare(request)
        await answer.write(b'{"jsonrpc": "2.0", "id": 1, "result": "')
        while True:  # until the browser gives up on it
            await answer.write(b"x" * 65536)

    async def files(request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        if path == "blank.html":
            return web.Response(body=test_console_verify.BLANK, content_type="text/html")
        return web.FileResponse(test_console_verify._file_under(STATIC_DIR, path))

    async def start() -> tuple[web.AppRunner, int]:
        app = web.Application()
        app.router.add_post("/rpc", endless)
        app.router.add_get("/{path:.*}", files)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    runner, port = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_a_reply_without_end_is_refused_at_the_size_cap() -> None:
    """The page reads a reply as it arrives and stops at the cap: a node sending an endless
    body gets an error in words, not a tab that holds the body whole (and never answers)."""
    with _endless_node() as url, browser() as driver:
        driver.set_script_timeout(60)
        driver.get(f"{url}/blank.html")
        message = driver.execute_async_script(_CALL)
    assert message == "the node's reply to sec_status is larger than 8388608 bytes", message


@pytest.mark.asyncio
async def test_sec_console_prints_no_terminal_escapes_a_hostile_node_sent() -> None:
    """`sec console --genesis` prints the genesis hash the node runs when it differs from the
    pinned one: a node's text must not reach the terminal raw (ESC sequences can rewrite it)."""
    escape = "\x1b]0;owned\x07\x1b[2J"

    async def allow(request: web.Request) -> web.Response:
        return web.Response(status=204, headers={"Access-Control-Allow-Origin": ALLOWED})

    async def status(request: web.Request) -> web.Response:
        result = {"chain_id": escape, "genesis_hash": escape + "ab" * 32}
        return web.json_response({"jsonrpc": "2.0", "id": 1, "result": result})

    app = web.Application()
    app.router.add_route("OPTIONS", "/rpc", allow)
    app.router.add_post("/rpc", status)
    runner, port = await start_rpc_server(app, "127.0.0.1", 0)
    try:
        check = await check_node(f"http://127.0.0.1:{port}", ALLOWED, "00" * 32)
    finally:
        await runner.cleanup()
    assert not check.ok and "\x1b" not in check.line and "\x07" not in check.line, check


def test_a_node_answering_huge_lists_gets_bounded_tables(site: Site) -> None:
    """sec_getNetwork with 8,000 validators and 20,000 recent blocks (under the reply cap):
    the network page shows at most MAX_TABLE_ROWS validator rows (and says how many it left
    out) and its 20 blocks."""
    from selenium.webdriver.support.ui import WebDriverWait

    def huge(method: str, result: dict[str, Any]) -> None:
        if method == "sec_getNetwork":
            result["validators"] = result["validators"] * 2000
            result["recent_blocks"] = result["recent_blocks"] * 1000

    site.tamper = huge
    try:
        with browser() as driver:
            driver.get(f"{site.url}/index.html#/")
            omitted = WebDriverWait(driver, WAIT_S).until(
                lambda d: d.find_elements("css selector", "tr.omitted"), "no bounded table"
            )
            rows = driver.find_elements("css selector", "[aria-label=Validators] tbody tr")
            blocks = driver.find_elements("css selector", '[data-testid="block-row"]')
            assert omitted[0].text == "7,000 more rows not shown", omitted[0].text
            assert len(rows) == 1001 and len(blocks) == 20, (len(rows), len(blocks))
    finally:
        site.tamper = None


def test_a_block_verify_says_its_transaction_list_is_not_covered(site: Site) -> None:
    """The block page lists the block's transactions beside "✓ Verified", but the verifier
    checks the header and certificate only: the report says the list is not covered."""
    head = site.shop.served.node.head.height
    report = test_console_verify._verify(site, [("head", "verifyBlock", head)])["head"]
    assert report["ok"] is True, report
    assert any(
        check.startswith("not covered: the block's list of transactions")
        for check in report["checks"]
    ), report


_FLOOD = """
const [orderId, done] = [arguments[0], arguments[arguments.length - 1]];
(async () => {
  const page = await import("/js/pages/order.js");
  const { RpcClient } = await import("/js/rpc.js");
  const node = new RpcClient("");
  const calls = {};
  let pending = 0;
  let gate = null;
  const rpc = { async call(method, params) {
    calls[method] = (calls[method] ?? 0) + 1;
    pending += 1;
    try {
      if (gate) await gate;
      return await node.call(method, params);
    } finally {
      pending -= 1;
    }
  } };
  let notify = null;
  const ctx = { rpc, names: { nameOf: () => null }, genesis: null, pinned: false,
    subscriptions: { subscribe: (kind, params, listener) => {
      notify = listener;
      return () => {};
    } },
    onHead: () => () => {} };
  const view = document.createElement("div");
  document.body.append(view);
  await page.render(ctx, view, orderId);
  const loaded = calls.sec_getOrder;
  let release;
  gate = new Promise((resolve) => { release = resolve; });
  for (let i = 0; i < 50; i += 1) notify({ tx_hash: orderId, receipt: { events: [] } });
  gate = null;
  release();
  while (pending > 0) await new Promise((resolve) => setTimeout(resolve, 20));
  return JSON.stringify({ loaded, after: calls.sec_getOrder - loaded });
})().then(done, (error) => done(JSON.stringify({ thrown: String(error) })));
"""


def test_a_flood_of_order_events_reloads_the_order_page_at_most_twice(site: Site) -> None:
    """The order page reloads on each order event of its buyer: 50 notifications arriving while
    a reload is on its way must not start 50 reloads (a node's endless notifications would keep
    the page and the node busy without bound); they fold into one more."""
    with browser() as driver:
        driver.set_script_timeout(60)
        driver.get(f"{site.url}/blank.html")
        counts = json.loads(driver.execute_async_script(_FLOOD, site.shop.order_id))
    assert counts == {"loaded": 1, "after": 2}, counts
