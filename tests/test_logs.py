"""Node logging (secnode/runtime/logs.py): JSON lines that parse and carry the node context,
human lines, per-component levels, and clear errors for bad settings."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from secnode.runtime.config import ConfigError, parse_config
from secnode.runtime.logs import (
    COMPONENTS,
    LogSettings,
    LogSettingsError,
    NodeContext,
    bind_node,
    component_of,
    configure,
)
from tests.e2e_cluster import Cluster, run_cli

NODE_ID = "ab" * 20


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure() replaces the root handlers (pytest's capture among them): put them back."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for names in COMPONENTS.values():
        for name in names:
            logging.getLogger(name).setLevel(logging.NOTSET)


def capture(settings: LogSettings) -> io.StringIO:
    stream = io.StringIO()
    configure(settings, stream)
    return stream


class Position:
    """A node's (height, view) that the test moves."""

    def __init__(self) -> None:
        self.height, self.view = 7, 2

    def __call__(self) -> tuple[int, int]:
        return self.height, self.view


@pytest.mark.usefixtures("restore_logging")
def test_json_lines_parse_and_carry_the_node_context_in_tasks_and_threads() -> None:
    stream = capture(LogSettings.parse("json", "consensus=debug"))
    position = Position()

    async def node() -> None:
        bind_node(NodeContext("node0", NODE_ID, position))
        logging.getLogger("secnode.driver").debug("entered view %d", 2)

        async def task() -> None:  # a task the node starts inherits the binding
            position.height = 8
            logging.getLogger("secnode.driver").info('refused "x"\nsecond line')

        await asyncio.create_task(task())
        await asyncio.to_thread(lambda: logging.getLogger("secnode.trust").info("epoch"))
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("secnode.node").exception("failed")

    asyncio.run(node())
    logging.getLogger("secnode.node").info("outside any node")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 5  # one line per record: newlines and the traceback are escaped
    entries = [json.loads(line) for line in lines]
    first = entries[0]
    assert first["level"] == "debug" and first["component"] == "consensus"
    assert first["logger"] == "secnode.driver" and first["message"] == "entered view 2"
    assert (first["node"], first["node_id"], first["height"], first["view"]) == (
        "node0",
        NODE_ID,
        7,
        2,
    )
    assert entries[1]["message"] == 'refused "x"\nsecond line' and entries[1]["height"] == 8
    assert entries[2]["component"] == "trust" and entries[2]["node"] == "node0"
    assert "ValueError: boom" in entries[3]["exception"]
    assert "node" not in entries[4]  # logged outside the node: no context to claim
    assert first["time"].endswith("+00:00")


@pytest.mark.usefixtures("restore_logging")
def test_human_lines_name_the_component_and_the_node_position() -> None:
    stream = capture(LogSettings.parse("text", ""))

    async def node() -> None:
        bind_node(NodeContext("node3", NODE_ID, lambda: (12, 0)))
        logging.getLogger("p2p.host").info("p2p connected to peer")

    asyncio.run(node())
    line = stream.getvalue().strip()
    assert line.endswith(" INFO p2p [node3 h=12 v=0] p2p connected to peer"), line


@pytest.mark.usefixtures("restore_logging")
def test_levels_apply_per_component() -> None:
    stream = capture(LogSettings.parse("json", "warning,consensus=debug,rpc=error"))
    logging.getLogger("secnode.driver").debug("consensus debug")  # raised to debug: kept
    logging.getLogger("p2p.peer").info("p2p info")  # default warning: dropped
    logging.getLogger("p2p.peer").warning("p2p warning")  # kept
    logging.getLogger("secnode.rpc").warning("rpc warning")  # rpc=error: dropped
    logging.getLogger("secnode.rpc").error("rpc error")  # kept
    messages = [json.loads(line)["message"] for line in stream.getvalue().splitlines()]
    assert messages == ["consensus debug", "p2p warning", "rpc error"]
    # Reconfiguring clears what the last settings raised.
    stream = capture(LogSettings.parse("json", "info"))
    logging.getLogger("secnode.driver").debug("not any more")
    assert stream.getvalue() == ""


def test_command_line_goes_over_the_config() -> None:
    config = LogSettings.parse("text", "consensus=debug,p2p=warning", "info")
    both = config.overridden("json", "p2p=info,error")
    assert both == LogSettings("json", "error", {"consensus": "debug", "p2p": "info"})
    assert config.overridden(None, None) == config


def test_components_are_found_by_logger_prefix() -> None:
    assert component_of("secnode.driver") == "consensus"
    assert component_of("p2p.host") == "p2p"
    assert component_of("ledger.store") == "store"
    assert component_of("secnode.rpc") == "rpc"
    assert component_of("aiohttp.access") == "aiohttp"
    assert component_of("p2pish") == "p2pish"  # a prefix is a whole dotted name


@pytest.mark.parametrize(
    ("log_format", "levels", "message"),
    [
        ("xml", "", "log format 'xml' is not one of text, json"),
        ("json", "consensus=loud", "log level 'loud' for consensus"),
        ("json", "mempool=debug", "unknown component 'mempool'; components are consensus"),
        ("json", "verbose", "log level 'verbose' for default"),
    ],
)
def test_invalid_log_settings_name_the_bad_part(log_format: str, levels: str, message: str) -> None:
    with pytest.raises(LogSettingsError, match=message):
        LogSettings.parse(log_format, levels)


def test_invalid_log_section_in_config() -> None:
    document = {"name": "node0", "log": {"format": "json", "levels": "p2p=chatty"}}
    with pytest.raises(ConfigError, match=r"log\.levels.*'chatty'"):
        parse_config(document, "config.toml")
    with pytest.raises(ConfigError, match=r"log\.format"):
        parse_config({"name": "node0", "log": {"format": "yaml"}}, "config.toml")
    parsed = parse_config({"name": "node0", "log": {"levels": "p2p=warning"}}, "config.toml")
    assert parsed.log.settings("info") == LogSettings("text", "info", {"p2p": "warning"})


@pytest.mark.slow
def test_invalid_log_level_on_the_command_line_stops_the_start_with_one_line(
    tmp_path: Path,
) -> None:
    network = Cluster.create(tmp_path / "net", validators=1)
    home = network.nodes[0].home
    result = run_cli(
        "node", "start", "--home", str(home), "--log-level", "mempool=debug", check=False
    )
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr, result.stderr
    assert "sec: error: --log-format/--log-level: log level 'mempool=debug': unknown component" in (
        result.stderr
    )
