"""Group buy (pintuan): a merchant's offer that becomes ordinary orders once enough buyers pay.

Theory of operation. A group moves through

    OPEN --(join reaching min_members)--> FORMED
      |--(join deadline, fewer than min)--> FAILED      (every member refunded, by the block hook)
      +--(group.cancel by the merchant)---> CANCELLED   (every member refunded at once)

* `group.open` (merchant role): the terms. Group id = the transaction hash.
* `group.join` (any registered account but the merchant and the arbiter, once per account,
  strictly before `deadline_s`, while fewer than `max_members` joined): pays exactly its price
  into the group's pool, counted in `Supply.escrow` like an order's escrow. The first member
  (index 0, the pintuan "opener" who starts the group) pays ``unit_price - opener_discount``,
  every later one ``unit_price``; each adds ``shipping``. A member may name the sharer whose
  link it used, at a rate up to the group's `commission_bps`, which the merchant (who pays it)
  sets at `group.open` (absent: 0, sharers earn nothing).
* The join that brings the count to `min_members` forms the group at once: every member so far
  gets an ordinary order in FUNDED (`contracts.escrow.open_funded_order`), its payment moved
  from the pool to the order. A FORMED group keeps accepting joins until `max_members` or the
  deadline; each such join opens its member's order at once. So the pool holds exactly the
  payments of members without an order: all of them while OPEN, none once FORMED.
* At the deadline an OPEN group FAILS: the block hook (`run_group_deadlines`, over the due-heap
  of `contracts.due_heap`) refunds every member in full, nobody acting. A terminal group (FAILED,
  CANCELLED) accepts nothing, so each member is refunded at most once.

Member orders are ordinary orders: order id ``SHA-256(b"sec/group-order" || group id || index
(4 bytes, big-endian))``, one line (sku = item hash in hex, quantity 1, the member's price), the
group's shipping and arbiter, the member's sharer and commission (one referral level), and the
chain's window parameters from FUNDED on, like any order.

State records (canonical arrays; docs/protocol.md "Group buy"):

* ``b"group:" || group id`` -> `Group` (`GROUP_FIELDS` order);
* ``b"gmember:" || group id || index (4 bytes, BE)`` -> `Member` (`MEMBER_FIELDS` order): one
  record per member, so a group of 1000 is not one huge record;
* ``b"gjoined:" || group id || address`` -> index: one join per account;
* ``b"gmerchant:" || merchant || group id`` -> ``b""``: a merchant's groups, by id;
* the due-heap ``b"gdue"`` of join deadlines (`contracts.due_heap`).

Every handler checks first and changes last.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from contracts import due_heap
from contracts.errors import (
    AlreadyJoined,
    CommissionTooHigh,
    GroupClosed,
    GroupExpired,
    GroupFormed,
    GroupFull,
    GroupPriceMismatch,
    InvalidArbiter,
    InvalidGroupTerms,
    InvalidMember,
    InvalidPickupHash,
    InvalidSharer,
    NotGroupMerchant,
    UnknownGroup,
)
from contracts.escrow import check_leader, check_pickup_hash_unused, open_funded_order
from contracts.orders import MAX_BPS, OrderItem
from ledger.accounts import get_parameter, get_supply, put_account, put_supply, require_account
from ledger.encoding import decode, encode
from ledger.errors import DecodeError, InsufficientBalance, StoreError
from ledger.execution import BlockContext, Events, TxKind, require_role
from ledger.keys import ADDRESS_SIZE, format_address
from ledger.plugins import Contract
from ledger.schema import MAX_AMOUNT, Optional, field, integer
from ledger.state import State, StateReader, StateScanner
from ledger.transactions import ADDRESS_KIND, AMOUNT_KIND, HASH_KIND, SignedTransaction, TxBody

MAX_GROUP_MEMBERS: Final = 1_000
"""Cap on max_members: bounds the records one group writes and the work of forming or
refunding it in one transaction or block."""
MAX_JOIN_HORIZON_S: Final = 30 * 86_400
"""A join deadline is at most this long after the group.open block (30 days)."""
MAX_BLOCK_TIME_S: Final = 2**40
"""Upper bound on a deadline in a body (far beyond any block time; keeps the wire small)."""

OPEN: Final = "OPEN"
FORMED: Final = "FORMED"
FAILED: Final = "FAILED"
CANCELLED: Final = "CANCELLED"
GROUP_STATES: Final = (OPEN, FORMED, FAILED, CANCELLED)

GROUP_PREFIX: Final = b"group:"
MEMBER_PREFIX: Final = b"gmember:"
JOINED_PREFIX: Final = b"gjoined:"
MERCHANT_PREFIX: Final = b"gmerchant:"
DUE_HEAP: Final = b"gdue"
ORDER_ID_DOMAIN: Final = b"sec/group-order"


# --- transaction bodies -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GroupOpen(TxBody):
    """A merchant (the sender) opens a group offer; the group id is this tx's hash."""

    TYPE: ClassVar[str] = "group.open"

    item_hash: bytes = field(HASH_KIND, "hash of the item description (off-chain)")
    unit_price: int = field(AMOUNT_KIND, "group price per member, fen")
    min_members: int = field(integer(2, MAX_GROUP_MEMBERS), "members needed to form")
    max_members: int = field(integer(2, MAX_GROUP_MEMBERS), "members accepted at most")
    deadline_s: int = field(integer(0, MAX_BLOCK_TIME_S), "join deadline, block time (s)")
    opener_discount: int = field(integer(0, MAX_AMOUNT), "fen off the first member's price")
    shipping: int = field(integer(0, MAX_AMOUNT), "shipping fee per member order, fen")
    arbiter: bytes = field(ADDRESS_KIND, "arbiter of the member orders")
    leader: bytes | None = field(
        Optional(ADDRESS_KIND), "community leader whose pickup point receives the member orders"
    )
    leader_commission_bps: int | None = field(
        Optional(integer(0, MAX_BPS)), "the leader's commission on each member's goods, bps"
    )
    commission_bps: int | None = field(
        Optional(integer(0, MAX_BPS)),
        "the most a member's sharer earns on its goods, bps (absent: sharers earn nothing)",
    )


