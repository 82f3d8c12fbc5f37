"""`sec bench trust`: one trust epoch over a synthetic marketplace, timed stage by stage.

The graph (seeded, so runs are comparable): ACCOUNTS accounts, 2% of them merchants and 3%
sharers, the first 10 merchants pre-trusted; ATTESTATIONS attestations over a year of
completed orders: 50% buyer -> merchant (merchants drawn with a Zipf-like bias), 35% merchant
-> buyer, 15% buyer -> sharer; 90% are +1; order totals log-uniform from 1 fen to 100 000 yuan.
Almost every pair is distinct, the expensive case for the sparse matrix.

The epoch as the node computes it (docs/protocol.md §17, secnode/runtime/trust_precompute.py):
  ingest     not part of the epoch: each attestation is appended to the kept-current inputs
             (contracts.trust_inputs) as its block commits; shown as a total and per attestation
  load       copy the kept-current columns (the snapshot the worker computes from)
  inputs     the inputs root, from the kept-current frontier
  iterations contracts.eigentrust_numpy: local trust, normalisation and the rounds on int64
  root       the scores root over every account
  total      load + inputs + iterations + root
With --old, the same epoch the way it was computed before, in the same run, for the ratio:
  load       decode the canonical leaf bytes of every attestation (what state holds)
  inputs     RFC 6962 over every leaf
  iterations contracts.eigentrust.compute_scores (Python integers; now the fallback)
  root       the scores root
The run fails unless both give the same roots and scores. `reference` (skip with
--no-reference) times contracts.eigentrust.reference_scores, which must agree too.
Goal (issue 14): total <= 2 s on one core for 100 000 accounts and 1 000 000 attestations.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

import msgpack

from contracts.eigentrust import (
    Attestation,
    TrustParameters,
    TrustScore,
    compute_scores,
    encode_attestation,
    inputs_root,
    reference_scores,
    scores_root,
)
from contracts.eigentrust_numpy import scores_from_columns
from contracts.trust_inputs import TrustInputs
from ledger.merkle import leaf_hash, merkle_root
from secnode.bench import bench_parser, write_report

T = TypeVar("T")
DAY = 86_400
START_S = 1_800_000_000


def synthetic_epoch(
    accounts: int, attestations: int, seed: int, iterations: int
) -> tuple[list[Attestation], TrustParameters]:
    """The marketplace of the module docstring."""
    rng = random.Random(seed)
    addresses = [rng.randbytes(20) for _ in range(accounts)]
    merchants = addresses[: max(1, accounts // 50)]
    sharers = addresses[len(merchants) : len(merchants) + max(1, accounts * 3 // 100)]
    buyers = addresses[len(merchants) + len(sharers) :] or addresses
    records = []
    for sequence in range(attestations):
        buyer = buyers[rng.randrange(len(buyers))]
        kind = rng.random()
        if kind < 0.5:
            pair = (buyer, merchants[int(len(merchants) * rng.random() ** 3)])
        elif kind < 0.85:
            pair = (merchants[int(len(merchants) * rng.random() ** 3)], buyer)
        else:
            pair = (buyer, sharers[rng.randrange(len(sharers))])
        records.append(
            Attestation(
                rng.randbytes(32),
                pair[0],
                pair[1],
                1 if rng.random() < 0.9 else -1,
                int(10 ** rng.uniform(0, 7)),
                START_S + rng.randrange(365 * DAY),
                1 + sequence // 100,
            )
        )
    params = TrustParameters(
        iterations=iterations,
        alpha_ppm=150_000,
        pair_cap=4,
        pair_window_s=30 * DAY,
        pretrusted=tuple(sorted(merchants[:10])),
    )
    return records, params


def _timed(function: Callable[[], T]) -> tuple[T, dict[str, float]]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return result, {
        "wall_s": round(time.perf_counter() - wall, 3),
        "cpu_s": round(time.process_time() - cpu, 3),
    }


def _decode(leaves: list[bytes]) -> list[Attestation]:
    unpack = msgpack.unpackb
    return [Attestation(*unpack(leaf)) for leaf in leaves]


Stages = dict[str, dict[str, float]]


def _with_total(stages: Stages) -> Stages:
    stages["total"] = {
        measure: round(sum(timing[measure] for timing in stages.values()), 3)
        for measure in ("wall_s", "cpu_s")
    }
    return stages


def _kept_current(
    leaves: list[bytes], params: TrustParameters
) -> tuple[list[TrustScore], bytes, bytes, Stages, dict[str, float]]:
    """The epoch from inputs kept current: (scores, inputs root, scores root, stages, ingest)."""
    inputs = TrustInputs()
    _, ingest = _timed(lambda: list(map(inputs.append, leaves)))
    columns, load = _timed(inputs.columns)
    root_in, root_in_timing = _timed(inputs.root)
    if columns is None:
        raise SystemExit("the synthetic attestations do not fit int64")

    def compute() -> list[TrustScore]:
        scores = scores_from_columns(columns, params)
        return compute_scores(_decode(leaves), params) if scores is None else scores

    scores, iterations = _timed(compute)
    root_out, root = _timed(lambda: scores_root(scores))
    stages = {"load": load, "inputs": root_in_timing, "iterations": iterations, "root": root}
    return scores, root_in, root_out, _with_total(stages), ingest


def _reloaded(
    leaves: list[bytes], params: TrustParameters
) -> tuple[list[TrustScore], bytes, bytes, Stages]:
    """The epoch as computed before the inputs were kept current, in Python integers."""
    loaded, load = _timed(lambda: _decode(leaves))
    root_in, inputs = _timed(lambda: merkle_root([leaf_hash(leaf) for leaf in leaves]))
    scores, iterations = _timed(lambda: compute_scores(loaded, params))
    root_out, root = _timed(lambda: scores_root(scores))
    stages = {"load": load, "inputs": inputs, "iterations": iterations, "root": root}
    return scores, root_in, root_out, _with_total(stages)


def run(
    accounts: int, attestations: int, seed: int, iterations: int, reference: bool, old: bool
) -> dict[str, Any]:
    records, params = synthetic_epoch(accounts, attestations, seed, iterations)
    leaves = [encode_attestation(record) for record in records]
    scores, root_in, root_out, stages, ingest = _kept_current(leaves, params)
    report: dict[str, Any] = {
        "accounts": len(scores),
        "attestations": len(records),
        "pairs": len({(r.attester, r.subject) for r in records}),
        "iterations": iterations,
        "seed": seed,
        "inputs_root": root_in.hex(),
        "scores_root": root_out.hex(),
        "ingest": ingest,
        "stages": stages,
        "identical": root_in == inputs_root(records),
    }
    if old:
        old_scores, old_in, old_out, old_stages = _reloaded(leaves, params)
        report["old_stages"] = old_stages
        report["identical"] &= (old_scores, old_in, old_out) == (scores, root_in, root_out)
        report["speedup_cpu"] = round(old_stages["total"]["cpu_s"] / stages["total"]["cpu_s"], 1)
    if reference:
        expected, timing = _timed(lambda: reference_scores(_decode(leaves), params))
        report["reference"] = timing
        report["identical"] &= expected == scores
    return report


def _stage_lines(title: str, stages: Stages) -> list[str]:
    lines = [f"  {title}"]
    for stage, timing in stages.items():
        lines.append(
            f"    {stage:<10} {timing['wall_s']:8.3f} s wall  {timing['cpu_s']:8.3f} s cpu"
        )
    return lines


def render(report: dict[str, Any]) -> str:
    ingest = report["ingest"]
    per_attestation = 1e6 * ingest["cpu_s"] / max(1, report["attestations"])
    lines = [
        f"trust epoch: {report['accounts']} accounts, {report['attestations']} attestations "
        f"({report['pairs']} distinct pairs), {report['iterations']} iterations, "
        f"seed {report['seed']}",
        f"  ingest as blocks commit (not in the epoch): {ingest['wall_s']:.3f} s wall "
        f"{ingest['cpu_s']:.3f} s cpu, {per_attestation:.1f} us cpu per attestation",
        *_stage_lines("epoch, inputs kept current, int64:", report["stages"]),
    ]
    if "old_stages" in report:
        lines += _stage_lines("epoch, old path (reload, Python integers):", report["old_stages"])
        lines.append(f"  old / new total cpu: {report['speedup_cpu']}x")
    if "reference" in report:
        timing = report["reference"]
        lines.append(f"  reference  {timing['wall_s']:8.3f} s wall  {timing['cpu_s']:8.3f} s cpu")
    lines.append(f"  inputs root {report['inputs_root']}")
    lines.append(f"  scores root {report['scores_root']}")
    compared = ["the inputs root"]
    compared += ["the old path"] if "old_stages" in report else []
    compared += ["the reference"] if "reference" in report else []
    verdict = "yes" if report["identical"] else "NO"
    lines.append(f"  bit-identical to {', '.join(compared)}: {verdict}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser("sec bench trust", __doc__)
    parser.add_argument("--accounts", type=int, default=100_000, help="default 100,000")
    parser.add_argument("--attestations", type=int, default=1_000_000, help="default 1,000,000")
    parser.add_argument("--iterations", type=int, default=20, help="default 20 (the genesis's)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--no-reference", action="store_true", help="skip the (slow) reference comparison"
    )
    parser.add_argument(
        "--old", action="store_true", help="also time the old path (reload, Python integers)"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the report as JSON to FILE")
    args = parser.parse_args(argv)
    if args.accounts < 20 or args.attestations < 1 or not 1 <= args.iterations <= 200:
        parser.error("need --accounts >= 20, --attestations >= 1, 1 <= --iterations <= 200")
    report = run(
        args.accounts,
        args.attestations,
        args.seed,
        args.iterations,
        not args.no_reference,
        args.old,
    )
    print(render(report))
    if args.json:
        write_report(args.json, report)
    if not report["identical"]:
        print("sec bench trust: the epoch differs from the old path or reference", file=sys.stderr)
        return 1
    return 0
