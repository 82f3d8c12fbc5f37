"""`sec tx order ...`, `sec tx referral bind` and `sec query order|orders`.

The order verbs build the `order.*` bodies (docs/protocol.md §5.5) and submit them like every
`sec tx` verb (`secnode.cli.common.submit`): signed locally, nonce from the node, `--wait` for
the receipt. The order id is the hash of the `order.create` transaction; `create` prints it.
`pay` without `--amount` asks the node for the order total. Shipment references and dispute
reasons are hashed with SHA-256 (only the hash goes on chain). A line given with
`--item-not-returnable` is sold without the no-reason return. `pay` on an order with a leader
draws a random one-time pickup code (or takes `--pickup-code`), sends only its SHA-256 and
prints the code on stderr: the buyer shows it to the leader, who presents it with `pickup`.

`sec query order ID [--prove]` shows an order (verifying its state proof with `--prove`);
`sec query orders --party ADDRESS` lists an account's orders (filters, pages, `--all`).
"""

from __future__ import annotations

import argparse
import hashlib
import secrets
import sys
from datetime import UTC, datetime
from typing import Any

from contracts.orders import (
    PICKUP_CODE_MAX,
    PICKUP_CODE_MIN,
    ROLES,
    STATES,
    OrderArrive,
    OrderCancel,
    OrderConfirm,
    OrderCreate,
    OrderDispute,
    OrderItem,
    OrderPay,
    OrderPickup,
    OrderResolve,
    OrderReturn,
    OrderReturnReceived,
    OrderReturnShip,
    OrderShip,
)
from contracts.referral import ReferralBind
from ledger.keys import format_address
from secnode.cli.common import (
    ADDRESS_HELP,
    CommandError,
    amount,
    connect,
    count,
    follow_pages,
    hash_hex,
    print_fields,
    print_json,
    requested_proof,
    resolve_address,
)
from secnode.cli.submit import submit
from secnode.schema import models as m
from secnode.schema.objects import Order


def _seconds(value: int | None) -> str:
    if value is None:
        return "-"
    stamp = datetime.fromtimestamp(value, tz=UTC).isoformat(timespec="seconds")
    return f"{value} ({stamp.replace('+00:00', 'Z')})"


def parse_item(text: str) -> OrderItem:
    """SKU:QUANTITY:UNIT_PRICE (the SKU may itself contain colons)."""
    parts = text.rsplit(":", 2)
    if len(parts) != 3 or not parts[0]:
        raise argparse.ArgumentTypeError(f"must be SKU:QUANTITY:UNIT_PRICE, got {text!r}")
    sku, quantity, price = parts
    if not (quantity.isdigit() and price.isdigit()):
        raise argparse.ArgumentTypeError(f"quantity and unit price must be integers in {text!r}")
    if not 1 <= int(quantity) <= 1_000_000:
        raise argparse.ArgumentTypeError(f"quantity must be in [1, 1000000], got {quantity}")
    return OrderItem(sku, int(quantity), int(price))


def parse_final_item(text: str) -> OrderItem:
    """SKU:QUANTITY:UNIT_PRICE of a line that cannot be returned without a reason."""
    item = parse_item(text)
    return OrderItem(item.sku, item.quantity, item.unit_price, returnable=False)


