"""End to end: the social-commerce flows on a real four-validator network, through the `sec` CLI.

The network is made with `sec genesis new --dev` on free ports (tests/e2e_cluster.py); its genesis
gets short windows and a 20-block trust epoch before any node starts (an idle network commits an
empty block every 0.2 s, so block time follows the clock). Every step is a `sec` process sent
through one of the four nodes; the test reads back through `sec query` and JSON-RPC only.

* a group of three forms and completes through a community leader with pickup codes;
* a second group fails to reach its minimum and refunds itself with nobody acting;
* a buyer returns one line of an order without a reason and gets exactly its value back, and the
  sharer's commission is paid on the kept line only;
* reviews are posted and replied to, and a second review of the same order is refused (no
  transaction can remove one);
* the purchases lead to attestations, a trust epoch, and `sec audit trust` printing VERIFIED.
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
    "ship_deadline_s": 60,
    "confirm_window_s": 60,
    "return_window_s": 12,
    "dispute_deadline_s": 60,
    "pickup_window_s": 60,
    "return_ship_window_s": 60,
    "return_receive_window_s": 60,
    "trust_epoch_blocks": 20,
    "trust_epoch_delay": 2,
}
"""Long enough for a few CLI round trips inside each window, short enough to wait."""
WAIT_S = 60.0
LEADER_BPS = 500
SHARER_BPS = 1_000


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
    """`sec tx VERB --wait --json` through `node`: the committed, successful result, once every
    node has its block (the next step may go through another node)."""
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


def _refused(cluster: Cluster, key: str, *verb: str) -> str:
    """A transaction that commits and fails: its receipt code (exit status 1)."""
    result = run_cli(
        "tx",
        *verb,
        *("--key", f"dev:{key}", "--rpc", cluster.nodes[0].rpc_url, "--wait", "--json"),
        check=False,
    )
    assert result.returncode == 1, result.stdout
    code: str = json.loads(result.stdout)["receipt"]["code"]
    return code


def _balances(cluster: Cluster, *names: str) -> dict[str, int]:
    return {
        name: cluster.call(0, "sec_getAccount", {"address": dev_address(name)})["balance"]
        for name in names
    }


def _order(cluster: Cluster, order_id: str) -> dict[str, Any]:
    order: dict[str, Any] = cluster.call(0, "sec_getOrder", {"order_id": order_id})["order"]
    return order


def _wait_order(cluster: Cluster, order_id: str, state: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        order = _order(cluster, order_id)
        return order if order["state"] == state else None

    return wait_until(reached, WAIT_S, f"order {order_id} to be {state}", cluster.diagnostics)


def _code(name: str) -> str:
    """A buyer's one-time pickup code (16 bytes, hex): only its hash goes on chain."""
    return (name.encode() * 16)[:16].hex()


def _group(cluster: Cluster, group_id: str) -> dict[str, Any]:
    answer: dict[str, Any] = cluster.call(0, "sec_getGroup", {"group_id": group_id})
    return answer


