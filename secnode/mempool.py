"""The mempool: admitted, signature-checked transactions waiting for a block.

Admission (`admit`) checks, cheapest first, and rejects with a `MempoolRejected` whose `code`
names the rule: size, duplicate, chain id, registered sender, nonce window (from the sender's
committed nonce to nonce + `nonce_window`), same nonce already pending, per-sender and global
caps, and finally the signature. The signature of an admitted transaction is never checked again:
`verified` is the set of admitted hashes that block building and block validation consult.

Eviction: `remove_committed` drops the transactions of a committed block and any pending
transaction whose nonce the chain has passed (it can never execute any more).

Invariants: every pending transaction passed admission; per sender at most one per nonce;
`len(self) <= max_transactions` and `bytes <= max_bytes`.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass

from ledger.accounts import Account
from ledger.keys import format_address, verify_signature
from ledger.transactions import SignedTransaction


@dataclass(frozen=True, slots=True)
class MempoolConfig:
    """Bounds of the mempool (documented defaults)."""

    max_transactions: int = 50_000
    """Pending transactions in all."""
    max_bytes: int = 64 * 1024 * 1024
    """Encoded bytes of all pending transactions."""
    max_per_sender: int = 1_000
    """Pending transactions of one sender."""
    nonce_window: int = 1_000
    """How far ahead of the committed nonce a transaction may be."""


class MempoolRejected(Exception):
    """Admission refused; `code` is stable, the message says what and why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


AccountLookup = Callable[[bytes], Account | None]


class Mempool:
    """Pending transactions by hash and by (sender, nonce)."""

    def __init__(
        self, chain_id: str, config: MempoolConfig | None = None, *, genesis_hash: bytes
    ) -> None:
        self.chain_id = chain_id
        self.genesis_hash = genesis_hash
        """Part of the signed bytes: a transaction signed for another network fails here."""
        self.config = config or MempoolConfig()
        self._by_hash: dict[bytes, SignedTransaction] = {}
        self._by_sender: dict[bytes, dict[int, SignedTransaction]] = {}
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._by_hash)

    def __contains__(self, tx_hash: object) -> bool:
        return tx_hash in self._by_hash

    @property
    def size_bytes(self) -> int:
        return self._bytes

    @property
    def verified(self) -> Container[bytes]:
        """Hashes whose signatures were checked at admission (a live view, not a copy)."""
        return self._by_hash

    def next_nonce(self, sender: bytes, committed_nonce: int) -> int:
        """The first nonce after the sender's consecutive pending run from `committed_nonce`."""
        queue = self._by_sender.get(sender, {})
        nonce = committed_nonce
        while nonce in queue:
            nonce += 1
        return nonce

    @property
    def by_hash(self) -> Mapping[bytes, SignedTransaction]:
        """Pending transactions by hash (a live read-only view)."""
        return self._by_hash

    def get(self, tx_hash: bytes) -> SignedTransaction | None:
        return self._by_hash.get(tx_hash)

    def admit(self, tx: SignedTransaction, lookup: AccountLookup) -> None:
        """Admit `tx` or raise MempoolRejected (then nothing changed)."""
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
        queue = self._by_sender.get(sender, {})
        if tx.nonce in queue:
            raise MempoolRejected(
                "nonce_pending", f"another transaction with nonce {tx.nonce} is already pending"
            )
        if len(queue) >= self.config.max_per_sender:
            raise MempoolRejected(
                "sender_limit", f"sender has {len(queue)} pending transactions (the limit)"
            )
        if (
            len(self._by_hash) >= self.config.max_transactions
            or self._bytes + len(tx.encoded) > self.config.max_bytes
        ):
            raise MempoolRejected("mempool_full", "the mempool is full; retry later")
        if not verify_signature(tx.sender, tx.signing_bytes(self.genesis_hash), tx.signature):
            raise MempoolRejected(
                "invalid_signature",
                f"signature does not verify for {tx.describe()} on chain {self.chain_id!r} with "
                f"genesis {self.genesis_hash.hex()[:16]}... (another key, or another network)",
            )
        self._by_hash[tx.hash] = tx
        self._by_sender.setdefault(sender, {})[tx.nonce] = tx
        self._bytes += len(tx.encoded)

    def select(self, max_count: int, next_nonce: Callable[[bytes], int]) -> list[SignedTransaction]:
        """Up to `max_count` candidates: each sender's run of consecutive nonces from
        `next_nonce(sender)`, senders interleaved round-robin in order of first arrival."""
        runs: list[list[SignedTransaction]] = []
        for sender, queue in self._by_sender.items():
            nonce = next_nonce(sender)
            run = []
            while nonce in queue:
                run.append(queue[nonce])
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
        self, transactions: Iterable[SignedTransaction], next_nonce: Callable[[bytes], int]
    ) -> int:
        """Drop committed transactions and those their senders' nonces have passed."""
        senders: set[bytes] = set()
        removed = 0
        for tx in transactions:
            senders.add(tx.sender_address)
            if self._discard(tx):
                removed += 1
        for sender in senders:
            queue = self._by_sender.get(sender)
            if not queue:
                continue
            floor = next_nonce(sender)
            for nonce in [n for n in queue if n < floor]:
                if self._discard(queue[nonce]):
                    removed += 1
        return removed

    def _discard(self, tx: SignedTransaction) -> bool:
        pending = self._by_hash.pop(tx.hash, None)
        if pending is None:
            return False
        self._bytes -= len(pending.encoded)
        queue = self._by_sender[pending.sender_address]
        del queue[pending.nonce]
        if not queue:
            del self._by_sender[pending.sender_address]
        return True
