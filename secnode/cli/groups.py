"""`sec tx group open|join|cancel` and `sec query group|groups`.

The verbs build the `group.*` bodies (docs/protocol.md "Group buy") and submit them like every
`sec tx` verb (`secnode.cli.submit`). The group id is the hash of the `group.open` transaction
(the `hash` line `open` prints). `open --item TEXT` hashes the item description with SHA-256;
`--deadline-in S` sets the join deadline S seconds after the node's head block time. `join`
without `--amount` asks the node what the next member pays (the opener's discounted price for
the first member).

`sec query group ID [--prove]` shows a group and a page of its members, verifying the state
proof of the group record and of every member record with `--prove`; `sec query groups
--merchant ADDRESS` lists a merchant's groups (filter by state, pages, `--all`).
"""

from __future__ import annotations

import argparse
import hashlib
from typing import Any

from contracts.groups import (
    GROUP_STATES,
    MAX_GROUP_MEMBERS,
    MAX_JOIN_HORIZON_S,
    GroupCancel,
    GroupJoin,
    GroupOpen,
)
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
from secnode.cli.orders import draw_pickup_code, pickup_code
from secnode.cli.submit import submit
from secnode.schema import models as m
from secnode.schema.groups import GroupJson, GroupResult, ListGroupsResult


def _bounded(low: int, high: int) -> Any:
    def parse(text: str) -> int:
        if not text.isdigit() or not low <= int(text) <= high:
            raise argparse.ArgumentTypeError(f"must be an integer in [{low}, {high}], got {text!r}")
        return int(text)

    return parse


def _group_id(text: str, option: str) -> bytes:
    return bytes.fromhex(hash_hex(text, option))


# --- sec tx group ------------------------------------------------------------------------------


def _tx_open(args: argparse.Namespace) -> int:
    if args.item_hash is not None:
        item_hash = bytes.fromhex(hash_hex(args.item_hash, "--item-hash"))
    else:
        item_hash = hashlib.sha256(args.item.encode()).digest()
    deadline_s = args.deadline
    if deadline_s is None:
        status = connect(args).call_as("sec_status", None, m.StatusResult)
        deadline_s = status.head_time_ms // 1000 + args.deadline_in
    body = GroupOpen(
        item_hash,
        args.price,
        args.min,
        args.max,
        deadline_s,
        args.opener_discount,
        args.shipping,
        resolve_address(args.arbiter, "--arbiter"),
        None if args.leader is None else resolve_address(args.leader, "--leader"),
        args.leader_commission_bps,
        args.commission_bps,
    )
    return submit(args, body)


def _tx_join(args: argparse.Namespace) -> int:
    if (args.sharer is None) != (args.commission_bps is None):
        raise CommandError("--sharer and --commission-bps go together (both or neither)")
    group_id = _group_id(args.group, "--group")
    paid = args.amount
    code = args.pickup_code
    if paid is None or code is None:
        # prove=true answers exists=false for an unknown group instead of an error, so a join
        # with --amount still reaches the chain (which names the rule it breaks).
        answer = connect(args).call_as(
            "sec_getGroup",
            {"group_id": group_id.hex(), "members_limit": 1, "prove": True},
            GroupResult,
        )
        group = answer.group
        if group is None and paid is None:
            raise CommandError(f"--group: group {group_id.hex()} does not exist")
        if group is not None and paid is None:
            paid = group.opener_total if group.members == 0 else group.member_total
        if group is not None and group.leader is not None and code is None:
            code = draw_pickup_code()
    assert paid is not None  # given, or read from the group above
    body = GroupJoin(
        group_id,
        paid,
        None if args.sharer is None else resolve_address(args.sharer, "--sharer"),
        args.commission_bps,
        None if code is None else hashlib.sha256(code).digest(),
    )
    return submit(args, body)


def _tx_cancel(args: argparse.Namespace) -> int:
    return submit(args, GroupCancel(_group_id(args.group, "--group")))


# --- sec query group / groups ------------------------------------------------------------------


