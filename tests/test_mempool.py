"""Mempool admission rules (one test_invalid_* each), selection order, eviction, displacement
when full, expiry by age, and the request timer's index (`oldest_ready_since`)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from contracts import TX_TYPES
from ledger.accounts import Account, get_account
from ledger.genesis import parse_genesis
from ledger.keys import PrivateKey
from ledger.transactions import SignedTransaction, Transfer, parse_transaction, sign_transaction
from secnode.network.devnet import dev_account_key, dev_genesis_document
from secnode.runtime.config import ConfigError, parse_config
from secnode.runtime.mempool import InvalidMempoolConfig, Mempool, MempoolConfig, MempoolRejected
from tests.chainkit import Chain


class Clock:
    """A settable clock for the mempool's injected `clock` (never goes backwards)."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _setup(**config: float) -> tuple[Chain, Mempool]:
    chain = Chain()
    return chain, Mempool(
        chain.genesis.chain_id,
        MempoolConfig(**config),  # type: ignore[arg-type]
        genesis_hash=chain.genesis.document_hash(),
    )


def _timed(clock: Clock, **config: float) -> tuple[Chain, Mempool]:
    chain = Chain()
    return chain, Mempool(
        chain.genesis.chain_id,
        MempoolConfig(**config),  # type: ignore[arg-type]
        clock,
        genesis_hash=chain.genesis.document_hash(),
    )


def _chain_with(accounts: list[str]) -> Chain:
    """The dev chain plus registered, funded member accounts named `accounts`."""
    document = dev_genesis_document()
    document["accounts"] += [
        {
            "name": name,
            "public_key": dev_account_key(name).public_key.hex(),
            "roles": ["member"],
            "balance": 10**6,
        }
        for name in accounts
    ]
    return Chain(genesis=parse_genesis(document, "test genesis"))


def _committed_nonce(chain: Chain):  # type: ignore[no-untyped-def]
    return lambda a: getattr(get_account(chain.state, a), "nonce", 0)


def _lookup(chain: Chain):  # type: ignore[no-untyped-def]
    return lambda address: get_account(chain.state, address)


def _transfer(chain: Chain, sender: str, nonce: int, amount: int = 1) -> SignedTransaction:
    return chain.sign(sender, "credit.transfer", Transfer(chain.address("sharer1"), amount), nonce)


def _reject(pool: Mempool, chain: Chain, tx: SignedTransaction, code: str) -> None:
    before = len(pool)
    with pytest.raises(MempoolRejected) as info:
        pool.admit(tx, _lookup(chain))
    assert info.value.code == code, str(info.value)
    assert len(pool) == before


def test_admit_select_and_evict() -> None:
    chain, pool = _setup()
    txs = [_transfer(chain, "buyer1", n) for n in range(3)] + [_transfer(chain, "buyer2", 0)]
    for tx in reversed(txs):
        pool.admit(tx, _lookup(chain))
    assert len(pool) == 4 and all(tx.hash in pool.verified for tx in txs)
    nonce = lambda a: get_account(chain.state, a).nonce  # type: ignore[union-attr]  # noqa: E731
    selected = pool.select(10, nonce)
    buyer1 = [t.nonce for t in selected if t.sender_address == chain.address("buyer1")]
    assert buyer1 == [0, 1, 2] and len(selected) == 4
    result = chain.block(selected[:2])
    removed = pool.remove_committed(result.block.transactions, nonce)
    assert removed == 2 and len(pool) == 2


def test_select_stops_at_nonce_gap() -> None:
    chain, pool = _setup()
    pool.admit(_transfer(chain, "buyer1", 0), _lookup(chain))
    pool.admit(_transfer(chain, "buyer1", 2), _lookup(chain))
    selected = pool.select(10, lambda a: 0)
    assert [t.nonce for t in selected] == [0]


def test_invalid_duplicate() -> None:
    chain, pool = _setup()
    tx = _transfer(chain, "buyer1", 0)
    pool.admit(tx, _lookup(chain))
    _reject(pool, chain, tx, "duplicate")


