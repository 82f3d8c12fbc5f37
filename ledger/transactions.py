"""Signed transactions: the envelope, the body base class, the type registry, signing bytes and
hashes, and the ledger's own (core) body types.

Envelope (wire map, canonical encoding, see docs/protocol.md "Transactions"):
    {"chain_id": str, "sender": 32-byte public key, "nonce": int, "type": str,
     "body": map, "signature": 64 bytes}
The sender signs  b"SEC/tx/v2" || encode([chain_id, genesis_hash, sender, nonce, type, body]),
where genesis_hash is the SHA-256 document hash of the network's genesis (not in the envelope:
every verifier knows its own). So a signature binds one network, not just a chain id that two
networks may share. The transaction hash is SHA-256 of the canonical encoding of the envelope.

Every body is a frozen dataclass deriving from `TxBody` and naming its wire type in the class
constant `TYPE`, so the type of a transaction is `type(body).TYPE`: a body cannot be signed
under another type's name. Contract bodies live with their contracts (`contracts/`); a
`TxTypes` table, passed explicitly to the decoders, says which ones a node accepts.

Invariant: a `SignedTransaction` only exists with a body that passed its schema; the signature
is checked separately (`verify_transaction`) so that the mempool verifies it once and caches the
result by hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, Final

from ledger.accounts import ROLE_NAMES
from ledger.encoding import decode, encode
from ledger.errors import (
    DecodeError,
    InvalidRegistration,
    InvalidSignature,
    MalformedTransaction,
)
from ledger.keys import (
    ADDRESS_SIZE,
    PUBLIC_KEY_SIZE,
    SIGNATURE_SIZE,
    Address,
    PrivateKey,
    address_of,
    format_address,
    verify_signature,
)
from ledger.schema import (
    MAX_AMOUNT,
    Optional,
    field,
    integer,
    list_of,
    one_of,
    parse_struct,
    raw_bytes,
    text,
    to_wire,
)

MAX_TRANSACTION_SIZE: Final = 16 * 1024
"""Largest encoded transaction accepted anywhere (mempool, block, RPC)."""
MAX_NONCE: Final = 2**63 - 1

ADDRESS_KIND: Final = raw_bytes(ADDRESS_SIZE)
"""Schema kind of a 20-byte account address field (for body classes here and in contracts/)."""
HASH_KIND: Final = raw_bytes(32)
"""Schema kind of a 32-byte hash field (an order id, a shipment reference hash, ...)."""
AMOUNT_KIND: Final = integer(1, MAX_AMOUNT)
"""Schema kind of an amount of credits that must be at least 1 fen."""
_roles = list_of(one_of(*ROLE_NAMES), max_items=len(ROLE_NAMES), unique=True)


@dataclass(frozen=True, slots=True)
class TxBody:
    """Base of every transaction body (itself without fields).

    A subclass is a frozen slotted dataclass whose fields declare their wire kinds
    (`ledger.schema.field`) and which sets `TYPE`, its transaction type name (part of the signed
    bytes). One class per type name: two types with one wire schema are still two classes.
    """

    TYPE: ClassVar[str]
    """The transaction type name, e.g. "credit.transfer"."""


# --- accounts and credits ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountRegister(TxBody):
    """Admin registers a new account for `public_key` with `roles`."""

    TYPE: ClassVar[str] = "account.register"

    public_key: bytes = field(raw_bytes(PUBLIC_KEY_SIZE), "Ed25519 public key of the account")
    roles: tuple[str, ...] = field(_roles, "initial roles")
    name: str | None = field(Optional(text(64)), "optional human label")


@dataclass(frozen=True, slots=True)
class AccountRoles(TxBody):
    """Admin grants and/or revokes roles of an existing account."""

    TYPE: ClassVar[str] = "account.roles"

    address: bytes = field(ADDRESS_KIND, "account to change")
    grant: tuple[str, ...] = field(_roles, "roles to add")
    revoke: tuple[str, ...] = field(_roles, "roles to remove")


@dataclass(frozen=True, slots=True)
class Mint(TxBody):
    """Issuer creates `amount` new credits in `to`'s balance."""

    TYPE: ClassVar[str] = "credit.mint"

    to: bytes = field(ADDRESS_KIND, "recipient")
    amount: int = field(AMOUNT_KIND, "fen to create, >= 1")


@dataclass(frozen=True, slots=True)
class Burn(TxBody):
    """Issuer destroys `amount` credits from its own balance."""

    TYPE: ClassVar[str] = "credit.burn"

    amount: int = field(AMOUNT_KIND, "fen to destroy, >= 1")


