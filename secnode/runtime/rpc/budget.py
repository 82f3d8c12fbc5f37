"""What a call may cost: cost units, reply bytes, and the worker threads for heavy replies.

Cost units are a static price per method, raised by the parameters that make a call heavier
(`full` blocks, `prove`, page sizes). They are known once the params are validated, before
anything runs, so a batch's cost (the sum) is checked against `max_request_cost` up front and
charged to the client's rate limit (secnode.runtime.rpc.ratelimit) as one amount.

Reply bytes are capped per HTTP reply (`max_reply_bytes`). Every response is counted as it is
encoded; a method whose reply size is known before it is built (a full block: proportional to
its stored bytes) reserves an estimate first with `reserve_reply_bytes`, so an oversized reply
is refused without being built.

Calls that do not wait for consensus take turns on the loop through the `Turnstile`, one call
per loop turn, so consensus messages are handled between any two calls of a batch.

Heavy work (decoding a big block, building its JSON) runs in a worker thread through `Worker`,
at most `threads` at a time, so the event loop (and consensus on it) keeps running. A worker
thread reads only immutable data: committed blocks and receipts (a height never changes once
committed) and the store's own reads; never the in-memory `State`, which commits mutate on the
loop thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Final, TypeVar

from pydantic import BaseModel

from secnode.runtime.rpc.errors import over_budget

T = TypeVar("T")

METHOD_COSTS: Final[dict[str, int]] = {
    "sec_status": 1,
    "sec_sendTransaction": 1,
    "sec_getTransaction": 4,
    "sec_getBlock": 2,
    "sec_getCommit": 3,
    "sec_getValidators": 3,
    "sec_getAccount": 2,
    "sec_getOrder": 3,
    "sec_listOrders": 2,
    "sec_getAttestations": 2,
    "sec_getTrustScore": 20,
    "sec_getTrustEpoch": 10,
    "sec_getGenesis": 5,
    "sec_getNetwork": 3,
    "sec_getOrderHistory": 4,
    "sec_getTrustDistribution": 20,
    "rpc.discover": 10,
}
"""Base cost of each method, in units (a unit is about 1 ms of node CPU or less: a cheap store
read, one signature check; the price is rounded up where a call can be heavier)."""
DEFAULT_METHOD_COST: Final = 10
"""Cost of a method missing from the table (e.g. one added later)."""
INVALID_ENTRY_COST: Final = 1
"""Cost of a batch entry that is malformed or names no method (it is answered, not run)."""
BODY_BYTES_PER_UNIT: Final = 64 * 1024
"""A body that fails to parse is charged one unit plus one per this many bytes."""
FULL_BLOCK_COST: Final = 200
"""Extra cost of `full: true`: a block of up to 2,000 transactions takes up to about 0.2 s of
CPU to decode and serialize, and a unit is meant to be about 1 ms of node CPU."""
PROOF_COST: Final = 10
"""Extra cost of `prove: true` (a state proof)."""
LEAVES_PER_UNIT: Final = 16
"""sec_getTrustEpoch: one more unit per this many leaves of `page_size`."""

DEFAULT_MAX_REQUEST_COST: Final = 1_000
DEFAULT_MAX_REPLY_BYTES: Final = 8 * 1024 * 1024
DEFAULT_WORKER_THREADS: Final = 1
DEFAULT_RPC_SHARE: Final = 0.25
"""Most of the loop's time (and of the worker thread's) that RPC reads may take."""
DEFAULT_SLICE_S: Final = 0.002
"""RPC work that may run back to back on the loop before it must yield (and rest)."""

REPLY_BYTES_PER_STORED_BYTE: Final = 4
"""A full block's JSON is at most this many times its stored block + receipts bytes (hex
doubles every byte string; JSON keys and integers in decimal add the rest; measured about 2.5
for transfer blocks, tests/test_rpc_budget.py checks the bound)."""


_PRICED_FIELDS: Final = ("full", "prove", "limit", "page_size")
_priced_fields_of: dict[type[BaseModel], tuple[str, ...]] = {}


def call_cost(method: str, params: BaseModel) -> int:
    """The cost in units of one call of `method` with validated `params`."""
    cost = METHOD_COSTS.get(method, DEFAULT_METHOD_COST)
    kind = type(params)
    priced = _priced_fields_of.get(kind)
    if priced is None:  # once per params model: which of the priced fields it declares
        priced = _priced_fields_of[kind] = tuple(f for f in _PRICED_FIELDS if hasattr(params, f))
    if not priced:
        return cost
    if getattr(params, "full", False) is True:
        cost += FULL_BLOCK_COST
    if getattr(params, "prove", False) is True:
        cost += PROOF_COST
    limit = getattr(params, "limit", None)
    if type(limit) is int:
        cost += limit
    page_size = getattr(params, "page_size", None)
    if type(page_size) is int:
        cost += page_size // LEAVES_PER_UNIT
    return cost


class ReplyBudget:
    """Reply bytes left for one HTTP reply (shared by the calls of a batch)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def fits(self, size: int) -> bool:
        return self.used + size <= self.limit


@dataclass(slots=True)
class CallReply:
    """The share of one call in its `ReplyBudget`: what it reserved before building."""

    budget: ReplyBudget
    reserved: int = 0

    def settle(self, size: int) -> bool:
        """Replace the reservation by the actual encoded `size`; False (and nothing counted)
        if that does not fit."""
        self.budget.used -= self.reserved
        self.reserved = 0
        if not self.budget.fits(size):
            return False
        self.budget.used += size
        return True


current_call: contextvars.ContextVar[CallReply | None] = contextvars.ContextVar(
    "current_call", default=None
)
"""Set by the dispatcher around each call (each call of a batch runs in its own task)."""


