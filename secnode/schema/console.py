"""Parameter and result models of the read methods the web console needs (docs/rpc.md):
sec_getGenesis, sec_getNetwork, sec_getOrderHistory and sec_getTrustDistribution.

None of these answers carries a proof: they are what a page shows around the verified values
(the genesis document is checked by its hash, which every transaction signs and which the
console compares with sec_status or its pinned file; everything else is node-local or derived).
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import Field, model_validator

from secnode.schema.models import Hash
from secnode.schema.objects import Order
from secnode.schema.values import AddressBytes, Hash32, HexBytes, StrictModel

TRUST_BUCKETS: Final = 10
"""sec_getTrustDistribution splits [0, max score] into this many equal-width buckets."""
TOP_ACCOUNTS: Final = 20
"""sec_getTrustDistribution lists at most this many accounts by score."""
MAX_ORDER_EVENTS: Final = 256
"""sec_getOrderHistory returns at most this many events (an order has a handful)."""
RECENT_BLOCKS: Final = 20
"""sec_getNetwork lists at most this many recent blocks."""


# --- sec_getGenesis ----------------------------------------------------------------------------


class GenesisResult(StrictModel):
    genesis_hash: Hash32 = Field(
        description="docs/protocol.md §9.2 hash of the document: sec_status.genesis_hash"
    )
    document: dict[str, Any] = Field(
        description="the genesis document as JSON, normalized (§9.2: every top-level field, "
        "defaults filled in); parse it as a genesis file to recompute the hash"
    )


# --- sec_getNetwork ----------------------------------------------------------------------------


class NetworkPeer(StrictModel):
    name: str | None = Field(
        description="the validator's name in the genesis, else the node config's peer name"
    )
    address: AddressBytes | None = Field(description="address of the peer's node key")
    host: str | None = Field(description="ip:port of the connection, if known")


class NetworkValidator(StrictModel):
    index: int = Field(description="position in the head's validator set (sorted by address)")
    address: AddressBytes
    public_key: HexBytes
    name: str | None = Field(description="its name in the genesis document, if it is there")
    last_signed_height: int | None = Field(
        description="highest height whose stored commit certificate it signed, among the last "
        "256 at start and every later commit; null if none"
    )


class RecentBlockJson(StrictModel):
    height: int
    hash: Hash32
    timestamp_ms: int = Field(description="block time")
    tx_count: int
    signers: int = Field(description="signatures in its commit certificate (0 for genesis)")
    committed_ms: int | None = Field(
        description="this node's wall clock when it committed the block; null if unknown "
        "(committed before the node started)"
    )
    finality_ms: int | None = Field(description="committed_ms - timestamp_ms; null if unknown")

    @model_validator(mode="after")
    def _finality_of_commit(self) -> RecentBlockJson:
        """Invariant: finality is the commit time minus the block time, or both are null."""
        expected = None if self.committed_ms is None else self.committed_ms - self.timestamp_ms
        if self.finality_ms != expected:
            raise ValueError(f"finality_ms must be {expected} (committed_ms - timestamp_ms)")
        return self


class NetworkResult(StrictModel):
    height: int = Field(description="head height")
    head_hash: Hash32
    head_time_ms: int
    view: int = Field(description="this node's PBFT view")
    view_changes: int = Field(description="view changes this node saw since it started")
    mempool_size: int
    peers: list[NetworkPeer]
    validators: list[NetworkValidator] = Field(description="the head's validator set")
    recent_blocks: list[RecentBlockJson] = Field(
        max_length=RECENT_BLOCKS, description="the last blocks, newest first"
    )


# --- sec_getOrderHistory -----------------------------------------------------------------------


class GetOrderHistoryParams(StrictModel):
    order_id: Hash = Field(description="order id (an order.create hash or a group member's id)")


class OrderEventJson(StrictModel):
    height: int = Field(description="block the change happened in")
    index: int | None = Field(description="its transaction's index in the block; null: deadline")
    tx_hash: Hash32 | None = Field(description="its transaction; null for a deadline")
    time_s: int = Field(description="block time, seconds")
    type: str = Field(description='the transaction type, or "deadline" for a default outcome')
    event: str = Field(
        description="created, paid, shipped, arrived, received, return_requested, "
        "return_shipped, disputed, resolved, completed, cancelled or refunded"
    )
    actor: AddressBytes | None = Field(description="who signed it; null for a deadline")
    state: str = Field(description="the order's state after it")

    @model_validator(mode="after")
    def _deadline_has_no_transaction(self) -> OrderEventJson:
        """Invariant: a deadline has no transaction, index or actor; a transaction has all."""
        deadline = self.type == "deadline"
        for name in ("index", "tx_hash", "actor"):
            if (getattr(self, name) is None) != deadline:
                expected = "null" if deadline else "present"
                raise ValueError(f"type is {self.type!r}, so {name} must be {expected}")
        return self


class NextDeadline(StrictModel):
    state: str = Field(description="the order's current state")
    due_s: int = Field(description="block time at which its default outcome is taken")
    outcome: str = Field(description="that outcome, in words (docs/protocol.md §16.1)")


class OrderHistoryResult(StrictModel):
    order_id: Hash32
    events: list[OrderEventJson] = Field(
        max_length=MAX_ORDER_EVENTS,
        description="oldest first; only blocks this node indexed (from its upgrade on)",
    )
    order: Order | None = Field(
        description="the order as sec_getOrder shows it (unproven; verify with sec_getOrder)"
    )
    next_deadline: NextDeadline | None = Field(
        description="null when the order is terminal (or unknown)"
    )


# --- sec_getTrustDistribution ------------------------------------------------------------------


class GetTrustDistributionParams(StrictModel):
    epoch: int | None = Field(
        None, ge=1, le=2**63 - 1, description="a committed epoch; default the latest"
    )


class TrustBucket(StrictModel):
    low: int = Field(description="lowest score counted (inclusive)")
    high: int = Field(
        description="upper bound, exclusive; the last bucket's is the maximum score, inclusive"
    )
    count: int


class TrustTopEntry(StrictModel):
    address: AddressBytes
    score: int = Field(description="as sec_getTrustScore's score (units of 1/10**9)")


class TrustDistributionResult(StrictModel):
    epoch: int
    accounts: int = Field(description="accounts the epoch computed a score for (its universe)")
    scored: int = Field(description="of those, accounts with a score above 0")
    buckets: list[TrustBucket] = Field(
        min_length=TRUST_BUCKETS,
        max_length=TRUST_BUCKETS,
        description="equal-width buckets over [0, max score], counting every account",
    )
    top: list[TrustTopEntry] = Field(
        max_length=TOP_ACCOUNTS, description="highest scores first, ties by address"
    )
