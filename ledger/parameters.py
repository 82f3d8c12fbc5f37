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

PARAMETERS: Final[dict[str, ParameterSpec]] = {
    "ship_deadline_s": ParameterSpec(7 * DAY, 1, 365 * DAY, "seconds after funding to ship"),
    "confirm_window_s": ParameterSpec(
        10 * DAY, 1, 365 * DAY, "seconds after shipping before receipt is assumed"
    ),
    "return_window_s": ParameterSpec(
        7 * DAY, 0, 365 * DAY, "seconds after receipt during which a dispute is allowed"
    ),
    "dispute_deadline_s": ParameterSpec(
        14 * DAY, 1, 365 * DAY, "seconds the arbiter has to resolve; then a full refund"
    ),
    "cancel_window_s": ParameterSpec(
        30 * DAY, 1, 365 * DAY, "seconds an unfunded order lives before it expires"
    ),
    "max_commission_bps": ParameterSpec(3_000, 0, 3_000, "cap on total commission rate"),
    "referral_levels": ParameterSpec(1, 1, 2, "commission depth: 1 = direct sharer only"),
    "second_level_share_bps": ParameterSpec(
        3_000, 0, 10_000, "share of the commission paid to the sharer's inviter (2 levels)"
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
        return reason
    return None
