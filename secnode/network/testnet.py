"""`sec testnet`: the one-command local network of N validators as separate processes.

The first run creates DIR (default ./testnet) from the committed development genesis
(`genesis.json`, public keys, 4 validators; another --nodes count makes a dev genesis of that
size), one home per node, and starts `sec node start --home DIR/nodeI` for each, logging to
DIR/nodeI/node.log. It writes DIR/testnet.json (name, RPC URL, P2P address, PID, home per
node), prints where to look, and on Ctrl-C (SIGINT) or SIGTERM stops every node with SIGTERM,
waiting for clean exits. Running it again on the same DIR resumes the same chain.

Fault tolerance is the point of a BFT network, so the supervisor never stops the network because
one node ended. When a node exits it says which one, how (exit status or the signal that killed
it) and where its log is; the others keep running. A node that ends within `STARTUP_WINDOW_S` of
its start failed at start (a port in use, a bad config): that is reported at once with the reason
from the node's own log, and it is not restarted automatically. With `--restart-crashed` a node
that ran and then ended is started again. From another terminal, `sec testnet restart NODE
[--dir DIR]` asks the running supervisor to (re)start one node.

Files in DIR, owned by the supervisor: `supervisor.pid` (its PID while it runs; a second
supervisor on the same DIR is refused), `nodeI/node.pid` (the node's PID while it runs), and
`nodeI/restart.request` (written by `sec testnet restart`, removed by the supervisor once it has
acted on it). The supervisor polls for exits and requests every `POLL_S`; it is the only
process that starts or stops nodes, so there is one owner for every node process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TextIO

from ledger.genesis import load_genesis
from secnode.network.devnet import DEV_NOTE
from secnode.network.home import P2P_BASE_PORT, RPC_BASE_PORT, create_network, enable_console
from secnode.runtime.config import ConfigError, load_config, split_host_port

ROOT: Final = Path(__file__).resolve().parents[2]
STOP_GRACE_S: Final = 15.0
POLL_S: Final = 0.5
STARTUP_WINDOW_S: Final = 10.0
"""A node that ends sooner than this after its start failed to start (and is not restarted)."""
RESTART_WAIT_S: Final = 30.0
SUPERVISOR_PID: Final = "supervisor.pid"
NODE_PID: Final = "node.pid"
RESTART_REQUEST: Final = "restart.request"


def _default_genesis() -> Path:
    return ROOT / "genesis.json"


def prepare(
    directory: Path, nodes: int, p2p_base: int = P2P_BASE_PORT, rpc_base: int = RPC_BASE_PORT
) -> list[Path]:
    """Create the network in `directory` unless it exists; return the node homes.

    Every node serves the web console, the testnet's default: new homes are written with it,
    and a home written before the console existed gets it turned on (`enable_console`)."""
    if not (directory / "genesis.json").exists():
        create_network(
            directory, nodes, dev=True, p2p_base=p2p_base, rpc_base=rpc_base, console=True
        )
        committed = _default_genesis()
        if nodes == 4 and committed.exists():
            # Same document as the committed genesis.json (create_network(dev=True) builds it
            # from secnode.network.devnet); keep the committed bytes so operators can diff them.
            for home in [directory, *(directory / f"node{i}" for i in range(nodes))]:
                (home / "genesis.json").write_bytes(committed.read_bytes())
    homes = sorted(p for p in directory.iterdir() if (p / "config.toml").exists())
    if len(homes) != nodes:
        raise ConfigError(
            f"{directory} holds {len(homes)} node homes, not {nodes}; use another --dir"
        )
    for home in homes:
        if enable_console(home):
            print(f"turned the web console on in {home / 'config.toml'}", file=sys.stderr)
    return homes


def describe(homes: list[Path], processes: dict[str, subprocess.Popen[bytes]]) -> dict[str, Any]:
    entries = []
    for home in homes:
        config = load_config(home)
        host, port = split_host_port(config.rpc.listen)
        rpc = f"http://{host}:{port}"
        entries.append(
            {
                "name": config.name,
                "rpc": rpc,
                "console": f"{rpc}/" if config.rpc.console else None,
                "p2p": config.p2p.listen,
                "pid": processes[config.name].pid if config.name in processes else None,
                "home": str(home.resolve()),
                "log": str((home / "node.log").resolve()),
            }
        )
    return {"nodes": entries}


def start_node(home: Path, environment: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """`python cli.py node start --home HOME` in its own session, output appended to its log."""
    with (home / "node.log").open("ab") as log:
        command = [sys.executable, str(ROOT / "cli.py"), "node", "start", "--home", str(home)]
        return subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=environment,
            start_new_session=True,  # Ctrl-C reaches us only; we stop the nodes in order
        )


def stop_all(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for name, process in processes.items():
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            print(f"  {name} did not stop in {STOP_GRACE_S:.0f} s; killing it", file=sys.stderr)
            process.kill()
            process.wait()


def describe_exit(code: int) -> str:
    """'exited with status 1' or 'killed by SIGKILL' (Popen reports a signal as -number)."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


