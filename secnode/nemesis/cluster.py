"""The nemesis's network: N validator processes whose P2P links run through a `LinkLayer`.

`NemesisCluster.create(directory, proxies)` writes a development network (`create_network`, on
free ports), shortens the consensus timers so a cycle of a few seconds sees blocks and view
changes, and points every node's peer addresses at the link layer. Each node runs as
`python cli.py node start --home HOME`, output appended to HOME/node.log, in its own session and
with PR_SET_PDEATHSIG so it dies with the nemesis.

Invariant: this object is the only owner of the node processes. `expected_down` says which nodes
the nemesis itself has stopped (killed, or stopped for a restart); any other node whose process
has ended exited on its own, which `reap_crashes` reports (with the reason from its log) and
restarts.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from secnode.client.rpc import RpcClient, RpcClientError
from secnode.nemesis.proxy import LinkLayer
from secnode.network.home import create_network
from secnode.network.ports import free_port_base
from secnode.network.testnet import describe_exit, failure_reason
from secnode.runtime.byzantine import ENVIRONMENT_VARIABLE as BYZANTINE_VARIABLE
from secnode.runtime.config import CONFIG_FILE, load_config, render_config

ROOT: Final = Path(__file__).resolve().parents[2]
HOST: Final = "127.0.0.1"
STOP_GRACE_S: Final = 3.0
"""A restart's clean stop may take this long, then SIGKILL: a node's graceful shutdown took 5-6 s
on a loaded machine, and a restart for a fault needs no clean stop (crashes are safe)."""
RPC_TIMEOUT_S: Final = 3.0
CONSENSUS: Final[dict[str, float]] = {
    "empty_block_interval_s": 0.5,
    "view_change_timeout_s": 1.5,
    "batch_wait_s": 0.02,
}
"""Two empty blocks a second, a silent primary replaced in about 1.5 s."""
_PR_SET_PDEATHSIG: Final = 1


def _die_with_parent() -> None:
    """In the child between fork and exec: the kernel kills the node if the nemesis dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


CLOCK_OFFSET_VARIABLE: Final = "SEC_CLOCK_OFFSET_S"
"""Read by the node at start (another change adds it): seconds added to its wall clock."""
FAULT_VARIABLES: Final = (BYZANTINE_VARIABLE, CLOCK_OFFSET_VARIABLE)
"""Environment variables that turn a node faulty: only a fault of the schedule sets them."""


def _honest_environment() -> dict[str, str]:
    """The nemesis's own environment without any fault variable it may have inherited."""
    return {k: v for k, v in os.environ.items() if k not in FAULT_VARIABLES}


def free_ports(count: int) -> list[int]:
    """`count` consecutive ports that were free on HOST a moment ago (below the ephemeral range,
    `secnode.network.ports`)."""
    base = free_port_base(count, HOST)
    return list(range(base, base + count))


@dataclass(frozen=True, slots=True)
class Crash:
    """A node process that ended without the nemesis stopping it."""

    node: str
    how: str
    """`describe_exit` of its status."""
    reason: str
    """The line of its log that says why."""


