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


class InvalidRegistration(LedgerError):
    """A table of transaction types or contracts that names one type twice, lets a contract
    shadow a core kind, or pairs a body with another type's handler (a wiring bug, found when
    the table is built)."""


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


# --- blocks ---


class InvalidBlock(LedgerError):
    """A proposed or stored block that breaks a header or execution rule."""


# --- Merkle trees and the state tree (ledger/merkle.py, ledger/state_tree.py) ---


class MerkleInputError(MerkleError):
    """Arguments that describe no tree: a leaf hash that is not 32 bytes, an index or size
    outside the tree. Raised by builders (our bug), unlike InvalidProof (a peer's fault)."""
