"""The node clock: `SEC_CLOCK_OFFSET_S` shifts every time the node reads, proposals included."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from ledger.transactions import Transfer, sign_transaction
from secnode.network.devnet import DEV_CHAIN_ID, dev_account_key
from secnode.runtime.clock import CLOCK_OFFSET_VARIABLE, NodeClock, clock_from_environment
from secnode.runtime.config import ConfigError
from tests.nodekit import ScriptedPeers, make_network, name_of, open_node, start_driver


def test_unset_offset_is_wall_time() -> None:
    clock = clock_from_environment({})
    before = time.time()
    now = clock()
    assert clock.offset_s == 0.0
    assert before <= now <= time.time()


@pytest.mark.parametrize(("raw", "offset"), [("2.5", 2.5), ("-0.75", -0.75), (" 30 ", 30.0)])
def test_offset_is_read_from_the_environment(raw: str, offset: float) -> None:
    assert clock_from_environment({CLOCK_OFFSET_VARIABLE: raw}).offset_s == offset


@pytest.mark.parametrize("raw", ["soon", "nan", "inf", "-inf", "1e999", "1,5"])
def test_invalid_offset_names_the_variable_and_value(raw: str) -> None:
    with pytest.raises(ConfigError) as caught:
        clock_from_environment({CLOCK_OFFSET_VARIABLE: raw})
    assert CLOCK_OFFSET_VARIABLE in str(caught.value)
    assert repr(raw) in str(caught.value)


def test_invalid_offset_stops_node_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from secnode.runtime.node import Node

    network = make_network(tmp_path)
    monkeypatch.setenv(CLOCK_OFFSET_VARIABLE, "ten")
    with pytest.raises(ConfigError, match=CLOCK_OFFSET_VARIABLE):
        Node.open(network / "node0")


def test_node_open_takes_the_offset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from secnode.runtime.node import Node

    network = make_network(tmp_path)
    monkeypatch.setenv(CLOCK_OFFSET_VARIABLE, "-120.5")
    node = Node.open(network / "node0")
    try:
        assert node.clock == NodeClock(-120.5)
        assert node.clock() <= time.time() - 120
    finally:
        node.store.close()


@pytest.mark.asyncio
async def test_proposals_carry_the_shifted_time(tmp_path: Path) -> None:
    """A primary whose clock runs an hour behind stamps its block an hour behind wall time."""
    network = make_network(tmp_path)
    offset = -3600.0
    probe = open_node(network, "node0")
    primary = name_of(probe.replica.primary)
    probe.store.close()
    node = open_node(network, primary, clock=NodeClock(offset))
    peers = ScriptedPeers()
    try:
        async with asyncio.TaskGroup() as tasks:
            driver, _ = start_driver(node, peers, tasks)
            buyer = dev_account_key("buyer1")
            target = dev_account_key("buyer2").address
            tx = sign_transaction(
                buyer,
                DEV_CHAIN_ID,
                0,
                Transfer(target, 1),
                genesis_hash=node.genesis.document_hash(),
            )
            before = time.time()
            await node.submit(tx)
            driver.feed(node.replica.on_pending_transactions)
            after = time.time()
            driver.stop()
    finally:
        node.store.close()
    blocks = peers.proposals()
    assert blocks, "the primary proposed nothing"
    stamped = blocks[0].header.timestamp_ms
    assert int((before + offset) * 1000) - 1 <= stamped <= int((after + offset) * 1000) + 1
