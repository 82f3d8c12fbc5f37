"""RPC methods for the web console's pages: sec_getGenesis, sec_getNetwork, sec_getOrderHistory
(sec_getTrustDistribution is in `trust_distribution`).

None of them carries a proof; each reads without an `await` in between, so one answer is one
committed height. Costs stay flat however long the chain: sec_getGenesis is encoded once (the
dispatcher keeps the bytes, `Method.constant`), sec_getNetwork reads the node's in-memory
`ChainActivity` (no store scan), and sec_getOrderHistory is one prefix scan of the node-local
order events index (`secnode.runtime.order_index`), capped at `MAX_ORDER_EVENTS` rows, plus one
read of the order record.
"""

from __future__ import annotations

from typing import Final

from contracts.orders import find_order
from ledger.errors import StoreError
from ledger.keys import address_of
from ledger.store import CommittedState
from secnode.runtime.order_index import DEADLINE_OUTCOMES, order_events
from secnode.runtime.rpc import trust_distribution
from secnode.runtime.rpc.budget import Worker
from secnode.runtime.rpc.errors import NOT_FOUND, not_found
from secnode.runtime.rpc.jsonrpc import Method
from secnode.runtime.rpc.trust_distribution import TrustDistributions
from secnode.runtime.rpc.view import NodeView
from secnode.schema.console import (
    MAX_ORDER_EVENTS,
    GenesisResult,
    GetOrderHistoryParams,
    GetTrustDistributionParams,
    NetworkPeer,
    NetworkResult,
    NetworkValidator,
    NextDeadline,
    OrderEventJson,
    OrderHistoryResult,
    RecentBlockJson,
    TrustDistributionResult,
)
from secnode.schema.models import NoParams
from secnode.schema.objects import Order as OrderView


async def get_genesis(view: NodeView, params: NoParams) -> GenesisResult:
    """sec_getGenesis: the normalized document (§9.2) and its hash."""
    return GenesisResult(
        genesis_hash=view.genesis.document_hash(), document=view.genesis.model_dump(mode="json")
    )


def _validator_names(view: NodeView) -> dict[bytes, str]:
    """Public key -> name, from the genesis document."""
    return {bytes.fromhex(v.public_key): v.name for v in view.genesis.validators}


async def get_network(view: NodeView, params: NoParams) -> NetworkResult:
    """sec_getNetwork. In-memory reads plus the head's validator set (no await below)."""
    status = view.status()
    names = _validator_names(view)
    last_signed = view.activity.last_signed
    validators = [
        NetworkValidator(
            index=index,
            address=member.address,
            public_key=bytes(member.public_key),
            name=names.get(bytes(member.public_key)),
            last_signed_height=last_signed.get(bytes(member.address)),
        )
        for index, member in enumerate(view.validators_at(status.height).members)
    ]
    peers = [
        NetworkPeer(
            name=names.get(peer.public_key, peer.name),
            address=address_of(peer.public_key),
            host=peer.host,
        )
        for peer in view.peers()
    ]
    return NetworkResult(
        height=status.height,
        head_hash=status.head_hash,
        head_time_ms=status.head_time_ms,
        view=status.view,
        view_changes=status.view_changes,
        mempool_size=len(view.mempool),
        peers=peers,
        validators=validators,
        recent_blocks=[
            RecentBlockJson(
                height=block.height,
                hash=block.hash,
                timestamp_ms=block.timestamp_ms,
                tx_count=block.tx_count,
                signers=block.signers,
                committed_ms=block.committed_ms,
                finality_ms=block.finality_ms,
            )
            for block in view.activity.newest_first()
        ],
    )


