"""Order records in state (the layout, the states and the per-party index) and the bodies of
the `order.*` transactions (executed by `contracts.escrow`).

An order lives under ``b"order:" || order id`` (the id is the hash of its `order.create`
transaction) as a canonical array (`ORDER_FIELDS` gives the positions; docs/protocol.md
"Orders and escrow" has the table). Every party of an order is indexed under
``b"party:" || address || order id`` -> its role (text), written once at creation, so an
account's orders can be listed in order-id order by a prefix scan.

Invariants: `state` is one of `STATES`; a terminal order holds nothing (`held == 0`) and has no
deadline (`due_s is None`); a funded order's settlement parts sum to its total, an unfunded
one's to 0. The state machine that keeps them is `contracts.escrow`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from contracts.errors import UnknownOrder
from ledger.encoding import decode, encode
from ledger.errors import DecodeError, MalformedTransaction, StoreError
from ledger.keys import ADDRESS_SIZE
from ledger.schema import MAX_AMOUNT, Optional, field, integer, list_of, struct, text
from ledger.state import State, StateReader, StateScanner
from ledger.transactions import ADDRESS_KIND, AMOUNT_KIND, HASH_KIND, TxBody

ORDER_PREFIX: Final = b"order:"
PARTY_PREFIX: Final = b"party:"
PICKUP_USED_PREFIX: Final = b"pickup:"
"""``b"pickup:" || pickup hash`` -> id of the order whose `order.pickup` revealed its code."""
ORDER_ID_SIZE: Final = 32

CREATED: Final = "CREATED"
FUNDED: Final = "FUNDED"
SHIPPED: Final = "SHIPPED"
RECEIVED: Final = "RECEIVED"
DISPUTED: Final = "DISPUTED"
COMPLETED: Final = "COMPLETED"
CANCELLED: Final = "CANCELLED"
REFUNDED: Final = "REFUNDED"
RESOLVED: Final = "RESOLVED"
AT_PICKUP: Final = "AT_PICKUP"
RETURN_REQUESTED: Final = "RETURN_REQUESTED"
RETURN_SHIPPED: Final = "RETURN_SHIPPED"

OPEN_STATES: Final = (
    CREATED,
    FUNDED,
    SHIPPED,
    RECEIVED,
    DISPUTED,
    AT_PICKUP,
    RETURN_REQUESTED,
    RETURN_SHIPPED,
)
TERMINAL_STATES: Final = (COMPLETED, CANCELLED, REFUNDED, RESOLVED)
STATES: Final = OPEN_STATES + TERMINAL_STATES
ROLES: Final = ("merchant", "buyer", "arbiter", "sharer", "leader")
"""Roles an account can have in an order (the value of its party-index record)."""
MAX_BPS: Final = 10_000
"""Basis points in a whole (a commission rate is at most this)."""
PICKUP_CODE_MIN: Final = 16
"""Fewest bytes in a pickup code: its SHA-256 is public, so a short code could be guessed by
hashing every candidate (the CLI draws 16 random bytes)."""
PICKUP_CODE_MAX: Final = 64
MAX_ITEMS: Final = 64
"""Most lines in one order (bounds the record and a return's line list)."""


def _only_false(value: Any, where: str) -> bool:
    """Wire kind of `OrderItem.returnable`: present only as an explicit false."""
    if value is not False:
        raise MalformedTransaction(
            f"{where}: only false may be given (absent means returnable), got {value!r}"
        )
    return False


def _code(value: Any, where: str) -> bytes:
    """Wire kind of a pickup code: PICKUP_CODE_MIN..PICKUP_CODE_MAX bytes."""
    if not isinstance(value, bytes):
        raise MalformedTransaction(f"{where}: expected bytes, got {type(value).__name__}")
    if not PICKUP_CODE_MIN <= len(value) <= PICKUP_CODE_MAX:
        raise MalformedTransaction(
            f"{where}: {len(value)} bytes, allowed [{PICKUP_CODE_MIN}, {PICKUP_CODE_MAX}]"
        )
    return value


# --- transaction bodies -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderItem:
    """One line of an order."""

    sku: str = field(text(64, min_length=1), "merchant's stock-keeping unit")
    quantity: int = field(integer(1, 1_000_000), "units")
    unit_price: int = field(integer(0, MAX_AMOUNT), "fen per unit")
    returnable: bool | None = field(
        Optional(_only_false),
        "absent: the line may be returned within the return window without a reason; "
        "false: it may not (custom, perishable or opened digital goods)",
    )

    def __post_init__(self) -> None:
        # True is the default and has one wire form, absence: normalise it to None.
        if self.returnable is True:
            object.__setattr__(self, "returnable", None)

    @property
    def is_returnable(self) -> bool:
        return self.returnable is None

    @property
    def value(self) -> int:
        """Goods value of the line: quantity * unit_price."""
        return self.quantity * self.unit_price


@dataclass(frozen=True, slots=True)
class OrderCreate(TxBody):
    """Merchant (the sender) creates an order for `buyer`; the order id is this tx's hash."""

    TYPE: ClassVar[str] = "order.create"

    buyer: bytes = field(ADDRESS_KIND, "the buyer")
    items: tuple[OrderItem, ...] = field(
        list_of(struct(OrderItem), min_items=1, max_items=MAX_ITEMS), "order lines"
    )
    shipping: int = field(integer(0, MAX_AMOUNT), "shipping fee in fen")
    arbiter: bytes = field(ADDRESS_KIND, "arbiter who resolves disputes")
    sharer: bytes | None = field(Optional(ADDRESS_KIND), "sharer whose link the buyer used")
    commission_bps: int | None = field(
        Optional(integer(0, MAX_BPS)), "commission on goods value, basis points"
    )
    leader: bytes | None = field(
        Optional(ADDRESS_KIND), "community group leader whose pickup point receives the goods"
    )
    leader_commission_bps: int | None = field(
        Optional(integer(0, MAX_BPS)), "leader's commission on goods value, basis points"
    )


@dataclass(frozen=True, slots=True)
class OrderPay(TxBody):
    """Buyer pays exactly the order total into escrow."""

    TYPE: ClassVar[str] = "order.pay"

    order_id: bytes = field(HASH_KIND, "order id")
    amount: int = field(AMOUNT_KIND, "must equal the order total")
    pickup_hash: bytes | None = field(
        Optional(HASH_KIND),
        "SHA-256 of the buyer's one-time pickup code; required when the order has a leader",
    )


@dataclass(frozen=True, slots=True)
class OrderShip(TxBody):
    """Merchant marks the order shipped."""

    TYPE: ClassVar[str] = "order.ship"

    order_id: bytes = field(HASH_KIND, "order id")
    shipment_hash: bytes = field(HASH_KIND, "hash of the shipment reference")


@dataclass(frozen=True, slots=True)
class OrderConfirm(TxBody):
    """Buyer confirms receipt of a shipped order."""

    TYPE: ClassVar[str] = "order.confirm"

    order_id: bytes = field(HASH_KIND, "order id")


@dataclass(frozen=True, slots=True)
class OrderCancel(TxBody):
    """Buyer or merchant cancels an order (same wire schema as `OrderConfirm`)."""

    TYPE: ClassVar[str] = "order.cancel"

    order_id: bytes = field(HASH_KIND, "order id")


@dataclass(frozen=True, slots=True)
class OrderDispute(TxBody):
    """Buyer or merchant disputes a funded order."""

    TYPE: ClassVar[str] = "order.dispute"

    order_id: bytes = field(HASH_KIND, "order id")
    reason_hash: bytes | None = field(Optional(HASH_KIND), "hash of the off-chain complaint")


@dataclass(frozen=True, slots=True)
class OrderResolve(TxBody):
    """The order's arbiter splits the escrow: `refund` to the buyer, the rest to the merchant."""

    TYPE: ClassVar[str] = "order.resolve"

    order_id: bytes = field(HASH_KIND, "order id")
    refund: int = field(integer(0, MAX_AMOUNT), "fen returned to the buyer")


@dataclass(frozen=True, slots=True)
class OrderArrive(TxBody):
    """The order's leader confirms the goods arrived at the pickup point."""

    TYPE: ClassVar[str] = "order.arrive"

    order_id: bytes = field(HASH_KIND, "order id")


@dataclass(frozen=True, slots=True)
class OrderPickup(TxBody):
    """The order's leader hands the goods over, presenting the buyer's one-time pickup code."""

    TYPE: ClassVar[str] = "order.pickup"

    order_id: bytes = field(HASH_KIND, "order id")
    code: bytes = field(_code, "the pickup code whose SHA-256 the buyer gave in order.pay")


@dataclass(frozen=True, slots=True)
class OrderReturn(TxBody):
    """Buyer asks for a no-reason return of whole returnable lines, within the return window."""

    TYPE: ClassVar[str] = "order.return"

    order_id: bytes = field(HASH_KIND, "order id")
    lines: tuple[int, ...] = field(
        list_of(integer(0, MAX_ITEMS - 1), min_items=1, max_items=MAX_ITEMS),
        "indexes of the returned lines, strictly increasing",
    )


@dataclass(frozen=True, slots=True)
class OrderReturnShip(TxBody):
    """Buyer ships the returned lines back."""

    TYPE: ClassVar[str] = "order.return-ship"

    order_id: bytes = field(HASH_KIND, "order id")
    tracking_hash: bytes = field(HASH_KIND, "hash of the return shipment reference")


@dataclass(frozen=True, slots=True)
class OrderReturnReceived(TxBody):
    """Merchant confirms the returned goods arrived: the buyer is refunded at once."""

    TYPE: ClassVar[str] = "order.return-received"

    order_id: bytes = field(HASH_KIND, "order id")


# --- records ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Order:
    """One order (mutable while a transition works on it; stored as a record)."""

    merchant: bytes
    """Address of the merchant who created the order."""
    buyer: bytes
    """Address of the buyer who pays."""
    arbiter: bytes
    """Address of the arbiter who resolves a dispute."""
    sharer: bytes | None
    """Address of the sharer whose link the buyer used, if any."""
    commission_bps: int
    """Commission rate on the goods value (0 without a sharer)."""
    leader: bytes | None
    """Address of the community group leader whose pickup point receives the goods, if any."""
    leader_commission_bps: int
    """The leader's commission rate on the goods value (0 without a leader)."""
    items: tuple[OrderItem, ...]
    """The order lines, as created (stored as ``[sku, quantity, unit_price, returnable]``)."""
    goods: int
    """Sum of quantity * unit_price over the items, in fen."""
    shipping: int
    """Shipping fee in fen."""
    state: str
    """One of STATES."""
    created_s: int
    """Block time of creation."""
    updated_s: int
    """Time of the last transition: the block time, or the deadline for a timed one."""
    due_s: int | None
    """Deadline of the current state (None once terminal)."""
    shipment_hash: bytes | None
    """Hash of the shipment reference, once shipped."""
    reason_hash: bytes | None
    """Hash of the off-chain complaint, if the dispute gave one."""
    disputed_by: bytes | None
    """Who opened the dispute, if any."""
    pickup_hash: bytes | None
    """SHA-256 of the buyer's one-time pickup code (leader orders, given at payment)."""
    returned: tuple[int, ...]
    """Indexes of the lines in a no-reason return (requested, then refunded); () if none."""
    return_hash: bytes | None
    """Hash of the return shipment reference, once the buyer shipped the goods back."""
    held: int
    """Fen currently held in escrow for this order."""
    refunded: int
    """Fen returned to the buyer at settlement."""
    merchant_paid: int
    """Fen paid to the merchant at settlement."""
    sharer_paid: int
    """Fen paid to the sharer at settlement."""
    leader_paid: int
    """Fen paid to the leader at settlement."""

    @property
    def total(self) -> int:
        """What the buyer pays into escrow."""
        return self.goods + self.shipping

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def settled(self) -> int:
        """Sum of the settlement parts."""
        return self.refunded + self.merchant_paid + self.sharer_paid + self.leader_paid

    @property
    def returned_value(self) -> int:
        """Goods value of the lines in `returned`."""
        return sum(self.items[index].value for index in self.returned)

    def parties(self) -> list[tuple[bytes, str]]:
        """(address, role) of everyone indexed for this order, in ROLES order."""
        listed = [(self.merchant, "merchant"), (self.buyer, "buyer"), (self.arbiter, "arbiter")]
        if self.sharer is not None:
            listed.append((self.sharer, "sharer"))
        if self.leader is not None:
            listed.append((self.leader, "leader"))
        return listed


def new_order(
    merchant: bytes,
    buyer: bytes,
    arbiter: bytes,
    items: tuple[OrderItem, ...],
    shipping: int,
    *,
    created_s: int,
    sharer: bytes | None = None,
    commission_bps: int = 0,
    leader: bytes | None = None,
    leader_commission_bps: int = 0,
) -> Order:
    """A fresh order record in CREATED, holding nothing (callers check the parties and rates;
    `contracts.escrow` enters it into its state machine)."""
    return Order(
        merchant=merchant,
        buyer=buyer,
        arbiter=arbiter,
        sharer=sharer,
        commission_bps=commission_bps,
        leader=leader,
        leader_commission_bps=leader_commission_bps,
        items=items,
        goods=sum(item.value for item in items),
        shipping=shipping,
        state=CREATED,
        created_s=created_s,
        updated_s=created_s,
        due_s=None,
        shipment_hash=None,
        reason_hash=None,
        disputed_by=None,
        pickup_hash=None,
        returned=(),
        return_hash=None,
        held=0,
        refunded=0,
        merchant_paid=0,
        sharer_paid=0,
        leader_paid=0,
    )


ORDER_FIELDS: Final = tuple(f.name for f in dataclasses.fields(Order))
"""Record positions: the record is the array of these fields, in this order."""


def order_key(order_id: bytes) -> bytes:
    return ORDER_PREFIX + order_id


def party_key(address: bytes, order_id: bytes) -> bytes:
    return PARTY_PREFIX + address + order_id


def pickup_used_key(pickup_hash: bytes) -> bytes:
    return PICKUP_USED_PREFIX + pickup_hash


_ITEMS_AT: Final = ORDER_FIELDS.index("items")
_RETURNED_AT: Final = ORDER_FIELDS.index("returned")


def encode_order(order: Order) -> bytes:
    fields: list[Any] = [getattr(order, name) for name in ORDER_FIELDS]
    fields[_ITEMS_AT] = [
        [item.sku, item.quantity, item.unit_price, item.is_returnable] for item in order.items
    ]
    fields[_RETURNED_AT] = list(order.returned)
    return encode(fields)


def decode_order(raw: bytes) -> Order:
    """An order from its stored record (state bytes, written only by `put_order`)."""
    fields = decode(raw)
    if not isinstance(fields, list) or len(fields) != len(ORDER_FIELDS):
        raise TypeError(f"an order record has {len(ORDER_FIELDS)} fields")
    fields[_ITEMS_AT] = tuple(
        OrderItem(sku, quantity, price, None if returnable else False)
        for sku, quantity, price, returnable in fields[_ITEMS_AT]
    )
    fields[_RETURNED_AT] = tuple(fields[_RETURNED_AT])
    return Order(*fields)


def get_order(state: State, order_id: bytes) -> Order | None:
    raw = state.get(order_key(order_id))
    return None if raw is None else decode_order(raw)


def require_order(state: State, order_id: bytes) -> Order:
    order = get_order(state, order_id)
    if order is None:
        raise UnknownOrder(f"no order {order_id.hex()}")
    return order


def put_order(state: State, order_id: bytes, order: Order) -> None:
    state.set(order_key(order_id), encode_order(order))


def index_parties(state: State, order_id: bytes, order: Order) -> None:
    """Write the party-index records of a new order."""
    for address, role in order.parties():
        state.set(party_key(address, order_id), encode(role))


# --- read-only queries ---
# For readers outside execution (the RPC reads a `ledger.store.CommittedState`): they take the
# narrowest state protocol they need and report a malformed record as a corrupt store
# (`StoreError`), never as a rule broken by a transaction.


@dataclass(frozen=True, slots=True)
class PartyOrder:
    """One entry of an account's order listing."""

    order_id: bytes
    """Id of the order (the hash of its `order.create` transaction)."""
    role: str
    """The account's role in the order (one of ROLES, from the party index)."""
    order: Order
    """The order record."""


@dataclass(frozen=True, slots=True)
class OrdersPage:
    """One page of `orders_of`."""

    orders: tuple[PartyOrder, ...]
    """The matching orders, in increasing order id."""
    next_after: bytes | None
    """Pass as `after` for the next page: the last order id examined (filtered out or not);
    None when the listing is complete."""


def find_order(state: StateReader, order_id: bytes) -> Order | None:
    """The order `order_id` as `state` holds it, or None if there is none."""
    raw = state.get(order_key(order_id))
    if raw is None:
        return None
    try:
        return decode_order(raw)
    except (DecodeError, TypeError, ValueError) as exc:
        raise StoreError(f"order record {order_id.hex()}: {exc}") from None


def orders_of(
    state: StateScanner,
    party: bytes,
    *,
    role: str | None = None,
    in_state: str | None = None,
    after: bytes | None = None,
    limit: int,
    max_examined: int | None = None,
) -> OrdersPage:
    """The orders where `party` has a role, in increasing order id, from the first id above
    `after`: at most `limit` of them, only those where it is `role` and that are `in_state`
    (None: any).

    The party index is scanned from `after` on (a seek where the state supports one), and at
    most one entry past the page is looked at, to learn whether the listing goes on. With
    `max_examined`, at most that many index entries are examined, so a filtered page may be
    short (or empty) and still have a `next_after`.
    """
    if len(party) != ADDRESS_SIZE:
        raise ValueError(f"party {party.hex()} is {len(party)} bytes, not an address")
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    if max_examined is not None and max_examined < 1:
        raise ValueError(f"max_examined must be at least 1, not {max_examined}")
    prefix = PARTY_PREFIX + party
    found: list[PartyOrder] = []
    examined = 0
    last = b""
    for key, value in state.scan(prefix, start_after=after):
        if len(found) == limit or examined == max_examined:
            return OrdersPage(tuple(found), last)
        examined += 1
        order_id = key[len(prefix) :]
        last = order_id
        party_role = _party_role(value, order_id)
        if role is not None and party_role != role:
            continue
        order = find_order(state, order_id)
        if order is None:
            raise StoreError(f"party index names order {order_id.hex()}, which is absent")
        if in_state is not None and order.state != in_state:
            continue
        found.append(PartyOrder(order_id, party_role, order))
    return OrdersPage(tuple(found), None)


def _party_role(raw: bytes, order_id: bytes) -> str:
    """The role in a party-index record."""
    try:
        role = decode(raw)
    except DecodeError as exc:
        raise StoreError(f"party index entry of order {order_id.hex()}: {exc}") from None
    if not isinstance(role, str):
        raise StoreError(f"party index entry of order {order_id.hex()} is not a role")
    return role
