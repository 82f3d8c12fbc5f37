"""Validator-set changes: one bound for ledger and replica, one schedule in both, and history
that survives a restart (docs/protocol.md §13.3; docs/security.md finding 5)."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path

import pytest

from consensus.config import ReplicaConfig
from consensus.errors import ConfigError
from consensus.sim.cluster import Cluster, cluster_config
from contracts import TX_TYPES
from ledger.accounts import get_parameter
from ledger.chain import build_block
from ledger.execution import Executor
from ledger.genesis import load_genesis, parse_genesis
from ledger.parameters import MIN_VALIDATOR_CHANGE_DELAY
from ledger.store import open_chain
from ledger.store_leveldb import LevelDBStore
from ledger.transactions import ParameterSet, ValidatorUpdate, sign_transaction
from ledger.validator_state import current_validators, pending_validator_changes, validators_at
from ledger.validators import ValidatorSet
from secnode.network.devnet import dev_account_key, dev_genesis_document, validator_key
from secnode.network.home import create_network
from secnode.runtime.config import load_config
from secnode.runtime.driver import ConsensusDriver
from secnode.runtime.node import Node
from tests.chainkit import Chain


def _chain(**parameters: int) -> Chain:
    document = dev_genesis_document()
    document["parameters"].update(parameters)
    return Chain(genesis=parse_genesis(document, "test genesis"))


def _add(chain: Chain, name: str) -> ValidatorUpdate:
    return ValidatorUpdate((validator_key(name).public_key,), ())


# --- one bound ---------------------------------------------------------------------------------


def test_invalid_param_set_below_the_replica_bound() -> None:
    chain = Chain()
    below = MIN_VALIDATOR_CHANGE_DELAY - 1
    receipt = chain.apply(
        chain.sign("admin", "param.set", ParameterSet("validator_change_delay", below))
    )
    assert receipt.code == "invalid_parameter"
    assert f"MIN_VALIDATOR_CHANGE_DELAY={MIN_VALIDATOR_CHANGE_DELAY}" in receipt.message
    assert get_parameter(chain.state, "validator_change_delay") == MIN_VALIDATOR_CHANGE_DELAY
    at_bound = ParameterSet("validator_change_delay", MIN_VALIDATOR_CHANGE_DELAY)
    assert chain.apply(chain.sign("admin", "param.set", at_bound)).ok


def test_replica_default_is_the_ledger_bound() -> None:
    config = ReplicaConfig(chain_id="sec-x", genesis_digest=bytes(32))
    assert config.min_validator_change_delay == MIN_VALIDATOR_CHANGE_DELAY


def test_invalid_replica_config_requiring_more_than_the_ledger_bound() -> None:
    with pytest.raises(ConfigError, match="exceeds the ledger's MIN_VALIDATOR_CHANGE_DELAY"):
        ReplicaConfig(
            chain_id="sec-x",
            genesis_digest=bytes(32),
            min_validator_change_delay=MIN_VALIDATOR_CHANGE_DELAY + 1,
        )


# --- one schedule ------------------------------------------------------------------------------


def test_later_update_never_replaces_a_pending_one_and_replicas_agree() -> None:
    """The delay is lowered while a change is pending, so a later update's plain effective
    height (h + delay) falls on the pending one's. The ledger schedules it one height later;
    replicas told of each change once (as `ConsensusDriver._commit` reports them: every pending
    effective height not reported before) hold the very same schedule."""
    chain = _chain(validator_change_delay=20)
    cluster = Cluster(4, config=cluster_config(min_validator_change_delay=8))
    cluster.start()
    reported: set[int] = set()
    plan = {
        1: [
            chain.sign("admin", "validator.update", _add(chain, "node4")),
            chain.sign("admin", "param.set", ParameterSet("validator_change_delay", 8)),
        ],
        2: [  # two updates in one block: each builds on the one before
            chain.sign("admin", "validator.update", _add(chain, "node5")),
            chain.sign("admin", "validator.update", _add(chain, "node6")),
        ],
        10: [chain.sign("admin", "validator.update", _add(chain, "node7"))],
    }
    for height in range(1, 11):
        result = chain.block(plan.get(height, []))
        assert all(r.ok for r in result.receipts), [r.message for r in result.receipts]
        cluster.run_until(lambda h=height: min(cluster.heights()) >= h, timeout=120)  # type: ignore[misc]
        for effective, validators in pending_validator_changes(chain.state):
            if effective in reported:
                continue
            reported.add(effective)
            for index in range(4):
                replica = cluster.replica(index)
                cluster.apply(
                    index, replica.on_validator_set(height, effective, validators, cluster.now)
                )
    effective_heights = [e for e, _ in pending_validator_changes(chain.state)]
    assert effective_heights == [21, 22, 23, 24]
    assert validators_at(chain.state, 24).size == 8
    for index in range(4):
        schedule = cluster.replica(index).schedule
        # The cluster's genesis set is its own; every scheduled change is the ledger's.
        assert list(schedule.entries[1:]) == pending_validator_changes(chain.state)
        for height in range(21, 40):
            assert schedule.at(height) == validators_at(chain.state, height), (index, height)


def test_update_after_a_lowered_delay_takes_effect_after_the_pending_one() -> None:
    chain = _chain(validator_change_delay=20)
    chain.block([chain.sign("admin", "validator.update", _add(chain, "node4"))])
    chain.block([chain.sign("admin", "param.set", ParameterSet("validator_change_delay", 8))])
    chain.block([chain.sign("admin", "validator.update", _add(chain, "node5"))])
    assert [(e, v.size) for e, v in pending_validator_changes(chain.state)] == [(21, 5), (22, 6)]


# --- a replica that cannot follow stops --------------------------------------------------------


def test_replica_refusing_a_committed_schedule_halts_the_node(tmp_path: Path) -> None:
    create_network(tmp_path, 4, dev=True)
    node = Node.open(tmp_path / "node0")
    try:

        async def report() -> None:
            async with asyncio.TaskGroup() as tasks:
                driver = ConsensusDriver(
                    node.replica,
                    node.app,
                    node.host,
                    node.metrics,
                    tasks,
                    lambda c, now: None,
                    on_fatal=node._on_fatal,
                )
                five = ValidatorSet.from_public_keys(
                    [validator_key(f"node{i}").public_key for i in range(5)]
                )
                # Effective 3 heights after the commit: less than the replica's bound of 8.
                driver.feed(functools.partial(driver._report_change, 0, 3, five))
                driver.feed(node.replica.on_tick)  # ignored: the driver has stopped

        asyncio.run(report())
    finally:
        node.store.close()
    assert node.failure is not None
    assert "cannot apply the validator change committed at height 0 (effective at 3)" in (
        node.failure
    )
    assert node._stop.is_set()


# --- history survives a restart ----------------------------------------------------------------


def _chain_with_a_validator_added(tmp_path: Path, height: int) -> tuple[Path, ValidatorSet]:
    """A node home whose LevelDB holds blocks 1..`height`: an admin adds node4 in block 1
    (effective at 9). Returns the home and the validator set before the change."""
    create_network(tmp_path, 4, dev=True)
    home = tmp_path / "node0"
    genesis = load_genesis(home / "genesis.json")
    data = home / load_config(home).data_dir
    store, state, head = open_chain(LevelDBStore(data), genesis, TX_TYPES)
    executor = Executor(genesis.chain_id, genesis.document_hash())
    update = sign_transaction(
        dev_account_key("admin"),
        genesis.chain_id,
        0,
        ValidatorUpdate((validator_key("node4").public_key,), ()),
        genesis_hash=genesis.document_hash(),
    )
    old = current_validators(state)
    for number in range(1, height + 1):
        result = build_block(
            executor,
            state,
            head,
            [update] if number == 1 else [],
            timestamp_ms=head.timestamp_ms + 1000,
            proposer=validator_key("node0").address,
            view=0,
        )
        store.commit_block(result.block, None, result.receipts, state.commit_block())
        head = result.block.header
    store.close()
    return home, old


def test_validators_of_past_heights_after_a_restart_come_from_the_store(tmp_path: Path) -> None:
    home, old = _chain_with_a_validator_added(tmp_path, 12)
    node = Node.open(home)  # the restart: everything below comes from LevelDB
    try:
        assert node.app.head.height == 12
        assert node.validators_at(5) == old
        assert node.validators_at(8) == old
        assert node.validators_at(9).size == 5
        assert node.validators_at(12) == node.validators_at(9) == current_validators(node.state)
        for height in range(1, 13):
            block = node.store.get_block(height)
            assert block is not None
            assert node.validators_at(height).hash() == block.header.validators_hash
    finally:
        node.store.close()


@pytest.mark.parametrize("restart_at", [8, 12])
def test_restarted_replica_schedule_covers_past_and_next_heights(
    tmp_path: Path, restart_at: int
) -> None:
    """A replica restarted just before a change (head = effective - 1) must use the new set at
    head + 1, and one restarted after it must certify old heights with the old set: its
    schedule comes from the committed state, not from the current set alone."""
    home, old = _chain_with_a_validator_added(tmp_path, restart_at)
    node = Node.open(home)
    try:
        schedule = node.replica.schedule
        assert schedule.at(8) == old
        assert schedule.at(9).size == 5
        assert schedule.at(restart_at + 1).size == 5
    finally:
        node.store.close()
