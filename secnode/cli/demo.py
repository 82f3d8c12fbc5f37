"""`sec demo`: a small shop's day on a development network, so the console has a story to show.

On a chain made from the development genesis (its keys are public, `dev:NAME`), it plays:

1. merchant1 sells tea to buyer1, buyer2 and buyer3 (sharer1's link on the first): each order
   is created, paid, shipped and confirmed; it completes when the return window ends;
2. merchant2's order to buyer3 goes wrong: disputed by the buyer, refunded by the arbiter;
   buyer3 attests -1 about merchant2;
3. merchant1 opens a group offer that buyer1 and buyer2 join, so it forms;
4. unless `--no-wait`: once merchant1's orders complete, every buyer attests +1 about
   merchant1 and merchant1 about each buyer, buyer1 reviews the tea and merchant1 replies; then
   it waits for the trust epoch that counts those attestations and prints merchant1's score.

Every transaction is signed here and sent with `wait: "commit"`; a failed receipt stops the demo
with the step and the rule that refused it. Running it again plays the day again (new orders).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from contracts.groups import GroupJoin, GroupOpen
from contracts.orders import (
    OrderConfirm,
    OrderCreate,
    OrderDispute,
    OrderItem,
    OrderPay,
    OrderResolve,
    OrderShip,
)
from contracts.reviews import ReviewPost, ReviewReply, item_ref
from contracts.trust import Attest
from ledger.keys import PrivateKey, format_address
from ledger.transactions import TxBody, sign_transaction
from secnode.cli.common import NOT_FOUND_CODE, CommandError, connect
from secnode.client.rpc import DEFAULT_RPC_URL, RpcCallError, RpcClient
from secnode.schema import models as m
from secnode.schema.trust import TrustScoreResult

BUYERS: Final = ("buyer1", "buyer2", "buyer3")
TEA: Final = OrderItem("tea", 2, 5000)
SHIPPING_FEN: Final = 800
COMMIT_TIMEOUT_S: Final = 30.0
POLL_S: Final = 1.0
COMPLETION_MARGIN_S: Final = 60.0
"""How long past the return window the demo waits for the orders to complete."""
EPOCH_WAIT_S: Final = 600.0


@dataclass
class DemoChain:
    """Signs as development accounts and sends with `wait: "commit"`, counting nonces locally."""

    client: RpcClient
    status: m.StatusResult
    say: Callable[[str], None]
    nonces: dict[str, int] = field(default_factory=dict)

    def key(self, name: str) -> PrivateKey:
        from secnode.network.devnet import dev_account_key

        return dev_account_key(name)

    def address(self, name: str) -> bytes:
        return self.key(name).address

    def send(self, name: str, body: TxBody, step: str) -> m.SendTransactionResult:
        """Commit `body` signed by dev account `name`; raise CommandError naming `step` if the
        node refuses it or its receipt failed."""
        key = self.key(name)
        nonce = self.nonces.get(name)
        if nonce is None:
            nonce = self.account_nonce(name)
        tx = sign_transaction(
            key, self.status.chain_id, nonce, body, genesis_hash=self.status.genesis_hash
        )
        params = {"tx": tx.encoded.hex(), "wait": "commit", "timeout_s": COMMIT_TIMEOUT_S}
        try:
            result = self.client.call_as("sec_sendTransaction", params, m.SendTransactionResult)
        except RpcCallError as exc:
            raise CommandError(f"{step}: the node refused {tx.type}: {exc}") from None
        receipt = result.receipt
        if receipt is None or not receipt.ok:
            why = "not committed" if receipt is None else f"{receipt.code}: {receipt.message}"
            raise CommandError(f"{step}: {tx.type} failed ({why})")
        self.nonces[name] = nonce + 1
        return result

    def order(self, order_id: bytes) -> m.OrderResult:
        return self.client.call_as("sec_getOrder", {"order_id": order_id.hex()}, m.OrderResult)

    def account_nonce(self, name: str) -> int:
        """The committed nonce of dev account `name`; CommandError if the chain lacks it."""
        address = format_address(self.address(name))
        try:
            account = self.client.call_as("sec_getAccount", {"address": address}, m.AccountResult)
        except RpcCallError as exc:
            if exc.code != NOT_FOUND_CODE:
                raise
            account = None
        if account is None or account.nonce is None:
            raise CommandError(
                f"development account {name} ({address}) is not on this chain: "
                "sec demo needs the development genesis (genesis.json)"
            )
        return account.nonce


def _text_hash(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def sell_tea(chain: DemoChain, buyer: str, sharer: str | None) -> bytes:
    """merchant1 sells tea to `buyer`; paid, shipped and confirmed. Returns the order id."""
    step = f"merchant1 sells tea to {buyer}"
    created = chain.send(
        "merchant1",
        OrderCreate(
            chain.address(buyer),
            (TEA,),
            SHIPPING_FEN,
            chain.address("arbiter"),
            None if sharer is None else chain.address(sharer),
            None if sharer is None else 500,
        ),
        step,
    )
    order_id = created.hash
    total = TEA.value + SHIPPING_FEN
    chain.send(buyer, OrderPay(order_id, total), f"{buyer} pays order {order_id.hex()[:12]}")
    chain.send("merchant1", OrderShip(order_id, _text_hash(f"SF-{order_id.hex()[:8]}")), step)
    chain.send(buyer, OrderConfirm(order_id), f"{buyer} confirms receipt")
    chain.say(f"  {step}: order {order_id.hex()} received, completes after the return window")
    return order_id


def disputed_order(chain: DemoChain) -> bytes:
    """merchant2's order to buyer3: disputed, fully refunded, attested -1."""
    item = OrderItem("mug", 1, 3000)
    created = chain.send(
        "merchant2",
        OrderCreate(
            chain.address("buyer3"), (item,), SHIPPING_FEN, chain.address("arbiter"), None, None
        ),
        "merchant2 sells a mug to buyer3",
    )
    order_id = created.hash
    total = item.value + SHIPPING_FEN
    chain.send("buyer3", OrderPay(order_id, total), "buyer3 pays merchant2")
    chain.send("merchant2", OrderShip(order_id, _text_hash("SF-broken-mug")), "merchant2 ships")
    chain.send(
        "buyer3",
        OrderDispute(order_id, _text_hash("the mug arrived broken")),
        "buyer3 disputes",
    )
    chain.send("arbiter", OrderResolve(order_id, total), "the arbiter refunds buyer3")
    chain.send(
        "buyer3",
        Attest(order_id, chain.address("merchant2"), -1),
        "buyer3 attests -1 about merchant2",
    )
    chain.say(f"  merchant2's order {order_id.hex()} disputed, refunded in full, attested -1")
    return order_id


