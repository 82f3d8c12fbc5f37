"""Trust epochs: when an epoch's inputs are fixed, when its scores are committed, the records.

Theory of operation (docs/protocol.md §17.3). With E = trust_epoch_blocks and
D = trust_epoch_delay, both read from state when the block hook runs:

* **Inputs fixed.** The hook at the start of block b, when b - 1 is a positive multiple of E,
  fixes epoch k (k = 1, 2, ... in order) with input height h = b - 1: its inputs are the
  attestations recorded in blocks 1..h (the first `count` of the log), its inputs root is the
  log's root at that moment, and its parameters are the trust parameters and the genesis
  pre-trusted set at that moment. These go into the pending queue.
* **Scores committed.** The hook at the start of block h + D (D >= 1, so at the earliest the
  same hook that fixed the inputs) computes the epoch (`contracts.eigentrust.compute_scores`,
  run on int64 arrays by `contracts.eigentrust_numpy` when its bounds hold)
  and writes every account's record under ``trust:score:`` || address, the epoch record under
  ``trust:epoch`` (the latest) and ``trust:epoch:`` || k (8 bytes, kept for every epoch).

The D blocks in between let a node compute the epoch off the critical path, after it commits
block h (`ScoreCache`); the hook uses a cached result when one is given and computes it
otherwise, so the committed records are the same either way.

This module also declares the trust plug-in (`CONTRACT`: `trust.attest` from `contracts.trust`
plus this hook). It lives here, not in trust.py, because the hook reads trust.py's log, so only
this module sees both halves.

Invariants: the universe of an epoch contains that of every earlier one (inputs only grow,
the pre-trusted set is fixed at genesis), so after epoch k is committed every score record is
epoch k's; a record is only rewritten when its value changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Protocol

import msgpack

from contracts.eigentrust import (
    RULE_VERSION,
    SCALE,
    TrustParameters,
    TrustScore,
    scores_root,
)
from contracts.eigentrust_numpy import epoch_scores
from contracts.errors import AlreadyAttested, AttestWindowClosed, InvalidSubject, OrderNotCompleted
from contracts.trust import (
    Attest,
    apply_attest,
    attestations_of,
    frontier_root,
    get_counts,
    get_log,
    load_attestations,
    log_range,
    log_root,
    log_size,
    logged_attestation,
)
from ledger.accounts import get_parameter
from ledger.encoding import decode, encode
from ledger.errors import DecodeError, StoreError
from ledger.execution import BlockContext, TxKind
from ledger.genesis import PRETRUSTED_KEY
from ledger.keys import format_address
from ledger.plugins import Contract
from ledger.state import State, StateReader

PENDING_KEY: Final = b"trust:pending"
EPOCH_KEY: Final = b"trust:epoch"
EPOCH_PREFIX: Final = b"trust:epoch:"
SCORE_PREFIX: Final = b"trust:score:"


def score_key(address: bytes) -> bytes:
    return SCORE_PREFIX + address


def epoch_key(epoch: int) -> bytes:
    return EPOCH_PREFIX + epoch.to_bytes(8, "big")


def encode_score_record(score: TrustScore) -> bytes:
    """The state record of one account's score: encode([score, positive, negative])."""
    return encode([score.score, score.positive, score.negative])


@dataclass(frozen=True, slots=True)
class PendingEpoch:
    """An epoch whose inputs are fixed and whose scores are not committed yet."""

    epoch: int
    """Epoch number, 1 for the first."""
    input_height: int
    """The last block whose attestations are inputs."""
    due_height: int
    """The block whose hook commits the scores (input_height + trust_epoch_delay)."""
    attestations: int
    """Number of inputs: attestations 0 .. attestations - 1."""
    inputs_root: bytes
    """RFC 6962 root over the inputs' leaf bytes."""
    parameters: TrustParameters
    """What the epoch is computed with."""

    def to_wire(self) -> list[Any]:
        return [
            self.epoch,
            self.input_height,
            self.due_height,
            self.attestations,
            self.inputs_root,
            self.parameters.to_wire(),
        ]

    @classmethod
    def from_wire(cls, value: list[Any]) -> PendingEpoch:
        epoch, input_height, due_height, attestations, root, parameters = value
        return cls(
            epoch, input_height, due_height, attestations, root, parse_parameters(parameters)
        )


