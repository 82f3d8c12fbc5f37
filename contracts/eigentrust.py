"""EigenTrust (Kamvar, Schlosser, Garcia-Molina 2003) in integer fixed point: the pure core.

Theory of operation. An epoch's input is the list of attestations recorded up to its input
height (`Attestation`, in sequence order) and its parameters (`TrustParameters`). Its output is
one `TrustScore` per account of the epoch's universe, sorted by address. Every step uses
integers only, floor division, and sums that are exact before any division, so the result does
not depend on the order of summation: every node and every auditor gets bit-identical scores.
docs/protocol.md §17 is the normative text; in short:

1. Universe U: the pre-trusted accounts, every attester and every subject, sorted by address.
2. Beta counts of j: the number of +1 and of -1 attestations about j (unweighted).
3. Value of an attestation: its order total in fen if that is at least `min_order_fen`, else 0
   (an order below the minimum carries no weight). Rule version 2 (`RULE_VERSION`).
4. Window of an attestation: `completed_s // pair_window_s` (completion time of its order).
5. Local trust s_ij = sum over windows w of min(cap, weight(V+_ijw)) - min(cap, weight(V-_ijw)),
   V+ and V- the summed values of i's +1 and -1 attestations about j for orders completed in
   window w, weight(v) = decimal digits of v in whole yuan (0 if v = 0): a cap in value, not in
   count. Loop rule: where s_ij > 0 and s_ji > 0, the edge whose first valued +1 attestation
   comes later in sequence closes the loop and its s is 0.
6. Normalised trust: S_i = sum_j max(s_ij, 0); if S_i > 0, c_ij = max(s_ij, 0) * SCALE // S_i,
   else i is *dangling* and spreads its trust like the pre-trusted distribution.
7. Pre-trusted distribution: p_j = SCALE // |P| for j in P (else 0); with no pre-trusted
   accounts P = U.
8. t_0 = p; then `iterations` times, with D = sum of t_i over dangling i:
   u_j = (sum_i c_ij * t_i + D * p_j) // SCALE
   t_j = ((PPM - alpha_ppm) * u_j + alpha_ppm * p_j) // PPM
9. score_j = t_j after the last iteration (SCALE = 10**9 means all of the trust).

`compute_scores` is the Python-integer implementation (a sparse column matrix and C-level
map/accumulate per iteration, about 0.1 s per iteration for 10**6 pairs); nodes run the same
arithmetic on int64 arrays (`contracts.eigentrust_numpy`) and fall back to it when an int64 bound
does not hold. `reference_scores` is the same definition written as plainly as possible, kept so
tests can check all of them agree bit for bit.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import accumulate, compress, repeat
from operator import add, and_, eq, floordiv, ge, gt, itemgetter, lt, mod, mul, ne, sub
from typing import Any, Final, NamedTuple

import msgpack

from ledger.encoding import encode
from ledger.merkle import leaf_hash, merkle_root

SCALE: Final = 10**9
"""Fixed-point one: a score of SCALE would be all of the network's trust."""
PPM: Final = 10**6
"""Parts per million (the unit of alpha)."""
FEN_PER_YUAN: Final = 100
_WEIGHT_STEPS: Final = tuple(FEN_PER_YUAN * 10**k for k in range(1, 19))
"""Order totals (fen) at which the weight grows by one: 10 yuan, 100 yuan, ..."""
RULE_VERSION: Final = 2
"""Version of the local-trust rule in epoch parameters: 2 = value-weighted, minimum order
value, value cap per pair and window, loop rule (docs/protocol.md §17.4.1)."""
DEFAULT_MIN_ORDER_FEN: Final = 100
"""Default of trust_min_order_fen: an order below one yuan carries no weight."""


class Attestation(NamedTuple):
    """One recorded attestation: the leaf of an epoch's inputs (docs/protocol.md §17.2)."""

    order_id: bytes
    """The completed or resolved order it is about."""
    attester: bytes
    """Address of the party who attested."""
    subject: bytes
    """Address of the party attested about."""
    value: int
    """+1 or -1."""
    order_total: int
    """Goods plus shipping of the order, fen (gives the weight)."""
    completed_s: int
    """Block time at which the order reached COMPLETED or RESOLVED (gives the window)."""
    height: int
    """Height of the block that recorded the attestation."""


