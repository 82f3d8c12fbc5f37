"""A marketplace chain written to a real node home, for export tests and the export figure.

`StoreChain` executes blocks with the contracts and commits each one, certified by three dev
validators, to the home's LevelDB store exactly as a node does (order events index included),
so `sec export --home` reads what a stopped node leaves. `trade` runs rounds of orders through
their life (create, pay, ship, confirm, completed when the return window passes) and then
attestations both ways, so trust epochs commit along the way.

    python -m tests.exportkit DIR --orders 2000   # builds DIR/node0 (or adds to it), prints
                                                  # the chain's size
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Final

from contracts import TX_TYPES, build_executor
from contracts.orders import OrderConfirm, OrderCreate, OrderItem, OrderPay, OrderShip
from contracts.trust import Attest
from ledger.accounts import get_account
from ledger.chain import build_block
from ledger.genesis import load_genesis
from ledger.receipts import Receipt
from ledger.store import open_chain
from ledger.store_leveldb import LevelDBStore
from ledger.transactions import SignedTransaction, TxBody, sign_transaction
from secnode.network.devnet import dev_account_key, validator_key
from secnode.runtime.order_index import index_order_events
from tests.nodekit import certify, make_network

PARAMETERS: Final = {
    "return_window_s": 10,
    "attest_window_s": 1_000_000,
    "trust_epoch_blocks": 4,
    "trust_epoch_delay": 1,
}
"""Short windows and epochs: a round of orders completes in a few blocks, epochs commit often."""
SHARERS: Final = ("sharer1", "sharer2")
SIGNERS: Final = ("node0", "node1", "node2")
NODES: Final = ("node0", "node1", "node2", "node3")
BUYER_BALANCE: Final = 10**10


def merchants(count: int) -> list[str]:
    """The dev merchants, then `shopN` accounts added to the genesis by `make_home`."""
    return ["merchant1", "merchant2", *(f"shop{n}" for n in range(max(0, count - 2)))][:count]


def buyers(count: int) -> list[str]:
    """The dev buyers, then `customerN` accounts added to the genesis by `make_home`."""
    return ["buyer1", "buyer2", "buyer3", *(f"customer{n}" for n in range(max(0, count - 3)))][
        :count
    ]


def make_home(root: Path, *, merchant_count: int = 4, buyer_count: int = 12) -> Path:
    """A dev network under `root` with `PARAMETERS` and that many merchants and buyers in every
    genesis; the home of node0, which the chain uses."""
    make_network(root, **PARAMETERS)
    extra = [(name, ["merchant", "member"], 0) for name in merchants(merchant_count)[2:]] + [
        (name, ["member"], BUYER_BALANCE) for name in buyers(buyer_count)[3:]
    ]
    for path in [root / "genesis.json", *(root / name / "genesis.json" for name in NODES)]:
        document = json.loads(path.read_text())
        document["accounts"] += [
            {
                "name": name,
                "public_key": dev_account_key(name).public_key.hex(),
                "roles": roles,
                "balance": balance,
            }
            for name, roles, balance in extra
        ]
        path.write_text(json.dumps(document, indent=2) + "\n")
    return root / "node0"


class StoreChain:
    """Blocks executed and committed to a node home's store (see the module docstring)."""

    def __init__(self, home: Path) -> None:
        self.genesis = load_genesis(home / "genesis.json")
        names = {account.name for account in self.genesis.accounts}
        self.merchants = [m for m in merchants(len(names)) if m in names]
        self.buyers = [b for b in buyers(len(names)) if b in names]
        self.store, self.state, self.head = open_chain(
            LevelDBStore(home / "data"), self.genesis, TX_TYPES
        )
        self.store.add_indexer(index_order_events)
        self.genesis_hash = self.genesis.document_hash()
        self.executor = build_executor(self.genesis.chain_id, self.genesis_hash)
        self.nonces: dict[str, int] = {}

    def close(self) -> None:
        self.store.close()

    @property
    def now(self) -> int:
        return self.head.timestamp_ms // 1000

    def sign(self, name: str, body: TxBody) -> SignedTransaction:
        key = dev_account_key(name)
        if name not in self.nonces:
            account = get_account(self.state, key.address)
            self.nonces[name] = 0 if account is None else account.nonce
        nonce = self.nonces[name]
        self.nonces[name] = nonce + 1
        return sign_transaction(
            key, self.genesis.chain_id, nonce, body, genesis_hash=self.genesis_hash
        )

    def run(self, txs: list[SignedTransaction], at_s: int | None = None) -> list[Receipt]:
        """One certified block at `at_s` (default: a second after the head), committed."""
        at_s = self.now + 1 if at_s is None else at_s
        result = build_block(
            self.executor,
            self.state,
            self.head,
            txs,
            timestamp_ms=at_s * 1000,
            proposer=validator_key("node0").address,
            view=0,
        )
        block = result.block
        if len(block.transactions) != len(txs):
            raise AssertionError(f"block {block.height} left out transactions")
        certificate = certify(block.height, block.hash(), SIGNERS)
        changes = self.state.commit_block()
        self.store.commit_block(block, certificate, result.receipts, changes)
        self.head = block.header
        return list(result.receipts)

    def checked(self, txs: list[SignedTransaction], at_s: int | None = None) -> list[Receipt]:
        receipts = self.run(txs, at_s)
        failed = [(r.code, r.message) for r in receipts if not r.ok]
        if failed:
            raise AssertionError(f"block {self.head.height}: {failed[:3]}")
        return receipts

    def trade(self, orders: int, per_block: int = 250, *, seed: int = 0) -> None:
        """`orders` orders in rounds of `per_block`, each taken to COMPLETED and attested by
        buyer and merchant (every seventh rating by a buyer negative). `seed` varies the mix."""
        for first in range(0, orders, per_block):
            count = min(per_block, orders - first)
            deals = [
                (
                    self.merchants[(n * 7 + seed) % len(self.merchants)],
                    self.buyers[(n + seed) % len(self.buyers)],
                    SHARERS[n % len(SHARERS)] if n % 3 == 0 else None,
                    100 + (n * 37 + seed) % 5_000,
                )
                for n in range(first, first + count)
            ]
            created = self.checked(
                [
                    self.sign(
                        merchant,
                        OrderCreate(
                            dev_account_key(buyer).address,
                            (OrderItem("tea", 1 + n % 3, price),),
                            200,
                            dev_account_key("arbiter").address,
                            None if sharer is None else dev_account_key(sharer).address,
                            None if sharer is None else 300,
                        ),
                    )
                    for n, (merchant, buyer, sharer, price) in enumerate(deals, first)
                ]
            )
            ids = [r.tx_hash for r in created]
            totals = [(1 + n % 3) * d[3] + 200 for n, d in enumerate(deals, first)]
            self.checked(
                [
                    self.sign(d[1], OrderPay(i, t))
                    for d, i, t in zip(deals, ids, totals, strict=True)
                ]
            )
            self.checked(
                [self.sign(d[0], OrderShip(i, i)) for d, i in zip(deals, ids, strict=True)]
            )
            self.checked(
                [self.sign(d[1], OrderConfirm(i)) for d, i in zip(deals, ids, strict=True)]
            )
            self.checked([], at_s=self.now + PARAMETERS["return_window_s"] + 1)
            ratings = []
            for n, (deal, order_id) in enumerate(zip(deals, ids, strict=True), first):
                merchant, buyer = deal[0], deal[1]
                value = -1 if n % 7 == 0 else 1
                ratings.append(
                    self.sign(buyer, Attest(order_id, dev_account_key(merchant).address, value))
                )
                ratings.append(
                    self.sign(merchant, Attest(order_id, dev_account_key(buyer).address, 1))
                )
            self.checked(ratings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="build a marketplace chain in a node home")
    parser.add_argument(
        "root", type=Path, help="a directory for the dev network (if it has one: add to it)"
    )
    parser.add_argument("--orders", type=int, default=2_000)
    parser.add_argument("--merchants", type=int, default=50)
    parser.add_argument("--buyers", type=int, default=1_000)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    home = args.root / "node0"
    if not home.exists():
        home = make_home(args.root, merchant_count=args.merchants, buyer_count=args.buyers)
    chain = StoreChain(home)  # an existing chain grows by --orders more
    try:
        chain.trade(args.orders, seed=chain.head.height)
        size = {
            "home": str(args.root / "node0"),
            "height": chain.head.height,
            "accounts": len(chain.genesis.accounts),
            "transactions": sum(
                len(block.transactions)
                for h in range(1, chain.head.height + 1)
                if (block := chain.store.get_block(h)) is not None
            ),
            "build_seconds": round(time.perf_counter() - started, 1),
        }
    finally:
        chain.close()
    json.dump(size, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
