"""End to end: docs/operations.md's "Four validators on four machines", with one directory per
machine and one process per node on 127.0.0.1.

Each operator makes a key on their machine and sends `sec keys export-public`'s line; the
assembler runs `sec genesis new --validators-file` and sends each machine its config.toml and
genesis.json; the operators start their nodes. Then a fifth operator joins: the admin adds the
fifth key with `sec tx validator-update`, the fifth node starts with the four as peers, catches
up, and votes: with one of the first four stopped, the remaining three commit only with it
(five validators need a quorum of four, docs/protocol.md §13.1).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from secnode.runtime.config import CONFIG_FILE, PeerConfig, load_config, render_config
from tests.e2e_cluster import (
    FAST_CONSENSUS,
    Cluster,
    ClusterNode,
    NodeUnreachable,
    free_port_base,
    run_cli,
    tune_config,
    wait_until,
)

pytestmark = pytest.mark.slow

OPERATORS = ("alice", "bob", "carol", "dave")
JOIN_TIMEOUT_S = 90.0


def exported(key: Path, name: str) -> dict[str, Any]:
    entry: dict[str, Any] = json.loads(
        run_cli("keys", "export-public", str(key), "--name", name).stdout
    )
    return entry


def test_four_operators_start_a_network_from_their_public_keys_and_a_fifth_joins(
    tmp_path: Path,
) -> None:
    machines = {name: tmp_path / name for name in (*OPERATORS, "erin")}
    for machine in machines.values():  # on each machine: a key that never leaves it
        run_cli("keys", "new", "--plain", "--out", str(machine / "node.key"))
    keys_file = tmp_path / "assembler" / "keys.json"
    keys_file.parent.mkdir()
    keys_file.write_text(
        "".join(json.dumps(exported(machines[n] / "node.key", n)) + "\n" for n in OPERATORS)
    )
    base = free_port_base(10)
    net = tmp_path / "assembler" / "net"
    created = json.loads(
        run_cli(
            "genesis", "new", "--validators-file", str(keys_file), "--out", str(net),
            "--p2p-port-base", str(base), "--rpc-port-base", str(base + 5), "--json",
        ).stdout
    )  # fmt: skip
    nodes = []
    for index, entry in enumerate(created["nodes"]):
        home = machines[entry["name"]]
        for name in (CONFIG_FILE, "genesis.json"):  # what the assembler sends each machine
            shutil.copyfile(net / entry["name"] / name, home / name)
        tune_config(home, FAST_CONSENSUS)
        port = int(entry["p2p"].rpartition(":")[2])
        nodes.append(ClusterNode(index, entry["name"], home, entry["rpc"], port))

    with Cluster(tmp_path, nodes) as cluster:
        cluster.start()
        cluster.wait_ready()

        # The fifth: its home is the genesis plus a config naming the four as peers.
        erin = machines["erin"]
        shutil.copyfile(net / "genesis.json", erin / "genesis.json")
        template = load_config(machines["alice"])
        alice_key = exported(machines["alice"] / "node.key", "alice")["public_key"]
        peers = [
            PeerConfig(name="alice", public_key=alice_key, address=f"127.0.0.1:{base}"),
            *template.p2p.peers,
        ]
        config = template.model_copy(
            update={
                "name": "erin",
                "p2p": template.p2p.model_copy(
                    update={"listen": f"127.0.0.1:{base + 4}", "peers": peers}
                ),
                "rpc": template.rpc.model_copy(update={"listen": f"127.0.0.1:{base + 9}"}),
            }
        )
        (erin / CONFIG_FILE).write_text(render_config(config))
        erin_key = exported(erin / "node.key", "erin")["public_key"]
        run_cli(
            "tx", "validator-update", "--key", str(net / "accounts" / "admin.key"),
            "--add", erin_key, "--rpc", nodes[0].rpc_url, "--wait",
        )  # fmt: skip
        fifth = cluster.add_node(erin, f"http://127.0.0.1:{base + 9}", base + 4)

        def five_validators_with_erin_signing() -> bool:
            try:
                network = cluster.post(
                    fifth, {"jsonrpc": "2.0", "id": 1, "method": "sec_getNetwork"}
                )
            except NodeUnreachable:
                return False  # not listening yet
            validators = network.get("result", {}).get("validators", [])
            signed = [v for v in validators if v["public_key"] == erin_key]
            return len(validators) == 5 and bool(signed) and signed[0]["last_signed_height"]

        wait_until(
            five_validators_with_erin_signing,
            JOIN_TIMEOUT_S,
            "erin to catch up and sign a certificate as the fifth validator",
            cluster.diagnostics,
        )
        assert cluster.stop(3) == 0  # dave: alice, bob, carol and erin are 4 of 5, a quorum
        height = max(h for h in cluster.heights([0, 1, 2]).values() if h is not None)
        cluster.wait_for_heights([0, 1, 2], height + 5, timeout=JOIN_TIMEOUT_S)
        status = cluster.node_status(fifth)
        assert status is not None and status["height"] >= height
