"""`sec nemesis`: cycles of faults over a real 4-validator network while clients transact.

One run: create a development network in OUT/net whose P2P links pass through a `LinkLayer`,
start the four node processes, start the client threads, then for each cycle

1. draw the cycle's fault from the seeded `Schedule` and inject it;
2. hold it for its duration (1.5-3 s), then heal it;
3. wait for recovery: the chain commits past the height it had at the heal (`resumed`), and
   every node has caught up and all four report one `view` in sec_status (`recovered`),
   bounded by `RECOVERY_BOUND_S`;
4. check: crashed nodes (restarted, counted), forks, acknowledged transactions on every node,
   tracebacks in the logs; print one progress line.

At the end the clients stop, every node gets `FINAL_CATCH_UP_S` to reach the last acknowledged
height, the checks run once more, and the report is printed (one summary line, then details)
and written to OUT/report.json. Exit status: 0 if nothing failed (see `report.FAILURES`), 1 if
something did, 2 if the network never started.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from p2p.config import Tuning
from secnode.client.rpc import RpcClientError
from secnode.nemesis.checker import Checker
from secnode.nemesis.cluster import Crash, NemesisCluster
from secnode.nemesis.faults import Fault, Schedule, heal, inject
from secnode.nemesis.load import Acknowledgements, start_clients
from secnode.nemesis.report import CycleResult, Report
from secnode.network.testnet import failure_reason
from secnode.runtime.config import ConfigError

VALIDATORS: Final = 4
READY_BOUND_S: Final = 90.0
RECOVERY_BOUND_S: Final = 15.0
"""After a heal: the chain must commit again, every node catch up and share one view, in this."""
FINAL_CATCH_UP_S: Final = 30.0
POLL_S: Final = 0.25
BAN_GRACE_S: Final = Tuning().ban_duration + 5.0
"""After its Byzantine run a node's peers may ban it (rightly) for p2p's ban_duration: it is not
judged for recovery (catch-up, view) until this has passed since the heal."""
RESUME_BLOCKS: Final = 2
"""The chain has resumed once it committed this many blocks above the height at the heal."""


@dataclass(frozen=True, slots=True)
class Recovery:
    resumed_s: float | None
    recovered_s: float | None
    heights: list[int | None]
    views: list[int | None]
    shut_out: list[int]
    """Ex-Byzantine nodes not judged: within BAN_GRACE_S of their run and short of peers."""


class Nemesis:
    """One run (see the module docstring)."""

    def __init__(
        self, out: Path, cycles: int, seed: int, recovery_bound_s: float = RECOVERY_BOUND_S
    ) -> None:
        self.out = out
        self.recovery_bound_s = recovery_bound_s
        self.cycles = cycles
        self.seed = seed
        self.report = Report(seed)
        self.acknowledgements = Acknowledgements()
        self.stop_clients = threading.Event()
        self.cluster: NemesisCluster | None = None
        self.checker: Checker | None = None
        self._crashes: list[Crash] = []
        self._acknowledgements_seen = 0
        self._excused: dict[int, float] = {}
        """Node index -> time.monotonic() until which it is not judged (after a Byzantine run)."""

    def run(self) -> Report:
        network = self.out / "net"
        if network.exists():
            raise ConfigError(f"{network} exists; remove it or choose another --out")
        self.out.mkdir(parents=True, exist_ok=True)
        cluster = self.cluster = NemesisCluster.create(network, VALIDATORS)
        checker = self.checker = Checker(cluster)
        try:
            for index in range(VALIDATORS):
                cluster.start(index)
            self._wait_ready(cluster)
            urls = [node.rpc_url for node in cluster.nodes]
            clients = start_clients(urls, self.acknowledgements, self.stop_clients, self.seed)
            schedule = Schedule(self.seed, VALIDATORS)
            for cycle in range(1, self.cycles + 1):
                self._cycle(cluster, checker, schedule.next(cycle, self._primary(cluster)))
            self.stop_clients.set()
            for client in clients:
                client.join()
            self._final_checks(cluster, checker)
        finally:
            self.stop_clients.set()
            cluster.close()
            self.report.acknowledged = self.acknowledgements.count()
            self.report.retries = self.acknowledgements.retries
            self.report.rejections = dict(self.acknowledgements.rejections)
            self.report.write(self.out / "report.json")
        return self.report

    def _wait_ready(self, cluster: NemesisCluster) -> None:
        deadline = time.monotonic() + READY_BOUND_S
        while time.monotonic() < deadline:
            for crash in cluster.reap_crashes():
                raise NetworkDidNotStart(f"{crash.node} {crash.how} at start: {crash.reason}")
            statuses = [cluster.status(i) for i in range(VALIDATORS)]
            meshed = VALIDATORS - 1
            if all(s is not None and s["height"] >= 2 and s["peers"] >= meshed for s in statuses):
                print(f"nemesis: {VALIDATORS} validators up in {self.out / 'net'}", flush=True)
                return
            time.sleep(POLL_S)
        reasons = [f"{node.name}: {failure_reason(node.log_path, 0)}" for node in cluster.nodes]
        raise NetworkDidNotStart(
            f"the network did not commit within {READY_BOUND_S:g} s; " + "; ".join(reasons)
        )

    def _cycle(self, cluster: NemesisCluster, checker: Checker, fault: Fault) -> None:
        report = self.report
        report.cycles += 1
        report.faults[fault.kind] += 1
        began = time.monotonic()
        inject(cluster, fault)
        self.stop_clients.wait(fault.duration_s)  # the fault holds; clients keep submitting
        heal(cluster, fault)
        if fault.kind == "byzantine":
            self._excused[fault.target] = time.monotonic() + BAN_GRACE_S
        heal_top = max((h for h in self._heights(cluster) if h is not None), default=0)
        recovery = self._wait_recovered(cluster, heal_top)
        result = CycleResult(
            fault.cycle,
            fault.describe(),
            recovery.resumed_s,
            recovery.recovered_s,
            recovery.heights,
            recovery.views,
            excused=recovery.shut_out,
        )
        where = f"cycle {fault.cycle} ({fault.describe()})"
        if recovery.resumed_s is None:
            result.problems.append(
                f"stall: no block above {heal_top} in {self.recovery_bound_s:g} s"
            )
            report.stalls.append(f"{where}: heights {recovery.heights}")
        elif recovery.recovered_s is None:
            judged = [i for i in range(VALIDATORS) if i not in recovery.shut_out]
            views = {recovery.views[i] for i in judged}
            if len(views) > 1:
                result.problems.append(f"view split: views {recovery.views}")
                report.splits.append(f"{where}: views {recovery.views} heights {recovery.heights}")
            else:
                result.problems.append(f"a node did not catch up: heights {recovery.heights}")
                report.stalls.append(f"{where}: heights {recovery.heights} views {recovery.views}")
        else:
            report.worst_recovery_s = max(report.worst_recovery_s, recovery.recovered_s)
        self._check(cluster, checker, where, result)
        result.wall_s = time.monotonic() - began
        report.results.append(result)
        self._print_progress(result)

    def _check(
        self, cluster: NemesisCluster, checker: Checker, where: str, result: CycleResult
    ) -> None:
        report = self.report
        crashes, self._crashes = [*self._crashes, *cluster.reap_crashes()], []
        for crash in crashes:
            line = f"{crash.node} {crash.how}: {crash.reason}"
            result.problems.append(f"crash: {line}")
            report.crashes.append(f"{where}: {line}")
        for fork in checker.check_forks():
            result.problems.append(f"FORK {fork}")
            report.forks.append(f"{where}: {fork}")
        new = self.acknowledgements.since(self._acknowledgements_seen)
        self._acknowledgements_seen += len(new)
        for lost in checker.check_acknowledged(new):
            result.problems.append(f"LOST {lost}")
            report.lost.append(f"{where}: {lost}")
        for traceback in checker.new_tracebacks():
            result.problems.append(f"traceback {traceback}")
            report.tracebacks.append(f"{where}: {traceback}")

    def _final_checks(self, cluster: NemesisCluster, checker: Checker) -> None:
        acknowledged = self.acknowledgements.since(0)
        top = max((a.height for a in acknowledged), default=0)
        excused_until = max(self._excused.values(), default=0.0)
        deadline = max(time.monotonic(), excused_until) + FINAL_CATCH_UP_S
        while time.monotonic() < deadline:
            if all(h is not None and h >= top for h in self._heights(cluster)):
                break
            time.sleep(POLL_S)
        result = CycleResult(self.report.cycles + 1, "final check", None, None, [], [])
        self._check(cluster, checker, "final check", result)
        new = self.acknowledgements.since(self._acknowledgements_seen)
        self._acknowledgements_seen += len(new)
        for lost in checker.check_acknowledged(new, final=True):
            result.problems.append(f"LOST {lost}")
            self.report.lost.append(f"final check: {lost}")
        for problem in result.problems:
            print(f"final check ! {problem}", flush=True)

    def _wait_recovered(self, cluster: NemesisCluster, heal_top: int) -> Recovery:
        """Poll until the chain resumed above `heal_top` and every judged node caught up and
        shares one view, or the bound passes. A node excused after its Byzantine run (its peers
        may ban it for `p2p` `ban_duration`, rightly) is not judged while it is shut out (it
        has fewer than all its peers)."""
        started = time.monotonic()
        target = heal_top + RESUME_BLOCKS
        resumed: float | None = None
        heights: list[int | None] = []
        views: list[int | None] = []
        while True:
            now = time.monotonic()
            elapsed = now - started
            statuses = [cluster.status(i) for i in range(VALIDATORS)]
            heights = [None if s is None else s["height"] for s in statuses]
            views = [None if s is None else s["view"] for s in statuses]
            known = [h for h in heights if h is not None]
            if resumed is None and known and max(known) >= target:
                resumed = elapsed
            shut_out = [
                i
                for i, s in enumerate(statuses)
                if self._excused.get(i, 0.0) > now and s is not None and s["peers"] < VALIDATORS - 1
            ]
            judged = [i for i in range(VALIDATORS) if i not in shut_out]
            if (
                resumed is not None
                and all((h := heights[i]) is not None and h >= target for i in judged)
                and len({views[i] for i in judged}) == 1
            ):
                return Recovery(resumed, elapsed, heights, views, shut_out)
            if elapsed > self.recovery_bound_s:
                return Recovery(resumed, None, heights, views, shut_out)
            self._crashes += cluster.reap_crashes()  # a crashed node is restarted at once
            time.sleep(POLL_S)

    def _primary(self, cluster: NemesisCluster) -> int | None:
        """Index of the primary of the view most nodes are in (None if no node answers):
        validator number view mod n in set order, the rule of consensus.proofs.primary_of."""
        statuses = {i: s for i in range(VALIDATORS) if (s := cluster.status(i)) is not None}
        if not statuses:
            return None
        by_address = {s["node_address"]: i for i, s in statuses.items()}
        view = Counter(s["view"] for s in statuses.values()).most_common(1)[0][0]
        try:
            members = cluster.call(next(iter(statuses)), "sec_getValidators")["validators"]
        except RpcClientError:
            return None
        ordered = sorted(members, key=lambda member: member["index"])
        return by_address.get(ordered[view % len(ordered)]["address"])

    def _heights(self, cluster: NemesisCluster) -> list[int | None]:
        return [
            None if (s := cluster.status(i)) is None else s["height"] for i in range(VALIDATORS)
        ]

    def _print_progress(self, result: CycleResult) -> None:
        def seconds(value: float | None) -> str:
            return "-" if value is None else f"{value:.1f} s"

        line = (
            f"cycle {result.cycle}/{self.cycles} {result.fault}: "
            f"resumed {seconds(result.resumed_s)}, recovered {seconds(result.recovered_s)}"
            f", heights {result.heights}"
            f", views {result.views}, acknowledged {self.acknowledgements.count()}"
            f" [{result.wall_s:.0f} s]"
        )
        if result.excused:
            names = ", ".join(f"node{i}" for i in result.excused)
            line += f" ({names} not judged: shut out by its peers after its Byzantine run)"
        print(line, flush=True)
        for problem in result.problems:
            print(f"  ! {problem}", flush=True)


class NetworkDidNotStart(ConfigError):
    """The four nodes did not come up and commit (a port in use, a crash at start)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sec nemesis",
        description="Fault cycles (kill -9, SIGSTOP, partitions, clock skew, a Byzantine node) "
        "over a real 4-validator network while clients submit transfers and orders; checks "
        "forks, lost transactions, view splits, crashes and recovery after every cycle.",
    )
    parser.add_argument("--cycles", type=int, default=20, help="fault cycles (default 20)")
    parser.add_argument("--seed", type=int, default=1, help="schedule seed (default 1)")
    parser.add_argument(
        "--recovery-bound",
        type=float,
        default=RECOVERY_BOUND_S,
        help=f"seconds after a heal to resume, catch up and share one view "
        f"(default {RECOVERY_BOUND_S:g})",
    )
    parser.add_argument(
        "--out", default="nemesis-out", help="run directory (default ./nemesis-out)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.cycles < 1:
        print("sec nemesis: --cycles must be at least 1", file=sys.stderr)
        return 2
    if args.recovery_bound <= 0:
        print("sec nemesis: --recovery-bound must be positive", file=sys.stderr)
        return 2
    nemesis = Nemesis(Path(args.out), args.cycles, args.seed, args.recovery_bound)
    try:
        report = nemesis.run()
    except NetworkDidNotStart as exc:
        print(f"sec nemesis: error: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"sec nemesis: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # the network is already down; say what was seen so far
        print(f"interrupted: {nemesis.report.line()}", file=sys.stderr)
        return 130
    print(report.line())
    details = report.details()
    if details:
        print(details)
    print(f"report: {Path(args.out) / 'report.json'}   node logs: {Path(args.out) / 'net'}")
    return 1 if report.failed() else 0
