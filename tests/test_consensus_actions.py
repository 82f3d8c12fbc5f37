"""`Action` is a closed union: a `match` over it that ends in `assert_never` type-checks only if
every action kind has its case, which is what keeps the driver (`secnode.runtime.driver`) and the
simulator (`consensus.sim.world`, `consensus.sim.cluster`) complete when a new action appears."""

from __future__ import annotations

from pathlib import Path

import mypy.api

KINDS = [
    "Send",
    "Broadcast",
    "SetTimer",
    "CommitBlock",
    "Persist",
    "DiscardRecords",
    "RequestCatchUp",
    "FaultDetected",
    "EnteredView",
]


def _carry_out(kinds: list[str]) -> str:
    cases = " | ".join(f"{kind}()" for kind in kinds)
    return (
        "from typing import assert_never\n"
        f"from consensus.actions import Action, {', '.join(KINDS)}\n\n\n"
        "def carry_out(action: Action) -> None:\n"
        "    match action:\n"
        f"        case {cases}:\n"
        "            pass\n"
        "        case _:\n"
        "            assert_never(action)\n"
    )


def test_a_match_over_action_missing_a_kind_fails_type_checking(tmp_path: Path) -> None:
    complete = tmp_path / "complete.py"
    complete.write_text(_carry_out(KINDS))
    missing = tmp_path / "missing.py"
    missing.write_text(_carry_out([kind for kind in KINDS if kind != "EnteredView"]))
    out, _, status = mypy.api.run(["--strict", str(complete), str(missing)])
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert status == 1, out
    assert len(errors) == 1, out
    assert "missing.py" in errors[0] and "EnteredView" in errors[0], out