def test_invalid_wrong_chain() -> None:
    chain, pool = _setup()
    tx = sign_transaction(
        chain.key("buyer1"),
        "elsewhere",
        0,
        Transfer(chain.address("sharer1"), 1),
        genesis_hash=chain.genesis.document_hash(),
    )
    _reject(pool, chain, tx, "wrong_chain")


def test_invalid_unknown_sender() -> None:
    chain, pool = _setup()
    chain.extra_keys["ghost"] = PrivateKey.from_label("ghost")
    _reject(pool, chain, _transfer(chain, "ghost", 0), "unknown_account")


def test_invalid_nonce_too_low() -> None:
    chain, pool = _setup()
    chain.block([_transfer(chain, "buyer1", 0)])
    _reject(pool, chain, _transfer(chain, "buyer1", 0, 2), "nonce_too_low")


def test_invalid_nonce_too_high() -> None:
    chain, pool = _setup(nonce_window=5)
    _reject(pool, chain, _transfer(chain, "buyer1", 5), "nonce_too_high")


def test_invalid_same_nonce_pending() -> None:
    chain, pool = _setup()
    pool.admit(_transfer(chain, "buyer1", 0, 1), _lookup(chain))
    _reject(pool, chain, _transfer(chain, "buyer1", 0, 2), "nonce_pending")


def test_invalid_sender_limit() -> None:
    chain, pool = _setup(max_per_sender=2)
    for n in range(2):
        pool.admit(_transfer(chain, "buyer1", n), _lookup(chain))
    _reject(pool, chain, _transfer(chain, "buyer1", 2), "sender_limit")


def test_invalid_mempool_full() -> None:
    chain, pool = _setup(max_transactions=1)
    pool.admit(_transfer(chain, "buyer1", 0), _lookup(chain))
    _reject(pool, chain, _transfer(chain, "buyer2", 0), "mempool_full")


def test_invalid_signature() -> None:
    chain, pool = _setup()
    tx = _transfer(chain, "buyer1", 0)
    other = _transfer(chain, "buyer2", 0)
    forged = parse_transaction(tx.to_wire() | {"signature": other.signature}, TX_TYPES)
    _reject(pool, chain, forged, "invalid_signature")


def test_invalid_nonce_gap() -> None:
    chain, pool = _setup()
    _reject(pool, chain, _transfer(chain, "buyer1", 17), "nonce_gap")
    pool.admit(_transfer(chain, "buyer1", 16), _lookup(chain))  # gapped, within the bound
    for nonce in range(3):
        pool.admit(_transfer(chain, "buyer1", nonce), _lookup(chain))
    # the bound is from the sender's next nonce (3, after its pending run), not the account's
    pool.admit(_transfer(chain, "buyer1", 19), _lookup(chain))
    _reject(pool, chain, _transfer(chain, "buyer1", 20), "nonce_gap")
    assert pool.gapped_count == 2


def _attack(chain: Chain, pool: Mempool, attackers: list[str], window: int) -> dict[str, int]:
    """Each attacker offers every nonce of its window: odd ones never send nonce 0 (gapped
    forever, the reported attack), even ones send a contiguous run. Returns refusals by code."""
    refused: dict[str, int] = {}
    for index, name in enumerate(attackers):
        for nonce in range(1 if index % 2 else 0, window):
            try:
                pool.admit(_transfer(chain, name, nonce), _lookup(chain))
            except MempoolRejected as exc:
                refused[exc.code] = refused.get(exc.code, 0) + 1
    return refused


