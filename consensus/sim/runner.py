"""`sec sim`: run seeded fault scenarios and report safety and liveness.

    python -m consensus.sim.runner --seeds 500 [--validators 4|7] [--faults crash,twins|all]
        [--seed-start S] [--beyond-threshold] [--crypto auto|fast|ed25519] [--jobs J]

Scenario i uses seed S+i, fault class faults[i mod len(faults)] and, unless --validators is given,
alternates n=4 and n=7 per round of fault classes. Each failing scenario is named with the exact
command that reproduces it. The last line is always

    N scenarios, V safety violations, L liveness failures

counting scenarios (V: scenarios with a safety violation, L: with a liveness failure); the exit
status is 1 if V or L is non-zero. `--beyond-threshold` runs the negative control
(f+1 Byzantine twins) which must report safety violations.

The only wall clock in the package is here, for the progress lines; it never affects a result.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from consensus.sim.scenarios import FAULT_CLASSES, LIVENESS_BOUND, build


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    """Outcome of one scenario."""

    seed: int
    """Scenario seed."""
    fault: str
    """Fault class."""
    validators: int
    """n."""
    beyond_threshold: bool
    """Negative-control scenario."""
    safety: tuple[str, ...]
    """Safety violations (empty if none)."""
    liveness: tuple[str, ...]
    """Liveness failures (empty if none)."""
    height: int
    """Highest height an honest node reached."""
    events: int
    """Simulated events processed."""
    real_crypto: bool
    """Ran with real Ed25519."""
    description: str
    """What the scenario did."""
    counters: tuple[tuple[str, int], ...] = ()
    """What it exercised: view changes, catch-up blocks, crashes, rejected input..."""

    def reproduce(self) -> str:
        extra = " --beyond-threshold" if self.beyond_threshold else ""
        return (
            f"python -m consensus.sim.runner --seed-start {self.seed} --seeds 1 "
            f"--faults {self.fault} --validators {self.validators}{extra}"
        )


def run_scenario(
    seed: int, fault: str, validators: int, *, beyond_threshold: bool = False, crypto: str = "auto"
) -> ScenarioResult:
    """Build and run one scenario to its verdict."""
    setup = build(seed, fault, validators, beyond_threshold=beyond_threshold, crypto=crypto)
    world, plan, checker = setup.world, setup.plan, setup.checker
    for node in list(world.nodes):
        node.boot()

    def violated() -> bool:  # a safety violation ends the run
        return bool(checker.safety)

    world.queue.run_until(plan.fault_end, stop=violated)
    plan.healed = True
    world.network.heal()
    for node in world.nodes:
        node.crash_during_next = False  # a pending mid-list crash belongs to the fault phase
    for step in plan.on_heal:
        step()
    checker.mark_healed()
    if not checker.safety:
        world.queue.run_until(
            plan.fault_end + LIVENESS_BOUND, stop=lambda: violated() or checker.live_enough()
        )
    if not checker.safety:
        checker.judge_liveness(LIVENESS_BOUND)
    for node in world.nodes:
        node.report_stats()
    honest_heights = [n.app.height for n in world.nodes if n.honest]
    return ScenarioResult(
        seed,
        fault,
        validators,
        beyond_threshold,
        tuple(checker.safety),
        tuple(checker.liveness),
        max(honest_heights, default=0),
        world.queue.processed,
        setup.real_crypto,
        plan.description,
        tuple(sorted(checker.counters.items())),
    )


def _run(job: tuple[int, str, int, bool, str]) -> ScenarioResult:
    seed, fault, validators, beyond, crypto = job
    return run_scenario(seed, fault, validators, beyond_threshold=beyond, crypto=crypto)


def plan_jobs(
    seeds: int,
    seed_start: int,
    faults: tuple[str, ...],
    validators: int | None,
    beyond: bool,
    crypto: str,
) -> list[tuple[int, str, int, bool, str]]:
    jobs = []
    for i in range(seeds):
        fault = faults[i % len(faults)]
        n = validators if validators is not None else (4, 7)[(i // len(faults)) % 2]
        jobs.append((seed_start + i, fault, n, beyond, crypto))
    return jobs


def parse_faults(text: str) -> tuple[str, ...]:
    if text == "all":
        return FAULT_CLASSES
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in FAULT_CLASSES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown fault class {', '.join(unknown) or repr(text)}; choose from "
            f"{', '.join(FAULT_CLASSES)} or all"
        )
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sec sim",
        description="Deterministic PBFT fault simulator: runs seeded scenarios and checks "
        "safety, liveness and bounded buffers.",
    )
    parser.add_argument("--seeds", type=int, default=100, help="number of scenarios (default 100)")
    parser.add_argument("--seed-start", type=int, default=0, help="first seed (default 0)")
    parser.add_argument(
        "--validators", type=int, choices=(4, 7), help="n (default: alternate 4 and 7)"
    )
    parser.add_argument(
        "--faults",
        type=parse_faults,
        default=FAULT_CLASSES,
        help=f"comma list of fault classes or 'all' (default): {', '.join(FAULT_CLASSES)}",
    )
    parser.add_argument(
        "--beyond-threshold",
        action="store_true",
        help="negative control: f+1 Byzantine twins; must report safety violations",
    )
    parser.add_argument(
        "--crypto",
        choices=("auto", "fast", "ed25519"),
        default="auto",
        help="signatures: auto = real Ed25519 for every 25th seed, fast otherwise",
    )
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--verbose", action="store_true", help="one line per scenario")
    return parser


def _results(jobs: list[tuple[int, str, int, bool, str]], workers: int) -> Iterator[ScenarioResult]:
    if workers <= 1:
        for job in jobs:
            yield _run(job)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(_run, jobs, chunksize=8)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.seeds < 1:
        print("sec sim: --seeds must be at least 1", file=sys.stderr)
        return 2
    # The negative control is one attack (f+1 twinned keys), whatever --faults says.
    faults = ("twins",) if args.beyond_threshold else args.faults
    jobs = plan_jobs(
        args.seeds, args.seed_start, faults, args.validators, args.beyond_threshold, args.crypto
    )
    started = time.monotonic()
    progress_every = max(25, min(500, args.seeds // 20))  # short runs print no progress
    safety = liveness = 0
    totals: dict[str, int] = {}
    for done, result in enumerate(_results(jobs, args.jobs), start=1):
        safety += bool(result.safety)
        liveness += bool(result.liveness)
        totals["blocks"] = totals.get("blocks", 0) + result.height
        totals["real Ed25519 scenarios"] = totals.get("real Ed25519 scenarios", 0) + int(
            result.real_crypto
        )
        for name, value in result.counters:
            totals[name] = totals.get(name, 0) + value
        if args.verbose:
            verdict = "ok" if not (result.safety or result.liveness) else "FAIL"
            crypto = "ed25519" if result.real_crypto else "fast"
            print(
                f"seed={result.seed} fault={result.fault} n={result.validators} {verdict} "
                f"height={result.height} events={result.events} crypto={crypto} "
                f"({result.description})"
            )
        if result.safety or result.liveness:
            print(f"FAIL seed={result.seed} fault={result.fault} n={result.validators}")
            for line in result.safety:
                print(f"  safety: {line}")
            for line in result.liveness:
                print(f"  liveness: {line}")
            print(f"  reproduce: {result.reproduce()}")
        if done % progress_every == 0 and done < len(jobs):
            elapsed = time.monotonic() - started
            print(
                f"progress: {done}/{len(jobs)} scenarios, {safety} safety violations, "
                f"{liveness} liveness failures ({elapsed:.0f}s)",
                flush=True,
            )
    print("exercised: " + ", ".join(f"{name} {value}" for name, value in sorted(totals.items())))
    print(f"{len(jobs)} scenarios, {safety} safety violations, {liveness} liveness failures")
    return 1 if safety or liveness else 0


if __name__ == "__main__":
    sys.exit(main())
