"""The export's tables: their Arrow schemas, one place (docs/operations.md "Exporting for
analysts" lists the same columns).

Conventions, for every table:

* **Amounts are exact integers**: int64 (every amount field is capped at `MAX_AMOUNT` = 2**63 - 1
  by the ledger, balances and the minted total included), never floating point. Nonces are
  uint64 (the wire allows up to 2**64 - 1).
* **Hashes and addresses** are fixed-size binary (32 and 20 bytes, what the chain hashes), with a
  text twin where an analyst types or reads them: ``*_hex`` (64 hex digits) for hashes and ids,
  ``*_address`` (sec1... bech32m, `ledger.keys.format_address`) for addresses.
* **Times** are UTC timestamps (ms precision) beside the raw integers the chain stores
  (``timestamp_ms``, ``*_s``), so nothing is lost to a time zone or a rounding.

Event tables (blocks, transactions, order events, attestations, epochs, trust scores) only ever
gain rows. State tables (orders, balances, supply) are *snapshots*: each export adds a row for
every record that changed since the previous export, stamped with `as_of_height`; the current
value of a record is its row with the largest `as_of_height`.
"""

from __future__ import annotations

from typing import Final

import pyarrow as pa

HASH: Final = pa.binary(32)
ADDRESS: Final = pa.binary(20)
TIME: Final = pa.timestamp("ms", tz="UTC")

BLOCKS: Final = pa.schema(
    [
        ("height", pa.int64()),
        ("hash", HASH),
        ("hash_hex", pa.string()),
        ("prev_hash", HASH),
        ("time", TIME),
        ("timestamp_ms", pa.int64()),
        ("proposer", ADDRESS),
        ("proposer_address", pa.string()),
        ("view", pa.int64()),
        ("tx_count", pa.int32()),
        ("tx_root", HASH),
        ("receipts_root", HASH),
        ("state_root", HASH),
        ("validators_hash", HASH),
        ("signers", pa.int32()),
    ]
)

TRANSACTIONS: Final = pa.schema(
    [
        ("height", pa.int64()),
        ("index", pa.int32()),
        ("hash", HASH),
        ("hash_hex", pa.string()),
        ("time", TIME),
        ("timestamp_ms", pa.int64()),
        ("sender", ADDRESS),
        ("sender_address", pa.string()),
        ("nonce", pa.uint64()),
        ("type", pa.string()),
        ("ok", pa.bool_()),
        ("code", pa.string()),
        ("message", pa.string()),
        ("body_json", pa.string()),
        ("events_json", pa.string()),
        ("size", pa.int32()),
    ]
)

ORDER_ITEM: Final = pa.struct(
    [
        ("sku", pa.string()),
        ("quantity", pa.int64()),
        ("unit_price", pa.int64()),
        ("returnable", pa.bool_()),
    ]
)

ORDERS: Final = pa.schema(
    [
        ("as_of_height", pa.int64()),
        ("order_id", HASH),
        ("order_id_hex", pa.string()),
        ("merchant", ADDRESS),
        ("merchant_address", pa.string()),
        ("buyer", ADDRESS),
        ("buyer_address", pa.string()),
        ("arbiter", ADDRESS),
        ("arbiter_address", pa.string()),
        ("sharer", ADDRESS),
        ("sharer_address", pa.string()),
        ("commission_bps", pa.int32()),
        ("leader", ADDRESS),
        ("leader_address", pa.string()),
        ("leader_commission_bps", pa.int32()),
        ("items", pa.list_(ORDER_ITEM)),
        ("goods", pa.int64()),
        ("shipping", pa.int64()),
        ("total", pa.int64()),
        ("state", pa.string()),
        ("created", TIME),
        ("created_s", pa.int64()),
        ("updated", TIME),
        ("updated_s", pa.int64()),
        ("due", TIME),
        ("due_s", pa.int64()),
        ("shipment_hash", HASH),
        ("reason_hash", HASH),
        ("disputed_by", ADDRESS),
        ("pickup_hash", HASH),
        ("returned", pa.list_(pa.int32())),
        ("return_hash", HASH),
        ("held", pa.int64()),
        ("refunded", pa.int64()),
        ("merchant_paid", pa.int64()),
        ("sharer_paid", pa.int64()),
        ("leader_paid", pa.int64()),
        ("record_hash", HASH),
    ]
)

ORDER_EVENTS: Final = pa.schema(
    [
        ("order_id", HASH),
        ("order_id_hex", pa.string()),
        ("height", pa.int64()),
        ("position", pa.int32()),
        ("index", pa.int32()),
        ("tx_hash", HASH),
        ("time", TIME),
        ("time_s", pa.int64()),
        ("type", pa.string()),
        ("event", pa.string()),
        ("actor", ADDRESS),
        ("actor_address", pa.string()),
        ("state", pa.string()),
    ]
)

ATTESTATIONS: Final = pa.schema(
    [
        ("sequence", pa.int64()),
        ("order_id", HASH),
        ("order_id_hex", pa.string()),
        ("attester", ADDRESS),
        ("attester_address", pa.string()),
        ("subject", ADDRESS),
        ("subject_address", pa.string()),
        ("value", pa.int8()),
        ("order_total", pa.int64()),
        ("completed", TIME),
        ("completed_s", pa.int64()),
        ("height", pa.int64()),
    ]
)

EPOCHS: Final = pa.schema(
    [
        ("epoch", pa.int64()),
        ("input_height", pa.int64()),
        ("committed_height", pa.int64()),
        ("attestations", pa.int64()),
        ("accounts", pa.int64()),
        ("inputs_root", HASH),
        ("inputs_root_hex", pa.string()),
        ("scores_root", HASH),
        ("scores_root_hex", pa.string()),
        ("version", pa.int32()),
        ("min_order_fen", pa.int64()),
        ("scale", pa.int64()),
        ("iterations", pa.int32()),
        ("alpha_ppm", pa.int64()),
        ("pair_cap", pa.int32()),
        ("pair_window_s", pa.int64()),
        ("pretrusted", pa.list_(ADDRESS)),
    ]
)

TRUST_SCORES: Final = pa.schema(
    [
        ("epoch", pa.int64()),
        ("address", ADDRESS),
        ("address_text", pa.string()),
        ("score", pa.int64()),
        ("positive", pa.int64()),
        ("negative", pa.int64()),
    ]
)

BALANCES: Final = pa.schema(
    [
        ("as_of_height", pa.int64()),
        ("address", ADDRESS),
        ("address_text", pa.string()),
        ("public_key", HASH),
        ("name", pa.string()),
        ("roles", pa.list_(pa.string())),
        ("balance", pa.int64()),
        ("nonce", pa.uint64()),
        ("record_hash", HASH),
    ]
)

SUPPLY: Final = pa.schema(
    [
        ("as_of_height", pa.int64()),
        ("minted", pa.int64()),
        ("burned", pa.int64()),
        ("escrow", pa.int64()),
    ]
)

TABLES: Final[dict[str, pa.Schema]] = {
    "blocks": BLOCKS,
    "transactions": TRANSACTIONS,
    "order_events": ORDER_EVENTS,
    "orders": ORDERS,
    "attestations": ATTESTATIONS,
    "epochs": EPOCHS,
    "trust_scores": TRUST_SCORES,
    "balances": BALANCES,
    "supply": SUPPLY,
}
"""Table name -> schema; each export segment holds one `<name>.parquet` per table."""

SNAPSHOT_KEYS: Final[dict[str, str]] = {"orders": "order_id", "balances": "address"}
"""The snapshot tables and the column that identifies a record in them."""
