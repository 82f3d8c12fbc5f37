"""Ledger objects as RPC JSON: each model is built from its ledger object (`of`) and, where a
client verifies it, gives the ledger object back (`to_header`, `to_certificate`, `to_proof`).

The server builds results only through these constructors, and a client parses every answer
into the same models, so both sides agree on one shape. Field names, order and JSON encoding are
the wire format (docs/rpc.md); the class names are the OpenRPC component names, and class
docstrings and field descriptions are published in `rpc.discover` (so they are part of the API).

Invariant: for a ledger object `x`, `View.of(x).to_...()` equals `x`, and
`View.model_validate(json.loads(json.dumps(view.model_dump(mode="json"))))` equals `view`.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from contracts.orders import Order as OrderRecord
from contracts.orders import OrderItem as OrderLine
from ledger import blocks, certificates, receipts, state_tree
from ledger.keys import Address
from ledger.schema import to_wire
from ledger.transactions import SignedTransaction
from ledger.validators import ValidatorSet
from secnode.schema.values import AddressBytes, Hash32, HexBytes, StrictModel, json_value


class BlockHeader(StrictModel):
    chain_id: str
    height: int
    prev_hash: Hash32
    timestamp_ms: int = Field(description="block time, ms since the Unix epoch")
    proposer: AddressBytes = Field(description="address of the proposing validator")
    view: int = Field(description="PBFT view of the proposal")
    tx_root: Hash32 = Field(description="RFC 6962 root over the transactions")
    receipts_root: Hash32 = Field(description="RFC 6962 root over the receipts")
    state_root: Hash32 = Field(description="state root after the block")
    validators_hash: Hash32 = Field(description="hash of the validator set certifying the block")

    @classmethod
    def of(cls, header: blocks.BlockHeader) -> BlockHeader:
        return cls(
            chain_id=header.chain_id,
            height=header.height,
            prev_hash=header.prev_hash,
            timestamp_ms=header.timestamp_ms,
            proposer=header.proposer,
            view=header.view,
            tx_root=header.tx_root,
            receipts_root=header.receipts_root,
            state_root=header.state_root,
            validators_hash=header.validators_hash,
        )

    def to_header(self) -> blocks.BlockHeader:
        """The ledger header (its `hash()` is what certificates sign); MalformedBlock if a
        field is out of the header's range."""
        return blocks.parse_header(dict(self))


class Transaction(StrictModel):
    hash: Hash32
    chain_id: str
    sender: HexBytes = Field(description="sender's Ed25519 public key, hex")
    sender_address: AddressBytes
    nonce: int
    type: str = Field(description="body type, e.g. credit.transfer")
    body: dict[str, Any] = Field(description="decoded body; 20-byte values are addresses")
    signature: HexBytes
    size: int = Field(description="bytes of the canonical encoding")

    @classmethod
    def of(cls, tx: SignedTransaction) -> Transaction:
        return cls(
            hash=tx.hash,
            chain_id=tx.chain_id,
            sender=bytes(tx.sender),
            sender_address=tx.sender_address,
            nonce=tx.nonce,
            type=tx.type,
            body=json_value(to_wire(tx.body)),
            signature=tx.signature,
            size=len(tx.encoded),
        )


class Receipt(StrictModel):
    tx_hash: Hash32
    ok: bool = Field(description="true if applied; false if rolled back (nonce still used)")
    code: str = Field(description="broken rule when not ok, else empty")
    message: str
    events: list[dict[str, Any]]

    @classmethod
    def of(cls, receipt: receipts.Receipt) -> Receipt:
        return cls(
            tx_hash=receipt.tx_hash,
            ok=receipt.ok,
            code=receipt.code,
            message=receipt.message,
            events=[json_value(event) for event in receipt.events],
        )


class CommitSignature(StrictModel):
    validator: AddressBytes = Field(description="validator address")
    signature: HexBytes = Field(description="Ed25519 signature over the commit signing bytes")


class CommitCertificate(StrictModel):
    height: int
    block_hash: Hash32
    signatures: list[CommitSignature]

    @classmethod
    def of(cls, certificate: certificates.CommitCertificate) -> CommitCertificate:
        return cls(
            height=certificate.height,
            block_hash=certificate.block_hash,
            signatures=[
                CommitSignature(validator=s.validator, signature=s.signature)
                for s in certificate.signatures
            ],
        )

    @classmethod
    def of_optional(
        cls, certificate: certificates.CommitCertificate | None
    ) -> CommitCertificate | None:
        """`of`, or None for a block without a certificate (genesis)."""
        return None if certificate is None else cls.of(certificate)

    def to_certificate(self) -> certificates.CommitCertificate:
        """The ledger certificate, for `ledger.certificates.verify_certificate`."""
        return certificates.CommitCertificate(
            self.height,
            self.block_hash,
            tuple(
                certificates.CommitSignature(Address(s.validator), s.signature)
                for s in self.signatures
            ),
        )


class InclusionProof(StrictModel):
    """RFC 6962 audit path; verify with ledger.merkle.verify_inclusion."""

    leaf_index: int
    tree_size: int
    leaf_hash: Hash32 = Field(description="SHA-256(0x00 || canonical transaction bytes)")
    hashes: list[Hash32] = Field(description="audit path from the leaf towards the root")
    tx_root: Hash32


