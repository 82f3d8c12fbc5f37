"""Parameter and result models of every RPC method.

These pydantic models are the single source of truth for the RPC's shape: the dispatcher
validates params with them (strict: no coercion, `extra="forbid"`), methods build results
through them, and `rpc.discover` publishes their JSON schemas. A field's order is its position
for positional (array) params; its description is what the OpenRPC document shows.

Conventions are those of `secnode.schema.jsonview`: bytes as lowercase hex without "0x",
addresses as sec1 text, amounts as integers in fen. Hash params accept either case of hex.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, RootModel, model_validator

from contracts.orders import ROLES, STATES
from ledger.errors import InvalidAddress
from ledger.keys import parse_address
from ledger.transactions import MAX_TRANSACTION_SIZE

MAX_WAIT_S = 60.0
DEFAULT_WAIT_S = 10.0
_ADDRESS_PATTERN = "^sec1[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{38}$"


def _check_address(text: str) -> str:
    try:
        parse_address(text)
    except InvalidAddress as exc:
        raise ValueError(str(exc)) from None
    return text.lower()


Hash = Annotated[
    str, Field(pattern="^[0-9a-fA-F]{64}$", description="32-byte hash, hex (64 characters)")
]
Height = Annotated[int, Field(ge=0, le=2**63 - 1, description="block height")]
AddressText = Annotated[
    str,
    Field(
        max_length=90,
        description="checksummed account address (bech32m, starts with sec1)",
        json_schema_extra={"pattern": _ADDRESS_PATTERN},
    ),
    AfterValidator(_check_address),
]
TransactionHex = Annotated[
    str,
    Field(
        min_length=2,
        max_length=2 * MAX_TRANSACTION_SIZE,
        pattern="^(?:[0-9a-fA-F]{2})+$",
        description="canonical transaction bytes (docs/protocol.md), hex",
    ),
]


class _Params(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class _Result(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


# --- params ------------------------------------------------------------------------------------


class NoParams(_Params):
    """No parameters."""


class SendTransactionParams(_Params):
    tx: TransactionHex
    wait: Literal["mempool", "commit"] = Field(
        "mempool", description="return after mempool admission, or after commit"
    )
    timeout_s: float = Field(
        DEFAULT_WAIT_S,
        gt=0,
        le=MAX_WAIT_S,
        description="with wait=commit: seconds to wait before the timeout error",
    )


class GetTransactionParams(_Params):
    hash: Hash


class GetBlockParams(_Params):
    height: Height | None = Field(None, description="block height; default the latest block")
    hash: Hash | None = Field(None, description="block header hash (instead of height)")
    full: bool = Field(False, description="include full transactions and receipts")

    @model_validator(mode="after")
    def _one_selector(self) -> GetBlockParams:
        if self.height is not None and self.hash is not None:
            raise ValueError("give height or hash, not both")
        return self


class HeightParams(_Params):
    height: Height | None = Field(None, description="block height; default the latest block")


class GetAccountParams(_Params):
    address: AddressText
    prove: bool = Field(
        False, description="include a state proof (membership, or non-membership if absent)"
    )


class GetOrderParams(_Params):
    order_id: Hash = Field(description="order id: the hash of its order.create transaction")
    prove: bool = Field(
        False, description="include a state proof (membership, or non-membership if absent)"
    )


OrderState = Literal[STATES]  # type: ignore[valid-type]  # a Literal of the state names
OrderRole = Literal[ROLES]  # type: ignore[valid-type]  # a Literal of the role names
MAX_ORDER_PAGE = 100


class ListOrdersParams(_Params):
    party: AddressText = Field(description="account whose orders to list")
    state: OrderState | None = Field(None, description="only orders in this state")
    role: OrderRole | None = Field(None, description="only orders where the party has this role")
    cursor: Hash | None = Field(
        None, description="next_cursor of the previous page; orders with larger ids follow"
    )
    limit: int = Field(20, ge=1, le=MAX_ORDER_PAGE, description="at most this many orders")


# --- ledger objects as JSON --------------------------------------------------------------------


class BlockHeader(_Result):
    chain_id: str
    height: int
    prev_hash: str
    timestamp_ms: int = Field(description="block time, ms since the Unix epoch")
    proposer: str = Field(description="address of the proposing validator")
    view: int = Field(description="PBFT view of the proposal")
    tx_root: str = Field(description="RFC 6962 root over the transactions")
    receipts_root: str = Field(description="RFC 6962 root over the receipts")
    state_root: str = Field(description="state root after the block")
    validators_hash: str = Field(description="hash of the validator set certifying the block")


class Transaction(_Result):
    hash: str
    chain_id: str
    sender: str = Field(description="sender's Ed25519 public key, hex")
    sender_address: str
    nonce: int
    type: str = Field(description="body type, e.g. credit.transfer")
    body: dict[str, Any] = Field(description="decoded body; 20-byte values are addresses")
    signature: str
    size: int = Field(description="bytes of the canonical encoding")


class Receipt(_Result):
    tx_hash: str
    ok: bool = Field(description="true if applied; false if rolled back (nonce still used)")
    code: str = Field(description="broken rule when not ok, else empty")
    message: str
    events: list[dict[str, Any]]


class CommitSignature(_Result):
    validator: str = Field(description="validator address")
    signature: str = Field(description="Ed25519 signature over the commit signing bytes")


class CommitCertificate(_Result):
    height: int
    block_hash: str
    signatures: list[CommitSignature]


class InclusionProof(_Result):
    """RFC 6962 audit path; verify with ledger.merkle.verify_inclusion."""

    leaf_index: int
    tree_size: int
    leaf_hash: str = Field(description="SHA-256(0x00 || canonical transaction bytes)")
    hashes: list[str] = Field(description="audit path from the leaf towards the root")
    tx_root: str


class OtherLeaf(_Result):
    path: str
    value_hash: str


class StateProof(_Result):
    """ledger.state_tree.StateProof wire form; verify with verify_state_proof."""

    key: str
    value_hash: str | None = Field(description="SHA-256 of the value; null for absence")
    siblings: list[str] = Field(description="sibling hashes from the root downward")
    other_leaf: OtherLeaf | None


class Validator(_Result):
    index: int
    address: str
    public_key: str


# --- results -----------------------------------------------------------------------------------


class StatusResult(_Result):
    chain_id: str
    genesis_hash: str = Field(
        description="SHA-256 document hash of the genesis, hex: signed in every transaction"
    )
    node_name: str
    node_address: str
    height: int
    head_hash: str
    head_time_ms: int
    view: int
    view_changes: int
    is_validator: bool
    peers: int
    syncing: bool
    mempool_size: int = Field(description="transactions waiting in the mempool")
    view_in_sync: bool = Field(
        True, description="false when this node is known to be in another view than the group's"
    )
    group_view: int | None = Field(
        None, description="highest view at least f+1 validators are known to be in, or null"
    )


class SendTransactionResult(_Result):
    hash: str
    status: Literal["pending", "committed"]
    height: int | None = Field(None, description="when committed")
    index: int | None = Field(None, description="position in the block, when committed")
    block_hash: str | None = Field(None, description="when committed")
    receipt: Receipt | None = Field(None, description="when committed")


class TransactionResult(_Result):
    hash: str
    status: Literal["pending", "committed"]
    tx: Transaction
    raw: str = Field(description="canonical transaction bytes, hex (the Merkle leaf)")
    height: int | None = Field(None, description="when committed")
    index: int | None = Field(None, description="when committed")
    block_hash: str | None = Field(None, description="when committed")
    receipt: Receipt | None = Field(None, description="when committed")
    proof: InclusionProof | None = Field(None, description="when committed: under header.tx_root")


class BlockResult(_Result):
    hash: str
    header: BlockHeader
    tx_count: int
    tx_hashes: list[str]
    transactions: list[Transaction] | None = Field(None, description="with full=true")
    receipts: list[Receipt] | None = Field(None, description="with full=true")


class CommitResult(_Result):
    height: int
    hash: str
    header: BlockHeader
    certificate: CommitCertificate | None = Field(
        description="a quorum of signatures; null for genesis, trusted via the genesis file"
    )


class ValidatorsResult(_Result):
    height: int = Field(description="the block these validators certify")
    validators: list[Validator]
    size: int
    quorum: int = Field(description="(n+f)//2+1 signatures needed for a certificate")
    max_faulty: int = Field(description="f")
    hash: str = Field(description="validators_hash, as in the block header")


class AccountResult(_Result):
    address: str
    exists: bool
    public_key: str | None
    nonce: int | None
    balance: int | None = Field(description="fen")
    roles: list[str] | None
    name: str | None
    height: int = Field(description="committed height the answer is read at")
    state_root: str = Field(description="committed state root at that height")
    proof: StateProof | None = Field(None, description="with prove=true")
    value: str | None = Field(None, description="with prove=true: the raw record, hex")


class OrderItem(_Result):
    sku: str
    quantity: int
    unit_price: int = Field(description="fen per unit")


class Settlement(_Result):
    """Where the escrow went; all zero until the order is settled."""

    refunded: int = Field(description="fen back to the buyer")
    merchant: int = Field(description="fen to the merchant")
    sharer: int = Field(description="fen to the sharer (commission)")
    inviter: int = Field(description="fen to the sharer's inviter (second-level commission)")


class Order(_Result):
    """An order record (docs/protocol.md, "Orders and escrow")."""

    order_id: str
    state: str = Field(
        description="CREATED, FUNDED, SHIPPED, RECEIVED, DISPUTED (open), "
        "COMPLETED, CANCELLED, REFUNDED, RESOLVED (terminal)"
    )
    merchant: str
    buyer: str
    arbiter: str
    sharer: str | None
    commission_bps: int
    inviter: str | None = Field(description="second-level payee, fixed at creation")
    inviter_share_bps: int
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
    shipment_hash: str | None
    reason_hash: str | None
    disputed_by: str | None
    settlement: Settlement


class OrderResult(_Result):
    order_id: str
    exists: bool
    order: Order | None = Field(description="null when the order does not exist")
    items: list[OrderItem] | None = Field(
        description="lines of the order.create transaction (null if absent)"
    )
    created_height: int | None = Field(description="block of the order.create transaction")
    height: int = Field(description="committed height the answer is read at")
    state_root: str = Field(description="committed state root at that height")
    proof: StateProof | None = Field(None, description="with prove=true")
    value: str | None = Field(None, description="with prove=true: the raw record, hex")


class OrderListEntry(_Result):
    role: str = Field(description="the party's role in this order")
    order: Order


class ListOrdersResult(_Result):
    party: str
    orders: list[OrderListEntry] = Field(description="in increasing order id")
    next_cursor: str | None = Field(
        description="pass as cursor for the next page; null when the listing is complete"
    )
    height: int = Field(description="committed height the answer is read at")


class OpenRpcDocument(RootModel[dict[str, Any]]):
    """An OpenRPC 1.2.6 document."""
