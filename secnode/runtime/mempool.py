"""The mempool: admitted, signature-checked transactions waiting for a block.

Terms. A sender's *base* is its committed nonce; its *ready run* is the pending nonces base,
base + 1, ... up to the first hole; its *next nonce* is the first nonce after the run. A pending
transaction above the next nonce is *gapped*: it cannot execute until the hole is filled. A
transaction is *executable* on arrival if its nonce is its sender's next nonce. A sender's
*share* is `sender_share` of each cap (`share_count` transactions, `share_bytes` bytes); a sender
holding more of either is *above its share*.

Admission (`admit`) checks, cheapest first, and rejects with a `MempoolRejected` whose `code`
names the rule: `duplicate`, `wrong_chain`, `unknown_account`, `nonce_too_low`,
`nonce_too_high` (the outer window, `nonce_window` above the committed nonce), `nonce_pending`
(same nonce already pending), `nonce_gap` (more than `max_nonce_gap` above the sender's next
nonce), `sender_limit` (`max_per_sender`, a hard cap), `mempool_full`, and finally
`invalid_signature`. The signature of an admitted transaction is never checked again: `verified`
is the set of admitted hashes that block building and block validation consult. A transaction
that reached the node first inside a block is verified by the block's execution, which the node
records with `remember_verified`; its gossiped copy is then admitted without a second check.

Displacement: when admitting would exceed `max_transactions` or `max_bytes`, an executable
transaction of a sender under its share displaces, in this order, gapped transactions (oldest
first), then the youngest (highest-nonce, so the rest of the run stays executable) transactions
of the sender furthest above its share, never taking a sender below its share. Anything else, or
when that frees too little room, gets `mempool_full`; nothing is evicted before the signature
verifies and nothing changes when the admission is refused.

Expiry (lazy, at each admission, selection and commit): a transaction admitted `max_age_s` ago
is dropped; a gapped one is dropped `gap_ttl_s` after it became gapped. When a ready transaction
leaves other than by commit, the rest of its sender's run becomes gapped (from that moment).
`remove_committed` drops the transactions of a committed block and every pending transaction
whose nonce the chain has passed.

Request timer: `oldest_ready_since` is the admission time of the oldest pending transaction whose
nonce is its sender's committed nonce, kept in a heap (lazy deletion, compacted when it outgrows
the senders) so a consensus tick costs O(log n). A transaction stays pending through proposals
and view changes, so it keeps its age; one that left and is sent again is a new admission.

Invariants: every pending transaction passed admission; per sender at most one per nonce, all
at or above the sender's base; `len(self) <= max_transactions` and `size_bytes <= max_bytes`;
a gapped transaction is in `_gapped` and a ready one is not; at admission a gapped transaction
is at most `max_nonce_gap` above its sender's next nonce; an executable transaction of a sender
under its share is admitted whenever the gapped transactions plus the excess of senders above
their share free enough room for it. Cost: admit and commit are O(1) amortised per
transaction (O(log n) for the heaps; displacement O(log n) unless gapped transactions alone
free too little); select is O(senders + selected), as before.
"""

from __future__ import annotations

import heapq
import time
from collections import OrderedDict
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass, field

from ledger.accounts import Account
from ledger.keys import format_address, verify_signature
from ledger.transactions import MAX_TRANSACTION_SIZE, SignedTransaction

AccountLookup = Callable[[bytes], Account | None]
NonceLookup = Callable[[bytes], int]


RECENTLY_VERIFIED = 50_000
"""Hashes of transactions verified in blocks (not at admission) that the mempool remembers, so
a transaction that reached this node first inside a proposal is not verified again when its
gossiped copy arrives (32-byte keys: a few MB at most)."""


class _Verified:
    """Membership in either of two hash collections (a `Container` view, no copy)."""

    __slots__ = ("_first", "_second")

    def __init__(self, first: Container[bytes], second: Container[bytes]) -> None:
        self._first, self._second = first, second

    def __contains__(self, tx_hash: object) -> bool:
        return tx_hash in self._first or tx_hash in self._second


class InvalidMempoolConfig(ValueError):
    """A mempool bound out of its range (the message names the field and the value)."""


