"""The application interface: what the consensus core asks of the ledger.

The core treats blocks as opaque payloads identified by a digest (the block header hash). It
calls these methods synchronously; they must be deterministic functions of their arguments and
of blocks the core has already handed over, and must not call back into the replica.

Guarantees the core gives the application:

* `make_proposal(seq, parent, ...)` is called only when `can_build_on(seq, parent)` has just
  answered True. The core's own bookkeeping cannot promise that by itself: after a restart, or
  once a conflicting block was committed at a lower height, the core may still hold a block the
  application has dropped (or never executed), so the application is asked, not assumed.
* `validate_proposal(p, ...)` is called only when the block `parent` at `seq - 1` is delivered
  (`CommitBlock`) or the core accepted it before; if the application cannot execute on it, it
  raises `InvalidProposal` like for any other unusable block.
* `CommitBlock` actions arrive strictly in height order, exactly once per height, and each block
  was either validated by this replica or checked with `verify_payload` against its certificate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Proposal:
    """A block offered for ordering."""

    seq: int
    """Height of the block."""
    parent: bytes
    """Header hash of the block at `seq - 1`."""
    digest: bytes
    """Header hash of this block (32 bytes)."""
    payload: bytes
    """The encoded block."""


class Application(Protocol):
    """Implemented by the node (ledger + mempool) and by the simulator's toy chain."""

    def can_build_on(self, seq: int, parent: bytes) -> bool:
        """True if the application holds the state after block `parent` at height `seq - 1`
        (committed, or validated/made by it and not dropped since), so `make_proposal(seq,
        parent, ...)` can build on it. Cheap, no side effects."""
        ...

    def make_proposal(
        self, seq: int, parent: bytes, now: float, *, required: bool
    ) -> Proposal | None:
        """Build the next block on top of `parent`, or None if there is nothing to propose.

        `required` is True when `empty_block_interval` has passed since the last block: then a
        block must be returned even if it carries no transactions (the heartbeat that keeps
        block time moving and lets replicas notice a dead primary).
        """
        ...

    def full_block_ready(self, seq: int, parent: bytes) -> bool:
        """True if a block built on `parent` now would be full: at least as many transactions
        are ready as a block may carry, not counting those already in the blocks between the
        committed head and `parent`. The primary then proposes at once instead of waiting
        `batch_wait` for more (docs/consensus.md, "Pipelining and proposal timing").

        Called only right after `can_build_on(seq, parent)` answered True, on inputs while
        transactions are pending and the in-flight window has room, so it must be cheap (no
        block building). An estimate is fine: a wrong True only sends a smaller block early.
        """
        ...

    def validate_proposal(self, proposal: Proposal, now: float, *, fresh: bool = False) -> None:
        """Raise `consensus.errors.InvalidProposal` unless the block may be ordered.

        Deterministic checks: parent and height match, the payload hashes to the digest, the
        timestamp is after the parent's, the state root is right. Checks against `now`: a
        timestamp too far in the future is always refused; one too far in the past only when
        `fresh` is True, i.e. the block comes in a normal-case PRE-PREPARE of the view it was
        built in. A block prepared in an earlier view and re-proposed in a NEW-VIEW (or a
        primary's own block re-read after a restart) is not fresh and must still pass however
        old it is (docs/consensus.md, "Block time bounds").
        """
        ...

    def oldest_waiting_since(self) -> float | None:
        """When (on the clock the replica is given) the oldest pending transaction that could
        execute on the committed state started waiting; None if there is none.

        Drives the request timer: a backup that sees one wait too long while it is in normal
        operation votes for a view change (the primary may be censoring it). Called on ticks,
        so it must be cheap.
        """
        ...

    def verify_payload(self, seq: int, digest: bytes, payload: bytes) -> None:
        """Raise `InvalidProposal` unless `payload` is a block at `seq` whose hash is `digest`.

        Cheap and stateless; used for blocks that arrive with a commit certificate (catch-up,
        view-change attachments) where the full validation is the execution itself.
        """
        ...