def failure_reason(log_path: Path, offset: int) -> str:
    """The line of the node's log (written since byte `offset`) that says why it stopped: the
    CLI's one-line `sec: error: ...`, else the last line of a traceback, else the last line."""
    try:
        with log_path.open("rb") as log:
            log.seek(offset)
            lines = [ln.strip() for ln in log.read().decode(errors="replace").splitlines()]
    except OSError as exc:
        return f"(cannot read {log_path}: {exc.strerror})"
    lines = [ln for ln in lines if ln]
    for line in reversed(lines):
        if line.startswith("sec: error:"):
            return line.removeprefix("sec: error:").strip()
    return lines[-1] if lines else "(the log says nothing)"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


@dataclass(slots=True)
class Supervised:
    """One node process the supervisor owns."""

    home: Path
    process: subprocess.Popen[bytes]
    started_at: float
    """time.monotonic() at start."""
    log_offset: int
    """Size of node.log at start: what the node wrote since begins here."""

    @property
    def name(self) -> str:
        return self.home.name


class Supervisor:
    """Starts, watches and restarts the node processes of one testnet directory."""

    def __init__(
        self, directory: Path, homes: list[Path], restart_crashed: bool, out: TextIO
    ) -> None:
        self.directory = directory
        self.homes = {home.name: home for home in homes}
        self.restart_crashed = restart_crashed
        self.out = out
        self.nodes: dict[str, Supervised] = {}

    def start(self, name: str) -> Supervised:
        home = self.homes[name]
        log_path = home / "node.log"
        offset = log_path.stat().st_size if log_path.exists() else 0
        node = Supervised(home, start_node(home), time.monotonic(), offset)
        self.nodes[name] = node
        (home / NODE_PID).write_text(f"{node.process.pid}\n")
        self.write_description()
        return node

    def write_description(self) -> None:
        processes = {name: node.process for name, node in self.nodes.items()}
        info = describe(list(self.homes.values()), processes)
        (self.directory / "testnet.json").write_text(json.dumps(info, indent=2) + "\n")

    def check(self) -> None:
        """Report and handle every node that ended, then every restart request."""
        for name, node in list(self.nodes.items()):
            code = node.process.poll()
            if code is None:
                continue
            (node.home / NODE_PID).unlink(missing_ok=True)
            del self.nodes[name]
            log_path = node.home / "node.log"
            ran = time.monotonic() - node.started_at
            if ran < STARTUP_WINDOW_S and code != -signal.SIGKILL:
                reason = failure_reason(log_path, node.log_offset)
                self.say(f"{name} failed to start ({describe_exit(code)}): {reason}")
                self.say(f"  log: {log_path}   retry: sec testnet restart {name}")
                continue
            self.say(f"{name} {describe_exit(code)} after {ran:.0f} s; log: {log_path}")
            if self.restart_crashed:
                restarted = self.start(name)
                self.say(f"{name} restarted (--restart-crashed), pid {restarted.process.pid}")
            else:
                self.say(f"  the other nodes keep running; restart: sec testnet restart {name}")
        for name, home in self.homes.items():
            if (home / RESTART_REQUEST).exists():
                self.restart(name)
                (home / RESTART_REQUEST).unlink(missing_ok=True)

    def restart(self, name: str) -> None:
        node = self.nodes.pop(name, None)
        if node is not None and node.process.poll() is None:
            stop_all({name: node.process})
        restarted = self.start(name)
        self.say(f"{name} restarted on request, pid {restarted.process.pid}")

    def stop(self) -> None:
        stop_all({name: node.process for name, node in self.nodes.items()})
        for node in self.nodes.values():
            (node.home / NODE_PID).unlink(missing_ok=True)
        self.nodes.clear()

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)


