"""The message log: per-height slots holding votes of the current view, proofs and payloads.

Invariants:

* A slot exists only for heights inside the watermarks (low, high]; `discard_through(low)`
  garbage-collects everything at or below a new stable checkpoint (or a delivered height).
* Votes (pre-prepare, prepares, commits) are kept for the current view only; `reset_view` drops
  them when the view changes. Proofs (`prepared`), payloads and certificate signatures survive
  view changes because the view-change protocol and delivery need them.
* At most one vote per (sender, kind) is stored per slot: a duplicate is recognised without
  verifying it again, a conflicting second vote is equivocation and is never counted.
"""

from __future__ import annotations

from consensus.messages import Certify, Commit, Prepare, PreparedProof, PrePrepare


class Slot:
    """Everything known about one height."""

    __slots__ = (
        "certifies",
        "commits",
        "payloads",
        "pending",
        "pre_prepare",
        "prepared",
        "prepared_payload",
        "prepares",
        "seq",
    )

    def __init__(self, seq: int) -> None:
        self.seq = seq
        self.pre_prepare: PrePrepare | None = None
        """The accepted (validated, chained) pre-prepare of the current view."""
        self.pending: PrePrepare | None = None
        """A validly signed pre-prepare of the current view waiting for its parent."""
        self.prepares: dict[bytes, Prepare] = {}
        """Current-view prepares by sender."""
        self.commits: dict[bytes, Commit] = {}
        """Current-view commits by sender."""
        self.certifies: dict[bytes, Certify] = {}
        """Certificate signatures by sender (view-less)."""
        self.prepared: PreparedProof | None = None
        """The latest-view prepared proof this replica assembled or restored."""
        self.prepared_payload = b""
        """The block of `prepared`."""
        self.payloads: dict[bytes, bytes] = {}
        """Blocks known valid (validated or checked against their digest), by digest."""

    def reset_view(self) -> None:
        """Forget the current view's votes (on entering a new view)."""
        self.pre_prepare = None
        self.pending = None
        self.prepares.clear()
        self.commits.clear()

    def matching_prepares(self, digest: bytes) -> list[Prepare]:
        return [p for p in self.prepares.values() if p.digest == digest]

    def matching_commits(self, digest: bytes) -> int:
        return sum(1 for c in self.commits.values() if c.digest == digest)

    def certify_signatures(self, digest: bytes) -> dict[bytes, bytes]:
        return {s: c.signature for s, c in self.certifies.items() if c.digest == digest}


class MessageLog:
    """Slots by height above the low watermark."""

    __slots__ = ("_slots",)

    def __init__(self) -> None:
        self._slots: dict[int, Slot] = {}

    def slot(self, seq: int) -> Slot:
        """The slot for `seq`, created empty if needed (callers check the watermarks)."""
        slot = self._slots.get(seq)
        if slot is None:
            slot = self._slots[seq] = Slot(seq)
        return slot

    def peek(self, seq: int) -> Slot | None:
        return self._slots.get(seq)

    def heights(self) -> list[int]:
        return sorted(self._slots)

    def discard_through(self, seq: int) -> None:
        for height in [h for h in self._slots if h <= seq]:
            del self._slots[height]

    def discard(self, seq: int) -> None:
        self._slots.pop(seq, None)

    def reset_view(self) -> None:
        for slot in self._slots.values():
            slot.reset_view()

    def __len__(self) -> int:
        return len(self._slots)
