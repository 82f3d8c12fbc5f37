"""p2p hosts serving snapshot shelves, for the state sync tests and the join figure.

    python -m tests.statesync_servers CHAIN_ID DIR [DIR ...]

serves each DIR (a `SnapshotShelf` directory) from its own p2p host on 127.0.0.1 (keys of the
dev validators node1, node2, ...; node4's key may connect), prints one JSON line of their
ports, and serves until stdin closes. Run as a separate process, the servers do not share the
joiner's CPU (`python -m tests.joinkit`).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Final

from ledger.keys import PublicKey, Signer
from p2p import Handlers, P2PConfig, P2PHost, PeerAddress, RequestRejected, allowlist
from secnode.network.devnet import validator_key
from secnode.statesync.protocol import decode_request, is_state_sync, parse_request
from secnode.statesync.shelf import SnapshotShelf

SERVERS: Final = ("node1", "node2", "node3")
JOINER: Final = "node4"


def _serving_handlers(shelf: SnapshotShelf) -> Handlers:
    async def on_request(peer: PublicKey, payload: bytes) -> bytes:
        value = decode_request(payload)
        if not is_state_sync(value):
            raise RequestRejected("state sync only")
        return await shelf.serve(parse_request(value))

    return Handlers(on_request=on_request)


@asynccontextmanager
async def serving(directories: Sequence[Path], chain_id: str) -> AsyncIterator[P2PConfig]:
    """p2p hosts (keys of node1..) serving the shelves in `directories`; yields the joiner's
    p2p config naming them as its peers."""
    joiner = validator_key(JOINER).public_key
    servers = [validator_key(name) for name in SERVERS[: len(directories)]]
    async with AsyncExitStack() as stack:
        peers = []
        for key, directory in zip(servers, directories, strict=True):
            shelf = SnapshotShelf(directory, interval=0, keep=10)
            shelf.load()
            config = P2PConfig(chain_id=chain_id, allowed_keys=allowlist([bytes(joiner)]))
            host = P2PHost(config, Signer(key), _serving_handlers(shelf))
            await stack.enter_async_context(host.running())
            peers.append(PeerAddress(key.public_key, "127.0.0.1", host.listen_port))
        yield P2PConfig(
            chain_id=chain_id,
            allowed_keys=allowlist([bytes(peer.public_key) for peer in peers]),
            peers=tuple(peers),
        )


def joiner_config(chain_id: str, ports: Sequence[int]) -> P2PConfig:
    """The joiner's p2p config naming servers node1.. at `ports` as its peers."""
    peers = tuple(
        PeerAddress(validator_key(name).public_key, "127.0.0.1", port)
        for name, port in zip(SERVERS, ports, strict=False)
    )
    return P2PConfig(
        chain_id=chain_id,
        allowed_keys=allowlist([bytes(peer.public_key) for peer in peers]),
        peers=peers,
    )


async def _main(chain_id: str, directories: list[Path]) -> None:
    async with serving(directories, chain_id) as config:
        print(json.dumps([peer.port for peer in config.peers]), flush=True)
        await asyncio.to_thread(sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1], [Path(arg) for arg in sys.argv[2:]]))
