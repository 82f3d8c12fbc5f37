"""End to end: the web console in a real headless Chromium against a real `sec testnet`.

One `sec testnet` (the supervisor and its four validator processes, on free ports in a temp
directory) serves the whole module; the console is the URL its banner prints. The test makes
one order of its own with the real CLI (`sec tx order create|pay|ship --wait`: it stays
SHIPPED, with a next deadline), then `sec demo` plays a shop's day in the background (orders
completed, a dispute, a group buy, attestations, and the trust epoch that counts them). The
browser sees only the console: it types into `#search`, presses Tab and Enter or clicks
`[data-testid=verify]`, and reads what the page shows (the DOM contract of docs/console.md).
A lying node is `tests/tamper_proxy.py` in front of node0: the same console, loaded through
it, must fail the verify and name the check. The trustworthy way, `sec console --genesis`,
runs on another origin against a node that allows it.

Every wait polls with a deadline and fails with what it waited for, what the page showed and
the browser's console errors (or the processes' output and node logs). With
`SEC_SCREENSHOTS=DIR` set, the tests also save PNGs of the pages they visit into DIR
(docs/console/ is made that way).
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest

from secnode.client.rpc import RpcClient, RpcClientError
from secnode.network.testnet import NODE_PID, STOP_GRACE_S
from secnode.runtime.config import CONFIG_FILE, load_config, render_config
from tests.browserkit import (
    PHONE_WIDTH,
    browser,
    console_errors,
    focus_page_top,
    require_browser,
)
from tests.e2e_cluster import (
    CLI,
    PYTHON,
    ROOT,
    dev_address,
    free_port_base,
    log_tail,
    run_cli,
    wait_until,
)
from tests.tamper_proxy import Tamper, TamperProxy

pytestmark = pytest.mark.slow

NODES: Final = 4
PAGE_WAIT_S: Final = 30.0
VERIFY_WAIT_S: Final = 60.0
DEMO_STEPS_WAIT_S: Final = 240.0
"""`sec demo`'s first steps (about 20 transactions, each waiting for its block)."""
DEMO_WAIT_S: Final = 900.0
"""All of `sec demo`: its orders complete after the committed genesis's 120 s return window,
then the epoch that counts its attestations (every 30 blocks, about one block a second)."""
SHOT_MAX_HEIGHT: Final = 1400
"""The most of a page a whole-page screenshot shows, in CSS pixels."""
DESKTOP: Final = (1024, 768)
"""The desktop window (width, height): a small laptop's, which also keeps screenshots small."""
MAX_TABS: Final = 60
"""Tab presses allowed to reach a control from the top of a page."""
_CONSOLE_URL: Final = re.compile(r"console\b.*?(http://(?:127\.0\.0\.1|localhost):\d+/?\S*)")

FAILED_CHECK: Final = {
    Tamper.ORDER_PROOF: re.compile(r"proof\b.*\broot", re.IGNORECASE),
    Tamper.ORDER_VALUE: re.compile(r"value\b.*\b(hash|proof)", re.IGNORECASE),
    Tamper.ORDER_STATE: re.compile(r"order\.state\b", re.IGNORECASE),
    Tamper.CERTIFICATE: re.compile(r"signature.*\bquorum|quorum.*\bsignature", re.IGNORECASE),
}
"""What the failed verify must name, per tampering."""


# --- the network ---------------------------------------------------------------------------


