"""A development chain that runs the contracts, for order, escrow and referral tests.

`OrderChain` is `tests.chainkit.Chain` with `contracts.build_executor` and block-level helpers:
every call runs a real block (block hooks first, so due deadlines fire) at an explicit time.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from contracts import build_executor
from contracts.orders import ORDER_PREFIX, Order, OrderCreate, OrderItem, decode_order, get_order
from ledger.accounts import ACCOUNT_PREFIX, account_key, decode_account
from ledger.encoding import decode
from ledger.genesis import Genesis, parse_genesis
from ledger.receipts import Receipt
from ledger.transactions import TxBody
from secnode.network.devnet import dev_account_key, dev_genesis_document
from tests.chainkit import Chain

WINDOWS = {
    "cancel_window_s": 50,
    "ship_deadline_s": 30,
    "confirm_window_s": 20,
    "return_window_s": 10,
    "dispute_deadline_s": 40,
    "pickup_window_s": 25,
    "return_ship_window_s": 15,
    "return_receive_window_s": 35,
}
"""Small windows (seconds of block time) used by default in these tests."""


LEADERS = ("leader1", "leader2")
"""Community group leaders added to the development genesis (role `leader`, no credits)."""


def order_genesis(**parameters: int) -> Genesis:
    """The development genesis with short windows, `parameters` on top, and `LEADERS`."""
    document = dev_genesis_document()
    document["parameters"] = {**document["parameters"], **WINDOWS, **parameters}
    document["accounts"] += [
        {
            "name": name,
            "public_key": dev_account_key(name).public_key.hex(),
            "roles": ["leader", "member"],
            "balance": 0,
        }
        for name in LEADERS
    ]
    return parse_genesis(document, "order test genesis")


@dataclass
class OrderChain(Chain):
    """A chain with the contracts; `run` executes one block at a given block time."""

    def __post_init__(self) -> None:
        Chain.__post_init__(self)
        self.executor = build_executor(self.genesis.chain_id, self.genesis.document_hash())

    def balances(self) -> dict[bytes, int]:
        """Address -> balance of every account (state as of now)."""
        return {
            key[len(ACCOUNT_PREFIX) :]: decode_account(value).balance
            for key, value in self.state.iterate_prefix(ACCOUNT_PREFIX)
        }

    def orders(self) -> dict[bytes, Order]:
        """Order id -> record of every order (state as of now)."""
        return {
            key[len(ORDER_PREFIX) :]: decode_order(value)
            for key, value in self.state.iterate_prefix(ORDER_PREFIX)
        }

    @property
    def now(self) -> int:
        """Time (s) of the last block."""
        return self.head.timestamp_ms // 1000

    def run(self, txs: list[Any], at_s: int | None = None) -> list[Receipt]:
        """One block at `at_s` (default: one second after the head) holding `txs`."""
        at_s = self.now + 1 if at_s is None else at_s
        return list(self.block(txs, timestamp_ms=at_s * 1000).receipts)

    def send(self, name: str, tx_type: str, body: TxBody, at_s: int | None = None) -> Receipt:
        """Sign and run one transaction in its own block."""
        receipts = self.run([self.sign(name, tx_type, body)], at_s)
        if len(receipts) != 1:
            raise AssertionError(f"{tx_type} from {name} was not included: {receipts}")
        return receipts[0]

    def create(
        self,
        *,
        merchant: str = "merchant1",
        buyer: str = "buyer1",
        arbiter: str = "arbiter",
        items: tuple[tuple[str, int, int], ...] = (("tea", 2, 1_000),),
        shipping: int = 500,
        sharer: str | None = None,
        commission_bps: int | None = None,
        leader: str | None = None,
        leader_commission_bps: int | None = None,
        final_lines: tuple[int, ...] = (),
        at_s: int | None = None,
    ) -> bytes:
        """Create an order that must succeed; return its id. `final_lines` are the indexes of
        the lines sold as not returnable."""
        body = OrderCreate(
            self.address(buyer),
            tuple(
                OrderItem(sku, quantity, price, False if index in final_lines else None)
                for index, (sku, quantity, price) in enumerate(items)
            ),
            shipping,
            self.address(arbiter),
            None if sharer is None else self.address(sharer),
            commission_bps,
            None if leader is None else self.address(leader),
            leader_commission_bps,
        )
        receipt = self.send(merchant, "order.create", body, at_s)
        if not receipt.ok:
            raise AssertionError(f"order.create failed: {receipt.code} {receipt.message}")
        return receipt.tx_hash

    def order(self, order_id: bytes) -> Order:
        order = get_order(self.state, order_id)
        if order is None:
            raise AssertionError(f"no order {order_id.hex()}")
        return order


def rejected(
    chain: OrderChain, name: str, tx_type: str, body: TxBody, code: str, at_s: int | None = None
) -> Receipt:
    """Run one transaction that must fail with `code` and change nothing but the sender's nonce
    (checked on the whole state map)."""
    before = dict(chain.state.committed)
    receipt = chain.send(name, tx_type, body, at_s)
    assert (receipt.ok, receipt.code) == (False, code), receipt
    assert receipt.events == ()
    sender_key = account_key(chain.address(name))
    changed = {
        k
        for k in set(before) | set(chain.state.committed)
        if before.get(k) != chain.state.committed.get(k)
    }
    assert changed <= {sender_key}, sorted(changed)
    old, new = decode(before[sender_key]), decode(chain.state.committed[sender_key])
    assert new[1] == old[1] + 1 and new[:1] + new[2:] == old[:1] + old[2:]
    return receipt


def accepted(
    chain: OrderChain, name: str, tx_type: str, body: TxBody, at_s: int | None = None
) -> Receipt:
    """Run one transaction that must succeed."""
    receipt = chain.send(name, tx_type, body, at_s)
    assert receipt.ok, (receipt.code, receipt.message)
    return receipt


def shipment(reference: str) -> bytes:
    return hashlib.sha256(reference.encode()).digest()


def pickup_code(reference: str) -> bytes:
    """A 32-byte one-time pickup code (tests derive it; the CLI draws a random one)."""
    return hashlib.sha256(b"pickup:" + reference.encode()).digest()
