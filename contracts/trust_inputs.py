"""Trust epoch inputs kept current as attestations commit: the attestation log as int64 columns.

Theory of operation. `TrustInputs` mirrors the attestation log (`contracts.trust`): leaf k is
appended as attestation k commits (`append`, a few microseconds: one decode, five column
appends, one leaf hash), so an epoch never reloads and decodes the whole log. It keeps:

* one growing int64 column per field the rules read (attester and subject as account numbers,
  value, order total, completion time), so an epoch's inputs are a copy of five buffers
  (`columns`, milliseconds at 10**6 attestations) ready for `contracts.eigentrust_numpy`;
* account numbers in order of first appearance, so the accounts of the first k attestations
  are exactly numbers 0 .. (largest number in them), whatever came later;
* the frontier of the log's RFC 6962 tree (the same fold as `contracts.trust`), so the root of
  what it holds is known in O(log count) and is checked against an epoch's inputs root before
  the columns are used: the columns are the epoch's inputs, or they are not used at all.

The columns hold raw fields, not local trust: the window, minimum value and cap are epoch
parameters that governance may change between epochs, so nothing derived from them is kept.

Not consensus state: every node rebuilds it from the committed log (at start, in a worker
thread) and the epoch's result is the same with or without it.
"""

from __future__ import annotations

from array import array
from typing import Final

import msgpack
import numpy as np

from contracts.eigentrust_numpy import Columns
from contracts.trust import extend_frontier, frontier_root

_LOW: Final = -(2**63)
_HIGH: Final = 2**63 - 1


class TrustInputs:
    """The first `count` attestations of the log as columns (see the module docstring)."""

    def __init__(self) -> None:
        self.count = 0
        """Attestations appended: the log's leaves 0 .. count - 1."""
        self._numbers: dict[bytes, int] = {}
        self._addresses: list[bytes] = []
        self._columns = tuple(array("q") for _ in range(5))
        self._frontier: list[bytes] = []
        self._fits = True

    def append(self, leaf: bytes) -> None:
        """Append leaf number `count`: the canonical bytes of an attestation in the log."""
        _, attester, subject, value, total, completed_s, _ = msgpack.unpackb(leaf)
        numbers = self._numbers
        attester_number = numbers.get(attester)
        if attester_number is None:
            attester_number = numbers[attester] = len(self._addresses)
            self._addresses.append(attester)
        subject_number = numbers.get(subject)
        if subject_number is None:
            subject_number = numbers[subject] = len(self._addresses)
            self._addresses.append(subject)
        if not (_LOW <= value <= _HIGH and _LOW <= total <= _HIGH and _LOW <= completed_s <= _HIGH):
            # Kept aligned with a placeholder; `columns` refuses from now on (Python ints only).
            self._fits = False
            value = total = completed_s = 0
        attesters, subjects, values, totals, times = self._columns
        attesters.append(attester_number)
        subjects.append(subject_number)
        values.append(value)
        totals.append(total)
        times.append(completed_s)
        extend_frontier(self._frontier, self.count, leaf)
        self.count += 1

    def root(self) -> bytes:
        """RFC 6962 root over the leaves appended so far."""
        return frontier_root(self._frontier)

    def columns(self) -> Columns | None:
        """A copy of the columns (for a worker thread); None if a field does not fit int64."""
        if not self._fits:
            return None
        copies = [np.frombuffer(column, dtype=np.int64).copy() for column in self._columns]
        return Columns(list(self._addresses), *copies)