def group_offer(chain: DemoChain) -> bytes:
    """merchant1 opens a group offer for two to three members; buyer1 and buyer2 join."""
    deadline_s = chain.client.call_as("sec_status", None, m.StatusResult).head_time_ms // 1000
    body = GroupOpen(
        item_hash=_text_hash("tea gift box"),
        unit_price=6000,
        min_members=2,
        max_members=3,
        deadline_s=deadline_s + 3600,
        opener_discount=1000,
        shipping=SHIPPING_FEN,
        arbiter=chain.address("arbiter"),
        leader=None,
        leader_commission_bps=None,
        commission_bps=None,
    )
    group_id = chain.send("merchant1", body, "merchant1 opens a group offer").hash
    opener = body.unit_price - body.opener_discount + body.shipping
    chain.send("buyer1", GroupJoin(group_id, opener, None, None, None), "buyer1 joins the group")
    member = body.unit_price + body.shipping
    chain.send("buyer2", GroupJoin(group_id, member, None, None, None), "buyer2 joins the group")
    chain.say(f"  group offer {group_id.hex()} formed with 2 members")
    return group_id


def wait_completed(chain: DemoChain, orders: list[bytes], limit_s: float) -> None:
    """Poll until every order is COMPLETED (the return window runs on block time)."""
    deadline = time.monotonic() + limit_s
    last = ""
    while True:
        states = [chain.order(order_id).order for order_id in orders]
        waiting = [o for o in states if o is None or o.state != "COMPLETED"]
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise CommandError(
                f"{len(waiting)} orders did not complete in {limit_s:.0f} s "
                f"(states: {', '.join(o.state if o else 'missing' for o in waiting)})"
            )
        due = max((o.due_s or 0) for o in waiting if o is not None)
        line = f"  waiting for the return window: {len(waiting)} orders due at block time {due}"
        if line != last:
            chain.say(line)
            last = line
        time.sleep(POLL_S)