@dataclass(frozen=True, slots=True)
class Transfer(TxBody):
    """Sender moves `amount` of its credits to `to`."""

    TYPE: ClassVar[str] = "credit.transfer"

    to: bytes = field(ADDRESS_KIND, "recipient")
    amount: int = field(AMOUNT_KIND, "fen to move, >= 1")
    memo: str | None = field(Optional(text(140)), "free text")


@dataclass(frozen=True, slots=True)
class ParameterSet(TxBody):
    """Admin changes one chain parameter (names and ranges in ledger.parameters)."""

    TYPE: ClassVar[str] = "param.set"

    name: str = field(text(64, min_length=1), "parameter name")
    value: int = field(integer(0, MAX_AMOUNT), "new value")


@dataclass(frozen=True, slots=True)
class ValidatorUpdate(TxBody):
    """Admin adds and/or removes validators; effective at a defined later height."""

    TYPE: ClassVar[str] = "validator.update"

    add: tuple[bytes, ...] = field(
        list_of(raw_bytes(PUBLIC_KEY_SIZE), max_items=64, unique=True), "public keys to add"
    )
    remove: tuple[bytes, ...] = field(
        list_of(ADDRESS_KIND, max_items=64, unique=True), "validator addresses to remove"
    )


# --- the registry -----------------------------------------------------------------------------


class TxTypes:
    """Transaction type name -> body class: what a decoder accepts.

    Built explicitly from a list of body classes (`ledger.execution.CORE_TX_TYPES` for the
    ledger's own types, `contracts.TX_TYPES` for the core plus every contract) and passed to
    `decode_transaction`, `parse_transaction` and `ledger.blocks.decode_block`; nothing
    registers itself at import time. Invariant: every name maps to exactly one class, and that
    class's `TYPE` is the name.
    """

    __slots__ = ("_bodies",)

    def __init__(self, bodies: Iterable[type[TxBody]]) -> None:
        """Refuses (InvalidRegistration) a class without a TYPE and two classes with one TYPE."""
        table: dict[str, type[TxBody]] = {}
        for body in bodies:
            name = getattr(body, "TYPE", None)
            if not isinstance(name, str) or not name:
                raise InvalidRegistration(f"body class {body.__name__} declares no TYPE name")
            if name in table:
                raise InvalidRegistration(
                    f"transaction type {name!r} is registered twice: by {table[name].__name__} "
                    f"and by {body.__name__}"
                )
            table[name] = body
        self._bodies: Mapping[str, type[TxBody]] = MappingProxyType(table)

    @property
    def bodies(self) -> Mapping[str, type[TxBody]]:
        """Name -> body class, in registration order (read-only)."""
        return self._bodies

    def body_class(self, name: object) -> type[TxBody]:
        """The body class of type `name`; MalformedTransaction naming it if unknown."""
        if not isinstance(name, str) or name not in self._bodies:
            raise MalformedTransaction(
                f"type: unknown transaction type {name!r}; known: {sorted(self._bodies)}"
            )
        return self._bodies[name]


TX_SIGNING_DOMAIN: Final = b"SEC/tx/v2"
"""v2 added the genesis hash; a v1 signature verifies nowhere."""


def signing_bytes(
    chain_id: str, genesis_hash: bytes, sender: bytes, nonce: int, body: TxBody
) -> bytes:
    """The exact bytes an account signs for a transaction on the network of `genesis_hash`
    (the type name signed is `type(body).TYPE`)."""
    return TX_SIGNING_DOMAIN + encode(
        [chain_id, genesis_hash, sender, nonce, type(body).TYPE, to_wire(body)]
    )


@dataclass(frozen=True, slots=True)
class SignedTransaction:
    """A transaction envelope with a schema-valid body (signature not yet verified)."""

    chain_id: str
    """Chain the sender meant; a transaction for another chain is rejected."""
    sender: bytes
    """Sender's 32-byte Ed25519 public key; its address is `address_of(sender)`."""
    nonce: int
    """Must equal the sender account's nonce when executed; then the nonce increments."""
    body: TxBody
    """Parsed body; its class gives the transaction type (`type`)."""
    signature: bytes
    """64-byte Ed25519 signature over `signing_bytes(...)`."""
    encoded: bytes
    """The canonical encoding of the envelope (what is hashed, gossiped and stored)."""
    hash: bytes
    """SHA-256 of `encoded`."""
    sender_address: Address
    """`address_of(sender)`, computed once at parse time (it is read on every hot path)."""

    @property
    def type(self) -> str:
        """The transaction type name, `type(body).TYPE` (the envelope's "type" field)."""
        return type(self.body).TYPE

    def signing_bytes(self, genesis_hash: bytes) -> bytes:
        """What the sender signed if it meant the network of `genesis_hash`."""
        return signing_bytes(self.chain_id, genesis_hash, self.sender, self.nonce, self.body)

    def to_wire(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "sender": self.sender,
            "nonce": self.nonce,
            "type": self.type,
            "body": to_wire(self.body),
            "signature": self.signature,
        }

    def describe(self) -> str:
        return f"{self.type} from {format_address(self.sender_address)} nonce {self.nonce}"