@dataclass(slots=True)
class LiveTestnet:
    """A running `sec testnet`, the `sec demo` playing on it, and what the test made."""

    home: Path
    process: subprocess.Popen[bytes]
    rpc_urls: list[str]
    console_url: str = ""
    order_id: str = ""
    """An order of the test's own: created, paid and shipped (so it has a next deadline)."""
    order_height: int = 0
    demo: subprocess.Popen[bytes] | None = None

    @property
    def directory(self) -> Path:
        return self.home / "net"

    def output(self, name: str) -> str:
        path = self.home / name
        return path.read_text(errors="replace") if path.exists() else ""

    def said(self) -> str:
        """What the supervisor and the demo printed, and each node's log tail."""
        parts = [f"--- {name}:\n{self.output(name)}" for name in OUTPUTS]
        for index in range(NODES):
            log = self.directory / f"node{index}" / "node.log"
            parts.append(f"--- node{index} {log}:\n{log_tail(log)}")
        return "\n".join(parts)

    def call(self, method: str, params: dict[str, Any] | None = None, node: int = 0) -> Any:
        """One JSON-RPC call to a node; RpcClientError when it fails."""
        return RpcClient(self.rpc_urls[node], 5.0).call(method, params)

    def height(self, node: int = 0) -> int | None:
        with suppress(RpcClientError):
            height: int = self.call("sec_status", node=node)["height"]
            return height
        return None

    def tx(self, key: str, *verb: str) -> dict[str, Any]:
        """`sec tx VERB --key dev:KEY --wait --json` through node0; the committed outcome."""
        result = run_cli(
            "tx",
            *verb,
            *("--key", f"dev:{key}", "--rpc", self.rpc_urls[0]),
            *("--wait", "--timeout", "60", "--json"),
        )
        outcome: dict[str, Any] = json.loads(result.stdout)
        assert outcome["status"] == "committed" and outcome["receipt"]["ok"], outcome
        return outcome

    def demo_line(self, pattern: str, timeout: float) -> re.Match[str]:
        """Wait for the demo to print a line matching `pattern`; fail if it ends without."""

        def printed() -> re.Match[str] | None:
            found = re.search(pattern, self.output("demo.out"))
            if found is None and self.demo is not None and self.demo.poll() is not None:
                raise AssertionError(f"sec demo ended ({self.demo.returncode})\n{self.said()}")
            return found

        return wait_until(printed, timeout, f"sec demo to print {pattern!r}", self.said)


OUTPUTS: Final = ("supervisor.out", "supervisor.err", "demo.out", "demo.err")


@pytest.fixture(scope="module")
def testnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveTestnet]:
    """`sec testnet` on free ports, its console URL read from its banner; one order of the
    test's own made through the CLI (created, paid, shipped); then `sec demo` playing a shop's
    day in the background (orders completed, a dispute, a group, attestations, an epoch)."""
    require_browser()  # no browser: skip (or fail under CI) before starting six processes
    home = tmp_path_factory.mktemp("console")
    base = free_port_base(2 * NODES)
    arguments = ["testnet", "--dir", str(home / "net"), "--nodes", str(NODES)]
    arguments += ["--p2p-port-base", str(base), "--rpc-port-base", str(base + NODES)]
    urls = [f"http://127.0.0.1:{base + NODES + i}" for i in range(NODES)]
    net = LiveTestnet(home, _start(home, "supervisor", arguments), urls)
    try:
        net.console_url = wait_until(
            lambda: _console_url(net.output("supervisor.out")),
            PAGE_WAIT_S,
            "the console URL in the banner of `sec testnet`",
            net.said,
        )
        wait_until(lambda: (net.height() or 0) >= 2, PAGE_WAIT_S, "height 2", net.said)
        created = net.tx(
            "merchant1",
            *("order", "create", "--buyer", "dev:buyer1", "--arbiter", "dev:arbiter"),
            *("--item", "tea:2:1000", "--item", "cup:1:250", "--shipping", "500"),
        )
        net.order_id, net.order_height = created["order_id"], created["height"]
        net.tx("buyer1", "order", "pay", "--order", net.order_id)
        net.tx("merchant1", "order", "ship", "--order", net.order_id, "--shipment", "SF1001")
        # The demo counts its nonces itself: it starts once this test sends nothing more.
        net.demo = _start(home, "demo", ["demo", "--rpc", urls[0]])
        yield net
    finally:
        _stop(net)


def _start(home: Path, name: str, arguments: list[str]) -> subprocess.Popen[bytes]:
    """`python cli.py ARGUMENTS`, printing into HOME/NAME.out and HOME/NAME.err."""
    with (home / f"{name}.out").open("wb") as out, (home / f"{name}.err").open("wb") as err:
        return subprocess.Popen([PYTHON, str(CLI), *arguments], stdout=out, stderr=err, cwd=ROOT)