def pickup_code(text: str) -> bytes:
    try:
        code = bytes.fromhex(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be hex, got {text!r}") from None
    if not PICKUP_CODE_MIN <= len(code) <= PICKUP_CODE_MAX:
        raise argparse.ArgumentTypeError(
            f"must be {PICKUP_CODE_MIN}-{PICKUP_CODE_MAX} bytes, got {len(code)}"
        )
    return code


def _line(text: str) -> int:
    if not text.isdigit() or int(text) > 63:
        raise argparse.ArgumentTypeError(f"must be a line index in [0, 63], got {text!r}")
    return int(text)


def _bps(text: str) -> int:
    if not text.isdigit() or int(text) > 10_000:
        raise argparse.ArgumentTypeError(f"must be basis points in [0, 10000], got {text!r}")
    return int(text)


def _limit(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 100:
        raise argparse.ArgumentTypeError(f"must be an integer in [1, 100], got {text!r}")
    return int(text)


def _reference_hash(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def _text_or_hash(text: str | None, hex_hash: str | None, option: str) -> bytes:
    """The SHA-256 of a reference given as text, or the hash given as hex (`option`)."""
    if hex_hash is not None:
        return bytes.fromhex(hash_hex(hex_hash, option))
    return _reference_hash(text or "")


def _order_id(args: argparse.Namespace) -> bytes:
    return bytes.fromhex(hash_hex(args.order, "--order"))


# --- sec tx order / referral ---------------------------------------------------------------------


def _tx_create(args: argparse.Namespace) -> int:
    if (args.sharer is None) != (args.commission_bps is None):
        raise CommandError("--sharer and --commission-bps go together (both or neither)")
    if (args.leader is None) != (args.leader_commission_bps is None):
        raise CommandError("--leader and --leader-commission-bps go together (both or neither)")
    body = OrderCreate(
        resolve_address(args.buyer, "--buyer"),
        tuple(args.item),
        args.shipping,
        resolve_address(args.arbiter, "--arbiter"),
        None if args.sharer is None else resolve_address(args.sharer, "--sharer"),
        args.commission_bps,
        None if args.leader is None else resolve_address(args.leader, "--leader"),
        args.leader_commission_bps,
    )
    return submit(args, body, creates_order=True)


def _tx_pay(args: argparse.Namespace) -> int:
    order_id = _order_id(args)
    amount = args.amount
    code = args.pickup_code
    if amount is None:
        answer = connect(args).call_as("sec_getOrder", {"order_id": order_id.hex()}, m.OrderResult)
        if answer.order is None:
            raise CommandError(f"--order: order {order_id.hex()} does not exist")
        amount = answer.order.total
        if answer.order.leader is not None and code is None:
            code = draw_pickup_code()
    pickup_hash = None if code is None else hashlib.sha256(code).digest()
    return submit(args, OrderPay(order_id, amount, pickup_hash))


def draw_pickup_code() -> bytes:
    """A random one-time pickup code, printed on stderr for the buyer (only its SHA-256 goes on
    chain)."""
    code = secrets.token_bytes(PICKUP_CODE_MIN)
    print(
        f"pickup code {code.hex()} (show it to the leader at pickup; only its SHA-256 goes on "
        "chain)",
        file=sys.stderr,
    )
    return code


def _tx_ship(args: argparse.Namespace) -> int:
    shipment = _text_or_hash(args.shipment, args.shipment_hash, "--shipment-hash")
    return submit(args, OrderShip(_order_id(args), shipment))


def _tx_confirm(args: argparse.Namespace) -> int:
    return submit(args, OrderConfirm(_order_id(args)))


def _tx_cancel(args: argparse.Namespace) -> int:
    return submit(args, OrderCancel(_order_id(args)))


def _tx_dispute(args: argparse.Namespace) -> int:
    reason = None if args.reason is None else _reference_hash(args.reason)
    return submit(args, OrderDispute(_order_id(args), reason))


def _tx_resolve(args: argparse.Namespace) -> int:
    return submit(args, OrderResolve(_order_id(args), args.refund))


def _tx_arrive(args: argparse.Namespace) -> int:
    return submit(args, OrderArrive(_order_id(args)))


def _tx_pickup(args: argparse.Namespace) -> int:
    return submit(args, OrderPickup(_order_id(args), args.code))


def _tx_return(args: argparse.Namespace) -> int:
    return submit(args, OrderReturn(_order_id(args), tuple(sorted(set(args.line)))))


def _tx_return_ship(args: argparse.Namespace) -> int:
    tracking = _text_or_hash(args.tracking, args.tracking_hash, "--tracking-hash")
    return submit(args, OrderReturnShip(_order_id(args), tracking))


def _tx_return_received(args: argparse.Namespace) -> int:
    return submit(args, OrderReturnReceived(_order_id(args)))


def _tx_bind(args: argparse.Namespace) -> int:
    return submit(args, ReferralBind(resolve_address(args.inviter, "--inviter")))


# --- sec query order / orders --------------------------------------------------------------------


def _order_rows(order: Order) -> list[tuple[str, Any]]:
    settlement = dict(order.settlement)
    rows: list[tuple[str, Any]] = [
        ("order", order.order_id.hex()),
        ("state", order.state),
        ("merchant", format_address(order.merchant)),
        ("buyer", format_address(order.buyer)),
        ("arbiter", format_address(order.arbiter)),
    ]
    if order.sharer is not None:
        rows.append(("sharer", f"{format_address(order.sharer)} ({order.commission_bps} bps)"))
    if order.leader is not None:
        leader = format_address(order.leader)
        rows.append(("leader", f"{leader} ({order.leader_commission_bps} bps)"))
    rows += [
        ("goods", f"{order.goods} fen"),
        ("shipping", f"{order.shipping} fen"),
        ("total", f"{order.total} fen"),
        ("held", f"{order.held} fen"),
        ("created", _seconds(order.created_s)),
        ("updated", _seconds(order.updated_s)),
        ("due", _seconds(order.due_s)),
    ]
    for index, item in enumerate(order.items):
        returnable = "returnable" if item.returnable else "not returnable"
        line = f"{item.sku} x {item.quantity} @ {item.unit_price} fen ({returnable})"
        rows.append((f"line {index}", line))
    if order.pickup_hash is not None:
        rows.append(("pickup hash", order.pickup_hash.hex()))
    if order.returned:
        rows.append(("returned lines", ", ".join(str(index) for index in order.returned)))
    if order.return_hash is not None:
        rows.append(("return shipment", order.return_hash.hex()))
    if any(settlement.values()):
        rows += [(f"paid {who}", f"{amount} fen") for who, amount in settlement.items()]
    return rows


def _query_order(args: argparse.Namespace) -> int:
    order_id = hash_hex(args.order_id, "ORDER_ID")
    params = {"order_id": order_id, "prove": args.prove}
    answer = connect(args).call_as("sec_getOrder", params, m.OrderResult)
    if answer.order_id.hex() != order_id:
        raise CommandError(f"the node answered for order {answer.order_id.hex()}")
    if args.prove:
        requested_proof(args, "sec_getOrder", answer.proof)
        answer.check_proof()  # the shown order is the proven record
    output = answer.model_dump(mode="json")
    if args.json:
        print_json({**output, "verified": True} if args.prove else output)
        return 0
    if answer.order is None:
        rows: list[tuple[str, Any]] = [("order", order_id), ("exists", "no")]
    else:
        rows = _order_rows(answer.order)
    rows += [("height", answer.height), ("state root", answer.state_root.hex())]
    if args.prove:
        kind = "membership" if answer.exists else "non-membership"
        rows.append(("proof", f"{kind} verified under the state root"))
    print_fields(rows)
    return 0


def _query_orders(args: argparse.Namespace) -> int:
    party = format_address(resolve_address(args.party, "--party"))
    params: dict[str, Any] = {"party": party, "limit": args.limit}
    for name in ("state", "role"):
        if getattr(args, name) is not None:
            params[name] = getattr(args, name)
    client = connect(args)

    def fetch(cursor: bytes | None) -> m.ListOrdersResult:
        at = {} if cursor is None else {"cursor": cursor.hex()}
        return client.call_as("sec_listOrders", {**params, **at}, m.ListOrdersResult)

    first = None if args.cursor is None else bytes.fromhex(hash_hex(args.cursor, "--cursor"))
    pages = follow_pages(fetch, first, lambda page: page.next_cursor, follow=args.all)
    entries = [entry for page in pages for entry in page.orders]
    page = pages[-1]
    if args.json:
        print_json(page.model_copy(update={"orders": entries}).model_dump(mode="json"))
        return 0
    for entry in entries:
        order = entry.order
        due = "" if order.due_s is None else f" due {order.due_s}"
        print(f"{order.order_id.hex()}  {order.state:<9}  {entry.role:<8}  {order.total} fen{due}")
    if page.next_cursor is not None and not args.all:
        print(f"more: --cursor {page.next_cursor.hex()}")
    return 0


# --- parser -------------------------------------------------------------------------------------


def add_commands(
    verbs: argparse._SubParsersAction[argparse.ArgumentParser],
    what: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """Add `tx order ...`, `tx referral bind` and `query order|orders`."""
    order = verbs.add_parser("order", help="orders and escrow")
    actions = order.add_subparsers(dest="order_action", metavar="ACTION", required=True)

    def action(name: str, help_text: str, handler: Any) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, help=help_text, parents=parents)
        parser.set_defaults(handler=handler)
        if name != "create":
            parser.add_argument("--order", required=True, metavar="ID", help="order id (hex)")
        return parser

    create = action("create", "merchant: open an order for a buyer", _tx_create)
    create.add_argument("--buyer", required=True, metavar="ADDRESS", help=ADDRESS_HELP)
    create.add_argument(
        "--item",
        required=True,
        action="append",
        type=parse_item,
        metavar="SKU:QTY:PRICE",
        help="an order line, unit price in fen (repeat for more lines)",
    )
    create.add_argument(
        "--item-not-returnable",
        dest="item",
        action="append",
        type=parse_final_item,
        metavar="SKU:QTY:PRICE",
        help="a line sold without the no-reason return (custom, perishable, opened digital)",
    )
    create.add_argument("--shipping", type=count, default=0, metavar="FEN", help="default 0")
    create.add_argument("--arbiter", required=True, metavar="ADDRESS", help=ADDRESS_HELP)
    create.add_argument("--sharer", metavar="ADDRESS", help="whose link the buyer used")
    create.add_argument("--commission-bps", type=_bps, metavar="BPS", help="with --sharer")
    create.add_argument("--leader", metavar="ADDRESS", help="group leader's pickup point")
    create.add_argument("--leader-commission-bps", type=_bps, metavar="BPS", help="with --leader")
    pay = action("pay", "buyer: pay the total into escrow", _tx_pay)
    pay.add_argument("--amount", type=amount, metavar="FEN", help="default: the order total")
    pay.add_argument(
        "--pickup-code",
        type=pickup_code,
        metavar="HEX",
        help="your one-time pickup code for a leader order (default: a random one, printed)",
    )
    ship = action("ship", "merchant: mark shipped", _tx_ship)
    reference = ship.add_mutually_exclusive_group(required=True)
    reference.add_argument("--shipment", metavar="TEXT", help="shipment reference (hashed)")
    reference.add_argument("--shipment-hash", metavar="HEX", help="its SHA-256, 64 hex")
    action("confirm", "buyer: confirm receipt", _tx_confirm)
    action("cancel", "buyer or merchant: cancel (refund if funded)", _tx_cancel)
    dispute = action("dispute", "buyer or merchant: open a dispute", _tx_dispute)
    dispute.add_argument("--reason", metavar="TEXT", help="the complaint (only its hash is sent)")
    resolve = action("resolve", "arbiter: refund part and settle the rest", _tx_resolve)
    resolve.add_argument("--refund", required=True, type=count, metavar="FEN")
    action("arrive", "leader: the goods are at your pickup point", _tx_arrive)
    pickup = action("pickup", "leader: hand over, presenting the buyer's code", _tx_pickup)
    pickup.add_argument("--code", required=True, type=pickup_code, metavar="HEX")
    returns = action("return", "buyer: no-reason return of whole lines", _tx_return)
    returns.add_argument(
        "--line", required=True, action="append", type=_line, metavar="N", help="repeatable"
    )
    return_ship = action("return-ship", "buyer: ship the returned lines back", _tx_return_ship)
    tracking = return_ship.add_mutually_exclusive_group(required=True)
    tracking.add_argument("--tracking", metavar="TEXT", help="return shipment ref (hashed)")
    tracking.add_argument("--tracking-hash", metavar="HEX", help="its SHA-256, 64 hex")
    action("return-received", "merchant: the returned goods arrived", _tx_return_received)

    referral = verbs.add_parser("referral", help="referral bindings")
    referral_actions = referral.add_subparsers(dest="referral_action", metavar="ACTION")
    referral_actions.required = True
    bind = referral_actions.add_parser("bind", help="record who invited you", parents=parents)
    bind.add_argument("--inviter", required=True, metavar="ADDRESS", help=ADDRESS_HELP)
    bind.set_defaults(handler=_tx_bind)

    query_order = what.add_parser("order", help="an order (optionally proven)", parents=[common])
    query_order.add_argument("order_id", metavar="ORDER_ID")
    query_order.add_argument("--prove", action="store_true", help="fetch and verify a proof")
    query_order.set_defaults(handler=_query_order)
    orders = what.add_parser("orders", help="an account's orders", parents=[common])
    orders.add_argument("--party", required=True, metavar="ADDRESS", help=ADDRESS_HELP)
    orders.add_argument("--state", choices=STATES)
    orders.add_argument("--role", choices=ROLES)
    orders.add_argument("--cursor", metavar="ID", help="continue after this order id")
    orders.add_argument("--limit", type=_limit, default=20, metavar="N", help="1-100, default 20")
    orders.add_argument("--all", action="store_true", help="follow every page")
    orders.set_defaults(handler=_query_orders)
