"""Where an export reads the chain: a stopped node's LevelDB store, row by row.

`open_home` opens a node home's store for reading (its `config.toml`, genesis and data
directory); a running node holds LevelDB's lock, which is reported as such, never waited on.
`ChainSource` turns the stored rows into table columns (`secnode.export.schema`) for a range of
heights. It reads committed rows only (blocks, receipts, state rows as of the head, and the
node-local order events index) and writes nothing, so the store is the same after an export.

Why the store and not JSON-RPC: an export reads every block, receipt and state record once. The
store gives them in key order at disk speed; over RPC the same rows would cost one call (and
proof building) per page, and the order events index is only on the node that kept it. The
price is that the node must be stopped, or the export run against a copy of its home
(an auditor's or archive node's copy, or a snapshot).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeAlias

import msgpack

from contracts import TX_TYPES
from contracts.eigentrust import Attestation, TrustScore, scores_root
from contracts.eigentrust_numpy import epoch_scores
from contracts.epochs import EpochRecord, read_epoch
from contracts.orders import ORDER_PREFIX, decode_order
from contracts.trust import ATTESTATION_PREFIX, extend_frontier, frontier_root
from ledger.accounts import ACCOUNT_PREFIX, SUPPLY_KEY, decode_account, mask_to_roles
from ledger.encoding import decode
from ledger.errors import LedgerError
from ledger.genesis import load_genesis
from ledger.keys import format_address
from ledger.store import GENESIS_KEY, ChainStore
from ledger.store_leveldb import LevelDBStore
from secnode.export.schema import (
    ATTESTATIONS,
    BALANCES,
    BLOCKS,
    ORDER_EVENTS,
    ORDERS,
    TRANSACTIONS,
)
from secnode.runtime.config import load_config
from secnode.runtime.order_index import ORDER_EVENTS_PREFIX, OrderEvent

Columns: TypeAlias = dict[str, list[Any]]
"""A table's rows as one list per column name (what `pyarrow.Table.from_pydict` takes)."""
Hashes: TypeAlias = dict[bytes, bytes]
"""Record id -> SHA-256 of the record as last exported (to find records that changed)."""


class ExportError(Exception):
    """An export that cannot go on; the message names what is wrong and what to do."""


@lru_cache(maxsize=1 << 16)
def _sec1(address: bytes) -> str:
    """`format_address`, remembered: the same few accounts appear in most rows, and the bech32m
    checksum was two thirds of an export's time."""
    return format_address(address)


def _address(value: bytes | None) -> str | None:
    return None if value is None else _sec1(value)