@dataclass(frozen=True, slots=True)
class GroupJoin(TxBody):
    """A buyer (the sender) joins a group, paying exactly its price into the pool."""

    TYPE: ClassVar[str] = "group.join"

    group_id: bytes = field(HASH_KIND, "group id")
    amount: int = field(AMOUNT_KIND, "must equal the member's price plus shipping")
    sharer: bytes | None = field(Optional(ADDRESS_KIND), "sharer whose link the buyer used")
    commission_bps: int | None = field(
        Optional(integer(0, MAX_BPS)), "sharer's commission on this member's goods, bps"
    )
    pickup_hash: bytes | None = field(
        Optional(HASH_KIND), "SHA-256 of the member's one-time pickup code (a leader group only)"
    )


@dataclass(frozen=True, slots=True)
class GroupCancel(TxBody):
    """The group's merchant cancels an OPEN group: every member is refunded in full."""

    TYPE: ClassVar[str] = "group.cancel"

    group_id: bytes = field(HASH_KIND, "group id")


# --- records ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Group:
    """One group offer (mutable while a handler works on it; stored as a record)."""

    merchant: bytes
    """Address of the merchant who opened it."""
    arbiter: bytes
    """Arbiter of every member order."""
    item_hash: bytes
    """Hash of the item description."""
    unit_price: int
    """Group price per member, fen."""
    opener_discount: int
    """Fen off the first member's price (0: none)."""
    shipping: int
    """Shipping fee per member order, fen."""
    min_members: int
    """Members needed to form."""
    max_members: int
    """Members accepted at most."""
    deadline_s: int
    """Join deadline: joins only strictly before it; an OPEN group fails at it."""
    created_s: int
    """Block time of group.open."""
    state: str
    """One of GROUP_STATES."""
    members: int
    """Members joined so far (their records are indexes 0 .. members-1)."""
    pool: int
    """Fen held for members without an order (all while OPEN, 0 once FORMED or closed)."""
    formed_s: int | None
    """Block time the group formed, if it did."""
    closed_s: int | None
    """Time it FAILED (its deadline) or was CANCELLED (the block time), if it did."""
    leader: bytes | None
    """Community leader whose pickup point receives every member order, if any."""
    leader_commission_bps: int
    """The leader's rate on each member's goods (0 without a leader)."""
    commission_bps: int
    """The merchant's offer to sharers: a member's sharer earns at most this rate (0: none)."""

    def goods_of(self, index: int) -> int:
        """The goods price of member `index`: the opener (index 0) gets the discount."""
        return self.unit_price - self.opener_discount if index == 0 else self.unit_price

    def total_of(self, index: int) -> int:
        """What member `index` pays: its goods price plus shipping."""
        return self.goods_of(index) + self.shipping


