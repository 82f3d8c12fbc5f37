"""Chain parameters: names, defaults and allowed ranges.

Parameters live in state under b"param:" + name (so they are covered by the state root). Genesis
may set any of them; afterwards only an admin `param.set` transaction changes one. Deadlines and
windows are in seconds of block time; rates in basis points (1/10 000).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class ParameterSpec:
    """One parameter's default and inclusive range."""

    default: int
    minimum: int
    maximum: int
    doc: str


DAY: Final = 86_400

MIN_VALIDATOR_CHANGE_DELAY: Final = 8
"""The smallest `validator_change_delay` the chain accepts, and the most a replica may require.

The one source of this bound: `consensus.config.ReplicaConfig` imports it (consensus depends on
ledger, never the reverse). A replica processes heights up to `delivered + delay` with the
schedule it knows, so a change must take effect no sooner than that; a parameter value below
this bound would be committed by the ledger and refused by every replica, splitting them.
"""

MAX_REFERRAL_COMMISSION_BPS: Final = 3_000
"""The lawful ceiling of a sharer's commission rate: 30 % of the sale the sharer's own link made
(the direct-selling cap). No genesis and no `param.set` can raise `max_commission_bps` above it."""

PYRAMID_RULE: Final = (
    "commission is paid only to the sharer whose link made the sale (one level): paying an "
    "upline from a downline's sales is pyramid selling (team commission), which the law forbids"
)
"""Why a second referral level is refused (docs/protocol.md §16.9)."""

FORBIDDEN_PREFIXES: Final = ("referral_levels", "second_level_")
"""Parameter names of the removed second referral level: refused with `PYRAMID_RULE`."""

PARAMETERS: Final[dict[str, ParameterSpec]] = {
    "ship_deadline_s": ParameterSpec(7 * DAY, 1, 365 * DAY, "seconds after funding to ship"),
    "confirm_window_s": ParameterSpec(
        10 * DAY, 1, 365 * DAY, "seconds after shipping before receipt is assumed"
    ),
    "return_window_s": ParameterSpec(
        7 * DAY, 0, 365 * DAY, "seconds after receipt for a no-reason return or a dispute"
    ),
    "dispute_deadline_s": ParameterSpec(
        14 * DAY, 1, 365 * DAY, "seconds the arbiter has to resolve; then a full refund"
    ),
    "cancel_window_s": ParameterSpec(
        30 * DAY, 1, 365 * DAY, "seconds an unfunded order lives before it expires"
    ),
    "max_commission_bps": ParameterSpec(
        3_000, 0, MAX_REFERRAL_COMMISSION_BPS, "cap on the sharer's commission rate (one level)"
    ),
    "max_leader_commission_bps": ParameterSpec(
        1_000, 0, 3_000, "cap on a community group leader's commission rate (fulfilment fee)"
    ),
    "pickup_window_s": ParameterSpec(
        7 * DAY, 1, 365 * DAY, "seconds goods wait at a leader's pickup point; then received"
    ),
    "return_ship_window_s": ParameterSpec(
        7 * DAY, 1, 365 * DAY, "seconds after a no-reason return request to ship the goods back"
    ),
    "return_receive_window_s": ParameterSpec(
        10 * DAY, 1, 365 * DAY, "seconds the merchant has to confirm a return; then refunded"
    ),
    "attest_window_s": ParameterSpec(
        30 * DAY, 1, 3650 * DAY, "seconds after completion an attestation is accepted"
    ),
    "trust_epoch_blocks": ParameterSpec(100, 1, 1_000_000, "blocks per trust epoch"),
    "trust_iterations": ParameterSpec(20, 1, 200, "EigenTrust iterations per epoch"),
    "trust_alpha_ppm": ParameterSpec(
        150_000, 0, 1_000_000, "weight of the pre-trusted distribution, parts per million"
    ),
    "trust_pair_cap": ParameterSpec(
        4, 1, 1_000_000, "max weight one attester adds about one subject per window"
    ),
    "trust_pair_window_s": ParameterSpec(30 * DAY, 1, 3650 * DAY, "window of the pair cap"),
    "trust_min_order_fen": ParameterSpec(
        100, 1, 10**15, "smallest order total (fen) whose attestation carries trust weight"
    ),
    "trust_epoch_delay": ParameterSpec(
        2, 1, 10_000, "blocks from an epoch's input height to the block that commits its scores"
    ),
    "validator_change_delay": ParameterSpec(
        MIN_VALIDATOR_CHANGE_DELAY,
        MIN_VALIDATOR_CHANGE_DELAY,
        10_000,
        "blocks between a committed validator.update and its effect",
    ),
    "review_window_s": ParameterSpec(
        30 * DAY, 1, 3650 * DAY, "seconds after completion a review is accepted"
    ),
}


class UnknownParameter(KeyError):
    """Raised by `spec_of` for a name that is not a chain parameter."""


def spec_of(name: str) -> ParameterSpec:
    try:
        return PARAMETERS[name]
    except KeyError:
        raise UnknownParameter(name) from None


def check_parameter(name: str, value: int) -> str | None:
    """None if `value` is allowed for `name`, else the reason it is not."""
    if name.startswith(FORBIDDEN_PREFIXES):
        return f"parameter {name}={value!r} is refused: {PYRAMID_RULE}"
    spec = PARAMETERS.get(name)
    if spec is None:
        return f"unknown parameter {name!r}; known: {sorted(PARAMETERS)}"
    if isinstance(value, bool) or not isinstance(value, int):
        return f"parameter {name} must be an integer"
    if not spec.minimum <= value <= spec.maximum:
        reason = f"parameter {name}={value} outside [{spec.minimum}, {spec.maximum}]"
        if name == "validator_change_delay" and value < spec.minimum:
            reason += (
                f" (MIN_VALIDATOR_CHANGE_DELAY={MIN_VALIDATOR_CHANGE_DELAY}: replicas process "
                "that many heights ahead with the validator set they know)"
            )
        if name == "max_commission_bps" and value > spec.maximum:
            reason += (
                f" (direct-selling pay is capped at 30 % of the seller's own sales, "
                f"{MAX_REFERRAL_COMMISSION_BPS} bps; {PYRAMID_RULE})"
            )
        return reason
    return None
