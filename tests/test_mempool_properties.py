"""Mempool invariants under random admissions, commits and time (a hypothesis state machine).

Five senders offer transactions at random nonces (ahead of, at, or beyond their next nonce) and
sizes into a small pool where both caps bind; blocks commit what `select` offers, the chain
also moves nonces on with transactions this pool never saw, and the clock advances. A model
recomputes from scratch, after every step, what the pool must hold. Checked:

* `len <= max_transactions` and `size_bytes <= max_bytes`, and `size_bytes` is the sum;
* every admission outcome is the model's: the first broken rule's code, or admitted; when full,
  admitted exactly when the transaction is executable, its sender under its share, and the
  gapped transactions plus the excess of senders above their share free enough room; so a
  sender under its share with an executable nonce is admitted whenever the pool holds a gapped
  transaction or a sender above its share (and bytes are not what is short);
* a displaced transaction was gapped, or among the youngest of a sender above its share;
* the gapped transactions are exactly those above their sender's run; none is older (as gapped)
  than `gap_ttl_s`, none older than `max_age_s`, after any call that expires;
* `oldest_ready_since` is the oldest admission time of a transaction at its sender's committed
  nonce.
"""

from __future__ import annotations

from functools import cache

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from ledger.accounts import Account
from ledger.keys import PrivateKey
from ledger.transactions import SignedTransaction, Transfer, sign_transaction
from secnode.runtime.mempool import Mempool, MempoolConfig, MempoolRejected

CHAIN = "sec-devnet"
GENESIS_HASH = bytes(range(32))
"""Any fixed genesis hash: the pool checks signatures against its own."""
KEYS = [PrivateKey.from_label(f"mempool-property-{i}") for i in range(5)]
CONFIG = MempoolConfig(
    max_transactions=10,
    max_bytes=1_600,
    max_per_sender=4,
    nonce_window=8,
    max_nonce_gap=3,
    sender_share=0.2,  # share_count 2
    max_age_s=100,
    gap_ttl_s=30,
)
MEMOS = (0, 60, 140)
EXTERNAL_MEMO = 7
"""A memo length no admitted transaction uses: the chain's own transactions at a nonce."""


