"""Real multi-process SEC chain networks for the end-to-end tests (tests/test_e2e_*.py).

`Cluster.create(directory)` makes a network the way an operator does, through the CLI
(`sec genesis new --dev`, on ports probed free so a developer's running testnet is never hit),
then shortens the consensus timers in each node's config.toml so a test sees dozens of blocks
and a view change within seconds. Each node runs as its own process,
`python cli.py node start --home HOME`, logging to HOME/node.log; optionally each inside its
own network namespace (`ip netns exec NS ...`), in which case RPC calls and CLI commands run
from a client namespace of the test's choosing.

Tests see the nodes only as an operator does: JSON-RPC over HTTP, the `sec` CLI, the logs and
process signals. Every wait polls with a deadline (`wait_until`) and fails with what it waited
for, what it last saw, and the tail of every node's log. `close()` (the `with` block's exit)
kills every process the cluster started, whatever the test did; the processes also get SIGKILL
from the kernel if the test process itself dies (PR_SET_PDEATHSIG), so none outlive a run.
"""

from __future__ import annotations

import ctypes
import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, TypeVar

from ledger.keys import format_address
from secnode.network.devnet import dev_account_key
from secnode.network.ports import free_port_base as free_port_base  # re-exported for the tests
from secnode.runtime.config import CONFIG_FILE, load_config, render_config

ROOT: Final = Path(__file__).resolve().parents[1]
CLI: Final = ROOT / "cli.py"
PYTHON: Final = sys.executable

FAST_CONSENSUS: Final[dict[str, float]] = {
    "empty_block_interval_s": 0.2,
    "view_change_timeout_s": 1.0,
    "batch_wait_s": 0.02,
}
"""Test timers: 5 empty blocks a second, a silent primary replaced after about a second."""

POLL_INTERVAL_S: Final = 0.1
RPC_TIMEOUT_S: Final = 5.0
STOP_GRACE_S: Final = 15.0
LOG_TAIL_LINES: Final = 25

T = TypeVar("T")

_PR_SET_PDEATHSIG: Final = 1
# A JSON-RPC POST made from inside a network namespace: `python -c` this, URL, timeout; the
# request body on stdin, the response body on stdout.
_RPC_IN_NAMESPACE: Final = (
    "import sys, urllib.request\n"
    "request = urllib.request.Request(sys.argv[1], data=sys.stdin.buffer.read(),"
    " headers={'Content-Type': 'application/json'})\n"
    "with urllib.request.urlopen(request, timeout=float(sys.argv[2])) as response:\n"
    "    sys.stdout.buffer.write(response.read())\n"
)


class NodeUnreachable(Exception):
    """A node's RPC did not answer (not started, killed, paused or overloaded)."""


class WaitTimeout(AssertionError):
    """`wait_until` gave up: the awaited condition did not come about in time."""


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: if the test process dies, the kernel kills the
    node too (the setting survives exec, including `ip netns exec`'s)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float,
    what: str,
    diagnostics: Callable[[], str] = lambda: "",
) -> T:
    """Poll `predicate` until it returns something other than None or False (returned), or
    `timeout` seconds pass (WaitTimeout naming `what`, with `diagnostics()`)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value is not None and value is not False:
            return value
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:g} s waiting for {what}\n{diagnostics()}")
        time.sleep(POLL_INTERVAL_S)


def run_cli(
    *arguments: str, netns: str | None = None, timeout: float = 60.0, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """`python cli.py ARGUMENTS` (inside `netns` if given); with `check`, a non-zero exit is an
    AssertionError carrying the command's output."""
    command = [*_netns_prefix(netns), PYTHON, str(CLI), *arguments]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"`sec {' '.join(arguments)}` exited {result.returncode}\n"
            f"stdout: {result.stdout.strip()}\nstderr: {result.stderr.strip()}"
        )
    return result