def test_squatting_accounts_cannot_lock_out_an_honest_sender() -> None:
    """Finding 6, at the default ratios scaled down 50x (per-sender cap 2 % of the pool): 60
    accounts each offer every nonce they may. Before the fix the pool filled with never-
    executable transactions and an honest sender got `mempool_full`."""
    attackers = [f"attacker{i}" for i in range(60)]
    chain = _chain_with(attackers)
    pool = Mempool(
        chain.genesis.chain_id,
        MempoolConfig(max_transactions=1_000, max_per_sender=20, nonce_window=20),
        genesis_hash=chain.genesis.document_hash(),
    )
    refused = _attack(chain, pool, attackers, 20)
    assert len(pool) == 1_000, refused  # the attack does fill the pool
    honest = _transfer(chain, "buyer1", 0)
    pool.admit(honest, _lookup(chain))
    assert honest.hash in pool and len(pool) <= 1_000
    # the gapped transactions were capped at admission and go first when the pool is full
    assert refused.get("nonce_gap", 0) == 30 * (19 - 16)
    selected = pool.select(2_000, _committed_nonce(chain))
    assert honest in selected


def test_full_pool_displaces_gapped_first_then_the_largest_sender() -> None:
    chain, pool = _setup(max_transactions=10, max_per_sender=8, sender_share=0.3)  # share 3
    lookup = _lookup(chain)
    gapped = _transfer(chain, "buyer2", 5)
    pool.admit(gapped, lookup)
    big = [_transfer(chain, "buyer1", n) for n in range(6)]  # 6 > share 3
    small = [_transfer(chain, "buyer3", n) for n in range(3)]  # at its share
    for tx in big + small:
        pool.admit(tx, lookup)
    assert len(pool) == 10 and pool.gapped_count == 1
    pool.admit(_transfer(chain, "sharer1", 0), lookup)
    assert gapped.hash not in pool and pool.gapped_count == 0
    pool.admit(_transfer(chain, "sharer2", 0), lookup)  # now the youngest of the largest goes
    assert big[5].hash not in pool and all(tx.hash in pool for tx in big[:5] + small)
    pool.admit(_transfer(chain, "sharer1", 1), lookup)
    assert big[4].hash not in pool and len(pool) == 10
    remaining = pool.select(20, _committed_nonce(chain))
    assert [t.nonce for t in remaining if t.sender_address == chain.address("buyer1")] == [
        0,
        1,
        2,
        3,
    ]


def test_invalid_mempool_full_for_gapped_or_over_share() -> None:
    chain, pool = _setup(max_transactions=4, sender_share=0.5)  # share 2
    lookup = _lookup(chain)
    for nonce in range(4):
        pool.admit(_transfer(chain, "buyer1", nonce), lookup)
    _reject(pool, chain, _transfer(chain, "buyer2", 1), "mempool_full")  # gapped: may not displace
    pool.admit(_transfer(chain, "buyer2", 0), lookup)
    pool.admit(_transfer(chain, "buyer2", 1), lookup)
    _reject(pool, chain, _transfer(chain, "buyer2", 2), "mempool_full")  # buyer2 at its share
    _reject(pool, chain, _transfer(chain, "buyer3", 0), "mempool_full")  # nobody above share
    assert len(pool) == 4


def test_invalid_signature_evicts_nothing() -> None:
    chain, pool = _setup(max_transactions=2)
    lookup = _lookup(chain)
    gapped = _transfer(chain, "buyer1", 3)
    pool.admit(gapped, lookup)
    pool.admit(_transfer(chain, "buyer2", 0), lookup)
    tx = _transfer(chain, "buyer3", 0)
    forged = parse_transaction(tx.to_wire() | {"signature": gapped.signature}, TX_TYPES)
    _reject(pool, chain, forged, "invalid_signature")
    assert gapped.hash in pool


def test_expiry_by_age_and_gapped_sooner() -> None:
    clock = Clock()
    chain, pool = _timed(clock, max_age_s=600, gap_ttl_s=60)
    lookup = _lookup(chain)
    ready = _transfer(chain, "buyer1", 0)
    gapped = _transfer(chain, "buyer2", 2)
    pool.admit(ready, lookup)
    pool.admit(gapped, lookup)
    clock.advance(59)
    pool.select(10, _committed_nonce(chain))
    assert len(pool) == 2
    clock.advance(1)
    pool.select(10, _committed_nonce(chain))
    assert gapped.hash not in pool and ready.hash in pool
    clock.advance(540)
    pool.remove_committed([], _committed_nonce(chain))
    assert len(pool) == 0 and pool.size_bytes == 0


