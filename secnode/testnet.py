"""`sec testnet`: the one-command local network of N validators as separate processes.

The first run creates DIR (default ./testnet) from the committed development genesis
(`genesis.json`, public keys, 4 validators; another --nodes count makes a dev genesis of that
size), one home per node, and starts `sec node start --home DIR/nodeI` for each, logging to
DIR/nodeI/node.log. It writes DIR/testnet.json (name, RPC URL, P2P address, PID, home per
node), prints where to look, and on Ctrl-C (SIGINT) or SIGTERM stops every node with SIGTERM,
waiting for clean exits. Running it again on the same DIR resumes the same chain.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ledger.genesis import load_genesis
from secnode.config import ConfigError, load_config, split_host_port
from secnode.devnet import DEV_NOTE
from secnode.home import create_network

ROOT = Path(__file__).resolve().parents[1]
STOP_GRACE_S = 15.0


def _default_genesis() -> Path:
    return ROOT / "genesis.json"


def prepare(directory: Path, nodes: int) -> list[Path]:
    """Create the network in `directory` unless it exists; return the node homes."""
    if not (directory / "genesis.json").exists():
        create_network(directory, nodes, dev=True)
        committed = _default_genesis()
        if nodes == 4 and committed.exists():
            # Same document as the committed genesis.json (create_network(dev=True) builds it
            # from secnode.devnet); keep the committed bytes so operators can diff them.
            for home in [directory, *(directory / f"node{i}" for i in range(nodes))]:
                (home / "genesis.json").write_bytes(committed.read_bytes())
    homes = sorted(p for p in directory.iterdir() if (p / "config.toml").exists())
    if len(homes) != nodes:
        raise ConfigError(
            f"{directory} holds {len(homes)} node homes, not {nodes}; use another --dir"
        )
    return homes


def describe(homes: list[Path], processes: dict[str, subprocess.Popen[bytes]]) -> dict[str, Any]:
    entries = []
    for home in homes:
        config = load_config(home)
        host, port = split_host_port(config.rpc.listen)
        entries.append(
            {
                "name": config.name,
                "rpc": f"http://{host}:{port}",
                "p2p": config.p2p.listen,
                "pid": processes[config.name].pid if config.name in processes else None,
                "home": str(home.resolve()),
                "log": str((home / "node.log").resolve()),
            }
        )
    return {"nodes": entries}


def start_node(home: Path) -> subprocess.Popen[bytes]:
    log = (home / "node.log").open("ab")
    command = [sys.executable, str(ROOT / "cli.py"), "node", "start", "--home", str(home)]
    return subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
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


def run(directory: Path, nodes: int) -> int:
    homes = prepare(directory, nodes)
    genesis = load_genesis(homes[0] / "genesis.json")
    if genesis.dev_key_labels:
        print(f"NOTE: {DEV_NOTE}", file=sys.stderr)
    processes = {home.name: start_node(home) for home in homes}
    info = describe(homes, processes)
    (directory / "testnet.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"testnet of {nodes} validators, chain {genesis.chain_id!r}, in {directory}/")
    for entry in info["nodes"]:
        print(f"  {entry['name']}  rpc {entry['rpc']}  p2p {entry['p2p']}  pid {entry['pid']}")
    print(f"logs: {directory}/node*/node.log   details: {directory}/testnet.json")
    first = info["nodes"][0]["rpc"]
    print(f"try:  sec query status --rpc {first}")
    print("      sec tx transfer --key dev:buyer1 --to dev:merchant1 --amount 100 --wait")
    print("Ctrl-C stops the network; running the same command again resumes it.")
    sys.stdout.flush()

    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    status = 0
    try:
        while not stop.wait(0.5):
            dead = [n for n, p in processes.items() if p.poll() is not None]
            if dead:
                for name in dead:
                    code = processes[name].returncode
                    print(
                        f"{name} exited with status {code}; see {directory}/{name}/node.log",
                        file=sys.stderr,
                    )
                status = 1
                break
    finally:
        print("stopping the testnet ...", file=sys.stderr)
        stop_all(processes)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.sync()
    print("stopped.", file=sys.stderr)
    return status