async def get_order_history(view: NodeView, params: GetOrderHistoryParams) -> OrderHistoryResult:
    """sec_getOrderHistory. One committed height (no await below)."""
    order_id = bytes.fromhex(params.order_id)
    events = [
        OrderEventJson(
            height=event.height,
            index=event.index,
            tx_hash=event.tx_hash,
            time_s=event.time_s,
            type=event.type,
            event=event.event,
            actor=event.actor,
            state=event.state,
        )
        for event in order_events(view.store, order_id, MAX_ORDER_EVENTS)
    ]
    record = find_order(CommittedState(view.state, view.store), order_id)
    if record is None and not events:
        raise not_found("order", order_id.hex())
    next_deadline = None
    if record is not None and record.due_s is not None:
        outcome = DEADLINE_OUTCOMES.get(record.state)
        if outcome is None:
            raise StoreError(f"order {order_id.hex()} is {record.state} with a deadline")
        next_deadline = NextDeadline(state=record.state, due_s=record.due_s, outcome=outcome.words)
    return OrderHistoryResult(
        order_id=order_id,
        events=events,
        order=None if record is None else OrderView.of(order_id, record),
        next_deadline=next_deadline,
    )


DESCRIPTIONS: Final[dict[str, tuple[str, str]]] = {
    "sec_getGenesis": (
        "The genesis document and its hash.",
        "The document as JSON, normalized as docs/protocol.md §9.2 hashes it (every top-level "
        "field, defaults filled in), and genesis_hash, equal to sec_status.genesis_hash. A "
        "client that must not trust the node recomputes the hash, or compares the document "
        "with its own copy. Encoded once: it never changes.",
    ),
    "sec_getNetwork": (
        "Head, view, mempool, peers, validators and the last blocks, as this node sees them.",
        "The head's validator set with each validator's last signed height (the highest "
        "certificate it signed among the last 256 at the node's start and every commit since), "
        "the connected peers (named when they are genesis validators or named in the config), "
        "and the last 20 blocks newest first, with signers, this node's commit wall time and "
        "finality (committed_ms - timestamp_ms; null for blocks committed before it started). "
        "Node-local and unproven: a status view.",
    ),
    "sec_getOrderHistory": (
        "An order's life cycle: each state change, who caused it and when, and what is next.",
        "Events oldest first (at most 256) from the node-local order events index, written "
        "with each block: one per state change, by a transaction (its type, hash, index and "
        "signer) or by a deadline (type 'deadline', no transaction: the default outcome of "
        "docs/protocol.md §16.1). Also the order as sec_getOrder shows it, unproven (verify "
        "with sec_getOrder prove=true), and the next deadline with its default outcome in "
        "words. A node's index starts at the version that added it: events of older blocks "
        "are missing. not_found when the node knows neither the order nor any event of it.",
    ),
}


def console_method_table(view: NodeView, worker: Worker) -> dict[str, Method]:
    """The console's read methods by name (merged into the node's method table); `worker` runs
    the trust distribution's scan off the event loop."""
    distributions = TrustDistributions(view, worker)

    async def genesis(params: NoParams) -> GenesisResult:
        return await get_genesis(view, params)

    async def network(params: NoParams) -> NetworkResult:
        return await get_network(view, params)

    async def history(params: GetOrderHistoryParams) -> OrderHistoryResult:
        return await get_order_history(view, params)

    async def distribution(params: GetTrustDistributionParams) -> TrustDistributionResult:
        return await distributions.get(params)

    return {
        "sec_getGenesis": Method(
            "sec_getGenesis",
            *DESCRIPTIONS["sec_getGenesis"],
            NoParams,
            GenesisResult,
            genesis,
            heavy=True,
            constant=True,
        ),
        "sec_getNetwork": Method(
            "sec_getNetwork", *DESCRIPTIONS["sec_getNetwork"], NoParams, NetworkResult, network
        ),
        "sec_getOrderHistory": Method(
            "sec_getOrderHistory",
            *DESCRIPTIONS["sec_getOrderHistory"],
            GetOrderHistoryParams,
            OrderHistoryResult,
            history,
            (NOT_FOUND.code,),
        ),
        "sec_getTrustDistribution": Method(
            "sec_getTrustDistribution",
            trust_distribution.SUMMARY,
            trust_distribution.DESCRIPTION,
            GetTrustDistributionParams,
            TrustDistributionResult,
            distribution,
            (NOT_FOUND.code,),
        ),
    }
