"""End to end: four validator processes agree, survive a crashed primary, catch a restarted node
up, and stop rather than fork without a quorum.

Each test makes its own network with `sec genesis new` on free ports (tests/e2e_cluster.py),
with 0.2 s empty blocks and a 1 s view timeout, and talks to the nodes only through the CLI,
JSON-RPC and signals. n = 4, so f = 1: any three validators make progress, two cannot.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.e2e_cluster import (
    Cluster,
    dev_address,
    run_cli,
    tune_config,
    wait_until,
)

pytestmark = pytest.mark.slow

ALL = (0, 1, 2, 3)
SENDERS = ("buyer1", "buyer2", "buyer3", "sharer1")
"""A funded development account per node, so concurrent sends never compete for a nonce."""
CATCH_UP_GAP = 55
"""Blocks a stopped node misses: more than the watermark window (32), so the restarted node
cannot be brought back by the normal protocol alone and must fetch certified blocks."""
QUIET_WINDOW_S = 3.0
"""How long a network without quorum is watched: 15 empty-block intervals."""


def network_view(cluster: Cluster, indices: Sequence[int]) -> int:
    """The view a quorum (3) of the nodes in `indices` report: the one the network runs in.

    Not "all nodes": a validator that timed out alone sits in a higher view it never enters
    (see test_validator_started_before_the_others_joins_them) and does not vote meanwhile."""

    def quorum_view() -> int | None:
        views = Counter(s["view"] for i in indices if (s := cluster.status(i)) is not None)
        view, count = views.most_common(1)[0] if views else (0, 0)
        return int(view) if count >= 3 else None

    return wait_until(quorum_view, 20, "a quorum to agree on a view", cluster.diagnostics)


def max_height(cluster: Cluster, indices: Sequence[int]) -> int:
    return max(h for h in cluster.heights(indices).values() if h is not None)


def test_transactions_sent_to_every_node_commit_and_every_node_agrees(cluster: Cluster) -> None:
    merchant = dev_address("merchant1")
    opening = cluster.call(0, "sec_getAccount", {"address": merchant})["balance"]
    amounts = [101, 202, 303, 404]

    outcomes = cluster.transfers(
        [(i, SENDERS[i], "merchant1", amount) for i, amount in enumerate(amounts)]
    )

    top = max(outcome["height"] for outcome in outcomes)
    cluster.wait_for_heights(ALL, top, timeout=30)
    for outcome in outcomes:
        for index in ALL:
            answer = cluster.call(index, "sec_getTransaction", {"hash": outcome["hash"]})
            where = (answer["status"], answer["height"], answer["block_hash"])
            assert where == ("committed", outcome["height"], outcome["block_hash"]), (
                f"node{index} has {outcome['hash']} at {where}, the sender saw {outcome}"
            )
    headers = [cluster.call(i, "sec_getBlock", {"height": top}) for i in ALL]
    assert len({block["hash"] for block in headers}) == 1, headers
    assert len({block["header"]["state_root"] for block in headers}) == 1, headers
    cluster.assert_same_chain(ALL)
    cluster.assert_state_agrees(ALL, merchant)
    closing = cluster.call(3, "sec_getAccount", {"address": merchant})["balance"]
    assert closing == opening + sum(amounts)


def test_killed_primary_is_replaced_by_a_view_change_and_commits_continue(
    cluster: Cluster,
) -> None:
    view = network_view(cluster, ALL)
    primary = cluster.primary(view)
    survivors = [i for i in ALL if i != primary]
    height_at_kill = max_height(cluster, ALL)

    cluster.kill(primary)

    def moved_on() -> int | None:
        statuses = [cluster.status(i) for i in survivors]
        views = {s["view"] for s in statuses if s is not None}
        return views.pop() if len(views) == 1 and all(statuses) and min(views) > view else None

    what = f"the survivors to leave view {view} of the killed primary node{primary}"
    new_view = wait_until(moved_on, 30, what, cluster.diagnostics)
    assert cluster.primary(new_view) != primary
    cluster.wait_for_heights(survivors, height_at_kill + 10, timeout=30)
    outcome = cluster.transfer(survivors[-1], "buyer1", "merchant1", 7)
    block = cluster.call(survivors[0], "sec_getBlock", {"height": outcome["height"]})
    assert block["header"]["view"] >= new_view, block  # ordered by a new primary
    assert block["header"]["proposer"] != cluster.nodes[primary].address, block

    # The old primary comes back as a backup, catches up and agrees.
    cluster.start(primary)
    cluster.wait_for_heights([primary], max_height(cluster, survivors), timeout=60)
    cluster.assert_same_chain(ALL)


def test_node_down_for_50_blocks_catches_up_on_restart_agrees_and_votes(cluster: Cluster) -> None:
    view = network_view(cluster, ALL)
    victim = (cluster.primary(view) + 1) % 4  # a backup: no view change muddles the test
    others = [i for i in ALL if i != victim]
    cluster.kill(victim)
    down_at = max_height(cluster, others)

    # Blocks with transactions among the missed ones: catch-up must execute them, not copy.
    cluster.transfers(
        [(others[0], "buyer1", "merchant2", 11), (others[1], "buyer2", "sharer2", 12)]
    )
    cluster.wait_for_heights(others, down_at + CATCH_UP_GAP, timeout=60)

    cluster.start(victim)
    cluster.wait_for_heights([victim], max_height(cluster, others), timeout=60)
    cluster.assert_same_chain(ALL)
    cluster.assert_state_agrees(ALL, dev_address("merchant2"))

    # It votes again: with another backup killed, progress needs the restarted node.
    second = next(i for i in others if i != cluster.primary(network_view(cluster, ALL)))
    cluster.kill(second)
    remaining = [i for i in ALL if i != second]
    cluster.wait_for_heights(remaining, max_height(cluster, remaining) + 10, timeout=45)
    cluster.assert_same_chain(remaining)


def test_two_of_four_down_stops_commits_and_restoring_them_resumes_without_fork(
    cluster: Cluster,
) -> None:
    view = network_view(cluster, ALL)
    hung = cluster.primary(view)
    crashed = (hung + 1) % 4
    live = [i for i in ALL if i not in (hung, crashed)]

    cluster.pause(hung)  # SIGSTOP: sockets open, nothing answered
    cluster.kill(crashed)  # SIGKILL: connections reset

    # Heights already voted on may still complete; then nothing may commit.
    last_change = {"height": -1, "at": time.monotonic()}

    def settled() -> int | None:
        height = max_height(cluster, live)
        if height != last_change["height"]:
            last_change.update(height=height, at=time.monotonic())
        return height if time.monotonic() - last_change["at"] >= 1.0 else None

    stalled_at = wait_until(settled, 20, "the live nodes' heights to settle", cluster.diagnostics)
    arguments = ["tx", "transfer", "--key", "dev:buyer3", "--to", "dev:merchant1"]
    arguments += ["--amount", "5", "--json", "--rpc", cluster.nodes[live[0]].rpc_url]
    pending = json.loads(run_cli(*arguments).stdout)  # no --wait: admitted to the mempool
    assert pending["status"] == "pending", pending
    window_end = time.monotonic() + QUIET_WINDOW_S
    while time.monotonic() < window_end:
        heights = cluster.heights(live)  # a laggard may still fetch blocks up to stalled_at
        assert all(h is not None and h <= stalled_at for h in heights.values()), (
            f"without a quorum the live nodes moved from {stalled_at} to {heights}\n"
            f"{cluster.diagnostics()}"
        )
        time.sleep(0.1)
    for index in live:
        answer = cluster.call(index, "sec_getTransaction", {"hash": pending["hash"]})
        assert answer["status"] == "pending", answer

    cluster.resume(hung)
    cluster.start(crashed)
    cluster.wait_for_heights(ALL, stalled_at + 5, timeout=60)

    def committed_everywhere() -> bool:
        try:  # the restarted node never saw the gossip: "not found" until the block reaches it
            answers = [
                cluster.call(i, "sec_getTransaction", {"hash": pending["hash"]}) for i in ALL
            ]
        except AssertionError:
            return False
        return all(answer["status"] == "committed" for answer in answers)

    what = "the transaction sent during the stall to commit everywhere"
    wait_until(committed_everywhere, 30, what, cluster.diagnostics)
    cluster.assert_same_chain(ALL)
    cluster.assert_state_agrees(ALL, dev_address("merchant1"))


def test_validator_started_before_the_others_joins_them(tmp_path: Path) -> None:
    """Operators start their nodes minutes apart: the first one's view timer fires before anyone
    else is up. Once the others are running it must end up in their view, voting."""
    with Cluster.create(tmp_path / "net") as cluster:
        for index in (0, 1, 3):  # the later ones: no spurious view change of their own
            tune_config(cluster.nodes[index].home, {"view_change_timeout_s": 3.0})
        cluster.start(2)

        def timed_out_alone() -> bool:
            status = cluster.status(2)
            return status is not None and status["view"] > 0

        wait_until(
            timed_out_alone, 20, "node2, alone, to ask for a view change", cluster.diagnostics
        )
        for index in (0, 1, 3):
            cluster.start(index)
        cluster.wait_ready()

        def joined() -> bool:
            statuses = [cluster.status(i) for i in ALL]
            if not all(statuses):
                return False
            heights = [s["height"] for s in statuses if s is not None]
            views = {s["view"] for s in statuses if s is not None}
            in_sync = all(s["view_in_sync"] for s in statuses if s is not None)
            return len(views) == 1 and in_sync and max(heights) - min(heights) <= 4

        what = "node2 to run in the others' view and keep up with them"
        wait_until(joined, 15, what, cluster.diagnostics)
