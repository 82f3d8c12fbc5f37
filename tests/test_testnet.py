"""`sec testnet` shows fault tolerance: real supervisor and node processes, killed with SIGKILL.

Each test runs `python cli.py testnet` on free ports in a temp directory, talks to the nodes over
JSON-RPC, and reads what the supervisor printed (its stderr goes to a file). The supervisor is
stopped with SIGTERM at the end, which stops its nodes; anything left is killed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from secnode.client.rpc import RpcClient, RpcClientError
from secnode.network.testnet import NODE_PID, STOP_GRACE_S
from tests.e2e_cluster import CLI, PYTHON, ROOT, free_port_base, wait_until

pytestmark = pytest.mark.slow

NODES = 4


class RunningTestnet:
    """A `sec testnet` supervisor process under test."""

    def __init__(self, directory: Path, process: subprocess.Popen[bytes], rpc_base: int) -> None:
        self.directory = directory
        self.process = process
        self.rpc_base = rpc_base
        self.output = directory.parent / "supervisor.err"

    def said(self) -> str:
        return self.output.read_text(errors="replace") if self.output.exists() else ""

    def height(self, index: int) -> int | None:
        try:
            status = RpcClient(f"http://127.0.0.1:{self.rpc_base + index}", 2.0).call("sec_status")
        except RpcClientError:
            return None
        height: int = status["height"]
        return height

    def pid(self, name: str) -> int | None:
        try:
            return int((self.directory / name / NODE_PID).read_text())
        except (OSError, ValueError):
            return None

    def described_pid(self, name: str) -> int | None:
        """The node's PID as DIR/testnet.json tells it (what any version of the testnet wrote)."""
        try:
            info = json.loads((self.directory / "testnet.json").read_text())
        except (OSError, ValueError):
            return None
        pids = {entry["name"]: entry["pid"] for entry in info["nodes"]}
        pid: int | None = pids.get(name)
        return pid

    def wait_height(self, indices: list[int], above: int, timeout: float = 90.0) -> None:
        def reached() -> bool:
            return all((h := self.height(i)) is not None and h > above for i in indices)

        wait_until(reached, timeout, f"nodes {indices} above height {above}", self.said)


@contextmanager
def running_testnet(
    tmp_path: Path, *options: str, busy_rpc_port: int | None = None
) -> Iterator[RunningTestnet]:
    base = free_port_base(2 * NODES)
    directory = tmp_path / "net"
    arguments = ["testnet", "--dir", str(directory), "--nodes", str(NODES), *options]
    arguments += ["--p2p-port-base", str(base), "--rpc-port-base", str(base + NODES)]
    blocker = None
    if busy_rpc_port is not None:
        blocker = socket.socket()
        blocker.bind(("127.0.0.1", base + NODES + busy_rpc_port))
        blocker.listen()
    with (tmp_path / "supervisor.err").open("wb") as err:
        process = subprocess.Popen(
            [PYTHON, str(CLI), *arguments], stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT
        )
    net = RunningTestnet(directory, process, base + NODES)
    try:
        yield net
    finally:
        if blocker is not None:
            blocker.close()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_GRACE_S + 10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for index in range(NODES):  # nothing may outlive the test
            pid = net.pid(f"node{index}")
            if pid is not None:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def restart(net: RunningTestnet, name: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, str(CLI), "testnet", "restart", name, "--dir", str(net.directory)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )


def test_a_killed_node_is_reported_the_others_keep_committing_and_restart_brings_it_back(
    tmp_path: Path,
) -> None:
    with running_testnet(tmp_path) as net:
        net.wait_height(list(range(NODES)), 2)
        victim = wait_until(lambda: net.described_pid("node1"), 10, "node1's pid")
        assert net.pid("node1") == victim
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: "node1 killed by SIGKILL" in net.said(), 10, "the report", net.said)
        assert str(net.directory / "node1" / "node.log") in net.said()
        assert net.process.poll() is None, f"the supervisor ended\n{net.said()}"
        survivors = [0, 2, 3]
        tops = [h for i in survivors if (h := net.height(i)) is not None]
        assert len(tops) == len(survivors), f"the others went down with node1\n{net.said()}"
        top = max(tops)
        net.wait_height(survivors, top + 3)  # three of four still commit: f = 1 tolerated
        assert net.height(1) is None

        answer = restart(net, "node1")
        assert answer.returncode == 0, answer.stderr
        assert "node1 restarted" in answer.stdout
        new_pid = net.pid("node1")
        assert new_pid is not None and new_pid != victim
        net.wait_height([1], top + 3)
        info = json.loads((net.directory / "testnet.json").read_text())
        assert {n["name"]: n["pid"] for n in info["nodes"]}["node1"] == new_pid


def test_restart_crashed_starts_a_killed_node_again(tmp_path: Path) -> None:
    with running_testnet(tmp_path, "--restart-crashed") as net:
        net.wait_height(list(range(NODES)), 2)
        victim = wait_until(lambda: net.described_pid("node2"), 10, "node2's pid")
        os.kill(victim, signal.SIGKILL)
        wait_until(
            lambda: "node2 restarted (--restart-crashed)" in net.said(), 20, "restart", net.said
        )
        assert (pid := net.pid("node2")) is not None and pid != victim
        top = max(h for i in range(NODES) if (h := net.height(i)) is not None)
        net.wait_height([2], top)


def test_a_node_that_cannot_start_is_reported_at_once_with_the_reason(tmp_path: Path) -> None:
    with running_testnet(tmp_path, busy_rpc_port=3) as net:
        wait_until(lambda: "node3 failed to start" in net.said(), 30, "the report", net.said)
        assert "rpc.listen" in net.said() and "in use" in net.said(), net.said()
        assert net.process.poll() is None, f"the supervisor ended\n{net.said()}"
        net.wait_height([0, 1, 2], 2)  # the three that started form a quorum


def test_invalid_restart_without_a_supervisor_says_so(tmp_path: Path) -> None:
    directory = tmp_path / "net"
    created = subprocess.run(
        [PYTHON, str(CLI), "genesis", "new", "--validators", "1", "--dev", "--out", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=True,
    )
    assert created.returncode == 0
    answer = subprocess.run(
        [PYTHON, str(CLI), "testnet", "restart", "node0", "--dir", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert answer.returncode == 1
    assert "no testnet supervisor runs" in answer.stderr
    unknown = subprocess.run(
        [PYTHON, str(CLI), "testnet", "restart", "node9", "--dir", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert unknown.returncode == 1
    assert "has no node 'node9'" in unknown.stderr
