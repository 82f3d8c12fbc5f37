"""`sec bench trust`: one trust epoch over a synthetic marketplace, timed stage by stage.

The graph (seeded, so runs are comparable): ACCOUNTS accounts, 2% of them merchants and 3%
sharers, the first 10 merchants pre-trusted; ATTESTATIONS attestations over a year of
completed orders: 50% buyer -> merchant (merchants drawn with a Zipf-like bias), 35% merchant
-> buyer, 15% buyer -> sharer; 90% are +1; order totals log-uniform from 1 fen to 100 000 yuan.
Almost every pair is distinct, the expensive case for the sparse matrix.

Stages, as the node and an auditor run them (docs/protocol.md §17):
  load      decode the canonical leaf bytes of every attestation (what state and RPC pages hold)
  inputs    the inputs root: RFC 6962 over the 10**6 leaves (the node keeps it incrementally;
            an auditor computes it once)
  scores    contracts.eigentrust.compute_scores: local trust, normalisation, iterations
  root      the scores root over every account
  reference contracts.eigentrust.reference_scores on the same input (skip with --no-reference);
            the run fails unless it is bit-identical to `scores`
  numpy     only if numpy is importable (it is not a dependency): the same arithmetic in int64
            arrays, to measure what an accelerator would gain; must be bit-identical too
Goal: scores <= 5 s on one core for 100 000 accounts and 1 000 000 attestations.
"""

from __future__ import annotations

import importlib
import random
import sys
import time
from collections.abc import Callable
from operator import itemgetter
from typing import Any, TypeVar

import msgpack

from contracts.eigentrust import (
    FEN_PER_YUAN,
    PPM,
    SCALE,
    Attestation,
    TrustParameters,
    TrustScore,
    compute_scores,
    encode_attestation,
    inputs_root,
    reference_scores,
    scores_root,
)
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


