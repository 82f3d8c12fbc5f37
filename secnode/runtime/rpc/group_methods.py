"""RPC methods of the group-buy contract: sec_getGroup and sec_listGroups.

Like every method they read only the committed view, without an `await` in between, so one
answer is one committed height: records through the contract's queries (contracts.groups) over
`ledger.store.CommittedState`, proofs and the root through `state.prove` and
`state.committed_root`. sec_getGroup proves the group record and, with prove=true, each member
record it returns (members are separate records: a group of 1000 is paged, 100 at most per
call). sec_listGroups seeks the merchant index from the cursor, so a deep page costs what a
first page costs, and examines at most `MAX_GROUPS_EXAMINED` entries per call.
"""

from __future__ import annotations

from typing import Final

from contracts.groups import get_group, get_member, group_key, groups_of, member_key
from ledger.errors import StoreError
from ledger.keys import parse_address
from ledger.store import CommittedState
from secnode.runtime.rpc.errors import NOT_FOUND, not_found
from secnode.runtime.rpc.jsonrpc import Method
from secnode.runtime.rpc.view import NodeView
from secnode.schema.groups import (
    GetGroupParams,
    GroupJson,
    GroupMemberJson,
    GroupResult,
    ListGroupsParams,
    ListGroupsResult,
)
from secnode.schema.objects import StateProof

MAX_GROUPS_EXAMINED: Final = 1_000
"""sec_listGroups looks at most this many index entries per call (a filtered page may be short)."""


def _head_height(view: NodeView) -> int:
    height = view.store.head_height()
    if height is None:
        raise StoreError("the store has no head block")
    return height


async def get_group_with_members(view: NodeView, params: GetGroupParams) -> GroupResult:
    """sec_getGroup. Reads one committed height (no await below)."""
    group_id = bytes.fromhex(params.group_id)
    state = view.state
    committed = CommittedState(state, view.store)
    group = get_group(committed, group_id)
    root = state.committed_root()
    height = _head_height(view)
    if group is None and not params.prove:
        raise not_found("group", group_id.hex())
    members: list[GroupMemberJson] = []
    next_member: int | None = None
    if group is not None:
        end = min(group.members, params.members_from + params.members_limit)
        for index in range(params.members_from, end):
            member = get_member(committed, group_id, index)
            if member is None:
                raise StoreError(f"group {group_id.hex()} has no member record {index}")
            key = member_key(group_id, index)
            members.append(
                GroupMemberJson.of(
                    index,
                    member,
                    StateProof.of(state.prove(key)) if params.prove else None,
                    state.get_committed(key) if params.prove else None,
                )
            )
        next_member = end if end < group.members else None
    key = group_key(group_id)
    return GroupResult(
        group_id=group_id,
        exists=group is not None,
        group=None if group is None else GroupJson.of(group_id, group),
        members=members,
        next_member=next_member,
        height=height,
        state_root=root,
        proof=StateProof.of(state.prove(key)) if params.prove else None,
        value=state.get_committed(key) if params.prove else None,
    )


async def list_groups(view: NodeView, params: ListGroupsParams) -> ListGroupsResult:
    """sec_listGroups. Reads one committed height (no await below)."""
    merchant = parse_address(params.merchant)
    height = _head_height(view)
    page = groups_of(
        CommittedState(view.state, view.store),
        merchant,
        in_state=params.state,
        after=None if params.cursor is None else bytes.fromhex(params.cursor),
        limit=params.limit,
        max_examined=MAX_GROUPS_EXAMINED,
    )
    return ListGroupsResult(
        merchant=merchant,
        groups=[GroupJson.of(group_id, group) for group_id, group in page.groups],
        next_cursor=page.next_after,
        height=height,
    )


GET_SUMMARY: Final = "A group buy with a page of its members, optionally with state proofs."
GET_DESCRIPTION: Final = (
    "Read from committed state: the group record (terms, state, members joined, pool held, "
    "deadline) and members members_from .. members_from+members_limit-1 (each with its order id "
    "once the group formed). prove=true adds the state proof of the group record under "
    "state_root (non-membership with exists=false for an unknown id; verify with "
    "ledger.state_tree.verify_state_proof(state_root, b'group:' + group_id, value, proof)) and of "
    "each member record returned (key b'gmember:' + group_id + index as 4 bytes big-endian). "
    "Without prove an unknown group is not_found."
)
LIST_SUMMARY: Final = "A merchant's group buys, by state, paginated by group id."
LIST_DESCRIPTION: Final = (
    "Groups opened by `merchant`, in increasing group id, optionally only one state (OPEN, "
    "FORMED, FAILED, CANCELLED). Pass next_cursor back as cursor for the next page; null means "
    "the listing is complete. A page may hold fewer than limit groups (each call examines at "
    "most 1000 index entries)."
)


def group_method_table(view: NodeView) -> dict[str, Method]:
    """sec_getGroup and sec_listGroups by name (merged into the node's method table)."""

    async def get(params: GetGroupParams) -> GroupResult:
        return await get_group_with_members(view, params)

    async def listing(params: ListGroupsParams) -> ListGroupsResult:
        return await list_groups(view, params)

    return {
        "sec_getGroup": Method(
            "sec_getGroup",
            GET_SUMMARY,
            GET_DESCRIPTION,
            GetGroupParams,
            GroupResult,
            get,
            (NOT_FOUND.code,),
        ),
        "sec_listGroups": Method(
            "sec_listGroups",
            LIST_SUMMARY,
            LIST_DESCRIPTION,
            ListGroupsParams,
            ListGroupsResult,
            listing,
        ),
    }
