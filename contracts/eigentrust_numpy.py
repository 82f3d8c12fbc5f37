"""EigenTrust (`contracts.eigentrust`) on numpy int64 arrays: the same integers, bit for bit.

Theory of operation. The epoch's inputs arrive as `Columns` (one int64 column per attestation
field, accounts numbered in order of first appearance; `contracts.trust_inputs` keeps them
current as attestations commit). `scores_from_columns` runs docs/protocol.md §17 steps 1-9 with
sorts, segment sums (`np.add.reduceat`) and floor division on int64: every operation is exact
integer arithmetic, so the result equals `contracts.eigentrust.compute_scores` (the Python-integer
path, and through it `reference_scores`) whenever no intermediate leaves int64.

Bounds (checked before the arrays are used, never assumed; a failed check returns None and the
caller takes the Python-integer path):

* group sums of order totals: max(total) * attestations <= 2**63 - 1;
* group keys (pair * windows + window) * 2 + sign: 2 * n**2 * windows <= 2**63 - 1;
* normalisation: max(s_ij) * SCALE and the row sums S_i fit;
* the iteration (the issue's bound): with R the largest row sum of C (<= SCALE, floor division),
  T the sum of t over accounts that are not dangling and D over those that are, every column
  satisfies sum_i c_ij * t_i + D * p_j <= R * T + D * sum(p), and that is checked to be at most
  `FLOW_BOUND` = 2 * 10**18 before each round. The sums of t are exact because every t_i is
  checked to be >= 0 and at most (2**63 - 1) // n first.

Under today's parameters the sums of t never exceed SCALE, so the flow bound holds with a factor
of two to spare; the checks make the fallback a proof, not a hope. The cost at 100 000 accounts
and 10**6 attestations is a few sorts of 10**6 keys plus 20 rounds of one gather, one multiply
and one segment sum: well under a second on one core.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt

from contracts.eigentrust import (
    _WEIGHT_STEPS,
    PPM,
    SCALE,
    Attestation,
    TrustParameters,
    TrustScore,
    compute_scores,
)

Int64s = npt.NDArray[np.int64]
INT64_MAX: Final = 2**63 - 1
FLOW_BOUND: Final = 2 * 10**18
"""Largest sum_i c_ij * t_i + D * p_j the int64 iteration may meet (the issue's bound)."""
_STEPS: Final = np.array([0, *(s for s in _WEIGHT_STEPS if s <= INT64_MAX)], dtype=np.int64)
"""Weight thresholds that an int64 sum can reach: 1 + bisect_right over the rest is constant."""
_MAX_WEIGHT: Final = len(_WEIGHT_STEPS) + 1
"""No order weight exceeds this, so min(pair_cap, weight) == min(min(pair_cap, this), weight)."""


class Columns(NamedTuple):
    """An epoch's inputs, attestation k (in sequence order) at row k of every column."""

    addresses: Sequence[bytes]
    """Account number -> address; numbers are given in order of first appearance."""
    attester: Int64s
    """Account number of the attester."""
    subject: Int64s
    """Account number of the subject."""
    value: Int64s
    """+1 or -1."""
    total: Int64s
    """Order total in fen."""
    completed_s: Int64s
    """Completion time of the order (gives the window)."""


def columns_of(attestations: Sequence[Attestation]) -> Columns | None:
    """`attestations` as columns; None if a field does not fit int64."""
    index: dict[bytes, int] = {}
    number = index.setdefault
    attester = [number(a.attester, len(index)) for a in attestations]
    subject = [number(a.subject, len(index)) for a in attestations]
    m = len(attestations)
    try:
        fields = [np.fromiter(map(itemgetter(k), attestations), np.int64, m) for k in (3, 4, 5)]
    except OverflowError:
        return None
    return Columns(
        list(index),
        np.array(attester, dtype=np.int64),
        np.array(subject, dtype=np.int64),
        *fields,
    )


def epoch_scores(attestations: Sequence[Attestation], params: TrustParameters) -> list[TrustScore]:
    """`compute_scores` of the epoch, on int64 arrays when the bounds allow it."""
    columns = columns_of(attestations)
    scores = None if columns is None else scores_from_columns(columns, params)
    return compute_scores(attestations, params) if scores is None else scores


def _segments(keys: Int64s) -> Int64s:
    """Start of each run of equal values in the sorted `keys`."""
    if not len(keys):
        return np.zeros(0, np.int64)
    starts: Int64s = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    return starts


class _Edges(NamedTuple):
    """C transposed: positive local trust, by target then source (the key j * n + i order)."""

    source: Int64s
    target: Int64s
    trust: Int64s


def _local_trust(columns: Columns, n: int, params: TrustParameters) -> _Edges | None:
    """s_ij > 0 after the pair cap, windows and loop rule (eigentrust steps 3-5)."""
    empty = np.zeros(0, np.int64)
    total = columns.total
    valued = np.flatnonzero(total >= params.min_order_fen)
    if not len(valued):
        return _Edges(empty, empty, empty)
    if int(total[valued].max()) * len(valued) > INT64_MAX or params.pair_window_s > INT64_MAX:
        return None
    window = columns.completed_s[valued] // params.pair_window_s
    window -= window.min()
    span = int(window.max()) + 1
    if span > len(valued):  # sparse windows: number them densely (order kept)
        windows = np.sort(window)
        windows = windows[_segments(windows)]
        window = np.searchsorted(windows, window)
        span = len(windows)
    if 2 * n * n * span > INT64_MAX:
        return None
    pair = columns.subject[valued] * n + columns.attester[valued]
    negative = columns.value[valued] < 0
    key = (pair * span + window) * 2 + negative
    order = np.argsort(key)
    key = key[order]
    starts = _segments(key)
    groups = key[starts]
    sums = np.add.reduceat(total[valued][order], starts)
    cap = min(params.pair_cap, _MAX_WEIGHT)
    credit = np.minimum(np.searchsorted(_STEPS, sums, side="right"), cap)
    signed = np.where(groups & 1, -credit, credit).astype(np.int64)
    # The first valued +1 attestation of each group (a -1 group counts as never).
    opened = np.minimum.reduceat(valued[order], starts)
    opened[(groups & 1).astype(bool)] = INT64_MAX
    group_pair = groups // (2 * span)
    starts = _segments(group_pair)
    pairs = group_pair[starts]
    trust = np.add.reduceat(signed, starts)
    first = np.minimum.reduceat(opened, starts)
    # The loop rule: of i -> j and j -> i both positive, the one opened later (its first valued
    # +1 attestation has the larger sequence number) gets no credit.
    positive = np.flatnonzero(trust > 0)
    pairs_positive = pairs[positive]
    reverse = (pairs_positive % n) * n + pairs_positive // n
    by_reverse = np.argsort(reverse)  # sorted queries keep the lookup cache-friendly
    where = np.empty_like(by_reverse)
    where[by_reverse] = np.searchsorted(pairs_positive, reverse[by_reverse])
    where = np.minimum(where, len(positive) - 1)
    mutual = np.flatnonzero(pairs_positive[where] == reverse)
    closing = mutual[first[positive[mutual]] > first[positive[where[mutual]]]]
    trust[positive[closing]] = 0
    kept = trust > 0
    pairs = pairs[kept]
    return _Edges(pairs % n, pairs // n, trust[kept])


def _iterate(edges: _Edges, n: int, p: Int64s, params: TrustParameters) -> Int64s | None:
    """Steps 6-9: normalise, then the rounds; None if an int64 bound does not hold."""
    source, target, trust = edges
    if len(trust) and int(trust.max()) * max(SCALE, len(trust)) > INT64_MAX:
        return None
    row_sums = np.zeros(n, np.int64)
    np.add.at(row_sums, source, trust)
    weights = trust * SCALE // row_sums[source]
    row_weights = np.zeros(n, np.int64)
    np.add.at(row_weights, source, weights)
    largest_row = int(row_weights.max())
    dangling = row_sums == 0
    starts = _segments(target)
    columns = target[starts]
    p_total = int(p.sum())
    anchor = params.alpha_ppm * p
    keep = PPM - params.alpha_ppm
    t = p.copy()
    for _ in range(params.iterations):
        if int(t.min()) < 0 or int(t.max()) > INT64_MAX // n:
            return None
        dangling_mass = int(t[dangling].sum())
        if largest_row * (int(t.sum()) - dangling_mass) + dangling_mass * p_total > FLOW_BOUND:
            return None
        flows = np.zeros(n, np.int64)
        if len(weights):
            flows[columns] = np.add.reduceat(weights * t[source], starts)
        t = (keep * ((flows + dangling_mass * p) // SCALE) + anchor) // PPM
    return t


def scores_from_columns(columns: Columns, params: TrustParameters) -> list[TrustScore] | None:
    """Every account's score and beta counts, sorted by address, exactly as `compute_scores`
    gives them for the same attestations; None if an int64 bound does not hold."""
    seen = 0
    if len(columns.attester):
        seen = 1 + max(int(columns.attester.max()), int(columns.subject.max()))
    known = columns.addresses[:seen]
    addresses = [*known, *sorted(set(params.pretrusted).difference(known))]
    n = len(addresses)
    if not n:
        return []
    p = np.zeros(n, np.int64)
    if params.pretrusted:
        index = dict(zip(addresses, range(n), strict=True))
        p[[index[address] for address in params.pretrusted]] = SCALE // len(params.pretrusted)
    else:
        p[:] = SCALE // n
    edges = _local_trust(columns, n, params)
    t = None if edges is None else _iterate(edges, n, p, params)
    if t is None:
        return None
    positive = columns.value > 0
    plus = np.bincount(columns.subject[positive], minlength=n)
    minus = np.bincount(columns.subject[~positive], minlength=n)
    order = np.array(sorted(range(n), key=addresses.__getitem__), dtype=np.int64)
    return list(
        map(
            TrustScore,
            map(addresses.__getitem__, order.tolist()),
            t[order].tolist(),
            plus[order].tolist(),
            minus[order].tolist(),
        )
    )
