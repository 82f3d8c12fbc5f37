"""Helpers of the CLI tests that run `sec` in-process against a served node (tests/rpc_node.py):
the `served` fixture lives in tests/conftest.py."""

from __future__ import annotations

import pytest

import cli


def run_cli_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`sec ARGV` in this process: (exit status, stdout, stderr)."""
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def cli_fields(out: str) -> dict[str, list[str]]:
    """The `key  value` lines of human output, every value of a repeated key in order."""
    fields: dict[str, list[str]] = {}
    for line in out.splitlines():
        key, _, value = line.partition("  ")
        fields.setdefault(key.strip(), []).append(value.strip())
    return fields
