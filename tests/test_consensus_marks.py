"""The replica's stage instants (`Replica.take_marks`), which the node's stage metrics use."""

from __future__ import annotations

from consensus.sim.cluster import Cluster


def test_marks_are_not_recorded_until_taken() -> None:
    cluster = Cluster(4)
    cluster.start()
    cluster.submit(2)
    cluster.advance(2.0)
    assert min(cluster.heights()) >= 1
    assert all(cluster.replica(i).take_marks() == [] for i in range(4))


def test_every_decided_height_is_marked_in_stage_order_on_every_replica() -> None:
    cluster = Cluster(4)
    cluster.start()
    for index in range(4):
        cluster.replica(index).take_marks()  # start recording
    for _ in range(5):
        cluster.submit()
        cluster.advance(0.3)
    cluster.run_until(lambda: min(cluster.heights()) >= 5)
    for index in range(4):
        replica = cluster.replica(index)
        marks = replica.take_marks()
        by_height: dict[int, dict[str, float]] = {}
        for stage, seq, at in marks:
            assert stage in {"pre_prepare", "prepared", "decided"}
            by_height.setdefault(seq, {}).setdefault(stage, at)
        for seq in range(1, replica.height + 1):
            instants = by_height[seq]
            assert instants["pre_prepare"] <= instants["prepared"] <= instants["decided"], seq
        assert replica.take_marks() == []  # taken means gone
