"""Replica configuration and the validator schedule (which set rules which heights).

`ReplicaConfig` is static per chain and node; every bound the core enforces lives here, so the
memory a hostile peer can make a replica hold is a function of these numbers alone.

`ValidatorSchedule` maps heights to validator sets. A change committed at height h takes effect
at the effective height e the ledger chose (e >= h + `min_validator_change_delay`, which may not
exceed the ledger's `MIN_VALIDATOR_CHANGE_DELAY`, so every delay the ledger accepts is one the
replica accepts too). The core adds
two rules of its own (docs/consensus.md, "Validator set changes"):

* the last height of an epoch (e - 1) is always a checkpoint height, and
* no height >= e is processed until that checkpoint is stable, so a view change never mixes
  heights certified by different sets.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass, field

from consensus.errors import ConfigError, ValidatorScheduleError
from ledger.hashing import HASH_SIZE
from ledger.parameters import MIN_VALIDATOR_CHANGE_DELAY
from ledger.validators import ValidatorSet

REQUEST_TIMEOUT_FACTOR = 5.0
"""Default request timeout in view timeouts: well above a busy pool's queueing time, so load
alone never changes the view, and short enough that a censored transaction waits seconds."""


@dataclass(frozen=True, slots=True)
class ReplicaConfig:
    """Static parameters of a replica (times in seconds of the injected clock)."""

    chain_id: str
    """Chain id bound into every signature."""
    genesis_digest: bytes
    """Header hash of block 0, the implicit stable checkpoint 0."""
    checkpoint_interval: int = 16
    """K: a checkpoint every K heights."""
    watermark_window: int = 32
    """L: heights above the stable checkpoint a replica processes (high = low + L)."""
    max_in_flight: int = 4
    """Undecided heights the primary may have proposed at once (pipelining depth)."""
    min_validator_change_delay: int = MIN_VALIDATOR_CHANGE_DELAY
    """Smallest effective-height delay a validator change can have; at most the ledger's
    `MIN_VALIDATOR_CHANGE_DELAY`, the lower bound of the chain parameter."""
    batch_wait: float = 0.05
    """Minimum time between two proposals of one primary (lets a batch fill)."""
    empty_block_interval: float = 2.0
    """An idle primary still proposes (possibly empty) blocks this often."""
    view_timeout: float = 6.0
    """No block delivered for this long triggers a view change (doubled per failed attempt)."""
    request_timeout: float | None = None
    """A backup that holds an executable transaction this long in one view votes for a view
    change (PBFT's request timer). None: `REQUEST_TIMEOUT_FACTOR` x `view_timeout`."""
    max_timeout_doublings: int = 6
    """Cap on the view-timeout backoff exponent."""
    resend_interval: float = 1.0
    """Without progress, a replica re-sends its own current messages this often."""
    catch_up_retry: float = 2.0
    """How long to wait before asking for the same catch-up again."""
    max_view_ahead: int = 64
    """Messages for views beyond current + this are dropped."""
    max_payload_bytes: int = 1024 * 1024
    """Largest block payload accepted in a pre-prepare."""
    max_future_per_peer: int = 256
    """Buffered early messages per sender."""
    max_future_total: int = 2048
    """Buffered early messages overall."""
    max_catch_up_blocks: int = 64
    """Out-of-order catch-up blocks held while waiting for the next height."""

    def __post_init__(self) -> None:
        if not self.chain_id:
            raise ConfigError("chain_id must not be empty")
        if len(self.genesis_digest) != HASH_SIZE:
            raise ConfigError(f"genesis_digest must be {HASH_SIZE} bytes")
        integers = {
            "checkpoint_interval": self.checkpoint_interval,
            "max_in_flight": self.max_in_flight,
            "min_validator_change_delay": self.min_validator_change_delay,
            "max_view_ahead": self.max_view_ahead,
            "max_future_per_peer": self.max_future_per_peer,
            "max_catch_up_blocks": self.max_catch_up_blocks,
        }
        for name, value in integers.items():
            if value < 1:
                raise ConfigError(f"{name} must be at least 1, got {value}")
        if self.min_validator_change_delay > MIN_VALIDATOR_CHANGE_DELAY:
            raise ConfigError(
                f"min_validator_change_delay {self.min_validator_change_delay} exceeds the "
                f"ledger's MIN_VALIDATOR_CHANGE_DELAY {MIN_VALIDATOR_CHANGE_DELAY}: the chain "
                "could commit a change this replica refuses"
            )
        if not self.checkpoint_interval <= self.watermark_window <= 2 * self.checkpoint_interval:
            raise ConfigError(
                f"watermark_window {self.watermark_window} must be between checkpoint_interval "
                f"{self.checkpoint_interval} and twice it"
            )
        if self.request_timeout is not None and not self.request_timeout > self.view_timeout:
            raise ConfigError(
                f"request_timeout {self.request_timeout} must exceed view_timeout "
                f"{self.view_timeout}, or a slow block changes the view"
            )
        if self.max_timeout_doublings < 0:
            raise ConfigError("max_timeout_doublings must not be negative")
        if self.max_in_flight > self.checkpoint_interval:
            raise ConfigError("max_in_flight must not exceed checkpoint_interval")
        if self.max_future_total < self.max_future_per_peer:
            raise ConfigError("max_future_total must be at least max_future_per_peer")
        if self.view_timeout <= self.empty_block_interval:
            raise ConfigError(
                f"view_timeout {self.view_timeout} must exceed empty_block_interval "
                f"{self.empty_block_interval}, or an idle network changes view"
            )
        for name, seconds in (
            ("batch_wait", self.batch_wait),
            ("resend_interval", self.resend_interval),
            ("catch_up_retry", self.catch_up_retry),
            ("empty_block_interval", self.empty_block_interval),
        ):
            if not seconds > 0:
                raise ConfigError(f"{name} must be positive, got {seconds}")

    @property
    def request_timer(self) -> float:
        """The request timeout in effect (see `request_timeout`)."""
        if self.request_timeout is not None:
            return self.request_timeout
        return REQUEST_TIMEOUT_FACTOR * self.view_timeout

    def timeout(self, attempt: int) -> float:
        """The view timeout after `attempt` consecutive view changes without a new block."""
        return self.view_timeout * float(2 ** min(attempt, self.max_timeout_doublings))


@dataclass(frozen=True, slots=True)
class ValidatorSchedule:
    """Validator sets by effective height; the first entry is effective from height 1."""

    entries: tuple[tuple[int, ValidatorSet], ...]
    """(effective height, set), strictly ascending by height, first height 1."""
    _heights: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        heights = tuple(height for height, _ in self.entries)
        if not heights or heights[0] != 1:
            raise ValidatorScheduleError("a schedule starts with the set effective at height 1")
        if any(a >= b for a, b in itertools.pairwise(heights)):
            raise ValidatorScheduleError(f"effective heights {heights} must strictly increase")
        object.__setattr__(self, "_heights", heights)

    @classmethod
    def of(cls, validators: ValidatorSet) -> ValidatorSchedule:
        """A schedule with one set for every height."""
        return cls(((1, validators),))

    def at(self, height: int) -> ValidatorSet:
        """The set that orders and certifies `height`."""
        if len(self.entries) == 1:
            return self.entries[0][1]
        index = bisect.bisect_right(self._heights, height) - 1
        return self.entries[max(index, 0)][1]

    def with_change(self, effective_height: int, validators: ValidatorSet) -> ValidatorSchedule:
        """This schedule plus a set from `effective_height` on (replacing later entries)."""
        if effective_height <= 1:
            raise ValidatorScheduleError(f"effective height {effective_height} must exceed 1")
        kept = tuple(entry for entry in self.entries if entry[0] < effective_height)
        return ValidatorSchedule((*kept, (effective_height, validators)))

    def next_change_after(self, height: int) -> int | None:
        """The first effective height > `height`, if any."""
        index = bisect.bisect_right(self._heights, height)
        return self._heights[index] if index < len(self._heights) else None

    def is_epoch_end(self, height: int) -> bool:
        """True if a new set takes effect at `height + 1`."""
        return height + 1 in self._heights[1:]
