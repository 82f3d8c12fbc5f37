"""`join`: before a node with an empty home starts, fill its store by state sync.

A p2p host with the node's key dials the configured peers (listening on loopback only, on a
port of its own: nobody needs to reach a node that is still joining), waits until they are
all connected or `wait_s` has passed with at least one, runs `fetch.state_sync`, and stops.
The peers must allow the node's key: a validator scheduled by `validator.update`, or an
observer listed in their `[p2p] observers`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace
from pathlib import Path

from ledger.genesis import Genesis
from ledger.keys import PublicKey, Signer
from p2p import Handlers, P2PConfig, P2PHost
from secnode.statesync.fetch import DEFAULT_MAX_BYTES, NoSnapshot, Synced, state_sync

log = logging.getLogger("secnode.statesync")


def _never_relay(peer: PublicKey, transaction: bytes) -> bool:
    """A joining node has no state to check a transaction against: it relays nothing (a
    relayed junk transaction would get it charged, even banned, by its honest peers)."""
    return False


async def join(
    config: P2PConfig,
    signer: Signer,
    genesis: Genesis,
    data_dir: Path,
    wait_s: float,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Synced:
    """State-sync `data_dir` from the peers of `config` (see the module docstring); NoSnapshot
    when no peer connects within `wait_s` or none serves a snapshot that verifies."""
    if not config.peers:
        raise NoSnapshot("state sync needs peers: [p2p] peers is empty")
    wanted = {peer.public_key for peer in config.peers}
    everyone = asyncio.Event()

    def connected(peer: PublicKey) -> None:
        if set(host.connected_peers()) >= wanted:
            everyone.set()

    host = P2PHost(
        replace(config, listen_host="127.0.0.1", listen_port=0),
        signer,
        Handlers(on_transaction=_never_relay, on_peer_connected=connected),
    )
    async with host.running():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(everyone.wait(), wait_s)
        peers = host.connected_peers()
        if not peers:
            raise NoSnapshot(
                f"no peer connected within {wait_s:.0f} s (do they list this node's key as "
                "a validator or in [p2p] observers?)"
            )
        log.info("state sync: %d of %d peers connected", len(peers), len(wanted))
        return await state_sync(
            host, genesis, peers, data_dir, lambda line: log.info("%s", line), max_bytes
        )