def _group_rows(group: GroupJson) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = [
        ("group", group.group_id.hex()),
        ("state", group.state),
        ("merchant", format_address(group.merchant)),
        ("arbiter", format_address(group.arbiter)),
        ("item hash", group.item_hash.hex()),
        ("price", f"{group.unit_price} fen (opener: -{group.opener_discount} fen)"),
        ("shipping", f"{group.shipping} fen per member"),
        ("pays", f"opener {group.opener_total} fen, others {group.member_total} fen"),
        ("members", f"{group.members} (min {group.min_members}, max {group.max_members})"),
        ("pool", f"{group.pool} fen"),
        ("deadline", group.deadline_s),
        ("sharer rate", f"at most {group.commission_bps} bps"),
    ]
    if group.formed_s is not None:
        rows.append(("formed", group.formed_s))
    if group.closed_s is not None:
        rows.append(("closed", group.closed_s))
    return rows


def _query_group(args: argparse.Namespace) -> int:
    group_id = _group_id(args.group_id, "GROUP_ID")
    params = {
        "group_id": group_id.hex(),
        "prove": args.prove,
        "members_from": args.members_from,
        "members_limit": args.members_limit,
    }
    answer = connect(args).call_as("sec_getGroup", params, GroupResult)
    if answer.group_id != group_id:
        raise CommandError(f"the node answered for group {answer.group_id.hex()}")
    if args.prove:
        requested_proof(args, "sec_getGroup", answer.proof)
        for member in answer.members:
            requested_proof(args, "sec_getGroup", member.proof)
        # The proofs are of the raw records: check that what is shown is those records.
        answer.check_proofs(args.members_from)
    output = answer.model_dump(mode="json")
    if args.json:
        print_json({**output, "verified": True} if args.prove else output)
        return 0
    if answer.group is None:
        rows: list[tuple[str, Any]] = [("group", group_id.hex()), ("exists", "no")]
    else:
        rows = _group_rows(answer.group)
    for member in answer.members:
        where = "refunded" if member.refunded else "in pool"
        if member.order_id is not None:
            where = f"order {member.order_id.hex()}"
        rows.append(
            (f"member {member.index}", f"{format_address(member.buyer)} {member.paid} fen {where}")
        )
    if answer.next_member is not None:
        rows.append(("more", f"--members-from {answer.next_member}"))
    rows += [("height", answer.height), ("state root", answer.state_root.hex())]
    if args.prove:
        kind = "membership" if answer.exists else "non-membership"
        rows.append(("proof", f"{kind} of the group and its members verified under the root"))
    print_fields(rows)
    return 0


def _query_groups(args: argparse.Namespace) -> int:
    merchant = format_address(resolve_address(args.merchant, "--merchant"))
    params: dict[str, Any] = {"merchant": merchant, "limit": args.limit}
    if args.state is not None:
        params["state"] = args.state
    client = connect(args)

    def fetch(cursor: bytes | None) -> ListGroupsResult:
        at = {} if cursor is None else {"cursor": cursor.hex()}
        return client.call_as("sec_listGroups", {**params, **at}, ListGroupsResult)

    first = None if args.cursor is None else bytes.fromhex(hash_hex(args.cursor, "--cursor"))
    pages = follow_pages(fetch, first, lambda page: page.next_cursor, follow=args.all)
    groups = [group for page in pages for group in page.groups]
    page = pages[-1]
    if args.json:
        print_json(page.model_copy(update={"groups": groups}).model_dump(mode="json"))
        return 0
    for group in groups:
        print(
            f"{group.group_id.hex()}  {group.state:<9}  {group.members}/{group.max_members} "
            f"(min {group.min_members})  {group.member_total} fen  deadline {group.deadline_s}"
        )
    if page.next_cursor is not None and not args.all:
        print(f"more: --cursor {page.next_cursor.hex()}")
    return 0


# --- parser ------------------------------------------------------------------------------------


