"""A story on a development chain for the console's browser tests.

`story(served)` commits, on a `ServedNode`, an order's whole life (created, paid, shipped,
confirmed, completed when its return window passes), the buyer's attestation and review of
the merchant, the merchant's reply, an open group buy with one member, and enough blocks for
a trust epoch to be committed, so every page of the console has something to show.
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
from dataclasses import dataclass
from typing import Any

from contracts.groups import GroupJoin, GroupOpen
from contracts.orders import OrderConfirm, OrderCreate, OrderItem, OrderPay, OrderShip
from contracts.reviews import ReviewPost, ReviewReply
from contracts.trust import Attest
from ledger.transactions import SignedTransaction
from secnode.network.devnet import DEV_PARAMETERS, dev_account_key
from tests.rpc_node import ServedNode, sign

EPOCH_BLOCKS = DEV_PARAMETERS["trust_epoch_blocks"]


@dataclass(frozen=True)
class Story:
    """What `story` committed, for the pages to show."""

    order_id: str
    group_id: str
    transfer_hash: str
    merchant: str
    buyer: str


def _address(name: str) -> str:
    from ledger.keys import format_address

    return format_address(dev_account_key(name).address)


def _rpc(url: str, method: str, params: dict[str, Any]) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    request = urllib.request.Request(
        url + "/rpc", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        reply = json.loads(response.read())
    if "error" in reply:
        raise RuntimeError(f"{method}: {reply['error']}")
    return reply["result"]


def _commit(served: ServedNode, *txs: SignedTransaction) -> None:
    """Admit `txs` and commit them in one block; every receipt must be ok."""
    for tx in txs:
        _rpc(served.url, "sec_sendTransaction", {"tx": tx.encoded.hex()})
    result = served.call(served.node.commit_pending)
    failed = [r for r in result.receipts if not r.ok]
    if failed or len(result.receipts) != len(txs):
        raise RuntimeError(f"story block failed: {failed}")


def _empty_blocks(served: ServedNode, count: int) -> None:
    for _ in range(count):
        served.call(served.node.commit_pending)


def story(served: ServedNode) -> Story:
    """Commit the story of the module docstring on `served` (auto_commit off)."""
    merchant, buyer = dev_account_key("merchant1").address, dev_account_key("buyer1").address
    arbiter = dev_account_key("arbiter").address
    create = sign(
        "merchant1",
        0,
        "order.create",
        OrderCreate(
            buyer, (OrderItem("tea", 2, 1_000, None),), 500, arbiter, None, None, None, None
        ),
    )
    order_id = create.hash
    _commit(served, create)
    _commit(served, sign("buyer1", 0, "order.pay", OrderPay(order_id, 2_500, None)))
    shipment = hashlib.sha256(b"parcel 1").digest()
    _commit(served, sign("merchant1", 1, "order.ship", OrderShip(order_id, shipment)))
    _commit(served, sign("buyer1", 1, "order.confirm", OrderConfirm(order_id)))
    _empty_blocks(served, DEV_PARAMETERS["return_window_s"] + 1)  # 1 s per block: completes
    text = hashlib.sha256(b"good tea").digest()
    _commit(
        served,
        sign("buyer1", 2, "trust.attest", Attest(order_id, merchant, 1)),
        sign("buyer1", 3, "review.post", ReviewPost(order_id, 5, text, None)),
    )
    _commit(served, sign("merchant1", 2, "review.reply", ReviewReply(order_id, text)))
    deadline = served.node.head.timestamp_ms // 1000 + 3_600
    item = hashlib.sha256(b"tea crate").digest()
    opened = sign(
        "merchant1",
        3,
        "group.open",
        GroupOpen(item, 3_000, 2, 3, deadline, 500, 200, arbiter, None, None, None),
    )
    _commit(served, opened)
    _commit(
        served, sign("buyer2", 0, "group.join", GroupJoin(opened.hash, 2_700, None, None, None))
    )
    transfer_hash = opened.hash.hex()
    height = served.node.head.height
    _empty_blocks(served, (EPOCH_BLOCKS - height % EPOCH_BLOCKS) + 2)
    return Story(
        order_id.hex(), opened.hash.hex(), transfer_hash, _address("merchant1"), _address("buyer1")
    )
