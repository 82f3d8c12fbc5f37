"""Real nodes for driver-level tests: a 4-validator dev network on real LevelDB in a temp dir.

`open_node` builds a `secnode.runtime.node.Node` exactly as `Node.open` does, with its own clock and
consensus settings, but never starts its p2p host or RPC server. `ScriptedPeers` is the p2p
side the driver talks to: it records what the driver sends and penalises, and answers catch-up
requests with whatever a test scripts per peer (bytes, or an exception to raise).
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from consensus.messages import Message, PrePrepare, decode_message
from contracts import TX_TYPES
from ledger.blocks import Block, decode_block
from ledger.certificates import CommitCertificate, build_certificate, commit_signing_bytes
from ledger.genesis import load_genesis
from ledger.keys import PublicKey
from ledger.store import open_chain
from ledger.store_leveldb import LevelDBStore
from secnode.keyfile import read_key_file
from secnode.network.devnet import DEV_CHAIN_ID, validator_key
from secnode.network.home import create_network
from secnode.runtime.app import Committed
from secnode.runtime.config import load_config
from secnode.runtime.driver import ConsensusDriver
from secnode.runtime.node import Node, Paths

NAMES = ("node0", "node1", "node2", "node3")


def make_network(root: Path, **parameters: int) -> Path:
    """Write a 4-validator dev network under `root` (ports are never bound by these tests),
    with chain `parameters` overriding the development ones in every home's genesis."""
    create_network(root, 4, dev=True)
    if parameters:
        for path in [root / "genesis.json", *(root / name / "genesis.json" for name in NAMES)]:
            document = json.loads(path.read_text())
            document["parameters"].update(parameters)
            path.write_text(json.dumps(document, indent=2) + "\n")
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
    paths = Paths(home)
    key = read_key_file(paths.resolve(config.key_file))
    genesis = load_genesis(paths.resolve(config.genesis_file))
    store, state, _ = open_chain(LevelDBStore(paths.resolve(config.data_dir)), genesis, TX_TYPES)
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
                out[message.digest] = decode_block(message.payload, TX_TYPES)
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


class Mesh:
    """Real nodes wired in memory: consensus messages are queued and delivered by `deliver`,
    catch-up requests are answered by the target's driver. Each node shares one clock."""

    def __init__(self, nodes: dict[str, Node], tasks: asyncio.TaskGroup) -> None:
        self.nodes = nodes
        self.queue: deque[tuple[str, str, bytes]] = deque()
        self.links = {name: MeshLink(self, name) for name in nodes}
        self.drivers = {
            name: start_driver(node, self.links[name], tasks)[0] for name, node in nodes.items()
        }

    def deliver(self, limit: int = 100_000) -> None:
        for _ in range(limit):
            if not self.queue:
                return
            source, target, payload = self.queue.popleft()
            self.drivers[target].on_consensus_bytes(public_key(source), payload)
        raise AssertionError(f"more than {limit} messages in flight: a message storm")

    async def run(self, clock: ManualClock, seconds: float, step: float = 0.25) -> None:
        """Advance the shared clock in steps, ticking every node and delivering everything."""
        for _ in range(round(seconds / step)):
            clock.advance(step)
            for name, driver in self.drivers.items():
                driver.feed(self.nodes[name].replica.on_tick)
            self.deliver()
            await asyncio.sleep(0)  # let catch-up tasks and call_soon callbacks run

    def stop(self) -> None:
        for driver in self.drivers.values():
            driver.stop()


class MeshLink(ScriptedPeers):
    """One node's side of a `Mesh` (records like `ScriptedPeers`, and delivers)."""

    def __init__(self, mesh: Mesh, me: str) -> None:
        super().__init__()
        self.mesh = mesh
        self.me = me

    def _names(self) -> list[str]:
        return [n for n in self.mesh.nodes if n != self.me]

    def send_consensus(self, peer: PublicKey, payload: bytes) -> None:
        super().send_consensus(peer, payload)
        target = next(n for n in self._names() if public_key(n) == peer)
        self.mesh.queue.append((self.me, target, payload))

    def broadcast_consensus(self, payload: bytes) -> int:
        super().broadcast_consensus(payload)
        for target in self._names():
            self.mesh.queue.append((self.me, target, payload))
        return len(self._names())

    async def request(self, peer: PublicKey, payload: bytes) -> bytes:
        self.requested.append(peer)
        target = next(n for n in self._names() if public_key(n) == peer)
        return self.mesh.drivers[target].serve_catch_up(payload)
