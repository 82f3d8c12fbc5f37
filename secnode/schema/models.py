"""Parameter and result models of the node's core RPC methods (the trust methods are in
`secnode.schema.trust`, sec_getValidatorsWithProof in `secnode.schema.validators`).

These pydantic models are the single source of truth for the RPC's shape: the dispatcher
validates params with them (strict: no coercion, `extra="forbid"`), methods build results
through them (from ledger objects, `secnode.schema.objects`), clients parse answers with them,
and `rpc.discover` publishes their JSON schemas. A field's order is its position for positional
(array) params; its description is what the OpenRPC document shows.

Conventions are those of `secnode.schema.values`: bytes as lowercase hex without "0x",
addresses as sec1 text, amounts as integers in fen. Hash params accept either case of hex.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, RootModel, model_validator

from contracts import TX_TYPES
from contracts.orders import ROLES, STATES, decode_order, order_key
from ledger.accounts import account_key, decode_account, mask_to_roles
from ledger.blocks import Block
from ledger.errors import DecodeError, InvalidProof
from ledger.keys import format_address
from ledger.receipts import Receipt as LedgerReceipt
from ledger.state_tree import verify_state_proof
from ledger.transactions import MAX_TRANSACTION_SIZE, SignedTransaction, decode_transaction
from ledger.validators import ValidatorSet
from secnode.schema.objects import (
    BlockHeader,
    CommitCertificate,
    InclusionProof,
    Order,
    OrderItem,
    Receipt,
    StateProof,
    Transaction,
    Validator,
)
from secnode.schema.values import AddressBytes, Hash32, HexBytes, StrictModel, address_text

MAX_WAIT_S = 60.0
DEFAULT_WAIT_S = 10.0
_ADDRESS_PATTERN = "^sec1[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{38}$"


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
    AfterValidator(address_text),
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


class _Params(StrictModel):
    """Parameters of a method."""


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


# --- results -----------------------------------------------------------------------------------


class StatusResult(StrictModel):
    chain_id: str
    genesis_hash: Hash32 = Field(
        description="SHA-256 document hash of the genesis, hex: signed in every transaction"
    )
    node_name: str
    node_address: AddressBytes
    height: int
    head_hash: Hash32
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


def _check_committed_fields(status: str, fields: dict[str, object]) -> None:
    """Invariant of a transaction's status: the fields of its place in the chain are all present
    when it is committed and all null while it is pending."""
    committed = status == "committed"
    if {value is not None for value in fields.values()} != {committed}:
        expected = "all present" if committed else "all null"
        raise ValueError(f"status is {status}, so {', '.join(fields)} must be {expected}")


class SendTransactionResult(StrictModel):
    hash: Hash32
    status: Literal["pending", "committed"]
    height: int | None = Field(None, description="when committed")
    index: int | None = Field(None, description="position in the block, when committed")
    block_hash: Hash32 | None = Field(None, description="when committed")
    receipt: Receipt | None = Field(None, description="when committed")

    @model_validator(mode="after")
    def _committed_in_a_block(self) -> SendTransactionResult:
        location = {"height": self.height, "index": self.index, "block_hash": self.block_hash}
        _check_committed_fields(self.status, {**location, "receipt": self.receipt})
        return self


class TransactionResult(StrictModel):
    hash: Hash32
    status: Literal["pending", "committed"]
    tx: Transaction
    raw: HexBytes = Field(description="canonical transaction bytes, hex (the Merkle leaf)")
    height: int | None = Field(None, description="when committed")
    index: int | None = Field(None, description="when committed")
    block_hash: Hash32 | None = Field(None, description="when committed")
    receipt: Receipt | None = Field(None, description="when committed")
    proof: InclusionProof | None = Field(None, description="when committed: under header.tx_root")

    @model_validator(mode="after")
    def _committed_in_a_block(self) -> TransactionResult:
        location = {"height": self.height, "index": self.index, "block_hash": self.block_hash}
        _check_committed_fields(
            self.status, {**location, "receipt": self.receipt, "proof": self.proof}
        )
        return self

    def to_transaction(self) -> SignedTransaction:
        """The transaction decoded from `raw` (MalformedTransaction if it does not decode)."""
        return decode_transaction(self.raw, TX_TYPES)


class BlockResult(StrictModel):
    hash: Hash32
    header: BlockHeader
    tx_count: int
    tx_hashes: list[Hash32]
    transactions: list[Transaction] | None = Field(None, description="with full=true")
    receipts: list[Receipt] | None = Field(None, description="with full=true")

    @classmethod
    def of(cls, block: Block, receipts: list[LedgerReceipt] | None = None) -> BlockResult:
        """sec_getBlock's reply; with `receipts` (full) it holds every transaction and receipt."""
        full = receipts is not None
        return cls(
            hash=block.hash(),
            header=BlockHeader.of(block.header),
            tx_count=len(block.transactions),
            tx_hashes=[tx.hash for tx in block.transactions],
            transactions=[Transaction.of(tx) for tx in block.transactions] if full else None,
            receipts=None if receipts is None else [Receipt.of(r) for r in receipts],
        )


class CommitResult(StrictModel):
    height: int
    hash: Hash32
    header: BlockHeader
    certificate: CommitCertificate | None = Field(
        description="a quorum of signatures; null for genesis, trusted via the genesis file"
    )


