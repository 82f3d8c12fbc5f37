"""The deterministic fault simulator: hundreds of seeded scenarios over every fault class, the
negative control (beyond f Byzantine replicas the checker must find violations), reproducibility
of a seed, real-Ed25519 scenarios, and the `sec sim` command line."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor

import pytest

from consensus.crypto import ED25519
from consensus.errors import InvalidProof, OutOfWindow
from consensus.proofs import Verifier
from consensus.sim.fastcrypto import FAST, FastSigner
from consensus.sim.runner import ScenarioResult, main, plan_jobs, run_scenario
from consensus.sim.scenarios import FAULT_CLASSES, build, saturating_load
from ledger.certificates import (
    CommitCertificate,
    CommitSignature,
    build_certificate,
    commit_signing_bytes,
)
from ledger.validators import ValidatorSet

CI_SCENARIOS = 32 * len(FAULT_CLASSES)
"""Every fault class 32 times, half with 4 validators and half with 7."""


def _run(job: tuple[int, str, int, bool, str]) -> ScenarioResult:
    seed, fault, validators, beyond, crypto = job
    return run_scenario(seed, fault, validators, beyond_threshold=beyond, crypto=crypto)


@pytest.mark.slow
def test_hundreds_of_scenarios_over_every_fault_class_are_safe_and_live() -> None:
    jobs = plan_jobs(CI_SCENARIOS, 10_000, FAULT_CLASSES, None, False, "auto")
    assert {job[1] for job in jobs} == set(FAULT_CLASSES)
    assert {job[2] for job in jobs} == {4, 7}
    workers = min(4, os.cpu_count() or 1)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(_run, jobs, chunksize=8))
    failures = [
        f"{r.reproduce()}: {(r.safety + r.liveness)[:2]}" for r in results if r.safety or r.liveness
    ]
    assert not failures, "\n".join(failures)
    assert sum(r.real_crypto for r in results) >= CI_SCENARIOS // 30
    exercised = {name for r in results for name, value in r.counters if value}
    assert {
        "catch-up blocks accepted",
        "crashes",
        "faults detected",
        "full blocks proposed at once",
        "rejected hostile input",
        "validator changes applied",
        "views entered",
    } <= exercised
    saturated = {r.fault for r in results if dict(r.counters).get("full blocks proposed at once")}
    assert saturated == set(FAULT_CLASSES), "pipelining at saturation must meet every fault class"


@pytest.mark.parametrize("validators", [4, 7])
def test_negative_control_beyond_f_byzantine_violates_safety(validators: int) -> None:
    for seed in range(3):
        result = run_scenario(seed, "twins", validators, beyond_threshold=True)
        assert result.safety, f"seed {seed}: the checker missed f+1 Byzantine twins"
        assert "another honest node delivered" in result.safety[0]


def test_a_seed_reproduces_exactly() -> None:
    first = run_scenario(4242, "mixed", 4)
    second = run_scenario(4242, "mixed", 4)
    assert first == second
    assert first.events > 100


@pytest.mark.parametrize("fault", ["baseline", "crash", "twins", "stale-primary"])
def test_saturated_scenarios_propose_full_blocks_at_once(fault: str) -> None:
    seed = next(s for s in range(100) if saturating_load(s, fault, 4) is not None)
    result = run_scenario(seed, fault, 4, crypto="fast")
    assert not result.safety and not result.liveness, result.reproduce()
    counters = dict(result.counters)
    assert counters["saturated scenarios"] == 1
    assert counters["full blocks proposed at once"] > 0


def test_most_scenarios_are_not_saturated() -> None:
    saturated = [s for s in range(1000) if saturating_load(s, "crash", 7) is not None]
    assert 200 < len(saturated) < 400  # SATURATED_SHARE of them, drawn per seed
    quiet = next(s for s in range(100) if saturating_load(s, "crash", 7) is None)
    assert "saturated scenarios" not in dict(run_scenario(quiet, "crash", 7).counters)


@pytest.mark.parametrize("fault", ["crash", "twins", "catch-up", "validators", "hostile"])
def test_scenarios_with_real_ed25519(fault: str) -> None:
    result = run_scenario(7, fault, 4, crypto="ed25519")
    assert result.real_crypto
    assert not result.safety and not result.liveness, result.safety + result.liveness


def test_command_prints_the_summary_as_its_last_line(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["--seeds", "3", "--faults", "baseline,drop", "--validators", "4"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert status == 0
    assert lines[-1] == "3 scenarios, 0 safety violations, 0 liveness failures"


def test_command_negative_control_names_failing_seeds(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["--seeds", "2", "--beyond-threshold", "--validators", "4", "--seed-start", "5"])
    out = capsys.readouterr().out
    assert status == 1
    assert out.strip().splitlines()[-1] == "2 scenarios, 2 safety violations, 0 liveness failures"
    assert "FAIL seed=5 fault=twins n=4" in out
    assert "--seed-start 5 --seeds 1 --faults twins --validators 4 --beyond-threshold" in out


def test_command_rejects_an_unknown_fault_class(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--faults", "meteor"])
    assert exit_info.value.code == 2
    assert "unknown fault class meteor" in capsys.readouterr().err


def test_checker_flags_an_honest_node_blamed_for_its_own_message() -> None:
    setup = build(3, "baseline", 4)
    checker, nodes = setup.checker, setup.world.nodes
    checker.rejected(nodes[0], OutOfWindow("late"), nodes[1])
    assert not checker.safety
    checker.rejected(nodes[0], InvalidProof("beyond the window"), nodes[1])
    assert checker.safety and "blamed honest node 1" in checker.safety[0]


def test_checker_requires_one_view_for_the_view_sync_classes() -> None:
    setup = build(2, "lone-view", 4)
    for node in setup.world.nodes:
        node.boot()
    assert setup.checker.require_one_view and setup.checker.one_view()
    loner = setup.world.nodes[0].replica
    assert loner is not None
    loner.on_tick(setup.world.config.view_timeout * 2)  # times out alone: a view change
    assert not setup.checker.one_view()


def test_a_primary_back_from_a_lone_view_change_never_re_signs_its_old_slots() -> None:
    # Found by `sec sim`: the primary of view 0 timed out alone, a checkpoint garbage-collected
    # its view-0 proposals while it was away, and back in view 0 it proposed again at a height
    # it had signed before. Its last working view's messages are now kept until stable.
    result = run_scenario(1482, "drop", 4)
    assert not result.safety and not result.liveness


def test_certificates_under_the_fast_scheme_follow_the_ledger_rules() -> None:
    signers = [FastSigner(f"v{i}") for i in range(4)]
    validators = ValidatorSet.from_public_keys(s.public_key for s in signers)
    verifier = Verifier("sec-sim", FAST)
    digest = bytes(range(32))
    message = commit_signing_bytes("sec-sim", 5, digest)
    signatures: dict[bytes, bytes] = {s.address: s.sign(message) for s in signers[:3]}
    certificate = build_certificate(5, digest, signatures)
    verifier.check_certificate(validators, certificate)
    doubled = certificate.signatures + certificate.signatures[:1]
    with pytest.raises(InvalidProof, match="signed twice"):
        verifier.check_certificate(validators, CommitCertificate(5, digest, doubled))
    outsider = FastSigner("outsider")
    extra = CommitSignature(outsider.address, outsider.sign(message))
    with pytest.raises(InvalidProof, match="not in the validator set"):
        verifier.check_certificate(
            validators, CommitCertificate(5, digest, (*certificate.signatures, extra))
        )
    with pytest.raises(InvalidProof, match="does not verify"):  # the scheme checks signatures
        Verifier("sec-sim", ED25519).check_certificate(validators, certificate)