def _console_url(banner: str) -> str | None:
    for line in banner.splitlines():
        found = _CONSOLE_URL.search(line)
        if found:
            return found.group(1)
    return None


def _stop(net: LiveTestnet) -> None:
    if net.demo is not None and net.demo.poll() is None:
        net.demo.kill()
        net.demo.wait()
    net.process.send_signal(signal.SIGTERM)
    try:
        net.process.wait(timeout=STOP_GRACE_S + 10)
    except subprocess.TimeoutExpired:
        net.process.kill()
        net.process.wait()
    for index in range(NODES):  # nothing may outlive the test
        with suppress(OSError, ValueError):
            pid = int((net.directory / f"node{index}" / NODE_PID).read_text())
            os.kill(pid, signal.SIGKILL)


# --- the page ------------------------------------------------------------------------------


def _page_report(driver: Any) -> str:
    """What the page shows and what went wrong in it (for failure messages)."""
    try:
        text = driver.execute_script("return document.body ? document.body.innerText : ''")
        url = driver.current_url
    except Exception as exc:  # the browser itself failed: say so instead of the page
        return f"(the browser does not answer: {exc})"
    errors = "\n".join(console_errors(driver)) or "(none)"
    return f"url: {url}\npage text:\n{str(text)[:3000]}\nconsole errors:\n{errors}"


def _wait_page(driver: Any, predicate: Callable[[], Any], what: str, timeout: float) -> Any:
    return wait_until(predicate, timeout, what, lambda: _page_report(driver))


def _find(driver: Any, selector: str) -> Any:
    """The first element matching the CSS selector, or None."""
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.CSS_SELECTOR, selector)
    return found[0] if found else None


def _visible_text(driver: Any, selector: str) -> str | None:
    element = _find(driver, selector)
    if element is None or not element.is_displayed():
        return None
    text: str = element.text.strip()
    return text or None


def _open(driver: Any, url: str, route: str, ready: str) -> None:
    """Load the console at `route` (a hash route) and wait for `ready` (a CSS selector)."""
    driver.get(url.rstrip("/") + "/" + route)
    _wait_page(driver, lambda: _find(driver, ready), f"{ready} on {route}", PAGE_WAIT_S)


def _search(driver: Any, text: str) -> None:
    box = _find(driver, "#search")
    assert box is not None, _page_report(driver)
    box.clear()
    box.send_keys(text + "\n")


def _verify_near(driver: Any, selector: str) -> tuple[Any, str]:
    """The verify button of the section that shows `selector`, and a CSS-path-free handle on
    its result: the innermost ancestor of `selector` holding a verify button is marked."""
    marked = driver.execute_script(
        """
        const shown = document.querySelector(arguments[0]);
        let box = shown;
        while (box && !box.querySelector('[data-testid="verify"]')) box = box.parentElement;
        if (!box) return false;
        document.querySelectorAll('[data-e2e-box]').forEach(e => e.removeAttribute('data-e2e-box'));
        box.setAttribute('data-e2e-box', '1');
        return true;
        """,
        selector,
    )
    assert marked, f"no verify button around {selector}\n{_page_report(driver)}"
    button = _find(driver, '[data-e2e-box] [data-testid="verify"]')
    return button, '[data-e2e-box] [data-testid="verify-result"]'


def _verify_outcome(driver: Any, result_selector: str) -> tuple[str, str]:
    """Wait until the verify result is done; (its data-status, its text)."""

    def done() -> tuple[str, str] | None:
        result = _find(driver, result_selector)
        if result is None:
            return None
        status = result.get_attribute("data-status")
        return (status, result.text) if status in ("ok", "failed") else None

    outcome: tuple[str, str] = _wait_page(driver, done, "a verify result", VERIFY_WAIT_S)
    return outcome


