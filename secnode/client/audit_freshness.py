"""The auditor's memory: refuse an answer older than what this auditor has already verified.

A node that was honest yesterday can serve yesterday's certified state today: every proof still
checks. So `sec audit trust|chain` remember, per chain (keyed by the genesis document hash), the
newest certified block they verified, and refuse an answer below it; with `--max-age SECONDS`
they also refuse a verified block whose block time is older than that (docs/protocol.md §17.5).

State file (JSON, default `~/.sec/audit-state.json`, or `$SEC_AUDIT_STATE`, or `--state FILE`):

    {"version": 1, "chains": {"<genesis hash hex>": {"height": H, "block_hash": "<hex>",
                                                      "time_ms": T, "node": "<rpc url>"}}}

Invariants: a chain's recorded height never decreases; it is written only after a full
verification succeeded (so it is always a certified height); the file is replaced atomically
(write a temporary file, then rename). `Freshness` does no I/O and reads no clock: the state is
loaded and saved by `load_state`/`save_state`, and the time is given to it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from ledger.blocks import BlockHeader
from secnode.client.audit import AuditFailure

STATE_VERSION: Final = 1
STATE_ENV: Final = "SEC_AUDIT_STATE"
CHECK: Final = "freshness"


def default_state_path() -> Path:
    """`$SEC_AUDIT_STATE`, else ~/.sec/audit-state.json."""
    configured = os.environ.get(STATE_ENV)
    if configured:
        return Path(configured)
    return Path.home() / ".sec" / "audit-state.json"


def block_time_text(time_ms: int) -> str:
    """A block time as UTC ISO 8601 with milliseconds, e.g. 2026-12-06T21:00:00.000Z."""
    moment = datetime.fromtimestamp(time_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{time_ms % 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class Seen:
    """The newest certified block this auditor verified on one chain."""

    height: int
    block_hash: str
    """Header hash, hex."""
    time_ms: int
    """The block's timestamp_ms."""
    node: str
    """The RPC URL that served it."""


def _parse_seen(value: Any, path: Path) -> Seen:
    try:
        seen = Seen(value["height"], value["block_hash"], value["time_ms"], value["node"])
    except (KeyError, TypeError) as exc:
        raise AuditFailure(CHECK, f"state file {path}: bad entry ({exc})") from None
    if not (isinstance(seen.height, int) and isinstance(seen.time_ms, int)):
        raise AuditFailure(CHECK, f"state file {path}: height and time_ms must be integers")
    return seen


def load_state(path: Path) -> dict[str, Seen]:
    """Every chain's entry, by genesis hash hex; {} if the file does not exist."""
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise AuditFailure(CHECK, f"cannot read state file {path}: {exc}") from None
    if not isinstance(document, dict) or document.get("version") != STATE_VERSION:
        raise AuditFailure(CHECK, f"state file {path} is not version {STATE_VERSION}")
    chains = document.get("chains")
    if not isinstance(chains, dict):
        raise AuditFailure(CHECK, f"state file {path} has no chains map")
    return {str(key): _parse_seen(value, path) for key, value in chains.items()}


def save_state(path: Path, chains: dict[str, Seen]) -> None:
    """Replace the state file atomically."""
    document = {
        "version": STATE_VERSION,
        "chains": {
            key: {
                "height": seen.height,
                "block_hash": seen.block_hash,
                "time_ms": seen.time_ms,
                "node": seen.node,
            }
            for key, seen in sorted(chains.items())
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(document, indent=1) + "\n")
    temporary.replace(path)


@dataclass
class Freshness:
    """The checks of one audit run against one node (see the module docstring)."""

    chain: str
    """Genesis document hash, hex: the key of this chain's entry."""
    node: str
    """The RPC URL being audited (named in every refusal)."""
    seen: Seen | None
    """This chain's entry before the run, if any."""
    now_ms: int
    """The auditor's clock, for --max-age."""
    max_age_s: float | None = None
    """Refuse a verified block older than this many seconds (None: no bound)."""
    state_path: Path | None = None
    """Named in refusals so the operator knows what to delete after resetting a devnet."""

    def check_height(self, height: int) -> None:
        """Refuse an answer at `height` if this auditor already verified a newer block."""
        seen = self.seen
        if seen is not None and height < seen.height:
            raise AuditFailure(
                CHECK,
                f"node {self.node} answered at height {height}, older than height "
                f"{seen.height} this auditor already verified (served by {seen.node}, block "
                f"time {block_time_text(seen.time_ms)}){self._where()}",
            )

    def check_age(self, header: BlockHeader) -> None:
        """Refuse a block whose time is more than max_age_s before now."""
        if self.max_age_s is None:
            return
        age_ms = self.now_ms - header.timestamp_ms
        if age_ms > self.max_age_s * 1000:
            raise AuditFailure(
                CHECK,
                f"node {self.node} answered at height {header.height} with block time "
                f"{block_time_text(header.timestamp_ms)}, {age_ms / 1000:.1f} s old; "
                f"--max-age is {self.max_age_s:g} s",
            )

    def accept(self, header: BlockHeader, *, pinned: bool = False) -> Seen:
        """After a successful verification of `header`: the checks once more on the certified
        header, then the entry to record (the newer of the old entry and this block).
        `pinned`: the user asked for this height (`--to`), so it may be older than the seen
        one (the node's own height was checked instead)."""
        if not pinned:
            self.check_height(header.height)
        self.check_age(header)
        seen = self.seen
        block_hash = header.hash().hex()
        if seen is not None and header.height == seen.height and block_hash != seen.block_hash:
            raise AuditFailure(
                CHECK,
                f"node {self.node} has certified block {block_hash} at height {header.height}, "
                f"but this auditor verified {seen.block_hash} there (served by {seen.node}): "
                f"a fork, or a new network with the same genesis{self._where()}",
            )
        if seen is not None and seen.height >= header.height:
            return seen
        return Seen(header.height, block_hash, header.timestamp_ms, self.node)

    def _where(self) -> str:
        if self.state_path is None:
            return ""
        return f"; remembered in {self.state_path}"