@dataclass(slots=True)
class Member:
    """One member of a group."""

    buyer: bytes
    """Address of the member."""
    paid: int
    """Fen paid at join (goods + shipping)."""
    sharer: bytes | None
    """Sharer whose link brought this member, if any."""
    commission_bps: int
    """The sharer's rate (0 without a sharer)."""
    joined_s: int
    """Block time of the join."""
    order_id: bytes | None
    """Id of the member's order once the group formed."""
    refunded: int
    """Fen refunded from the pool (the whole payment if the group failed or was cancelled)."""
    pickup_hash: bytes | None
    """SHA-256 of the member's pickup code (a leader group only): its order's `pickup_hash`."""


GROUP_FIELDS: Final = tuple(f.name for f in dataclasses.fields(Group))
MEMBER_FIELDS: Final = tuple(f.name for f in dataclasses.fields(Member))


def group_key(group_id: bytes) -> bytes:
    return GROUP_PREFIX + group_id


def member_key(group_id: bytes, index: int) -> bytes:
    return MEMBER_PREFIX + group_id + index.to_bytes(4, "big")


def joined_key(group_id: bytes, address: bytes) -> bytes:
    return JOINED_PREFIX + group_id + address


def merchant_key(merchant: bytes, group_id: bytes) -> bytes:
    return MERCHANT_PREFIX + merchant + group_id


def member_order_id(group_id: bytes, index: int) -> bytes:
    """The order id of member `index` of group `group_id`."""
    return hashlib.sha256(ORDER_ID_DOMAIN + group_id + index.to_bytes(4, "big")).digest()


def _put_group(state: State, group_id: bytes, group: Group) -> None:
    state.set(group_key(group_id), encode([getattr(group, n) for n in GROUP_FIELDS]))


def _put_member(state: State, group_id: bytes, index: int, member: Member) -> None:
    state.set(member_key(group_id, index), encode([getattr(member, n) for n in MEMBER_FIELDS]))


def _require_group(state: State, group_id: bytes) -> Group:
    group = get_group(state, group_id)
    if group is None:
        raise UnknownGroup(f"no group {group_id.hex()}")
    return group


def _require_member(state: State, group_id: bytes, index: int) -> Member:
    member = get_member(state, group_id, index)
    if member is None:
        raise StoreError(f"group {group_id.hex()} has no member record {index}")
    return member


def _event(kind: str, group_id: bytes, **fields: Any) -> dict[str, Any]:
    return {"event": kind, "group_id": group_id, **fields}


# --- handlers ---------------------------------------------------------------------------------


def apply_open(
    state: State, tx: SignedTransaction, body: GroupOpen, context: BlockContext
) -> Events:
    """`group.open`: check the terms and the arbiter; write the group, its index and deadline."""
    merchant = tx.sender_address
    require_role(require_account(state, merchant, "sender"), "merchant")
    if body.min_members > body.max_members:
        raise InvalidGroupTerms(
            f"min_members {body.min_members} exceeds max_members {body.max_members}"
        )
    horizon = context.time_s + MAX_JOIN_HORIZON_S
    if not context.time_s < body.deadline_s <= horizon:
        raise InvalidGroupTerms(
            f"deadline {body.deadline_s} must be after block time {context.time_s} and at most "
            f"{horizon} ({MAX_JOIN_HORIZON_S} s later)"
        )
    if body.opener_discount >= body.unit_price:
        raise InvalidGroupTerms(
            f"opener discount {body.opener_discount} leaves nothing of unit price {body.unit_price}"
        )
    if body.unit_price + body.shipping > MAX_AMOUNT:
        raise InvalidGroupTerms(f"member total {body.unit_price + body.shipping} exceeds 2**63-1")
    arbiter = require_account(state, body.arbiter, "arbiter")
    if not arbiter.has_role("arbiter"):
        raise InvalidArbiter(f"{format_address(body.arbiter)} lacks the 'arbiter' role")
    if body.arbiter == merchant:
        raise InvalidArbiter(f"arbiter {format_address(body.arbiter)} is the group's merchant")
    check_leader(
        state,
        body.leader,
        body.leader_commission_bps,
        {"merchant": merchant, "arbiter": body.arbiter},
        "group",
    )
    cap = get_parameter(state, "max_commission_bps")
    if body.commission_bps is not None and body.commission_bps > cap:
        raise CommissionTooHigh(
            f"sharer commission {body.commission_bps} bps exceeds max_commission_bps {cap}"
        )
    group_id = context.tx_hash
    group = Group(
        merchant=merchant,
        arbiter=body.arbiter,
        item_hash=body.item_hash,
        unit_price=body.unit_price,
        opener_discount=body.opener_discount,
        shipping=body.shipping,
        min_members=body.min_members,
        max_members=body.max_members,
        deadline_s=body.deadline_s,
        created_s=context.time_s,
        state=OPEN,
        members=0,
        pool=0,
        formed_s=None,
        closed_s=None,
        leader=body.leader,
        leader_commission_bps=body.leader_commission_bps or 0,
        commission_bps=body.commission_bps or 0,
    )
    _put_group(state, group_id, group)
    state.set(merchant_key(merchant, group_id), b"")
    due_heap.push(state, DUE_HEAP, body.deadline_s, group_id)
    return [_event("group.opened", group_id, merchant=merchant, deadline_s=body.deadline_s)]