def reserve_reply_bytes(size: int) -> None:
    """Claim `size` bytes of the current reply before building it; raise over_budget (and
    claim nothing) if they do not fit. Outside a dispatcher call it only checks nothing."""
    call = current_call.get()
    if call is None:
        return
    if not call.budget.fits(size):
        raise over_budget("reply_bytes", call.budget.used + size, call.budget.limit, "reply")
    call.budget.used += size
    call.reserved += size


@dataclass(slots=True)
class _Hold:
    turnstile: Turnstile
    held: bool = True
    away_s: float = 0.0
    """Time the turn was given up (waiting for a worker thread) while the call ran."""


_current_hold: contextvars.ContextVar[_Hold | None] = contextvars.ContextVar(
    "current_hold", default=None
)

Sleep = Callable[[float], Awaitable[None]]


class DutyCycle:
    """Keeps work to at most `share` of wall time, in slices: work runs back to back until a
    slice of `slice_s` is used, then the next may start only when the rest owed for all of it
    has passed ((1 / share - 1) * d after work of d seconds; share 0.5: as long again). A slice
    makes cheap calls (a cached header, a status) cost one loop turn per slice rather than one
    per call, which on a busy node is the difference between thousands and a few dozen reads a
    second; no caller holds the loop for more than a slice plus one call. `clock` paces (wall
    time); `work_clock` measures work, by default the same clock. The node passes
    `time.thread_time`: the CPU time of the thread that did the work, so time the process spent
    descheduled on a busy machine is not billed to RPC as if it had held the loop. Clocks and
    sleep are injected."""

    def __init__(
        self,
        share: float = DEFAULT_RPC_SHARE,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        slice_s: float = DEFAULT_SLICE_S,
        work_clock: Callable[[], float] | None = None,
    ) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"duty cycle share {share!r} is not in (0, 1]")
        self.share = share
        self.clock = clock
        self.work_clock = clock if work_clock is None else work_clock
        self.slice_s = slice_s
        self._sleep = sleep
        self._ready_at = 0.0
        self._slice_used = 0.0
        self._slice_open = False

    async def wait_turn(self) -> None:
        """Go on in the current slice, or wait until the rest owed for earlier work is over
        (at least one loop turn) and open a new one."""
        if self._slice_open and self._slice_used < self.slice_s:
            return
        delay = self._ready_at - self.clock()
        await self._sleep(max(delay, 0.0))
        self._slice_used = 0.0
        self._slice_open = True

    def spent(self, seconds: float) -> None:
        work = max(seconds, 0.0)
        self._slice_used += work
        self._ready_at = max(self._ready_at, self.clock()) + work * (1 / self.share - 1)


class Turnstile:
    """One RPC call at a time runs on the event loop, calls take turns through the loop, and
    together they use at most `duty.share` of the loop's time.

    Without it the calls of a batch (or of many connections) that never await run back to
    back in one loop iteration, and consensus messages that arrived meanwhile wait for all of
    them. A call that waits for its turn is woken by `asyncio.Lock.release` through
    `call_soon`, and every turn starts with a sleep (at least 0), so the loop polls its sockets
    (and runs consensus) between any two calls. After a call that held the loop for d seconds
    the next one waits out the rest the duty cycle owes, so however many clients hammer the
    node, consensus keeps at least 1 - share of the loop. A call gives its turn up while it
    waits for a worker thread (`Worker.run`); that time is not counted.
    """

    def __init__(self, duty: DutyCycle | None = None) -> None:
        self._lock = asyncio.Lock()
        self.duty = duty or DutyCycle()

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        await self._lock.acquire()
        hold = _Hold(self)
        token = _current_hold.set(hold)
        started: float | None = None
        try:
            await self.duty.wait_turn()
            started = self.duty.work_clock()
            yield
        finally:
            _current_hold.reset(token)
            if started is not None:
                self.duty.spent(self.duty.work_clock() - started - hold.away_s)
            if hold.held:
                self._lock.release()

    async def _give_up_during(self, hold: _Hold, work: Awaitable[T]) -> T:
        self._lock.release()
        hold.held = False
        left = self.duty.work_clock()
        try:
            return await work
        finally:
            await self._lock.acquire()  # if cancelled here, `turn` sees held False
            hold.held = True
            hold.away_s += self.duty.work_clock() - left


class Worker:
    """Runs heavy pure functions in threads, at most `threads` at once (others queue), paced
    by a duty cycle so that a busy thread leaves the loop its share of the GIL."""

    def __init__(
        self, threads: int = DEFAULT_WORKER_THREADS, duty: DutyCycle | None = None
    ) -> None:
        self.threads = threads
        self.duty = duty or DutyCycle()
        self._slots = asyncio.Semaphore(threads)
        self.ran = 0
        """Functions run so far (for tests)."""

    async def run(self, function: Callable[[], T]) -> T:
        """`function()` in a thread; a caller holding the `Turnstile` gives its turn up
        meanwhile, so other calls run on the loop while this one waits."""
        hold = _current_hold.get()
        if hold is not None and hold.held:
            return await hold.turnstile._give_up_during(hold, self._run(function))
        return await self._run(function)

    async def _run(self, function: Callable[[], T]) -> T:
        async with self._slots:
            await self.duty.wait_turn()
            self.ran += 1
            work_clock = self.duty.work_clock
            used = [0.0]

            def timed() -> T:
                # Measured in the worker thread: its own work, not the queue or the hop.
                started = work_clock()
                try:
                    return function()
                finally:
                    used[0] = work_clock() - started

            try:
                return await asyncio.to_thread(timed)
            finally:
                self.duty.spent(used[0])
