"""What a replica asks its driver to do. Every input returns a list of these, in order.

Ordering contract (the driver must honour it; docs/consensus.md, "Action ordering contract"):

1. Actions are carried out in list order.
2. A `Persist` must be durable before any action after it in the same list is carried out
   (a driver may batch consecutive `Persist`s into one atomic write). This is what makes crash
   recovery safe: nothing is sent that a restarted replica would not know it signed.
3. A `CommitBlock` is executed (block and certificate stored durably) before the next input is
   fed to the replica; if the block schedules a validator-set change the driver reports it with
   `Replica.on_validator_set` before that next input too.
4. `SetTimer(deadline)` replaces the previous timer; call `on_tick(now)` at or after it.

Sends are best effort: the protocol tolerates loss (it re-sends and changes view).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from consensus.messages import Message
from consensus.records import Record
from ledger.certificates import CommitCertificate
from ledger.keys import Address


@dataclass(frozen=True, slots=True)
class Send:
    """Send `message` to one validator."""

    to: Address
    """Recipient address."""
    message: Message
    """The message."""


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Send `message` to every other consensus peer (validators and followers)."""

    message: Message
    """The message."""


@dataclass(frozen=True, slots=True)
class SetTimer:
    """Call `on_tick(now)` once the local clock reaches `deadline` (replaces earlier timers)."""

    deadline: float
    """Local clock time in seconds."""


@dataclass(frozen=True, slots=True)
class CommitBlock:
    """Execute and store the block decided at `seq`. Emitted once per height, in height order."""

    seq: int
    """Block height."""
    digest: bytes
    """Block header hash."""
    payload: bytes
    """The encoded block."""
    certificate: CommitCertificate
    """A quorum of commit signatures over the header hash."""


@dataclass(frozen=True, slots=True)
class Persist:
    """Store `record` durably before carrying out any later action of the same list."""

    record: Record
    """What to store."""


@dataclass(frozen=True, slots=True)
class DiscardRecords:
    """Records obsolete by `consensus.records.record_is_obsolete` may now be deleted."""

    through_seq: int
    """Stable checkpoint height."""
    before_view: int
    """Current view."""


@dataclass(frozen=True, slots=True)
class RequestCatchUp:
    """Fetch blocks `from_height..to_height` with their commit certificates, then feed them
    back one by one with `Replica.on_catch_up_block`. `peers` claimed to have them; ask any."""

    from_height: int
    """First missing height."""
    to_height: int
    """Last height known to be decided."""
    peers: tuple[Address, ...]
    """Validators that signed for those heights (one honest among them suffices)."""


@dataclass(frozen=True, slots=True)
class FaultDetected:
    """Evidence that `validator` misbehaved (equivocation); for logs and peer scoring."""

    validator: Address
    """The culprit."""
    reason: str
    """What it did, with view and sequence number."""


@dataclass(frozen=True, slots=True)
class EnteredView:
    """The replica now operates in `view` with `primary` (informational, for logs/metrics)."""

    view: int
    """New view."""
    primary: Address
    """Its primary."""


Action: TypeAlias = (
    Send
    | Broadcast
    | SetTimer
    | CommitBlock
    | Persist
    | DiscardRecords
    | RequestCatchUp
    | FaultDetected
    | EnteredView
)
"""Anything a replica asks of its driver. A closed union: drivers `match` over it and end in
`typing.assert_never`, so a new kind of action is a type error until every driver handles it."""