def _check_join(state: State, group_id: bytes, group: Group, buyer: bytes, time_s: int) -> None:
    """The group accepts a join from `buyer` now (raises naming the rule otherwise)."""
    if group.state in (FAILED, CANCELLED):
        raise GroupClosed(f"group {group_id.hex()} is {group.state}; it accepts nothing more")
    if time_s >= group.deadline_s:
        raise GroupExpired(
            f"group {group_id.hex()} join deadline {group.deadline_s} has passed "
            f"(block time {time_s})"
        )
    if group.members >= group.max_members:
        raise GroupFull(f"group {group_id.hex()} is full ({group.max_members} members)")
    roles = {group.merchant: "merchant", group.arbiter: "arbiter"}
    if group.leader is not None:
        roles[group.leader] = "leader"
    if buyer in roles:
        raise InvalidMember(f"{format_address(buyer)} is the group's {roles[buyer]}")
    if state.get(joined_key(group_id, buyer)) is not None:
        raise AlreadyJoined(f"{format_address(buyer)} already joined group {group_id.hex()}")


def _check_sharer(state: State, group: Group, buyer: bytes, body: GroupJoin) -> None:
    """The member's sharer and rate follow the order rules (one referral level)."""
    if (body.sharer is None) != (body.commission_bps is None):
        raise InvalidSharer("sharer and commission_bps must be given together or not at all")
    if body.sharer is None or body.commission_bps is None:
        return
    require_account(state, body.sharer, "sharer")
    for address, role in (
        (buyer, "buyer"),
        (group.merchant, "merchant"),
        (group.arbiter, "arbiter"),
        (group.leader, "leader"),
    ):
        if body.sharer == address:
            raise InvalidSharer(f"sharer {format_address(body.sharer)} is the group's {role}")
    cap = get_parameter(state, "max_commission_bps")
    if body.commission_bps > cap:
        raise CommissionTooHigh(
            f"commission {body.commission_bps} bps exceeds max_commission_bps {cap}"
        )
    # The merchant pays the commission, so the merchant sets the rate: a buyer naming its own
    # second account as sharer would otherwise take a rebate of up to the cap from the merchant.
    if body.commission_bps > group.commission_bps:
        raise CommissionTooHigh(
            f"commission {body.commission_bps} bps exceeds the {group.commission_bps} bps the "
            "group's merchant offers sharers"
        )


