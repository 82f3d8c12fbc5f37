"""A due-heap in state: deadlines at arbitrary times, the earliest found in one read.

`contracts.deadlines` keeps FIFO queues per window, which is sorted only because every deadline
there is "now + a parameter". A group's join deadline is chosen by its merchant, so deadlines
arrive in any order; this module keeps them in a binary min-heap over state records instead,
ordered by (due_s, subject):

* ``name || b"#"`` -> the number of entries ``n`` (absent when 0);
* ``name || b"@" || i (4 bytes, big-endian)`` -> ``[due_s, subject]`` for ``0 <= i < n``, the
  array layout of a binary heap (children of ``i`` at ``2i+1`` and ``2i+2``).

Cost: `push` and each popped entry O(log n) reads and writes; `pop_due` when nothing is due is
two reads (the size and the top), whatever ``n`` is. Entries are never updated or removed early:
one whose subject no longer waits (a group that formed or was cancelled) is skipped by the
caller when it comes due. Each entry is popped exactly once.
"""

from __future__ import annotations

from contracts.deadlines import DueQueueCorrupt
from ledger.encoding import decode, encode
from ledger.state import State

Entry = tuple[int, bytes]
"""(due_s, subject)."""


def _size_key(name: bytes) -> bytes:
    return name + b"#"


def _slot_key(name: bytes, index: int) -> bytes:
    return name + b"@" + index.to_bytes(4, "big")


def _size(state: State, name: bytes) -> int:
    raw = state.get(_size_key(name))
    return 0 if raw is None else int(decode(raw))


def _read(state: State, name: bytes, index: int) -> Entry:
    raw = state.get(_slot_key(name, index))
    if raw is None:
        raise DueQueueCorrupt(f"due-heap {name!r} has no slot {index}")
    due_s, subject = decode(raw)
    return int(due_s), bytes(subject)


def _write(state: State, name: bytes, index: int, entry: Entry) -> None:
    state.set(_slot_key(name, index), encode(list(entry)))


def _resize(state: State, name: bytes, size: int) -> None:
    if size:
        state.set(_size_key(name), encode(size))
    else:
        state.delete(_size_key(name))


def push(state: State, name: bytes, due_s: int, subject: bytes) -> None:
    """Add the deadline `due_s` of `subject` to heap `name`."""
    size = _size(state, name)
    entry = (due_s, subject)
    index = size
    while index > 0:
        parent = (index - 1) // 2
        above = _read(state, name, parent)
        if above <= entry:
            break
        _write(state, name, index, above)
        index = parent
    _write(state, name, index, entry)
    _resize(state, name, size + 1)


def pop_due(state: State, name: bytes, time_s: int) -> list[Entry]:
    """Remove and return every entry with `due_s <= time_s`, by (due_s, subject)."""
    popped: list[Entry] = []
    size = _size(state, name)
    while size and _read(state, name, 0)[0] <= time_s:
        popped.append(_read(state, name, 0))
        size -= 1
        last = _read(state, name, size)
        state.delete(_slot_key(name, size))
        if size:
            _sift_down(state, name, last, size)
    if popped:
        _resize(state, name, size)
    return popped


def _sift_down(state: State, name: bytes, entry: Entry, size: int) -> None:
    """Place `entry` at the root of a heap of `size` slots, moving smaller children up."""
    index = 0
    while True:
        child = 2 * index + 1
        if child >= size:
            break
        smallest = _read(state, name, child)
        if child + 1 < size:
            right = _read(state, name, child + 1)
            if right < smallest:
                child, smallest = child + 1, right
        if entry <= smallest:
            break
        _write(state, name, index, smallest)
        index = child
    _write(state, name, index, entry)


def pending(state: State, name: bytes) -> int:
    """Entries not yet popped (skipped ones included): for tests and metrics."""
    return _size(state, name)
