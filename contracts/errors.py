"""Every error the built-in contracts raise: rule violations while executing a transaction.

Each is an `ledger.errors.ExecutionError` (so the executor rolls the transaction back and writes
a failed receipt) with a stable `code`: receipts commit to it, so a code never changes. Each
contract lists its classes in its `Contract.errors`; the executor's assembly refuses two classes
with one code.
"""

from __future__ import annotations

from ledger.errors import ExecutionError

# --- orders and escrow (contracts/escrow.py; docs/protocol.md "Orders and escrow") ---


class UnknownOrder(ExecutionError):
    """No order has this id."""

    code = "unknown_order"


class OrderClosed(ExecutionError):
    """The order is in a terminal state: nothing may happen to it any more (no second payout
    or refund)."""

    code = "order_closed"


class WrongActor(ExecutionError):
    """The sender is not the order party this action belongs to."""

    code = "wrong_actor"


class WrongOrderState(ExecutionError):
    """The action is not allowed in the order's current (non-terminal) state."""

    code = "wrong_order_state"


class DeadlinePassed(ExecutionError):
    """The action came at or after the deadline of the order's current state."""

    code = "deadline_passed"


class DeadlineNotReached(ExecutionError):
    """The action is only allowed once a deadline has passed (buyer cancel of a funded order)."""

    code = "deadline_not_reached"


class AmountMismatch(ExecutionError):
    """A payment that is not exactly the order total."""

    code = "amount_mismatch"


class RefundTooLarge(ExecutionError):
    """A resolution that refunds more than the order holds in escrow."""

    code = "refund_too_large"


class InvalidBuyer(ExecutionError):
    """An order whose buyer is its merchant."""

    code = "invalid_buyer"


class InvalidArbiter(ExecutionError):
    """An arbiter without the arbiter role, or who is also a party of the order."""

    code = "invalid_arbiter"


class InvalidSharer(ExecutionError):
    """A sharer who is the buyer or the merchant, or a sharer without a rate (or the reverse)."""

    code = "invalid_sharer"


class CommissionTooHigh(ExecutionError):
    """A commission rate above the max_commission_bps parameter."""

    code = "commission_too_high"


class InvalidLeader(ExecutionError):
    """A leader without the leader role, who is another party of the order, or a leader
    without a rate (or the reverse)."""

    code = "invalid_leader"


class InvalidPickupHash(ExecutionError):
    """A payment without a pickup-code hash for an order with a leader, or with one for an
    order without a leader."""

    code = "invalid_pickup_hash"


class WrongPickupCode(ExecutionError):
    """A pickup code whose SHA-256 is not the order's pickup hash (or the order has none)."""

    code = "wrong_pickup_code"


class InvalidReturnLine(ExecutionError):
    """A return naming a line the order does not have, or lines not strictly increasing."""

    code = "invalid_return_line"


class NotReturnable(ExecutionError):
    """A no-reason return of a line created with returnable false."""

    code = "not_returnable"


# --- referral (contracts/referral.py) ---


class SelfReferral(ExecutionError):
    """A referral binding to oneself."""

    code = "self_referral"


class AlreadyBound(ExecutionError):
    """A second referral binding: bindings are write-once."""

    code = "already_bound"


class ReferralCycle(ExecutionError):
    """A binding that could close a cycle: the sender already has invitees."""

    code = "referral_cycle"


# --- trust attestations (contracts/trust.py; docs/protocol.md §17) ---


class OrderNotCompleted(ExecutionError):
    """An attestation about an order that is not COMPLETED or RESOLVED."""

    code = "order_not_completed"


class InvalidSubject(ExecutionError):
    """An attestation about someone the attester may not attest about for this order (allowed:
    buyer -> merchant, buyer -> sharer, merchant -> buyer)."""

    code = "invalid_subject"


class AttestWindowClosed(ExecutionError):
    """An attestation at or after completion + attest_window_s."""

    code = "attest_window_closed"


class AlreadyAttested(ExecutionError):
    """A second attestation for the same (order, attester, subject)."""

    code = "already_attested"


# --- reviews (contracts/reviews.py; docs/protocol.md "Reviews") ---


class NotReviewer(ExecutionError):
    """A review by someone other than the order's buyer (a stranger, or the merchant, who
    replies instead)."""

    code = "not_reviewer"


class ReviewWindowClosed(ExecutionError):
    """A review at or after completion + review_window_s."""

    code = "review_window_closed"


class ItemNotInOrder(ExecutionError):
    """A review naming an item reference that is not one of the order's."""

    code = "item_not_in_order"


class AlreadyReviewed(ExecutionError):
    """A second review of one order: reviews are append-only, one per order."""

    code = "already_reviewed"


class UnknownReview(ExecutionError):
    """A reply to an order that has no review."""

    code = "unknown_review"


class NotReplier(ExecutionError):
    """A reply by someone other than the reviewed order's merchant."""

    code = "not_replier"


class AlreadyReplied(ExecutionError):
    """A second reply to one review: a reply is written once and never changes."""

    code = "already_replied"


# --- group buy (contracts/groups.py; docs/protocol.md "Group buy") ---


class InvalidGroupTerms(ExecutionError):
    """A group.open whose terms break a bound: min above max, a deadline not in the future or
    beyond the horizon, an opener discount that leaves no price, a total above 2**63-1."""

    code = "invalid_group_terms"


class UnknownGroup(ExecutionError):
    """No group has this id."""

    code = "unknown_group"


class GroupClosed(ExecutionError):
    """The group FAILED or was CANCELLED: it accepts nothing more (its refunds are done)."""

    code = "group_closed"


class GroupFull(ExecutionError):
    """A join when the group already has its maximum number of members."""

    code = "group_full"


class GroupExpired(ExecutionError):
    """A join at or after the group's join deadline."""

    code = "group_expired"


class GroupFormed(ExecutionError):
    """A cancel of a group that has formed: its members hold ordinary orders now."""

    code = "group_formed"


class NotGroupMerchant(ExecutionError):
    """A group.cancel from someone other than the group's merchant."""

    code = "not_group_merchant"


class AlreadyJoined(ExecutionError):
    """A second join of the same account to one group."""

    code = "already_joined"


class InvalidMember(ExecutionError):
    """A join by the group's merchant or arbiter."""

    code = "invalid_member"


class GroupPriceMismatch(ExecutionError):
    """A join payment that is not exactly the member's price (group price, or the opener's
    discounted price, plus shipping)."""

    code = "group_price_mismatch"
