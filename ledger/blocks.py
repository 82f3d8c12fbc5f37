"""Blocks: header, body, header hash and the block wire format.

Header wire map (canonical encoding; docs/protocol.md "Blocks"):
    chain_id, height, prev_hash, timestamp_ms, proposer, view, tx_root, receipts_root,
    state_root, validators_hash
The header hash (the block's identity, what PBFT orders and certificates sign) is
    SHA-256(b"SEC/header/v1" || encode(header map)).
`tx_root` is the RFC 6962 root over the transactions' canonical encodings in block order;
`receipts_root` the same over the receipts; `state_root` the state after executing the block;
`validators_hash` identifies the validator set that must certify this block.

Height 0 is the genesis block: no transactions, `prev_hash` = SHA-256 of the canonical genesis
document, proposer = 20 zero bytes, and no certificate (it is trusted through the genesis file).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from ledger.encoding import decode, encode
from ledger.errors import DecodeError, MalformedBlock, MalformedTransaction
from ledger.hashing import HASH_SIZE
from ledger.keys import ADDRESS_SIZE
from ledger.merkle import leaf_hash, merkle_root
from ledger.schema import integer, raw_bytes, text
from ledger.transactions import (
    MAX_TRANSACTION_SIZE,
    SignedTransaction,
    TxTypes,
    parse_transaction,
)

MAX_BLOCK_TRANSACTIONS: Final = 10_000
MAX_BLOCK_SIZE: Final = MAX_BLOCK_TRANSACTIONS * 400 + 64 * 1024
"""Cap on an encoded block: consensus payloads and catch-up responses are bounded by it."""
ZERO_HASH: Final = bytes(HASH_SIZE)

_HEADER_FIELDS: Final = (
    "chain_id",
    "height",
    "prev_hash",
    "timestamp_ms",
    "proposer",
    "view",
    "tx_root",
    "receipts_root",
    "state_root",
    "validators_hash",
)


@dataclass(frozen=True, slots=True)
class BlockHeader:
    """What a certificate commits to."""

    chain_id: str
    """The chain this block belongs to."""
    height: int
    """0 for genesis, then +1 per block."""
    prev_hash: bytes
    """Header hash of the parent (genesis: hash of the genesis document)."""
    timestamp_ms: int
    """Block time in ms since the Unix epoch, set by the proposer; strictly increasing."""
    proposer: bytes
    """Address of the validator that proposed the block."""
    view: int
    """PBFT view in which the block was proposed."""
    tx_root: bytes
    """RFC 6962 root of the transactions."""
    receipts_root: bytes
    """RFC 6962 root of the receipts."""
    state_root: bytes
    """State root after executing this block."""
    validators_hash: bytes
    """Hash of the validator set that certifies this block."""

    def to_wire(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _HEADER_FIELDS}

    def hash(self) -> bytes:
        return header_hash(self)

    @property
    def time_s(self) -> int:
        """Block time in whole seconds: the clock every contract deadline uses."""
        return self.timestamp_ms // 1000


def header_hash(header: BlockHeader) -> bytes:
    return hashlib.sha256(b"SEC/header/v1" + encode(header.to_wire())).digest()


def parse_header(value: Any) -> BlockHeader:
    """Validate a decoded header map; raise MalformedBlock naming the bad field."""
    if not isinstance(value, dict) or set(value) != set(_HEADER_FIELDS):
        raise MalformedBlock(f"header must be a map with exactly the fields {list(_HEADER_FIELDS)}")
    try:
        return BlockHeader(
            chain_id=text(64, min_length=1)(value["chain_id"], "header.chain_id"),
            height=integer(0, 2**63 - 1)(value["height"], "header.height"),
            prev_hash=raw_bytes(HASH_SIZE)(value["prev_hash"], "header.prev_hash"),
            timestamp_ms=integer(0, 2**63 - 1)(value["timestamp_ms"], "header.timestamp_ms"),
            proposer=raw_bytes(ADDRESS_SIZE)(value["proposer"], "header.proposer"),
            view=integer(0, 2**63 - 1)(value["view"], "header.view"),
            tx_root=raw_bytes(HASH_SIZE)(value["tx_root"], "header.tx_root"),
            receipts_root=raw_bytes(HASH_SIZE)(value["receipts_root"], "header.receipts_root"),
            state_root=raw_bytes(HASH_SIZE)(value["state_root"], "header.state_root"),
            validators_hash=raw_bytes(HASH_SIZE)(
                value["validators_hash"], "header.validators_hash"
            ),
        )
    except MalformedTransaction as exc:  # the schema helpers speak of transactions
        raise MalformedBlock(str(exc)) from exc


@dataclass(frozen=True, slots=True)
class Block:
    """A header and its ordered transactions."""

    header: BlockHeader
    """The certified part."""
    transactions: tuple[SignedTransaction, ...]
    """Transactions in execution order; their RFC 6962 root is `header.tx_root`."""

    @property
    def height(self) -> int:
        return self.header.height

    def hash(self) -> bytes:
        return header_hash(self.header)

    def to_wire(self) -> dict[str, Any]:
        return {
            "header": self.header.to_wire(),
            "transactions": [tx.encoded for tx in self.transactions],
        }

    def encode(self) -> bytes:
        return encode(self.to_wire())


def transactions_root(
    transactions: tuple[SignedTransaction, ...] | list[SignedTransaction],
) -> bytes:
    return merkle_root([leaf_hash(tx.encoded) for tx in transactions])


def decode_block(
    data: bytes, types: TxTypes, known: Mapping[bytes, SignedTransaction] | None = None
) -> Block:
    """Decode and structurally validate a block (the one entry point for untrusted blocks).

    Checks the schema of header and every transaction (whose type must be one of `types`) and
    that `tx_root` matches; it does not
    execute anything or check signatures. `known` maps transaction hashes to transactions
    already parsed (the mempool): a transaction whose bytes hash to a known one is reused
    instead of parsed again (same hash, same bytes, same parse).
    """
    try:
        value = decode(data, max_size=MAX_BLOCK_SIZE)
    except DecodeError as exc:
        raise MalformedBlock(f"block bytes: {exc}") from exc
    if not isinstance(value, dict) or set(value) != {"header", "transactions"}:
        raise MalformedBlock("block must be a map of header and transactions")
    header = parse_header(value["header"])
    raw_transactions = value["transactions"]
    if not isinstance(raw_transactions, list) or len(raw_transactions) > MAX_BLOCK_TRANSACTIONS:
        raise MalformedBlock(f"transactions must be a list of at most {MAX_BLOCK_TRANSACTIONS}")
    transactions = []
    for index, raw in enumerate(raw_transactions):
        if not isinstance(raw, bytes) or len(raw) > MAX_TRANSACTION_SIZE:
            raise MalformedBlock(
                f"transaction {index} must be at most {MAX_TRANSACTION_SIZE} bytes"
            )
        if known is not None:
            cached = known.get(hashlib.sha256(raw).digest())
            if cached is not None:
                transactions.append(cached)
                continue
        try:
            transactions.append(parse_transaction(decode(raw, MAX_TRANSACTION_SIZE), types, raw))
        except (DecodeError, MalformedTransaction) as exc:
            raise MalformedBlock(f"transaction {index}: {exc}") from exc
    block = Block(header, tuple(transactions))
    actual_root = transactions_root(block.transactions)
    if actual_root != header.tx_root:
        raise MalformedBlock(
            f"tx_root {header.tx_root.hex()} does not match the transactions ({actual_root.hex()})"
        )
    return block