def add_commands(
    verbs: argparse._SubParsersAction[argparse.ArgumentParser],
    what: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """Add `tx group open|join|cancel` and `query group|groups`."""
    group = verbs.add_parser("group", help="group buy (pintuan)")
    actions = group.add_subparsers(dest="group_action", metavar="ACTION", required=True)

    opened = actions.add_parser("open", help="merchant: open a group offer", parents=parents)
    item = opened.add_mutually_exclusive_group(required=True)
    item.add_argument("--item", metavar="TEXT", help="item description (only its hash is sent)")
    item.add_argument("--item-hash", metavar="HEX", help="its SHA-256, 64 hex")
    opened.add_argument("--price", required=True, type=amount, metavar="FEN", help="per member")
    members = _bounded(2, MAX_GROUP_MEMBERS)
    opened.add_argument("--min", required=True, type=members, metavar="N", help="to form")
    opened.add_argument("--max", required=True, type=members, metavar="N", help="at most")
    deadline = opened.add_mutually_exclusive_group(required=True)
    deadline.add_argument("--deadline", type=count, metavar="S", help="join deadline, block time")
    deadline.add_argument(
        "--deadline-in",
        type=_bounded(1, MAX_JOIN_HORIZON_S),
        metavar="S",
        help="join deadline S seconds after the head block",
    )
    opened.add_argument(
        "--opener-discount", type=count, default=0, metavar="FEN", help="first member's discount"
    )
    opened.add_argument("--shipping", type=count, default=0, metavar="FEN", help="per member")
    opened.add_argument("--arbiter", required=True, metavar="ADDRESS", help=ADDRESS_HELP)
    opened.add_argument(
        "--leader", metavar="ADDRESS", help="community leader whose pickup point gets the orders"
    )
    opened.add_argument("--leader-commission-bps", type=count, metavar="BPS", help="with --leader")
    opened.add_argument(
        "--commission-bps",
        type=_bounded(0, 10_000),
        metavar="BPS",
        help="the most a member's sharer earns (default: sharers earn nothing)",
    )
    opened.set_defaults(handler=_tx_open)

    join = actions.add_parser("join", help="buyer: pay the group price", parents=parents)
    join.add_argument("--group", required=True, metavar="ID", help="group id (hex)")
    join.add_argument("--amount", type=amount, metavar="FEN", help="default: what the node says")
    join.add_argument(
        "--pickup-code",
        type=pickup_code,
        metavar="HEX",
        help="your one-time pickup code for a leader group (default: a random one, printed)",
    )
    join.add_argument("--sharer", metavar="ADDRESS", help="whose link the buyer used")
    join.add_argument(
        "--commission-bps", type=_bounded(0, 10_000), metavar="BPS", help="with --sharer"
    )
    join.set_defaults(handler=_tx_join)

    cancel = actions.add_parser(
        "cancel", help="merchant: cancel an unformed group", parents=parents
    )
    cancel.add_argument("--group", required=True, metavar="ID", help="group id (hex)")
    cancel.set_defaults(handler=_tx_cancel)

    query_group = what.add_parser("group", help="a group buy (optionally proven)", parents=[common])
    query_group.add_argument("group_id", metavar="GROUP_ID")
    query_group.add_argument("--prove", action="store_true", help="fetch and verify proofs")
    query_group.add_argument(
        "--members-from", type=_bounded(0, MAX_GROUP_MEMBERS), default=0, metavar="N"
    )
    query_group.add_argument(
        "--members-limit", type=_bounded(1, 100), default=20, metavar="N", help="1-100"
    )
    query_group.set_defaults(handler=_query_group)
    listing = what.add_parser("groups", help="a merchant's group buys", parents=[common])
    listing.add_argument("--merchant", required=True, metavar="ADDRESS", help=ADDRESS_HELP)
    listing.add_argument("--state", choices=GROUP_STATES)
    listing.add_argument("--cursor", metavar="ID", help="continue after this group id")
    listing.add_argument(
        "--limit", type=_bounded(1, 100), default=20, metavar="N", help="1-100, default 20"
    )
    listing.add_argument("--all", action="store_true", help="follow every page")
    listing.set_defaults(handler=_query_groups)
