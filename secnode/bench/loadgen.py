"""The cluster benchmark's load generator: sender processes that are never the bottleneck.

`LoadGenerator` starts `senders` OS processes (multiprocessing, spawn). Sender k owns the bench
accounts i with i % senders == k, so the nonces of one account all come from one process, and
pre-signs its share of `credit.transfer`s itself (signing runs in parallel), or loads them from
the on-disk cache: one file per sender keyed by (genesis hash, accounts, transfers per account,
sender index, senders), written atomically. Each transaction is signed once per cache key, and
every JSON-RPC batch body is rendered to bytes before any phase starts, so sending costs a
socket write.

Ordering: an account's transactions must reach a node in nonce order, or the node refuses the
ones too far ahead (`nonce_gap`) and the account is stuck behind the hole. So the accounts are
split into *lanes*, one per (sender, node, slot) with `depth` slots per node: lane l takes the
accounts i with i % lanes == l, sends only to its node, and has one batch in flight at a time.
A lane's batches are its accounts' transfers nonce by nonce, so each reaches its node in order.

A phase (`Phase`) runs in every sender at once, from a shared wall-clock start, over one
aiohttp session per sender (keep-alive connections to every node):

* closed loop (`rate=None`): every lane sends its next batch as soon as the last is answered,
  so `depth` batches per sender are in flight per node;
* open loop (`rate` tx/s for this sender): batch i is due at start + i * batch / rate, taken
  from the lanes in turn; a sender behind its schedule reports the lag (it cannot offer the
  rate).

A phase may cap what a sender offers (`Phase.limit`), so that a saturation phase leaves
transactions for the next one.

Each sender reports what it offered, what the nodes accepted and rejected (by the `reason` of
the JSON-RPC error, or `transport`), how far behind schedule it fell, whether it ran out of
pre-signed transactions, and (when asked) the wall time each transaction was sent. A reply that
carries no `"error"` is counted as accepted without being parsed.

Sending continues across phases from where the previous one stopped, so nonces follow on.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import multiprocessing
import os
import struct
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp

from ledger.keys import PrivateKey
from ledger.transactions import Transfer, sign_transaction

BATCH = 100
"""Transactions per JSON-RPC batch (the nodes' default `rpc.max_batch`)."""
CACHE_VERSION = 1
"""Bumped when the cache file layout or the signed transfers change."""
LAG_REPORTED_S = 1.0
"""An open-loop sender this far behind its schedule cannot offer its rate (reported)."""


def bench_key(index: int) -> PrivateKey:
    """The key of bench account `index` (from a public label: test funds only)."""
    return PrivateKey.from_label(f"bench:{index}")


@dataclass(frozen=True, slots=True)
class SenderPlan:
    """What one sender process signs and where it sends."""

    index: int
    """This sender's number, 0 <= index < senders."""
    senders: int
    """How many sender processes share the accounts."""
    accounts: int
    """Bench accounts in the genesis (bench_key(0..accounts-1))."""
    per_account: int
    """Transfers pre-signed per account (nonces 0..per_account-1)."""
    chain_id: str
    genesis_hash: bytes
    urls: tuple[str, ...]
    """The nodes' RPC base URLs."""
    cache_dir: Path | None
    """Where signed transactions are cached (None: sign every time, cache nothing)."""
    depth: int = 2
    """Lanes (so batches in flight, closed loop) per node and sender."""

    @property
    def lanes(self) -> int:
        """Lanes over all senders (see the module docstring)."""
        return self.senders * len(self.urls) * self.depth

    def accounts_of(self) -> range:
        """This sender's accounts."""
        return range(self.index, self.accounts, self.senders)

    def url_of_lane(self, lane: int) -> str:
        return self.urls[(lane // self.senders) % len(self.urls)]


@dataclass(frozen=True, slots=True)
class Batch:
    """One pre-rendered JSON-RPC batch of `sec_sendTransaction`s."""

    body: bytes
    hashes: tuple[str, ...]
    """The transactions' hashes (hex), in the batch's order."""


@dataclass(frozen=True, slots=True)
class Ready:
    """A sender has its transactions."""

    transactions: int
    seconds: float
    """Time to sign them (or load them from the cache)."""
    from_cache: bool


@dataclass(frozen=True, slots=True)
class Phase:
    """One sending phase, the same for every sender."""

    start_at: float
    """Wall-clock (time.time) start, shared by all senders."""
    duration: float
    rate: float | None
    """Tx/s this sender offers (open loop), or None: closed loop at saturation."""
    record: bool = False
    """Report each transaction's send time (for finality)."""
    limit: int | None = None
    """At most this many transactions from this sender (None: until the phase ends)."""


@dataclass(slots=True)
class PhaseResult:
    """What one sender did in a phase."""

    offered: int = 0
    """Transactions sent (in batches that left this process)."""
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    """Rejected transactions by reason (`transport`: the batch got no JSON-RPC answer)."""
    batches: int = 0
    lag_s: float = 0.0
    """Open loop: the most this sender fell behind its schedule."""
    exhausted: bool = False
    """It ran out of pre-signed transactions (or reached the phase's limit) before the end."""
    sent_at: dict[str, float] = field(default_factory=dict)
    """tx hash (hex) -> wall time sent, when the phase asked to record."""

    def tally(self, body: bytes, size: int) -> None:
        """Count one batch's JSON-RPC answer: without "error" all `size` were accepted."""
        if b'"error"' not in body:
            self.accepted += size
            return
        try:
            replies = json.loads(body)
        except ValueError:
            self.reject("unparsable_reply", size)
            return
        if not isinstance(replies, list):  # a whole-batch error (too large, rate limited)
            error = replies.get("error") if isinstance(replies, dict) else None
            self.reject(_reason(error), size)
            return
        for reply in replies:
            error = reply.get("error") if isinstance(reply, dict) else "malformed"
            if error is None:
                self.accepted += 1
            else:
                self.reject(_reason(error), 1)

    def reject(self, reason: str, count: int) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + count


def _reason(error: Any) -> str:
    if not isinstance(error, dict):
        return str(error)
    data = error.get("data")
    reason = data.get("reason") if isinstance(data, dict) else None
    return str(reason if reason is not None else error.get("message"))


# --- signing and the cache ----------------------------------------------------------------------


def cache_path(plan: SenderPlan) -> Path | None:
    """The cache file of this sender's transactions (None when caching is off)."""
    if plan.cache_dir is None:
        return None
    key = (
        f"v{CACHE_VERSION}:{plan.genesis_hash.hex()}:{plan.chain_id}:{plan.accounts}:"
        f"{plan.per_account}:{plan.index}:{plan.senders}"
    )
    return plan.cache_dir / f"transfers-{hashlib.sha256(key.encode()).hexdigest()[:32]}.bin"


def sign_share(plan: SenderPlan) -> list[tuple[bytes, bytes]]:
    """(hash, encoded) of this sender's transfers: nonce-major over its accounts, each account
    paying 1 to the next one."""
    mine = plan.accounts_of()
    keys = {i: bench_key(i) for i in mine}
    payees = {i: bench_key((i + 1) % plan.accounts).address for i in mine}
    out = []
    for nonce in range(plan.per_account):
        for i in mine:
            tx = sign_transaction(
                keys[i],
                plan.chain_id,
                nonce,
                Transfer(payees[i], 1),
                genesis_hash=plan.genesis_hash,
            )
            out.append((tx.hash, tx.encoded))
    return out


_RECORD = struct.Struct(">32sI")


def write_cache(path: Path, transactions: list[tuple[bytes, bytes]]) -> None:
    """Write atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    parts = [struct.pack(">I", len(transactions))]
    for tx_hash, encoded in transactions:
        parts.append(_RECORD.pack(tx_hash, len(encoded)))
        parts.append(encoded)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    partial.write_bytes(b"".join(parts))
    os.replace(partial, path)


def read_cache(path: Path) -> list[tuple[bytes, bytes]] | None:
    """The cached transactions, or None if the file is missing or damaged."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if len(data) < 4:
        return None
    (count,) = struct.unpack_from(">I", data)
    out, offset = [], 4
    for _ in range(count):
        if offset + _RECORD.size > len(data):
            return None
        tx_hash, size = _RECORD.unpack_from(data, offset)
        offset += _RECORD.size
        if offset + size > len(data):
            return None
        out.append((tx_hash, data[offset : offset + size]))
        offset += size
    return out if offset == len(data) else None


def load_or_sign(plan: SenderPlan) -> tuple[list[tuple[bytes, bytes]], bool]:
    """This sender's transactions, from the cache when it has them; (transactions, cached)."""
    path = cache_path(plan)
    if path is not None:
        cached = read_cache(path)
        if cached is not None:
            return cached, True
    transactions = sign_share(plan)
    if path is not None:
        write_cache(path, transactions)
    return transactions, False


@dataclass(slots=True)
class Lane:
    """One in-order stream of batches to one node; `next` survives from phase to phase."""

    url: str
    batches: list[Batch]
    next: int = 0


def render_lanes(plan: SenderPlan, transactions: list[tuple[bytes, bytes]]) -> list[Lane]:
    """This sender's lanes, each with its JSON-RPC batch bodies of BATCH
    `sec_sendTransaction`s, rendered once. `transactions` is in `sign_share`'s order."""
    mine = plan.accounts_of()
    by_lane: dict[int, list[tuple[bytes, bytes]]] = {}
    for position, tx in enumerate(transactions):
        account = mine[position % len(mine)]
        by_lane.setdefault(account % plan.lanes, []).append(tx)
    lanes = []
    for lane, txs in sorted(by_lane.items()):
        batches = []
        for start in range(0, len(txs), BATCH):
            chunk = txs[start : start + BATCH]
            entries = b",".join(
                b'{"jsonrpc":"2.0","id":%d,"method":"sec_sendTransaction","params":{"tx":"%s"}}'
                % (i, encoded.hex().encode())
                for i, (_, encoded) in enumerate(chunk)
            )
            batches.append(Batch(b"[" + entries + b"]", tuple(h.hex() for h, _ in chunk)))
        lanes.append(Lane(plan.url_of_lane(lane) + "/rpc", batches))
    return lanes


# --- sending ------------------------------------------------------------------------------------

HEADERS = {"Content-Type": "application/json"}


async def _post(
    session: aiohttp.ClientSession, url: str, batch: Batch, result: PhaseResult
) -> None:
    try:
        async with session.post(url, data=batch.body, headers=HEADERS) as response:
            body = await response.read()
    except (aiohttp.ClientError, TimeoutError):
        result.reject("transport", len(batch.hashes))
        return
    result.tally(body, len(batch.hashes))


async def run_phase(lanes: list[Lane], phase: Phase) -> PhaseResult:
    """Send from `lanes` for one phase; see the module docstring."""
    result = PhaseResult()
    budget = Budget(phase.limit, result)
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.sleep(max(phase.start_at - time.time(), 0.0))
        end = phase.start_at + phase.duration
        if phase.rate is None:
            async with asyncio.TaskGroup() as tasks:
                for lane in lanes:
                    tasks.create_task(_closed_loop(session, lane, end, budget))
        else:
            await _open_loop(session, lanes, phase, budget)
    return result


@dataclass(slots=True)
class Budget:
    """Takes batches from lanes for one phase, within the phase's limit, and counts them."""

    limit: int | None
    result: PhaseResult

    def take(self, lane: Lane, record: bool) -> Batch | None:
        result = self.result
        if lane.next >= len(lane.batches) or (
            self.limit is not None and result.offered >= self.limit
        ):
            result.exhausted = True
            return None
        batch = lane.batches[lane.next]
        lane.next += 1
        result.offered += len(batch.hashes)
        result.batches += 1
        if record:
            now = time.time()
            for tx_hash in batch.hashes:
                result.sent_at[tx_hash] = now
        return batch


async def _closed_loop(
    session: aiohttp.ClientSession, lane: Lane, end: float, budget: Budget
) -> None:
    while time.time() < end:
        batch = budget.take(lane, record=False)
        if batch is None:
            return
        await _post(session, lane.url, batch, budget.result)


async def _open_loop(
    session: aiohttp.ClientSession, lanes: list[Lane], phase: Phase, budget: Budget
) -> None:
    rate = phase.rate
    if rate is None or rate <= 0:
        raise ValueError(f"an open-loop phase needs a positive rate, not {rate}")
    end = phase.start_at + phase.duration
    turn = 0
    async with asyncio.TaskGroup() as tasks:
        sent = 0
        while lanes:
            due = phase.start_at + sent / rate
            if due >= end:
                break
            delay = due - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                budget.result.lag_s = max(budget.result.lag_s, -delay)
            lane = lanes[turn % len(lanes)]
            turn += 1
            batch = budget.take(lane, record=phase.record)
            if batch is None:
                if budget.limit is not None and budget.result.offered >= budget.limit:
                    break
                lanes = [other for other in lanes if other is not lane]  # this one is used up
                continue
            tasks.create_task(_post(session, lane.url, batch, budget.result))
            sent += len(batch.hashes)


# --- the processes ------------------------------------------------------------------------------


def sender_main(plan: SenderPlan, connection: Connection) -> None:
    """A sender process: get the transactions ready, then run each phase it is sent (None
    ends it). Any failure is sent back as its traceback text."""
    try:
        started = time.perf_counter()
        transactions, cached = load_or_sign(plan)
        lanes = render_lanes(plan, transactions)
        connection.send(Ready(len(transactions), time.perf_counter() - started, cached))
        while (phase := connection.recv()) is not None:
            connection.send(asyncio.run(run_phase(lanes, phase)))
    except Exception:  # the top of a sender process: report to the bench, which stops
        connection.send(traceback.format_exc())


class LoadGeneratorError(RuntimeError):
    """A sender process failed (its traceback is the message)."""


class LoadGenerator:
    """The sender processes, driven from the bench's event loop."""

    def __init__(self, plans: list[SenderPlan]) -> None:
        context = multiprocessing.get_context("spawn")  # no inherited event loop or sockets
        self._connections: list[Connection] = []
        self._processes: list[multiprocessing.process.BaseProcess] = []
        for plan in plans:
            ours, theirs = context.Pipe()
            process = context.Process(
                target=sender_main, args=(plan, theirs), name=f"sec-bench-sender-{plan.index}"
            )
            process.start()
            theirs.close()
            self._connections.append(ours)
            self._processes.append(process)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._processes if p.pid is not None]

    async def _receive_all(self) -> list[Any]:
        replies = await asyncio.gather(
            *(asyncio.to_thread(connection.recv) for connection in self._connections)
        )
        for reply in replies:
            if isinstance(reply, str):
                raise LoadGeneratorError(f"a sender process failed:\n{reply}")
        return list(replies)

    async def ready(self) -> list[Ready]:
        """Wait until every sender has signed or loaded its transactions."""
        return await self._receive_all()

    async def run(self, phase: Phase) -> list[PhaseResult]:
        for connection in self._connections:
            connection.send(phase)
        return await self._receive_all()

    def stop(self) -> None:
        for connection in self._connections:
            with contextlib.suppress(OSError):  # the process is gone already
                connection.send(None)
        for process in self._processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
                process.join()
