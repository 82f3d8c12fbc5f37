"""EigenTrust on int64 arrays (contracts.eigentrust_numpy) and the incremental inputs
(contracts.trust_inputs): bit for bit the Python-integer path, and the int64 bounds send every
input that could overflow to that path."""

from __future__ import annotations

import dataclasses
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import eigentrust_numpy
from contracts.eigentrust import (
    Attestation,
    TrustParameters,
    TrustScore,
    compute_scores,
    encode_attestation,
    encode_score,
    inputs_root,
    reference_scores,
    scores_root,
)
from contracts.eigentrust_numpy import columns_of, epoch_scores, scores_from_columns
from contracts.trust_inputs import TrustInputs
from ledger.merkle import EMPTY_ROOT, leaf_hash, merkle_root
from tests.test_eigentrust import DAY, T0, attest, graphs, parameters

HUGE_TOTALS = (2**62, 2**63 - 1, 2**63, 2**64 - 1)
"""Order totals whose sums (or the totals themselves) leave int64."""


@st.composite
def hostile_graphs(draw: st.DrawFn) -> tuple[list[Attestation], TrustParameters]:
    """`graphs` plus what the int64 path must refuse or handle: totals near and above 2**63,
    completion times spread so windows are sparse, few accounts so loops are common."""
    attestations, params = draw(graphs())
    changed = []
    for a in attestations:
        if draw(st.integers(0, 9)) == 0:
            a = a._replace(order_total=draw(st.sampled_from(HUGE_TOTALS)))
        if draw(st.integers(0, 9)) == 0:
            a = a._replace(completed_s=draw(st.integers(0, 2**40)))
        changed.append(a)
    return changed, params


def check_identical(attestations: list[Attestation], params: TrustParameters) -> None:
    expected = reference_scores(attestations, params)
    assert compute_scores(attestations, params) == expected
    assert epoch_scores(attestations, params) == expected
    columns = columns_of(attestations)
    fast = None if columns is None else scores_from_columns(columns, params)
    assert fast is None or fast == expected


@settings(max_examples=300, deadline=None)
@given(graphs())
def test_int64_matches_the_reference_on_random_graphs(
    graph: tuple[list[Attestation], TrustParameters],
) -> None:
    attestations, params = graph
    columns = columns_of(attestations)
    assert columns is not None  # totals up to 10**12 always fit: this is the int64 path
    assert scores_from_columns(columns, params) == reference_scores(attestations, params)


@settings(max_examples=300, deadline=None)
@given(hostile_graphs())
def test_int64_or_its_fallback_matches_the_reference_on_hostile_graphs(
    graph: tuple[list[Attestation], TrustParameters],
) -> None:
    check_identical(*graph)


@pytest.mark.parametrize("seed", range(3))
def test_int64_matches_the_python_path_on_larger_random_graphs(seed: int) -> None:
    rng = random.Random(seed)
    attestations = [
        attest(
            rng.randrange(300),
            300 + int(300 * rng.random() ** 2),
            1 if rng.random() < 0.85 else -1,
            int(10 ** rng.uniform(0, 8)),
            T0 + rng.randrange(365 * DAY),
            sequence,
        )
        for sequence in range(5_000)
    ]
    # Some merchants rate their buyers back, so the loop rule has work to do.
    attestations += [
        attest(int.from_bytes(a.subject), int.from_bytes(a.attester), sequence=5_000 + k)
        for k, a in enumerate(attestations[:500])
    ]
    params = parameters(pretrusted=(300, 301, 302))
    columns = columns_of(attestations)
    assert columns is not None
    assert scores_from_columns(columns, params) == compute_scores(attestations, params)


def test_a_total_beyond_int64_takes_the_python_path() -> None:
    attestations = [attest(1, 2, total=2**63), attest(2, 3, sequence=1)]
    assert columns_of(attestations) is None
    check_identical(attestations, parameters())


def test_sums_beyond_int64_take_the_python_path() -> None:
    attestations = [attest(1, 2, total=2**62, sequence=k) for k in range(3)]
    columns = columns_of(attestations)
    assert columns is not None
    assert scores_from_columns(columns, parameters()) is None
    check_identical(attestations, parameters())


def test_the_flow_bound_is_checked_before_each_round(monkeypatch: pytest.MonkeyPatch) -> None:
    attestations = [attest(1, 2), attest(2, 3, sequence=1), attest(3, 1, sequence=2)]
    columns = columns_of(attestations)
    assert columns is not None
    assert scores_from_columns(columns, parameters()) is not None
    # Today's parameters keep sum c*t + D*p <= SCALE**2; a bound below that must refuse.
    monkeypatch.setattr(eigentrust_numpy, "FLOW_BOUND", 10**17)
    assert scores_from_columns(columns, parameters()) is None
    assert epoch_scores(attestations, parameters()) == reference_scores(attestations, parameters())


def test_no_attestations_and_no_accounts() -> None:
    check_identical([], parameters(pretrusted=(1, 2, 3)))
    check_identical([], parameters(pretrusted=()))


def test_min_order_value_above_every_total_leaves_only_beta_counts() -> None:
    attestations = [attest(1, 2, total=50), attest(2, 1, value=-1, total=50, sequence=1)]
    params = dataclasses.replace(parameters(), min_order_fen=100)
    check_identical(attestations, params)


# --- the incremental inputs --------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(graphs(), st.data())
def test_inputs_kept_current_give_every_prefix_its_epoch(
    graph: tuple[list[Attestation], TrustParameters], data: st.DataObject
) -> None:
    attestations, params = graph
    cuts = sorted(data.draw(st.sets(st.integers(0, len(attestations)), max_size=3)))
    inputs = TrustInputs()
    for cut in [*cuts, len(attestations)]:
        while inputs.count < cut:
            inputs.append(encode_attestation(attestations[inputs.count]))
        # An epoch fixed here sees exactly the first `cut` attestations, then appends go on.
        prefix = attestations[:cut]
        assert inputs.root() == inputs_root(prefix)
        columns = inputs.columns()
        assert columns is not None
        assert scores_from_columns(columns, params) == reference_scores(prefix, params)


def test_inputs_with_a_field_beyond_int64_refuse_columns_but_keep_the_root() -> None:
    attestations = [attest(1, 2), attest(2, 3, total=2**64 - 1, sequence=1), attest(3, 1)]
    inputs = TrustInputs()
    for a in attestations:
        inputs.append(encode_attestation(a))
    assert inputs.columns() is None
    assert inputs.root() == inputs_root(attestations)
    assert TrustInputs().root() == EMPTY_ROOT


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.binary(min_size=20, max_size=20),
            st.integers(0, 2**64 - 1),
            st.integers(0, 2**64 - 1),
            st.integers(0, 2**64 - 1),
        ),
        max_size=40,
    )
)
def test_the_scores_root_hashes_the_canonical_leaves(
    rows: list[tuple[bytes, int, int, int]],
) -> None:
    scores = [TrustScore(*row) for row in rows]
    assert scores_root(scores) == merkle_root([leaf_hash(encode_score(s)) for s in scores])