def apply_join(
    state: State, tx: SignedTransaction, body: GroupJoin, context: BlockContext
) -> Events:
    """`group.join`: pay into the pool; form the group at min_members; after forming, the new
    member's order opens at once."""
    buyer = tx.sender_address
    group = _require_group(state, body.group_id)
    _check_join(state, body.group_id, group, buyer, context.time_s)
    _check_sharer(state, group, buyer, body)
    if group.leader is not None and body.pickup_hash is None:
        raise InvalidPickupHash(
            f"group {body.group_id.hex()} delivers to leader {format_address(group.leader)}'s "
            "pickup point: join with a pickup_hash"
        )
    if group.leader is None and body.pickup_hash is not None:
        raise InvalidPickupHash(
            f"group {body.group_id.hex()} has no leader, so no pickup code: omit pickup_hash"
        )
    check_pickup_hash_unused(state, body.pickup_hash)
    index = group.members
    price = group.total_of(index)
    if body.amount != price:
        raise GroupPriceMismatch(
            f"payment {body.amount} is not member {index}'s price {price} "
            f"(goods {group.goods_of(index)} + shipping {group.shipping})"
        )
    account = require_account(state, buyer, "buyer")
    if account.balance < price:
        raise InsufficientBalance(
            f"group price {price} exceeds balance {account.balance} of {format_address(buyer)}"
        )
    account.balance -= price
    put_account(state, account)
    supply = get_supply(state)
    supply.escrow += price
    put_supply(state, supply)
    member = Member(
        buyer=buyer,
        paid=price,
        sharer=body.sharer,
        commission_bps=body.commission_bps or 0,
        joined_s=context.time_s,
        order_id=None,
        refunded=0,
        pickup_hash=body.pickup_hash,
    )
    _put_member(state, body.group_id, index, member)
    state.set(joined_key(body.group_id, buyer), encode(index))
    group.members += 1
    group.pool += price
    events: Events = [_event("group.joined", body.group_id, buyer=buyer, index=index, paid=price)]
    if group.state == FORMED:
        _open_member_order(state, body.group_id, group, index, context, events)
    elif group.members == group.min_members:
        group.state = FORMED
        group.formed_s = context.time_s
        events.append(_event("group.formed", body.group_id, members=group.members))
        for formed in range(group.members):
            _open_member_order(state, body.group_id, group, formed, context, events)
    _put_group(state, body.group_id, group)
    return events


def _open_member_order(
    state: State,
    group_id: bytes,
    group: Group,
    index: int,
    context: BlockContext,
    events: Events,
) -> None:
    """Move member `index`'s payment from the pool into its own FUNDED order."""
    member = _require_member(state, group_id, index)
    order_id = member_order_id(group_id, index)
    open_funded_order(
        state,
        order_id,
        merchant=group.merchant,
        buyer=member.buyer,
        arbiter=group.arbiter,
        items=(OrderItem(group.item_hash.hex(), 1, group.goods_of(index)),),
        shipping=group.shipping,
        sharer=member.sharer,
        commission_bps=member.commission_bps,
        leader=group.leader,
        leader_commission_bps=group.leader_commission_bps,
        pickup_hash=member.pickup_hash,
        item_refs=(group.item_hash,),
        context=context,
        events=events,
    )
    group.pool -= member.paid
    member.order_id = order_id
    _put_member(state, group_id, index, member)
    events.append(_event("group.order", group_id, index=index, order_id=order_id))


def apply_cancel(
    state: State, tx: SignedTransaction, body: GroupCancel, context: BlockContext
) -> Events:
    """`group.cancel`: the merchant ends an OPEN group; every member is refunded in full."""
    group = _require_group(state, body.group_id)
    if tx.sender_address != group.merchant:
        raise NotGroupMerchant(
            f"{format_address(tx.sender_address)} is not the merchant of group "
            f"{body.group_id.hex()}"
        )
    if group.state == FORMED:
        raise GroupFormed(
            f"group {body.group_id.hex()} formed at {group.formed_s}; its members hold orders"
        )
    if group.state != OPEN:
        raise GroupClosed(f"group {body.group_id.hex()} is {group.state}; it accepts nothing more")
    events: Events = []
    _refund_all(state, body.group_id, group, CANCELLED, context.time_s, events)
    return events


def _refund_all(
    state: State, group_id: bytes, group: Group, outcome: str, at_s: int, events: Events
) -> None:
    """Return every member's payment from the pool and close the group as `outcome`.

    Cannot fail: members are registered accounts (accounts are never removed) and the pool is
    exactly the sum of their payments, counted in Supply.escrow.
    """
    supply = get_supply(state)
    supply.escrow -= group.pool
    put_supply(state, supply)
    for index in range(group.members):
        member = _require_member(state, group_id, index)
        account = require_account(state, member.buyer, "member")
        account.balance += member.paid
        put_account(state, account)
        member.refunded = member.paid
        _put_member(state, group_id, index, member)
        events.append(_event("group.refund", group_id, to=member.buyer, amount=member.paid))
    group.pool = 0
    group.state = outcome
    group.closed_s = at_s
    _put_group(state, group_id, group)
    events.append(_event("group.closed", group_id, state=outcome, at_s=at_s))