def wait_epoch(chain: DemoChain, after_height: int, limit_s: float) -> TrustScoreResult:
    """Poll until a committed trust epoch has an input height at or after `after_height`."""
    deadline = time.monotonic() + limit_s
    address = format_address(chain.address("merchant1"))
    while True:
        try:
            score = chain.client.call_as(
                "sec_getTrustScore", {"address": address}, TrustScoreResult
            )
            if score.epoch.input_height >= after_height:
                return score
        except RpcCallError as exc:
            if exc.code != NOT_FOUND_CODE:
                raise
        if time.monotonic() > deadline:
            raise CommandError(f"no trust epoch counted height {after_height} in {limit_s:.0f} s")
        time.sleep(POLL_S)


def run(args: argparse.Namespace) -> int:
    client = connect(args, COMMIT_TIMEOUT_S)
    status = client.call_as("sec_status", None, m.StatusResult)

    def say(line: str) -> None:
        print(line, flush=True)

    chain = DemoChain(client, status, say)
    chain.nonces["merchant1"] = chain.account_nonce("merchant1")  # not a dev chain: refused here
    print(
        "sec: note: the demo signs as the development accounts (dev:NAME): their keys are PUBLIC",
        file=sys.stderr,
    )
    say(f"demo on chain {status.chain_id!r} via {args.rpc}, head {status.height}")
    say("1. merchant1 sells tea to three buyers")
    orders = [sell_tea(chain, buyer, "sharer1" if buyer == "buyer1" else None) for buyer in BUYERS]
    say("2. a disputed order at merchant2")
    disputed_order(chain)
    say("3. a group offer")
    group_offer(chain)
    if args.no_wait:
        say("done (--no-wait: the orders complete after the return window; attest then)")
        return 0
    say("4. completions, attestations and a review")
    head_s = client.call_as("sec_status", None, m.StatusResult).head_time_ms // 1000
    due_s = max((o.due_s or head_s) for o in (chain.order(i).order for i in orders) if o)
    wait_completed(chain, orders, limit_s=COMPLETION_MARGIN_S + max(0, due_s - head_s))
    last_height = 0
    for buyer, order_id in zip(BUYERS, orders, strict=True):
        chain.send(buyer, Attest(order_id, chain.address("merchant1"), 1), f"{buyer} attests")
        result = chain.send(
            "merchant1", Attest(order_id, chain.address(buyer), 1), f"merchant1 attests {buyer}"
        )
        last_height = max(last_height, result.height or 0)
    chain.send(
        "buyer1",
        ReviewPost(orders[0], 5, _text_hash("Fragrant tea, fast shipping"), item_ref("tea")),
        "buyer1 reviews the tea",
    )
    chain.send("merchant1", ReviewReply(orders[0], _text_hash("Thank you!")), "merchant1 replies")
    say(f"  6 attestations (+1) and a review with its reply, up to height {last_height}")
    say("5. waiting for the trust epoch that counts them")
    score = wait_epoch(chain, last_height, EPOCH_WAIT_S)
    say(
        f"merchant1 ({format_address(chain.address('merchant1'))}): trust score "
        f"{score.score} (epoch {score.epoch.epoch}, {score.positive} positive, "
        f"{score.negative} negative attestations)"
    )
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `sec demo`."""
    demo = commands.add_parser(
        "demo",
        help="play a small shop's day on a development network (orders, a group, trust)",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument(
        "--rpc",
        default=DEFAULT_RPC_URL,
        metavar="URL",
        help=f"node RPC URL (default {DEFAULT_RPC_URL})",
    )
    demo.add_argument(
        "--no-wait",
        action="store_true",
        help="stop after the orders, the dispute and the group (do not wait for completions)",
    )
    demo.set_defaults(handler=run)
