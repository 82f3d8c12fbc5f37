"""Smoke test of the console's pages in a real headless Chromium (interface D).

A dev chain with a story (tests/console_story.py: an order's whole life, an attestation, a
review and reply, a group buy, a committed trust epoch) on a test node that serves the console
itself (`RpcConfig(console=True)`: the real bundle, config.json and Content-Security-Policy).
Every route must render its key elements with no severe console error, at desktop and at
phone width without sideways scrolling; search must find each kind of thing; every verify
control must pass on this honest node; a new block must reach `#height` and the network page
without a reload; errors from the node must be shown in words; amounts and scores are exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from secnode.runtime.rpc.server import RpcConfig
from tests.browserkit import PHONE_WIDTH, browser, console_errors, focus_page_top
from tests.console_story import Story, story
from tests.rpc_node import ServedNode

WAIT_S = 20
VERIFY = '[data-testid="verify"]'


@pytest.fixture(scope="module")
def site() -> Iterator[tuple[ServedNode, Story]]:
    """The node serving the console itself (`[rpc] console = true`: the real bundle, its
    config.json and its Content-Security-Policy), with the story committed."""
    node = ServedNode(auto_commit=False, config=RpcConfig(console=True)).start()
    try:
        yield node, story(node)
    finally:
        node.stop()


@pytest.fixture(scope="module")
def driver(site: tuple[ServedNode, Story]) -> Iterator[Any]:
    with browser() as chromium:
        yield chromium


def wait_for(driver: Any, selector: str, what: str) -> Any:
    """The first element matching `selector`, waiting up to WAIT_S; fails naming `what`."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, WAIT_S).until(
            lambda d: (d.find_elements(By.CSS_SELECTOR, selector) or [None])[0]
        )
    except TimeoutException:
        main = driver.find_element(By.ID, "main").text[:800]
        pytest.fail(f"{what}: no {selector} within {WAIT_S} s; #main says: {main}")


def wait_until(driver: Any, condition: Any, what: str) -> Any:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, WAIT_S).until(condition)
    except TimeoutException:
        pytest.fail(f"{what} within {WAIT_S} s (url {driver.current_url})")


def open_route(driver: Any, base: str, route: str) -> None:
    driver.get(f"{base}/{route}")
    wait_for(driver, "#main .page", f"{route} renders")


def routes(story: Story) -> list[tuple[str, list[str]]]:
    """Each route of interface D with the selectors it must show."""
    return [
        ("#/", ["#height", '[data-testid="block-row"]', ".start-here a"]),
        ("#/blocks", ['[data-testid="block-row"]']),
        ("#/block/1", ['[data-testid="verify"]', "table"]),
        (f"#/tx/{story.order_id}", ['[data-testid="verify"]', ".events"]),
        (f"#/tx/{story.group_id}", ['[data-testid="verify"]', "dl.fields a[href^='#/account/']"]),
        (
            f"#/account/{story.merchant}",
            [
                '[data-testid="balance"]',
                '[data-testid="trust-score"]',
                '[data-testid="trust-why"]',
                '[data-testid="verify"]',
                ".reviews",
            ],
        ),
        (
            f"#/order/{story.order_id}",
            [
                '[data-testid="order-state"]',
                '[data-testid="timeline"] li[data-event]',
                '[data-testid="next-deadline"]',
                '[data-testid="verify"]',
            ],
        ),
        (f"#/group/{story.group_id}", ['[data-testid="group-progress"]', "progress"]),
        ("#/trust", ["svg.chart", "table"]),
        (f"#/trust/{story.merchant}", ["svg.graph", '[data-testid="trust-why"]', ".edge-list li"]),
    ]


def test_every_route_renders_its_key_elements_without_console_errors(
    site: tuple[ServedNode, Story], driver: Any
) -> None:
    node, told = site
    for route, selectors in routes(told):
        open_route(driver, node.url, route)
        for selector in selectors:
            wait_for(driver, selector, route)
        assert not driver.find_elements("css selector", "#main .error"), (
            route,
            driver.find_element("id", "main").text[:800],
        )
        assert console_errors(driver) == [], route


def test_pages_fit_a_phone_without_sideways_scrolling(
    site: tuple[ServedNode, Story],
) -> None:
    node, told = site
    with browser(width=PHONE_WIDTH, height=844) as phone:
        # Headless Chromium keeps windows at least 500 px wide: emulate the phone's viewport.
        phone.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": PHONE_WIDTH, "height": 844, "deviceScaleFactor": 1, "mobile": True},
        )
        for route, selectors in routes(told):
            open_route(phone, node.url, route)
            wait_for(phone, selectors[-1], route)
            width, scroll = phone.execute_script(
                "return [window.innerWidth, document.documentElement.scrollWidth]"
            )
            assert width == PHONE_WIDTH, f"{route} is laid out {width} px wide (meta viewport?)"
            assert scroll <= width, f"{route} scrolls sideways: {scroll} px in {width} px"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("dev:merchant1", "#/account/{merchant}"),
        ("buyer1", "#/account/{buyer}"),
        ("{merchant}", "#/account/{merchant}"),
        ("{order_id}", "#/order/{order_id}"),
        ("{group_id}", "#/group/{group_id}"),
        ("2", "#/block/2"),
    ],
)
def test_search_finds_names_addresses_ids_and_heights(
    site: tuple[ServedNode, Story], driver: Any, text: str, expected: str
) -> None:
    from selenium.webdriver.common.keys import Keys

    node, told = site
    values = {
        "merchant": told.merchant,
        "buyer": told.buyer,
        "order_id": told.order_id,
        "group_id": told.group_id,
    }
    open_route(driver, node.url, "#/blocks")
    box = driver.find_element("id", "search")
    box.clear()
    box.send_keys(text.format(**values) + Keys.ENTER)
    want = expected.format(**values)
    wait_until(driver, lambda d: d.current_url.endswith(want), f"search {text!r} goes to {want}")