def _press(driver: Any, key: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(key).perform()


def _tab_to(driver: Any, matches: str) -> None:
    """Press Tab from the top of the page until the focused element matches the CSS
    selector `matches`; fail after MAX_TABS presses."""
    from selenium.webdriver.common.keys import Keys

    focus_page_top(driver)
    for _ in range(MAX_TABS):
        _press(driver, Keys.TAB)
        if driver.execute_script("return document.activeElement.matches(arguments[0])", matches):
            return
    raise AssertionError(f"{MAX_TABS} Tab presses never reached {matches}\n{_page_report(driver)}")


def _timeline(driver: Any) -> list[str] | None:
    """The `data-event` of each entry of the order's timeline, or None while it is empty."""
    events: list[str] = driver.execute_script(
        "return [...document.querySelectorAll('ol[data-testid=\"timeline\"] > li')]"
        ".map(li => li.getAttribute('data-event') || '')"
    )
    return events or None


def _loaded(driver: Any) -> bool:
    """The page has content and nothing still says it is loading."""
    return bool(
        driver.execute_script(
            "const main = document.getElementById('main');"
            "return !!main && main.innerText.trim().length > 0"
            " && !main.querySelector('.loading, [aria-busy=\"true\"]');"
        )
    )


def _shot(driver: Any, name: str, show: str | None = None, whole: bool = False) -> None:
    """Save a screenshot as DIR/NAME.png when SEC_SCREENSHOTS=DIR is set: the window scrolled
    so that the element `show` (a CSS selector) is in its middle, or with `whole` the page from
    its top (at most SHOT_MAX_HEIGHT pixels of it)."""
    directory = os.environ.get("SEC_SCREENSHOTS")
    if not directory:
        return
    path = Path(directory) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    if whole:
        size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "scale": 1}
        clip["height"] = min(size["height"], SHOT_MAX_HEIGHT)
        shot = driver.execute_cdp_cmd(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
        )
        path.write_bytes(base64.b64decode(shot["data"]))
        return
    if show is not None:
        driver.execute_script(
            "const shown = document.querySelector(arguments[0]);"
            "if (shown) shown.scrollIntoView({block: 'center', behavior: 'instant'});",
            show,
        )
    driver.save_screenshot(str(path))


def _shown_height(driver: Any) -> int | None:
    """The head height `#height` shows ("8,412" is 8412), or None while it shows no number
    (before the first answer)."""
    digits = re.sub(r"[^\d]", "", _visible_text(driver, "#height") or "")
    return int(digits) if digits else None


# --- the tests -----------------------------------------------------------------------------


def test_an_order_found_by_id_with_the_keyboard_shows_its_timeline_and_verifies(
    testnet: LiveTestnet,
) -> None:
    from selenium.webdriver.common.keys import Keys

    with browser(*DESKTOP) as driver:
        _open(driver, testnet.console_url, "#/", '[data-testid="block-row"]')
        focus_page_top(driver)
        _press(driver, Keys.TAB)
        skip = driver.execute_script("return document.activeElement.textContent")
        assert "skip to content" in skip.lower(), f"the first Tab reaches {skip!r}"
        _press(driver, Keys.ENTER)
        focused = driver.execute_script("return document.activeElement.id")
        assert focused == "main", f"Skip to content focused #{focused}\n{_page_report(driver)}"
        assert _find(driver, '[data-testid="block-row"]') is not None, "skipping left the page"

        _tab_to(driver, "#search")
        _press(driver, testnet.order_id)
        _press(driver, Keys.ENTER)
        state = _wait_page(
            driver,
            lambda: _visible_text(driver, '[data-testid="order-state"]'),
            "the order page (its state) after searching for the order id",
            PAGE_WAIT_S,
        )
        assert "SHIPPED" in state.upper(), _page_report(driver)
        assert f"#/order/{testnet.order_id}" in driver.current_url
        assert driver.execute_script("return document.activeElement.id") == "main"
        events = _wait_page(driver, lambda: _timeline(driver), "the timeline", PAGE_WAIT_S)
        assert len(events) >= 3, f"timeline {events} for created, paid, shipped"
        assert "creat" in events[0], f"the timeline does not start with the creation: {events}"
        deadline = _visible_text(driver, '[data-testid="next-deadline"]')
        assert deadline and re.search(r"\d", deadline), f"next deadline: {deadline!r}"

        button, result = _verify_near(driver, '[data-testid="order-state"]')
        driver.execute_script("arguments[0].setAttribute('data-e2e-button', '1')", button)
        _tab_to(driver, "[data-e2e-button]")
        _press(driver, Keys.ENTER)
        status, text = _verify_outcome(driver, result)
        assert status == "ok", f"verify said {text!r}\n{_page_report(driver)}"
        assert "✓" in text or "verified" in text.lower(), text  # never by colour alone
        _shot(driver, "order", show=result)


