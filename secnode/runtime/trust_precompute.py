"""Trust epochs computed off the critical path: a `contracts.epochs.ScoreCache` for the node.

When block h commits and block h + 1 will fix an epoch's inputs (`epoch_fixed_after`), the node
starts computing that epoch in a worker thread, from committed state: attestations never change
once committed, so reading them off the event loop is safe. The block that commits the epoch
(h + trust_epoch_delay) asks `scores_for(pending)`; it gets the result only if it is ready and
was computed for exactly that pending epoch (same inputs count, inputs root and parameters),
and otherwise computes it itself. Either way the committed records are the same: the cache can
make a block faster, never different.

Before publishing, the worker checks that the leaves it read hash to the predicted inputs root,
so a result is never computed from anything but the epoch's inputs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Final

from contracts.eigentrust import TrustScore, compute_scores
from contracts.epochs import PendingEpoch, epoch_fixed_after
from contracts.trust import attestation_key, decode_attestation
from ledger.merkle import leaf_hash, merkle_root
from ledger.state import State

log = logging.getLogger("secnode.trust")

KEPT: Final = 2
"""Results kept: an epoch's, and the next one's while it is being computed."""

Key = tuple[int, bytes, object]
Spawn = Callable[[Callable[[], None]], None]
"""Runs a function in a worker thread (the node: a TaskGroup task around asyncio.to_thread)."""


def _key(pending: PendingEpoch) -> Key:
    return (pending.attestations, pending.inputs_root, pending.parameters)


class PrecomputedScores:
    """Implements contracts.epochs.ScoreCache (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._results: dict[Key, list[TrustScore]] = {}
        self._started: dict[Key, None] = {}
        self.hits = 0
        """Epochs committed from a precomputed result (for tests and logs)."""

    def scores_for(self, pending: PendingEpoch) -> list[TrustScore] | None:
        with self._lock:
            scores = self._results.get(_key(pending))
            if scores is not None:
                self.hits += 1
            return scores

    def after_commit(self, state: State, height: int, spawn: Spawn) -> None:
        """Called once block `height` is committed: start the epoch it ends, if any."""
        pending = epoch_fixed_after(state, height)
        if pending is None:
            return
        key = _key(pending)
        with self._lock:
            if key in self._started:
                return
            self._started[key] = None
            while len(self._started) > 4 * KEPT:
                del self._started[next(iter(self._started))]
        spawn(lambda: self._compute(state, pending))

    def _compute(self, state: State, pending: PendingEpoch) -> None:
        started = time.perf_counter()
        leaves = []
        for sequence in range(pending.attestations):
            raw = state.get_committed(attestation_key(sequence))
            if raw is None:
                log.warning("epoch %d: attestation %d is not committed", pending.epoch, sequence)
                return
            leaves.append(raw)
        if merkle_root([leaf_hash(leaf) for leaf in leaves]) != pending.inputs_root:
            log.warning("epoch %d: committed leaves do not match its inputs root", pending.epoch)
            return
        scores = compute_scores([decode_attestation(leaf) for leaf in leaves], pending.parameters)
        with self._lock:
            self._results[_key(pending)] = scores
            while len(self._results) > KEPT:
                del self._results[next(iter(self._results))]
        log.info(
            "trust epoch %d precomputed: %d attestations, %d accounts in %.2f s",
            pending.epoch,
            pending.attestations,
            len(scores),
            time.perf_counter() - started,
        )
