"""End to end, real processes: a new observer joins a running 4-validator network by state sync.

The validators run `sec node start` with `[statesync] snapshot_interval = 10` and the
observer's key in `[p2p] observers`. The observer's home holds only its key (`sec keys new`),
the genesis and a config naming the four as peers; `sec node start --state-sync` fetches the
newest snapshot from them, verifies it from the genesis, writes the store, then catches up
block by block and follows the chain. It never holds the blocks below its snapshot (they answer
"pruned"), and its state agrees with the validators'.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from secnode.network.devnet import validator_key
from secnode.runtime.config import CONFIG_FILE, PeerConfig, load_config, render_config
from tests.e2e_cluster import (
    Cluster,
    ClusterNode,
    NodeUnreachable,
    dev_address,
    free_port_base,
    run_cli,
    start_process,
    wait_until,
)

pytestmark = pytest.mark.slow

INTERVAL = 10
JOIN_TIMEOUT_S = 90.0


def _rpc(cluster: Cluster, node: ClusterNode, method: str, params: dict[str, Any]) -> Any:
    return cluster.post(node, {"jsonrpc": "2.0", "id": 1, "method": method, "params": params})


def test_an_observer_joins_a_running_network_by_state_sync_and_follows_it(
    tmp_path: Path,
) -> None:
    joiner_home = tmp_path / "joiner"
    run_cli("keys", "new", "--plain", "--out", str(joiner_home / "node.key"))
    exported = json.loads(run_cli("keys", "export-public", str(joiner_home / "node.key")).stdout)
    joiner_key = exported["public_key"]

    with Cluster.create(tmp_path / "net") as cluster:
        for node in cluster.nodes:
            config = load_config(node.home)
            config = config.model_copy(
                update={
                    "statesync": config.statesync.model_copy(
                        update={"snapshot_interval": INTERVAL}
                    ),
                    "p2p": config.p2p.model_copy(
                        update={"observers": [*config.p2p.observers, joiner_key]}
                    ),
                }
            )
            (node.home / CONFIG_FILE).write_text(render_config(config))
        cluster.start()
        cluster.wait_ready()
        cluster.transfer(0, "buyer1", "merchant1", 7)
        height = max(h for h in cluster.heights().values() if h is not None)
        cluster.wait_for_heights([0, 1, 2, 3], max(height, INTERVAL) + 3, timeout=60)

        shutil.copyfile(cluster.nodes[0].home / "genesis.json", joiner_home / "genesis.json")
        template = load_config(cluster.nodes[0].home)
        peers = [
            PeerConfig(
                name=node.name,
                public_key=bytes(validator_key(node.name).public_key).hex(),
                address=f"127.0.0.1:{node.p2p_port}",
            )
            for node in cluster.nodes
        ]
        base = free_port_base(2)
        config = template.model_copy(
            update={
                "name": "joiner",
                "p2p": template.p2p.model_copy(
                    update={"listen": f"127.0.0.1:{base}", "peers": peers, "observers": []}
                ),
                "rpc": template.rpc.model_copy(update={"listen": f"127.0.0.1:{base + 1}"}),
            }
        )
        (joiner_home / CONFIG_FILE).write_text(render_config(config))
        joiner = ClusterNode(4, "joiner", joiner_home, f"http://127.0.0.1:{base + 1}", base)
        joiner.start_options = ("--state-sync",)
        cluster.extra.append(joiner)
        start_process(joiner)

        started_at = max(h for h in cluster.heights().values() if h is not None)

        def following() -> bool:  # an observer learns of new blocks at checkpoints: it lags a bit
            try:
                status = cluster.node_status(joiner)
            except NodeUnreachable:
                return False
            return status is not None and status["height"] >= started_at + 2 * INTERVAL

        wait_until(following, JOIN_TIMEOUT_S, "the joiner to state-sync and follow the chain",
                   cluster.diagnostics)  # fmt: skip

        log = joiner.log_path.read_text()
        done = re.search(r"state sync done: height (\d+)", log)
        assert done is not None, log[-3000:]
        snapshot_height = int(done.group(1))
        assert snapshot_height >= INTERVAL and snapshot_height % INTERVAL == 0
        assert "certified from the genesis" in log and "state root verified" in log

        pruned = _rpc(cluster, joiner, "sec_getBlock", {"height": 1})
        assert pruned["error"]["code"] == -32010, pruned
        assert pruned["error"]["data"]["kept_from"] == snapshot_height

        account = {"address": dev_address("merchant1")}
        mine = _rpc(cluster, joiner, "sec_getAccount", account)["result"]
        cluster.wait_for_heights([0], mine["height"], timeout=30)
        header = cluster.call(0, "sec_getBlock", {"height": mine["height"]})["header"]
        assert mine["state_root"] == header["state_root"]
        theirs = cluster.call(0, "sec_getAccount", account)
        assert mine["balance"] == theirs["balance"]
