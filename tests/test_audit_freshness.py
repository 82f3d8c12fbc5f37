"""The auditor's freshness rules, pure (secnode.client.audit_freshness): the clock is given, the
state file is a temp file. The same rules through `sec audit` against served nodes are in
tests/test_audit.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger.blocks import BlockHeader
from secnode.client.audit import AuditFailure
from secnode.client.audit_freshness import Freshness, Seen, block_time_text, load_state, save_state

NODE = "http://127.0.0.1:9/rpc"
T0 = 1_764_000_000_000


def header(height: int, time_ms: int = T0, view: int = 0) -> BlockHeader:
    return BlockHeader(
        chain_id="sec-test",
        height=height,
        prev_hash=bytes(32),
        timestamp_ms=time_ms,
        proposer=bytes(20),
        view=view,
        tx_root=bytes(32),
        receipts_root=bytes(32),
        state_root=bytes(32),
        validators_hash=bytes(32),
    )


def fresh(seen: Seen | None = None, now_ms: int = T0, max_age_s: float | None = None) -> Freshness:
    return Freshness("ab" * 32, NODE, seen, now_ms, max_age_s, Path("/tmp/state.json"))


def test_block_time_text_is_utc_with_milliseconds() -> None:
    assert block_time_text(T0 + 7) == "2025-11-24T16:00:00.007Z"


def test_first_audit_records_the_verified_block() -> None:
    verified = header(12)
    seen = fresh().accept(verified)
    assert seen == Seen(12, verified.hash().hex(), T0, NODE)


def test_invalid_answer_below_the_seen_height_names_node_and_heights() -> None:
    seen = Seen(40, "00" * 32, T0, "http://other:8545/rpc")
    with pytest.raises(AuditFailure) as failure:
        fresh(seen).check_height(39)
    assert failure.value.check == "freshness"
    assert "answered at height 39" in failure.value.detail
    assert "older than height 40" in failure.value.detail
    assert NODE in failure.value.detail and "http://other:8545/rpc" in failure.value.detail
    with pytest.raises(AuditFailure):
        fresh(seen).accept(header(39))
    fresh(seen).check_height(40)  # the same height is not older


def test_a_pinned_height_may_be_older_and_the_record_keeps_the_newest() -> None:
    seen = Seen(40, "00" * 32, T0, NODE)
    assert fresh(seen).accept(header(10), pinned=True) == seen
    newer = fresh(seen).accept(header(41))
    assert newer.height == 41


def test_invalid_other_block_at_the_seen_height_is_refused() -> None:
    seen = Seen(40, "00" * 32, T0, NODE)
    with pytest.raises(AuditFailure, match="a fork, or a new network"):
        fresh(seen).accept(header(40))


def test_invalid_block_older_than_max_age() -> None:
    checker = fresh(now_ms=T0 + 61_000, max_age_s=60)
    with pytest.raises(AuditFailure, match=r"61\.0 s old; --max-age is 60 s"):
        checker.check_age(header(5))
    fresh(now_ms=T0 + 60_000, max_age_s=60).check_age(header(5))
    fresh(now_ms=T0 + 10**12).check_age(header(5))  # no --max-age: no bound


def test_state_file_round_trips_and_bad_files_are_named(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "audit-state.json"
    assert load_state(path) == {}
    chains = {"ab" * 32: Seen(3, "cd" * 32, T0, NODE)}
    save_state(path, chains)
    assert load_state(path) == chains
    path.write_text(json.dumps({"version": 99, "chains": {}}))
    with pytest.raises(AuditFailure, match="is not version 1"):
        load_state(path)
    path.write_text("{")
    with pytest.raises(AuditFailure, match="cannot read state file"):
        load_state(path)