class ValidatorsResult(StrictModel):
    height: int = Field(description="the block these validators certify")
    validators: list[Validator]
    size: int
    quorum: int = Field(description="(n+f)//2+1 signatures needed for a certificate")
    max_faulty: int = Field(description="f")
    hash: Hash32 = Field(description="validators_hash, as in the block header")

    @classmethod
    def of(cls, height: int, validators: ValidatorSet) -> ValidatorsResult:
        return cls(
            height=height,
            validators=Validator.list_of(validators),
            size=validators.size,
            quorum=validators.quorum,
            max_faulty=validators.max_faulty,
            hash=validators.hash(),
        )


class AccountResult(StrictModel):
    address: AddressBytes
    exists: bool
    public_key: HexBytes | None
    nonce: int | None
    balance: int | None = Field(description="fen")
    roles: list[str] | None
    name: str | None
    height: int = Field(description="committed height the answer is read at")
    state_root: Hash32 = Field(description="committed state root at that height")
    proof: StateProof | None = Field(None, description="with prove=true")
    value: HexBytes | None = Field(None, description="with prove=true: the raw record, hex")

    @model_validator(mode="after")
    def _exists_with_fields(self) -> AccountResult:
        """Invariant: the account fields are all present exactly when the account exists."""
        fields = (self.public_key, self.nonce, self.balance, self.roles, self.name)
        if {field is not None for field in fields} != {self.exists}:
            expected = "all present" if self.exists else "all null"
            raise ValueError(f"exists is {self.exists}, so the account fields must be {expected}")
        return self

    def check_proof(self) -> None:
        """Raise InvalidProof unless `proof` shows, under `state_root`, the account record of
        `address` (or its absence) and the fields shown are exactly that record's (a node cannot
        show another balance next to a genuine proof)."""
        if self.proof is None:
            raise InvalidProof("the answer carries no proof of the account record")
        verify_state_proof(
            self.state_root, account_key(self.address), self.value, self.proof.to_proof()
        )
        if self.exists != (self.value is not None):
            state = "present" if self.exists else "absent"
            raise InvalidProof(
                f"account {format_address(self.address)} is shown {state} but the proof says "
                "otherwise"
            )
        if self.value is None:
            return
        try:
            record = decode_account(self.value)
            shown = (self.public_key, self.nonce, self.balance, self.roles, self.name)
            proven = (
                record.public_key,
                record.nonce,
                record.balance,
                mask_to_roles(record.roles),
                record.name,
            )
        except (DecodeError, TypeError, ValueError) as exc:
            raise InvalidProof(f"proven account record is malformed: {exc}") from None
        if shown != proven:
            raise InvalidProof(
                f"account {format_address(self.address)} is not the proven account record"
            )


class OrderResult(StrictModel):
    order_id: Hash32
    exists: bool
    order: Order | None = Field(description="null when the order does not exist")
    items: list[OrderItem] | None = Field(
        description="the order's lines, from the order record (so a proof covers them too: "
        "they are order.items); null if the order does not exist"
    )
    created_height: int | None = Field(description="block of the order.create transaction")
    height: int = Field(description="committed height the answer is read at")
    state_root: Hash32 = Field(description="committed state root at that height")
    proof: StateProof | None = Field(None, description="with prove=true")
    value: HexBytes | None = Field(None, description="with prove=true: the raw record, hex")

    @model_validator(mode="after")
    def _exists_with_order(self) -> OrderResult:
        """Invariant: the order is present exactly when it exists."""
        if self.exists != (self.order is not None):
            expected = "present" if self.exists else "null"
            raise ValueError(f"exists is {self.exists}, so order must be {expected}")
        return self

    def check_proof(self) -> None:
        """Raise InvalidProof unless `proof` shows, under `state_root`, the order record (or its
        absence) and `order` is exactly that record (a node cannot show other fields next to a
        genuine proof), and `items` are the proven record's lines."""
        if self.proof is None:
            raise InvalidProof("the answer carries no proof of the order record")
        key = order_key(self.order_id)
        verify_state_proof(self.state_root, key, self.value, self.proof.to_proof())
        if (self.order is None) != (self.value is None):
            shown = "absent" if self.order is None else "present"
            raise InvalidProof(
                f"order {self.order_id.hex()} is shown {shown} but the proof says otherwise"
            )
        if self.order is None or self.value is None:
            return
        try:
            record = decode_order(self.value)
        except (DecodeError, TypeError, ValueError) as exc:
            raise InvalidProof(f"proven order record is malformed: {exc}") from None
        if Order.of(self.order_id, record) != self.order:
            raise InvalidProof(f"order {self.order_id.hex()} is not the proven order record")
        if self.items != self.order.items:
            raise InvalidProof(f"order {self.order_id.hex()} shows lines it does not hold")


class OrderListEntry(StrictModel):
    role: str = Field(description="the party's role in this order")
    order: Order


class ListOrdersResult(StrictModel):
    party: AddressBytes
    orders: list[OrderListEntry] = Field(description="in increasing order id")
    next_cursor: Hash32 | None = Field(
        description="pass as cursor for the next page; null when the listing is complete"
    )
    height: int = Field(description="committed height the answer is read at")


class OpenRpcDocument(RootModel[dict[str, Any]]):
    """An OpenRPC 1.2.6 document."""