def run_group_deadlines(state: State, context: BlockContext) -> None:
    """Block hook: every OPEN group whose join deadline is <= block time FAILS, refunded in full.

    Cost: two reads when no deadline is due; groups that formed or were cancelled before their
    deadline are skipped when their heap entry comes due.
    """
    for due_s, group_id in due_heap.pop_due(state, DUE_HEAP, context.time_s):
        group = get_group(state, group_id)
        if group is None or group.state != OPEN or group.deadline_s != due_s:
            continue
        _refund_all(state, group_id, group, FAILED, due_s, [])


# --- read-only queries ---
# Like contracts.orders: the narrowest state protocol; a malformed record is a corrupt store.


@dataclass(frozen=True, slots=True)
class GroupsPage:
    """One page of `groups_of`."""

    groups: tuple[tuple[bytes, Group], ...]
    """(group id, group) of the matching groups, in increasing id."""
    next_after: bytes | None
    """Pass as `after` for the next page: the last id examined; None when complete."""


def _decode_record(raw: bytes, kind: type[Any], what: str) -> Any:
    try:
        return kind(*decode(raw))
    except (DecodeError, TypeError) as exc:
        raise StoreError(f"{what}: {exc}") from None


def decode_group(raw: bytes) -> Group:
    """A group from its stored record bytes (StoreError if malformed): for proof checkers."""
    group: Group = _decode_record(raw, Group, "group record")
    return group


def decode_member(raw: bytes) -> Member:
    """A member from its stored record bytes (StoreError if malformed): for proof checkers."""
    member: Member = _decode_record(raw, Member, "member record")
    return member


def get_group(state: StateReader, group_id: bytes) -> Group | None:
    """The group `group_id`, or None if there is none."""
    raw = state.get(group_key(group_id))
    if raw is None:
        return None
    group: Group = _decode_record(raw, Group, f"group record {group_id.hex()}")
    return group


def get_member(state: StateReader, group_id: bytes, index: int) -> Member | None:
    """Member `index` of group `group_id`, or None."""
    raw = state.get(member_key(group_id, index))
    if raw is None:
        return None
    member: Member = _decode_record(raw, Member, f"member {index} of group {group_id.hex()}")
    return member


def group_members(
    state: StateReader, group_id: bytes, *, start: int = 0, limit: int
) -> tuple[Member, ...]:
    """Members `start` .. `start + limit - 1` of the group (fewer at the end), by index."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    group = get_group(state, group_id)
    if group is None:
        return ()
    found: list[Member] = []
    for index in range(start, min(group.members, start + limit)):
        member = get_member(state, group_id, index)
        if member is None:
            raise StoreError(f"group {group_id.hex()} has no member record {index}")
        found.append(member)
    return tuple(found)


def groups_of(
    state: StateScanner,
    merchant: bytes,
    *,
    in_state: str | None = None,
    after: bytes | None = None,
    limit: int,
    max_examined: int | None = None,
) -> GroupsPage:
    """The merchant's groups in increasing id from the first above `after`, at most `limit`,
    only those `in_state` (None: any); with `max_examined`, at most that many index entries
    are looked at (a filtered page may be short and still have a `next_after`)."""
    if len(merchant) != ADDRESS_SIZE:
        raise ValueError(f"merchant {merchant.hex()} is {len(merchant)} bytes, not an address")
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    prefix = MERCHANT_PREFIX + merchant
    found: list[tuple[bytes, Group]] = []
    last = b""
    for examined, (key, _) in enumerate(state.scan(prefix, start_after=after)):
        if len(found) == limit or examined == max_examined:
            return GroupsPage(tuple(found), last)
        group_id = key[len(prefix) :]
        last = group_id
        group = get_group(state, group_id)
        if group is None:
            raise StoreError(f"merchant index names group {group_id.hex()}, which is absent")
        if in_state is None or group.state == in_state:
            found.append((group_id, group))
    return GroupsPage(tuple(found), None)


CONTRACT: Final = Contract(
    name="groups",
    kinds=(
        TxKind(GroupOpen, apply_open),
        TxKind(GroupJoin, apply_join),
        TxKind(GroupCancel, apply_cancel),
    ),
    block_hooks=(run_group_deadlines,),
    errors=(
        InvalidGroupTerms,
        UnknownGroup,
        GroupClosed,
        GroupFull,
        GroupExpired,
        GroupFormed,
        NotGroupMerchant,
        AlreadyJoined,
        InvalidMember,
        GroupPriceMismatch,
    ),
    queries=(get_group, get_member, group_members, groups_of),
)
"""The group-buy plug-in: the `group.*` kinds and the join-deadline hook."""
