"""Parameter and result models of the group-buy RPC methods, sec_getGroup and sec_listGroups
(docs/rpc.md), with constructors from the records of `contracts.groups`. The server builds its
answers with them; `sec query group|groups` parses the answers with them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Literal, TypeVar

from pydantic import Field, model_validator

from contracts.groups import (
    GROUP_STATES,
    MAX_GROUP_MEMBERS,
    Group,
    Member,
    decode_group,
    decode_member,
    group_key,
    member_key,
)
from ledger import state_tree
from ledger.errors import InvalidProof, StoreError
from ledger.state_tree import verify_state_proof
from secnode.schema.models import AddressText, Hash
from secnode.schema.objects import StateProof
from secnode.schema.values import AddressBytes, Hash32, HexBytes, StrictModel

_T = TypeVar("_T")

MAX_GROUP_PAGE: Final = 100
"""sec_listGroups returns at most this many groups per call."""
MAX_MEMBER_PAGE: Final = 100
"""sec_getGroup returns at most this many members per call."""

GroupState = Literal[GROUP_STATES]  # type: ignore[valid-type]  # a Literal of the state names


# --- params ------------------------------------------------------------------------------------


class GetGroupParams(StrictModel):
    group_id: Hash = Field(description="group id: the hash of its group.open transaction")
    prove: bool = Field(
        False,
        description="include state proofs of the group record (membership, or non-membership "
        "if absent) and of each member record returned",
    )
    members_from: int = Field(
        0, ge=0, le=MAX_GROUP_MEMBERS, description="index of the first member to return"
    )
    members_limit: int = Field(
        20, ge=1, le=MAX_MEMBER_PAGE, description="at most this many members"
    )


class ListGroupsParams(StrictModel):
    merchant: AddressText = Field(description="merchant whose groups to list")
    state: GroupState | None = Field(None, description="only groups in this state")
    cursor: Hash | None = Field(
        None, description="next_cursor of the previous page; groups with larger ids follow"
    )
    limit: int = Field(20, ge=1, le=MAX_GROUP_PAGE, description="at most this many groups")


# --- results -----------------------------------------------------------------------------------


class GroupJson(StrictModel):
    """A group record (docs/protocol.md, "Group buy")."""

    group_id: Hash32
    state: str = Field(description="OPEN, FORMED, FAILED or CANCELLED")
    merchant: AddressBytes
    arbiter: AddressBytes = Field(description="arbiter of every member order")
    item_hash: Hash32
    unit_price: int = Field(description="group price per member, fen")
    opener_discount: int = Field(description="fen off the first member's price")
    shipping: int = Field(description="per member order, fen")
    opener_total: int = Field(description="what the first member pays (price - discount + ship)")
    member_total: int = Field(description="what every later member pays (price + shipping)")
    min_members: int
    max_members: int
    deadline_s: int = Field(description="join deadline (block time, s): joins strictly before")
    created_s: int
    members: int = Field(description="members joined so far")
    pool: int = Field(description="fen held for members without an order")
    formed_s: int | None = Field(description="block time the group formed, if it did")
    closed_s: int | None = Field(description="time it FAILED or was CANCELLED, if it did")
    leader: AddressBytes | None = Field(description="leader whose pickup point receives the orders")
    leader_commission_bps: int = Field(description="the leader's rate (0 without a leader)")
    commission_bps: int = Field(description="the most a member's sharer earns, bps (0: none)")

    @classmethod
    def of(cls, group_id: bytes, group: Group) -> GroupJson:
        return cls(
            group_id=group_id,
            state=group.state,
            merchant=group.merchant,
            arbiter=group.arbiter,
            item_hash=group.item_hash,
            unit_price=group.unit_price,
            opener_discount=group.opener_discount,
            shipping=group.shipping,
            opener_total=group.total_of(0),
            member_total=group.total_of(1),
            min_members=group.min_members,
            max_members=group.max_members,
            deadline_s=group.deadline_s,
            created_s=group.created_s,
            members=group.members,
            pool=group.pool,
            formed_s=group.formed_s,
            closed_s=group.closed_s,
            leader=group.leader,
            leader_commission_bps=group.leader_commission_bps,
            commission_bps=group.commission_bps,
        )


class GroupMemberJson(StrictModel):
    """One member record, with its proof when asked for."""

    index: int = Field(description="join order; 0 is the opener")
    buyer: AddressBytes
    paid: int = Field(description="fen paid at join")
    sharer: AddressBytes | None
    commission_bps: int
    joined_s: int
    order_id: Hash32 | None = Field(description="the member's order once the group formed")
    refunded: int = Field(description="fen refunded (the whole payment if FAILED/CANCELLED)")
    pickup_hash: Hash32 | None = Field(description="SHA-256 of the pickup code (leader groups)")
    proof: StateProof | None = Field(None, description="with prove=true")
    value: HexBytes | None = Field(None, description="with prove=true: the raw record, hex")

    @classmethod
    def of(
        cls,
        index: int,
        member: Member,
        proof: StateProof | None = None,
        value: bytes | None = None,
    ) -> GroupMemberJson:
        return cls(
            index=index,
            buyer=member.buyer,
            paid=member.paid,
            sharer=member.sharer,
            commission_bps=member.commission_bps,
            joined_s=member.joined_s,
            order_id=member.order_id,
            refunded=member.refunded,
            pickup_hash=member.pickup_hash,
            proof=proof,
            value=value,
        )


class GroupResult(StrictModel):
    group_id: Hash32
    exists: bool
    group: GroupJson | None = Field(description="null when the group does not exist")
    members: list[GroupMemberJson] = Field(description="from members_from, by index")
    next_member: int | None = Field(
        description="pass as members_from for the next page; null when no more members"
    )
    height: int = Field(description="committed height the answer is read at")
    state_root: Hash32 = Field(description="committed state root at that height")
    proof: StateProof | None = Field(None, description="with prove=true")
    value: HexBytes | None = Field(None, description="with prove=true: the raw record, hex")

    @model_validator(mode="after")
    def _exists_with_group(self) -> GroupResult:
        """Invariant: the group is present exactly when it exists; no members without it."""
        if self.exists != (self.group is not None):
            expected = "present" if self.exists else "null"
            raise ValueError(f"exists is {self.exists}, so group must be {expected}")
        if self.group is None and self.members:
            raise ValueError("a group that does not exist has no members")
        return self

    def check_proofs(self, members_from: int) -> None:
        """Raise InvalidProof unless, under `state_root`, the proofs show the group record (or
        its absence) and every member record listed, the shown fields are exactly those
        records, the members are indexes `members_from`, `members_from` + 1, ... and
        `next_member` is where the member list goes on (null only at its end)."""
        root, group_id = self.state_root, self.group_id
        verify_state_proof(root, group_key(group_id), self.value, _proof_of(self.proof, "group"))
        if (self.group is None) != (self.value is None):
            shown = "absent" if self.group is None else "present"
            raise InvalidProof(
                f"group {group_id.hex()} is shown {shown} but the proof says otherwise"
            )
        if self.group is None:
            return
        group = _decoded(decode_group, self.value, "group record")
        if GroupJson.of(group_id, group) != self.group:
            raise InvalidProof(f"group {group_id.hex()} is not the proven group record")
        end = members_from + len(self.members)
        expected_next = end if end < group.members else None
        if (not self.members and members_from < group.members) or self.next_member != (
            expected_next
        ):
            raise InvalidProof(
                f"{len(self.members)} members from {members_from} of {group.members} with "
                f"next_member {self.next_member} is not a page of the group"
            )
        for index, listed in enumerate(self.members, members_from):
            if listed.index != index:
                raise InvalidProof(f"member at index {listed.index}, expected index {index}")
            key = member_key(group_id, index)
            verify_state_proof(root, key, listed.value, _proof_of(listed.proof, f"member {index}"))
            member = _decoded(decode_member, listed.value, f"member {index}")
            if GroupMemberJson.of(index, member, listed.proof, listed.value) != listed:
                raise InvalidProof(f"member {index} is not the proven member record")


class ListGroupsResult(StrictModel):
    merchant: AddressBytes
    groups: list[GroupJson] = Field(description="in increasing group id")
    next_cursor: Hash32 | None = Field(
        description="pass as cursor for the next page; null when the listing is complete"
    )
    height: int = Field(description="committed height the answer is read at")


def _proof_of(proof: StateProof | None, what: str) -> state_tree.StateProof:
    if proof is None:
        raise InvalidProof(f"the answer carries no proof of the {what} record")
    return proof.to_proof()


def _decoded(decoder: Callable[[bytes], _T], raw: bytes | None, what: str) -> _T:
    if raw is None:
        raise InvalidProof(f"the answer carries no {what}")
    try:
        return decoder(raw)
    except StoreError as exc:
        raise InvalidProof(f"proven {what} is malformed: {exc}") from None
