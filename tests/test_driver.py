"""The consensus driver over a real node (LevelDB, ledger, replica) and scripted peers.

Proves that nothing a peer sends, and no failing consensus step, can end the node's task group.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from pathlib import Path

import pytest

from consensus.actions import Action, CommitBlock, RequestCatchUp, Send
from consensus.messages import Prepare, PrePrepare, decode_message
from consensus.replica import Replica
from contracts import TX_TYPES
from ledger.blocks import decode_block
from ledger.encoding import encode
from ledger.keys import PublicKey
from p2p import InvalidPayload, PeerNotConnected, RequestRejected
from secnode.network.devnet import validator_key
from secnode.runtime.app import LedgerApp
from secnode.runtime.driver import ConsensusDriver
from secnode.runtime.node import Node
from tests.nodekit import (
    NAMES,
    ManualClock,
    ScriptedPeers,
    certify,
    make_network,
    open_node,
    primary_name,
    public_key,
    start_driver,
)


def other_block(network: Path, name: str, clock: ManualClock) -> tuple[bytes, bytes]:
    """(digest, payload) of an empty block 1 built by validator `name` on genesis."""
    node = open_node(network, name, clock=clock)
    try:
        proposal = node.app.make_proposal(1, node.app.head.hash(), clock(), required=True)
        assert proposal is not None
        return proposal.digest, proposal.payload
    finally:
        node.store.close()


async def propose_two_blocks(node: Node, clock: ManualClock, peers: ScriptedPeers) -> None:
    """Make `node` (the primary of view 0) propose heights 1 and 2 (empty heartbeat blocks)."""
    assert node.driver is not None
    interval = node.config.consensus.empty_block_interval_s
    for _ in range(2):
        clock.advance(interval)
        node.driver.feed(node.replica.on_tick)
    heights = [block.height for block in peers.proposals()]
    assert heights == [1, 2], f"primary proposed heights {heights}"


@pytest.mark.asyncio
async def test_primary_does_not_build_on_a_parent_it_cannot_execute(tmp_path: Path) -> None:
    """Finding 12: a primary with its own blocks 1 and 2 in flight learns (by catch-up) that
    another block 1 was committed. Its block 2 now stands on a parent the ledger dropped; the
    next proposal step must not ask the ledger to build on it (old code: InvalidProposal
    'parent ... is neither committed nor validated' escaped the step)."""
    network = make_network(tmp_path)
    clock = ManualClock(time.time())
    primary = primary_name(network)
    others = tuple(n for n in NAMES if n != primary)
    digest, payload = other_block(network, others[0], clock)
    node = open_node(network, primary, clock=clock)
    peers = ScriptedPeers()
    try:
        async with asyncio.TaskGroup() as tasks:
            driver, commits = start_driver(node, peers, tasks)
            await propose_two_blocks(node, clock, peers)
            own = peers.proposals()
            certificate = certify(1, digest, others)
            driver.feed(
                functools.partial(node.replica.on_catch_up_block, 1, digest, payload, certificate)
            )
            assert [c.block.hash() for c in commits] == [digest]
            assert own[1].header.prev_hash not in node.app.speculative
            clock.advance(node.config.consensus.empty_block_interval_s)
            driver.feed(node.replica.on_tick)  # old code: raises InvalidProposal here
            driver.feed(node.replica.on_pending_transactions)
            driver.stop()
    finally:
        node.store.close()
    assert driver.step_failures == 0
    assert [b.height for b in peers.proposals()] == [1, 2], "proposed on an unexecutable parent"


@pytest.mark.asyncio
async def test_restarted_primary_catching_up_does_not_crash(tmp_path: Path) -> None:
    """Finding 12 as reported: the primary proposes 1 and 2, is killed, restarts into its old
    view (re-reading its own PRE-PREPAREs), and catch-up brings the block 1 the others
    committed. Neither the catch-up task nor a later tick may raise, and it proposes nothing on
    its orphaned block 2."""
    network = make_network(tmp_path)
    clock = ManualClock(time.time())
    primary = primary_name(network)
    others = tuple(n for n in NAMES if n != primary)
    digest, payload = other_block(network, others[0], clock)
    node = open_node(network, primary, clock=clock)
    before = ScriptedPeers()
    try:
        async with asyncio.TaskGroup() as tasks:
            driver, _ = start_driver(node, before, tasks)
            await propose_two_blocks(node, clock, before)
            driver.stop()
    finally:
        node.store.close()
    restarted = open_node(network, primary, clock=clock)
    answer = encode([[1, payload, certify(1, digest, others).to_wire()]])
    after = ScriptedPeers(answers={public_key(others[0]): [answer]})
    try:
        async with asyncio.TaskGroup() as tasks:
            driver, commits = start_driver(restarted, after, tasks)
            await catch_up(driver, others[0])
            assert [c.block.hash() for c in commits] == [digest]
            clock.advance(restarted.config.consensus.empty_block_interval_s)
            driver.feed(restarted.replica.on_tick)
            driver.stop()
    finally:
        restarted.store.close()
    assert driver.step_failures == 0
    assert {b.height for b in after.proposals()} <= {1, 2}, "proposed on an orphaned parent"


@pytest.mark.asyncio
async def test_ledger_app_says_which_parents_it_can_build_on(tmp_path: Path) -> None:
    network = make_network(tmp_path)
    clock = ManualClock(time.time())
    node = open_node(network, "node0", clock=clock)
    try:
        app: LedgerApp = node.app
        genesis = app.head.hash()
        assert app.can_build_on(1, genesis)
        assert not app.can_build_on(2, genesis), "genesis is not at height 1"
        assert not app.can_build_on(1, b"\x07" * 32), "an unknown parent"
        proposal = app.make_proposal(1, genesis, clock.advance(1), required=True)
        assert proposal is not None
        assert app.can_build_on(2, proposal.digest)
        assert decode_block(proposal.payload, TX_TYPES).height == 1
    finally:
        node.store.close()


# --- finding 1: nothing a peer answers can end the node ------------------------------------------

BEHIND, BAD, GOOD = "node3", "node1", "node2"
SIGNERS = ("node0", "node1", "node2")


async def catch_up(driver: ConsensusDriver, *ask: str) -> None:
    """Run one catch-up round for height 1 asking `ask` in order; wait until it ends."""
    request = RequestCatchUp(1, 1, tuple(validator_key(name).address for name in ask))
    before = asyncio.all_tasks()
    driver.feed(lambda now: [request])
    started = asyncio.all_tasks() - before
    assert len(started) == 1, "the driver did not start one catch-up task"
    async with asyncio.timeout(10):
        await asyncio.gather(*started)
    assert not driver.syncing


def garbage_answers(digest: bytes, payload: bytes) -> dict[str, bytes]:
    good_certificate = certify(1, digest, SIGNERS).to_wire()
    return {
        "undecodable": b"\xc1\xc1\xc1",
        "not a list": encode({"blocks": 1}),
        "too many blocks": encode([[1, payload, good_certificate]] * 2),
        "entry not a triple": encode([[1, payload]]),
        "corrupt block": encode([[1, b"\x93not a block", good_certificate]]),
        "wrong height": encode([[2, payload, good_certificate]]),
        "boolean height": encode([[True, payload, good_certificate]]),
        "malformed certificate": encode([[1, payload, {"height": 1}]]),
        "certificate of one signer": encode([[1, payload, certify(1, digest, (BAD,)).to_wire()]]),
        "certificate of another block": encode(
            [[1, payload, certify(1, b"\x01" * 32, SIGNERS).to_wire()]]
        ),
    }


@pytest.mark.parametrize(
    "kind",
    [
        "undecodable",
        "not a list",
        "too many blocks",
        "entry not a triple",
        "corrupt block",
        "wrong height",
        "boolean height",
        "malformed certificate",
        "certificate of one signer",
        "certificate of another block",
    ],
)
@pytest.mark.asyncio
async def test_invalid_catch_up_answer_is_charged_and_the_next_peer_asked(
    tmp_path: Path, kind: str
) -> None:
    network = make_network(tmp_path)
    clock = ManualClock(time.time())
    digest, payload = other_block(network, BAD, clock)
    good = encode([[1, payload, certify(1, digest, SIGNERS).to_wire()]])
    node = open_node(network, BEHIND, clock=clock)
    peers = ScriptedPeers(
        answers={
            public_key(BAD): [garbage_answers(digest, payload)[kind]],
            public_key(GOOD): [good],
        }
    )
    try:
        async with asyncio.TaskGroup() as tasks:
            driver, commits = start_driver(node, peers, tasks)
            await catch_up(driver, BAD, GOOD)
            driver.stop()
    finally:
        node.store.close()
    assert [p for p, _ in peers.penalties] == [public_key(BAD)], peers.penalties
    assert peers.requested == [public_key(BAD), public_key(GOOD)]
    assert [c.block.hash() for c in commits] == [digest]


@pytest.mark.asyncio
async def test_unexpected_error_handling_one_answer_drops_only_that_peer(
    tmp_path: Path,
) -> None:
    network = make_network(tmp_path)
    clock = ManualClock(time.time())
    digest, payload = other_block(network, BAD, clock)
    good = encode([[1, payload, certify(1, digest, SIGNERS).to_wire()]])
    node = open_node(network, BEHIND, clock=clock)
    peers = ScriptedPeers(
        answers={
            public_key(BAD): [ValueError("a bug somewhere below the request")],
            public_key(GOOD): [good],
        }
    )
    try:
        async with asyncio.TaskGroup() as tasks:
            driver, commits = start_driver(node, peers, tasks)
            await catch_up(driver, BAD, GOOD)
            driver.stop()
    finally:
        node.store.close()
    assert peers.requested == [public_key(BAD), public_key(GOOD)]
    assert peers.penalties == [], "a failure of ours is not charged to the peer"
    assert [c.block.hash() for c in commits] == [digest]


@pytest.mark.asyncio
async def test_invalid_catch_up_request_is_charged(tmp_path: Path) -> None:
    network = make_network(tmp_path)
    node = open_node(network, BEHIND)
    try:
        async with asyncio.TaskGroup() as tasks:
            driver, _ = start_driver(node, ScriptedPeers(), tasks)
            for request in (b"\xc1", encode([1, 2]), encode({"from": 1})):
                with pytest.raises(InvalidPayload):
                    driver.serve_catch_up(request)
            with pytest.raises(RequestRejected, match="bad range"):
                driver.serve_catch_up(encode({"from": 5, "to": 1}))
            driver.stop()
    finally:
        node.store.close()


# --- a failing consensus step never leaves a callback or a task ----------------------------------


@pytest.mark.asyncio
async def test_failing_step_in_a_callback_is_logged_and_the_node_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Fault injection: the replica's proposal step raises (a bug). The call_soon callback
    (`_notify_pending`) must not hand the exception to asyncio, and the node keeps working."""
    network = make_network(tmp_path)
    clock = ManualClock(time.time())
    node = open_node(network, primary_name(network), clock=clock)
    peers = ScriptedPeers()
    escaped: list[dict[str, object]] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: escaped.append(context))

    def broken(self: Replica, now: float) -> list[Action]:
        raise RuntimeError("injected bug in the proposal step")

    try:
        async with asyncio.TaskGroup() as tasks:
            driver, _ = start_driver(node, peers, tasks)
            with monkeypatch.context() as patch:
                patch.setattr(Replica, "on_pending_transactions", broken)
                driver.on_transactions_pending()
                notified = asyncio.Event()
                asyncio.get_running_loop().call_soon(notified.set)  # runs after the callback
                await notified.wait()
            assert driver.step_failures == 1
            clock.advance(node.config.consensus.empty_block_interval_s)
            driver.feed(node.replica.on_tick)  # the node still proposes
            driver.stop()
    finally:
        asyncio.get_running_loop().set_exception_handler(None)
        node.store.close()
    assert escaped == []
    assert "injected bug" in caplog.text
    assert [b.height for b in peers.proposals()] == [1]


