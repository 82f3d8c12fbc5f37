"""End to end: a node started by `sec node start` with `[rpc]` TLS and a restricted method,
reached by the `sec` CLI over https with a private CA and a token from `sec rpc token`; and a
key that does not match its certificate stops the start with one line.

A one-validator network from `sec genesis new` (tests/e2e_cluster.py); certificates are made in
the test (tests/tlskit.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from secnode.runtime.config import CONFIG_FILE, load_config, render_config
from tests.e2e_cluster import Cluster, run_cli, wait_until
from tests.test_e2e_node_start import start_and_fail
from tests.tlskit import Authority

pytestmark = pytest.mark.slow


def _secure(home: Path, **rpc: Any) -> None:
    """Rewrite HOME/config.toml with `[rpc]` overrides (validated like any config)."""
    config = load_config(home)
    tuned = config.model_copy(update={"rpc": config.rpc.model_copy(update=rpc)})
    (home / CONFIG_FILE).write_text(render_config(tuned))
    load_config(home)


def test_cli_reaches_a_tls_node_with_a_token(tmp_path: Path) -> None:
    authority = Authority(tmp_path, "ops-ca")
    server = authority.issue("node0", server=True)
    with Cluster.create(tmp_path / "net", validators=1) as single:
        node = single.nodes[0]
        run_cli(
            "rpc", "token", "ops", "--tokens-file", str(node.home / "rpc-tokens.toml"),
            "--out", str(tmp_path / "ops.token"),
        )  # fmt: skip
        _secure(
            node.home,
            tls_cert=str(server.cert),
            tls_key=str(server.key),
            restricted_methods=["sec_status"],
            auth_tokens_file="rpc-tokens.toml",
        )
        url = node.rpc_url.replace("http://", "https://")
        trusted = ("--rpc", url, "--ca", str(authority.pem))
        token = ("--token-file", str(tmp_path / "ops.token"))
        single.start(0)

        def answered() -> subprocess.CompletedProcess[str] | None:
            result = run_cli("query", "status", *trusted, *token, "--json", check=False)
            return result if result.returncode == 0 else None

        status = wait_until(answered, 60.0, "the TLS node to answer", single.diagnostics)
        assert '"height"' in status.stdout

        refused = run_cli("query", "status", *trusted, check=False)
        assert refused.returncode == 1
        assert "sec_status is restricted on this node" in refused.stderr
        untrusted = run_cli("query", "status", "--rpc", url, *token, check=False)
        assert untrusted.returncode == 1
        assert "not trusted" in untrusted.stderr and "--ca FILE" in untrusted.stderr
        token_text = (tmp_path / "ops.token").read_text().strip()
        assert token_text not in node.log_path.read_text()
        assert single.stop(0) == 0


def test_invalid_tls_key_stops_the_start_with_one_line(tmp_path: Path) -> None:
    authority = Authority(tmp_path, "ops-ca")
    server = authority.issue("node0", server=True)
    other = authority.issue("node1", server=True)
    network = Cluster.create(tmp_path / "net", validators=1)
    home = network.nodes[0].home
    _secure(home, tls_cert=str(server.cert), tls_key=str(other.key))

    stderr = start_and_fail(home)

    assert f"tls_key {other.key} is not the private key of tls_cert {server.cert}" in stderr