_ENVELOPE_FIELDS: Final = frozenset({"chain_id", "sender", "nonce", "type", "body", "signature"})


def parse_transaction(wire: Any, types: TxTypes, encoded: bytes | None = None) -> SignedTransaction:
    """Validate a decoded envelope map against the body classes of `types`; raise
    MalformedTransaction naming the bad field."""
    if not isinstance(wire, dict):
        raise MalformedTransaction(f"transaction must be a map, got {type(wire).__name__}")
    if wire.keys() != _ENVELOPE_FIELDS:
        missing = sorted(_ENVELOPE_FIELDS - set(wire))
        if missing:
            raise MalformedTransaction(f"transaction is missing field {missing[0]!r}")
        unknown = sorted(set(wire) - _ENVELOPE_FIELDS)
        raise MalformedTransaction(f"transaction has unknown field {unknown[0]!r}")
    chain_id = text(64, min_length=1)(wire["chain_id"], "chain_id")
    sender = raw_bytes(PUBLIC_KEY_SIZE)(wire["sender"], "sender")
    nonce = integer(0, MAX_NONCE)(wire["nonce"], "nonce")
    body_class = types.body_class(wire["type"])
    signature = raw_bytes(SIGNATURE_SIZE)(wire["signature"], "signature")
    body = parse_struct(body_class, wire["body"], "body")
    if encoded is None:
        encoded = encode(wire)
    if len(encoded) > MAX_TRANSACTION_SIZE:
        raise MalformedTransaction(
            f"transaction is {len(encoded)} bytes, more than the cap of {MAX_TRANSACTION_SIZE}"
        )
    return SignedTransaction(
        chain_id,
        sender,
        nonce,
        body,
        signature,
        encoded,
        hashlib.sha256(encoded).digest(),
        address_of(sender),
    )


def decode_transaction(data: bytes, types: TxTypes) -> SignedTransaction:
    """Decode canonical transaction bytes whose type is one of `types` (the one entry point for
    untrusted transactions)."""
    if len(data) > MAX_TRANSACTION_SIZE:
        raise MalformedTransaction(
            f"transaction is {len(data)} bytes, more than the cap of {MAX_TRANSACTION_SIZE}"
        )
    try:
        wire = decode(data, max_size=MAX_TRANSACTION_SIZE)
    except DecodeError as exc:
        raise MalformedTransaction(f"transaction bytes: {exc}") from exc
    return parse_transaction(wire, types, bytes(data))


def sign_transaction(
    key: PrivateKey,
    chain_id: str,
    nonce: int,
    body: TxBody,
    *,
    genesis_hash: bytes,
) -> SignedTransaction:
    """Build and sign a transaction of type `type(body).TYPE` for the network of `genesis_hash`
    (its genesis document hash); the body is re-validated through its schema."""
    own_type = TxTypes((type(body),))  # refuses a body class that names no TYPE
    sender = key.public_key
    signature = key.sign(signing_bytes(chain_id, genesis_hash, sender, nonce, body))
    wire = {
        "chain_id": chain_id,
        "sender": bytes(sender),
        "nonce": nonce,
        "type": type(body).TYPE,
        "body": to_wire(body),
        "signature": signature,
    }
    return parse_transaction(wire, own_type)


def verify_transaction(tx: SignedTransaction, genesis_hash: bytes) -> None:
    """Raise InvalidSignature unless the sender's key signed this transaction for the network
    whose genesis document hash is `genesis_hash`."""
    if not verify_signature(tx.sender, tx.signing_bytes(genesis_hash), tx.signature):
        raise InvalidSignature(
            f"signature does not verify for {tx.describe()} on chain {tx.chain_id!r} with "
            f"genesis {genesis_hash.hex()[:16]}... (another key, or signed for another network)"
        )
