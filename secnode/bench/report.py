"""The cluster benchmark's report as text (the JSON report has the same fields, unrounded)."""

from __future__ import annotations

from typing import Any

from secnode.runtime.metrics import BLOCK_STAGES

STAGE_LABELS = {
    "mempool_wait": "mempool wait (admitted -> proposed)",
    "proposal_build": "proposal build (primary)",
    "execution": "execution (backups validate)",
    "prepare": "pre-prepare -> prepare quorum",
    "commit": "prepare -> commit quorum",
    "certify": "commit quorum -> delivered",
    "store_write": "store write",
    "reply": "reply (commit -> bench sees it)*",
    "end_to_end": "whole block (block time -> bench sees it)",
}


def _ms(value: float | None) -> str:
    return "     -" if value is None else f"{value:8.2f}"


def render_stages(stages: dict[str, dict[str, Any]]) -> list[str]:
    lines = [f"    {'stage':38} {'blocks':>6} {'mean ms':>8} {'p50 ms':>8} {'p99 ms':>8}"]
    for name in (*BLOCK_STAGES, "reply", "end_to_end"):
        stage = stages.get(name)
        if stage is None:
            continue
        lines.append(
            f"    {STAGE_LABELS.get(name, name):38} {stage['blocks']:6d} "
            f"{_ms(stage['mean_ms'])} {_ms(stage['p50_ms'])} {_ms(stage['p99_ms'])}"
        )
    lines.append(
        "    (per block and node, all nodes together; * an upper bound, see sec bench cluster -h)"
    )
    return lines


def render(report: dict[str, Any]) -> str:
    """The report a person reads (see `secnode.bench.cluster` for what each figure means)."""
    bound = report["bound"]
    per_node = ", ".join(f"{c:.0f}" for c in report["cpu_us_per_tx_per_node"])
    busy = "  ".join(f"{b:.0f}%" for b in report["node_busy_percent"])
    senders = " + ".join(f"{c:.0f}%" for c in report["loadgen_cpu_percent"])
    saturation = "at saturation" if bound["saturated"] else "NOT saturated (see bound)"
    source = "from the cache" if report["presign_from_cache"] else "signed"
    return "\n".join(
        [
            f"cluster benchmark: {report['validators']} validators, "
            f"{report['accounts']} sending accounts, blocks up to {report['block_size']} txs, "
            f"{report['cores']} cores (load {report['load_average_1m']:.1f}), "
            f"{report['senders']} sender processes",
            f"  {report['presigned']:,} transfers {source} in {report['presign_s']:.1f} s",
            f"  saturation window {report['window_s']:.0f} s, "
            + (
                "closed loop:"
                if report["offered_rate_target"] is None
                else f"open loop at {report['offered_rate_target']:.0f} tx/s:"
            ),
            f"    offered {report['offered_tx_per_s']:8.0f} tx/s   "
            f"accepted {report['accepted_tx_per_s']:8.0f} tx/s   "
            f"committed {report['committed_tx_per_s']:8.0f} tx/s  {saturation}  (goal >= 2500)",
            f"    rejected {report['rejected'] or 'none'}"
            + (
                "; the generator used up its transactions for the window (raise --max-rate)"
                if report["generator_exhausted"]
                else ""
            ),
            f"    blocks {report['blocks_per_s']:.1f}/s, mean {report['mean_block_txs']:.0f} txs; "
            f"mempool mean {report['mempool_mean']:.0f} txs per node; the bench's block "
            f"follower was {report['follower_lag_blocks']} blocks behind node0 at the end "
            f"(it saw {report['seen_in_window_tx_per_s']:.0f} tx/s commit in the window)",
            f"    CPU busy: nodes {busy} (sum {report['node_busy_percent_sum']:.0f}% of "
            f"{report['cores'] * 100}%), load generator {senders}, "
            f"bench {report['bench_cpu_percent']:.0f}%; machine "
            f"{report['machine_busy_percent']:.0f}%",
            *render_stages(report["stages"]),
            f"  bound: {bound['line']}",
            f"  finality at {report['finality_rate_tx_per_s']:.0f} tx/s (half saturation, "
            f"offered {report['finality_offered_tx_per_s']:.0f}): "
            f"p50 {report['finality_p50_ms']:.0f} ms, p95 {report['finality_p95_ms']:.0f} ms, "
            f"p99 {report['finality_p99_ms']:.0f} ms   (goal p50 <= 100, p99 <= 500)"
            f"   [{report['finality_samples']} samples, {report['finality_lost']} not seen]",
            f"  CPU per committed tx, per node       {per_node} us",
            f"  V (Ed25519 verify, PyNaCl)           {report['verify_us']:8.1f} us",
            f"  R = CPU per tx / V                   {report['R']:8.2f}   (goal <= 2.0)",
        ]
    )