def run(
    directory: Path,
    nodes: int,
    *,
    restart_crashed: bool = False,
    p2p_base: int = P2P_BASE_PORT,
    rpc_base: int = RPC_BASE_PORT,
) -> int:
    """Supervise the testnet until SIGINT/SIGTERM; 0 after a clean stop."""
    homes = prepare(directory, nodes, p2p_base, rpc_base)
    supervisor_file = directory / SUPERVISOR_PID
    other = _read_pid(supervisor_file)
    if other is not None and other != os.getpid() and _alive(other):
        raise ConfigError(f"a testnet supervisor (pid {other}) already runs {directory}")
    supervisor_file.write_text(f"{os.getpid()}\n")
    genesis = load_genesis(homes[0] / "genesis.json")
    if genesis.dev_key_labels:
        print(f"NOTE: {DEV_NOTE}", file=sys.stderr)
    supervisor = Supervisor(directory, homes, restart_crashed, sys.stderr)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for home in homes:
            supervisor.start(home.name)
        _print_banner(directory, nodes, genesis.chain_id, supervisor)
        while not stop.wait(POLL_S):
            supervisor.check()
    finally:
        print("stopping the testnet ...", file=sys.stderr)
        supervisor.stop()
        supervisor_file.unlink(missing_ok=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.sync()
    print("stopped.", file=sys.stderr)
    return 0


def _print_banner(directory: Path, nodes: int, chain_id: str, supervisor: Supervisor) -> None:
    info = describe(
        list(supervisor.homes.values()),
        {name: node.process for name, node in supervisor.nodes.items()},
    )
    print(f"testnet of {nodes} validators, chain {chain_id!r}, in {directory}/")
    for entry in info["nodes"]:
        print(f"  {entry['name']}  rpc {entry['rpc']}  p2p {entry['p2p']}  pid {entry['pid']}")
    print(f"logs: {directory}/node*/node.log   details: {directory}/testnet.json")
    console = next((entry["console"] for entry in info["nodes"] if entry["console"]), None)
    if console is not None:
        print(f"console: {console}")
        print("      (open it in a browser; search merchant1 and verify its trust score)")
    first = info["nodes"][0]["rpc"]
    print(f"try:  sec demo --rpc {first}   (a shop's day: orders, a group buy, trust)")
    print(f"      sec query status --rpc {first}")
    print("      sec tx transfer --key dev:buyer1 --to dev:merchant1 --amount 100 --wait")
    print("      kill -9 one node: the others keep committing; then: sec testnet restart node1")
    print("Ctrl-C stops the network; running the same command again resumes it.")
    sys.stdout.flush()


# --- sec testnet restart NODE (another terminal) ---------------------------------------------


class RestartRefused(ConfigError):
    """`sec testnet restart` cannot be done: no supervisor, no such node, or no answer."""


def request_restart(directory: Path, name: str, timeout_s: float = RESTART_WAIT_S) -> int:
    """Ask the supervisor of `directory` to (re)start node `name`; return its new PID."""
    home = directory / name
    if not (home / "config.toml").exists():
        known = sorted(p.name for p in directory.glob("*/config.toml") if p.parent.is_dir())
        raise RestartRefused(f"{directory} has no node {name!r} (nodes: {', '.join(known)})")
    supervisor = _read_pid(directory / SUPERVISOR_PID)
    if supervisor is None or not _alive(supervisor):
        raise RestartRefused(f"no testnet supervisor runs {directory}; start it: sec testnet")
    before = _read_pid(home / NODE_PID)
    (home / RESTART_REQUEST).write_text(f"{os.getpid()}\n")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        current = _read_pid(home / NODE_PID)
        if not (home / RESTART_REQUEST).exists() and current is not None and current != before:
            return current
        time.sleep(0.1)
    with contextlib.suppress(OSError):
        (home / RESTART_REQUEST).unlink()
    raise RestartRefused(
        f"the supervisor (pid {supervisor}) did not restart {name} within {timeout_s:g} s"
    )


def restart_main(argv: list[str]) -> int:
    """`sec testnet restart NODE [--dir DIR]` (delegated from cli.py)."""
    parser = argparse.ArgumentParser(
        prog="sec testnet restart",
        description="Ask the running `sec testnet` supervisor to (re)start one node.",
    )
    parser.add_argument("node", help="node name, e.g. node1")
    parser.add_argument("--dir", default="testnet", help="network directory (default ./testnet)")
    args = parser.parse_args(argv)
    try:
        pid = request_restart(Path(args.dir), args.node)
    except ConfigError as exc:
        print(f"sec: error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.node} restarted, pid {pid}; log: {Path(args.dir) / args.node / 'node.log'}")
    return 0
