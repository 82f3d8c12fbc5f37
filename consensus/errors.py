"""Every error the consensus core raises. One base, `ConsensusError`; each subclass names the rule.

Messages always carry the offending values (view, sequence number, sender) so a log line explains
itself. Rejections of remote input derive from `MessageRejected`; its `benign` flag tells a driver
whether the sender did something wrong (score it) or the message was merely late, duplicated or
early (drop it silently). A rejected input leaves the replica's state unchanged.
"""

from __future__ import annotations

from typing import ClassVar


class ConsensusError(Exception):
    """Base of every consensus error."""


class ConfigError(ConsensusError):
    """A replica configuration that breaks a documented bound (e.g. window smaller than 1)."""


class RestoreError(ConsensusError):
    """Persisted records that cannot be restored (another chain, inconsistent, malformed)."""


class InvalidProposal(ConsensusError):
    """Raised by the application: a proposed block fails a deterministic validity check."""


class UnjudgeableProposal(InvalidProposal):
    """Raised by the application: this node cannot accept the block *now* for a reason of its
    own (its clock, or a parent it does not hold), which an honest primary may cause. Refused
    like any invalid block, but never charged to the sender."""


class ValidatorScheduleError(ConsensusError):
    """A validator-set change reported with an effective height the core cannot honour."""


class MessageRejected(ConsensusError):
    """Base of rejected remote input (messages and catch-up blocks)."""

    benign: ClassVar[bool] = False
    """True when the sender is not at fault (late, duplicate or early input)."""


class MalformedMessage(MessageRejected):
    """Bytes or fields that do not form a well-typed consensus message."""


class MessageTooLarge(MalformedMessage):
    """A message or payload above its configured size cap."""


class InvalidSignature(MessageRejected):
    """A signature that does not verify for the claimed sender (or for another chain id)."""


class NotAValidator(MessageRejected):
    """A signer that is not in the validator set in effect for the message's height."""


class WrongPrimary(MessageRejected):
    """A PRE-PREPARE or NEW-VIEW not from the view's primary, or a PREPARE from the primary."""


class InvalidProof(MessageRejected):
    """A prepared proof, checkpoint proof or commit certificate that does not prove its claim."""


class InvalidNewView(InvalidProof):
    """A NEW-VIEW whose re-proposals differ from the ones its view-change messages determine."""


class RejectedProposal(MessageRejected):
    """A PRE-PREPARE whose block the application refused (wraps `InvalidProposal`)."""


class ProposalNotJudged(RejectedProposal):
    """A PRE-PREPARE refused for a local reason (wraps `UnjudgeableProposal`): not scored."""

    benign = True


class Equivocation(MessageRejected):
    """A second, different, validly signed vote of one sender for the same slot: counted once."""


class StaleMessage(MessageRejected):
    """A message for an old view or an already decided / garbage-collected height."""

    benign = True


class DuplicateMessage(MessageRejected):
    """A message identical to one already processed (not verified again)."""

    benign = True


class OutOfWindow(MessageRejected):
    """A height beyond what the replica buffers (it may be behind; catch-up handles that)."""

    benign = True


class ViewTooFarAhead(MessageRejected):
    """A view beyond `max_view_ahead` of the replica's current view."""

    benign = True


class BufferFull(MessageRejected):
    """A future message dropped because its sender's or the global buffer quota is used up."""

    benign = True