def _numpy_scores(
    attestations: list[Attestation], params: TrustParameters, np: Any
) -> list[TrustScore]:
    """compute_scores in numpy int64 (exact here: docs/protocol.md §17.4 bounds the sums by
    2 * 10**18; the bench graph keeps s_ij * SCALE and the group keys far below 2**63)."""
    m = len(attestations)
    attesters = list(map(itemgetter(1), attestations))
    subjects = list(map(itemgetter(2), attestations))
    accounts = sorted(set(attesters).union(subjects, params.pretrusted))
    n = len(accounts)
    index = dict(zip(accounts, range(n), strict=True))

    def column(values: Any) -> Any:
        return np.fromiter(values, np.int64, m)

    source = column(map(index.__getitem__, attesters))
    target = column(map(index.__getitem__, subjects))
    value = column(map(itemgetter(3), attestations))
    steps = np.array([FEN_PER_YUAN * 10**k for k in range(1, 17)], dtype=np.int64)
    total = column(map(itemgetter(4), attestations))
    valued = total >= params.min_order_fen
    window = column(map(itemgetter(5), attestations)) // params.pair_window_s
    window -= window.min()
    span = 2 * (int(window.max()) + 1)
    pair_key = target * n + source
    groups, group_of = np.unique(
        (pair_key * span + 2 * window + (value < 0))[valued], return_inverse=True
    )
    sums = np.zeros(len(groups), np.int64)
    np.add.at(sums, group_of, total[valued])
    capped = np.minimum(1 + np.searchsorted(steps, sums, side="right"), params.pair_cap)
    pairs, pair_of = np.unique(groups // span, return_inverse=True)
    trust = np.zeros(len(pairs), np.int64)
    np.add.at(trust, pair_of, np.where(groups & 1, -capped, capped))
    # The loop rule: of two positive edges i -> j and j -> i, the later-opened one gets 0.
    opened = valued & (value > 0)
    first_keys, first_index = np.unique(pair_key[opened], return_index=True)
    first_sequence = np.nonzero(opened)[0][first_index]
    positive = trust > 0
    reverse = (pairs % n) * n + pairs // n
    where = np.minimum(np.searchsorted(pairs, reverse), len(pairs) - 1)
    mutual = positive & (pairs[where] == reverse) & positive[where]
    mine = first_sequence[np.searchsorted(first_keys, pairs[mutual])]
    theirs = first_sequence[np.searchsorted(first_keys, reverse[mutual])]
    closing = np.nonzero(mutual)[0][mine > theirs]
    trust[closing] = 0
    pairs, trust = pairs[trust > 0], trust[trust > 0]
    rows = pairs % n
    row_sums = np.bincount(rows, weights=trust, minlength=n).astype(np.int64)
    weights = trust * SCALE // row_sums[rows]
    rows, pairs, weights = rows[weights > 0], pairs[weights > 0], weights[weights > 0]
    columns, starts = np.unique(pairs // n, return_index=True)
    dangling = np.nonzero(row_sums == 0)[0]
    chosen = set(params.pretrusted) or set(accounts)
    share = SCALE // len(chosen)
    p = np.array([share if a in chosen else 0 for a in accounts], dtype=np.int64)
    t = p.copy()
    for _ in range(params.iterations):
        flows = np.zeros(n, np.int64)
        if len(weights):
            flows[columns] = np.add.reduceat(weights * t[rows], starts)
        u = (flows + int(t[dangling].sum()) * p) // SCALE
        t = ((PPM - params.alpha_ppm) * u + params.alpha_ppm * p) // PPM
    positive = np.bincount(target[value > 0], minlength=n).tolist()
    negative = np.bincount(target[value < 0], minlength=n).tolist()
    return list(map(TrustScore, accounts, t.tolist(), positive, negative))


def _decode(leaves: list[bytes]) -> list[Attestation]:
    unpack = msgpack.unpackb
    return [Attestation(*unpack(leaf)) for leaf in leaves]


def run(
    accounts: int, attestations: int, seed: int, iterations: int, reference: bool
) -> dict[str, Any]:
    records, params = synthetic_epoch(accounts, attestations, seed, iterations)
    leaves = [encode_attestation(record) for record in records]
    loaded, load = _timed(lambda: _decode(leaves))
    if loaded != records:
        raise SystemExit("decoding the leaves did not give the attestations back")
    root_in, inputs = _timed(lambda: merkle_root([leaf_hash(leaf) for leaf in leaves]))
    if root_in != inputs_root(records):
        raise SystemExit("the inputs root of the leaves is not that of the attestations")
    scores, compute = _timed(lambda: compute_scores(loaded, params))
    root_out, root = _timed(lambda: scores_root(scores))
    report: dict[str, Any] = {
        "accounts": len(scores),
        "attestations": len(records),
        "pairs": len({(r.attester, r.subject) for r in records}),
        "iterations": iterations,
        "seed": seed,
        "inputs_root": root_in.hex(),
        "scores_root": root_out.hex(),
        "stages": {"load": load, "inputs": inputs, "scores": compute, "root": root},
    }
    if reference:
        expected, timing = _timed(lambda: reference_scores(loaded, params))
        report["stages"]["reference"] = timing
        report["bit_identical"] = expected == scores
    try:
        numpy = importlib.import_module("numpy")
    except ImportError:
        return report
    accelerated, timing = _timed(lambda: _numpy_scores(loaded, params, numpy))
    report["stages"]["numpy"] = timing
    report["numpy_identical"] = accelerated == scores
    return report


def render(report: dict[str, Any]) -> str:
    lines = [
        f"trust epoch: {report['accounts']} accounts, {report['attestations']} attestations "
        f"({report['pairs']} distinct pairs), {report['iterations']} iterations, "
        f"seed {report['seed']}",
    ]
    for stage, timing in report["stages"].items():
        lines.append(f"  {stage:<10} {timing['wall_s']:8.3f} s wall  {timing['cpu_s']:8.3f} s cpu")
    lines.append(f"  scores root {report['scores_root']}")
    if "bit_identical" in report:
        verdict = "yes" if report["bit_identical"] else "NO"
        lines.append(f"  bit-identical to the reference: {verdict}")
    if "numpy_identical" in report:
        verdict = "yes" if report["numpy_identical"] else "NO"
        lines.append(f"  numpy (not a dependency) bit-identical: {verdict}")
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
    parser.add_argument("--json", metavar="FILE", help="also write the report as JSON to FILE")
    args = parser.parse_args(argv)
    if args.accounts < 20 or args.attestations < 1 or not 1 <= args.iterations <= 200:
        parser.error("need --accounts >= 20, --attestations >= 1, 1 <= --iterations <= 200")
    report = run(
        args.accounts, args.attestations, args.seed, args.iterations, not args.no_reference
    )
    print(render(report))
    if args.json:
        write_report(args.json, report)
    if report.get("bit_identical") is False or report.get("numpy_identical") is False:
        print("sec bench trust: the fast scores differ from the reference", file=sys.stderr)
        return 1
    return 0
