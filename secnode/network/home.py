"""Creating node homes and whole networks (`sec genesis new`, `sec testnet`).

A network directory made by `create_network` holds `genesis.json`, one home per validator (`node0/`
...) with its own config.toml, node.key and a copy of the genesis, and `accounts/` with the key
files of the genesis accounts (fresh random keys unless `dev` is set, in which case the public
development keys of secnode.network.devnet are used and every file says so). Every key file written
here records the genesis document hash of its network, so `sec` refuses to sign with it for a node
of another network. `new_chain_id` gives `sec genesis new` a chain id of its own per network
(transactions sign chain id and genesis hash: docs/protocol.md, "Signing domain").
"""

from __future__ import annotations

import json
import secrets
import shutil
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.genesis import parse_genesis
from ledger.keys import PrivateKey
from secnode.console import LOCAL_ORIGINS
from secnode.keyfile import write_key_file
from secnode.keystore import DEFAULT_SCRYPT, ScryptParams
from secnode.network.devnet import (
    DEV_ACCOUNTS,
    DEV_PARAMETERS,
    dev_account_key,
    dev_genesis_document,
    validator_key,
)
from secnode.network.keylist import ValidatorKey
from secnode.runtime.config import (
    CONFIG_FILE,
    ConfigError,
    NodeConfig,
    P2PSection,
    PeerConfig,
    RPCSection,
    load_config,
    parse_config,
    render_config,
)

P2P_BASE_PORT = 26600
RPC_BASE_PORT = 8545


def new_chain_id() -> str:
    """A fresh chain id, "sec-" + 8 random hex digits: two networks made independently get
    different ids (and different genesis hashes) with overwhelming probability."""
    return f"sec-{secrets.token_hex(4)}"


@dataclass(frozen=True, slots=True)
class NodePlan:
    """Where one node of a network lives and listens."""

    name: str
    public_key: bytes
    key: PrivateKey | None
    """None when the operator keeps it (`sec genesis new --validators-file`): the home gets no
    node.key, the operator puts theirs there."""
    p2p_host: str
    p2p_port: int
    rpc_host: str
    rpc_port: int

    @property
    def p2p_address(self) -> str:
        return f"{self.p2p_host}:{self.p2p_port}"

    @property
    def rpc_url(self) -> str:
        return f"http://{self.rpc_host}:{self.rpc_port}"


def plan_nodes(
    count: int,
    *,
    dev: bool,
    hosts: list[str] | None = None,
    p2p_base: int = P2P_BASE_PORT,
    rpc_base: int = RPC_BASE_PORT,
    operator_keys: Sequence[ValidatorKey] | None = None,
) -> list[NodePlan]:
    """Names, keys and addresses for `count` validators.

    `hosts` are "HOST" or "HOST:P2P_PORT" per node (nodes on separate machines); without it,
    all nodes listen on 127.0.0.1 with consecutive ports. With `operator_keys` (one per
    validator), node i is named and keyed by entry i and its private key is not known here.
    """
    if hosts is not None and len(hosts) != count:
        raise ConfigError(f"--hosts lists {len(hosts)} hosts for {count} validators")
    if operator_keys is not None and len(operator_keys) != count:
        raise ConfigError(f"{len(operator_keys)} validator keys listed for {count} validators")
    plans = []
    for index in range(count):
        name, key, public_key = _identity(index, dev=dev, operator_keys=operator_keys)
        host, p2p_port = "127.0.0.1", p2p_base + index
        rpc_host, rpc_port = "127.0.0.1", rpc_base + index
        if hosts is not None:
            entry = hosts[index]
            host, _, port = entry.partition(":")
            if port and not port.isdigit():
                raise ConfigError(f"--hosts entry {entry!r} is not HOST or HOST:PORT")
            p2p_port = int(port) if port else p2p_base
            rpc_host, rpc_port = host, rpc_base
        plans.append(NodePlan(name, public_key, key, host, p2p_port, rpc_host, rpc_port))
    return plans


def _identity(
    index: int, *, dev: bool, operator_keys: Sequence[ValidatorKey] | None
) -> tuple[str, PrivateKey | None, bytes]:
    """Node `index`'s name, private key (None if its operator keeps it) and public key."""
    if operator_keys is not None:
        listed = operator_keys[index]
        return listed.name, None, listed.public_key
    name = f"node{index}"
    key = validator_key(name) if dev else PrivateKey.generate()
    return name, key, bytes(key.public_key)


def node_config(
    plan: NodePlan, everyone: list[NodePlan], *, listen_all: bool, console: bool = False
) -> NodeConfig:
    """`plan`'s config.toml; with `console`, the node serves the web console and lets
    `sec console` at its default address read it (`console_settings`)."""
    peers = [
        PeerConfig(name=p.name, public_key=p.public_key.hex(), address=p.p2p_address)
        for p in everyone
        if p.name != plan.name
    ]
    bind = "0.0.0.0" if listen_all else plan.p2p_host
    rpc_bind = "0.0.0.0" if listen_all else plan.rpc_host
    return NodeConfig(
        name=plan.name,
        p2p=P2PSection(listen=f"{bind}:{plan.p2p_port}", peers=peers),
        rpc=RPCSection(listen=f"{rpc_bind}:{plan.rpc_port}", **console_settings(console)),
    )


def console_settings(console: bool) -> dict[str, Any]:
    """The `[rpc]` keys of the web console: on, and readable by `sec console` at its default
    address (both origins a browser may send for it); or both off, the node default."""
    return {"console": console, "cors_origins": list(LOCAL_ORIGINS) if console else []}