@pytest.mark.asyncio
async def test_failing_commit_stops_the_node_cleanly(tmp_path: Path) -> None:
    """A decided block that cannot be stored or executed here is fail-stop, reported once."""
    network = make_network(tmp_path)
    clock = ManualClock(time.time())
    digest, payload = other_block(network, BAD, clock)
    node = open_node(network, BEHIND, clock=clock)
    reasons: list[str] = []
    certificate = certify(1, digest, SIGNERS)
    try:
        async with asyncio.TaskGroup() as tasks:
            driver, commits = start_driver(node, ScriptedPeers(), tasks)
            driver.on_fatal = reasons.append
            driver.feed(lambda now: [CommitBlock(1, digest, b"\x93corrupt", certificate)])
            driver.feed(lambda now: [CommitBlock(1, digest, payload, certificate)])  # ignored
    finally:
        node.store.close()
    assert len(reasons) == 1
    assert "carrying out consensus actions failed" in reasons[0]
    assert driver.failure == reasons[0]
    assert commits == []


@pytest.mark.asyncio
async def test_unappliable_validator_change_stops_the_node(tmp_path: Path) -> None:
    network = make_network(tmp_path)
    node = open_node(network, BEHIND)
    reasons: list[str] = []
    try:
        async with asyncio.TaskGroup() as tasks:
            driver, _ = start_driver(node, ScriptedPeers(), tasks)
            driver.on_fatal = reasons.append
            validators = node.replica.schedule.at(1)
            driver.feed(functools.partial(driver._report_change, 0, 1, validators))
    finally:
        node.store.close()
    assert len(reasons) == 1
    assert "validator change committed at height 0 (effective at 1)" in reasons[0]