def test_a_filled_gap_stops_the_gap_timer() -> None:
    clock = Clock()
    chain, pool = _timed(clock, gap_ttl_s=60)
    lookup = _lookup(chain)
    later = _transfer(chain, "buyer1", 1)
    pool.admit(later, lookup)
    clock.advance(30)
    pool.admit(_transfer(chain, "buyer1", 0), lookup)
    clock.advance(100)
    pool.admit(_transfer(chain, "buyer2", 0), lookup)
    assert later.hash in pool and pool.gapped_count == 0


def test_an_expired_ready_transaction_leaves_the_rest_of_its_run_gapped() -> None:
    clock = Clock()
    chain, pool = _timed(clock, max_age_s=600, gap_ttl_s=60)
    lookup = _lookup(chain)
    first = _transfer(chain, "buyer1", 0)
    pool.admit(first, lookup)
    clock.advance(300)
    rest = [_transfer(chain, "buyer1", n) for n in (1, 2)]
    for tx in rest:
        pool.admit(tx, lookup)
    clock.advance(300)  # nonce 0 expires; 1 and 2 can no longer execute
    pool.select(10, _committed_nonce(chain))
    assert first.hash not in pool and pool.gapped_count == 2
    assert pool.next_nonce(chain.address("buyer1"), 0) == 0
    pool.admit(_transfer(chain, "buyer1", 0, 7), lookup)  # resent: the run is whole again
    assert pool.gapped_count == 0 and len(pool.select(10, _committed_nonce(chain))) == 3


def test_oldest_ready_since_tracks_executable_transactions() -> None:
    clock = Clock()
    chain, pool = _timed(clock)
    lookup, committed = _lookup(chain), _committed_nonce(chain)
    assert pool.oldest_ready_since(committed) is None
    pool.admit(_transfer(chain, "buyer1", 1), lookup)  # gapped: not executable
    assert pool.oldest_ready_since(committed) is None
    clock.advance(10)
    first = _transfer(chain, "buyer1", 0)
    pool.admit(first, lookup)
    clock.advance(10)
    pool.admit(_transfer(chain, "buyer2", 0), lookup)
    assert pool.oldest_ready_since(committed) == 1_010
    result = chain.block([first])
    pool.remove_committed(result.block.transactions, committed)
    # buyer1's next executable one (nonce 1) was admitted first of all
    assert pool.oldest_ready_since(committed) == 1_000
    clock.advance(1_000)  # everything expires
    pool.select(10, committed)
    assert pool.oldest_ready_since(committed) is None


def test_oldest_ready_since_forgets_an_expired_then_resent_transaction() -> None:
    clock = Clock()
    chain, pool = _timed(clock, max_age_s=600)
    tx = _transfer(chain, "buyer1", 0)
    pool.admit(tx, _lookup(chain))
    clock.advance(600)
    pool.admit(tx, _lookup(chain))  # the old copy expired; this is a new admission
    assert pool.oldest_ready_since(_committed_nonce(chain)) == 1_600
    assert pool.admitted_at(tx.hash) == 1_600


def test_oldest_ready_since_sees_a_head_that_expired_and_came_back() -> None:
    """Found by the property test: the sender's queue outlives its expired head (a gapped
    transaction keeps it), the same transaction is sent again, and the request timer must see
    it as executable since its new admission."""
    clock = Clock()
    chain, pool = _timed(clock, max_age_s=600, gap_ttl_s=3_600)
    committed = _committed_nonce(chain)
    head = _transfer(chain, "buyer1", 0)
    pool.admit(head, _lookup(chain))
    assert pool.oldest_ready_since(committed) == 1_000
    clock.advance(300)
    pool.admit(_transfer(chain, "buyer1", 2), _lookup(chain))  # gapped: keeps the queue alive
    clock.advance(300)
    pool.select(10, committed)  # the head expires; the gapped one is younger
    assert pool.oldest_ready_since(committed) is None
    pool.admit(head, _lookup(chain))
    assert pool.oldest_ready_since(committed) == 1_600


