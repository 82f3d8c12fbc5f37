"""`sec nemesis` over real processes: the short CI run, the link layer, and negative controls
showing the checker can fail (a forged reference hash is a fork, a made-up acknowledgement is
lost).

The CI run asserts no acknowledged transaction lost, no fork, every fault kind exercised, and
(STRICT) every other counter of the report at 0: no view split left after the recovery bound,
no node crash, no traceback in a node log, no stall.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from secnode.nemesis.checker import Checker
from secnode.nemesis.cluster import NemesisCluster
from secnode.nemesis.faults import KINDS
from secnode.nemesis.load import Acknowledged
from tests.e2e_cluster import CLI, PYTHON, ROOT, wait_until

pytestmark = pytest.mark.slow

STRICT = True
"""Every failure counter of the report must be 0 and the exit status 0 (docs/security.md findings
12-14 are fixed; set False only to see a report while investigating)."""


def test_short_nemesis_run_loses_nothing_and_never_forks(tmp_path: Path) -> None:
    out = tmp_path / "nemesis"
    arguments = ["nemesis", "--cycles", str(len(KINDS)), "--seed", "7", "--out", str(out)]
    result = subprocess.run(
        [PYTHON, str(CLI), *arguments],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        check=False,
    )
    print(result.stdout[-6000:])  # the progress lines and the report, for whoever reads CI
    assert result.returncode in (0, 1), f"exit {result.returncode}\n{result.stderr}"
    report = json.loads((out / "report.json").read_text())
    assert report["summary"] in result.stdout
    assert report["cycles"] == len(KINDS)
    assert set(report["faults"]) == set(KINDS), report["faults"]
    assert report["acknowledged"] > 0, "the clients got nothing committed"
    assert report["lost"] == [], report["lost"]
    assert report["forks"] == [], report["forks"]
    assert (result.returncode == 1) == report["failed"]
    if STRICT:
        assert not report["failed"], result.stdout


def test_links_cut_and_heal_and_the_checker_can_fail(tmp_path: Path) -> None:
    cluster = NemesisCluster.create(tmp_path / "net", 4)
    try:
        for index in range(4):
            cluster.start(index)

        def statuses() -> list[dict[str, object]] | None:
            found = [cluster.status(i) for i in range(4)]
            if any(s is None or s["height"] < 2 or s["peers"] != 3 for s in found):
                return None
            return [s for s in found if s is not None]

        wait_until(statuses, 90, "four meshed nodes committing")
        for other in range(3):
            cluster.links.cut(3, other)
        assert cluster.links.cut_pairs() == [(0, 3), (1, 3), (2, 3)]
        wait_until(
            lambda: (s := cluster.status(3)) is not None and s["peers"] == 0,
            30,
            "node3 to lose every peer behind the cut links",
        )
        cluster.links.heal()
        wait_until(statuses, 60, "node3 to reconnect through the healed links")

        checker = Checker(cluster)
        assert checker.check_forks() == []
        checker.reference[1] = "00" * 32  # a negative control: someone saw another block 1
        checker.checked = [0] * 4
        forks = checker.check_forks()
        assert len(forks) == 4 and all("height 1:" in fork for fork in forks), forks
        made_up = Acknowledged("ab" * 32, 1, "cd" * 32, "transfer", 0)
        lost = checker.check_acknowledged([made_up], final=True)
        assert len(lost) == 1, lost
        assert "node0 committed another block at 1" in lost[0], lost
        assert "node0's index has no record" in lost[0], lost
    finally:
        cluster.close()
