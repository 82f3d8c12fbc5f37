"""Every error the ledger raises. One base, `LedgerError`; each subclass names the broken rule.

Messages always carry the offending values so a log line or an RPC error explains itself.
"""


class LedgerError(Exception):
    """Base of every ledger error."""


class DecodeError(LedgerError):
    """Bytes that are not a canonical encoding of an allowed value."""


class EncodeError(LedgerError):
    """A value that cannot be canonically encoded (float, non-str map key, too deep, ...)."""


class InvalidAddress(LedgerError):
    """Address text with a bad prefix, character, length or checksum."""


class InvalidKey(LedgerError):
    """Key material of the wrong size or shape."""


class InvalidSignature(LedgerError):
    """A signature that does not verify for the claimed key and message."""


class MerkleError(LedgerError):
    """Base for Merkle-proof failures."""


class InvalidProof(MerkleError):
    """A Merkle or state proof that does not verify."""


class MalformedTransaction(LedgerError):
    """A transaction whose envelope or body does not match its schema."""


class MalformedBlock(LedgerError):
    """A block, header or certificate that does not match its schema."""


class InvalidCertificate(LedgerError):
    """A commit certificate that does not prove 2f+1 validator signatures over a header."""


class InvalidGenesis(LedgerError):
    """A genesis document that fails validation."""


class StoreError(LedgerError):
    """The block store is unreadable, inconsistent or was opened for the wrong chain."""


class ExecutionError(LedgerError):
    """Base of rule violations found while executing a transaction; the transaction fails.

    `code` is a stable machine-readable name (used in receipts and RPC errors).
    """

    code = "execution_error"


class WrongChain(ExecutionError):
    code = "wrong_chain"


class NonceMismatch(ExecutionError):
    code = "nonce_mismatch"


class UnknownAccount(ExecutionError):
    code = "unknown_account"


class AccountExists(ExecutionError):
    code = "account_exists"


class NotAuthorized(ExecutionError):
    code = "not_authorized"


class InsufficientBalance(ExecutionError):
    code = "insufficient_balance"


class InvalidAmount(ExecutionError):
    code = "invalid_amount"


class InvalidParameter(ExecutionError):
    code = "invalid_parameter"


class InvalidValidatorUpdate(ExecutionError):
    code = "invalid_validator_update"


class NotImplementedYet(ExecutionError):
    """A transaction type whose body validates but whose execution arrives in a later issue."""

    code = "not_implemented"


# --- contracts: orders, escrow and referral (contracts/) ---
# Each code is stable: receipts commit to it (docs/protocol.md, "Orders and escrow").


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


class SelfReferral(ExecutionError):
    """A referral binding to oneself."""

    code = "self_referral"


class AlreadyBound(ExecutionError):
    """A second referral binding: bindings are write-once."""

    code = "already_bound"


class ReferralCycle(ExecutionError):
    """A binding that could close a cycle: the sender already has invitees."""

    code = "referral_cycle"


# --- contracts: trust attestations (contracts/trust.py; docs/protocol.md §17) ---


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


# --- blocks ---


class InvalidBlock(LedgerError):
    """A proposed or stored block that breaks a header or execution rule."""


# --- Merkle trees and the state tree (ledger/merkle.py, ledger/state_tree.py) ---


class MerkleInputError(MerkleError):
    """Arguments that describe no tree: a leaf hash that is not 32 bytes, an index or size
    outside the tree. Raised by builders (our bug), unlike InvalidProof (a peer's fault)."""