class OtherLeaf(StrictModel):
    path: Hash32
    value_hash: Hash32


class StateProof(StrictModel):
    """ledger.state_tree.StateProof wire form; verify with verify_state_proof."""

    key: HexBytes
    value_hash: Hash32 | None = Field(description="SHA-256 of the value; null for absence")
    siblings: list[Hash32] = Field(description="sibling hashes from the root downward")
    other_leaf: OtherLeaf | None

    @classmethod
    def of(cls, proof: state_tree.StateProof) -> StateProof:
        other = proof.other_leaf
        return cls(
            key=proof.key,
            value_hash=proof.value_hash,
            siblings=list(proof.siblings),
            other_leaf=None
            if other is None
            else OtherLeaf(path=other.path, value_hash=other.value_hash),
        )

    def to_proof(self) -> state_tree.StateProof:
        """The ledger proof, for `ledger.state_tree.verify_state_proof`."""
        other = self.other_leaf
        return state_tree.StateProof(
            self.key,
            self.value_hash,
            tuple(self.siblings),
            None if other is None else state_tree.OtherLeaf(other.path, other.value_hash),
        )


class Validator(StrictModel):
    index: int
    address: AddressBytes
    public_key: HexBytes

    @classmethod
    def list_of(cls, validators: ValidatorSet) -> list[Validator]:
        """The members in set order, each with its index."""
        return [
            cls(index=index, address=member.address, public_key=bytes(member.public_key))
            for index, member in enumerate(validators.members)
        ]


class OrderItem(StrictModel):
    sku: str
    quantity: int
    unit_price: int = Field(description="fen per unit")
    returnable: bool = Field(
        default=True,
        description="may be returned within the return window without a reason "
        "(false for custom, perishable or opened digital goods)",
    )

    @classmethod
    def of(cls, line: OrderLine) -> OrderItem:
        return cls(
            sku=line.sku,
            quantity=line.quantity,
            unit_price=line.unit_price,
            returnable=line.is_returnable,
        )


class Settlement(StrictModel):
    """Where the escrow went; all zero until the order is settled."""

    refunded: int = Field(description="fen back to the buyer")
    merchant: int = Field(description="fen to the merchant")
    sharer: int = Field(description="fen to the sharer (commission)")
    leader: int = Field(description="fen to the community group leader (commission)")


class Order(StrictModel):
    """An order record (docs/protocol.md, "Orders and escrow")."""

    order_id: Hash32
    state: str = Field(
        description="CREATED, FUNDED, SHIPPED, RECEIVED, DISPUTED, AT_PICKUP, "
        "RETURN_REQUESTED, RETURN_SHIPPED (open), "
        "COMPLETED, CANCELLED, REFUNDED, RESOLVED (terminal)"
    )
    merchant: AddressBytes
    buyer: AddressBytes
    arbiter: AddressBytes
    sharer: AddressBytes | None
    commission_bps: int
    leader: AddressBytes | None = Field(
        description="community group leader whose pickup point receives the goods"
    )
    leader_commission_bps: int = Field(description="the leader's rate on the goods value")
    items: list[OrderItem] = Field(description="the order lines, each marked returnable or not")
    goods: int = Field(description="sum of quantity * unit_price, fen")
    shipping: int
    total: int = Field(description="goods + shipping: what the buyer pays into escrow")
    held: int = Field(description="fen in escrow now")
    created_s: int = Field(description="block time of creation, seconds")
    updated_s: int = Field(description="time of the last transition, seconds")
    due_s: int | None = Field(
        description="deadline of the current state (its default outcome fires in the first "
        "block at or after it); null once terminal"
    )
    shipment_hash: Hash32 | None
    reason_hash: Hash32 | None
    disputed_by: AddressBytes | None
    pickup_hash: Hash32 | None = Field(
        description="SHA-256 of the buyer's one-time pickup code (leader orders, once paid)"
    )
    returned: list[int] = Field(
        description="indexes of the lines in a no-reason return (requested or refunded)"
    )
    return_hash: Hash32 | None = Field(description="hash of the return shipment reference")
    settlement: Settlement

    @classmethod
    def of(cls, order_id: bytes, order: OrderRecord) -> Order:
        """An order record (contracts.orders) with its id, total and settlement."""
        return cls(
            order_id=order_id,
            state=order.state,
            merchant=order.merchant,
            buyer=order.buyer,
            arbiter=order.arbiter,
            sharer=order.sharer,
            commission_bps=order.commission_bps,
            leader=order.leader,
            leader_commission_bps=order.leader_commission_bps,
            items=[OrderItem.of(item) for item in order.items],
            goods=order.goods,
            shipping=order.shipping,
            total=order.total,
            held=order.held,
            created_s=order.created_s,
            updated_s=order.updated_s,
            due_s=order.due_s,
            shipment_hash=order.shipment_hash,
            reason_hash=order.reason_hash,
            disputed_by=order.disputed_by,
            pickup_hash=order.pickup_hash,
            returned=list(order.returned),
            return_hash=order.return_hash,
            settlement=Settlement(
                refunded=order.refunded,
                merchant=order.merchant_paid,
                sharer=order.sharer_paid,
                leader=order.leader_paid,
            ),
        )