@dataclass(frozen=True, slots=True)
class MempoolConfig:
    """Bounds of the mempool (documented defaults; docs/operations.md `[mempool]`)."""

    max_transactions: int = 50_000
    """Pending transactions in all."""
    max_bytes: int = 64 * 1024 * 1024
    """Encoded bytes of all pending transactions."""
    max_per_sender: int = 1_000
    """Pending transactions of one sender (a hard cap, whether or not the pool is full)."""
    nonce_window: int = 1_000
    """How far ahead of the committed nonce a transaction may be (the outer bound)."""
    max_nonce_gap: int = 16
    """How far above the sender's next nonce (its run of pending nonces) a nonce may be."""
    sender_share: float = 0.01
    """Fraction of each cap a sender holds before its transactions may be displaced."""
    max_age_s: float = 600.0
    """A transaction pending this long is dropped."""
    gap_ttl_s: float = 60.0
    """A gapped transaction is dropped this long after it became gapped."""

    def __post_init__(self) -> None:
        for name in ("max_transactions", "max_bytes", "max_per_sender", "nonce_window"):
            if getattr(self, name) < 1:
                raise InvalidMempoolConfig(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.max_nonce_gap < 0:
            raise InvalidMempoolConfig(f"max_nonce_gap must be >= 0, not {self.max_nonce_gap}")
        if not 0 < self.sender_share <= 1:
            raise InvalidMempoolConfig(f"sender_share must be in (0, 1], not {self.sender_share}")
        for name in ("max_age_s", "gap_ttl_s"):
            if not getattr(self, name) > 0:
                raise InvalidMempoolConfig(f"{name} must be positive, not {getattr(self, name)}")

    @property
    def share_count(self) -> int:
        """Transactions a sender holds before it is above its share."""
        return max(1, int(self.max_transactions * self.sender_share))

    @property
    def share_bytes(self) -> int:
        """Bytes a sender holds before it is above its share (at least one largest transaction)."""
        return max(MAX_TRANSACTION_SIZE, int(self.max_bytes * self.sender_share))


class MempoolRejected(Exception):
    """Admission refused; `code` is stable, the message says what and why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(slots=True)
class _Queue:
    """One sender's pending transactions. Invariant: every nonce in `txs` is >= `base`; the
    nonces base .. ready_end - 1 are all in `txs` and ready_end is not; the others are gapped."""

    base: int
    """The sender's committed nonce, as last seen."""
    ready_end: int
    """The sender's next nonce: the first nonce at or above `base` that is not pending."""
    txs: dict[int, SignedTransaction] = field(default_factory=dict)
    size: int = 0
    """Encoded bytes of all of `txs`."""
    gapped_size: int = 0
    """Encoded bytes of the gapped ones."""
    head: tuple[bytes, float] | None = None
    """Hash and admission time of the transaction last pushed to the ready heap for this
    sender (one that left and came back has a new time, and needs a new heap entry)."""

    @property
    def ready_count(self) -> int:
        return self.ready_end - self.base


class Mempool:
    """Pending transactions by hash and by (sender, nonce), with admission times."""

    def __init__(
        self,
        chain_id: str,
        config: MempoolConfig | None = None,
        clock: Callable[[], float] = time.time,
        *,
        genesis_hash: bytes,
    ) -> None:
        self.chain_id = chain_id
        self.genesis_hash = genesis_hash
        """Part of the signed bytes: a transaction signed for another network fails here."""
        self.config = config or MempoolConfig()
        self._clock = clock
        self._by_hash: dict[bytes, SignedTransaction] = {}
        self._queues: dict[bytes, _Queue] = {}
        self._admitted: OrderedDict[bytes, float] = OrderedDict()
        """Admission time by hash, oldest first (max_age_s expiry walks it from the front)."""
        self._gapped: OrderedDict[bytes, float] = OrderedDict()
        """The gapped transactions: when each became gapped, oldest first."""
        self._over: set[bytes] = set()
        """Senders above their share."""
        self._over_heap: list[tuple[float, bytes]] = []
        """Lazy max-heap of (-load, sender) for `_over`: pushed at each change of a sender
        above its share, stale entries dropped when met, rebuilt when it outgrows `_over`."""
        self._ready: list[tuple[float, bytes, bytes, int]] = []
        """Heap of (admitted at, hash, sender, nonce) of transactions at their sender's base."""
        self._bytes = 0
        self._recently_verified: OrderedDict[bytes, None] = OrderedDict()
        """Hashes of transactions whose signatures verified outside admission (in a block),
        oldest first; at most RECENTLY_VERIFIED."""
        self._share_count = self.config.share_count
        self._share_bytes = self.config.share_bytes

    def __len__(self) -> int:
        return len(self._by_hash)

    def __contains__(self, tx_hash: object) -> bool:
        return tx_hash in self._by_hash

    @property
    def size_bytes(self) -> int:
        return self._bytes

    @property
    def gapped_count(self) -> int:
        """Pending transactions that cannot execute until a lower nonce arrives."""
        return len(self._gapped)

    @property
    def verified(self) -> Container[bytes]:
        """Hashes whose signatures this node has checked: the pending transactions (checked at
        admission) and the recently verified ones (`remember_verified`). A live view."""
        return _Verified(self._by_hash, self._recently_verified)

    def remember_verified(self, transactions: Iterable[SignedTransaction]) -> None:
        """Note that these transactions' signatures verified (a valid block's, checked by its
        execution), so that admitting one of them later, or executing it again, does not check
        the signature a second time. A bounded LRU of hashes (`RECENTLY_VERIFIED`)."""
        recent, pending = self._recently_verified, self._by_hash
        for tx in transactions:
            if tx.hash in pending:
                continue
            recent[tx.hash] = None
            recent.move_to_end(tx.hash)
        while len(recent) > RECENTLY_VERIFIED:
            recent.popitem(last=False)

    @property
    def by_hash(self) -> Mapping[bytes, SignedTransaction]:
        """Pending transactions by hash (a live read-only view)."""
        return self._by_hash

    def get(self, tx_hash: bytes) -> SignedTransaction | None:
        return self._by_hash.get(tx_hash)

    def admitted_at(self, tx_hash: bytes) -> float | None:
        """When this node admitted the pending transaction `tx_hash` (None if not pending)."""
        return self._admitted.get(tx_hash)

    def next_nonce(self, sender: bytes, committed_nonce: int) -> int:
        """The first nonce after the sender's consecutive pending run from `committed_nonce`."""
        queue = self._queues.get(sender)
        if queue is None:
            return committed_nonce
        if queue.base == committed_nonce:
            return queue.ready_end
        nonce = committed_nonce
        while nonce in queue.txs:
            nonce += 1
        return nonce

    def is_above_share(self, sender: bytes) -> bool:
        return sender in self._over

    # --- admission ---------------------------------------------------------------------------

    def admit(self, tx: SignedTransaction, lookup: AccountLookup) -> None:
        """Admit `tx` or raise MempoolRejected. Expired transactions are dropped and the
        sender's queue is synced to its committed nonce first (as any call at this time would);
        beyond that a refused transaction changes nothing."""
        now = self._clock()
        self._expire(now)
        if tx.hash in self._by_hash:
            raise MempoolRejected("duplicate", f"transaction {tx.hash.hex()} is already pending")
        if tx.chain_id != self.chain_id:
            raise MempoolRejected(
                "wrong_chain", f"transaction is for chain {tx.chain_id!r}, not {self.chain_id!r}"
            )
        sender = tx.sender_address
        account = lookup(sender)
        if account is None:
            raise MempoolRejected(
                "unknown_account", f"sender {format_address(sender)} is not registered"
            )
        if tx.nonce < account.nonce:
            raise MempoolRejected(
                "nonce_too_low", f"nonce {tx.nonce} already used; account nonce is {account.nonce}"
            )
        if tx.nonce >= account.nonce + self.config.nonce_window:
            raise MempoolRejected(
                "nonce_too_high",
                f"nonce {tx.nonce} is more than {self.config.nonce_window} ahead of "
                f"account nonce {account.nonce}",
            )
        queue = self._queues.get(sender)
        if queue is not None and queue.base != account.nonce:
            self._rebase(sender, queue, account.nonce, now)  # the chain moved on: sync first
            queue = self._queues.get(sender)
        next_nonce = account.nonce if queue is None else queue.ready_end
        if queue is not None and tx.nonce in queue.txs:
            raise MempoolRejected(
                "nonce_pending", f"another transaction with nonce {tx.nonce} is already pending"
            )
        if tx.nonce > next_nonce + self.config.max_nonce_gap:
            raise MempoolRejected(
                "nonce_gap",
                f"nonce {tx.nonce} is more than {self.config.max_nonce_gap} above the sender's "
                f"next nonce {next_nonce} (account nonce {account.nonce} plus pending ones)",
            )
        if queue is not None and len(queue.txs) >= self.config.max_per_sender:
            raise MempoolRejected(
                "sender_limit", f"sender has {len(queue.txs)} pending transactions (the limit)"
            )
        victims = self._plan_room(tx, queue, tx.nonce == next_nonce)
        if tx.hash not in self._recently_verified and not verify_signature(
            tx.sender, tx.signing_bytes(self.genesis_hash), tx.signature
        ):
            raise MempoolRejected(
                "invalid_signature",
                f"signature does not verify for {tx.describe()} on chain {self.chain_id!r} with "
                f"genesis {self.genesis_hash.hex()[:16]}... (another key, or another network)",
            )
        for victim in victims:
            self._remove(victim, now)
        self._insert(tx, account.nonce, now)

    def _plan_room(
        self, tx: SignedTransaction, queue: _Queue | None, executable: bool
    ) -> list[bytes]:
        """The hashes to evict so that `tx` fits (none if it fits); raises `mempool_full` if
        it may not displace anything or the displaceable transactions free too little. Changes
        nothing (beyond dropping stale heap entries): the caller evicts after the signature
        has verified."""
        config = self.config
        size = len(tx.encoded)
        need_count = len(self._by_hash) + 1 - config.max_transactions
        need_bytes = self._bytes + size - config.max_bytes
        if need_count <= 0 and need_bytes <= 0:
            return []
        full = f"the mempool is full ({len(self._by_hash)} transactions, {self._bytes} bytes)"
        if not executable:
            raise MempoolRejected(
                "mempool_full", f"{full} and nonce {tx.nonce} is not the sender's next nonce"
            )
        held, held_bytes = (0, 0) if queue is None else (len(queue.txs), queue.size)
        if held + 1 > self._share_count or held_bytes + size > self._share_bytes:
            raise MempoolRejected(
                "mempool_full",
                f"{full} and the sender holds {held} transactions ({held_bytes} bytes), "
                f"its share is {config.share_count} ({config.share_bytes} bytes)",
            )
        victims: list[bytes] = []
        for tx_hash in self._gapped:  # oldest gapped first
            if need_count <= 0 and need_bytes <= 0:
                return victims
            victims.append(tx_hash)
            need_count -= 1
            need_bytes -= len(self._by_hash[tx_hash].encoded)
        if need_count > 0 or need_bytes > 0:
            victims.extend(self._plan_over_share(need_count, need_bytes, fast=not victims))
        return victims

    def _plan_over_share(self, need_count: int, need_bytes: int, fast: bool) -> list[bytes]:
        """Highest-nonce ready transactions of the senders above their share, the one furthest
        above first, each down to (never below) its share, until `need_*` are met. All gapped
        transactions are already planned away, so only ready runs count. `fast` (the pool held
        no gapped transaction): the furthest sender comes from a lazy heap in O(log n) and
        nearly always suffices; otherwise the k senders above their share are ranked, O(k log k)
        with k at most about 2 / sender_share."""
        if fast:
            furthest = self._furthest_over_share()
            if furthest is not None:
                victims, left_count, left_bytes = self._excess(furthest, need_count, need_bytes)
                if left_count <= 0 and left_bytes <= 0:
                    return victims
        ranked = []
        for sender in self._over:
            queue = self._queues[sender]
            count, size = queue.ready_count, queue.size - queue.gapped_size
            if count > self._share_count or size > self._share_bytes:
                ranked.append((-self._load(count, size), sender))
        ranked.sort()
        victims = []
        for _, sender in ranked:
            taken, need_count, need_bytes = self._excess(sender, need_count, need_bytes)
            victims += taken
            if need_count <= 0 and need_bytes <= 0:
                return victims
        raise MempoolRejected(
            "mempool_full",
            f"the mempool is full ({len(self._by_hash)} transactions, {self._bytes} bytes) "
            "and no gapped transaction or sender above its share is left to displace",
        )

    def _excess(
        self, sender: bytes, need_count: int, need_bytes: int
    ) -> tuple[list[bytes], int, int]:
        """The sender's highest ready nonces while it is above its share and room is needed;
        returns them and the room still needed."""
        queue = self._queues[sender]
        count, size = queue.ready_count, queue.size - queue.gapped_size
        top = queue.ready_end - 1
        victims = []
        while (need_count > 0 or need_bytes > 0) and (
            count > self._share_count or size > self._share_bytes
        ):
            victim = queue.txs[top]
            victims.append(victim.hash)
            need_count, need_bytes = need_count - 1, need_bytes - len(victim.encoded)
            count, size, top = count - 1, size - len(victim.encoded), top - 1
        return victims, need_count, need_bytes

    def _load(self, count: int, size: int) -> float:
        """How far a holding is from its share (above 1: above its share)."""
        return max(count / self._share_count, size / self._share_bytes)

    def _furthest_over_share(self) -> bytes | None:
        """The sender furthest above its share, from the lazy heap (stale entries, whose load
        is no longer the sender's, are dropped on the way)."""
        heap = self._over_heap
        while heap:
            negative_load, sender = heap[0]
            queue = self._queues.get(sender)
            if (
                queue is not None
                and sender in self._over
                and self._load(len(queue.txs), queue.size) == -negative_load
            ):
                return sender
            heapq.heappop(heap)
        return None

    # --- selection, commits, the request timer ----------------------------------------------

    def select(self, max_count: int, next_nonce: NonceLookup) -> list[SignedTransaction]:
        """Up to `max_count` candidates: each sender's run of consecutive nonces from
        `next_nonce(sender)`, senders interleaved round-robin in order of first arrival."""
        self._expire(self._clock())
        runs: list[list[SignedTransaction]] = []
        for sender, queue in self._queues.items():
            nonce = next_nonce(sender)
            run = []
            while nonce in queue.txs:
                run.append(queue.txs[nonce])
                nonce += 1
            if run:
                runs.append(run)
        selected: list[SignedTransaction] = []
        depth = 0
        while len(selected) < max_count and runs:
            still = []
            for run in runs:
                if depth < len(run):
                    selected.append(run[depth])
                    if len(selected) >= max_count:
                        break
                    still.append(run)
            runs = still
            depth += 1
        return selected

    def remove_committed(
        self, transactions: Iterable[SignedTransaction], next_nonce: NonceLookup
    ) -> int:
        """Drop committed transactions and those their senders' nonces have passed, then
        expired ones. Returns how many committed or passed transactions were dropped."""
        now = self._clock()
        before = len(self._by_hash)
        committed = list(transactions)
        for sender in {tx.sender_address for tx in committed}:
            queue = self._queues.get(sender)
            if queue is not None:
                self._rebase(sender, queue, next_nonce(sender), now)
        for tx in committed:  # only if the chain's nonce did not pass it (never, in a valid block)
            if tx.hash in self._by_hash:
                self._remove(tx.hash, now)
        removed = before - len(self._by_hash)
        self._expire(now)
        return removed

    def oldest_ready_since(self, next_nonce: NonceLookup) -> float | None:
        """Admission time of the oldest pending transaction executable now (its nonce is
        `next_nonce(sender)`, the sender's committed nonce); None if there is none."""
        heap = self._ready
        deferred: list[tuple[float, bytes, bytes, int]] = []
        answer = None
        while heap:
            admitted, tx_hash, sender, nonce = heap[0]
            if self._admitted.get(tx_hash) == admitted:  # not left (and perhaps come back)
                committed = next_nonce(sender)
                if committed == nonce:
                    answer = admitted
                    break
                if committed < nonce:  # the caller's state is behind ours: not yet, keep it
                    deferred.append(heapq.heappop(heap))
                    continue
            heapq.heappop(heap)  # left the pool or passed by the chain: never again
        for entry in deferred:
            heapq.heappush(heap, entry)
        return answer

    # --- internals ---------------------------------------------------------------------------

    def _insert(self, tx: SignedTransaction, committed_nonce: int, now: float) -> None:
        sender = tx.sender_address
        queue = self._queues.get(sender)
        if queue is None:
            queue = self._queues[sender] = _Queue(committed_nonce, committed_nonce)
        size = len(tx.encoded)
        queue.txs[tx.nonce] = tx
        queue.size += size
        self._by_hash[tx.hash] = tx
        self._admitted[tx.hash] = now
        self._bytes += size
        if tx.nonce == queue.ready_end:
            self._extend(queue)
        else:
            self._gapped[tx.hash] = now
            queue.gapped_size += size
        self._push_head(sender, queue)
        self._update_share(sender, queue)

    def _remove(self, tx_hash: bytes, now: float) -> None:
        """Drop one pending transaction (expired, evicted or a leftover of a commit); the rest
        of its sender's run, if it was ready, becomes gapped from `now`."""
        tx = self._by_hash.pop(tx_hash)
        sender = tx.sender_address
        queue = self._queues[sender]
        size = len(tx.encoded)
        del queue.txs[tx.nonce]
        del self._admitted[tx_hash]
        queue.size -= size
        self._bytes -= size
        if self._gapped.pop(tx_hash, None) is not None:
            queue.gapped_size -= size
        elif queue.base <= tx.nonce < queue.ready_end:
            for nonce in range(tx.nonce + 1, queue.ready_end):
                demoted = queue.txs[nonce]
                self._gapped[demoted.hash] = now
                queue.gapped_size += len(demoted.encoded)
            queue.ready_end = tx.nonce
        if not queue.txs:
            del self._queues[sender]
            self._over.discard(sender)
        else:
            self._update_share(sender, queue)

    def _rebase(self, sender: bytes, queue: _Queue, base: int, now: float) -> None:
        """Move the sender's committed nonce to `base`: passed transactions go, gapped ones
        the new base reaches become ready."""
        if base < queue.base:  # the chain never lowers a nonce; rebuild rather than assume
            for tx in list(queue.txs.values()):
                self._gapped.pop(tx.hash, None)
            queue.base = queue.ready_end = base
            queue.gapped_size = 0
            for nonce, tx in sorted(queue.txs.items()):
                if nonce == queue.ready_end:
                    queue.ready_end += 1
                else:
                    self._gapped[tx.hash] = now
                    queue.gapped_size += len(tx.encoded)
        else:
            passed = (
                range(queue.base, base)
                if base - queue.base <= len(queue.txs)
                else [n for n in queue.txs if n < base]
            )
            for nonce in passed:
                gone = queue.txs.pop(nonce, None)
                if gone is None:
                    continue
                size = len(gone.encoded)
                del self._by_hash[gone.hash]
                del self._admitted[gone.hash]
                queue.size -= size
                self._bytes -= size
                if queue.gapped_size and self._gapped.pop(gone.hash, None) is not None:
                    queue.gapped_size -= size
            queue.base = base
            queue.ready_end = max(queue.ready_end, base)
            self._extend(queue)
        if not queue.txs:
            del self._queues[sender]
            self._over.discard(sender)
            return
        self._push_head(sender, queue)
        self._update_share(sender, queue)

    def _extend(self, queue: _Queue) -> None:
        """Grow the ready run over pending nonces from `ready_end` (they stop being gapped)."""
        while queue.ready_end in queue.txs:
            tx = queue.txs[queue.ready_end]
            if self._gapped.pop(tx.hash, None) is not None:
                queue.gapped_size -= len(tx.encoded)
            queue.ready_end += 1

    def _push_head(self, sender: bytes, queue: _Queue) -> None:
        head = queue.txs.get(queue.base)
        if head is None:
            return
        pushed = (head.hash, self._admitted[head.hash])
        if pushed == queue.head:
            return
        queue.head = pushed
        heapq.heappush(self._ready, (pushed[1], head.hash, sender, head.nonce))
        if len(self._ready) > 2 * len(self._queues) + 1024:  # stale entries: compact, O(senders)
            self._ready = [
                (self._admitted[tx.hash], tx.hash, address, tx.nonce)
                for address, pending in self._queues.items()
                if (tx := pending.txs.get(pending.base)) is not None
            ]
            heapq.heapify(self._ready)

    def _update_share(self, sender: bytes, queue: _Queue) -> None:
        if len(queue.txs) > self._share_count or queue.size > self._share_bytes:
            self._over.add(sender)
            heapq.heappush(self._over_heap, (-self._load(len(queue.txs), queue.size), sender))
            if len(self._over_heap) > 4 * len(self._over) + 64:
                self._over_heap = [
                    (-self._load(len(self._queues[s].txs), self._queues[s].size), s)
                    for s in self._over
                ]
                heapq.heapify(self._over_heap)
        else:
            self._over.discard(sender)

    def _expire(self, now: float) -> None:
        """Drop transactions past `max_age_s` and gapped ones past `gap_ttl_s` (both queues
        are in time order, so this stops at the first one still young enough)."""
        max_age, gap_ttl = self.config.max_age_s, self.config.gap_ttl_s
        while self._admitted:
            tx_hash, admitted = next(iter(self._admitted.items()))
            if now - admitted < max_age:
                break
            self._remove(tx_hash, now)
        while self._gapped:
            tx_hash, since = next(iter(self._gapped.items()))
            if now - since < gap_ttl:
                break
            self._remove(tx_hash, now)