def _hex(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


def _json(value: Any) -> str:
    """A wire value as JSON text: bytes as hex (addresses too: the binary columns are exact)."""
    return json.dumps(value, default=bytes.hex, sort_keys=True, separators=(",", ":"))


def _empty(names: Iterator[str] | list[str]) -> Columns:
    return {name: [] for name in names}


@dataclass(frozen=True, slots=True)
class StoreReader:
    """Point reads of committed state rows (a `ledger.state.StateReader` over the store)."""

    store: ChainStore

    def get(self, key: bytes) -> bytes | None:
        return self.store.kv.get(b"S" + key)


def open_home(home: Path) -> tuple[ChainStore, bytes]:
    """The chain store of node home `home` and its genesis document hash, opened for reading.

    Raises ExportError if the home has no config, genesis or chain data, if its data belongs
    to another genesis, or if a running node holds the store's lock."""
    try:
        config = load_config(home)
        genesis = load_genesis(_resolve(home, config.genesis_file))
    except LedgerError as exc:
        raise ExportError(f"--home {home}: {exc}") from None
    data = _resolve(home, config.data_dir)
    if not (data / "CURRENT").is_file():
        raise ExportError(f"--home {home}: no chain data in {data} (has this node ever started?)")
    try:
        kv = LevelDBStore(data)
    except LedgerError as exc:
        if "lock" in str(exc).lower():
            raise ExportError(
                f"--home {home}: the store {data} is locked by a running node (LevelDB allows "
                "one process); stop the node first, or export from a copy of its home"
            ) from None
        raise ExportError(f"--home {home}: {exc}") from None
    store = ChainStore(kv, TX_TYPES)
    genesis_hash = genesis.document_hash()
    stored = kv.get(GENESIS_KEY)
    if stored != genesis_hash or store.head_height() is None:
        store.close()
        raise ExportError(
            f"--home {home}: the store in {data} does not hold the chain of "
            f"{config.genesis_file} (genesis {genesis_hash.hex()[:16]}...)"
        )
    return store, genesis_hash


def _resolve(home: Path, name: str) -> Path:
    path = Path(name)
    return path if path.is_absolute() else home / path


class ChainSource:
    """Table columns from a chain store, for heights `start` .. `end` (see the module docstring).

    `end` must be the store's head: state tables are read as of the head."""

    def __init__(self, store: ChainStore) -> None:
        self.store = store
        self.state = StoreReader(store)
        head = store.head_height()
        if head is None:
            raise ExportError("the store has no head block")
        self.head = head

    # --- blocks and transactions -------------------------------------------------------------

    def blocks(self, start: int, end: int, tick: Callable[[int], None]) -> tuple[Columns, Columns]:
        """Blocks `start` .. `end` and their transactions with receipts."""
        blocks = _empty(BLOCKS.names)
        txs = _empty(TRANSACTIONS.names)
        store = self.store
        for height in range(start, end + 1):
            block = store.get_block(height)
            receipts = store.get_receipts(height)
            if block is None or receipts is None:
                raise ExportError(f"block {height} is missing from the store (pruned?)")
            header = block.header
            block_hash = block.hash()
            raw_certificate = store.kv.get(b"C" + height.to_bytes(8, "big"))
            signers = 0 if raw_certificate is None else len(decode(raw_certificate)["signatures"])
            for name, value in (
                ("height", height),
                ("hash", block_hash),
                ("hash_hex", block_hash.hex()),
                ("prev_hash", header.prev_hash),
                ("time", header.timestamp_ms),
                ("timestamp_ms", header.timestamp_ms),
                ("proposer", header.proposer),
                ("proposer_address", _sec1(header.proposer)),
                ("view", header.view),
                ("tx_count", len(block.transactions)),
                ("tx_root", header.tx_root),
                ("receipts_root", header.receipts_root),
                ("state_root", header.state_root),
                ("validators_hash", header.validators_hash),
                ("signers", signers),
            ):
                blocks[name].append(value)
            for index, (tx, receipt) in enumerate(zip(block.transactions, receipts, strict=True)):
                wire = tx.to_wire()
                for name, value in (
                    ("height", height),
                    ("index", index),
                    ("hash", tx.hash),
                    ("hash_hex", tx.hash.hex()),
                    ("time", header.timestamp_ms),
                    ("timestamp_ms", header.timestamp_ms),
                    ("sender", tx.sender_address),
                    ("sender_address", _sec1(tx.sender_address)),
                    ("nonce", tx.nonce),
                    ("type", tx.type),
                    ("ok", receipt.ok),
                    ("code", receipt.code),
                    ("message", receipt.message),
                    ("body_json", _json(wire["body"])),
                    ("events_json", _json(list(receipt.events))),
                    ("size", len(tx.encoded)),
                ):
                    txs[name].append(value)
            tick(height)
        return blocks, txs

    # --- order events and orders --------------------------------------------------------------

    def order_events(self, start: int, end: int) -> Columns:
        """The indexed order events of blocks `start` .. `end`, by order then height."""
        columns = _empty(ORDER_EVENTS.names)
        for key, raw in self.store.index_rows(ORDER_EVENTS_PREFIX):
            order_id = key[1:33]
            height = int.from_bytes(key[33:41], "big")
            if not start <= height <= end:
                continue
            event = OrderEvent.from_wire(decode(raw))
            for name, value in (
                ("order_id", order_id),
                ("order_id_hex", order_id.hex()),
                ("height", height),
                ("position", int.from_bytes(key[41:45], "big")),
                ("index", event.index),
                ("tx_hash", event.tx_hash),
                ("time", event.time_s * 1000),
                ("time_s", event.time_s),
                ("type", event.type),
                ("event", event.event),
                ("actor", event.actor),
                ("actor_address", _address(event.actor)),
                ("state", event.state),
            ):
                columns[name].append(value)
        return columns

    def orders(self, exported: Hashes) -> Columns:
        """Every order record that is not in `exported` with the same hash, as of the head."""
        columns = _empty(ORDERS.names)
        for key, raw in self.store.state_rows(ORDER_PREFIX):
            order_id = key[len(ORDER_PREFIX) :]
            digest = hashlib.sha256(raw).digest()
            if exported.get(order_id) == digest:
                continue
            order = decode_order(raw)
            items = [
                {
                    "sku": item.sku,
                    "quantity": item.quantity,
                    "unit_price": item.unit_price,
                    "returnable": item.is_returnable,
                }
                for item in order.items
            ]
            for name, value in (
                ("as_of_height", self.head),
                ("order_id", order_id),
                ("order_id_hex", order_id.hex()),
                ("merchant", order.merchant),
                ("merchant_address", _sec1(order.merchant)),
                ("buyer", order.buyer),
                ("buyer_address", _sec1(order.buyer)),
                ("arbiter", order.arbiter),
                ("arbiter_address", _sec1(order.arbiter)),
                ("sharer", order.sharer),
                ("sharer_address", _address(order.sharer)),
                ("commission_bps", order.commission_bps),
                ("leader", order.leader),
                ("leader_address", _address(order.leader)),
                ("leader_commission_bps", order.leader_commission_bps),
                ("items", items),
                ("goods", order.goods),
                ("shipping", order.shipping),
                ("total", order.goods + order.shipping),
                ("state", order.state),
                ("created", order.created_s * 1000),
                ("created_s", order.created_s),
                ("updated", order.updated_s * 1000),
                ("updated_s", order.updated_s),
                ("due", None if order.due_s is None else order.due_s * 1000),
                ("due_s", order.due_s),
                ("shipment_hash", order.shipment_hash),
                ("reason_hash", order.reason_hash),
                ("disputed_by", order.disputed_by),
                ("pickup_hash", order.pickup_hash),
                ("returned", list(order.returned)),
                ("return_hash", order.return_hash),
                ("held", order.held),
                ("refunded", order.refunded),
                ("merchant_paid", order.merchant_paid),
                ("sharer_paid", order.sharer_paid),
                ("leader_paid", order.leader_paid),
                ("record_hash", digest),
            ):
                columns[name].append(value)
        return columns

    # --- balances and supply ------------------------------------------------------------------

    def balances(self, exported: Hashes) -> Columns:
        """Every account record not in `exported` with the same hash, as of the head."""
        columns = _empty(BALANCES.names)
        for key, raw in self.store.state_rows(ACCOUNT_PREFIX):
            address = key[len(ACCOUNT_PREFIX) :]
            digest = hashlib.sha256(raw).digest()
            if exported.get(address) == digest:
                continue
            account = decode_account(raw)
            for name, value in (
                ("as_of_height", self.head),
                ("address", address),
                ("address_text", _sec1(address)),
                ("public_key", account.public_key),
                ("name", account.name),
                ("roles", mask_to_roles(account.roles)),
                ("balance", account.balance),
                ("nonce", account.nonce),
                ("record_hash", digest),
            ):
                columns[name].append(value)
        return columns

    def supply(self) -> Columns:
        raw = self.state.get(SUPPLY_KEY)
        minted, burned, escrow = (0, 0, 0) if raw is None else msgpack.unpackb(raw)
        return {
            "as_of_height": [self.head],
            "minted": [minted],
            "burned": [burned],
            "escrow": [escrow],
        }

    # --- attestations and trust epochs --------------------------------------------------------

    def attestation_leaves(self, start: int) -> list[bytes]:
        """The leaf bytes of attestations `start` .. (the log's end), in sequence order."""
        first = b"S" + ATTESTATION_PREFIX + start.to_bytes(8, "big")
        leaves = []
        for sequence, (key, raw) in enumerate(
            self.store.kv.iterate(b"S" + ATTESTATION_PREFIX, first), start
        ):
            if int.from_bytes(key[-8:], "big") != sequence:
                raise ExportError(f"attestation {sequence} is missing from the store")
            leaves.append(raw)
        return leaves

    def attestations(self, start: int, leaves: list[bytes]) -> Columns:
        """Columns of attestations numbered from `start` whose leaf bytes are `leaves`."""
        columns = _empty(ATTESTATIONS.names)
        for sequence, raw in enumerate(leaves, start):
            record = Attestation(*msgpack.unpackb(raw))
            for name, value in (
                ("sequence", sequence),
                ("order_id", record.order_id),
                ("order_id_hex", record.order_id.hex()),
                ("attester", record.attester),
                ("attester_address", _sec1(record.attester)),
                ("subject", record.subject),
                ("subject_address", _sec1(record.subject)),
                ("value", record.value),
                ("order_total", record.order_total),
                ("completed", record.completed_s * 1000),
                ("completed_s", record.completed_s),
                ("height", record.height),
            ):
                columns[name].append(value)
        return columns

    def latest_epoch(self) -> int:
        """The number of the last committed trust epoch (0: none yet)."""
        stored = read_epoch(self.state)
        return 0 if stored is None else stored.record.epoch

    def epoch(self, number: int) -> EpochRecord:
        try:
            stored = read_epoch(self.state, number)
        except LedgerError as exc:
            raise ExportError(str(exc)) from None
        if stored is None:
            raise ExportError(f"the record of trust epoch {number} is missing from the store")
        return stored.record


class EpochInputs:
    """The attestation log from sequence 0, for recomputing epochs in increasing order: each
    leaf is decoded and hashed once, and the inputs root of each epoch's prefix of the log is
    read from a frontier extended as epochs grow (as the chain's own log does, §17.2), so k
    epochs over n attestations cost O(n) here rather than O(k·n)."""

    def __init__(self, leaves: list[bytes]) -> None:
        self.leaves = leaves
        self.records = [Attestation(*msgpack.unpackb(leaf)) for leaf in leaves]
        self._frontier: list[bytes] = []
        self._count = 0

    def root(self, count: int) -> bytes:
        """The RFC 6962 root of the first `count` leaves (`count` never decreases)."""
        if count < self._count:
            raise ExportError(f"epoch inputs shrank from {self._count} to {count} attestations")
        for sequence in range(self._count, count):
            extend_frontier(self._frontier, sequence, self.leaves[sequence])
        self._count = count
        return frontier_root(self._frontier)


def recompute_epoch(record: EpochRecord, inputs: EpochInputs) -> list[TrustScore]:
    """Every account's score in epoch `record`, recomputed from its inputs (the first
    `record.attestations` of the log) with the epoch's parameters, and checked: the inputs must
    hash to the record's inputs root and the scores to its scores root (the chain keeps only the
    latest epoch's scores; this makes every epoch's, bit for bit)."""
    count = record.attestations
    if len(inputs.leaves) < count:
        raise ExportError(
            f"trust epoch {record.epoch} has {count} inputs but the log holds {len(inputs.leaves)}"
        )
    root = inputs.root(count)
    if root != record.inputs_root:
        raise ExportError(
            f"trust epoch {record.epoch}: the stored attestations hash to {root.hex()}, not the "
            f"epoch's inputs root {record.inputs_root.hex()} (the store is damaged)"
        )
    scores = epoch_scores(inputs.records[:count], record.parameters)
    computed = scores_root(scores)
    if computed != record.scores_root or len(scores) != record.accounts:
        raise ExportError(
            f"trust epoch {record.epoch}: recomputed scores root {computed.hex()} over "
            f"{len(scores)} accounts is not the chain's {record.scores_root.hex()} over "
            f"{record.accounts}"
        )
    return scores


def epoch_columns(record: EpochRecord, scores: list[TrustScore]) -> tuple[Columns, Columns]:
    """One `epochs` row and the epoch's `trust_scores` rows."""
    parameters = record.parameters.to_wire()
    epoch: Columns = {
        "epoch": [record.epoch],
        "input_height": [record.input_height],
        "committed_height": [record.committed_height],
        "attestations": [record.attestations],
        "accounts": [record.accounts],
        "inputs_root": [record.inputs_root],
        "inputs_root_hex": [record.inputs_root.hex()],
        "scores_root": [record.scores_root],
        "scores_root_hex": [record.scores_root.hex()],
        "version": [parameters["version"]],
        "min_order_fen": [parameters["min_order_fen"]],
        "scale": [parameters["scale"]],
        "iterations": [parameters["iterations"]],
        "alpha_ppm": [parameters["alpha_ppm"]],
        "pair_cap": [parameters["pair_cap"]],
        "pair_window_s": [parameters["pair_window_s"]],
        "pretrusted": [list(parameters["pretrusted"])],
    }
    rows: Columns = {
        "epoch": [record.epoch] * len(scores),
        "address": [s.address for s in scores],
        "address_text": [_sec1(s.address) for s in scores],
        "score": [s.score for s in scores],
        "positive": [s.positive for s in scores],
        "negative": [s.negative for s in scores],
    }
    return epoch, rows