@cache
def signed(sender: int, nonce: int, memo: int) -> SignedTransaction:
    body = Transfer(KEYS[(sender + 1) % len(KEYS)].address, 1, "m" * memo if memo else None)
    return sign_transaction(KEYS[sender], CHAIN, nonce, body, genesis_hash=GENESIS_HASH)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class MempoolMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        self.pool = Mempool(CHAIN, CONFIG, self.clock, genesis_hash=GENESIS_HASH)
        self.committed = dict.fromkeys(range(len(KEYS)), 0)
        self.gapped_since: dict[bytes, float] = {}
        self.expired_now = False

    # --- the model ---------------------------------------------------------------------------

    def _index(self, address: bytes) -> int:
        return next(i for i, key in enumerate(KEYS) if key.address == address)

    def lookup(self, address: bytes) -> Account | None:
        index = self._index(address)
        return Account(bytes(KEYS[index].public_key), self.committed[index], 10**9, 1, "")

    def committed_nonce(self, address: bytes) -> int:
        return self.committed[self._index(address)]

    def pending(self) -> dict[int, dict[int, SignedTransaction]]:
        by_sender: dict[int, dict[int, SignedTransaction]] = {i: {} for i in range(len(KEYS))}
        for tx in self.pool.by_hash.values():
            queue = by_sender[self._index(tx.sender_address)]
            assert tx.nonce not in queue, "two pending transactions with one nonce"
            queue[tx.nonce] = tx
        return by_sender

    def next_nonce(self, queue: dict[int, SignedTransaction], sender: int) -> int:
        nonce = self.committed[sender]
        while nonce in queue:
            nonce += 1
        return nonce

    def gapped(self) -> set[bytes]:
        return {
            tx.hash
            for sender, queue in self.pending().items()
            for nonce, tx in queue.items()
            if nonce > self.next_nonce(queue, sender)
        }

    def excess(self, queue: dict[int, SignedTransaction], sender: int) -> list[SignedTransaction]:
        """The ready transactions a sender above its share may lose, youngest first."""
        ready = [queue[n] for n in range(self.committed[sender], self.next_nonce(queue, sender))]
        count, size, lost = len(ready), sum(len(t.encoded) for t in ready), []
        while ready and (count > CONFIG.share_count or size > CONFIG.share_bytes):
            tx = ready.pop()
            lost.append(tx)
            count, size = count - 1, size - len(tx.encoded)
        return lost

    def expected(self, tx: SignedTransaction, sender: int) -> str | None:
        pending = self.pending()
        queue = pending[sender]
        next_nonce = self.next_nonce(queue, sender)
        if tx.hash in self.pool:
            return "duplicate"
        if tx.nonce >= self.committed[sender] + CONFIG.nonce_window:
            return "nonce_too_high"
        if tx.nonce in queue:
            return "nonce_pending"
        if tx.nonce > next_nonce + CONFIG.max_nonce_gap:
            return "nonce_gap"
        if len(queue) >= CONFIG.max_per_sender:
            return "sender_limit"
        size = len(tx.encoded)
        need_count = len(self.pool) + 1 - CONFIG.max_transactions
        need_bytes = self.pool.size_bytes + size - CONFIG.max_bytes
        if need_count <= 0 and need_bytes <= 0:
            return None
        held_bytes = sum(len(t.encoded) for t in queue.values())
        under = len(queue) + 1 <= CONFIG.share_count and held_bytes + size <= CONFIG.share_bytes
        gapped = [self.pool.by_hash[h] for h in self.gapped()]
        excess = [t for s, q in pending.items() for t in self.excess(q, s)]
        if under and tx.nonce == next_nonce and need_bytes <= 0 and (gapped or excess):
            return None  # the brief's rule, stated on its own
        free = gapped + excess
        enough = len(free) >= need_count and sum(len(t.encoded) for t in free) >= need_bytes
        return None if under and tx.nonce == next_nonce and enough else "mempool_full"

    def _expire(self) -> None:
        self.pool.select(0, self.committed_nonce)  # selection expires; the clock stands still
        self.expired_now = True

    # --- rules -------------------------------------------------------------------------------

    @rule(
        offers=st.lists(
            st.tuples(
                st.integers(0, len(KEYS) - 1),
                st.integers(0, 4) | st.integers(0, 9),
                st.sampled_from(MEMOS),
            ),
            min_size=1,
            max_size=8,
        )
    )
    def admit(self, offers: list[tuple[int, int, int]]) -> None:
        self._expire()
        for sender, ahead, memo in offers:
            self._admit_one(signed(sender, self.committed[sender] + ahead, memo), sender)

    def _admit_one(self, tx: SignedTransaction, sender: int) -> None:
        want = self.expected(tx, sender)
        before = set(self.pool.by_hash)
        displaceable = self.gapped() | {
            t.hash for s, q in self.pending().items() for t in self.excess(q, s)
        }
        try:
            self.pool.admit(tx, self.lookup)
            got = None
        except MempoolRejected as exc:
            got = exc.code
        assert got == want, (got, want, tx.describe())
        left = before - set(self.pool.by_hash)
        event(f"admit: {got or 'admitted'}{' displacing' if left else ''}")
        assert left <= displaceable, "displaced a protected transaction"
        assert got is None or not left, "a refused admission changed the pool"

    @rule(count=st.integers(0, 6))
    def commit_block(self, count: int) -> None:
        chosen = self.pool.select(count, self.committed_nonce)
        for tx in chosen:
            sender = self._index(tx.sender_address)
            assert tx.nonce == self.committed[sender], "selected a transaction out of order"
            self.committed[sender] += 1
        self.pool.remove_committed(chosen, self.committed_nonce)
        assert not any(tx.hash in self.pool for tx in chosen)
        self.expired_now = True

    @rule(sender=st.integers(0, len(KEYS) - 1))
    def chain_moves_on(self, sender: int) -> None:
        """Another node's transaction at this sender's nonce commits."""
        tx = signed(sender, self.committed[sender], EXTERNAL_MEMO)
        self.committed[sender] += 1
        self.pool.remove_committed([tx], self.committed_nonce)
        self.expired_now = True

    @rule(seconds=st.sampled_from([1.0, 10.0, 29.0, 30.0, 31.0, 70.0, 100.0]))
    def time_passes(self, seconds: float) -> None:
        self.clock.now += seconds
        self.expired_now = False

    @rule()
    def expire(self) -> None:
        self._expire()

    # --- invariants --------------------------------------------------------------------------

    @invariant()
    def caps_hold(self) -> None:
        assert len(self.pool) <= CONFIG.max_transactions
        assert self.pool.size_bytes <= CONFIG.max_bytes
        assert self.pool.size_bytes == sum(len(t.encoded) for t in self.pool.by_hash.values())

    def _track_gapped(self) -> set[bytes]:
        """Note when each gapped transaction was first seen gapped (the clock stands still
        within a step, so that is when it became gapped)."""
        gapped = self.gapped()
        for tx_hash in gapped - set(self.gapped_since):
            self.gapped_since[tx_hash] = self.clock.now
        self.gapped_since = {
            # one that left and was admitted again within the step is gapped since then
            h: max(t, self.pool.admitted_at(h) or t)
            for h, t in self.gapped_since.items()
            if h in gapped
        }
        return gapped

    @invariant()
    def gapped_are_exactly_those_above_the_run(self) -> None:
        assert self.pool.gapped_count == len(self._track_gapped())
        for sender, queue in self.pending().items():
            assert all(nonce >= self.committed[sender] for nonce in queue)

    @invariant()
    def nothing_outlives_its_age(self) -> None:
        self._track_gapped()
        if not self.expired_now:
            return
        for tx_hash in self.pool.by_hash:
            admitted = self.pool.admitted_at(tx_hash)
            assert admitted is not None and self.clock.now - admitted < CONFIG.max_age_s
        for since in self.gapped_since.values():
            assert self.clock.now - since < CONFIG.gap_ttl_s

    @invariant()
    def oldest_ready_is_the_oldest_executable(self) -> None:
        times = [
            self.pool.admitted_at(queue[self.committed[sender]].hash)
            for sender, queue in self.pending().items()
            if self.committed[sender] in queue
        ]
        want = min((t for t in times if t is not None), default=None)
        assert self.pool.oldest_ready_since(self.committed_nonce) == want


MempoolMachine.TestCase.settings = settings(stateful_step_count=40, deadline=None)
TestMempoolProperties = MempoolMachine.TestCase