def _netns_prefix(netns: str | None) -> list[str]:
    return [] if netns is None else ["ip", "netns", "exec", netns]


@dataclass(slots=True)
class ClusterNode:
    """One node home and, while it runs, its process."""

    index: int
    name: str
    home: Path
    rpc_url: str
    p2p_port: int
    netns: str | None = None
    process: subprocess.Popen[bytes] | None = None
    log_file: IO[bytes] | None = None
    address: str = ""
    """The node's sec1 address (from sec_status once it has answered)."""
    start_options: tuple[str, ...] = ()
    """More `sec node start` options (e.g. --passphrase-file for an encrypted node.key)."""

    @property
    def log_path(self) -> Path:
        return self.home / "node.log"

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass(slots=True)
class Cluster:
    """A network of node processes under a test's control (see the module docstring)."""

    directory: Path
    nodes: list[ClusterNode]
    extra: list[ClusterNode] = field(default_factory=list)
    """Non-validator nodes a test added (they are stopped with the cluster)."""
    client_netns: str | None = None
    """The network namespace RPC calls and CLI commands run in (None: the test's own)."""

    # --- creation ----------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        directory: Path,
        *,
        validators: int = 4,
        hosts: Sequence[str] | None = None,
        namespaces: Sequence[str] | None = None,
        client_netns: str | None = None,
        consensus: dict[str, float] = FAST_CONSENSUS,
    ) -> Cluster:
        """`sec genesis new --dev` into `directory` and tune each config.toml.

        Without `hosts`, nodes listen on 127.0.0.1 at probed free ports; with `hosts` (one
        HOST per node, each node running in its own network namespace of `namespaces`), every
        node uses the standard ports on its own address, and the test reaches them from
        `client_netns`."""
        arguments = ["genesis", "new", "--validators", str(validators), "--dev", "--json"]
        arguments += ["--out", str(directory)]
        if hosts is None:
            base = free_port_base(2 * validators)
            arguments += ["--p2p-port-base", str(base)]
            arguments += ["--rpc-port-base", str(base + validators)]
        else:
            arguments += ["--hosts", ",".join(hosts)]
        created = json.loads(run_cli(*arguments).stdout)
        nodes = []
        for index, entry in enumerate(created["nodes"]):
            home = Path(entry["home"])
            tune_config(home, consensus)
            nodes.append(
                ClusterNode(
                    index=index,
                    name=entry["name"],
                    home=home,
                    rpc_url=entry["rpc"],
                    p2p_port=int(entry["p2p"].rpartition(":")[2]),
                    netns=None if namespaces is None else namespaces[index],
                )
            )
        return cls(directory, nodes, client_netns=client_netns)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- processes ---------------------------------------------------------------------------

    def start(self, index: int | None = None) -> None:
        """Start one node (or every node that is not running)."""
        targets = self.nodes if index is None else [self.nodes[index]]
        for node in targets:
            if not node.is_running():
                start_process(node)

    def add_node(self, home: Path, rpc_url: str, p2p_port: int) -> ClusterNode:
        """Start a node from a home the test made (not a validator of this network)."""
        name = load_config(home).name
        node = ClusterNode(len(self.nodes) + len(self.extra), name, home, rpc_url, p2p_port)
        self.extra.append(node)
        start_process(node)
        return node

    def kill(self, index: int) -> None:
        """SIGKILL: the crash case (no clean shutdown, nothing flushed on the way out)."""
        node = self.nodes[index]
        if node.process is not None:
            node.process.kill()
            node.process.wait()
            _close_log(node)

    def stop(self, index: int) -> int:
        """SIGTERM and wait for the clean exit; returns the exit status."""
        node = self.nodes[index]
        if node.process is None:
            raise AssertionError(f"{node.name} was never started")
        node.process.terminate()
        try:
            status = node.process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            node.process.kill()
            node.process.wait()
            raise AssertionError(
                f"{node.name} ignored SIGTERM for {STOP_GRACE_S:g} s\n{self.diagnostics()}"
            ) from None
        _close_log(node)
        return status

    def pause(self, index: int) -> None:
        """SIGSTOP: the node's sockets stay open but it answers nothing (a hung host)."""
        self._signal(index, signal.SIGSTOP)

    def resume(self, index: int) -> None:
        self._signal(index, signal.SIGCONT)

    def _signal(self, index: int, signum: signal.Signals) -> None:
        node = self.nodes[index]
        if not node.is_running() or node.process is None:
            raise AssertionError(f"{node.name} is not running\n{self.diagnostics()}")
        node.process.send_signal(signum)

    def close(self) -> None:
        """Kill every process this cluster started (SIGKILL also ends a paused process)."""
        for node in [*self.nodes, *self.extra]:
            if node.process is not None and node.process.poll() is None:
                node.process.kill()
            if node.process is not None:
                node.process.wait()
            _close_log(node)

    # --- RPC ---------------------------------------------------------------------------------

    def call(self, index: int, method: str, params: dict[str, Any] | None = None) -> Any:
        """The result of one JSON-RPC call; NodeUnreachable if the node does not answer,
        AssertionError on a JSON-RPC error."""
        request: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": method}
        if params is not None:
            request["params"] = params
        response = self.post(self.nodes[index], request)
        if not isinstance(response, dict) or "result" not in response:
            raise AssertionError(f"{self.nodes[index].name} {method}: {response!r}")
        return response["result"]

    def call_batch(self, index: int, calls: Sequence[tuple[str, dict[str, Any]]]) -> list[Any]:
        """Results of several calls in JSON-RPC batches of at most 100."""
        results: list[Any] = []
        for start in range(0, len(calls), 100):
            chunk = calls[start : start + 100]
            batch = [
                {"jsonrpc": "2.0", "id": start + i, "method": method, "params": params}
                for i, (method, params) in enumerate(chunk)
            ]
            responses = self.post(self.nodes[index], batch)
            if not isinstance(responses, list) or len(responses) != len(batch):
                raise AssertionError(f"{self.nodes[index].name} batch answer: {responses!r}")
            by_id = {r.get("id"): r for r in responses}
            for i in range(len(chunk)):
                response = by_id.get(start + i)
                if response is None or "result" not in response:
                    raise AssertionError(f"{self.nodes[index].name} batch: {response!r}")
                results.append(response["result"])
        return results

    def post(self, node: ClusterNode, payload: Any) -> Any:
        """POST a JSON-RPC payload to the node (from `client_netns`, if set)."""
        data = json.dumps(payload).encode()
        url = node.rpc_url + "/rpc"
        if self.client_netns is not None:
            script = [PYTHON, "-I", "-S", "-c", _RPC_IN_NAMESPACE, url, str(RPC_TIMEOUT_S)]
            result = subprocess.run(
                [*_netns_prefix(self.client_netns), *script],
                input=data,
                capture_output=True,
                timeout=RPC_TIMEOUT_S + 10,
                check=False,
            )
            if result.returncode != 0:
                raise NodeUnreachable(f"{node.name}: {result.stderr.decode().strip()[-200:]}")
            return json.loads(result.stdout)
        request = urllib.request.Request(
            url, data=data, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=RPC_TIMEOUT_S) as response:
                return json.loads(response.read())
        except (OSError, urllib.error.URLError) as exc:  # HTTPError is a URLError too
            raise NodeUnreachable(f"{node.name}: {exc}") from None

    def status(self, index: int) -> dict[str, Any] | None:
        """sec_status of validator `index`, or None if it does not answer."""
        return self.node_status(self.nodes[index])

    def node_status(self, node: ClusterNode) -> dict[str, Any] | None:
        """sec_status of any node of this cluster, or None if it does not answer."""
        try:
            response = self.post(node, {"jsonrpc": "2.0", "id": 1, "method": "sec_status"})
        except NodeUnreachable:
            return None
        result: dict[str, Any] = response["result"]
        node.address = result["node_address"]
        return result

    def heights(self, indices: Sequence[int] | None = None) -> dict[int, int | None]:
        chosen = range(len(self.nodes)) if indices is None else indices
        return {i: (s["height"] if (s := self.status(i)) else None) for i in chosen}

    def block_hashes(self, index: int, first: int, last: int) -> list[str]:
        calls = [("sec_getBlock", {"height": h}) for h in range(first, last + 1)]
        return [block["hash"] for block in self.call_batch(index, calls)]

    # --- waiting and checking ----------------------------------------------------------------

    def wait_for_heights(self, indices: Sequence[int], height: int, timeout: float) -> None:
        """Wait until every node in `indices` has committed `height`."""

        def reached() -> bool:
            values = self.heights(indices)
            return all(h is not None and h >= height for h in values.values())

        names = ", ".join(self.nodes[i].name for i in indices)
        wait_until(reached, timeout, f"{names} to reach height {height}", self.diagnostics)

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Every running node answers, sees all other running validators and has committed."""
        running = [n.index for n in self.nodes if n.is_running()]

        def ready() -> bool:
            statuses = [self.status(i) for i in running]
            return all(
                s is not None and s["height"] >= 2 and s["peers"] >= len(running) - 1
                for s in statuses
            )

        wait_until(ready, timeout, "every node to be up, meshed and committing", self.diagnostics)

    def primary(self, view: int) -> int:
        """Index of the primary of `view`: validator number view mod n in set order (sorted by
        address), the rule of consensus.proofs.primary_of."""
        running = next(n.index for n in self.nodes if n.is_running())
        members = self.call(running, "sec_getValidators")["validators"]
        address = sorted(members, key=lambda m: m["index"])[view % len(members)]["address"]
        for node in self.nodes:
            if not node.address:
                self.status(node.index)
            if node.address == address:
                return node.index
        raise AssertionError(f"primary {address} of view {view} is none of the nodes")

    def assert_same_chain(self, indices: Sequence[int]) -> int:
        """Every node in `indices` has the same block hash at every height both have: no fork.
        Returns the highest height compared."""
        tops = self.heights(indices)
        missing = [self.nodes[i].name for i, h in tops.items() if h is None]
        if missing:
            raise AssertionError(f"{missing} do not answer\n{self.diagnostics()}")
        top = min(h for h in tops.values() if h is not None)
        chains = {i: self.block_hashes(i, 1, top) for i in indices}
        reference = chains[indices[0]]
        for index, chain in chains.items():
            for height, (mine, theirs) in enumerate(zip(chain, reference, strict=True), start=1):
                if mine != theirs:
                    raise AssertionError(
                        f"fork at height {height}: {self.nodes[index].name} has {mine}, "
                        f"{self.nodes[indices[0]].name} has {theirs}\n{self.diagnostics()}"
                    )
        return top

    def assert_state_agrees(self, indices: Sequence[int], account: str) -> None:
        """Each node's own committed state root (sec_getAccount) equals the state_root of the
        agreed block header at that height, and the account reads the same everywhere."""
        answers = {i: self.call(i, "sec_getAccount", {"address": account}) for i in indices}
        reference = indices[0]
        self.wait_for_heights([reference], max(a["height"] for a in answers.values()), 30)
        for index, answer in answers.items():
            header = self.call(reference, "sec_getBlock", {"height": answer["height"]})["header"]
            if answer["state_root"] != header["state_root"]:
                raise AssertionError(
                    f"{self.nodes[index].name} state root at height {answer['height']} is "
                    f"{answer['state_root']}, the block says {header['state_root']}"
                )
        balances = {self.nodes[i].name: a["balance"] for i, a in answers.items()}
        if len(set(balances.values())) != 1:
            raise AssertionError(f"balances of {account} differ: {balances}")

    def diagnostics(self) -> str:
        """Process state, sec_status and the log tail of every node (for failure messages)."""
        parts = []
        for node in [*self.nodes, *self.extra]:
            state = "not started"
            if node.process is not None:
                code = node.process.poll()
                state = "running" if code is None else f"exited {code}"
            brief = "-"
            if node.is_running():
                status = self.node_status(node)
                if status is not None:
                    keys = ("height", "view", "view_changes", "peers", "syncing")
                    brief = " ".join(f"{k}={status[k]}" for k in keys)
            parts.append(f"--- {node.name} ({state}; {brief}) {node.log_path}:")
            parts.append(log_tail(node.log_path))
        return "\n".join(parts)

    # --- transactions ------------------------------------------------------------------------

    def transfer(self, index: int, sender: str, to: str, amount: int) -> dict[str, Any]:
        """`sec tx transfer --wait --json` through node `index`; the committed result."""
        return self.transfers([(index, sender, to, amount)])[0]

    def transfers(self, sends: Sequence[tuple[int, str, str, int]]) -> list[dict[str, Any]]:
        """Several `sec tx transfer --wait --json` at once, each (node index, sender, to,
        amount); the committed results in order. Senders must differ (each takes its nonce
        from the node it sends through)."""
        with ExitStack() as running:
            processes = []
            for index, sender, to, amount in sends:
                arguments = ["tx", "transfer", "--key", f"dev:{sender}", "--to", f"dev:{to}"]
                arguments += ["--amount", str(amount), "--wait", "--timeout", "30", "--json"]
                arguments += ["--rpc", self.nodes[index].rpc_url]
                command = [*_netns_prefix(self.client_netns), PYTHON, str(CLI), *arguments]
                process = subprocess.Popen(
                    command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
                )
                running.enter_context(process)  # on any failure: killed and reaped
                running.callback(_kill_if_running, process)
                processes.append(process)
            outcomes = []
            for (index, sender, _, _), process in zip(sends, processes, strict=True):
                stdout, stderr = process.communicate(timeout=90)
                where = f"transfer from {sender} via {self.nodes[index].name}"
                if process.returncode != 0:
                    raise AssertionError(f"{where} failed: {stderr.strip()}\n{self.diagnostics()}")
                outcome: dict[str, Any] = json.loads(stdout)
                if outcome["status"] != "committed" or not outcome["receipt"]["ok"]:
                    raise AssertionError(f"{where} did not commit: {outcome}")
                outcomes.append(outcome)
        return outcomes


def _kill_if_running(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()


def dev_address(name: str) -> str:
    """The sec1 address of a development account (secnode.network.devnet; its keys are public)."""
    return format_address(dev_account_key(name).address)


def tune_config(home: Path, consensus: dict[str, float]) -> None:
    """Rewrite HOME/config.toml with `consensus` overrides (validated like any config)."""
    config = load_config(home)
    tuned = config.model_copy(update={"consensus": config.consensus.model_copy(update=consensus)})
    (home / CONFIG_FILE).write_text(render_config(tuned))
    load_config(home)  # the rewritten file must load as strictly as the original


def start_process(node: ClusterNode) -> None:
    """`python cli.py node start --home HOME` with output appended to HOME/node.log."""
    node.log_file = node.log_path.open("ab")
    command = [*_netns_prefix(node.netns), PYTHON, str(CLI), "node", "start", "--home"]
    node.process = subprocess.Popen(
        [*command, str(node.home), *node.start_options],
        stdout=node.log_file,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
        preexec_fn=_die_with_parent,
    )


def _close_log(node: ClusterNode) -> None:
    if node.log_file is not None:
        node.log_file.close()
        node.log_file = None


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def iter_log_lines(path: Path) -> Iterator[str]:
    try:
        yield from path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return
