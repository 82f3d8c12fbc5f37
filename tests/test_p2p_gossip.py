"""Transaction gossip over real sockets: relayed across a line, deduplicated in a mesh."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from ledger.keys import PrivateKey
from p2p import P2PConfig, P2PHost, PeerAddress, Tuning, allowlist
from tests.p2p_testing import Recorder

CHAIN = "sec-gossip-test"
KEYS = [PrivateKey.from_label(f"gossip-{i}") for i in range(4)]
PUBLIC = [key.public_key for key in KEYS]
ALLOWED = allowlist(PUBLIC)
TUNING = Tuning(reconnect_initial_delay=0.02, reconnect_max_delay=0.2)


@contextlib.asynccontextmanager
async def network(
    links: list[tuple[int, int]], recorders: list[Recorder]
) -> AsyncIterator[list[P2PHost]]:
    """Hosts 0..3 where (i, j) in `links` means i dials j (j > i, so j is already listening);
    returns once every link is up at both ends."""
    hosts: list[P2PHost | None] = [None] * len(KEYS)
    async with contextlib.AsyncExitStack() as stack:
        for index in reversed(range(len(KEYS))):
            peers = tuple(
                PeerAddress(PUBLIC[j], "127.0.0.1", _started(hosts[j]).listen_port)
                for i, j in links
                if i == index
            )
            config = P2PConfig(CHAIN, ALLOWED, peers=peers, tuning=TUNING)
            host = P2PHost(config, KEYS[index], recorders[index].handlers())
            hosts[index] = await stack.enter_async_context(host.running())
        started = [_started(host) for host in hosts]
        async with asyncio.timeout(5):
            for i, j in links:
                await started[i].wait_for_peer(PUBLIC[j])
                await started[j].wait_for_peer(PUBLIC[i])
        yield started


def _started(host: P2PHost | None) -> P2PHost:
    if host is None:
        raise AssertionError("hosts start from the highest index down")
    return host


@pytest.mark.asyncio
async def test_transaction_crosses_a_line_of_four_exactly_once_per_node() -> None:
    recorders = [Recorder() for _ in KEYS]
    async with network([(0, 1), (1, 2), (2, 3)], recorders) as hosts:
        assert PUBLIC[3] not in hosts[0].connected_peers()
        assert hosts[0].broadcast_transaction(b"tx: alice pays bob 5") == 1
        await recorders[3].wait_until(
            lambda: b"tx: alice pays bob 5" in recorders[3].transaction_payloads(), "the far end"
        )
        # Flush every link in the other direction: per-link order means any stray copy of the
        # first transaction would have arrived before this marker.
        hosts[3].broadcast_transaction(b"marker")
        await recorders[0].wait_until(
            lambda: recorders[0].transaction_payloads() == [b"marker"], "the marker"
        )
        for index in (1, 2, 3):
            deliveries = recorders[index].transactions
            marker = (
                [b"marker"] if index < 3 else []
            )  # node 3 sent it, so its handler never sees it
            assert [d.payload for d in deliveries] == [b"tx: alice pays bob 5", *marker]
            assert deliveries[0].peer == PUBLIC[index - 1]
        assert sum(host.stats.transactions_duplicate for host in hosts) == 0
        assert hosts[0].broadcast_transaction(b"tx: alice pays bob 5") == 0


@pytest.mark.asyncio
async def test_transaction_in_a_full_mesh_is_delivered_once_and_duplicates_dropped() -> None:
    recorders = [Recorder() for _ in KEYS]
    links = [(i, j) for i in range(4) for j in range(i + 1, 4)]
    async with network(links, recorders) as hosts:
        assert hosts[0].broadcast_transaction(b"tx: carol buys a kettle") == 3
        # The origin sends 3 copies and each other node relays to its 2 non-origin peers once:
        # 9 copies arrive in all, whatever the order; wait for all of them to be counted.

        def copies_received() -> int:
            return sum(
                host.stats.transactions_delivered + host.stats.transactions_duplicate
                for host in hosts
            )

        async with asyncio.timeout(5):
            while copies_received() < 9:  # noqa: ASYNC110 - a dropped duplicate fires no callback
                await asyncio.sleep(0.01)
        assert copies_received() == 9
        assert [len(r.transactions) for r in recorders] == [0, 1, 1, 1]
        assert sum(host.stats.transactions_duplicate for host in hosts) == 6


@pytest.mark.asyncio
async def test_transaction_the_node_declines_is_not_relayed_until_it_broadcasts_it() -> None:
    recorders = [Recorder(), Recorder(relay=False), Recorder(), Recorder()]
    async with network([(0, 1), (1, 2)], recorders) as hosts:
        hosts[0].broadcast_transaction(b"tx: pending validation")
        await recorders[1].wait_until(lambda: len(recorders[1].transactions) == 1, "node 1")
        assert recorders[2].transactions == []
        # Node 1 validated it asynchronously and now relays it: not back to node 0, its origin.
        assert hosts[1].broadcast_transaction(b"tx: pending validation") == 1
        await recorders[2].wait_until(lambda: len(recorders[2].transactions) == 1, "node 2")
        assert hosts[1].broadcast_transaction(b"tx: pending validation") == 0
        assert hosts[0].stats.transactions_duplicate == 0
