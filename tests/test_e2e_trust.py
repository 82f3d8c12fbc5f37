"""End to end: purchases on a real four-validator network lead to attestations, a trust epoch,
and `sec audit trust` printing VERIFIED against any node.

The network is made with `sec genesis new --dev` on free ports (tests/e2e_cluster.py); its
genesis gets short escrow windows and a 20-block trust epoch before any node starts (an idle
network commits an empty block every 0.2 s, so an epoch is about 4 s). Every step is a `sec`
process sent through a different node; the auditor trusts only the network's genesis file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e_cluster import Cluster, dev_address, run_cli, wait_until

pytestmark = pytest.mark.slow

PARAMETERS = {
    "ship_deadline_s": 30,
    "confirm_window_s": 30,
    "return_window_s": 2,
    "dispute_deadline_s": 30,
    "trust_epoch_blocks": 20,
    "trust_epoch_delay": 2,
}
WAIT_S = 60.0


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    directory = tmp_path / "net"
    with Cluster.create(directory) as network:
        for path in [directory / "genesis.json", *sorted(directory.glob("node*/genesis.json"))]:
            document = json.loads(path.read_text())
            document["parameters"] = {**document.get("parameters", {}), **PARAMETERS}
            path.write_text(json.dumps(document, indent=2) + "\n")
        network.start()
        network.wait_ready()
        yield network


def _tx(cluster: Cluster, node: int, key: str, *verb: str) -> dict[str, Any]:
    result = run_cli(
        "tx",
        *verb,
        *("--key", f"dev:{key}", "--rpc", cluster.nodes[node].rpc_url),
        *("--wait", "--timeout", "30", "--json"),
    )
    outcome: dict[str, Any] = json.loads(result.stdout)
    assert outcome["status"] == "committed" and outcome["receipt"]["ok"], outcome
    cluster.wait_for_heights(range(4), outcome["height"], WAIT_S)
    return outcome


def test_purchases_lead_to_attestations_an_epoch_and_a_verified_audit(cluster: Cluster) -> None:
    created = _tx(
        cluster, 0, "merchant1", "order", "create",
        "--buyer", "dev:buyer2", "--arbiter", "dev:arbiter", "--item", "tea:2:1000",
        "--shipping", "500", "--sharer", "dev:sharer1", "--commission-bps", "500",
    )  # fmt: skip
    order = created["order_id"]
    _tx(cluster, 1, "buyer2", "order", "pay", "--order", order)
    _tx(cluster, 2, "merchant1", "order", "ship", "--order", order, "--shipment", "SF-1")
    _tx(cluster, 3, "buyer2", "order", "confirm", "--order", order)

    def completed() -> bool:
        answer = cluster.call(0, "sec_getOrder", {"order_id": order})
        return bool(answer["order"]["state"] == "COMPLETED")

    wait_until(completed, WAIT_S, f"order {order} to complete", cluster.diagnostics)
    attestations = [
        (0, "buyer2", "dev:merchant1", "+1"),
        (1, "buyer2", "dev:sharer1", "+1"),
        (2, "merchant1", "dev:buyer2", "+1"),
    ]
    for node, key, subject, value in attestations:
        verb = ("attest", "--order", order, "--subject", subject, "--value", value)
        _tx(cluster, node, key, *verb)

    def epoch_with_inputs() -> dict[str, Any] | None:
        request = {"jsonrpc": "2.0", "id": 1, "method": "sec_getTrustEpoch"}
        response = cluster.post(cluster.nodes[3], {**request, "params": {"page_size": 16}})
        answer: dict[str, Any] | None = response.get("result")  # not_found before epoch 1
        return answer if answer is not None and answer["epoch"]["attestations"] == 3 else None

    epoch = wait_until(epoch_with_inputs, WAIT_S, "an epoch over the 3 attestations")
    assert len(epoch["leaves"]) == 3

    genesis = str(cluster.directory / "genesis.json")
    for node, name in ((1, "merchant1"), (2, "sharer1"), (3, "buyer2")):
        result = run_cli(
            "audit", "trust", f"dev:{name}", "--rpc", cluster.nodes[node].rpc_url,
            "--genesis", genesis, "--state", str(cluster.directory / f"audit-{node}.json"),
            timeout=120,
        )  # fmt: skip
        assert f"VERIFIED {dev_address(name)}" in result.stdout, result.stdout
        assert "ok      recompute" in result.stdout
    # Every node serves the same committed score for the merchant.
    scores = {
        node: cluster.call(node, "sec_getTrustScore", {"address": dev_address("merchant1")})
        for node in range(4)
    }
    assert len({(s["epoch"]["scores_root"], s["score"]) for s in scores.values()}) <= 2
    assert all(s["positive"] == 1 for s in scores.values())
    height = scores[0]["height"]
    replay = run_cli(
        "audit", "chain", "--rpc", cluster.nodes[0].rpc_url, "--genesis", genesis,
        "--to", str(height), "--state", str(cluster.directory / "audit-chain.json"),
        timeout=300,
    )  # fmt: skip
    assert f"VERIFIED blocks 1..{height}" in replay.stdout, replay.stdout