@dataclass(frozen=True, slots=True)
class TrustParameters:
    """What an epoch is computed with, fixed when its inputs are fixed."""

    iterations: int
    """Power iterations (trust_iterations)."""
    alpha_ppm: int
    """Weight of the pre-trusted distribution in each iteration, ppm (trust_alpha_ppm)."""
    pair_cap: int
    """Max weight an attester adds about one subject per window, each sign (trust_pair_cap):
    the weight of a summed value, so a cap of 100 * 10**(pair_cap - 1) fen in value."""
    pair_window_s: int
    """Length of the pair-cap window in seconds of block time (trust_pair_window_s)."""
    pretrusted: tuple[bytes, ...]
    """The genesis pre-trusted addresses, sorted."""
    min_order_fen: int = DEFAULT_MIN_ORDER_FEN
    """Smallest order total (fen) whose attestation carries weight (trust_min_order_fen)."""

    def to_wire(self) -> dict[str, Any]:
        """The map committed in epoch records (docs/protocol.md §17.3)."""
        return {
            "version": RULE_VERSION,
            "min_order_fen": self.min_order_fen,
            "scale": SCALE,
            "iterations": self.iterations,
            "alpha_ppm": self.alpha_ppm,
            "pair_cap": self.pair_cap,
            "pair_window_s": self.pair_window_s,
            "pretrusted": list(self.pretrusted),
        }


class TrustScore(NamedTuple):
    """One account's result: the leaf of the scores root."""

    address: bytes
    score: int
    """Trust in units of 1/SCALE of the whole."""
    positive: int
    """Number of +1 attestations about the account."""
    negative: int
    """Number of -1 attestations about the account."""


def order_weight(order_total: int) -> int:
    """1 + floor(log10(max(1, order_total // 100))): the decimal digits of the whole yuan."""
    return 1 + bisect_right(_WEIGHT_STEPS, order_total)


def encode_attestation(attestation: Attestation) -> bytes:
    """The canonical leaf bytes: encode([order_id, attester, subject, value, order_total,
    completed_s, height])."""
    return encode(list(attestation))


def encode_score(score: TrustScore) -> bytes:
    """The canonical leaf bytes of the scores root: encode([address, score, positive,
    negative])."""
    return encode(list(score))


def scores_root(scores: Sequence[TrustScore]) -> bytes:
    """RFC 6962 root over the encoded scores, in the given (address) order.

    A score (bytes and three integers in encode's range) is already canonical, so msgpack's
    packing of it is `encode_score`'s bytes without encode's per-value checks (a sixth of an
    epoch's root at 10**5 accounts)."""
    pack = msgpack.Packer().pack
    return merkle_root([leaf_hash(pack(score)) for score in scores])


def inputs_root(attestations: Iterable[Attestation]) -> bytes:
    """RFC 6962 root over the encoded attestations, in sequence order."""
    return merkle_root([leaf_hash(encode_attestation(a)) for a in attestations])


# --- the fast implementation ------------------------------------------------------------------
#
# Memory traffic dominates at 10**6 attestations, so per-attestation and per-edge work is done by
# C-level iterators (map, accumulate, compress) over columns and arrays; Python-level loops run
# only where values are grouped. The iteration keeps t, sources and weights in contiguous arrays
# and never materialises the products: each column's sum is picked out of one running sum.


def _column(attestations: Sequence[Attestation], field: int) -> list[Any]:
    return list(map(itemgetter(field), attestations))


