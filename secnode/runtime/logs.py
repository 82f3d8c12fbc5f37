"""The node's logging: human lines or one JSON object per line, a level per component, and
the node's name, id, height and view on every line logged inside a node.

`LogSettings.parse(format, levels)` checks what an operator wrote (`--log-format`,
`--log-level consensus=debug,p2p=warning`, or config.toml `[log]`) and raises `LogSettingsError`
naming the bad part; `configure(settings)` installs one stderr handler on the root logger with
`NodeContextFilter` and sets each component's level.

Node context: `Node.run` calls `bind_node(context)`; the binding lives in a `ContextVar`, so
the tasks and threads the node starts inherit it (asyncio copies the context into every task,
timer callback and `to_thread`) and several nodes in one process each stamp their own lines.
The filter reads the context when a record is emitted (a few attribute reads), so every
consensus line carries the height and view at that instant.

Invariant: formatting never raises on a record (a value JSON cannot encode is written as its
`str`), and a line is always one line: JSON escapes newlines, tracebacks included.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, TextIO

LOG_FORMATS: Final = ("text", "json")
LEVELS: Final = ("debug", "info", "warning", "error", "critical")

COMPONENTS: Final[Mapping[str, tuple[str, ...]]] = {
    "consensus": ("secnode.driver", "consensus"),
    "p2p": ("p2p",),
    "rpc": ("secnode.rpc",),
    "node": ("secnode.node",),
    "app": ("secnode.app", "secnode.order_index"),
    "trust": ("secnode.trust",),
    "store": ("ledger",),
    "keys": ("secnode.keyfile",),
    "statesync": ("secnode.statesync",),
}
"""A component an operator names -> the loggers it sets (a logger's children follow it)."""


class LogSettingsError(ValueError):
    """A log format or level specification that cannot be used; the message names the part."""


@dataclass(frozen=True, slots=True)
class NodeContext:
    """Who is logging: read from the node when a record is emitted."""

    name: str
    """The node's name (config.toml `name`)."""
    node_id: str
    """The node's address (sec1...)."""
    position: Callable[[], tuple[int, int]]
    """(height of the last committed block, current view) now."""


_node: ContextVar[NodeContext | None] = ContextVar("sec_log_node", default=None)


def bind_node(context: NodeContext) -> None:
    """Stamp every line logged from the current context (and the tasks it starts) with `context`."""
    _node.set(context)


class NodeContextFilter(logging.Filter):
    """Adds `node`, `node_id`, `height` and `view` to records logged inside a bound node."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _node.get()
        if context is not None and not hasattr(record, "node"):
            height, view = context.position()
            record.node = context.name
            record.node_id = context.node_id
            record.height = height
            record.view = view
        return True


def component_of(logger_name: str) -> str:
    """The component a logger belongs to (its top-level name when none claims it)."""
    for component, prefixes in COMPONENTS.items():
        for prefix in prefixes:
            if logger_name == prefix or logger_name.startswith(prefix + "."):
                return component
    return logger_name.split(".", 1)[0]


class TextFormatter(logging.Formatter):
    """`2026-12-07 06:30:00,123 INFO consensus [node-0 h=12 v=0] message` (context if bound)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(component)s%(where)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.component = component_of(record.name)
        node = getattr(record, "node", None)
        record.where = (
            ""
            if node is None
            else f" [{node} h={getattr(record, 'height', '?')} v={getattr(record, 'view', '?')}]"
        )
        return super().format(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, component, logger, message,
    the node context when bound, and `exception` (the traceback text) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "component": component_of(record.name),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("node", "node_id", "height", "view"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class LogSettings:
    """How the node logs (see the module docstring)."""

    format: str = "text"
    """"text" (human lines) or "json" (one object per line)."""
    level: str = "info"
    """Level of every logger no component entry names."""
    components: Mapping[str, str] = field(default_factory=dict)
    """Component -> its level."""

    @classmethod
    def parse(cls, log_format: str, levels: str, default_level: str = "info") -> LogSettings:
        """From `--log-format` and `--log-level` text: `LEVEL`, `COMPONENT=LEVEL` or a comma
        list of both (a bare level sets the default). LogSettingsError names what is wrong."""
        if log_format not in LOG_FORMATS:
            raise LogSettingsError(
                f"log format {log_format!r} is not one of {', '.join(LOG_FORMATS)}"
            )
        level = _checked_level(default_level, "default")
        components: dict[str, str] = {}
        for part in (p.strip() for p in levels.split(",")):
            if not part:
                continue
            component, sep, value = part.partition("=")
            if not sep:
                level = _checked_level(component.strip(), "default")
                continue
            component = component.strip()
            if component not in COMPONENTS:
                raise LogSettingsError(
                    f"log level {part!r}: unknown component {component!r}; "
                    f"components are {', '.join(COMPONENTS)}"
                )
            components[component] = _checked_level(value.strip(), component)
        return cls(log_format, level, components)

    def overridden(self, log_format: str | None, levels: str | None) -> LogSettings:
        """These settings (config.toml's) with the command line's on top: its format if given,
        its default level and component levels over these (LogSettingsError as `parse`)."""
        parsed = LogSettings.parse(log_format or self.format, levels or "", self.level)
        return LogSettings(parsed.format, parsed.level, {**self.components, **parsed.components})


def _checked_level(value: str, what: str) -> str:
    lowered = value.lower()
    if lowered not in LEVELS:
        raise LogSettingsError(f"log level {value!r} for {what} is not one of {', '.join(LEVELS)}")
    return lowered


def configure(settings: LogSettings, stream: TextIO | None = None) -> logging.Handler:
    """Send every log record to `stream` (stderr) as `settings` say; replaces the root
    logger's handlers, so calling it again reconfigures. Returns the handler."""
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(JsonFormatter() if settings.format == "json" else TextFormatter())
    handler.addFilter(NodeContextFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.level.upper())
    for component in COMPONENTS:
        level = settings.components.get(component)
        for name in COMPONENTS[component]:
            # A component without an entry follows the root (NOTSET), so reconfiguring clears it.
            logging.getLogger(name).setLevel(logging.NOTSET if level is None else level.upper())
    return handler