@pytest.mark.parametrize(
    "tamper", [Tamper.ORDER_PROOF, Tamper.ORDER_VALUE, Tamper.ORDER_STATE, Tamper.CERTIFICATE]
)
def test_a_node_that_tampers_with_the_order_fails_verification_naming_the_check(
    testnet: LiveTestnet, tamper: Tamper
) -> None:
    with TamperProxy(testnet.console_url, tamper) as proxy, browser(*DESKTOP) as driver:
        _open(driver, proxy.url, f"#/order/{testnet.order_id}", '[data-testid="order-state"]')
        button, result = _verify_near(driver, '[data-testid="order-state"]')
        button.click()
        status, text = _verify_outcome(driver, result)
        assert proxy.tampered > 0, "the page never asked for what the proxy tampers with"
        assert status == "failed", f"a {tamper.value} tampering passed: {text!r}"
        assert "✗" in text or "fail" in text.lower(), text
        assert FAILED_CHECK[tamper].search(text), f"{tamper.value}: {text!r} names no check"
        if tamper is Tamper.ORDER_PROOF:
            _shot(driver, "verify-failed", show=result)


def test_the_console_through_the_proxy_verifies_when_nothing_is_tampered(
    testnet: LiveTestnet,
) -> None:
    """The control for the test above: the proxy itself (static files, RPC, WebSocket passed
    through) breaks nothing, so each failure there is the tampering's."""
    with TamperProxy(testnet.console_url, Tamper.NONE) as proxy, browser(*DESKTOP) as driver:
        _open(driver, proxy.url, f"#/order/{testnet.order_id}", '[data-testid="order-state"]')
        first = _wait_page(driver, lambda: _shown_height(driver), "#height", PAGE_WAIT_S)
        button, result = _verify_near(driver, '[data-testid="order-state"]')
        button.click()
        status, text = _verify_outcome(driver, result)
        assert status == "ok", f"through the untampered proxy: {text!r}\n{_page_report(driver)}"
        _wait_page(
            driver,
            lambda: (_shown_height(driver) or 0) > first,
            "#height to move through the proxy's WebSocket",
            PAGE_WAIT_S,
        )
        assert proxy.tampered == 0


def test_the_tamper_proxy_breaks_the_proof_for_the_cli_too(testnet: LiveTestnet) -> None:
    """The proxy is a real liar: `sec query order --prove` (the Python verifier) refuses its
    tampered proof and accepts the same answer passed through untouched."""
    with TamperProxy(testnet.console_url, Tamper.NONE) as proxy:
        command = ("query", "order", testnet.order_id, "--prove", "--rpc", proxy.url)
        honest = run_cli(*command)
        assert "membership verified under the state root" in honest.stdout
        proxy.mode = Tamper.ORDER_PROOF
        lied = run_cli(*command, check=False)
        assert lied.returncode != 0, lied.stdout
        assert proxy.tampered == 1