@dataclass(frozen=True, slots=True)
class EpochRecord:
    """A committed epoch, as stored under trust:epoch and trust:epoch:<k>."""

    epoch: int
    """Epoch number."""
    input_height: int
    """The last block whose attestations are inputs."""
    committed_height: int
    """The block that wrote the scores."""
    attestations: int
    """Number of inputs."""
    accounts: int
    """Number of accounts scored (the leaves of the scores root)."""
    inputs_root: bytes
    """RFC 6962 root over the inputs' leaf bytes, in sequence order."""
    scores_root: bytes
    """RFC 6962 root over encode([address, score, positive, negative]), by address."""
    parameters: TrustParameters
    """What the epoch was computed with."""

    def to_wire(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "input_height": self.input_height,
            "committed_height": self.committed_height,
            "attestations": self.attestations,
            "accounts": self.accounts,
            "inputs_root": self.inputs_root,
            "scores_root": self.scores_root,
            "parameters": self.parameters.to_wire(),
        }

    def encode(self) -> bytes:
        return encode(self.to_wire())


_RECORD_FIELDS: Final = frozenset(
    {
        "epoch",
        "input_height",
        "committed_height",
        "attestations",
        "accounts",
        "inputs_root",
        "scores_root",
        "parameters",
    }
)
_PARAMETER_FIELDS: Final = frozenset(
    {
        "version",
        "min_order_fen",
        "scale",
        "iterations",
        "alpha_ppm",
        "pair_cap",
        "pair_window_s",
        "pretrusted",
    }
)


