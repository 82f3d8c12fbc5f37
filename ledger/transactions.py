"""Signed transactions: the envelope, every body type, signing bytes and hashes.

Envelope (wire map, canonical encoding, see docs/protocol.md "Transactions"):
    {"chain_id": str, "sender": 32-byte public key, "nonce": int, "type": str,
     "body": map, "signature": 64 bytes}
The sender signs  b"SEC/tx/v2" || encode([chain_id, genesis_hash, sender, nonce, type, body]),
where genesis_hash is the SHA-256 document hash of the network's genesis (not in the envelope:
every verifier knows its own). So a signature binds one network, not just a chain id that two
networks may share. The transaction hash is SHA-256 of the canonical encoding of the envelope.

Invariant: a `SignedTransaction` only exists with a body that passed its schema; the signature
is checked separately (`verify_transaction`) so that the mempool verifies it once and caches the
result by hash.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Final

from ledger.encoding import decode, encode
from ledger.errors import DecodeError, InvalidSignature, MalformedTransaction
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
    struct,
    text,
    to_wire,
)

MAX_TRANSACTION_SIZE: Final = 16 * 1024
"""Largest encoded transaction accepted anywhere (mempool, block, RPC)."""
MAX_NONCE: Final = 2**63 - 1
ROLE_NAMES: Final = ("admin", "issuer", "merchant", "arbiter", "member")
MAX_BPS: Final = 10_000

_address = raw_bytes(ADDRESS_SIZE)
_hash32 = raw_bytes(32)
_amount = integer(1, MAX_AMOUNT)
_roles = list_of(one_of(*ROLE_NAMES), max_items=len(ROLE_NAMES), unique=True)


# --- accounts and credits ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountRegister:
    """Admin registers a new account for `public_key` with `roles`."""

    public_key: bytes = field(raw_bytes(PUBLIC_KEY_SIZE), "Ed25519 public key of the account")
    roles: tuple[str, ...] = field(_roles, "initial roles")
    name: str | None = field(Optional(text(64)), "optional human label")


@dataclass(frozen=True, slots=True)
class AccountRoles:
    """Admin grants and/or revokes roles of an existing account."""

    address: bytes = field(_address, "account to change")
    grant: tuple[str, ...] = field(_roles, "roles to add")
    revoke: tuple[str, ...] = field(_roles, "roles to remove")


@dataclass(frozen=True, slots=True)
class Mint:
    """Issuer creates `amount` new credits in `to`'s balance."""

    to: bytes = field(_address, "recipient")
    amount: int = field(_amount, "fen to create, >= 1")


@dataclass(frozen=True, slots=True)
class Burn:
    """Issuer destroys `amount` credits from its own balance."""

    amount: int = field(_amount, "fen to destroy, >= 1")


@dataclass(frozen=True, slots=True)
class Transfer:
    """Sender moves `amount` of its credits to `to`."""

    to: bytes = field(_address, "recipient")
    amount: int = field(_amount, "fen to move, >= 1")
    memo: str | None = field(Optional(text(140)), "free text")


@dataclass(frozen=True, slots=True)
class ParameterSet:
    """Admin changes one chain parameter (names and ranges in ledger.parameters)."""

    name: str = field(text(64, min_length=1), "parameter name")
    value: int = field(integer(0, MAX_AMOUNT), "new value")


@dataclass(frozen=True, slots=True)
class ValidatorUpdate:
    """Admin adds and/or removes validators; effective at a defined later height."""

    add: tuple[bytes, ...] = field(
        list_of(raw_bytes(PUBLIC_KEY_SIZE), max_items=64, unique=True), "public keys to add"
    )
    remove: tuple[bytes, ...] = field(
        list_of(_address, max_items=64, unique=True), "validator addresses to remove"
    )


# --- referral ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReferralBind:
    """Sender records, once and forever, the account that invited it (for two-level referral)."""

    inviter: bytes = field(_address, "the inviting account")