def test_the_network_page_shows_new_blocks_without_a_reload(testnet: LiveTestnet) -> None:
    with browser(*DESKTOP) as driver:
        _open(driver, testnet.console_url, "#/", '[data-testid="block-row"]')
        first = _wait_page(driver, lambda: _shown_height(driver), "#height", PAGE_WAIT_S)
        newest = max(
            driver.execute_script(
                "return [...document.querySelectorAll('[data-testid=\"block-row\"]')]"
                ".map(r => Number(r.getAttribute('data-height')))"
            )
        )
        driver.execute_script("window.e2eNotReloaded = true")
        _shot(driver, "network")
        _shot(driver, "validators", show="#main .page > section:last-of-type")
        later = _wait_page(
            driver,
            lambda: (h := _shown_height(driver) or 0) > first and h,
            f"#height to pass {first} without a reload",
            PAGE_WAIT_S,
        )
        _wait_page(
            driver,
            lambda: _find(driver, f'[data-testid="block-row"][data-height="{newest + 1}"]'),
            f"a block row for height {newest + 1}",
            PAGE_WAIT_S,
        )
        assert driver.execute_script("return window.e2eNotReloaded === true"), "page reloaded"
        assert later <= (testnet.height() or 0), "the page shows a height node0 has not reached"


def test_block_transaction_and_group_pages_verify(testnet: LiveTestnet) -> None:
    group = testnet.demo_line(r"group offer ([0-9a-f]{64}) formed", DEMO_STEPS_WAIT_S).group(1)
    with browser(*DESKTOP) as driver:
        for route, name in (
            (f"#/block/{testnet.order_height}", "block"),
            (f"#/tx/{testnet.order_id}", "transaction"),
            (f"#/group/{group}", "group"),
        ):
            _open(driver, testnet.console_url, route, '[data-testid="verify"]')
            _find(driver, '[data-testid="verify"]').click()
            status, text = _verify_outcome(driver, '[data-testid="verify-result"]')
            assert status == "ok", f"{route}: {text!r}\n{_page_report(driver)}"
            _shot(driver, name)


@pytest.mark.parametrize(
    "route",
    [
        "#/",
        "#/blocks",
        "#/order/{order}",
        "#/account/{merchant}",
        "#/block/{height}",
        "#/tx/{order}",
        "#/trust",
        "#/trust/{merchant}",
    ],
)
def test_pages_fit_a_phone_without_horizontal_scrolling(testnet: LiveTestnet, route: str) -> None:
    path = route.format(
        order=testnet.order_id, merchant=dev_address("merchant1"), height=testnet.order_height
    )
    with browser(width=PHONE_WIDTH, height=844) as driver:
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": PHONE_WIDTH, "height": 844, "deviceScaleFactor": 1, "mobile": True},
        )
        _open(driver, testnet.console_url, path, "#main")
        _wait_page(driver, lambda: _loaded(driver), f"{path} to load", PAGE_WAIT_S)
        width, scroll = driver.execute_script(
            "return [window.innerWidth, document.documentElement.scrollWidth]"
        )
        # Without <meta name=viewport> a phone lays the page out 980 px wide: that is a fail.
        assert width == PHONE_WIDTH, f"the layout viewport is {width} px wide at phone width"
        assert scroll <= width, f"{path} scrolls sideways: {scroll} px of content in {width} px"
        if route == "#/order/{order}":
            _shot(driver, "phone")


