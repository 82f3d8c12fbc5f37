"""Mempool admission rules (one test_invalid_* each), selection order and eviction."""

from __future__ import annotations

import pytest

from ledger.accounts import get_account
from ledger.keys import PrivateKey
from ledger.transactions import SignedTransaction, Transfer, parse_transaction, sign_transaction
from secnode.mempool import Mempool, MempoolConfig, MempoolRejected
from tests.chainkit import Chain


def _setup(**config: int) -> tuple[Chain, Mempool]:
    chain = Chain()
    pool = Mempool(
        chain.genesis.chain_id, MempoolConfig(**config), genesis_hash=chain.genesis.document_hash()
    )
    return chain, pool


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
        "credit.transfer",
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
    forged = parse_transaction(tx.to_wire() | {"signature": other.signature})
    _reject(pool, chain, forged, "invalid_signature")
