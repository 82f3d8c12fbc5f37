"""Invitation bindings: a pure record of who invited whom. A binding pays nothing.

Referral pay is one level (docs/protocol.md §16.9): commission goes only to the sharer whose
link made the sale, set in that order (`order.create`'s `sharer`). Nothing is paid for binding
or recruiting, and nothing to an inviter from an invitee's sales (that would be the upline pay
of pyramid selling); no order reads these records.

An account records, once and forever, who invited it (`referral.bind`). The bindings form a
forest (each account has at most one inviter) that can never contain a cycle. Rules, checked in
this order:

* the inviter is not the sender (`self_referral`);
* the inviter is registered (`unknown_account`);
* the sender has no binding yet (`already_bound`): bindings are write-once;
* the sender has no invitees yet (`referral_cycle`).

Why the last rule. A new edge sender -> inviter closes a cycle exactly when the inviter already
descends from the sender, which needs the sender to have an invitee. Checking "is the inviter a
descendant" means walking the inviter's chain to its root, a cost that grows with the chain
(walking only a few steps would miss longer cycles). Requiring every account to
name its inviter before it invites anyone rules out every cycle with one read, and it is how an
invitation is used in practice: you are invited when you join, and you invite others later.

State records: ``b"invite:" || address`` -> ``[inviter, bound_s]`` and
``b"invitees:" || address`` -> count of accounts bound to it (absent when 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Final

from contracts.errors import AlreadyBound, ReferralCycle, SelfReferral
from ledger.accounts import require_account
from ledger.encoding import decode, encode
from ledger.execution import BlockContext, Events, TxKind
from ledger.keys import format_address
from ledger.plugins import Contract
from ledger.schema import field
from ledger.state import State
from ledger.transactions import ADDRESS_KIND, SignedTransaction, TxBody

INVITE_PREFIX: Final = b"invite:"
INVITEES_PREFIX: Final = b"invitees:"


@dataclass(frozen=True, slots=True)
class ReferralBind(TxBody):
    """Sender records, once and forever, the account that invited it (a record; pays nothing)."""

    TYPE: ClassVar[str] = "referral.bind"

    inviter: bytes = field(ADDRESS_KIND, "the inviting account")


def get_inviter(state: State, address: bytes) -> bytes | None:
    """The account that invited `address`, if it bound one."""
    raw = state.get(INVITE_PREFIX + address)
    if raw is None:
        return None
    inviter: bytes = decode(raw)[0]
    return inviter


def invitee_count(state: State, address: bytes) -> int:
    raw = state.get(INVITEES_PREFIX + address)
    if raw is None:
        return 0
    count: int = decode(raw)
    return count


def apply_bind(
    state: State, tx: SignedTransaction, body: ReferralBind, context: BlockContext
) -> Events:
    """`referral.bind`: the sender records its inviter (rules in the module docstring)."""
    sender = tx.sender_address
    if body.inviter == sender:
        raise SelfReferral(f"{format_address(sender)} cannot be its own inviter")
    require_account(state, body.inviter, "inviter")
    existing = get_inviter(state, sender)
    if existing is not None:
        raise AlreadyBound(
            f"{format_address(sender)} is already bound to {format_address(existing)}; "
            "bindings are write-once"
        )
    invitees = invitee_count(state, sender)
    if invitees:
        raise ReferralCycle(
            f"{format_address(sender)} already has {invitees} invitee(s): an account binds its "
            "inviter before it invites anyone, which is what makes a cycle impossible"
        )
    state.set(INVITE_PREFIX + sender, encode([body.inviter, context.time_s]))
    state.set(INVITEES_PREFIX + body.inviter, encode(invitee_count(state, body.inviter) + 1))
    return [{"event": "referral.bound", "address": sender, "inviter": body.inviter}]


CONTRACT: Final = Contract(
    name="referral",
    kinds=(TxKind(ReferralBind, apply_bind),),
    errors=(SelfReferral, AlreadyBound, ReferralCycle),
    queries=(get_inviter, invitee_count),
)
"""The referral plug-in: `referral.bind` (collected by `contracts.CONTRACTS`)."""