@pytest.mark.asyncio
async def test_failing_trust_precompute_stays_inside_its_task(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    network = make_network(tmp_path)
    node = open_node(network, BEHIND)

    def broken() -> None:
        raise RuntimeError("injected trust precompute failure")

    try:
        async with asyncio.TaskGroup() as tasks:
            node._tasks = tasks
            node._in_worker_thread(broken)
    finally:
        node.store.close()
    assert "work in a worker thread failed" in caplog.text


@pytest.mark.asyncio
async def test_mutated_consensus_messages_never_break_the_backup(tmp_path: Path) -> None:
    """A peer sending 400 seeded mutations of a genuine PRE-PREPARE: each is refused (and
    charged) or ignored, no step fails, and the genuine one is still prepared afterwards."""
    network = make_network(tmp_path)
    clock = ManualClock(time.time())
    primary = primary_name(network)
    backup = next(n for n in NAMES if n != primary)
    proposer = open_node(network, primary, clock=clock)
    sent = ScriptedPeers()
    try:
        async with asyncio.TaskGroup() as tasks:
            driver, _ = start_driver(proposer, sent, tasks)
            clock.advance(proposer.config.consensus.empty_block_interval_s)
            driver.feed(proposer.replica.on_tick)
            driver.stop()
    finally:
        proposer.store.close()
    (genuine,) = [p for p in sent.broadcasts if isinstance(decode_message(p), PrePrepare)]
    rng = random.Random(11)
    node = open_node(network, backup, clock=clock)
    received = ScriptedPeers()
    try:
        async with asyncio.TaskGroup() as tasks:
            driver, _ = start_driver(node, received, tasks)
            for _ in range(400):
                mutated = bytearray(genuine)
                for _ in range(rng.randint(1, 4)):
                    mutated[rng.randrange(len(mutated))] = rng.randrange(256)
                if rng.random() < 0.2:
                    del mutated[rng.randrange(len(mutated)) :]
                if bytes(mutated) != genuine:
                    driver.on_consensus_bytes(public_key(primary), bytes(mutated))
            assert driver.step_failures == 0
            driver.on_consensus_bytes(public_key(primary), genuine)
            driver.stop()
    finally:
        node.store.close()
    assert [m.seq for m in received.messages() if isinstance(m, Prepare)] == [1]
    assert received.penalties, "garbage from the primary was never charged"


@pytest.mark.asyncio
async def test_failing_step_in_a_timer_is_logged_and_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection: the replica's tick raises when the driver's timer (`call_later`)
    fires. The exception stays inside the driver and a retry tick is scheduled."""
    network = make_network(tmp_path)
    node = open_node(network, BEHIND)
    escaped: list[dict[str, object]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda loop, context: escaped.append(context))
    ticked = asyncio.Event()

    def broken(self: Replica, now: float) -> list[Action]:
        ticked.set()
        raise RuntimeError("injected bug in the tick")

    try:
        async with asyncio.TaskGroup() as tasks:
            driver, _ = start_driver(node, ScriptedPeers(), tasks)
            with monkeypatch.context() as patch:
                patch.setattr(Replica, "on_tick", broken)
                driver._set_timer(node.clock())  # due now: fires on the next loop iteration
                async with asyncio.timeout(10):
                    await ticked.wait()
                done = asyncio.Event()
                loop.call_soon(done.set)
                await done.wait()
            assert driver.step_failures == 1
            assert driver._retry is not None, "no retry tick after a failed tick"
            driver.stop()
    finally:
        loop.set_exception_handler(None)
        node.store.close()
    assert escaped == []


@pytest.mark.asyncio
async def test_invalid_gossiped_transaction_is_refused_without_raising(tmp_path: Path) -> None:
    network = make_network(tmp_path)
    node = open_node(network, BEHIND)
    try:
        for garbage in (b"", b"\xc1", encode([1, 2, 3]), b"\x00" * 70_000):
            assert node._on_gossiped_transaction(public_key(GOOD), garbage) is False
    finally:
        node.store.close()


class _ClosingLinks(ScriptedPeers):
    """Every link looks connected but is closing: sends raise, as `P2PHost` does."""

    def send_consensus(self, peer: PublicKey, payload: bytes) -> None:
        raise PeerNotConnected("node9 is disconnecting: test")


@pytest.mark.asyncio
async def test_send_to_a_closing_link_is_a_lost_message_not_a_failing_step(
    tmp_path: Path,
) -> None:
    """Seen by the nemesis before the driver fix: `is_connected` said yes, the link closed
    before the send, and `PeerNotConnected` escaped the step. It is a lost message."""
    network = make_network(tmp_path)
    clock = ManualClock(time.time())
    node = open_node(network, primary_name(network), clock=clock)
    peers = _ClosingLinks()
    try:
        async with asyncio.TaskGroup() as tasks:
            driver, _ = start_driver(node, peers, tasks)
            clock.advance(node.config.consensus.empty_block_interval_s)
            driver.feed(node.replica.on_tick)  # an empty block: a PRE-PREPARE to broadcast
            message = peers.messages()[0]
            other = validator_key(BEHIND).address
            driver.feed(lambda now: [Send(other, message)])
            assert driver.step_failures == 0
            assert driver.failure is None
            driver.stop()
    finally:
        node.store.close()
