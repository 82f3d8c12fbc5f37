"""The fixed-point EigenTrust core: the fast implementation against the reference, and the
properties the EigenTrust paper's setting promises (docs/protocol.md §17)."""

from __future__ import annotations

import dataclasses
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.eigentrust import (
    PPM,
    SCALE,
    Attestation,
    TrustParameters,
    TrustScore,
    compute_scores,
    order_weight,
    reference_scores,
    scores_root,
)
from ledger.merkle import EMPTY_ROOT

DAY = 86_400
T0 = 1_800_000_000


def address(number: int) -> bytes:
    return number.to_bytes(20, "big")


def attest(
    attester: int,
    subject: int,
    value: int = 1,
    total: int = 10_000,
    completed_s: int = T0,
    sequence: int = 0,
) -> Attestation:
    return Attestation(
        sequence.to_bytes(32, "big"),
        address(attester),
        address(subject),
        value,
        total,
        completed_s,
        1 + sequence,
    )


def parameters(
    pretrusted: tuple[int, ...] = (1,),
    iterations: int = 20,
    alpha_ppm: int = 150_000,
    pair_cap: int = 4,
    pair_window_s: int = 30 * DAY,
) -> TrustParameters:
    return TrustParameters(
        iterations, alpha_ppm, pair_cap, pair_window_s, tuple(sorted(map(address, pretrusted)))
    )


def by_address(scores: list[TrustScore]) -> dict[bytes, TrustScore]:
    return {score.address: score for score in scores}


# --- arithmetic --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "weight"),
    [
        (1, 1),
        (999, 1),
        (1_000, 2),
        (9_999, 2),
        (10_000, 3),
        (99_999, 3),
        (100_000, 4),
        (10**18, 17),
        (2**63 - 1, 17),
    ],
)
def test_order_weight_counts_the_digits_of_whole_yuan(total: int, weight: int) -> None:
    assert order_weight(total) == weight


def test_no_attestations_leaves_the_pretrusted_distribution() -> None:
    scores = compute_scores([], parameters(pretrusted=(1, 2, 3)))
    assert [s.address for s in scores] == [address(k) for k in (1, 2, 3)]
    # Each iteration floors: the scores stay equal and lose at most a unit or two per round.
    assert len({s.score for s in scores}) == 1
    assert SCALE // 3 - 2 * 20 <= scores[0].score <= SCALE // 3
    assert scores == reference_scores([], parameters(pretrusted=(1, 2, 3)))


def test_empty_universe_has_the_empty_root() -> None:
    assert compute_scores([], parameters(pretrusted=())) == []
    assert scores_root([]) == EMPTY_ROOT


