"""A toy chained ledger implementing `consensus.app.Application` for the simulator and tests.

A block is the msgpack list [seq, parent, timestamp_ms, proposer tag, tx ids, new validator keys]
(plain msgpack: the toy chain needs speed, not the ledger's canonical-form checks); its digest is
SHA-256 over a domain tag and those bytes. Validation is deterministic like the real
ledger's: height and parent must match, the parent must be known (committed or validated
before), the timestamp must exceed the parent's and may be at most `max_drift` ahead of the
local clock. Committed blocks, certificates and validator changes are the durable part (they
survive a simulated crash); validated-but-uncommitted blocks and the mempool are volatile.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import msgpack

from consensus.app import Proposal
from consensus.errors import InvalidProposal, UnjudgeableProposal
from ledger.certificates import CommitCertificate
from ledger.validators import ValidatorSet

GENESIS_DIGEST = hashlib.sha256(b"SEC/sim-genesis/v1").digest()


def block_digest(payload: bytes) -> bytes:
    return hashlib.sha256(b"SEC/sim-block/v1" + payload).digest()


@dataclass(frozen=True, slots=True)
class ToyBlock:
    """The decoded toy block."""

    seq: int
    """Height."""
    parent: bytes
    """Parent digest."""
    timestamp_ms: int
    """Proposer's clock, strictly increasing along the chain."""
    proposer: bytes
    """Tag of the proposing instance (twins differ here)."""
    txs: tuple[int, ...]
    """Transaction ids."""
    validators: tuple[bytes, ...]
    """Public keys of a new validator set, or empty."""

    def encode(self) -> bytes:
        fields = [
            self.seq,
            self.parent,
            self.timestamp_ms,
            self.proposer,
            self.txs,
            self.validators,
        ]
        packed: bytes = msgpack.packb(fields, use_bin_type=True)
        return packed

    @classmethod
    def decode(cls, payload: bytes) -> ToyBlock:
        try:
            value: Any = msgpack.unpackb(payload, raw=False, strict_map_key=True)
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise InvalidProposal(f"block does not decode: {exc}") from exc
        if not isinstance(value, list) or len(value) != 6:
            raise InvalidProposal("block is not a 6-item list")
        seq, parent, timestamp, proposer, txs, validators = value
        if not (
            isinstance(seq, int)
            and isinstance(parent, bytes)
            and isinstance(timestamp, int)
            and isinstance(proposer, bytes)
            and isinstance(txs, list)
            and all(isinstance(t, int) for t in txs)
            and isinstance(validators, list)
            and all(isinstance(k, bytes) and len(k) == 32 for k in validators)
        ):
            raise InvalidProposal("block fields have the wrong types")
        return cls(seq, parent, timestamp, proposer, tuple(txs), tuple(validators))


