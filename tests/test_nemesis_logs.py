"""secnode.nemesis.checker.LogScan: one entry per failure, read incrementally from a real log."""

from __future__ import annotations

from pathlib import Path

from secnode.nemesis.checker import LogScan

CALLBACK_FAILURE = """\
2026-12-06 21:29:11,060 INFO secnode.runtime.node: committed block 528 with 1 transactions
2026-12-06 21:29:11,063 ERROR asyncio: Exception in callback None()
handle: <TimerHandle cancelled when=1081.142298645>
Traceback (most recent call last):
  File "secnode/runtime/driver.py", line 168, in _carry_out_one
    self.host.send_consensus(public_key, encode_message(action.message))
p2p.errors.PeerNotConnected: peer is disconnecting
"""
CHAINED_FAILURE = """\
Traceback (most recent call last):
  File "x.py", line 1, in f
KeyError: 'a'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "x.py", line 3, in f
ValueError: b
"""


def test_each_traceback_is_reported_once_with_its_exception_and_callback(tmp_path: Path) -> None:
    log = tmp_path / "node.log"
    log.write_text(CALLBACK_FAILURE)
    scan = LogScan()
    found = scan.new_tracebacks(log)
    assert len(found) == 1
    assert found[0].startswith("p2p.errors.PeerNotConnected: peer is disconnecting")
    assert "Exception in callback None()" in found[0]
    assert scan.new_tracebacks(log) == []  # nothing new since the last scan
    with log.open("a") as more:
        more.write(CHAINED_FAILURE)
    assert scan.new_tracebacks(log) == ["KeyError: 'a'"]