# --- orders ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderItem:
    """One line of an order."""

    sku: str = field(text(64, min_length=1), "merchant's stock-keeping unit")
    quantity: int = field(integer(1, 1_000_000), "units")
    unit_price: int = field(integer(0, MAX_AMOUNT), "fen per unit")


@dataclass(frozen=True, slots=True)
class OrderCreate:
    """Merchant (the sender) creates an order for `buyer`; the order id is this tx's hash."""

    buyer: bytes = field(_address, "the buyer")
    items: tuple[OrderItem, ...] = field(
        list_of(struct(OrderItem), min_items=1, max_items=64), "order lines"
    )
    shipping: int = field(integer(0, MAX_AMOUNT), "shipping fee in fen")
    arbiter: bytes = field(_address, "arbiter who resolves disputes")
    sharer: bytes | None = field(Optional(_address), "sharer whose link the buyer used")
    commission_bps: int | None = field(
        Optional(integer(0, MAX_BPS)), "commission on goods value, basis points"
    )


@dataclass(frozen=True, slots=True)
class OrderPay:
    """Buyer pays exactly the order total into escrow."""

    order_id: bytes = field(_hash32, "order id")
    amount: int = field(_amount, "must equal the order total")


@dataclass(frozen=True, slots=True)
class OrderShip:
    """Merchant marks the order shipped."""

    order_id: bytes = field(_hash32, "order id")
    shipment_hash: bytes = field(_hash32, "hash of the shipment reference")


@dataclass(frozen=True, slots=True)
class OrderAction:
    """Confirm receipt (buyer) or cancel (buyer or merchant) an order."""

    order_id: bytes = field(_hash32, "order id")


@dataclass(frozen=True, slots=True)
class OrderDispute:
    """Buyer or merchant disputes a funded order."""

    order_id: bytes = field(_hash32, "order id")
    reason_hash: bytes | None = field(Optional(_hash32), "hash of the off-chain complaint")


@dataclass(frozen=True, slots=True)
class OrderResolve:
    """The order's arbiter splits the escrow: `refund` to the buyer, the rest to the merchant."""

    order_id: bytes = field(_hash32, "order id")
    refund: int = field(integer(0, MAX_AMOUNT), "fen returned to the buyer")


# --- trust -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attest:
    """A party of a completed or resolved order attests about another party (+1 or -1)."""

    order_id: bytes = field(_hash32, "order id")
    subject: bytes = field(_address, "the account attested about")
    value: int = field(one_of(1, -1), "+1 or -1")


BODY_TYPES: Final[dict[str, type[Any]]] = {
    "account.register": AccountRegister,
    "account.roles": AccountRoles,
    "credit.mint": Mint,
    "credit.burn": Burn,
    "credit.transfer": Transfer,
    "param.set": ParameterSet,
    "validator.update": ValidatorUpdate,
    "referral.bind": ReferralBind,
    "order.create": OrderCreate,
    "order.pay": OrderPay,
    "order.ship": OrderShip,
    "order.confirm": OrderAction,
    "order.cancel": OrderAction,
    "order.dispute": OrderDispute,
    "order.resolve": OrderResolve,
    "trust.attest": Attest,
}
"""Transaction type name -> body class. The type string is part of the signed bytes."""

Body = Any  # one of the classes in BODY_TYPES


TX_SIGNING_DOMAIN: Final = b"SEC/tx/v2"
"""v2 added the genesis hash; a v1 signature verifies nowhere."""


