"""An attacker's view of the console: a lying node against the real pages in Chromium.

Uses the verifier tests' site (tests/test_console_verify.py: the bundle, a pinned genesis and
`/rpc` proxied to a real node through a tamper hook). The pages read the node for what they
show and the verifier reads it again for its proof: a node that tells the page one value and proves
another must not get a "✓ Verified" beside the value it made up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests import test_console_verify
from tests.browserkit import browser
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