def test_search_without_a_match_says_what_it_tried(
    site: tuple[ServedNode, Story], driver: Any
) -> None:
    node, _ = site
    open_route(driver, node.url, "#/search/" + "ab" * 32)
    tried = wait_for(driver, '[data-testid="no-match"]', "no match").text
    for what in ("transaction", "block hash", "order id", "group id"):
        assert what in tried


def test_node_errors_are_shown_in_words(site: tuple[ServedNode, Story], driver: Any) -> None:
    node, _ = site
    open_route(driver, node.url, "#/block/999999")
    error = wait_for(driver, "#main .error", "an unknown block").text
    assert "999999" in error.replace(",", "") and "✗" in error


def test_new_block_appears_without_a_reload_and_focus_follows_navigation(
    site: tuple[ServedNode, Story], driver: Any
) -> None:
    node, _ = site
    open_route(driver, node.url, "#/")
    wait_for(driver, '[data-testid="block-row"]', "network page")
    driver.execute_script("window.__sameDocument = true")
    committed = node.call(node.node.commit_pending).block.height
    wait_for(driver, f'[data-testid="block-row"][data-height="{committed}"]', "the new block")
    wait_until(
        driver,
        lambda d: d.find_element("id", "height").text.replace(",", "") == str(committed),
        f"#height shows {committed}",
    )
    assert driver.execute_script("return window.__sameDocument") is True
    driver.find_element("css selector", ".start-here a").click()
    wait_for(driver, '[data-testid="balance"]', "account page after a click")
    assert driver.execute_script("return document.activeElement.id") == "main"


def test_skip_link_is_the_first_tab_stop(site: tuple[ServedNode, Story], driver: Any) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    node, _ = site
    open_route(driver, node.url, "#/blocks")
    focus_page_top(driver)
    ActionChains(driver).send_keys(Keys.TAB).perform()
    focused = driver.switch_to.active_element
    assert focused.get_attribute("id") == "skip-link" and focused.text == "Skip to content"


def test_every_verify_control_passes_on_an_honest_node(
    site: tuple[ServedNode, Story], driver: Any
) -> None:
    """Each page hands the verifier the right thing: every control ends `ok`, and the state
    pages then show the values decoded from the proven bytes."""
    node, told = site
    pages = [
        (f"#/order/{told.order_id}", 1, "state COMPLETED"),
        (f"#/account/{told.merchant}", 2, "balance ¥"),
        (f"#/group/{told.group_id}", 1, "state OPEN"),
        ("#/block/3", 1, None),
        (f"#/tx/{told.order_id}", 1, None),
    ]
    for route, count, proven in pages:
        open_route(driver, node.url, route)
        buttons = wait_until(
            driver,
            lambda d, n=count: (
                found if len(found := d.find_elements("css selector", VERIFY)) == n else None
            ),
            f"{route}: {count} verify controls",
        )
        for button in buttons:
            button.click()
        results = driver.find_elements("css selector", '[data-testid="verify-result"]')
        for result in results:
            wait_until(
                driver,
                lambda _, r=result: r.get_attribute("data-status") in ("ok", "failed"),
                f"{route}: a verify result",
            )
            assert result.get_attribute("data-status") == "ok", (route, result.text)
            assert result.text.startswith("✓ Verified"), result.text
        if proven is not None:
            assert proven in results[0].find_element("css selector", ".proven").text, route


def test_amounts_scores_and_the_why_sentence_are_exact(
    site: tuple[ServedNode, Story], driver: Any
) -> None:
    """The formatting modules, run in the browser: amounts beyond 2^53 keep every fen, scores
    every digit, and the sentence counts distinct attesters and names pre-trust."""
    node, _ = site
    open_route(driver, node.url, "#/blocks")
    shown = driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        Promise.all([import("./js/ui.js"), import("./js/trustwords.js")])
          .then(([ui, trust]) => {
            const score = {address: "sec1a", scored: true, score: 412000000, positive: 3,
              negative: 1, epoch: {epoch: 7, parameters: {pretrusted: ["sec1a", "sec1b"]}}};
            const list = [{attester: "sec1x"}, {attester: "sec1y"}, {attester: "sec1x"}];
            done([
              ui.formatFen(9223372036854775807n), ui.formatFen(5), ui.formatInt(8412),
              ui.formatScore(412000000), ui.formatScore(1000000000n), ui.scorePercent(649122796),
              trust.whySentence(score, {list, complete: true}, ["merchant"]),
            ]);
          }).catch((error) => done(String(error)));
        """
    )
    assert shown == [
        "¥92,233,720,368,547,758.07",
        "¥0.05",
        "8,412",
        "0.412",
        "1.0",
        "64.91 %",
        "Score 0.412 of all trust (epoch 7): 2 buyers with completed orders attested it "
        "(3 positive, 1 negative); it is one of 2 pre-trusted accounts, which start with a "
        "share of trust.",
    ]
