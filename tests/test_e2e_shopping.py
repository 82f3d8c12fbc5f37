"""End to end: the shopping flow on a real four-validator network, through the `sec` CLI.

The network is made with `sec genesis new --dev` on free ports (tests/e2e_cluster.py) and its
genesis gets short escrow windows before any node starts, so deadlines pass in seconds of block
time (an idle network commits an empty block every 0.2 s, so block time follows the clock).
Every order action is a `sec tx order ... --wait` process, sent through different nodes; the
test reads back through `sec query` and JSON-RPC only.

* merchant creates, buyer pays, merchant ships, buyer confirms, the return window passes: the
  sharer gets the commission, the merchant the rest, and the balances add up;
* a dispute resolved by the arbiter with a partial refund;
* an order refunded because the merchant missed the ship deadline.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e_cluster import Cluster, dev_address, run_cli, wait_until

pytestmark = pytest.mark.slow

WINDOWS = {
    "cancel_window_s": 120,
    "ship_deadline_s": 6,
    "confirm_window_s": 6,
    "return_window_s": 2,
    "dispute_deadline_s": 8,
}
"""Long enough for a CLI round trip (about a second) inside each window, short enough to wait."""
ITEMS = ("--item", "tea:2:1000", "--item", "cup:1:250", "--shipping", "500")
TOTAL = 2 * 1_000 + 250 + 500
GOODS = 2 * 1_000 + 250
WAIT_S = 30.0


def _set_windows(directory: Path) -> None:
    """Give every copy of the network's genesis the short windows (all must stay identical)."""
    for path in [directory / "genesis.json", *sorted(directory.glob("node*/genesis.json"))]:
        document = json.loads(path.read_text())
        document["parameters"] = {**document.get("parameters", {}), **WINDOWS}
        path.write_text(json.dumps(document, indent=2) + "\n")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with Cluster.create(tmp_path / "net") as network:
        _set_windows(tmp_path / "net")
        network.start()
        network.wait_ready()
        yield network


def _tx(cluster: Cluster, node: int, key: str, *verb: str) -> dict[str, Any]:
    """`sec tx VERB --wait --json` through `node`; the committed, successful result, once every
    node has the block."""
    result = run_cli(
        "tx",
        *verb,
        *("--key", f"dev:{key}", "--rpc", cluster.nodes[node].rpc_url),
        *("--wait", "--timeout", "30", "--json"),
    )
    outcome: dict[str, Any] = json.loads(result.stdout)
    assert outcome["status"] == "committed" and outcome["receipt"]["ok"], outcome
    # The next step may go through another node: it must know this block (nonces, the order).
    cluster.wait_for_heights(range(4), outcome["height"], WAIT_S)
    return outcome


def _balances(cluster: Cluster, *names: str) -> dict[str, int]:
    return {
        name: cluster.call(0, "sec_getAccount", {"address": dev_address(name)})["balance"]
        for name in names
    }


def _order(cluster: Cluster, node: int, order_id: str) -> dict[str, Any]:
    order: dict[str, Any] = cluster.call(node, "sec_getOrder", {"order_id": order_id})["order"]
    return order