class ToyChain:
    """In-memory chain + mempool; one per simulated node."""

    def __init__(self, tag: bytes, *, max_drift: float = 2.0, max_batch: int = 32) -> None:
        self.tag = tag
        self.max_drift_ms = int(max_drift * 1000)
        self.max_batch = max_batch
        # durable
        self.blocks: list[tuple[bytes, bytes, CommitCertificate]] = []
        self.timestamps: list[int] = [0]
        self.changes: list[tuple[int, int, ValidatorSet]] = []
        self.committed_tx: set[int] = set()
        """Transaction ids in committed blocks."""
        """(committed height, effective height, set) in commit order."""
        # volatile
        self.known: dict[bytes, tuple[int, int]] = {}
        self.mempool: dict[int, float] = {}
        """tx id -> local time it arrived."""
        self.in_flight: dict[int, int] = {}
        """tx id -> height of an uncommitted block that carries it (not proposed twice)."""
        self.censor: Callable[[int], bool] | None = None
        """Scenario instruction: this node's proposals leave out the transactions it matches."""
        self.planned_changes: dict[int, tuple[bytes, ...]] = {}
        """Scenario instruction: a proposal at this height carries a validator change."""

    @property
    def height(self) -> int:
        return len(self.blocks)

    @property
    def tip(self) -> bytes:
        return self.blocks[-1][0] if self.blocks else GENESIS_DIGEST

    def crash(self) -> None:
        """Lose the volatile state."""
        self.known.clear()
        self.mempool.clear()
        self.in_flight.clear()

    def add_transaction(self, tx: int, now: float = 0.0) -> None:
        self.mempool.setdefault(tx, now)

    def oldest_waiting_since(self) -> float | None:
        """Every toy transaction can execute: the oldest arrival time in the pool."""
        return min(self.mempool.values(), default=None)

    def _parent_timestamp(self, parent: bytes, seq: int) -> int | None:
        if 0 <= seq <= self.height:
            committed = GENESIS_DIGEST if seq == 0 else self.blocks[seq - 1][0]
            if committed == parent:
                return self.timestamps[seq]
        known = self.known.get(parent)
        if known is not None and known[0] == seq:
            return known[1]
        return None

    def can_build_on(self, seq: int, parent: bytes) -> bool:
        return self._parent_timestamp(parent, seq - 1) is not None

    def make_proposal(
        self, seq: int, parent: bytes, now: float, *, required: bool
    ) -> Proposal | None:
        parent_time = self._parent_timestamp(parent, seq - 1)
        if parent_time is None:
            return None
        txs = tuple(itertools.islice(self._candidates(), self.max_batch))
        change = self.planned_changes.get(seq, ())
        if not txs and not required and not change:
            return None
        block = ToyBlock(seq, parent, max(int(now * 1000), parent_time + 1), self.tag, txs, change)
        payload = block.encode()
        digest = block_digest(payload)
        self.known[digest] = (seq, block.timestamp_ms)
        for tx in txs:
            self.in_flight[tx] = seq
        return Proposal(seq, parent, digest, payload)

    def full_block_ready(self, seq: int, parent: bytes) -> bool:
        """At least `max_batch` pooled transactions are in no uncommitted block (this node's
        proposals leave out what its `censor` matches, so those do not count either)."""
        return sum(1 for _ in itertools.islice(self._candidates(), self.max_batch)) >= (
            self.max_batch
        )

    def _candidates(self) -> Iterator[int]:
        """Pooled transactions a new block may carry, in arrival order."""
        height = self.height
        censor = self.censor
        for tx in self.mempool:
            if self.in_flight.get(tx, 0) <= height and (censor is None or not censor(tx)):
                yield tx

    def validate_proposal(self, proposal: Proposal, now: float, *, fresh: bool = False) -> None:
        block = ToyBlock.decode(proposal.payload)
        if block.seq != proposal.seq or block.parent != proposal.parent:
            raise InvalidProposal("block header disagrees with the proposal's height or parent")
        if block_digest(proposal.payload) != proposal.digest:
            raise InvalidProposal("payload does not hash to the digest")
        parent_time = self._parent_timestamp(block.parent, block.seq - 1)
        if parent_time is None:
            raise UnjudgeableProposal(f"parent of block {block.seq} is unknown")
        if block.timestamp_ms <= parent_time:
            raise InvalidProposal("timestamp is not after the parent's")
        if block.timestamp_ms > int(now * 1000) + self.max_drift_ms:
            raise UnjudgeableProposal("timestamp too far in the future")
        if fresh and block.timestamp_ms < int(now * 1000) - self.max_drift_ms:
            raise UnjudgeableProposal("timestamp of a fresh proposal too far in the past")
        self.known[proposal.digest] = (block.seq, block.timestamp_ms)
        for tx in block.txs:
            self.in_flight[tx] = max(self.in_flight.get(tx, 0), block.seq)

    def verify_payload(self, seq: int, digest: bytes, payload: bytes) -> None:
        if block_digest(payload) != digest:
            raise InvalidProposal("payload does not hash to the digest")
        if ToyBlock.decode(payload).seq != seq:
            raise InvalidProposal("payload is a block of another height")

    def commit(
        self, seq: int, digest: bytes, payload: bytes, certificate: CommitCertificate
    ) -> ToyBlock:
        """Append a delivered block; raise `InvalidProposal` if it does not extend the chain."""
        block = ToyBlock.decode(payload)
        if seq != self.height + 1 or block.seq != seq:
            raise InvalidProposal(f"block {seq} delivered at height {self.height}")
        if block.parent != self.tip:
            raise InvalidProposal(f"block {seq} does not extend the committed tip")
        if block_digest(payload) != digest:
            raise InvalidProposal(f"block {seq} payload does not match its digest")
        self.blocks.append((digest, payload, certificate))
        self.timestamps.append(block.timestamp_ms)
        for tx in block.txs:
            self.mempool.pop(tx, None)
            self.in_flight.pop(tx, None)
            self.committed_tx.add(tx)
        if len(self.known) > 512:
            self.known = {d: v for d, v in self.known.items() if v[0] > seq}
        return block

    def committed_txs(self) -> set[int]:
        """Transaction ids in committed blocks."""
        return self.committed_tx

    def block(self, seq: int) -> tuple[bytes, bytes, CommitCertificate] | None:
        if 1 <= seq <= self.height:
            return self.blocks[seq - 1]
        return None
