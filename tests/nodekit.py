"""Real nodes for driver-level tests: a 4-validator dev network on real LevelDB in a temp dir.

`open_node` builds a `secnode.node.Node` exactly as `Node.open` does, with its own clock and
consensus settings, but never starts its p2p host or RPC server. `ScriptedPeers` is the p2p
side the driver talks to: it records what the driver sends and penalises, and answers catch-up
requests with whatever a test scripts per peer (bytes, or an exception to raise).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from consensus.messages import Message, PrePrepare, decode_message
from ledger.blocks import Block, decode_block
from ledger.certificates import CommitCertificate, build_certificate, commit_signing_bytes
from ledger.genesis import load_genesis
from ledger.keys import PublicKey, read_key_file
from ledger.store import open_chain
from ledger.store_leveldb import LevelDBStore
from secnode.app import Committed
from secnode.config import load_config
from secnode.devnet import DEV_CHAIN_ID, validator_key
from secnode.driver import ConsensusDriver
from secnode.home import create_network
from secnode.node import Node, Paths

NAMES = ("node0", "node1", "node2", "node3")


def make_network(root: Path) -> Path:
    """Write a 4-validator dev network under `root` (ports are never bound by these tests)."""
    create_network(root, 4, dev=True)
    return root


def open_node(
    network: Path,
    name: str,
    *,
    clock: Callable[[], float] | None = None,
    batch_wait_s: float = 1e-6,
    empty_block_interval_s: float = 1.0,
) -> Node:
    """A node of `network` on its own LevelDB, resuming from whatever that store holds."""
    home = network / name
    config = load_config(home)
    consensus = config.consensus.model_copy(
        update={"batch_wait_s": batch_wait_s, "empty_block_interval_s": empty_block_interval_s}
    )
    config = config.model_copy(update={"consensus": consensus})
    paths = Paths(home, config)
    key = read_key_file(paths.resolve(config.key_file))
    genesis = load_genesis(paths.resolve(config.genesis_file))
    store, state, _ = open_chain(LevelDBStore(paths.resolve(config.data_dir)), genesis)
    records = [value for _, value in store.records()]
    return Node(config, key, genesis, store, state, records, clock)


class ManualClock:
    """A node clock that moves only when told to (and never backwards)."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError(f"a clock never goes backwards (asked for {seconds} s)")
        self.now += seconds
        return self.now


def certify(height: int, digest: bytes, signers: tuple[str, ...]) -> CommitCertificate:
    """A real commit certificate for block `digest` at `height`, signed by `signers`."""
    message = commit_signing_bytes(DEV_CHAIN_ID, height, digest)
    signatures: dict[bytes, bytes] = {
        validator_key(n).address: validator_key(n).sign(message) for n in signers
    }
    return build_certificate(height, digest, signatures)


def public_key(name: str) -> PublicKey:
    return validator_key(name).public_key


def name_of(address: bytes) -> str:
    return next(n for n in NAMES if validator_key(n).address == address)


def primary_name(network: Path) -> str:
    """The primary of view 0 at height 1."""
    probe = open_node(network, "node0")
    try:
        return name_of(probe.replica.primary)
    finally:
        probe.store.close()


@dataclass
class ScriptedPeers:
    """The p2p side of a driver under test (see the module docstring)."""

    answers: dict[PublicKey, list[bytes | Exception]] = field(default_factory=dict)
    requested: list[PublicKey] = field(default_factory=list)
    penalties: list[tuple[PublicKey, str]] = field(default_factory=list)
    broadcasts: list[bytes] = field(default_factory=list)
    sent: list[tuple[PublicKey, bytes]] = field(default_factory=list)

    def is_connected(self, peer: PublicKey) -> bool:
        return True

    def send_consensus(self, peer: PublicKey, payload: bytes) -> None:
        self.sent.append((peer, payload))

    def broadcast_consensus(self, payload: bytes) -> int:
        self.broadcasts.append(payload)
        return 3

    async def request(self, peer: PublicKey, payload: bytes) -> bytes:
        self.requested.append(peer)
        script = self.answers.get(peer, [])
        if not script:
            raise ConnectionError(f"no scripted answer for {peer.hex()[:8]}")
        answer = script.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def penalize(self, peer: PublicKey, detail: str) -> None:
        self.penalties.append((peer, detail))

    def messages(self) -> list[Message]:
        """Every consensus message this node broadcast, in order."""
        return [decode_message(payload) for payload in self.broadcasts]

    def proposals(self) -> list[Block]:
        """Blocks this node proposed (its broadcast PRE-PREPAREs' payloads, resends once)."""
        out: dict[bytes, Block] = {}
        for payload in self.broadcasts:
            message = decode_message(payload)
            if isinstance(message, PrePrepare) and message.digest not in out:
                out[message.digest] = decode_block(message.payload)
        return list(out.values())


def start_driver(
    node: Node, peers: ScriptedPeers, tasks: asyncio.TaskGroup
) -> tuple[ConsensusDriver, list[Committed]]:
    """A driver for `node` over `peers`, started, recording the node's commits."""
    commits: list[Committed] = []
    driver = ConsensusDriver(
        node.replica,
        node.app,
        peers,
        node.metrics,
        tasks,
        lambda committed, now: commits.append(committed),
        clock=node.clock,
    )
    node.driver = driver
    driver.start()
    return driver, commits
