"""The benchmark entry point runs end to end (tiny counts) and prints both transports."""

from __future__ import annotations

import json

import pytest

from secnode.bench.p2p import main


def test_bench_prints_p2p_next_to_the_plain_baseline(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--small-count", "300", "--large-count", "5", "--rounds", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["payload", "transport", "frames/s", "MB/s", "vs", "plain"]
    assert [line.split()[:2] for line in lines[1:]] == [
        ["200", "plain"],
        ["200", "p2p"],
        ["65536", "plain"],
        ["65536", "p2p"],
    ]


def test_bench_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--small-count", "50", "--large-count", "2", "--rounds", "1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {(row["transport"], row["payload_size"]) for row in rows} == {
        ("plain", 200),
        ("p2p", 200),
        ("plain", 65536),
        ("p2p", 65536),
    }
    assert all(row["frames_per_second"] > 0 for row in rows)


def test_invalid_bench_arguments() -> None:
    with pytest.raises(SystemExit):
        main(["--rounds", "0"])