def test_sec_console_on_this_machine_reads_a_node_across_origins_with_its_genesis_pinned(
    testnet: LiveTestnet,
) -> None:
    """The trustworthy way: `sec console --node URL --genesis FILE` serves this installation's
    bundle from another origin. The node allows that origin (its config.toml, then `sec testnet
    restart`); the page reads it across origins (RPC and the WebSocket), verifies against the
    pinned genesis and says so."""
    port = free_port_base(1)
    node = NODES - 1
    home = testnet.directory / f"node{node}"
    config = load_config(home)
    origins = [*config.rpc.cors_origins, f"http://127.0.0.1:{port}"]
    rpc = config.rpc.model_copy(update={"cors_origins": origins})
    (home / CONFIG_FILE).write_text(render_config(config.model_copy(update={"rpc": rpc})))
    before = testnet.height(node) or 0
    run_cli("testnet", "restart", f"node{node}", "--dir", str(testnet.directory))
    wait_until(lambda: (testnet.height(node) or 0) > before, PAGE_WAIT_S, "node3", testnet.said)
    genesis = str(testnet.directory / "genesis.json")
    arguments = ["console", "--node", testnet.rpc_urls[node], "--genesis", genesis]
    console = _start(testnet.home, "console", [*arguments, "--listen", f"127.0.0.1:{port}"])
    try:
        url = wait_until(
            lambda: _console_url(testnet.output("console.out")),
            PAGE_WAIT_S,
            "the URL printed by `sec console`",
            lambda: testnet.output("console.out") + testnet.output("console.err"),
        )
        assert url.startswith(f"http://127.0.0.1:{port}"), url
        wait_until(
            lambda: "lets this console read it" in testnet.output("console.out"),
            PAGE_WAIT_S,
            "sec console's check that the node allows its origin",
            lambda: testnet.output("console.out") + testnet.output("console.err"),
        )
        with browser(*DESKTOP) as driver:
            _open(driver, url, f"#/order/{testnet.order_id}", '[data-testid="order-state"]')
            button, result = _verify_near(driver, '[data-testid="order-state"]')
            button.click()
            status, text = _verify_outcome(driver, result)
            assert status == "ok", f"verify said {text!r}\n{_page_report(driver)}"
            box = driver.execute_script(
                "return document.querySelector('[data-e2e-box]').innerText", result
            )
            assert "pinned" in box.lower(), f"the page does not say the genesis is pinned: {box}"
            first = _wait_page(driver, lambda: _shown_height(driver), "#height", PAGE_WAIT_S)
            _wait_page(
                driver,
                lambda: (_shown_height(driver) or 0) > first,
                "#height to move (newHeads over a WebSocket from another origin)",
                PAGE_WAIT_S,
            )
            assert not console_errors(driver), console_errors(driver)
    finally:
        console.terminate()
        console.wait(timeout=STOP_GRACE_S)


def test_a_newcomer_finds_merchant1s_trust_score_sees_why_and_verifies_it(
    testnet: LiveTestnet,
) -> None:
    """From the network page, type `merchant1`: the account page shows the score of the epoch
    that counts the demo's attestations, the sentence why, and its verify passes."""
    testnet.demo_line(r"merchant1 \(sec1\w+\): trust score \d+", DEMO_WAIT_S)
    merchant = dev_address("merchant1")
    score = testnet.call("sec_getTrustScore", {"address": merchant})
    assert score["scored"] and score["positive"] >= 3, score
    with browser(*DESKTOP) as driver:
        _open(driver, testnet.console_url, "#/", "#search")
        _search(driver, "merchant1")
        shown = _wait_page(
            driver,
            lambda: _visible_text(driver, '[data-testid="trust-score"]'),
            "merchant1's trust score after searching for `merchant1`",
            PAGE_WAIT_S,
        )
        assert f"#/account/{merchant}" in driver.current_url
        assert str(score["score"]) in shown.replace(",", ""), f"{shown!r} is not {score}"
        why = _visible_text(driver, '[data-testid="trust-why"]') or ""
        assert f"{score['positive']} positive" in why, f"trust-why says {why!r}"
        assert "pre-trusted" in why, f"merchant1 is pre-trusted; trust-why says {why!r}"
        assert _visible_text(driver, '[data-testid="balance"]'), _page_report(driver)
        button, result = _verify_near(driver, '[data-testid="trust-score"]')
        button.click()
        status, text = _verify_outcome(driver, result)
        assert status == "ok", f"trust verify said {text!r}\n{_page_report(driver)}"
        _shot(driver, "account", show=result)

        _open(driver, testnet.console_url, "#/", "#search")
        _search(driver, "dev:merchant1")  # the CLI's spelling of a development account
        _wait_page(
            driver,
            lambda: driver.current_url.endswith(f"#/account/{merchant}") and _loaded(driver),
            "the account page for `dev:merchant1`",
            PAGE_WAIT_S,
        )

        _open(driver, testnet.console_url, f"#/trust/{merchant}", "#main svg")
        _wait_page(driver, lambda: _loaded(driver), "the trust neighbourhood", PAGE_WAIT_S)
        _shot(driver, "trust-graph", whole=True)
        _open(driver, testnet.console_url, "#/trust", "#main")
        _wait_page(driver, lambda: _loaded(driver), "the trust distribution", PAGE_WAIT_S)
        _shot(driver, "trust", whole=True)
