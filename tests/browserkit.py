"""A real headless Chromium driven by Selenium, for the console's browser tests.

`browser()` starts Debian's Chromium through its ChromeDriver (`/usr/bin/chromium`,
`/usr/bin/chromedriver`; `.ci/run` installs both). Without them the tests that use it are
skipped locally, but under CI (`CI` set) a missing browser is a failure, never a silent skip.

Pages must be served from 127.0.0.1 or localhost: WebCrypto (`crypto.subtle`) exists only in
a secure context, and loopback HTTP counts as one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import pytest

CHROMIUM: Final = os.environ.get("SEC_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER: Final = os.environ.get("SEC_CHROMEDRIVER", "/usr/bin/chromedriver")
PHONE_WIDTH: Final = 390
"""A phone's CSS width in pixels (the console must work at it)."""

# Chromium as root needs --no-sandbox; the network flags stop it from calling Google's hosts,
# which this machine's closed network refuses.
_FLAGS: Final = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
)


def require_browser() -> None:
    """Skip (locally) or fail (under CI) when Chromium or ChromeDriver is missing."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    if not missing:
        return
    message = f"browser test needs {', '.join(missing)} (apt-get install chromium chromium-driver)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def browser(width: int = 1280, height: int = 900) -> Iterator[Any]:
    """A fresh headless Chromium (a Selenium `WebDriver`) with an empty profile; quit on exit."""
    require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="sec-chromium-")
    options = webdriver.ChromeOptions()
    for flag in _FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    options.binary_location = CHROMIUM
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.set_script_timeout(60)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def console_errors(driver: Any) -> list[str]:
    """Severe messages from the page's console log so far (uncaught errors, failed loads)."""
    try:
        entries = driver.get_log("browser")
    except Exception:  # not every driver keeps a log; then there is nothing to say
        return []
    return [e["message"] for e in entries if e.get("level") == "SEVERE"]


def focus_page_top(driver: Any) -> None:
    """Put the keyboard at the top of the page, as a click on its background would: the next
    Tab goes to the first focusable element. (blur() alone leaves Chromium's sequential focus
    starting point where the focus was, e.g. on `#main` after a navigation.)"""
    driver.execute_script(
        "document.body.setAttribute('tabindex', '-1');"  # focusable by script, never by Tab
        "document.body.focus();"
    )