def _wait_state(cluster: Cluster, order_id: str, state: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        order = _order(cluster, 0, order_id)
        return order if order["state"] == state else None

    return wait_until(reached, WAIT_S, f"order {order_id} to be {state}", cluster.diagnostics)


def _create(cluster: Cluster, merchant: str, buyer: str, *extra: str) -> str:
    outcome = _tx(
        cluster,
        0,
        merchant,
        *("order", "create", "--buyer", f"dev:{buyer}", "--arbiter", "dev:arbiter"),
        *ITEMS,
        *extra,
    )
    order_id: str = outcome["order_id"]
    assert order_id == outcome["hash"]
    return order_id


def test_shopping_flow_dispute_and_missed_ship_deadline(cluster: Cluster) -> None:
    # --- merchant creates, buyer pays, merchant ships, buyer confirms, windows pass ---
    before = _balances(cluster, "buyer1", "merchant1", "sharer1")
    order_id = _create(
        cluster, "merchant1", "buyer1", "--sharer", "dev:sharer1", "--commission-bps", "1000"
    )
    _tx(cluster, 1, "buyer1", "order", "pay", "--order", order_id)
    assert _order(cluster, 1, order_id)["held"] == TOTAL
    _tx(cluster, 2, "merchant1", "order", "ship", "--order", order_id, "--shipment", "SF1001")
    _tx(cluster, 3, "buyer1", "order", "confirm", "--order", order_id)
    done = _wait_state(cluster, order_id, "COMPLETED")
    commission = GOODS * 1_000 // 10_000
    assert done["settlement"] == {
        "refunded": 0,
        "merchant": TOTAL - commission,
        "sharer": commission,
        "leader": 0,
    }
    after = _balances(cluster, "buyer1", "merchant1", "sharer1")
    assert after["buyer1"] == before["buyer1"] - TOTAL
    assert after["sharer1"] == before["sharer1"] + commission
    assert after["merchant1"] == before["merchant1"] + TOTAL - commission
    assert sum(after.values()) == sum(before.values())
    shown = run_cli("query", "order", order_id, "--prove", "--rpc", cluster.nodes[3].rpc_url)
    assert "membership verified under the state root" in shown.stdout
    assert "COMPLETED" in shown.stdout
    listing = run_cli(
        *("query", "orders", "--party", "dev:sharer1", "--json"),
        *("--rpc", cluster.nodes[2].rpc_url),
    )
    entries = json.loads(listing.stdout)["orders"]
    assert [(e["role"], e["order"]["order_id"]) for e in entries] == [("sharer", order_id)]

    # --- a dispute resolved by the arbiter ---
    before = _balances(cluster, "buyer2", "merchant1", "arbiter")
    disputed = _create(cluster, "merchant1", "buyer2")
    _tx(cluster, 1, "buyer2", "order", "pay", "--order", disputed)
    _tx(cluster, 2, "merchant1", "order", "ship", "--order", disputed, "--shipment", "SF1002")
    _tx(cluster, 3, "buyer2", "order", "dispute", "--order", disputed, "--reason", "broken cup")
    assert _order(cluster, 0, disputed)["state"] == "DISPUTED"
    resolved = _tx(
        cluster, 0, "arbiter", "order", "resolve", "--order", disputed, "--refund", "250"
    )
    payouts = {
        e["role"]: e["amount"]
        for e in resolved["receipt"]["events"]
        if e["event"] == "order.payout"
    }
    assert payouts == {"buyer": 250, "merchant": TOTAL - 250}
    assert _order(cluster, 1, disputed)["state"] == "RESOLVED"
    after = _balances(cluster, "buyer2", "merchant1", "arbiter")
    assert after == {
        "buyer2": before["buyer2"] - TOTAL + 250,
        "merchant1": before["merchant1"] + TOTAL - 250,
        "arbiter": before["arbiter"],
    }

    # --- the merchant misses the ship deadline: the buyer is refunded in full ---
    before = _balances(cluster, "buyer3", "merchant2")
    late = _create(cluster, "merchant2", "buyer3")
    paid = _tx(cluster, 2, "buyer3", "order", "pay", "--order", late)
    refunded = _wait_state(cluster, late, "REFUNDED")
    assert refunded["settlement"]["refunded"] == TOTAL and refunded["held"] == 0
    header = cluster.call(0, "sec_getBlock", {"height": paid["height"]})["header"]
    assert refunded["updated_s"] == header["timestamp_ms"] // 1000 + WINDOWS["ship_deadline_s"]
    assert _balances(cluster, "buyer3", "merchant2") == before
    shipped_late = run_cli(
        *("tx", "order", "ship", "--order", late, "--shipment", "too late"),
        *("--key", "dev:merchant2", "--rpc", cluster.nodes[0].rpc_url, "--wait", "--json"),
        check=False,
    )
    assert shipped_late.returncode == 1
    assert json.loads(shipped_late.stdout)["receipt"]["code"] == "order_closed"

    # Every node holds the same order records (once every node has node0's blocks).
    cluster.wait_for_heights(range(4), cluster.call(0, "sec_status")["height"], timeout=WAIT_S)
    for index in range(4):
        for order in (order_id, disputed, late):
            assert _order(cluster, index, order)["state"] == _order(cluster, 0, order)["state"]