def _distribution(accounts: list[bytes], pretrusted: tuple[bytes, ...]) -> list[int]:
    """p over `accounts`: SCALE // |P| for each pre-trusted account (every account if none)."""
    if not pretrusted:
        return [SCALE // len(accounts)] * len(accounts)
    share = SCALE // len(pretrusted)
    chosen = set(pretrusted)
    return [share if address in chosen else 0 for address in accounts]


def _local_trust(
    attesters: list[int],
    subjects: list[int],
    attestations: Sequence[Attestation],
    n: int,
    params: TrustParameters,
) -> dict[int, int]:
    """s_ij keyed by j * n + i (column-major), for every pair with a valued attestation."""
    windows = list(map(floordiv, _column(attestations, 5), repeat(params.pair_window_s)))
    low = min(windows)
    span = 2 * (max(windows) - low + 1)
    values = _column(attestations, 3)
    totals = _column(attestations, 4)
    valued = list(map(ge, totals, repeat(params.min_order_fen)))
    pairs = list(map(add, map(mul, subjects, repeat(n)), attesters))
    # group key = (pair * windows + window - low) * 2 + (1 if the attestation is -1 else 0)
    groups = map(
        add,
        map(mul, pairs, repeat(span)),
        map(add, map(mul, map(sub, windows, repeat(low)), repeat(2)), map(lt, values, repeat(0))),
    )
    sums: dict[int, int] = {}
    get = sums.get
    for group, total in compress(zip(groups, totals, strict=True), valued):
        sums[group] = get(group, 0) + total
    cap = params.pair_cap
    # order_weight, C-level: 1 + bisect_right(steps, total) == bisect_right((0, *steps), total)
    weight = partial(bisect_right, (0, *_WEIGHT_STEPS))
    trust: dict[int, int] = {}
    get = trust.get
    for group, total in sums.items():
        pair = group // span
        credit = min(cap, weight(total))
        trust[pair] = get(pair, 0) + (-credit if group & 1 else credit)
    return _break_loops(trust, pairs, map(and_, valued, map(gt, values, repeat(0))), n)


def _break_loops(
    trust: dict[int, int], pairs: list[int], positive: Iterable[bool], n: int
) -> dict[int, int]:
    """The loop rule: of two positive edges i -> j and j -> i, the one whose first valued +1
    attestation comes later (in sequence) closes the loop and gets no credit."""
    first: dict[int, int] = {}
    setdefault = first.setdefault
    for sequence, pair in compress(enumerate(pairs), positive):
        setdefault(pair, sequence)
    closing = []
    for pair, value in trust.items():
        if value > 0:
            subject, attester = divmod(pair, n)
            reverse = attester * n + subject
            if trust.get(reverse, 0) > 0 and first[pair] > first[reverse]:
                closing.append(pair)
    for pair in closing:
        trust[pair] = 0
    return trust


class _Matrix(NamedTuple):
    """C transposed, column by column: column j holds sources[k], weights[k] for k in its run;
    `last[k]` is 1 where a column's run ends. Every column has a run (an empty one gets one
    zero-weight entry), so the running sum picked at `last` gives one value per column."""

    sources: array[int]
    weights: array[int]
    last: bytes
    dangling: array[int]


def _normalised(trust: dict[int, int], n: int) -> _Matrix:
    positive = sorted(pair for pair, value in trust.items() if value > 0)
    values = list(map(trust.__getitem__, positive))
    sources = list(map(mod, positive, repeat(n)))
    row_sums = [0] * n
    for source, value in zip(sources, values, strict=True):
        row_sums[source] += value
    weights = list(
        map(floordiv, map(mul, values, repeat(SCALE)), map(row_sums.__getitem__, sources))
    )
    columns = list(map(floordiv, positive, repeat(n)))
    # Empty columns get a zero-weight placeholder so each column has exactly one run end.
    missing = sorted(set(range(n)).difference(columns))
    if missing:
        columns += missing
        order = sorted(range(len(columns)), key=columns.__getitem__)
        columns = list(map(columns.__getitem__, order))
        sources = list(map((sources + [0] * len(missing)).__getitem__, order))
        weights = list(map((weights + [0] * len(missing)).__getitem__, order))
    last = bytes(map(ne, columns, [*columns[1:], n]))
    dangling = array("q", compress(range(n), map(eq, row_sums, repeat(0))))
    return _Matrix(array("q", sources), array("q", weights), last, dangling)


def _beta_counts(subjects: list[int], values: list[int], n: int) -> tuple[list[int], list[int]]:
    positive = [0] * n
    negative = [0] * n
    for subject, value in zip(subjects, values, strict=True):
        if value > 0:
            positive[subject] += 1
        else:
            negative[subject] += 1
    return positive, negative


def _iterate(matrix: _Matrix, p: list[int], params: TrustParameters) -> list[int]:
    keep = PPM - params.alpha_ppm
    anchor = [params.alpha_ppm * value for value in p]
    sources, weights, last, dangling = matrix
    t = array("q", p)
    for _ in range(params.iterations):
        dangling_mass = sum(map(t.__getitem__, dangling))
        running = list(compress(accumulate(map(mul, weights, map(t.__getitem__, sources))), last))
        inflow = map(sub, running, [0, *running[:-1]])
        t = array(
            "q",
            [
                (keep * ((flow + dangling_mass * p_j) // SCALE) + a_j) // PPM
                for flow, p_j, a_j in zip(inflow, p, anchor, strict=True)
            ],
        )
    return t.tolist()


def compute_scores(
    attestations: Sequence[Attestation], params: TrustParameters
) -> list[TrustScore]:
    """Every account's score and beta counts, sorted by address (see the module docstring)."""
    attester_addresses = _column(attestations, 1)
    subject_addresses = _column(attestations, 2)
    accounts = sorted(set(attester_addresses).union(subject_addresses, params.pretrusted))
    if not accounts:
        return []
    n = len(accounts)
    index = dict(zip(accounts, range(n), strict=True))
    attesters = list(map(index.__getitem__, attester_addresses))
    subjects = list(map(index.__getitem__, subject_addresses))
    del attester_addresses, subject_addresses
    p = _distribution(accounts, params.pretrusted)
    if attestations:
        matrix = _normalised(_local_trust(attesters, subjects, attestations, n, params), n)
    else:
        matrix = _Matrix(
            array("q", [0] * n), array("q", [0] * n), b"\x01" * n, array("q", range(n))
        )
    t = _iterate(matrix, p, params)
    positive, negative = _beta_counts(subjects, _column(attestations, 3), n)
    return list(map(TrustScore, accounts, t, positive, negative))


# --- the reference -----------------------------------------------------------------------------


def reference_scores(
    attestations: Sequence[Attestation], params: TrustParameters
) -> list[TrustScore]:
    """The module docstring's definition, step by step, with dicts and plain loops."""
    accounts = sorted(
        set(params.pretrusted)
        | {a.attester for a in attestations}
        | {a.subject for a in attestations}
    )
    if not accounts:
        return []
    positive = dict.fromkeys(accounts, 0)
    negative = dict.fromkeys(accounts, 0)
    for a in attestations:
        if a.value == 1:
            positive[a.subject] += 1
        else:
            negative[a.subject] += 1
    sums: dict[tuple[bytes, bytes, int], list[int]] = {}
    first: dict[tuple[bytes, bytes], int] = {}
    for sequence, a in enumerate(attestations):
        if a.order_total < params.min_order_fen:
            continue
        if a.value == 1:
            first.setdefault((a.attester, a.subject), sequence)
        window = a.completed_s // params.pair_window_s
        entry = sums.setdefault((a.attester, a.subject, window), [0, 0])
        entry[0 if a.value == 1 else 1] += a.order_total

    def weight(value: int) -> int:
        if value == 0:
            return 0
        digits = 1
        yuan = value // FEN_PER_YUAN
        while yuan >= 10:
            yuan //= 10
            digits += 1
        return digits

    local: dict[bytes, dict[bytes, int]] = {i: {} for i in accounts}
    for (i, j, _), (plus, minus) in sorted(sums.items()):
        row = local[i]
        cap = params.pair_cap
        row[j] = row.get(j, 0) + min(cap, weight(plus)) - min(cap, weight(minus))
    closing = [
        (i, j)
        for i in accounts
        for j, s in local[i].items()
        if s > 0 and local[j].get(i, 0) > 0 and first[(i, j)] > first[(j, i)]
    ]
    for i, j in closing:
        local[i][j] = 0
    pretrusted = set(params.pretrusted) or set(accounts)
    p = {j: (SCALE // len(pretrusted) if j in pretrusted else 0) for j in accounts}
    normalised: dict[bytes, dict[bytes, int] | None] = {}
    for i in accounts:
        total = sum(max(value, 0) for value in local[i].values())
        if total == 0:
            normalised[i] = None
        else:
            normalised[i] = {j: max(s, 0) * SCALE // total for j, s in sorted(local[i].items())}
    t = dict(p)
    for _ in range(params.iterations):
        dangling_mass = sum(t[i] for i in accounts if normalised[i] is None)
        flows = dict.fromkeys(accounts, 0)
        for i in accounts:
            weights = normalised[i]
            if weights is not None:
                for j, c in weights.items():
                    flows[j] += c * t[i]
        new_t = {}
        for j in accounts:
            u = (flows[j] + dangling_mass * p[j]) // SCALE
            new_t[j] = ((PPM - params.alpha_ppm) * u + params.alpha_ppm * p[j]) // PPM
        t = new_t
    return [TrustScore(j, t[j], positive[j], negative[j]) for j in accounts]