def enable_console(home: Path) -> bool:
    """Turn the web console on in `home`'s config.toml if the file does not mention it (a home
    written before the console existed); a setting the file has is kept. True if the file was
    rewritten (rendered anew, as `write_home` writes it)."""
    load_config(home)  # a missing or invalid file is reported as such, not rewritten
    path = home / CONFIG_FILE
    document = tomllib.loads(path.read_text())
    section = document.setdefault("rpc", {})
    missing = {k: v for k, v in console_settings(True).items() if k not in section}
    if not missing:
        return False
    section.update(missing)
    path.write_text(render_config(parse_config(document, str(path))))
    return True


def write_home(
    home: Path,
    plan: NodePlan,
    config: NodeConfig,
    genesis_path: Path,
    *,
    genesis_hash: bytes | None = None,
    passphrase: str | None = None,
    scrypt: ScryptParams = DEFAULT_SCRYPT,
) -> None:
    """Create one node home (refuses to overwrite an existing config); the node key records
    `genesis_hash` when given, and is sealed with `passphrase` when given. A plan without a
    private key (the operator's own) gets no key file: its operator adds node.key."""
    if (home / CONFIG_FILE).exists():
        raise ConfigError(f"{home / CONFIG_FILE} already exists; refusing to overwrite a node home")
    home.mkdir(parents=True, exist_ok=True)
    if plan.key is not None:
        write_key_file(
            home / config.key_file,
            plan.key,
            overwrite=True,
            genesis_hash=genesis_hash,
            passphrase=passphrase,
            scrypt=scrypt,
        )
    shutil.copyfile(genesis_path, home / config.genesis_file)
    (home / CONFIG_FILE).write_text(render_config(config))


def genesis_document(
    plans: list[NodePlan], *, dev: bool, chain_id: str | None, account_keys: dict[str, PrivateKey]
) -> dict[str, Any]:
    document = dev_genesis_document(len(plans))
    document["validators"] = [{"name": p.name, "public_key": p.public_key.hex()} for p in plans]
    if not dev:
        document["note"] = "Generated by `sec genesis new`."
        document["dev_key_labels"] = False
        for entry in document["accounts"]:
            entry["public_key"] = account_keys[entry["name"]].public_key.hex()
    if chain_id:
        document["chain_id"] = chain_id
    document["parameters"] = dict(DEV_PARAMETERS)
    return document


def create_network(
    out: Path,
    validators: int,
    *,
    dev: bool = False,
    hosts: list[str] | None = None,
    chain_id: str | None = None,
    p2p_base: int = P2P_BASE_PORT,
    rpc_base: int = RPC_BASE_PORT,
    console: bool = False,
    passphrase: str | None = None,
    scrypt: ScryptParams = DEFAULT_SCRYPT,
    operator_keys: Sequence[ValidatorKey] | None = None,
) -> list[NodePlan]:
    """Write genesis.json, one home per validator and the account keys under `out`; every key
    file sealed with `passphrase` (scrypt cost `scrypt`) when one is given.

    With `operator_keys` (the validators' public keys, `secnode.network.keylist`) the genesis
    names those validators and their homes hold everything but node.key, which each operator
    already has on their own machine; `validators` must be their number.

    Without `hosts`, node i listens on 127.0.0.1 at P2P port `p2p_base` + i and RPC port
    `rpc_base` + i; with `hosts`, every node uses `rpc_base` (and `p2p_base` unless its entry
    names a port) on its own host. With `console`, every node serves the web console
    (`node_config`)."""
    if validators < 1:
        raise ConfigError("a network needs at least one validator")
    if operator_keys is not None and dev:
        raise ConfigError(
            "a validator key list with --dev: development keys are derived, not listed"
        )
    for option, base in (("--p2p-port-base", p2p_base), ("--rpc-port-base", rpc_base)):
        last = base + (0 if hosts is not None else validators - 1)
        if base < 1 or last > 65535:
            raise ConfigError(f"{option} {base}: ports {base}..{last} are not all in 1..65535")
    if (out / "genesis.json").exists():
        raise ConfigError(f"{out / 'genesis.json'} already exists; choose an empty --out")
    plans = plan_nodes(
        validators,
        dev=dev,
        hosts=hosts,
        p2p_base=p2p_base,
        rpc_base=rpc_base,
        operator_keys=operator_keys,
    )
    account_keys = {
        name: dev_account_key(name) if dev else PrivateKey.generate() for name, _, _ in DEV_ACCOUNTS
    }
    document = genesis_document(plans, dev=dev, chain_id=chain_id, account_keys=account_keys)
    # Never write a genesis that fails to load; its hash is what the key files are made for.
    genesis_hash = parse_genesis(document, "generated genesis").document_hash()
    out.mkdir(parents=True, exist_ok=True)
    genesis_path = out / "genesis.json"
    genesis_path.write_text(json.dumps(document, indent=2) + "\n")
    for name, key in account_keys.items():
        path = out / "accounts" / f"{name}.key"
        write_key_file(
            path,
            key,
            overwrite=True,
            genesis_hash=genesis_hash,
            passphrase=passphrase,
            scrypt=scrypt,
        )
    for plan in plans:
        config = node_config(plan, plans, listen_all=hosts is not None, console=console)
        write_home(
            out / plan.name,
            plan,
            config,
            genesis_path,
            genesis_hash=genesis_hash,
            passphrase=passphrase,
            scrypt=scrypt,
        )
    return plans
