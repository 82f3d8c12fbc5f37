"""The validator set as state: current set, and scheduled changes with their effective height.

Record under b"validators": {"current": [public keys], "pending": [[height, [public keys]]],
"history": [[until, [public keys]]]} ("history" only once a change has taken effect, so a
genesis state is unchanged). An admin `validator.update` committed at height h takes effect at
height h + `validator_change_delay` (a chain parameter, at least MIN_VALIDATOR_CHANGE_DELAY), or
one height after the latest pending change if that is later: blocks from that height on must be
certified by the new set. `activate_due_validators` is a block hook that performs the switch and
moves the old set to "history" with the first height it no longer rules.

Invariants: pending effective heights strictly increase, and a later update never replaces a
pending one (it takes effect after it, built on top of it), so the ledger and the replicas, which
learn each pending change once, always hold the same schedule. "history" is ascending by `until`;
with "current" and "pending" it answers `validators_at` for every height from 1, after a restart
too (it is state, not memory). It grows by one entry per change that took effect (admin-only).
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


def validator_schedule(state: State) -> list[tuple[int, ValidatorSet]]:
    """Every (first height, set) the state knows, ascending, the first at height 1: the sets of
    "history", then "current" (from the last `until`), then every "pending" change. Restarted
    replicas take their schedule from here, so it covers past and scheduled heights alike."""
    return schedule_of_record(_load(state))


def schedule_of_record(record: dict[str, Any]) -> list[tuple[int, ValidatorSet]]:
    """`validator_schedule` of a decoded validators record."""
    entries: list[tuple[int, ValidatorSet]] = []
    start = 1
    for until, old in record.get("history", []):
        entries.append((start, ValidatorSet.from_public_keys(old)))
        start = until
    entries.append((start, ValidatorSet.from_public_keys(record["current"])))
    entries.extend((h, ValidatorSet.from_public_keys(keys)) for h, keys in record["pending"])
    return entries


def init_validators(state: State, validators: ValidatorSet) -> None:
    state.set(VALIDATORS_KEY, encode({"current": validators.to_wire(), "pending": []}))


def validators_at(state: State, height: int) -> ValidatorSet:
    """The set that certifies `height` as far as the state knows (history, current, pending)."""
    record = _load(state)
    for until, old in record.get("history", []):
        if height < until:
            return ValidatorSet.from_public_keys(old)
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
        # Built on the latest pending set, so it takes effect strictly after it (the delay may
        # have been lowered meanwhile, or both may be in one block): never replacing a pending
        # change keeps one entry per effective height, which the replicas learn exactly once.
        effective = max(effective, record["pending"][-1][0] + 1)
    new_set = ValidatorSet.from_public_keys(keys.values())
    record["pending"] = [*record["pending"], [effective, new_set.to_wire()]]
    state.set(VALIDATORS_KEY, encode(record))
    return effective


def activate_due_validators(state: State, height: int) -> bool:
    """Switch to every pending set effective at or before `height`; True if the set changed."""
    record = _load(state)
    due = [entry for entry in record["pending"] if entry[0] <= height]
    if not due:
        return False
    history = list(record.get("history", []))
    current = record["current"]
    for effective, keys in due:
        history.append([effective, current])  # `current` ruled every height below `effective`
        current = keys
    remaining = [entry for entry in record["pending"] if entry[0] > height]
    state.set(
        VALIDATORS_KEY, encode({"current": current, "pending": remaining, "history": history})
    )
    return True
