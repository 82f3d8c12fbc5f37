"""The due-queue: find the deadlines at or before a block's time without touching any other.

Theory of operation. Every contract deadline is ``base + d``: a base time (when a state was
entered) plus a window ``d`` read from a chain parameter at that moment. Bases only grow: a
transaction uses its block's time, and the block hook uses the deadline it is executing, which
lies after the previous block's time (that block's hook already took every earlier deadline)
and is taken in increasing order. So for one window ``d`` the deadlines are scheduled in
non-decreasing order, and a FIFO queue per window is already sorted by due time. A parameter
change simply starts another queue; the queues in use are few (one per distinct window value).

State records (canonical encodings, docs/protocol.md "Orders and escrow"):

* ``b"dueq"`` -> ``[[d, head, tail], ...]`` sorted by ``d``: the non-empty queues; entries
  ``head .. tail-1`` are pending. Absent when every queue is empty.
* ``b"due:" || d (8 bytes, big-endian) || seq (8 bytes, big-endian)`` ->
  ``[due_s, subject, tag]``: the entry scheduled ``seq``-th in queue ``d``.

`pop_due(state, t)` reads the directory, and per queue the entries from its head while they
are due (``due_s <= t``), deleting each. Its cost is one read per queue in use plus one read and
one delete per due entry: it never looks at an entry that is not due. Entries are never updated
in place; an entry whose subject left the state it was scheduled for is *superseded*, and the
caller skips it when it comes due (`tag` tells them apart). Each entry is popped exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ledger.encoding import decode, encode
from ledger.errors import LedgerError
from ledger.state import State

QUEUES_KEY: Final = b"dueq"
ENTRY_PREFIX: Final = b"due:"


class DueQueueCorrupt(LedgerError):
    """The queue directory points at an entry that is not in state (a bug, never input)."""


@dataclass(frozen=True, slots=True)
class DueEntry:
    """One scheduled deadline."""

    due_s: int
    """Block time (seconds) at or after which it is due."""
    subject: bytes
    """What it is about (an order id)."""
    tag: str
    """What it was scheduled for (the order state), so a superseded entry can be recognised."""


def entry_key(window_s: int, seq: int) -> bytes:
    return ENTRY_PREFIX + window_s.to_bytes(8, "big") + seq.to_bytes(8, "big")


def _load_queues(state: State) -> list[list[int]]:
    raw = state.get(QUEUES_KEY)
    if raw is None:
        return []
    queues: list[list[int]] = decode(raw)
    return queues


def _store_queues(state: State, queues: list[list[int]]) -> None:
    if queues:
        state.set(QUEUES_KEY, encode(queues))
    elif state.get(QUEUES_KEY) is not None:
        state.delete(QUEUES_KEY)


def schedule(state: State, subject: bytes, tag: str, base_s: int, window_s: int) -> int:
    """Append a deadline `base_s + window_s` to the queue of `window_s`; return the due time.

    Callers guarantee `base_s` is not earlier than any base already scheduled with the same
    window (see the module docstring), which keeps each queue sorted.
    """
    due_s = base_s + window_s
    queues = _load_queues(state)
    for queue in queues:
        if queue[0] == window_s:
            break
    else:
        queue = [window_s, 0, 0]
        queues.append(queue)
        queues.sort()
    state.set(entry_key(window_s, queue[2]), encode([due_s, subject, tag]))
    queue[2] += 1
    _store_queues(state, queues)
    return due_s


def pop_due(state: State, time_s: int) -> list[DueEntry]:
    """Remove and return every entry with `due_s <= time_s`, by (due_s, subject)."""
    queues = _load_queues(state)
    popped: list[DueEntry] = []
    for queue in queues:
        window_s, head, tail = queue
        while head < tail:
            key = entry_key(window_s, head)
            raw = state.get(key)
            if raw is None:
                raise DueQueueCorrupt(f"due-queue {window_s} s has no entry {head} (< {tail})")
            due_s, subject, tag = decode(raw)
            if due_s > time_s:
                break
            popped.append(DueEntry(due_s, subject, tag))
            state.delete(key)
            head += 1
        queue[1] = head
    if popped:
        _store_queues(state, [queue for queue in queues if queue[1] < queue[2]])
    popped.sort(key=lambda entry: (entry.due_s, entry.subject))
    return popped


def pending_count(state: State) -> int:
    """Entries not yet popped (superseded ones included): for tests and metrics."""
    return sum(tail - head for _, head, tail in _load_queues(state))