def signing_bytes(
    chain_id: str, genesis_hash: bytes, sender: bytes, nonce: int, tx_type: str, body: Body
) -> bytes:
    """The exact bytes an account signs for a transaction on the network of `genesis_hash`."""
    return TX_SIGNING_DOMAIN + encode(
        [chain_id, genesis_hash, sender, nonce, tx_type, to_wire(body)]
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
    type: str
    """Body type name, a key of BODY_TYPES."""
    body: Body
    """Parsed body."""
    signature: bytes
    """64-byte Ed25519 signature over `signing_bytes(...)`."""
    encoded: bytes
    """The canonical encoding of the envelope (what is hashed, gossiped and stored)."""
    hash: bytes
    """SHA-256 of `encoded`."""
    sender_address: Address
    """`address_of(sender)`, computed once at parse time (it is read on every hot path)."""

    def signing_bytes(self, genesis_hash: bytes) -> bytes:
        """What the sender signed if it meant the network of `genesis_hash`."""
        return signing_bytes(
            self.chain_id, genesis_hash, self.sender, self.nonce, self.type, self.body
        )

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


def parse_transaction(wire: Any, encoded: bytes | None = None) -> SignedTransaction:
    """Validate a decoded envelope map; raise MalformedTransaction naming the bad field."""
    if not isinstance(wire, dict):
        raise MalformedTransaction(f"transaction must be a map, got {type(wire).__name__}")
    missing = sorted(_ENVELOPE_FIELDS - set(wire))
    if missing:
        raise MalformedTransaction(f"transaction is missing field {missing[0]!r}")
    unknown = sorted(set(wire) - _ENVELOPE_FIELDS)
    if unknown:
        raise MalformedTransaction(f"transaction has unknown field {unknown[0]!r}")
    chain_id = text(64, min_length=1)(wire["chain_id"], "chain_id")
    sender = raw_bytes(PUBLIC_KEY_SIZE)(wire["sender"], "sender")
    nonce = integer(0, MAX_NONCE)(wire["nonce"], "nonce")
    tx_type = wire["type"]
    if not isinstance(tx_type, str) or tx_type not in BODY_TYPES:
        raise MalformedTransaction(
            f"type: unknown transaction type {tx_type!r}; known: {sorted(BODY_TYPES)}"
        )
    signature = raw_bytes(SIGNATURE_SIZE)(wire["signature"], "signature")
    body = parse_struct(BODY_TYPES[tx_type], wire["body"], "body")
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
        tx_type,
        body,
        signature,
        encoded,
        hashlib.sha256(encoded).digest(),
        address_of(sender),
    )


def decode_transaction(data: bytes) -> SignedTransaction:
    """Decode canonical transaction bytes (the one entry point for untrusted transactions)."""
    if len(data) > MAX_TRANSACTION_SIZE:
        raise MalformedTransaction(
            f"transaction is {len(data)} bytes, more than the cap of {MAX_TRANSACTION_SIZE}"
        )
    try:
        wire = decode(data, max_size=MAX_TRANSACTION_SIZE)
    except DecodeError as exc:
        raise MalformedTransaction(f"transaction bytes: {exc}") from exc
    return parse_transaction(wire, bytes(data))


def sign_transaction(
    key: PrivateKey,
    chain_id: str,
    nonce: int,
    tx_type: str,
    body: Body,
    *,
    genesis_hash: bytes,
) -> SignedTransaction:
    """Build and sign a transaction for the network of `genesis_hash` (its genesis document
    hash); the body is re-validated through its schema."""
    if tx_type not in BODY_TYPES:
        raise MalformedTransaction(f"type: unknown transaction type {tx_type!r}")
    if not isinstance(body, BODY_TYPES[tx_type]):
        raise MalformedTransaction(f"body for {tx_type} must be {BODY_TYPES[tx_type].__name__}")
    sender = key.public_key
    signature = key.sign(signing_bytes(chain_id, genesis_hash, sender, nonce, tx_type, body))
    wire = {
        "chain_id": chain_id,
        "sender": bytes(sender),
        "nonce": nonce,
        "type": tx_type,
        "body": to_wire(body),
        "signature": signature,
    }
    return parse_transaction(wire)


def verify_transaction(tx: SignedTransaction, genesis_hash: bytes) -> None:
    """Raise InvalidSignature unless the sender's key signed this transaction for the network
    whose genesis document hash is `genesis_hash`."""
    if not verify_signature(tx.sender, tx.signing_bytes(genesis_hash), tx.signature):
        raise InvalidSignature(
            f"signature does not verify for {tx.describe()} on chain {tx.chain_id!r} with "
            f"genesis {genesis_hash.hex()[:16]}... (another key, or signed for another network)"
        )
