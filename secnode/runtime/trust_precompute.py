"""Trust epochs computed off the critical path: a `contracts.epochs.ScoreCache` for the node.

Theory of operation. `after_commit` runs on the event loop after every block and does almost
nothing there: it notes how long the attestation log now is and which epochs wait for scores
(the one the next block fixes, `epoch_fixed_after`, and, on the first call after a start, those
already pending in state), then hands the work to one worker at a time in a thread:

1. append the newly committed attestations to `contracts.trust_inputs.TrustInputs` (read with
   `get_committed`: attestations never change once committed, so this is safe off the loop);
   at start this replays the whole log once, which is the rebuild;
2. when the inputs reach an epoch's attestation count, check that they hash to its inputs root,
   and compute its scores on int64 arrays (`contracts.eigentrust_numpy`, well under a second at
   10**6 attestations), falling back to the Python-integer path if a bound does not hold.

The block that commits the epoch (h + trust_epoch_delay) asks `scores_for(pending)`: it gets the
result only if it is ready and was computed for exactly that pending epoch (same inputs count,
inputs root and parameters); otherwise it computes the epoch itself. Either way the committed
records are the same: the cache can make a block faster, never different.

Invariant: only the thread holding `_worker` touches `_inputs`; everything shared with the loop
(`_target`, `_queue`, `_results`) is read and written under `_lock`, never held during work.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Final

from contracts.eigentrust import compute_scores
from contracts.eigentrust_numpy import scores_from_columns
from contracts.epochs import (
    ComputedEpoch,
    PendingEpoch,
    epoch_fixed_after,
    get_pending,
    prepare_epoch,
)
from contracts.trust import attestation_key, decode_attestation, log_size
from contracts.trust_inputs import TrustInputs
from ledger.state import State

log = logging.getLogger("secnode.trust")

KEPT: Final = 2
"""Results kept: an epoch's, and the next one's while it is being computed."""
WAIT_S: Final = 60.0
"""Longest a committing block waits for the worker already computing its epoch (computing it
again in the block would take longer; the wait only guards against a stuck worker)."""

Key = tuple[int, bytes, object]
Spawn = Callable[[Callable[[], None]], None]
"""Runs a function in a worker thread (the node: a TaskGroup task around asyncio.to_thread)."""


def _key(pending: PendingEpoch) -> Key:
    return (pending.attestations, pending.inputs_root, pending.parameters)


class PrecomputedScores:
    """Implements contracts.epochs.ScoreCache (see the module docstring)."""

    def __init__(self, on_epoch: Callable[[float], None] | None = None) -> None:
        self._on_epoch = on_epoch
        """Told the seconds each precomputed epoch took (the node's metrics), in the worker."""
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._worker = threading.Lock()
        self._computing: Key | None = None
        self._inputs = TrustInputs()
        self._state: State | None = None
        self._target = 0
        self._queue: list[PendingEpoch] = []
        self._results: dict[Key, ComputedEpoch] = {}
        self._started: dict[Key, None] = {}
        self.hits = 0
        """Epochs committed from a precomputed result (for tests and logs)."""

    def scores_for(self, pending: PendingEpoch) -> ComputedEpoch | None:
        key = _key(pending)
        deadline = time.monotonic() + WAIT_S
        with self._lock:
            while key not in self._results and self._computing == key:
                if not self._done.wait(deadline - time.monotonic()):
                    break
            computed = self._results.get(key)
            if computed is not None:
                self.hits += 1
            return computed

    def after_commit(self, state: State, height: int, spawn: Spawn) -> None:
        """Called once block `height` is committed: queue the new attestations and the epoch it
        ends, if any, for the worker."""
        epochs = get_pending(state)[1] if self._state is None else []
        fixed = epoch_fixed_after(state, height)
        if fixed is not None:
            epochs.append(fixed)
        with self._lock:
            self._state = state
            self._target = max(self._target, log_size(state))
            for pending in epochs:
                key = _key(pending)
                if key not in self._started:
                    self._started[key] = None
                    self._queue.append(pending)
            while len(self._started) > 4 * KEPT:
                del self._started[next(iter(self._started))]
            busy = self._busy()
        if busy:
            spawn(self._work)

    def _busy(self) -> bool:
        """Whether the worker has something to do (call with `_lock` held)."""
        return bool(self._queue) or self._target > self._inputs.count

    def _work(self) -> None:
        """The worker: drain, then look again, so work queued while it was finishing is done
        by it (a second worker finding `_worker` taken just leaves)."""
        while self._worker.acquire(blocking=False):
            try:
                self._drain()
            finally:
                self._worker.release()
            with self._lock:
                if not self._busy():
                    return

    def _drain(self) -> None:
        while True:
            with self._lock:
                state, target = self._state, self._target
                pending = min(self._queue, key=lambda entry: entry.attestations, default=None)
                if pending is not None:
                    self._queue.remove(pending)
                    self._computing = _key(pending)
            try:
                if state is None:
                    return
                stop = target if pending is None else pending.attestations
                if not self._catch_up(state, stop) or pending is None:
                    return
                if self._inputs.count == pending.attestations:
                    self._compute(state, pending)
                else:
                    log.info("epoch %d: its inputs were passed before it was queued", pending.epoch)
            finally:
                with self._lock:
                    self._computing = None
                    self._done.notify_all()

    def _catch_up(self, state: State, stop: int) -> bool:
        """Append attestations up to number `stop`; False if one is not committed."""
        inputs = self._inputs
        while inputs.count < stop:
            raw = state.get_committed(attestation_key(inputs.count))
            if raw is None:
                log.warning("attestation %d is not committed", inputs.count)
                return False
            inputs.append(raw)
        return True

    def _compute(self, state: State, pending: PendingEpoch) -> None:
        started = time.perf_counter()
        if self._inputs.root() != pending.inputs_root:
            log.warning("epoch %d: committed leaves do not match its inputs root", pending.epoch)
            self._inputs = TrustInputs()  # replayed from the committed log, and retried
            with self._lock:
                self._started.pop(_key(pending), None)
            return
        columns = self._inputs.columns()
        scores = None if columns is None else scores_from_columns(columns, pending.parameters)
        if scores is None:  # an int64 bound does not hold: the Python-integer path
            leaves = map(state.get_committed, map(attestation_key, range(pending.attestations)))
            attestations = [decode_attestation(leaf) for leaf in leaves if leaf is not None]
            scores = compute_scores(attestations, pending.parameters)
        computed = prepare_epoch(scores)
        with self._lock:
            self._results[_key(pending)] = computed
            while len(self._results) > KEPT:
                del self._results[next(iter(self._results))]
        seconds = time.perf_counter() - started
        if self._on_epoch is not None:
            self._on_epoch(seconds)
        log.info(
            "trust epoch %d precomputed: %d attestations, %d accounts in %.2f s",
            pending.epoch,
            pending.attestations,
            len(scores),
            seconds,
        )