@dataclass(slots=True)
class NodeProcess:
    index: int
    home: Path
    rpc_url: str
    process: subprocess.Popen[bytes] | None = None
    environment: dict[str, str] = field(default_factory=dict)
    """Extra environment of the current run (clock skew, Byzantine behaviour)."""
    log_offset: int = 0

    @property
    def name(self) -> str:
        return self.home.name

    @property
    def log_path(self) -> Path:
        return self.home / "node.log"

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class NemesisCluster:
    """Node processes under the nemesis's control (see the module docstring)."""

    def __init__(self, nodes: list[NodeProcess], links: LinkLayer) -> None:
        self.nodes = nodes
        self.links = links
        self.expected_down: set[int] = set()

    @classmethod
    def create(cls, directory: Path, validators: int) -> NemesisCluster:
        ports = free_ports(2 * validators)
        p2p_ports, rpc_ports = ports[:validators], ports[validators:]
        plans = create_network(directory, validators, dev=True)
        links = LinkLayer(HOST, p2p_ports)
        links.start()
        index_of = {plan.name: index for index, plan in enumerate(plans)}
        nodes = []
        for index, plan in enumerate(plans):
            home = directory / plan.name
            config = load_config(home)
            peers = [
                peer.model_copy(
                    update={"address": f"{HOST}:{links.port(index, index_of[peer.name])}"}
                )
                for peer in config.p2p.peers
            ]
            tuned = config.model_copy(
                update={
                    "p2p": config.p2p.model_copy(
                        update={"listen": f"{HOST}:{p2p_ports[index]}", "peers": peers}
                    ),
                    "rpc": config.rpc.model_copy(update={"listen": f"{HOST}:{rpc_ports[index]}"}),
                    "consensus": config.consensus.model_copy(update=CONSENSUS),
                }
            )
            (home / CONFIG_FILE).write_text(render_config(tuned))
            load_config(home)  # the rewritten file must load as strictly as the original
            nodes.append(NodeProcess(index, home, f"http://{HOST}:{rpc_ports[index]}"))
        return cls(nodes, links)

    # --- processes ---------------------------------------------------------------------------

    def start(self, index: int, environment: dict[str, str] | None = None) -> None:
        node = self.nodes[index]
        node.environment = dict(environment or {})
        node.log_offset = node.log_path.stat().st_size if node.log_path.exists() else 0
        with node.log_path.open("ab") as log:
            node.process = subprocess.Popen(
                [sys.executable, str(ROOT / "cli.py"), "node", "start", "--home", str(node.home)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**_honest_environment(), **node.environment},
                cwd=ROOT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        self.expected_down.discard(index)

    def kill(self, index: int) -> None:
        """SIGKILL (a paused process dies too) and reap."""
        self.expected_down.add(index)
        process = self.nodes[index].process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def stop(self, index: int) -> None:
        """SIGTERM, a clean stop (SIGKILL after STOP_GRACE_S)."""
        self.expected_down.add(index)
        process = self.nodes[index].process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGCONT)  # a paused node could not act on SIGTERM
        process.terminate()
        try:
            process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self, index: int, environment: dict[str, str] | None = None) -> None:
        self.stop(index)
        self.start(index, environment)

    def signal(self, index: int, signum: signal.Signals) -> None:
        process = self.nodes[index].process
        if process is not None and process.poll() is None:
            process.send_signal(signum)

    def reap_crashes(self) -> list[Crash]:
        """Every node that ended on its own since the last call; each is started again."""
        crashes = []
        for node in self.nodes:
            if node.index in self.expected_down or node.process is None:
                continue
            code = node.process.poll()
            if code is None:
                continue
            reason = failure_reason(node.log_path, node.log_offset)
            crashes.append(Crash(node.name, describe_exit(code), reason))
            self.start(node.index, node.environment)
        return crashes

    def close(self) -> None:
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.kill()
            if node.process is not None:
                node.process.wait()
        self.links.close()

    # --- RPC ---------------------------------------------------------------------------------

    def call(self, index: int, method: str, params: dict[str, Any] | None = None) -> Any:
        """One JSON-RPC call (RpcClientError if the node does not answer)."""
        return RpcClient(self.nodes[index].rpc_url, RPC_TIMEOUT_S).call(method, params)

    def call_batch(self, index: int, method: str, params: list[dict[str, Any]]) -> list[Any | None]:
        """Results of one JSON-RPC batch of `method` calls, in order, None for each call that
        answered an error (RpcClientError if the node does not answer the batch)."""
        batch = [
            {"jsonrpc": "2.0", "id": i, "method": method, "params": p} for i, p in enumerate(params)
        ]
        request = urllib.request.Request(
            self.nodes[index].rpc_url + "/rpc",
            data=json.dumps(batch).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=RPC_TIMEOUT_S * 3) as response:
                answers = json.loads(response.read())
        except (OSError, ValueError) as exc:  # URLError and HTTPError are OSErrors
            raise RpcClientError(f"{self.nodes[index].name} {method} batch: {exc}") from None
        if not isinstance(answers, list):
            raise RpcClientError(f"{self.nodes[index].name} {method} batch: {answers!r:.200}")
        by_id = {a.get("id"): a for a in answers if isinstance(a, dict)}
        return [(by_id.get(i) or {}).get("result") for i in range(len(params))]

    def status(self, index: int) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = self.call(index, "sec_status")
        except RpcClientError:
            return None
        return result
