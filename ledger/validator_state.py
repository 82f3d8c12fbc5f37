"""The validator set as state: current set, and scheduled changes with their effective height.

Record under b"validators": {"current": [public keys], "pending": [[height, [public keys]]]}.
An admin `validator.update` committed at height h takes effect at height
h + `validator_change_delay` (a chain parameter, default 8), or at the latest pending change's
height if that is later: blocks from that height on must be certified by the new set.
`activate_due_validators` is a block hook that performs the switch.
"""

from __future__ import annotations

from typing import Any, Final

from ledger.accounts import get_parameter
from ledger.encoding import decode, encode
from ledger.errors import InvalidValidatorUpdate
from ledger.keys import address_of, format_address
from ledger.state import State
from ledger.validators import ValidatorSet

VALIDATORS_KEY: Final = b"validators"


def _load(state: State) -> dict[str, Any]:
    raw = state.get(VALIDATORS_KEY)
    if raw is None:
        raise InvalidValidatorUpdate("state has no validator set")
    record: dict[str, Any] = decode(raw)
    return record


def current_validators(state: State) -> ValidatorSet:
    return ValidatorSet.from_public_keys(_load(state)["current"])


def pending_validator_changes(state: State) -> list[tuple[int, ValidatorSet]]:
    return [(h, ValidatorSet.from_public_keys(keys)) for h, keys in _load(state)["pending"]]


def init_validators(state: State, validators: ValidatorSet) -> None:
    state.set(VALIDATORS_KEY, encode({"current": validators.to_wire(), "pending": []}))


def validators_at(state: State, height: int) -> ValidatorSet:
    """The set that certifies `height` as far as the state knows (current + due changes)."""
    record = _load(state)
    keys = record["current"]
    for effective, pending in record["pending"]:
        if effective <= height:
            keys = pending
    return ValidatorSet.from_public_keys(keys)


def schedule_validator_update(
    state: State, add: tuple[bytes, ...], remove: tuple[bytes, ...], height: int
) -> int:
    """Schedule a change on top of the latest known set; return its effective height."""
    record = _load(state)
    base = record["pending"][-1][1] if record["pending"] else record["current"]
    keys: dict[bytes, bytes] = {address_of(k): k for k in base}
    for public_key in add:
        address = address_of(public_key)
        if address in keys:
            raise InvalidValidatorUpdate(f"{format_address(address)} is already a validator")
        keys[address] = public_key
    for removed in remove:
        if removed not in keys:
            raise InvalidValidatorUpdate(f"{format_address(removed)} is not a validator")
        del keys[removed]
    if not keys:
        raise InvalidValidatorUpdate("the update would leave no validators")
    effective = height + get_parameter(state, "validator_change_delay")
    if record["pending"]:
        # Built on the latest pending set, so it must not take effect before it (the delay
        # parameter may have been lowered meanwhile): pending changes stay in height order.
        effective = max(effective, record["pending"][-1][0])
    new_set = ValidatorSet.from_public_keys(keys.values())
    pending = [entry for entry in record["pending"] if entry[0] != effective]
    pending.append([effective, new_set.to_wire()])
    state.set(VALIDATORS_KEY, encode({"current": record["current"], "pending": pending}))
    return effective


def activate_due_validators(state: State, height: int) -> bool:
    """Switch to every pending set effective at or before `height`; True if the set changed."""
    record = _load(state)
    due = [entry for entry in record["pending"] if entry[0] <= height]
    if not due:
        return False
    remaining = [entry for entry in record["pending"] if entry[0] > height]
    state.set(VALIDATORS_KEY, encode({"current": due[-1][1], "pending": remaining}))
    return True
