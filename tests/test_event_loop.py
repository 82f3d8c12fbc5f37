"""The node's event loop is chosen by SEC_EVENT_LOOP: asyncio (default) or uvloop (optional)."""

from __future__ import annotations

import asyncio

import pytest

from secnode.runtime.config import ConfigError
from secnode.runtime.node import event_loop_runner


async def _loop_class(out: list[str]) -> None:
    out.append(type(asyncio.get_running_loop()).__module__)


def test_asyncio_is_the_plain_loop() -> None:
    seen: list[str] = []
    event_loop_runner("asyncio")(_loop_class(seen))
    assert seen == ["asyncio.unix_events"]


def test_uvloop_runs_the_node_on_libuv() -> None:
    pytest.importorskip("uvloop")
    seen: list[str] = []
    event_loop_runner("uvloop")(_loop_class(seen))
    assert seen == ["uvloop"]


def test_invalid_event_loop_name_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="SEC_EVENT_LOOP must be asyncio or uvloop, not 'tokio'"):
        event_loop_runner("tokio")