def test_oldest_ready_since_index_stays_small() -> None:
    """Stale heap entries (heads that committed) are compacted, not kept forever."""
    chain, pool = _setup()
    buyer1 = chain.address("buyer1")
    nonces = {buyer1: 0}

    def lookup(address: bytes) -> Account | None:
        """The chain's account with the nonce this test commits (no blocks are built)."""
        found = get_account(chain.state, address)
        return None if found is None else replace(found, nonce=nonces.get(address, found.nonce))

    def committed(address: bytes) -> int:
        return nonces.get(address, 0)

    pool.admit(_transfer(chain, "buyer2", 0), _lookup(chain))  # stays at the top of the heap
    for nonce in range(1_200):
        tx = _transfer(chain, "buyer1", nonce)
        pool.admit(tx, lookup)
        nonces[buyer1] = nonce + 1
        pool.remove_committed([tx], committed)
        assert pool.oldest_ready_since(committed) is not None
    assert len(pool._ready) <= 2 * 1 + 1024 + 1


def test_invalid_mempool_full_when_displacing_would_take_a_sender_below_its_share() -> None:
    """buyer1 is above its share only through a gapped transaction: once that is displaced,
    its ready run is at its share and none of it may go, so a large transaction that needs
    more room than the gapped one frees is refused."""
    chain = Chain()
    lookup = _lookup(chain)
    run = [_transfer(chain, "buyer1", n) for n in (0, 1)]
    gapped = _transfer(chain, "buyer1", 3)
    other = _transfer(chain, "buyer2", 0)
    held = [*run, gapped, other]
    config = MempoolConfig(
        max_transactions=5, max_bytes=sum(len(t.encoded) for t in held), sender_share=0.5
    )
    pool = Mempool(chain.genesis.chain_id, config, genesis_hash=chain.genesis.document_hash())
    for tx in held:
        pool.admit(tx, lookup)
    assert pool.is_above_share(chain.address("buyer1")) and config.share_count == 2
    large = chain.sign(
        "buyer3", "credit.transfer", Transfer(chain.address("sharer1"), 1, "x" * 140), 0
    )
    assert len(large.encoded) > len(gapped.encoded)
    _reject(pool, chain, large, "mempool_full")
    assert all(tx.hash in pool for tx in held)


def test_mempool_config_from_the_node_config() -> None:
    config = parse_config({"name": "n", "mempool": {"max_nonce_gap": 4, "gap_ttl_s": 5}}, "t")
    built = config.mempool.mempool_config()
    assert built.max_nonce_gap == 4 and built.gap_ttl_s == 5
    assert built.max_age_s == MempoolConfig().max_age_s  # one source of defaults


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ({"sender_share": 0.0001}, "mempool.sender_share"),
        ({"sender_share": 1.5}, "mempool.sender_share"),
        ({"max_nonce_gap": -1}, "mempool.max_nonce_gap"),
        ({"max_age_s": 0}, "mempool.max_age_s"),
        ({"gap_ttl_s": -1.0}, "mempool.gap_ttl_s"),
        ({"max_bytes": 100}, "mempool.max_bytes"),
    ],
)
def test_invalid_mempool_config(section: dict[str, float], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        parse_config({"name": "n", "mempool": section}, "config.toml")


def test_invalid_mempool_config_in_code() -> None:
    with pytest.raises(InvalidMempoolConfig, match="max_nonce_gap must be >= 0, not -1"):
        MempoolConfig(max_nonce_gap=-1)
    with pytest.raises(InvalidMempoolConfig, match="sender_share"):
        MempoolConfig(sender_share=0)
