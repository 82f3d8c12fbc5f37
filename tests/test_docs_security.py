"""docs/security.md names, for every finding, the tests that prove its rule: each named test
must exist, so the page cannot point at a test that was renamed or never written."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"


def _defined_tests() -> set[str]:
    names: set[str] = set()
    for path in TESTS.glob("test_*.py"):
        names.update(re.findall(r"^(?:async )?def (test_\w+)", path.read_text(), re.M))
        names.update(re.findall(r"^(?:class )?(Test\w+)\b", path.read_text(), re.M))
    return names


def test_every_test_named_in_security_md_exists() -> None:
    text = (ROOT / "docs" / "security.md").read_text()
    named = set(re.findall(r"\b(test_[a-z0-9_]+|Test[A-Z][A-Za-z]+)\b", text))
    files = {n for n in named if (TESTS / f"{n}.py").exists()}
    prefixes = {n for n in named if n.endswith("_")}  # `test_pool_*` names a family
    defined = _defined_tests()
    missing = sorted(
        n
        for n in named - files - prefixes
        if n not in defined and not any(d.startswith(n) for d in defined)
    )
    assert not missing, f"docs/security.md names tests that do not exist: {missing}"
    for prefix in prefixes:
        assert any(d.startswith(prefix) for d in defined), f"no test starts with {prefix}"
