"""The cluster benchmark's pieces: the bound rule, the stage metrics (node side and bench side),
the load generator's lanes, cache and reply tally, and (slow) one short real run."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from secnode.bench.bound import WindowFigures, classify_bound
from secnode.bench.loadgen import (
    BATCH,
    PhaseResult,
    SenderPlan,
    read_cache,
    render_lanes,
    sign_share,
    write_cache,
)
from secnode.bench.stages import (
    parse_exposition,
    read_histogram,
    summarize_values,
    window_stages,
)
from secnode.runtime.metrics import BLOCK_STAGES, OPEN_HEIGHTS_LIMIT, Metrics, stage_metric_name

ROOT = Path(__file__).resolve().parents[1]

# --- the bound rule ----------------------------------------------------------------------------

SATURATED_CPU = WindowFigures(
    cores=2,
    machine_cores=1.95,
    node_cores=(0.45, 0.45, 0.45, 0.45),
    sender_cores=(0.05, 0.05),
    bench_cores=0.02,
    offered_tx_per_s=4000.0,
    committed_tx_per_s=1400.0,
    mempool_mean=20_000.0,
    blocks_per_s=5.0,
    mean_block_txs=280.0,
    block_size=2000,
    consensus_s_per_block=0.1,
)


def test_bound_cpu_when_the_cores_are_full_and_transactions_wait() -> None:
    bound = classify_bound(SATURATED_CPU)
    assert (bound.kind, bound.saturated, bound.suspicious) == ("cpu", True, False)
    assert "other processes 0.03" in bound.line


def test_bound_cpu_counts_other_processes_on_a_shared_machine() -> None:
    shared = dataclasses.replace(SATURATED_CPU, node_cores=(0.1,) * 4, machine_cores=1.9)
    bound = classify_bound(shared)
    assert bound.kind == "cpu"
    assert "other processes 1.38" in bound.line


def test_bound_batch_size_when_blocks_are_full() -> None:
    full = dataclasses.replace(
        SATURATED_CPU, machine_cores=1.0, mean_block_txs=1950.0, mempool_mean=8000.0
    )
    bound = classify_bound(full)
    assert (bound.kind, bound.saturated) == ("batch_size", True)


def test_bound_consensus_round_trip_when_nodes_idle_while_blocks_wait_for_quorums() -> None:
    waiting = dataclasses.replace(
        SATURATED_CPU, machine_cores=0.5, blocks_per_s=8.0, consensus_s_per_block=0.11
    )
    bound = classify_bound(waiting)
    assert (bound.kind, bound.saturated, bound.suspicious) == ("consensus_round_trip", True, False)


def test_bound_unexplained_idle_nodes_with_a_backlog_is_reported_as_a_bug() -> None:
    idle = dataclasses.replace(
        SATURATED_CPU, machine_cores=0.5, blocks_per_s=1.0, consensus_s_per_block=0.05
    )
    bound = classify_bound(idle)
    assert (bound.kind, bound.saturated, bound.suspicious) == ("unexplained", False, True)
    assert "bug" in bound.line


def test_bound_load_generator_when_offered_below_capacity() -> None:
    light = dataclasses.replace(
        SATURATED_CPU, machine_cores=0.6, offered_tx_per_s=1000.0, committed_tx_per_s=990.0
    )
    bound = classify_bound(light)
    assert (bound.kind, bound.saturated) == ("load_generator", False)
    assert "below capacity" in bound.line


def test_bound_load_generator_when_its_mempools_are_empty() -> None:
    empty = dataclasses.replace(SATURATED_CPU, machine_cores=0.6, mempool_mean=10.0)
    assert classify_bound(empty).kind == "load_generator"


def test_bound_load_generator_when_a_sender_process_is_saturated() -> None:
    busy = dataclasses.replace(
        SATURATED_CPU, machine_cores=1.2, sender_cores=(0.97, 0.2), offered_tx_per_s=1400.0
    )
    bound = classify_bound(busy)
    assert bound.kind == "load_generator"
    assert "0.97 of a core" in bound.line


def test_bound_load_generator_when_it_ran_out_of_transactions() -> None:
    out = dataclasses.replace(
        SATURATED_CPU, offered_tx_per_s=1450.0, mempool_mean=5.0, generator_exhausted=True
    )
    bound = classify_bound(out)
    assert (bound.kind, bound.saturated) == ("load_generator", False)
    assert "--max-rate" in bound.line


def test_bound_cpu_without_backlog_is_not_called_saturation() -> None:
    starved = dataclasses.replace(SATURATED_CPU, offered_tx_per_s=1420.0, mempool_mean=100.0)
    bound = classify_bound(starved)
    assert (bound.kind, bound.saturated) == ("cpu", False)


# --- stage metrics ------------------------------------------------------------------------------


def test_consensus_marks_become_stage_observations() -> None:
    metrics = Metrics()
    metrics.observe_marks([("pre_prepare", 1, 10.0), ("prepared", 1, 10.25)])
    metrics.observe_marks([("decided", 1, 10.75), ("delivered", 1, 11.0)])
    assert metrics.stage_count("prepare") == 1
    assert metrics.stage_count("commit") == 1
    assert metrics.stage_count("certify") == 1
    samples = parse_exposition(metrics.render())
    assert samples["sec_stage_prepare_seconds_sum"] == 0.25
    assert samples["sec_stage_commit_seconds_sum"] == 0.5


def test_a_mark_without_its_predecessor_observes_nothing() -> None:
    metrics = Metrics()
    metrics.observe_marks([("decided", 7, 1.0), ("delivered", 8, 2.0), ("prepared", 9, 3.0)])
    metrics.observe_marks([("delivered", 7, 1.5)])  # decided 7 was seen: certify observed
    assert [metrics.stage_count(s) for s in ("prepare", "commit", "certify")] == [0, 0, 1]


def test_open_heights_are_bounded() -> None:
    metrics = Metrics()
    metrics.observe_marks(("pre_prepare", seq, 0.0) for seq in range(3 * OPEN_HEIGHTS_LIMIT))
    metrics.observe_marks([("prepared", 0, 1.0), ("prepared", 3 * OPEN_HEIGHTS_LIMIT - 1, 1.0)])
    assert metrics.stage_count("prepare") == 1  # height 0 was forgotten, the newest kept


def test_window_stages_diff_each_node_and_add_the_nodes_up() -> None:
    nodes = [Metrics(), Metrics()]
    for node in nodes:
        node.observe_stage("execution", 5.0)  # before the window: must not count
    before = [parse_exposition(node.render()) for node in nodes]
    for value in (0.001, 0.002, 0.003, 0.004):
        nodes[0].observe_stage("execution", value)
    for value in (0.010, 0.100):
        nodes[1].observe_stage("execution", value)
    after = [parse_exposition(node.render()) for node in nodes]
    stages = window_stages(before, after)
    assert set(stages) == set(BLOCK_STAGES)
    execution = stages["execution"]
    assert execution.blocks == 6
    assert execution.mean_ms == pytest.approx(120 / 6)
    assert 2.0 <= execution.p50_ms <= 4.0 * 1.42  # within one bucket step of the true median
    assert 70.7 <= execution.p99_ms <= 100 * 1.42
    assert stages["store_write"].blocks == 0
    assert math.isnan(stages["store_write"].mean_ms)
    assert stages["store_write"].to_json()["mean_ms"] is None


def test_parse_exposition_skips_what_it_cannot_read() -> None:
    samples = parse_exposition(
        '# HELP x y\nsec_height 12\ngarbage\nsec_x{le="1"} notanumber\n\nsec_view 0\n'
    )
    assert samples == {"sec_height": 12.0, "sec_view": 0.0}
    assert read_histogram(samples, stage_metric_name("execution")) is None


def test_summarize_values_is_exact() -> None:
    summary = summarize_values([0.001 * i for i in range(1, 101)])
    assert summary.blocks == 100
    assert summary.p50_ms == pytest.approx(51.0)
    assert summary.p99_ms == pytest.approx(100.0)
    assert summary.mean_ms == pytest.approx(50.5)


# --- the load generator ---------------------------------------------------------------------------


def plan(index: int = 0, senders: int = 2, depth: int = 2) -> SenderPlan:
    return SenderPlan(
        index=index,
        senders=senders,
        accounts=11,
        per_account=30,
        chain_id="sec-bench-test",
        genesis_hash=bytes(32),
        urls=("http://a", "http://b", "http://c"),
        cache_dir=None,
        depth=depth,
    )


def test_lanes_send_each_account_to_one_node_in_nonce_order() -> None:
    sender = plan(index=1)
    transactions = sign_share(sender)
    assert len(transactions) == len(sender.accounts_of()) * sender.per_account
    lanes = render_lanes(sender, transactions)
    position = {tx_hash.hex(): i for i, (tx_hash, _) in enumerate(transactions)}
    seen: set[str] = set()
    for lane in lanes:
        hashes = [h for batch in lane.batches for h in batch.hashes]
        assert all(len(batch.hashes) <= BATCH for batch in lane.batches)
        assert hashes == sorted(hashes, key=position.__getitem__)  # signing order kept
        for batch in lane.batches:  # each body is the batch's transactions, in its order
            entries = json.loads(batch.body)
            assert [e["method"] for e in entries] == ["sec_sendTransaction"] * len(entries)
            sent = [hashlib.sha256(bytes.fromhex(e["params"]["tx"])).hexdigest() for e in entries]
            assert sent == list(batch.hashes)
        seen.update(hashes)
    assert seen == set(position)
    assert len({lane.url for lane in lanes}) == 3
    assert all(lane.url.endswith("/rpc") for lane in lanes)


def test_an_account_never_spans_two_lanes() -> None:
    sender = plan(index=0, senders=1, depth=3)
    transactions = sign_share(sender)
    lanes = render_lanes(sender, transactions)
    mine = sender.accounts_of()
    lane_of_account: dict[int, int] = {}
    lane_of_hash = {h: n for n, lane in enumerate(lanes) for b in lane.batches for h in b.hashes}
    for position, (tx_hash, _) in enumerate(transactions):
        account = mine[position % len(mine)]
        lane = lane_of_hash[tx_hash.hex()]
        assert lane_of_account.setdefault(account, lane) == lane


def test_cache_round_trip_and_damage(tmp_path: Path) -> None:
    transactions = [(bytes([i]) * 32, b"tx" * i) for i in range(5)]
    path = tmp_path / "sub" / "cache.bin"
    write_cache(path, transactions)
    assert read_cache(path) == transactions
    path.write_bytes(path.read_bytes()[:-1])
    assert read_cache(path) is None
    assert read_cache(tmp_path / "missing.bin") is None


def test_reply_tally_counts_acceptances_and_rejections_by_reason() -> None:
    result = PhaseResult()
    result.tally(b'[{"jsonrpc":"2.0","id":0,"result":{"hash":"ab"}}]', 1)
    result.tally(
        b'[{"id":0,"result":{}},{"id":1,"error":{"code":-32010,"message":"m",'
        b'"data":{"reason":"nonce_gap"}}},{"id":2,"error":{"code":-1,"message":"busy"}}]',
        3,
    )
    result.tally(b'{"error":{"code":-32600,"message":"batch too large"}}', 100)
    result.tally(b'not json "error"', 2)
    assert result.accepted == 2
    assert result.rejected == {
        "nonce_gap": 1,
        "busy": 1,
        "batch too large": 100,
        "unparsable_reply": 2,
    }


# --- one short real run -------------------------------------------------------------------------


@pytest.mark.slow
def test_sec_bench_cluster_reports_every_field(tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "cli.py"),
            "bench",
            "cluster",
            "--duration",
            "2",
            "--accounts",
            "50",
            "--max-rate",
            "300",
            "--json",
            str(report_path),
            "--tx-cache",
            str(tmp_path / "cache"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(report_path.read_text())
    assert report["validators"] == 4
    assert report["senders"] == 2
    assert report["presigned"] >= 50
    assert report["offered_saturation"] > 0
    assert report["committed_tx_per_s"] > 0
    assert report["offered_tx_per_s"] >= report["committed_tx_per_s"] * 0.5
    assert len(report["node_busy_percent"]) == 4
    assert all(0 <= busy <= 100 * report["cores"] for busy in report["node_busy_percent"])
    assert len(report["loadgen_cpu_percent"]) == 2
    assert 0 < report["machine_busy_percent"] <= 100 * report["cores"] + 1
    assert set(report["stages"]) == {*BLOCK_STAGES, "reply", "end_to_end"}
    for name in ("proposal_build", "prepare", "commit", "certify", "store_write", "end_to_end"):
        stage = report["stages"][name]
        assert stage["blocks"] > 0, name
        assert 0 <= stage["p50_ms"] <= stage["p99_ms"] * 1.0001, name
        assert stage["mean_ms"] > 0, name
    bound = report["bound"]
    assert bound["kind"] in {
        "cpu",
        "batch_size",
        "consensus_round_trip",
        "load_generator",
        "unexplained",
    }
    assert bound["line"]
    assert isinstance(report["follower_lag_blocks"], int)
    assert report["seen_in_window_tx_per_s"] >= 0
    assert report["blocks"] > 0
    assert report["mean_block_txs"] * report["blocks"] == pytest.approx(
        report["committed_tx_per_s"] * report["window_s"]
    )
    assert report["finality_samples"] > 0
    assert report["R"] > 0
    assert "bound:" in run.stdout
    assert "pre-prepare -> prepare quorum" in run.stdout
