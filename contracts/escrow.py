"""The order state machine: handlers for `order.*` transactions and the deadline block hook.

Theory of operation. An order moves through

    CREATED --pay--> FUNDED --ship--> SHIPPED --confirm--> RECEIVED --(return window)--> COMPLETED
       |               |                 |                    |
       cancel          cancel            +------ dispute -----+--> DISPUTED --resolve--> RESOLVED
       v               v                                            |
    CANCELLED       REFUNDED <------------- (dispute deadline) -----+

with two detours. An order with a community group leader is shipped to the leader's pickup
point: SHIPPED --arrive (leader)--> AT_PICKUP --pickup (leader, with the buyer's one-time code)
or confirm (buyer)--> RECEIVED. In RECEIVED the buyer may return returnable lines without a
reason: RECEIVED --return--> RETURN_REQUESTED --return-ship--> RETURN_SHIPPED
--return-received (merchant) or its deadline--> COMPLETED, refunding exactly those lines.

and every open state has a deadline, ``entered + window`` with the window read from a chain
parameter when the state is entered, and a default outcome when it passes:

    CREATED  cancel_window_s     -> CANCELLED (nothing was held)
    FUNDED   ship_deadline_s     -> REFUNDED  (full refund; the buyer need not act)
    SHIPPED  confirm_window_s    -> RECEIVED  (its return window starts at that deadline)
    RECEIVED return_window_s     -> COMPLETED (the one payout)
    DISPUTED dispute_deadline_s  -> REFUNDED  (full refund)
    AT_PICKUP pickup_window_s    -> RECEIVED  (delivered to the pickup point the buyer chose;
                                               the return window still protects the buyer)
    RETURN_REQUESTED return_ship_window_s    -> COMPLETED (return abandoned: full payout)
    RETURN_SHIPPED   return_receive_window_s -> COMPLETED (returned lines refunded, rest paid)

An action is allowed strictly before the current state's deadline; the default fires in the
first block whose time is at or after it, at the start of the block (`run_deadlines`, in order of
deadline, then order id), so in a block at time t no open order has a deadline <= t. A state
whose deadline is already due when it is entered (a zero return window, or a long gap between
blocks) takes its default at once. Terminal states (COMPLETED, CANCELLED, REFUNDED, RESOLVED)
accept nothing: the order is settled exactly once.

Who may do what is data, not code: `ACTIONS` gives, for every action on an existing order, the
order parties who may take it, the account role the sender must still hold, and the states it
is allowed in, each with its deadline rule (docs/protocol.md §16.2 is the same table):

    action   party             role     allowed in (deadline rule)
    pay      buyer             -        CREATED (before)
    ship     merchant          -        FUNDED (before)
    confirm  buyer             -        SHIPPED, AT_PICKUP (before)
    cancel   buyer, merchant   -        CREATED (before); FUNDED (buyer only once it has passed)
    dispute  buyer, merchant   -        FUNDED, SHIPPED, RECEIVED, AT_PICKUP, RETURN_REQUESTED,
                                        RETURN_SHIPPED (before)
    resolve  arbiter           arbiter  DISPUTED (before)
    arrive   leader            leader   SHIPPED (before)
    pickup   leader            leader   AT_PICKUP (before)
    return          buyer      -        RECEIVED (before)
    return_ship     buyer      -        RETURN_REQUESTED (before)
    return_received merchant   -        RETURN_SHIPPED (before)

"before" means strictly before the current state's deadline (`deadline_passed`); the buyer's
FUNDED cancel waits for the ship deadline (`deadline_not_reached`; with the block hook the order
is refunded at that deadline anyway). One checker, `check_action`, reads the table in a fixed
order: the order exists (`unknown_order`), is open (`order_closed`), the sender is a listed
party (`wrong_actor`) and holds the role (`not_authorized`), the state is listed
(`wrong_order_state`), then the deadline rule. Each handler then checks its own rules.

Money: `order.pay` moves the total from the buyer into escrow (`Supply.escrow`); settlement
(`_settle`) moves all of it out again, split by `contracts.payout.settle`, only to the buyer,
the merchant, the sharer and the leader (one level: nobody is paid from another's commission).
Every handler checks first and changes last.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from contracts.deadlines import pop_due, schedule
from contracts.errors import (
    AmountMismatch,
    CommissionTooHigh,
    DeadlineNotReached,
    DeadlinePassed,
    InvalidArbiter,
    InvalidBuyer,
    InvalidLeader,
    InvalidPickupHash,
    InvalidReturnLine,
    InvalidSharer,
    NotReturnable,
    OrderClosed,
    RefundTooLarge,
    UnknownOrder,
    WrongActor,
    WrongOrderState,
    WrongPickupCode,
)
from contracts.orders import (
    AT_PICKUP,
    CANCELLED,
    COMPLETED,
    CREATED,
    DISPUTED,
    FUNDED,
    RECEIVED,
    REFUNDED,
    RESOLVED,
    RETURN_REQUESTED,
    RETURN_SHIPPED,
    SHIPPED,
    Order,
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
    find_order,
    get_order,
    index_parties,
    new_order,
    orders_of,
    pickup_used_key,
    put_order,
    require_order,
)
from contracts.payout import Settlement, goods_value, settle, settle_return
from contracts.reviews import item_ref, record_order_items
from ledger.accounts import (
    get_parameter,
    get_supply,
    put_account,
    put_supply,
    require_account,
)
from ledger.encoding import decode, encode
from ledger.errors import InsufficientBalance, InvalidAmount
from ledger.execution import BlockContext, Events, TxKind, require_role
from ledger.keys import format_address
from ledger.plugins import Contract
from ledger.schema import MAX_AMOUNT
from ledger.state import State
from ledger.transactions import SignedTransaction

WINDOWS: Final[dict[str, str]] = {
    CREATED: "cancel_window_s",
    FUNDED: "ship_deadline_s",
    SHIPPED: "confirm_window_s",
    RECEIVED: "return_window_s",
    DISPUTED: "dispute_deadline_s",
    AT_PICKUP: "pickup_window_s",
    RETURN_REQUESTED: "return_ship_window_s",
    RETURN_SHIPPED: "return_receive_window_s",
}
"""Open state -> the parameter that gives its window."""


# --- transitions ------------------------------------------------------------------------------


def _event(kind: str, order_id: bytes, **fields: Any) -> dict[str, Any]:
    return {"event": kind, "order_id": order_id, **fields}


def _enter(
    state: State,
    order_id: bytes,
    order: Order,
    new_state: str,
    at_s: int,
    now_s: int,
    events: Events,
) -> None:
    """Move `order` to `new_state` as of `at_s`; schedule its deadline, or take the default at
    once if that deadline is not after `now_s` (the executing block's time)."""
    order.state = new_state
    order.updated_s = at_s
    events.append(_event("order.state", order_id, state=new_state, at_s=at_s))
    window = WINDOWS.get(new_state)
    if window is None:
        order.due_s = None
        put_order(state, order_id, order)
        return
    window_s = get_parameter(state, window)
    order.due_s = at_s + window_s
    if order.due_s <= now_s:
        _default(state, order_id, order, now_s, events)
        return
    schedule(state, order_id, new_state, at_s, window_s)
    put_order(state, order_id, order)


def _default(state: State, order_id: bytes, order: Order, now_s: int, events: Events) -> None:
    """The outcome of `order`'s current state when its deadline `order.due_s` has come."""
    due_s = order.due_s
    if due_s is None:
        return
    if order.state == CREATED:
        _enter(state, order_id, order, CANCELLED, due_s, now_s, events)
    elif order.state in (SHIPPED, AT_PICKUP):
        _enter(state, order_id, order, RECEIVED, due_s, now_s, events)
    elif order.state == RECEIVED:
        _settle(state, order_id, order, 0, events)
        _enter(state, order_id, order, COMPLETED, due_s, now_s, events)
    elif order.state == RETURN_REQUESTED:
        order.returned = ()
        _settle(state, order_id, order, 0, events)
        _enter(state, order_id, order, COMPLETED, due_s, now_s, events)
    elif order.state == RETURN_SHIPPED:
        _settle_return(state, order_id, order, events)
        _enter(state, order_id, order, COMPLETED, due_s, now_s, events)
    elif order.state in (FUNDED, DISPUTED):
        _settle(state, order_id, order, order.held, events)
        _enter(state, order_id, order, REFUNDED, due_s, now_s, events)


def _settle(state: State, order_id: bytes, order: Order, refund: int, events: Events) -> None:
    """Pay out everything `order` holds: `refund` to the buyer, the rest per payout.settle."""
    plan = settle(
        held=order.held,
        goods=order.goods,
        refund=refund,
        sharer_bps=order.commission_bps,
        leader_bps=order.leader_commission_bps,
    )
    _pay_out(state, order_id, order, plan, events)


def _settle_return(state: State, order_id: bytes, order: Order, events: Events) -> None:
    """Pay out a no-reason return: the returned lines' goods value to the buyer, the kept lines
    as a completed order (payout.settle_return)."""
    plan = settle_return(
        held=order.held,
        goods=order.goods,
        returned=order.returned_value,
        sharer_bps=order.commission_bps,
        leader_bps=order.leader_commission_bps,
    )
    _pay_out(state, order_id, order, plan, events)


def _pay_out(state: State, order_id: bytes, order: Order, plan: Settlement, events: Events) -> None:
    """Move everything `order` holds to the payees of `plan` (which sums to `order.held`).

    Cannot fail: every payee is a registered account (checked at creation; accounts are never
    removed) and no balance can overflow (all balances together are at most minted <= 2**63-1).
    """
    supply = get_supply(state)
    supply.escrow -= order.held
    put_supply(state, supply)
    payees = (
        (order.buyer, "buyer", plan.refund),
        (order.merchant, "merchant", plan.merchant),
        (order.sharer, "sharer", plan.sharer),
        (order.leader, "leader", plan.leader),
    )
    for address, role, amount in payees:
        if address is None or amount == 0:
            continue
        account = require_account(state, address, role)
        account.balance += amount
        put_account(state, account)
        events.append(_event("order.payout", order_id, to=address, role=role, amount=amount))
    order.held = 0
    order.refunded = plan.refund
    order.merchant_paid = plan.merchant
    order.sharer_paid = plan.sharer
    order.leader_paid = plan.leader


def run_deadlines(state: State, context: BlockContext) -> None:
    """Block hook: take the default outcome of every order whose deadline is <= block time.

    Cost: the due-queue's (one read per window in use, one per due entry); orders that are not
    due are never read. Superseded entries (the order left that state in time) are skipped.
    Timed transitions have no receipt; the order record shows them (state, updated_s, payouts).
    """
    for entry in pop_due(state, context.time_s):
        order = get_order(state, entry.subject)
        if order is None or order.state != entry.tag or order.due_s != entry.due_s:
            continue
        _default(state, entry.subject, order, context.time_s, [])


# --- who may do what: the table and its one checker ----------------------------------------


@dataclass(frozen=True, slots=True)
class StateRule:
    """How an action's deadline applies in one state it is allowed in."""

    before_deadline: bool = True
    """Only strictly before the state's deadline (else `deadline_passed`)."""
    wait_for_deadline: tuple[str, ...] = ()
    """Parties who may act only once the deadline has come (else `deadline_not_reached`)."""
    waiting_reason: str = ""
    """Why they wait: a message template over `order`, `due_s` and `time_s`."""


BEFORE_DEADLINE: Final = StateRule()


@dataclass(frozen=True, slots=True)
class ActionRule:
    """Who may take one action on an order, and in which states."""

    parties: tuple[str, ...]
    """Order fields naming the parties allowed to send it ("buyer", "merchant", "arbiter",
    "leader")."""
    states: Mapping[str, StateRule]
    """The states it is allowed in (listed in this order in errors), with their deadline rule."""
    sender_role: str | None = None
    """An account role the sender must also still hold."""


Action = Literal[
    "pay",
    "ship",
    "confirm",
    "cancel",
    "dispute",
    "resolve",
    "arrive",
    "pickup",
    "return",
    "return_ship",
    "return_received",
]
"""An action on an existing order (every `order.*` type but `order.create`)."""

ACTIONS: Final[Mapping[Action, ActionRule]] = {
    "pay": ActionRule(("buyer",), {CREATED: BEFORE_DEADLINE}),
    "ship": ActionRule(("merchant",), {FUNDED: BEFORE_DEADLINE}),
    "confirm": ActionRule(("buyer",), {SHIPPED: BEFORE_DEADLINE, AT_PICKUP: BEFORE_DEADLINE}),
    "cancel": ActionRule(
        ("buyer", "merchant"),
        {
            CREATED: BEFORE_DEADLINE,
            FUNDED: StateRule(
                before_deadline=False,
                wait_for_deadline=("buyer",),
                waiting_reason="the merchant may ship order {order} until {due_s} "
                "(block time {time_s}); it is refunded automatically then",
            ),
        },
    ),
    "dispute": ActionRule(
        ("buyer", "merchant"),
        {
            FUNDED: BEFORE_DEADLINE,
            SHIPPED: BEFORE_DEADLINE,
            RECEIVED: BEFORE_DEADLINE,
            AT_PICKUP: BEFORE_DEADLINE,
            RETURN_REQUESTED: BEFORE_DEADLINE,
            RETURN_SHIPPED: BEFORE_DEADLINE,
        },
    ),
    "resolve": ActionRule(("arbiter",), {DISPUTED: BEFORE_DEADLINE}, sender_role="arbiter"),
    "arrive": ActionRule(("leader",), {SHIPPED: BEFORE_DEADLINE}, sender_role="leader"),
    "pickup": ActionRule(("leader",), {AT_PICKUP: BEFORE_DEADLINE}, sender_role="leader"),
    "return": ActionRule(("buyer",), {RECEIVED: BEFORE_DEADLINE}),
    "return_ship": ActionRule(("buyer",), {RETURN_REQUESTED: BEFORE_DEADLINE}),
    "return_received": ActionRule(("merchant",), {RETURN_SHIPPED: BEFORE_DEADLINE}),
}
"""Action on an existing order -> its rule (the table of the module docstring)."""


def check_action(
    state: State, action: Action, order_id: bytes, sender: bytes, context: BlockContext
) -> Order:
    """Raise unless `sender` may take `action` on order `order_id` now (the rules of `ACTIONS`,
    in the order of the module docstring); return the order. Changes nothing."""
    rule = ACTIONS[action]
    order = require_order(state, order_id)
    if order.is_terminal:
        raise OrderClosed(f"order {order_id.hex()} is {order.state}; it accepts nothing more")
    if all(getattr(order, party) != sender for party in rule.parties):
        raise WrongActor(
            f"{format_address(sender)} is not the {' or '.join(rule.parties)} of order "
            f"{order_id.hex()}"
        )
    if rule.sender_role is not None:
        require_role(require_account(state, sender, "sender"), rule.sender_role)
    state_rule = rule.states.get(order.state)
    if state_rule is None:
        raise WrongOrderState(
            f"cannot {action} order {order_id.hex()} in state {order.state}; "
            f"allowed in {', '.join(rule.states)}"
        )
    due_s = order.due_s
    if due_s is None:
        return order
    if state_rule.before_deadline and context.time_s >= due_s:
        raise DeadlinePassed(
            f"order {order_id.hex()} {order.state} deadline {due_s} has passed "
            f"(block time {context.time_s})"
        )
    waiting = any(getattr(order, party) == sender for party in state_rule.wait_for_deadline)
    if waiting and context.time_s < due_s:
        raise DeadlineNotReached(
            state_rule.waiting_reason.format(
                order=order_id.hex(), due_s=due_s, time_s=context.time_s
            )
        )
    return order


# --- handlers ---------------------------------------------------------------------------------


def apply_create(
    state: State, tx: SignedTransaction, body: OrderCreate, context: BlockContext
) -> Events:
    """`order.create`: a merchant opens an order for a registered buyer (order id = tx hash)."""
    merchant = tx.sender_address
    require_role(require_account(state, merchant, "sender"), "merchant")
    require_account(state, body.buyer, "buyer")
    if body.buyer == merchant:
        raise InvalidBuyer(f"merchant {format_address(merchant)} cannot be its own buyer")
    if (body.sharer is None) != (body.commission_bps is None):
        raise InvalidSharer("sharer and commission_bps must be given together or not at all")
    if body.sharer is not None and body.commission_bps is not None:
        require_account(state, body.sharer, "sharer")
        if body.sharer in (body.buyer, merchant):
            role = "buyer" if body.sharer == body.buyer else "merchant"
            raise InvalidSharer(f"sharer {format_address(body.sharer)} is the order's {role}")
        cap = get_parameter(state, "max_commission_bps")
        if body.commission_bps > cap:
            raise CommissionTooHigh(
                f"commission {body.commission_bps} bps exceeds max_commission_bps {cap}"
            )
    arbiter = require_account(state, body.arbiter, "arbiter")
    if not arbiter.has_role("arbiter"):
        raise InvalidArbiter(f"{format_address(body.arbiter)} lacks the 'arbiter' role")
    if body.arbiter in (body.buyer, merchant, body.sharer):
        raise InvalidArbiter(f"arbiter {format_address(body.arbiter)} is a party of the order")
    _check_leader(state, body, merchant)
    goods = goods_value((item.quantity, item.unit_price) for item in body.items)
    total = goods + body.shipping
    if total > MAX_AMOUNT:
        raise InvalidAmount(f"order total {total} exceeds 2**63-1")
    if total < 1:
        raise InvalidAmount("order total is 0; an order must cost at least 1 fen")
    order_id = context.tx_hash
    order = new_order(
        merchant,
        body.buyer,
        body.arbiter,
        body.items,
        body.shipping,
        created_s=context.time_s,
        sharer=body.sharer,
        commission_bps=body.commission_bps or 0,
        leader=body.leader,
        leader_commission_bps=body.leader_commission_bps or 0,
    )
    index_parties(state, order_id, order)
    # The item references a review may name (contracts.reviews, docs/protocol.md "Reviews").
    record_order_items(state, order_id, (item_ref(item.sku) for item in body.items))
    events: Events = [_event("order.created", order_id, buyer=body.buyer, total=total)]
    _enter(state, order_id, order, CREATED, context.time_s, context.time_s, events)
    return events


def _check_leader(state: State, body: OrderCreate, merchant: bytes) -> None:
    """The leader rules of `order.create` (`check_leader`)."""
    others = {"buyer": body.buyer, "merchant": merchant, "arbiter": body.arbiter}
    if body.sharer is not None:
        others["sharer"] = body.sharer
    check_leader(state, body.leader, body.leader_commission_bps, others, "order")


def check_leader(
    state: State,
    leader_address: bytes | None,
    rate_bps: int | None,
    others: dict[str, bytes],
    what: str,
) -> None:
    """The leader rules of an order (or of a group's member orders, `what` = "group"): leader
    and rate together, the leader holds the role and is none of `others` (role -> address), and
    the rate is within max_leader_commission_bps."""
    if (leader_address is None) != (rate_bps is None):
        raise InvalidLeader("leader and leader_commission_bps must be given together or not at all")
    if leader_address is None or rate_bps is None:
        return
    leader = require_account(state, leader_address, "leader")
    if not leader.has_role("leader"):
        raise InvalidLeader(f"{format_address(leader_address)} lacks the 'leader' role")
    for role, address in others.items():
        if leader_address == address:
            raise InvalidLeader(f"leader {format_address(leader_address)} is the {what}'s {role}")
    cap = get_parameter(state, "max_leader_commission_bps")
    if rate_bps > cap:
        raise CommissionTooHigh(
            f"leader commission {rate_bps} bps exceeds max_leader_commission_bps {cap}"
        )


def pickup_revealed_by(state: State, pickup_hash: bytes) -> bytes | None:
    """The order whose `order.pickup` revealed the code of `pickup_hash`, if one did."""
    raw = state.get(pickup_used_key(pickup_hash))
    return None if raw is None else bytes(decode(raw))


def check_pickup_hash_unused(state: State, pickup_hash: bytes | None) -> None:
    """A pickup hash whose code an `order.pickup` already revealed is refused
    (`invalid_pickup_hash`): the code is public, so it proves nothing (one-time codes)."""
    if pickup_hash is None:
        return
    used_by = pickup_revealed_by(state, pickup_hash)
    if used_by is not None:
        raise InvalidPickupHash(
            f"the code of pickup hash {pickup_hash.hex()} was revealed by the pickup of order "
            f"{used_by.hex()}; choose a new one-time code"
        )


def apply_pay(state: State, tx: SignedTransaction, body: OrderPay, context: BlockContext) -> Events:
    """`order.pay`: the buyer pays exactly the total into escrow (CREATED -> FUNDED)."""
    order = check_action(state, "pay", body.order_id, tx.sender_address, context)
    if body.amount != order.total:
        raise AmountMismatch(
            f"payment {body.amount} is not the order total {order.total} "
            f"(goods {order.goods} + shipping {order.shipping})"
        )
    if order.leader is not None and body.pickup_hash is None:
        raise InvalidPickupHash(
            f"order {body.order_id.hex()} is collected at leader "
            f"{format_address(order.leader)}'s pickup point: pay with a pickup_hash"
        )
    if order.leader is None and body.pickup_hash is not None:
        raise InvalidPickupHash(
            f"order {body.order_id.hex()} has no leader, so no pickup code: omit pickup_hash"
        )
    check_pickup_hash_unused(state, body.pickup_hash)
    buyer = require_account(state, tx.sender_address, "buyer")
    if buyer.balance < order.total:
        raise InsufficientBalance(
            f"order total {order.total} exceeds balance {buyer.balance} of "
            f"{format_address(tx.sender_address)}"
        )
    buyer.balance -= order.total
    put_account(state, buyer)
    supply = get_supply(state)
    supply.escrow += order.total
    put_supply(state, supply)
    order.held = order.total
    order.pickup_hash = body.pickup_hash
    events: Events = [_event("order.paid", body.order_id, amount=order.total)]
    _enter(state, body.order_id, order, FUNDED, context.time_s, context.time_s, events)
    return events


def apply_ship(
    state: State, tx: SignedTransaction, body: OrderShip, context: BlockContext
) -> Events:
    """`order.ship`: the merchant ships before the ship deadline (FUNDED -> SHIPPED)."""
    order = check_action(state, "ship", body.order_id, tx.sender_address, context)
    order.shipment_hash = body.shipment_hash
    events: Events = []
    _enter(state, body.order_id, order, SHIPPED, context.time_s, context.time_s, events)
    return events


def apply_confirm(
    state: State, tx: SignedTransaction, body: OrderConfirm, context: BlockContext
) -> Events:
    """`order.confirm`: the buyer confirms receipt (SHIPPED or AT_PICKUP -> RECEIVED; the return
    window starts)."""
    order = check_action(state, "confirm", body.order_id, tx.sender_address, context)
    events: Events = []
    _enter(state, body.order_id, order, RECEIVED, context.time_s, context.time_s, events)
    return events


def apply_cancel(
    state: State, tx: SignedTransaction, body: OrderCancel, context: BlockContext
) -> Events:
    """`order.cancel`: either side before funding (-> CANCELLED); the merchant before shipping,
    or the buyer once the ship deadline has passed (-> REFUNDED in full)."""
    order = check_action(state, "cancel", body.order_id, tx.sender_address, context)
    events: Events = []
    if order.state == CREATED:
        _enter(state, body.order_id, order, CANCELLED, context.time_s, context.time_s, events)
        return events
    _settle(state, body.order_id, order, order.held, events)
    _enter(state, body.order_id, order, REFUNDED, context.time_s, context.time_s, events)
    return events


def apply_dispute(
    state: State, tx: SignedTransaction, body: OrderDispute, context: BlockContext
) -> Events:
    """`order.dispute`: buyer or merchant, after funding and before completion (-> DISPUTED)."""
    order = check_action(state, "dispute", body.order_id, tx.sender_address, context)
    order.disputed_by = tx.sender_address
    order.reason_hash = body.reason_hash
    events: Events = []
    _enter(state, body.order_id, order, DISPUTED, context.time_s, context.time_s, events)
    return events


def apply_resolve(
    state: State, tx: SignedTransaction, body: OrderResolve, context: BlockContext
) -> Events:
    """`order.resolve`: the order's arbiter refunds `refund` and settles the rest (-> RESOLVED)."""
    order = check_action(state, "resolve", body.order_id, tx.sender_address, context)
    if body.refund > order.held:
        raise RefundTooLarge(f"refund {body.refund} exceeds the {order.held} held in escrow")
    events: Events = []
    _settle(state, body.order_id, order, body.refund, events)
    _enter(state, body.order_id, order, RESOLVED, context.time_s, context.time_s, events)
    return events


def apply_arrive(
    state: State, tx: SignedTransaction, body: OrderArrive, context: BlockContext
) -> Events:
    """`order.arrive`: the order's leader has the goods at the pickup point (SHIPPED ->
    AT_PICKUP; the pickup window starts)."""
    order = check_action(state, "arrive", body.order_id, tx.sender_address, context)
    events: Events = []
    _enter(state, body.order_id, order, AT_PICKUP, context.time_s, context.time_s, events)
    return events


def apply_pickup(
    state: State, tx: SignedTransaction, body: OrderPickup, context: BlockContext
) -> Events:
    """`order.pickup`: the leader hands over the goods, presenting the buyer's one-time code
    (AT_PICKUP -> RECEIVED; the return window starts)."""
    order = check_action(state, "pickup", body.order_id, tx.sender_address, context)
    if order.pickup_hash is None:
        raise WrongPickupCode(
            f"order {body.order_id.hex()} has no pickup code; the buyer confirms the hand-over"
        )
    if hashlib.sha256(body.code).digest() != order.pickup_hash:
        raise WrongPickupCode(
            f"SHA-256 of the code is {hashlib.sha256(body.code).hexdigest()}, not the pickup "
            f"hash {order.pickup_hash.hex()} of order {body.order_id.hex()}"
        )
    used_by = pickup_revealed_by(state, order.pickup_hash)
    if used_by is not None:
        raise WrongPickupCode(
            f"the code of pickup hash {order.pickup_hash.hex()} was revealed by the pickup of "
            f"order {used_by.hex()}; it is used once (the buyer confirms the hand-over)"
        )
    state.set(pickup_used_key(order.pickup_hash), encode(body.order_id))
    events: Events = []
    _enter(state, body.order_id, order, RECEIVED, context.time_s, context.time_s, events)
    return events


def apply_return(
    state: State, tx: SignedTransaction, body: OrderReturn, context: BlockContext
) -> Events:
    """`order.return`: the buyer returns whole returnable lines within the return window
    (RECEIVED -> RETURN_REQUESTED; no arbiter, no reason)."""
    order = check_action(state, "return", body.order_id, tx.sender_address, context)
    previous = -1
    for index in body.lines:
        if index <= previous:
            raise InvalidReturnLine(f"return lines {list(body.lines)} must be strictly increasing")
        if index >= len(order.items):
            raise InvalidReturnLine(
                f"order {body.order_id.hex()} has lines 0..{len(order.items) - 1}, not {index}"
            )
        if not order.items[index].is_returnable:
            raise NotReturnable(
                f"line {index} ({order.items[index].sku}) of order {body.order_id.hex()} "
                "was sold as not returnable"
            )
        previous = index
    order.returned = body.lines
    events: Events = [_event("order.return", body.order_id, lines=list(body.lines))]
    _enter(state, body.order_id, order, RETURN_REQUESTED, context.time_s, context.time_s, events)
    return events


def apply_return_ship(
    state: State, tx: SignedTransaction, body: OrderReturnShip, context: BlockContext
) -> Events:
    """`order.return-ship`: the buyer ships the returned lines back (RETURN_REQUESTED ->
    RETURN_SHIPPED; the merchant's window starts, after which the refund is automatic)."""
    order = check_action(state, "return_ship", body.order_id, tx.sender_address, context)
    order.return_hash = body.tracking_hash
    events: Events = []
    _enter(state, body.order_id, order, RETURN_SHIPPED, context.time_s, context.time_s, events)
    return events


def apply_return_received(
    state: State, tx: SignedTransaction, body: OrderReturnReceived, context: BlockContext
) -> Events:
    """`order.return-received`: the merchant has the goods back (RETURN_SHIPPED -> COMPLETED:
    the returned lines refunded, the kept lines paid out)."""
    order = check_action(state, "return_received", body.order_id, tx.sender_address, context)
    events: Events = []
    _settle_return(state, body.order_id, order, events)
    _enter(state, body.order_id, order, COMPLETED, context.time_s, context.time_s, events)
    return events


CONTRACT: Final = Contract(
    name="escrow",
    kinds=(
        TxKind(OrderCreate, apply_create),
        TxKind(OrderPay, apply_pay),
        TxKind(OrderShip, apply_ship),
        TxKind(OrderConfirm, apply_confirm),
        TxKind(OrderCancel, apply_cancel),
        TxKind(OrderDispute, apply_dispute),
        TxKind(OrderResolve, apply_resolve),
        TxKind(OrderArrive, apply_arrive),
        TxKind(OrderPickup, apply_pickup),
        TxKind(OrderReturn, apply_return),
        TxKind(OrderReturnShip, apply_return_ship),
        TxKind(OrderReturnReceived, apply_return_received),
    ),
    block_hooks=(run_deadlines,),
    errors=(
        UnknownOrder,
        OrderClosed,
        WrongActor,
        WrongOrderState,
        DeadlinePassed,
        DeadlineNotReached,
        AmountMismatch,
        RefundTooLarge,
        InvalidBuyer,
        InvalidArbiter,
        InvalidSharer,
        CommissionTooHigh,
        InvalidLeader,
        InvalidPickupHash,
        WrongPickupCode,
        InvalidReturnLine,
        NotReturnable,
    ),
    queries=(get_order, find_order, orders_of),
)
"""The orders-and-escrow plug-in: the `order.*` kinds and the deadline hook."""


# --- orders opened by other contracts ---------------------------------------------------------


def open_funded_order(
    state: State,
    order_id: bytes,
    *,
    merchant: bytes,
    buyer: bytes,
    arbiter: bytes,
    items: tuple[OrderItem, ...],
    shipping: int,
    sharer: bytes | None,
    commission_bps: int,
    leader: bytes | None,
    leader_commission_bps: int,
    pickup_hash: bytes | None,
    item_refs: tuple[bytes, ...],
    context: BlockContext,
    events: Events,
) -> Order:
    """Open an order already FUNDED, for a contract that holds its payment (contracts.groups).

    The caller has checked the parties as `apply_create` does (`check_leader` for a leader) and
    already counts the order's total in `Supply.escrow`: the order takes it over
    (`held = total`) and nothing moves. With a leader, `pickup_hash` is the buyer's pickup-code
    hash, as `order.pay` would set it. `item_refs` are recorded for reviews. The order enters
    FUNDED at the block time, so its ship deadline is scheduled like that of an order paid now;
    from there the ordinary life cycle applies.
    """
    order = new_order(
        merchant,
        buyer,
        arbiter,
        items,
        shipping,
        created_s=context.time_s,
        sharer=sharer,
        commission_bps=commission_bps if sharer is not None else 0,
        leader=leader,
        leader_commission_bps=leader_commission_bps if leader is not None else 0,
    )
    order.held = order.total
    order.pickup_hash = pickup_hash
    index_parties(state, order_id, order)
    record_order_items(state, order_id, item_refs)
    events.append(_event("order.created", order_id, buyer=buyer, total=order.total))
    _enter(state, order_id, order, FUNDED, context.time_s, context.time_s, events)
    return order
