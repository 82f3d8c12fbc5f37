"""Trust epochs computed ahead of time (secnode.runtime.trust_precompute): the block that commits an
epoch uses the precomputed scores, and the chain is the same, root for root, as without them."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from contracts import build_executor, eigentrust_numpy
from contracts.epochs import epoch_fixed_after, get_epoch, get_pending
from contracts.orders import OrderConfirm, OrderPay, OrderShip
from contracts.trust import Attest, attestation_key
from secnode.runtime import trust_precompute
from secnode.runtime.trust_precompute import PrecomputedScores
from tests.orderkit import OrderChain, order_genesis, shipment

TOTAL = 2 * 1_000 + 500


def now(work: Callable[[], None]) -> None:
    """A 'worker thread' that runs the work at once (the node uses asyncio.to_thread)."""
    work()


def never(work: Callable[[], None]) -> None:
    """A worker that never gets to run (the precomputation is late)."""


def make_chain(cache: PrecomputedScores | None) -> OrderChain:
    chain = OrderChain(
        genesis=order_genesis(trust_epoch_blocks=10, trust_epoch_delay=3, attest_window_s=10_000)
    )
    if cache is not None:
        chain.executor = build_executor(
            chain.genesis.chain_id, chain.genesis.document_hash(), cache
        )
    return chain


def shop(chain: OrderChain) -> None:
    """One completed order and two attestations, in blocks at fixed times."""
    order_id = chain.create(buyer="buyer2", at_s=chain.now + 1)
    chain.send("buyer2", "order.pay", OrderPay(order_id, TOTAL))
    chain.send("merchant1", "order.ship", OrderShip(order_id, shipment("s")))
    chain.send("buyer2", "order.confirm", OrderConfirm(order_id))
    chain.run([], at_s=chain.now + 11)
    chain.send("buyer2", "trust.attest", Attest(order_id, chain.address("merchant1"), 1))
    chain.send("merchant1", "trust.attest", Attest(order_id, chain.address("buyer2"), 1))


def run_blocks(
    chain: OrderChain, until: int, cache: PrecomputedScores | None, spawn: Callable[..., None]
) -> list[bytes]:
    roots = []
    while chain.head.height < until:
        chain.run([])
        roots.append(chain.head.state_root)
        if cache is not None:
            cache.after_commit(chain.state, chain.head.height, spawn)
    return roots


def test_the_epoch_block_uses_the_precomputed_scores_and_the_chain_is_unchanged() -> None:
    cache = PrecomputedScores()
    plain, ahead = make_chain(None), make_chain(cache)
    shop(plain)
    shop(ahead)
    assert plain.head.state_root == ahead.head.state_root
    assert run_blocks(ahead, 25, cache, now) == run_blocks(plain, 25, None, now)
    assert cache.hits == 2  # the epochs fixed after blocks 10 and 20, committed in 13 and 23
    epoch = get_epoch(ahead.state)
    assert epoch is not None and epoch == get_epoch(plain.state) and epoch.epoch == 2


def test_a_late_precomputation_changes_nothing() -> None:
    cache = PrecomputedScores()
    plain, ahead = make_chain(None), make_chain(cache)
    shop(plain)
    shop(ahead)
    assert run_blocks(ahead, 15, cache, never) == run_blocks(plain, 15, None, never)
    assert cache.hits == 0


def test_the_prediction_is_the_epoch_the_next_block_fixes() -> None:
    chain = make_chain(None)
    shop(chain)
    run_blocks(chain, 9, None, now)
    assert epoch_fixed_after(chain.state, 9) is None
    chain.run([])
    predicted = epoch_fixed_after(chain.state, 10)
    chain.run([])
    _, (fixed,) = get_pending(chain.state)
    assert predicted == fixed


def test_leaves_that_do_not_match_the_inputs_root_are_never_used() -> None:
    cache = PrecomputedScores()
    chain = make_chain(cache)
    shop(chain)
    run_blocks(chain, 10, None, now)  # the cache has not seen the attestations yet
    # Corrupt a committed leaf behind the state's back: the worker must refuse it.
    key = attestation_key(0)
    original = chain.state.committed[key]
    chain.state.committed[key] = original[:-1] + bytes([original[-1] ^ 1])
    cache.after_commit(chain.state, 10, now)
    chain.state.committed[key] = original
    run_blocks(chain, 13, cache, now)
    assert cache.hits == 0
    assert get_epoch(chain.state) is not None
    # Refused inputs are dropped and replayed from the log (the first replay, inside the same
    # call, still read the corrupt leaf, so epoch 2 is refused too): epoch 3 is precomputed.
    run_blocks(chain, 33, cache, now)
    assert cache.hits == 1


def test_the_committing_block_waits_for_the_worker_already_computing_its_epoch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = PrecomputedScores()
    plain, ahead = make_chain(None), make_chain(cache)
    shop(plain)
    shop(ahead)
    entered, release = threading.Event(), threading.Event()
    compute = eigentrust_numpy.scores_from_columns

    def held(*args: Any) -> Any:
        entered.set()
        release.wait(30)
        return compute(*args)

    monkeypatch.setattr(trust_precompute, "scores_from_columns", held)
    workers: list[threading.Thread] = []

    def in_thread(work: Callable[[], None]) -> None:
        workers.append(threading.Thread(target=work))
        workers[-1].start()

    run_blocks(ahead, 10, cache, in_thread)
    assert entered.wait(30), "the worker never started epoch 1"
    # Whether the release comes before or while block 13 asks, the block gets the worker's
    # result instead of computing the epoch a second time.
    threading.Timer(0.2, release.set).start()
    assert run_blocks(ahead, 13, cache, in_thread)[-1] == run_blocks(plain, 13, None, now)[-1]
    assert cache.hits == 1
    for worker in workers:
        worker.join(30)


def test_after_a_restart_the_inputs_are_rebuilt_and_a_pending_epoch_is_precomputed() -> None:
    plain = make_chain(None)
    shop(plain)
    run_blocks(plain, 13, None, now)
    cache = PrecomputedScores()  # a node started with epoch 1 fixed (block 11) but not committed
    restarted = make_chain(cache)
    shop(restarted)
    run_blocks(restarted, 11, None, now)
    assert len(get_pending(restarted.state)[1]) == 1
    assert run_blocks(restarted, 13, cache, now)[-1] == plain.head.state_root
    assert cache.hits == 1


def test_the_worker_falls_back_to_python_integers_when_an_int64_bound_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(trust_precompute, "scores_from_columns", lambda *_: None)
    cache = PrecomputedScores()
    plain, ahead = make_chain(None), make_chain(cache)
    shop(plain)
    shop(ahead)
    assert run_blocks(ahead, 13, cache, now) == run_blocks(plain, 13, None, now)
    assert cache.hits == 1