def test_without_pretrusted_accounts_p_is_uniform_over_the_universe() -> None:
    attestations = [attest(1, 2), attest(2, 3), attest(3, 1)]
    scores = compute_scores(attestations, parameters(pretrusted=()))
    assert scores == reference_scores(attestations, parameters(pretrusted=()))
    assert [s.score for s in scores] == [SCALE // 3] * 3  # a symmetric cycle is a fixed point


def test_beta_counts_count_attestations_not_weights() -> None:
    attestations = [
        attest(1, 2, total=10**9),
        attest(3, 2, value=-1, sequence=1),
        attest(4, 2, value=-1, sequence=2),
    ]
    score = by_address(compute_scores(attestations, parameters()))[address(2)]
    assert (score.positive, score.negative) == (1, 2)


def test_scores_never_sum_above_scale() -> None:
    rng = random.Random(7)
    attestations = [
        attest(rng.randrange(50), rng.randrange(50, 80), rng.choice((1, -1)), sequence=k)
        for k in range(500)
    ]
    assert sum(s.score for s in compute_scores(attestations, parameters())) <= SCALE


# --- fast against the reference -----------------------------------------------------------------


@st.composite
def graphs(draw: st.DrawFn) -> tuple[list[Attestation], TrustParameters]:
    accounts = draw(st.integers(1, 12))
    count = draw(st.integers(0, 60))
    attestations = []
    for sequence in range(count):
        attester = draw(st.integers(0, accounts - 1))
        subject = draw(st.integers(0, accounts - 1))
        if subject == attester:
            continue
        attestations.append(
            attest(
                attester,
                subject,
                draw(st.sampled_from((1, 1, 1, -1))),
                draw(st.integers(1, 10**12)),
                T0 + draw(st.integers(0, 200 * DAY)),
                sequence,
            )
        )
    pretrusted = draw(st.sets(st.integers(0, accounts + 2), max_size=4))
    params = parameters(
        pretrusted=tuple(pretrusted),
        iterations=draw(st.integers(1, 8)),
        alpha_ppm=draw(st.sampled_from((0, 1, 150_000, 500_000, PPM))),
        pair_cap=draw(st.integers(1, 20)),
        pair_window_s=draw(st.sampled_from((1, DAY, 30 * DAY, 10**9))),
    )
    minimum = draw(st.sampled_from((1, 100, 10_000, 10**9)))
    return attestations, dataclasses.replace(params, min_order_fen=minimum)


@settings(max_examples=300, deadline=None)
@given(graphs())
def test_fast_matches_the_reference_on_random_graphs(
    graph: tuple[list[Attestation], TrustParameters],
) -> None:
    attestations, params = graph
    assert compute_scores(attestations, params) == reference_scores(attestations, params)


@pytest.mark.parametrize("seed", range(3))
def test_fast_matches_the_reference_on_larger_random_graphs(seed: int) -> None:
    rng = random.Random(seed)
    accounts = 400
    attestations = []
    for sequence in range(4_000):
        attester = rng.randrange(accounts)
        subject = int(accounts * rng.random() ** 2)
        if subject == attester:
            continue
        attestations.append(
            attest(
                attester,
                subject,
                1 if rng.random() < 0.85 else -1,
                int(10 ** rng.uniform(0, 8)),
                T0 + rng.randrange(365 * DAY),
                sequence,
            )
        )
    params = parameters(pretrusted=(0, 1, 2, 3, 4))
    fast = compute_scores(attestations, params)
    assert fast == reference_scores(attestations, params)
    assert scores_root(fast) == scores_root(reference_scores(attestations, params))


def test_scores_do_not_depend_on_the_order_of_the_inputs() -> None:
    rng = random.Random(3)
    attestations = [
        attest(rng.randrange(30), rng.randrange(30, 60), rng.choice((1, 1, -1)), sequence=k)
        for k in range(300)
    ]
    shuffled = list(attestations)
    rng.shuffle(shuffled)
    assert compute_scores(shuffled, parameters()) == compute_scores(attestations, parameters())


# --- the EigenTrust setting --------------------------------------------------------------------

HONEST = range(1, 21)
COLLECTIVE = range(100, 110)


def honest_history(rng: random.Random) -> list[Attestation]:
    """Buyers 1..20 (1 and 2 pre-trusted) attest each other after purchases."""
    attestations = []
    for sequence in range(200):
        attester, subject = rng.sample(list(HONEST), 2)
        attestations.append(attest(attester, subject, sequence=sequence))
    return attestations


def collective_history(start: int) -> list[Attestation]:
    """A malicious collective washing orders among itself: everyone +1 everyone, many times,
    over many windows (threat model B of the EigenTrust paper)."""
    attestations = []
    sequence = start
    for window in range(12):
        for attester in COLLECTIVE:
            for subject in COLLECTIVE:
                if attester != subject:
                    completed = T0 + window * 30 * DAY
                    attestations.append(
                        attest(
                            attester, subject, total=10**9, completed_s=completed, sequence=sequence
                        )
                    )
                    sequence += 1
    return attestations


def test_a_collective_without_purchases_from_honest_peers_gains_nothing() -> None:
    params = parameters(pretrusted=(1, 2))
    honest = honest_history(random.Random(11))
    alone = by_address(compute_scores(honest, params))
    together = by_address(compute_scores(honest + collective_history(len(honest)), params))
    for member in COLLECTIVE:
        assert together[address(member)].score == 0
    for peer in HONEST:
        assert together[address(peer)] == alone[address(peer)]


def test_a_collective_that_attests_honest_peers_does_not_change_their_trust_in_it() -> None:
    params = parameters(pretrusted=(1, 2))
    honest = honest_history(random.Random(12))
    flattery = [attest(member, 1, sequence=1000 + member) for member in COLLECTIVE]
    scores = by_address(compute_scores(honest + collective_history(2000) + flattery, params))
    assert all(scores[address(member)].score == 0 for member in COLLECTIVE)


def test_pretrusted_peers_anchor_the_scores() -> None:
    params = parameters(pretrusted=(1, 2), alpha_ppm=150_000)
    scores = by_address(compute_scores(honest_history(random.Random(13)), params))
    floor = 150_000 * (SCALE // 2) // PPM
    assert scores[address(1)].score >= floor
    assert scores[address(2)].score >= floor
    # Nobody attests the pre-trusted peers down to nothing: every honest peer is reachable.
    assert all(scores[address(peer)].score > 0 for peer in HONEST)


def test_distrusted_peers_spread_like_dangling_ones() -> None:
    """A peer whose attestations are all negative has no positive trust to give: its mass goes
    to the pre-trusted peers, exactly like a peer that attested nobody."""
    params = parameters(pretrusted=(1,))
    base = [attest(1, 2), attest(2, 3, sequence=1)]
    negative_only = compute_scores([*base, attest(3, 2, value=-1, sequence=2)], params)
    silent = compute_scores(base, params)
    assert [s.score for s in negative_only] == [s.score for s in silent]


def test_the_pair_cap_makes_wash_trading_within_a_window_pointless() -> None:
    params = parameters(pretrusted=(1,), pair_cap=4)
    honest = [attest(1, 2), attest(1, 3, sequence=1)]
    # Four small orders reach the cap of 4; a hundred more in the same window add nothing.
    few = [attest(3, 4, total=500, sequence=10 + k) for k in range(4)]
    many = [attest(3, 4, total=500, sequence=10 + k) for k in range(104)]
    few_scores = compute_scores(honest + few, params)
    many_scores = compute_scores(honest + many, params)
    assert [s.score for s in few_scores] == [s.score for s in many_scores]
    # The same number of orders spread over several windows does count.
    spread = [
        attest(3, 4, total=500, completed_s=T0 + k * 30 * DAY, sequence=10 + k) for k in range(8)
    ]
    others = [attest(3, 5, total=500, sequence=200 + k) for k in range(4)]
    capped = by_address(compute_scores(honest + few + others, params))
    spread_scores = by_address(compute_scores(honest + spread + others, params))
    assert spread_scores[address(4)].score > capped[address(4)].score


def test_bench_runs_small_and_matches_the_reference(capsys: pytest.CaptureFixture[str]) -> None:
    from secnode.bench.trust import main

    argv = ["--accounts", "300", "--attestations", "3000", "--iterations", "5", "--old"]
    assert main(argv) == 0
    assert "to the inputs root, the old path, the reference: yes" in capsys.readouterr().out


# --- wash trading (docs/protocol.md §17.4.1) -----------------------------------------------------

MERCHANT = 50
SYBILS = range(60, 65)


def real_sale(total: int) -> list[Attestation]:
    """The merchant's one real sale to pre-trusted buyer 1; both rate each other."""
    return [
        attest(1, MERCHANT, total=total, sequence=5000),
        attest(MERCHANT, 1, total=total, sequence=5001),
    ]


def wash_ring(total: int, merchant_first: bool) -> list[Attestation]:
    """Twenty orders from five sybils, each rated both ways, in either order."""
    ring = []
    for k in range(20):
        sybil = SYBILS[k % len(SYBILS)]
        by_sybil = attest(sybil, MERCHANT, total=total, sequence=6000 + 2 * k)
        by_merchant = attest(MERCHANT, sybil, total=total, sequence=6001 + 2 * k)
        ring += [by_merchant, by_sybil] if merchant_first else [by_sybil, by_merchant]
    return ring


@pytest.mark.parametrize(
    ("total", "merchant_first"),
    [(1, False), (1, True), (10_000, False), (10_000, True), (10**8, False)],
)
def test_a_wash_trading_ring_gains_at_most_what_the_real_sale_earns(
    total: int, merchant_first: bool
) -> None:
    """The reported attack (1-fen orders), and the same ring paying real value both ways."""
    params = parameters(pretrusted=(1, 2))
    honest = honest_history(random.Random(11)) + real_sale(total)
    alone = by_address(compute_scores(honest, params))[address(MERCHANT)].score
    ringed = honest + wash_ring(total, merchant_first)
    scores = compute_scores(ringed, params)
    assert scores == reference_scores(ringed, params)
    with_ring = by_address(scores)[address(MERCHANT)].score
    assert with_ring - alone <= alone, (alone, with_ring)
    assert with_ring <= alone, "the ring must not raise the merchant at all"


def test_an_order_below_the_minimum_value_carries_no_weight() -> None:
    params = parameters(pretrusted=(1,))
    base = [attest(1, 2), attest(1, 3, sequence=1)]
    dust = [attest(2, 4, total=99, sequence=10 + k) for k in range(50)]
    without = by_address(compute_scores(base, params))
    with_dust = by_address(compute_scores(base + dust, params))
    assert with_dust[address(4)].score == 0
    assert with_dust[address(4)].positive == 50  # beta counts still count every attestation
    # Node 2's trust, with no valued edge out, spreads like the pre-trusted distribution.
    assert with_dust[address(3)].score == without[address(3)].score


def test_the_pair_cap_is_in_value_not_in_count() -> None:
    params = parameters(pretrusted=(1,), pair_cap=4)
    base = [attest(1, 2), attest(2, 5, total=10_000, sequence=1)]
    many = [attest(2, 4, total=200, sequence=10 + k) for k in range(20)]  # 4 000 fen in all
    one = [attest(2, 4, total=4_000, sequence=10)]
    split = [s.score for s in compute_scores(base + many, params)]
    assert split == [s.score for s in compute_scores(base + one, params)]


def test_the_edge_that_closes_a_loop_gets_no_credit() -> None:
    params = parameters(pretrusted=(1,))
    # 1 -> 2 first, then 2 -> 1 closes the loop; 2 then trusts nobody and is dangling.
    loop = [attest(1, 2, sequence=0), attest(2, 1, sequence=1), attest(2, 3, sequence=2)]
    only_three = [attest(1, 2, sequence=0), attest(2, 3, sequence=2)]
    assert compute_scores(loop, params)[1:] == compute_scores(only_three, params)[1:]
    # Reversed order: now 1 -> 2 closes the loop and 2 gets nothing from the pre-trusted 1.
    reverse = [attest(2, 1, sequence=0), attest(1, 2, sequence=1)]
    assert by_address(compute_scores(reverse, params))[address(2)].score == 0