def _count(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise DecodeError(f"{what} must be a non-negative integer, got {value!r}")
    return value


def _hash(value: Any, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != 32:
        raise DecodeError(f"{what} must be 32 bytes")
    return value


def parse_parameters(value: Any) -> TrustParameters:
    """Trust parameters from their wire map (untrusted input: every field is checked)."""
    if not isinstance(value, dict) or set(value) != _PARAMETER_FIELDS:
        raise DecodeError(f"trust parameters must be a map of {sorted(_PARAMETER_FIELDS)}")
    if value["version"] != RULE_VERSION:
        raise DecodeError(
            f"trust parameters have rule version {value['version']!r}; this node computes "
            f"version {RULE_VERSION} (docs/protocol.md §17.4.1)"
        )
    if value["scale"] != SCALE:
        raise DecodeError(f"trust parameters have scale {value['scale']!r}, not {SCALE}")
    pretrusted = value["pretrusted"]
    if not isinstance(pretrusted, list) or not all(
        isinstance(a, bytes) and len(a) == 20 for a in pretrusted
    ):
        raise DecodeError("pretrusted must be a list of 20-byte addresses")
    if pretrusted != sorted(set(pretrusted)):
        raise DecodeError("pretrusted must be sorted and without duplicates")
    iterations = _count(value["iterations"], "iterations")
    alpha = _count(value["alpha_ppm"], "alpha_ppm")
    cap = _count(value["pair_cap"], "pair_cap")
    window = _count(value["pair_window_s"], "pair_window_s")
    minimum = _count(value["min_order_fen"], "min_order_fen")
    if alpha > 1_000_000 or cap < 1 or window < 1 or minimum < 1:
        raise DecodeError(
            "alpha_ppm must be <= 10**6, pair_cap, pair_window_s and min_order_fen >= 1"
        )
    return TrustParameters(iterations, alpha, cap, window, tuple(pretrusted), minimum)


def parse_epoch_record(raw: bytes) -> EpochRecord:
    """An epoch record from its bytes (untrusted input: canonical decoding, every field)."""
    value = decode(raw)
    if not isinstance(value, dict) or set(value) != _RECORD_FIELDS:
        raise DecodeError(f"an epoch record is a map of {sorted(_RECORD_FIELDS)}")
    return EpochRecord(
        epoch=_count(value["epoch"], "epoch"),
        input_height=_count(value["input_height"], "input_height"),
        committed_height=_count(value["committed_height"], "committed_height"),
        attestations=_count(value["attestations"], "attestations"),
        accounts=_count(value["accounts"], "accounts"),
        inputs_root=_hash(value["inputs_root"], "inputs_root"),
        scores_root=_hash(value["scores_root"], "scores_root"),
        parameters=parse_parameters(value["parameters"]),
    )


def parse_score_record(raw: bytes) -> tuple[int, int, int]:
    """(score, positive, negative) from a score record (untrusted input)."""
    value = decode(raw)
    if not isinstance(value, list) or len(value) != 3:
        raise DecodeError("a score record is [score, positive, negative]")
    score, positive, negative = (_count(v, "score record entry") for v in value)
    return score, positive, negative


# --- reads ------------------------------------------------------------------------------------


def get_pretrusted(state: State) -> tuple[bytes, ...]:
    raw = state.get(PRETRUSTED_KEY)
    return () if raw is None else tuple(msgpack.unpackb(raw))


def current_parameters(state: State) -> TrustParameters:
    return TrustParameters(
        iterations=get_parameter(state, "trust_iterations"),
        alpha_ppm=get_parameter(state, "trust_alpha_ppm"),
        pair_cap=get_parameter(state, "trust_pair_cap"),
        pair_window_s=get_parameter(state, "trust_pair_window_s"),
        pretrusted=get_pretrusted(state),
        min_order_fen=get_parameter(state, "trust_min_order_fen"),
    )


def get_epoch(state: State, epoch: int | None = None) -> EpochRecord | None:
    """The latest committed epoch, or epoch number `epoch`; None if there is none."""
    raw = state.get(EPOCH_KEY if epoch is None else epoch_key(epoch))
    return None if raw is None else parse_epoch_record(raw)


def get_score(state: State, address: bytes) -> tuple[int, int, int] | None:
    """(score, positive, negative) of `address` in the latest epoch; None if unscored."""
    raw = state.get(score_key(address))
    if raw is None:
        return None
    score, positive, negative = msgpack.unpackb(raw)
    return score, positive, negative


def get_pending(state: State) -> tuple[int, list[PendingEpoch]]:
    """(number of the next epoch, epochs whose inputs are fixed but scores not committed)."""
    raw = state.get(PENDING_KEY)
    if raw is None:
        return 1, []
    next_epoch, queue = decode(raw)
    return next_epoch, [PendingEpoch.from_wire(entry) for entry in queue]


# --- the block hook ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ComputedEpoch:
    """An epoch's scores with the bytes `commit_epoch` writes, so a worker can prepare all of
    it and the committing block only compares and writes."""

    scores: list[TrustScore]
    """Every account's score, by address (`compute_scores` of the epoch)."""
    records: list[bytes]
    """`encode_score_record` of each score, in the same order."""
    scores_root: bytes
    """`scores_root(scores)`."""


def prepare_epoch(scores: list[TrustScore]) -> ComputedEpoch:
    """`scores` with their records and root."""
    return ComputedEpoch(scores, list(map(encode_score_record, scores)), scores_root(scores))


class ScoreCache(Protocol):
    """Epochs computed ahead of time (see the module docstring). Must return exactly
    `prepare_epoch(compute_scores(...))` of the pending epoch's inputs and parameters, or None."""

    def scores_for(self, pending: PendingEpoch) -> ComputedEpoch | None: ...


def compute_epoch(state: State, pending: PendingEpoch) -> list[TrustScore]:
    """The scores of `pending` from the attestations in `state` (`compute_scores`' result, on
    int64 arrays when the bounds allow it)."""
    return epoch_scores(load_attestations(state, pending.attestations), pending.parameters)


def commit_epoch(
    state: State, pending: PendingEpoch, height: int, computed: ComputedEpoch
) -> EpochRecord:
    """Write `computed` (the epoch of `pending`) and the epoch record."""
    get = state.get
    for score, record in zip(computed.scores, computed.records, strict=True):
        key = SCORE_PREFIX + score.address
        if get(key) != record:
            state.set(key, record)
    epoch = EpochRecord(
        epoch=pending.epoch,
        input_height=pending.input_height,
        committed_height=height,
        attestations=pending.attestations,
        accounts=len(computed.scores),
        inputs_root=pending.inputs_root,
        scores_root=computed.scores_root,
        parameters=pending.parameters,
    )
    encoded = epoch.encode()
    state.set(EPOCH_KEY, encoded)
    state.set(epoch_key(epoch.epoch), encoded)
    return epoch


def epoch_fixed_after(state: State, height: int) -> PendingEpoch | None:
    """The epoch the hook of block `height + 1` will fix, predicted from `state` as of the end
    of block `height` (None if that block fixes none). The hook reads exactly these values at
    the start of block `height + 1`, so a result computed from the prediction is the epoch's."""
    if height < 1 or height % get_parameter(state, "trust_epoch_blocks") != 0:
        return None
    next_epoch, _ = get_pending(state)
    count, frontier = get_log(state)
    return PendingEpoch(
        epoch=next_epoch,
        input_height=height,
        due_height=height + get_parameter(state, "trust_epoch_delay"),
        attestations=count,
        inputs_root=frontier_root(frontier),
        parameters=current_parameters(state),
    )


def run_trust_epochs(state: State, context: BlockContext, cache: ScoreCache | None = None) -> None:
    """Block hook: fix the inputs of a new epoch, commit the epochs that are due."""
    next_epoch, queue = get_pending(state)
    height = context.height
    changed = False
    fixed = epoch_fixed_after(state, height - 1)
    if fixed is not None:
        queue.append(fixed)
        next_epoch += 1
        changed = True
    for pending in [entry for entry in queue if entry.due_height <= height]:
        computed = None if cache is None else cache.scores_for(pending)
        if computed is None:
            computed = prepare_epoch(compute_epoch(state, pending))
        commit_epoch(state, pending, height, computed)
        queue.remove(pending)
        changed = True
    if changed:
        state.set(PENDING_KEY, encode([next_epoch, [entry.to_wire() for entry in queue]]))


# --- read-only queries ---
# For readers outside execution (the RPC reads a `ledger.store.CommittedState`). Each answer
# carries the state key and the record bytes it was read from, which is what a state proof of
# it needs; a malformed record is a corrupt store (`StoreError`).


@dataclass(frozen=True, slots=True)
class StoredEpoch:
    """A committed epoch record with where it is stored."""

    key: bytes
    """The state key read: trust:epoch (the latest) or trust:epoch:<k>."""
    raw: bytes
    """The record bytes."""
    record: EpochRecord
    """The decoded record."""


@dataclass(frozen=True, slots=True)
class StoredScore:
    """An account's score record with where it is (or would be) stored."""

    key: bytes
    """The state key: trust:score:<address>."""
    raw: bytes | None
    """The record bytes; None if the account is unscored (its score is 0)."""
    score: int
    """Trust in units of 1/SCALE of the whole."""
    positive: int
    """+1 attestations about the account counted in the latest epoch."""
    negative: int
    """-1 attestations about the account counted in the latest epoch."""


def read_epoch(state: StateReader, epoch: int | None = None) -> StoredEpoch | None:
    """The latest committed epoch (`epoch` None) or epoch number `epoch`; None if there is none."""
    key = EPOCH_KEY if epoch is None else epoch_key(epoch)
    raw = state.get(key)
    if raw is None:
        return None
    try:
        return StoredEpoch(key, raw, parse_epoch_record(raw))
    except DecodeError as exc:
        raise StoreError(f"epoch record {'latest' if epoch is None else epoch}: {exc}") from None


def read_score(state: StateReader, address: bytes) -> StoredScore:
    """The score record of `address` in the latest epoch (all zero if it has none)."""
    key = score_key(address)
    raw = state.get(key)
    if raw is None:
        return StoredScore(key, None, 0, 0, 0)
    try:
        score, positive, negative = parse_score_record(raw)
    except DecodeError as exc:
        raise StoreError(f"score record of {format_address(address)}: {exc}") from None
    return StoredScore(key, raw, score, positive, negative)


CONTRACT: Final = Contract(
    name="trust",
    kinds=(TxKind(Attest, apply_attest),),
    block_hooks=(run_trust_epochs,),
    errors=(OrderNotCompleted, InvalidSubject, AttestWindowClosed, AlreadyAttested),
    queries=(
        get_counts,
        log_root,
        get_epoch,
        get_score,
        log_size,
        logged_attestation,
        log_range,
        attestations_of,
        read_epoch,
        read_score,
    ),
)
"""The trust plug-in: `trust.attest` and the epoch hook (collected by `contracts.CONTRACTS`)."""