def _wait_group(cluster: Cluster, group_id: str, state: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        answer = _group(cluster, group_id)
        return answer if answer["group"]["state"] == state else None

    return wait_until(reached, WAIT_S, f"group {group_id} to be {state}", cluster.diagnostics)


def _group_through_a_leader(cluster: Cluster) -> list[str]:
    """Three buyers join a group routed to leader sharer2; it forms; every member order is
    handed over with its buyer's code; each pays the leader's commission. The member orders."""
    buyers = ("buyer1", "buyer2", "buyer3")
    before = _balances(cluster, *buyers, "merchant2", "sharer2")
    opened = _tx(
        cluster, 0, "merchant2", "group", "open", "--item", "rice, 5 kg", "--price", "1500",
        "--min", "3", "--max", "3", "--deadline-in", "120", "--arbiter", "dev:arbiter",
        "--leader", "dev:sharer2", "--leader-commission-bps", str(LEADER_BPS),
    )  # fmt: skip
    group_id: str = opened["hash"]
    for node, buyer in enumerate(buyers):
        verb = ("group", "join", "--group", group_id, "--pickup-code", _code(buyer))
        _tx(cluster, node + 1, buyer, *verb)
    formed = _wait_group(cluster, group_id, "FORMED")
    orders: list[str] = [member["order_id"] for member in formed["members"]]
    assert len(orders) == 3 and formed["group"]["pool"] == 0
    for order_id, buyer in zip(orders, buyers, strict=True):
        assert _order(cluster, order_id)["state"] == "FUNDED"
        _tx(cluster, 1, "merchant2", "order", "ship", "--order", order_id, "--shipment", "bulk")
        _tx(cluster, 2, "sharer2", "order", "arrive", "--order", order_id)
        _tx(cluster, 3, "sharer2", "order", "pickup", "--order", order_id, "--code", _code(buyer))
    fee = 1_500 * LEADER_BPS // 10_000
    for order_id in orders:
        done = _wait_order(cluster, order_id, "COMPLETED")
        assert done["settlement"]["leader"] == fee
    after = _balances(cluster, *buyers, "merchant2", "sharer2")
    assert after == {
        **{buyer: before[buyer] - 1_500 for buyer in buyers},
        "merchant2": before["merchant2"] + 3 * (1_500 - fee),
        "sharer2": before["sharer2"] + 3 * fee,
    }
    return orders


def _group_that_fails(cluster: Cluster) -> None:
    """A group that never reaches its minimum refunds its one member at the deadline, with
    nobody acting."""
    before = _balances(cluster, "buyer3", "merchant1")
    opened = _tx(
        cluster, 0, "merchant1", "group", "open", "--item", "lychee box", "--price", "900",
        "--min", "3", "--max", "5", "--deadline-in", "8", "--arbiter", "dev:arbiter",
    )  # fmt: skip
    group_id: str = opened["hash"]
    _tx(cluster, 1, "buyer3", "group", "join", "--group", group_id)
    assert _balances(cluster, "buyer3")["buyer3"] == before["buyer3"] - 900
    failed = _wait_group(cluster, group_id, "FAILED")
    assert failed["group"]["pool"] == 0
    assert _balances(cluster, "buyer3", "merchant1") == before


def test_groups_returns_reviews_and_a_verified_audit(cluster: Cluster) -> None:
    _tx(cluster, 0, "admin", "roles", "--address", "dev:sharer2", "--grant", "leader")
    group_orders = _group_through_a_leader(cluster)
    _group_that_fails(cluster)

    # --- an order through a community leader, handed over with the buyer's pickup code ---
    before = _balances(cluster, "buyer1", "merchant1", "sharer2")
    created = _tx(
        cluster, 0, "merchant1", "order", "create", "--buyer", "dev:buyer1",
        "--arbiter", "dev:arbiter", "--item", "tea:2:1000",
        "--leader", "dev:sharer2", "--leader-commission-bps", str(LEADER_BPS),
    )  # fmt: skip
    picked = created["order_id"]
    _tx(cluster, 1, "buyer1", "order", "pay", "--order", picked, "--pickup-code", _code("b1"))
    _tx(cluster, 2, "merchant1", "order", "ship", "--order", picked, "--shipment", "to-leader")
    _tx(cluster, 3, "sharer2", "order", "arrive", "--order", picked)
    assert _order(cluster, picked)["state"] == "AT_PICKUP"
    assert _refused(cluster, "sharer2", "order", "pickup", "--order", picked, "--code", _code("x"))
    _tx(cluster, 0, "sharer2", "order", "pickup", "--order", picked, "--code", _code("b1"))
    done = _wait_order(cluster, picked, "COMPLETED")
    leader_fee = 2_000 * LEADER_BPS // 10_000
    assert done["settlement"]["leader"] == leader_fee
    assert done["settlement"]["merchant"] == 2_000 - leader_fee
    after = _balances(cluster, "buyer1", "merchant1", "sharer2")
    assert after == {
        "buyer1": before["buyer1"] - 2_000,
        "merchant1": before["merchant1"] + 2_000 - leader_fee,
        "sharer2": before["sharer2"] + leader_fee,
    }

    # --- a no-reason return of one line: exact refund, commission on the kept line only ---
    before = _balances(cluster, "buyer2", "merchant1", "sharer1")
    created = _tx(
        cluster, 1, "merchant1", "order", "create", "--buyer", "dev:buyer2",
        "--arbiter", "dev:arbiter", "--item", "tea:2:1000", "--item", "cup:1:250",
        "--sharer", "dev:sharer1", "--commission-bps", str(SHARER_BPS),
    )  # fmt: skip
    returned = created["order_id"]
    _tx(cluster, 2, "buyer2", "order", "pay", "--order", returned)
    _tx(cluster, 3, "merchant1", "order", "ship", "--order", returned, "--shipment", "SF-2")
    _tx(cluster, 0, "buyer2", "order", "confirm", "--order", returned)
    _tx(cluster, 1, "buyer2", "order", "return", "--order", returned, "--line", "1")
    _tx(cluster, 2, "buyer2", "order", "return-ship", "--order", returned, "--tracking", "R-1")
    _tx(cluster, 3, "merchant1", "order", "return-received", "--order", returned)
    settled = _wait_order(cluster, returned, "COMPLETED")
    commission = 2_000 * SHARER_BPS // 10_000
    assert settled["settlement"] == {
        "refunded": 250,
        "merchant": 2_000 - commission,
        "sharer": commission,
        "leader": 0,
    }
    after = _balances(cluster, "buyer2", "merchant1", "sharer1")
    assert after == {
        "buyer2": before["buyer2"] - 2_000,
        "merchant1": before["merchant1"] + 2_000 - commission,
        "sharer1": before["sharer1"] + commission,
    }

    # --- reviews: one per order, a merchant reply, and nothing can take one back ---
    _tx(cluster, 0, "buyer1", "review", "post", "--order", picked, "--rating", "5",
        "--text", "fresh tea, easy pickup", "--item", "tea")  # fmt: skip
    _tx(cluster, 1, "merchant1", "review", "reply", "--order", picked, "--text", "thank you")
    _tx(cluster, 2, "buyer2", "review", "post", "--order", returned, "--rating", "4",
        "--text", "returned the cup, no questions")  # fmt: skip
    again = ("review", "post", "--order", picked, "--rating", "1", "--text", "changed my mind")
    assert _refused(cluster, "buyer1", *again) == "already_reviewed"
    listing = run_cli(
        "query", "reviews", "dev:merchant1", "--prove", "--json",
        "--rpc", cluster.nodes[3].rpc_url,
    )  # fmt: skip
    reviews = json.loads(listing.stdout)
    assert reviews["count"] == 2 and reviews["rating_sum"] == 9
    ratings = sorted(entry["rating"] for entry in reviews["reviews"])
    assert ratings == [4, 5]

    # --- attestations, an epoch, and an auditor that trusts only the genesis file ---
    attestations = (
        (0, "buyer1", picked, "dev:merchant1"),
        (1, "buyer2", returned, "dev:merchant1"),
        (2, "buyer3", group_orders[2], "dev:merchant2"),
    )
    for node, key, order, subject in attestations:
        verb = ("attest", "--order", order, "--subject", subject, "--value", "+1")
        _tx(cluster, node, key, *verb)

    def epoch_with_inputs() -> dict[str, Any] | None:
        request = {"jsonrpc": "2.0", "id": 1, "method": "sec_getTrustEpoch"}
        response = cluster.post(cluster.nodes[2], {**request, "params": {"page_size": 16}})
        answer: dict[str, Any] | None = response.get("result")  # not_found before epoch 1
        return answer if answer is not None and answer["epoch"]["attestations"] >= 3 else None

    wait_until(epoch_with_inputs, WAIT_S, "an epoch over the attestations", cluster.diagnostics)
    audited = run_cli(
        "audit", "trust", "dev:merchant1", "--rpc", cluster.nodes[1].rpc_url,
        "--genesis", str(cluster.directory / "genesis.json"),
        "--state", str(cluster.directory / "audit.json"), timeout=120,
    )  # fmt: skip
    assert f"VERIFIED {dev_address('merchant1')}" in audited.stdout, audited.stdout
    audited = run_cli(
        "audit", "trust", "dev:merchant2", "--rpc", cluster.nodes[3].rpc_url,
        "--genesis", str(cluster.directory / "genesis.json"),
        "--state", str(cluster.directory / "audit-2.json"), timeout=120,
    )  # fmt: skip
    assert f"VERIFIED {dev_address('merchant2')}" in audited.stdout, audited.stdout
