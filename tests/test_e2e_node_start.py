"""End to end: `sec node start` as an operator meets it - a clean stop and a resume, and the
start-up mistakes that must end in one error line (exit status 1), never a traceback.

One-validator networks from `sec genesis new` on free ports (tests/e2e_cluster.py).
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from secnode.runtime.config import load_config, split_host_port
from tests.e2e_cluster import CLI, PYTHON, ROOT, Cluster, log_tail, tune_config

pytestmark = pytest.mark.slow

START_TIMEOUT_S = 60.0


def start_and_fail(home: Path) -> str:
    """Run `sec node start`, expecting it to give up; its stderr."""
    result = subprocess.run(
        [PYTHON, str(CLI), "node", "start", "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 1, f"exit {result.returncode}\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr


def test_sigterm_stops_cleanly_and_a_restart_resumes_the_chain(tmp_path: Path) -> None:
    with Cluster.create(tmp_path / "net", validators=1) as single:
        single.start()
        single.wait_ready()
        assert single.stop(0) == 0, single.diagnostics()
        stopped = log_tail(single.nodes[0].log_path, 5).splitlines()
        assert any("node node0 stopped at height" in line for line in stopped), stopped
        height = int(stopped[-1].rpartition(" ")[2])

        single.start(0)
        single.wait_for_heights([0], height + 2, timeout=30)
        first = single.call(0, "sec_getBlock", {"height": 1})
        assert first["header"]["height"] == 1  # the old blocks are still there


def test_invalid_consensus_timers_stop_the_start_with_one_line(tmp_path: Path) -> None:
    network = Cluster.create(tmp_path / "net", validators=1)
    home = network.nodes[0].home
    tune_config(home, {"empty_block_interval_s": 2.0, "view_change_timeout_s": 1.0})

    stderr = start_and_fail(home)

    assert f"sec: error: {home / 'config.toml'}: [consensus] view_timeout 1.0" in stderr


@pytest.mark.parametrize("section", ["p2p", "rpc"])
def test_invalid_taken_port_stops_the_start_with_one_line(tmp_path: Path, section: str) -> None:
    network = Cluster.create(tmp_path / "net", validators=1)
    home = network.nodes[0].home
    config = load_config(home)
    listen = config.p2p.listen if section == "p2p" else config.rpc.listen
    with socket.socket() as squatter:
        squatter.bind(split_host_port(listen))
        squatter.listen()

        stderr = start_and_fail(home)

    assert f"sec: error: {section}.listen {listen}: " in stderr
    assert "address already in use" in stderr
