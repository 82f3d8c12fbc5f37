"""Node configuration: the `config.toml` in a node home, strictly validated.

A node home directory holds:
    config.toml   this file (documented defaults below; relative paths are relative to the home)
    node.key      the node's Ed25519 key (mode 0600)
    genesis.json  the network's genesis
    data/         the LevelDB store

Every field has a default except the node name and the addresses; unknown fields are errors
(`extra="forbid"`), so a typo in the file is reported instead of silently ignored.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ledger.errors import LedgerError
from ledger.transactions import MAX_TRANSACTION_SIZE
from ledger.validation import describe_validation_error
from secnode.runtime.logs import LogSettings
from secnode.runtime.mempool import MempoolConfig
from secnode.runtime.rpc.budget import DEFAULT_RPC_SHARE
from secnode.runtime.rpc.cors import check_origin
from secnode.runtime.rpc.hosts import check_host_name

CONFIG_FILE = "config.toml"


class ConfigError(LedgerError):
    """A missing, unreadable or invalid node configuration."""


def _check_host_port(value: str) -> str:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r} is not HOST:PORT")
    return value


def split_host_port(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host.strip("[]"), int(port)


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class PeerConfig(_Strict):
    name: str = Field(description="peer's name, for logs")
    public_key: str = Field(pattern=r"^[0-9a-f]{64}$", description="peer's node key, hex")
    address: str = Field(description="HOST:PORT of its P2P listener")

    _address = field_validator("address")(classmethod(lambda cls, v: _check_host_port(v)))


class P2PSection(_Strict):
    listen: str = Field(default="127.0.0.1:26600", description="HOST:PORT to accept peers on")
    peers: list[PeerConfig] = Field(default_factory=list, description="peers to dial")
    observers: list[str] = Field(
        default_factory=list, description="extra allowlisted node keys (hex) besides validators"
    )

    _listen = field_validator("listen")(classmethod(lambda cls, v: _check_host_port(v)))


class RPCSection(_Strict):
    listen: str = Field(default="127.0.0.1:8545", description="HOST:PORT of JSON-RPC/HTTP")
    max_body_bytes: int = Field(default=2 << 20, ge=1024, le=64 << 20)
    max_batch: int = Field(default=100, ge=1, le=10_000)
    max_request_cost: int = Field(
        default=1_000, ge=1, le=10**9, description="cost units one call or batch may need"
    )
    max_reply_bytes: int = Field(default=8 << 20, ge=64 << 10, le=1 << 30)
    rate_limit_per_s: float = Field(
        default=2_000.0,
        ge=0,
        description="cost units per second per client (identity or IP; 0: off)",
    )
    rate_limit_burst: float = Field(default=4_000.0, ge=1, description="bucket size, units")
    rpc_share: float = Field(
        default=DEFAULT_RPC_SHARE,
        gt=0,
        le=1,
        description="most of the event loop's time RPC reads may take",
    )
    max_ws_connections: int = Field(
        default=256, ge=1, le=100_000, description="most WebSocket (GET /ws) connections at once"
    )
    max_subscriptions: int = Field(
        default=16, ge=1, le=10_000, description="most subscriptions per WebSocket connection"
    )
    subscriber_queue: int = Field(
        default=256,
        ge=1,
        le=1_000_000,
        description="most unread messages per WebSocket client; one more drops the client",
    )
    console: bool = Field(default=False, description="serve the web console at / (docs/console.md)")
    cors_origins: list[str] = Field(
        default_factory=list,
        max_length=100,
        description='origins whose pages may read the node ("*": any); docs/operations.md',
    )

    # The RPC endpoint in public (docs/operations.md): TLS, restricted methods, Host names.
    tls_cert: str = Field(default="", description="PEM certificate (chain) for https/wss")
    tls_key: str = Field(default="", description="PEM private key of tls_cert")
    client_ca: str = Field(
        default="", description="PEM CA whose client certificates open restricted methods"
    )
    restricted_methods: list[str] = Field(
        default_factory=list, max_length=1000, description="methods that need a credential"
    )
    auth_tokens_file: str = Field(
        default="", description="TOML of SHA-256 digests of bearer tokens (secnode.rpc.auth)"
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        max_length=100,
        description='Host names served besides localhost and the listen host ("*": any)',
    )

    _listen = field_validator("listen")(classmethod(lambda cls, v: _check_host_port(v)))
    _origins = field_validator("cors_origins")(
        classmethod(lambda cls, v: [check_origin(origin) for origin in v])
    )
    _hosts = field_validator("allowed_hosts")(
        classmethod(lambda cls, v: [check_host_name(host) for host in v])
    )

    @model_validator(mode="after")
    def _check_tls_pairing(self) -> RPCSection:
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("tls_cert and tls_key must be set together (or both left empty)")
        if self.client_ca and not self.tls_cert:
            raise ValueError("client_ca needs TLS: set tls_cert and tls_key too")
        return self


class ConsensusSection(_Strict):
    empty_block_interval_s: float = Field(
        default=1.0, gt=0, le=60, description="an idle network still commits a block this often"
    )
    batch_wait_s: float = Field(
        default=0.02,
        gt=0,
        le=5,
        description="how long a primary waits to fill a block (a full one goes out at once)",
    )
    max_block_transactions: int = Field(default=2000, ge=1, le=10_000)
    view_change_timeout_s: float = Field(
        default=3.0, gt=0, le=600, description="initial timeout before suspecting the primary"
    )
    max_clock_drift_s: float = Field(
        default=10.0, gt=0, le=3600, description="max distance of a block time from local clock"
    )


_MEMPOOL = MempoolConfig()
"""The defaults live in one place, `secnode.runtime.mempool.MempoolConfig`."""


class MempoolSection(_Strict):
    """Admission, displacement and expiry bounds (docs/operations.md, "Mempool admission and
    eviction")."""

    max_transactions: int = Field(default=_MEMPOOL.max_transactions, ge=1)
    max_bytes: int = Field(default=_MEMPOOL.max_bytes, ge=MAX_TRANSACTION_SIZE)
    max_per_sender: int = Field(default=_MEMPOOL.max_per_sender, ge=1)
    nonce_window: int = Field(default=_MEMPOOL.nonce_window, ge=1)
    max_nonce_gap: int = Field(
        default=_MEMPOOL.max_nonce_gap,
        ge=0,
        description="how far above the sender's next nonce a transaction may be",
    )
    sender_share: float = Field(
        default=_MEMPOOL.sender_share,
        ge=0.001,  # at most ~2,000 senders above their share: displacement stays cheap
        le=1,
        description="fraction of the pool a sender holds before it can be displaced",
    )
    max_age_s: float = Field(default=_MEMPOOL.max_age_s, gt=0, le=86_400)
    gap_ttl_s: float = Field(default=_MEMPOOL.gap_ttl_s, gt=0, le=86_400)

    def mempool_config(self) -> MempoolConfig:
        return MempoolConfig(**self.model_dump())


def _check_log_levels(value: str) -> str:
    LogSettings.parse("text", value)  # LogSettingsError is a ValueError: pydantic reports it
    return value


class LogSection(_Strict):
    """`[log]`: how the node logs (`sec node start --log-format/--log-level` override it)."""

    format: str = Field(default="text", pattern=r"^(text|json)$")
    levels: str = Field(default="", description="per component, e.g. consensus=debug,p2p=warning")
    _levels = field_validator("levels")(classmethod(lambda cls, v: _check_log_levels(v)))

    def settings(self, default_level: str) -> LogSettings:
        return LogSettings.parse(self.format, self.levels, default_level)


MIN_RECENT_BLOCKS = 256
"""A pruned node still keeps at least this many blocks below its head: the certificates a
restarted replica reads (64) and the blocks a peer a little behind asks for when catching up."""


class StorageSection(_Strict):
    """Which old blocks the node keeps (docs/operations.md, "Snapshots and pruning")."""

    archive: bool = Field(default=True, description="keep every block (no pruning)")
    prune_below: int = Field(
        default=0, ge=0, description="a non-archive node drops the blocks below this height"
    )
    keep_recent: int = Field(
        default=0,
        ge=0,
        description="a non-archive node keeps only this many blocks below its head (0: no "
        "rolling window, prune_below alone)",
    )

    @model_validator(mode="after")
    def _archive_prunes_nothing(self) -> StorageSection:
        if self.archive and (self.prune_below or self.keep_recent):
            raise ValueError(
                "an archive node keeps every block: set archive = false to use prune_below "
                "or keep_recent"
            )
        if self.keep_recent and self.keep_recent < MIN_RECENT_BLOCKS:
            raise ValueError(f"keep_recent must be 0 or at least {MIN_RECENT_BLOCKS}")
        return self

    def prune_floor(self, head: int) -> int:
        """The height below which blocks may be dropped at `head` (0: none): the larger of
        prune_below and the rolling window's start, never closer to the head than
        MIN_RECENT_BLOCKS."""
        if self.archive:
            return 0
        window = head + 1 - self.keep_recent if self.keep_recent else 0
        return max(0, min(max(self.prune_below, window), head + 1 - MIN_RECENT_BLOCKS))


class StateSyncSection(_Strict):
    """Snapshots this node serves to joining peers, and joining by state sync
    (docs/operations.md, "State sync")."""

    snapshot_interval: int = Field(
        default=1000,
        ge=0,
        description="snapshot the state every this many blocks, to serve joining peers (0: never)",
    )
    snapshot_keep: int = Field(default=2, ge=1, le=100, description="snapshots kept on disk")
    snapshot_dir: str = Field(default="snapshots", description="where they are kept")
    join: bool = Field(
        default=False,
        description="with no chain data yet, join by state sync from [p2p] peers instead of "
        "replaying every block (also: sec node start --state-sync)",
    )
    join_wait_s: float = Field(
        default=10.0, gt=0, le=600, description="how long to wait for the peers to connect"
    )
    max_snapshot_bytes: int = Field(
        default=1 << 30,
        ge=1 << 20,
        description="most chunk bytes a join holds in memory before the root is checked",
    )


class NodeConfig(_Strict):
    """The whole config.toml."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$", description="node name for logs")
    key_file: str = Field(default="node.key")
    genesis_file: str = Field(default="genesis.json")
    data_dir: str = Field(default="data")
    log_level: str = Field(default="info", pattern=r"^(debug|info|warning|error)$")
    p2p: P2PSection = Field(default_factory=P2PSection)
    rpc: RPCSection = Field(default_factory=RPCSection)
    consensus: ConsensusSection = Field(default_factory=ConsensusSection)
    mempool: MempoolSection = Field(default_factory=MempoolSection)
    log: LogSection = Field(default_factory=LogSection)
    storage: StorageSection = Field(default_factory=StorageSection)
    statesync: StateSyncSection = Field(default_factory=StateSyncSection)


def load_config(home: Path) -> NodeConfig:
    path = home / CONFIG_FILE
    try:
        document = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist; create a home with `sec genesis new`") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    return parse_config(document, str(path))


def parse_config(document: Any, source: str) -> NodeConfig:
    try:
        return NodeConfig.model_validate(document)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {describe_validation_error(exc, '(file)')}") from None


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def render_config(config: NodeConfig) -> str:
    """config.toml text for `config`, with a comment per section."""
    data = config.model_dump()
    lines = ["# SEC chain node configuration (docs/operations.md lists every field).", ""]
    for key, value in data.items():
        if not isinstance(value, dict):
            lines.append(f"{key} = {_toml_value(value)}")
    for key, value in data.items():
        if isinstance(value, dict):
            lines += ["", f"[{key}]"]
            for name, item in value.items():
                if isinstance(item, list) and item and isinstance(item[0], dict):
                    lines.append(f"{name} = [")
                    lines += [f"  {_toml_value(entry)}," for entry in item]
                    lines.append("]")
                else:
                    lines.append(f"{name} = {_toml_value(item)}")
    return "\n".join(lines) + "\n"
