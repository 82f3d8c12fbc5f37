"""The node's side of P2P policy, on a real node (in process, on a dev chain in memory) with its
real host on 127.0.0.1: junk gossip is charged to the peer that sent it, and the allowlist
follows the committed validator set.

The peer is a `ScriptedPeer` speaking the real handshake with a dev validator's key, so the
node's own `_on_gossiped_transaction` and `_on_commit` run exactly as in production.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable

import pytest

from contracts import TX_TYPES
from ledger.encoding import decode, encode
from ledger.keys import PrivateKey, PublicKey
from ledger.kv import MemoryStore
from ledger.store import open_chain
from ledger.transactions import SignedTransaction, Transfer, sign_transaction
from ledger.validator_state import (
    activate_due_validators,
    current_validators,
    schedule_validator_update,
)
from p2p import Handlers, Tuning
from p2p.errors import HandshakeAborted
from p2p.frames import transaction_frame
from secnode.bench.stages import parse_exposition
from secnode.network.devnet import (
    DEV_CHAIN_ID,
    dev_account_key,
    dev_genesis,
    dev_genesis_hash,
    validator_key,
)
from secnode.runtime.app import Committed
from secnode.runtime.config import NodeConfig, P2PSection
from secnode.runtime.node import Node
from tests.p2p_testing import ScriptedPeer

DEADLINE = 10.0
GOSSIPER = validator_key("node1")
REMOVED = validator_key("node3")


def make_node() -> Node:
    genesis = dev_genesis()
    store, state, _ = open_chain(MemoryStore(), genesis, TX_TYPES)
    config = NodeConfig(name="node0", p2p=P2PSection(listen="127.0.0.1:0"))
    return Node(config, validator_key("node0"), genesis, store, state, [])


async def within_deadline(what: str, awaitable: Awaitable[object]) -> None:
    try:
        await asyncio.wait_for(awaitable, DEADLINE)
    except TimeoutError:
        pytest.fail(f"timed out after {DEADLINE} s waiting for {what}")


async def connect(node: Node, key: PrivateKey) -> ScriptedPeer:
    peer = await ScriptedPeer.connect(
        node.host.listen_port, key, DEV_CHAIN_ID, node.signer.public_key
    )
    await within_deadline("the node to register the peer", node.host.wait_for_peer(key.public_key))
    return peer


def transfer(sender: str, nonce: int) -> SignedTransaction:
    recipient = dev_account_key("sharer1").address
    return sign_transaction(
        dev_account_key(sender),
        DEV_CHAIN_ID,
        nonce,
        Transfer(recipient, 1),
        genesis_hash=dev_genesis_hash(),
    )


def with_bad_signature(tx: SignedTransaction) -> bytes:
    wire = decode(tx.encoded)
    signature = bytearray(wire["signature"])
    signature[0] ^= 0xFF
    wire["signature"] = bytes(signature)
    return encode(wire)


class Delivered:
    """Wraps the node's real handler to let the test wait until it has seen `count` payloads."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self.count = 0
        self._changed = asyncio.Event()

    def __call__(self, peer: PublicKey, data: bytes) -> bool:
        try:
            return self._node._on_gossiped_transaction(peer, data)
        finally:
            self.count += 1
            self._changed.set()

    async def wait_for(self, count: int) -> None:
        async def reached() -> None:
            while self.count < count:
                self._changed.clear()
                await self._changed.wait()

        await within_deadline(f"{count} gossiped transactions to be handled", reached())


def send_transactions(peer: ScriptedPeer, payloads: list[bytes]) -> None:
    for payload in payloads:
        peer.send_frames(transaction_frame(payload, Tuning().max_frame_size))


@pytest.mark.asyncio
async def test_invalid_gossiped_signatures_get_the_peer_disconnected_and_banned() -> None:
    node = make_node()
    node.host.set_handlers(Handlers(on_transaction=node._on_gossiped_transaction))
    async with node.host.running():
        peer = await connect(node, GOSSIPER)
        send_transactions(peer, [with_bad_signature(transfer("buyer1", n)) for n in range(10)])
        await within_deadline("the host to drop the junk gossiper", peer.wait_closed_by_host())
        await peer.close()
        assert not node.host.is_connected(GOSSIPER.public_key)
        assert len(node.mempool) == 0
        with pytest.raises(HandshakeAborted, match="instead of confirming"):
            await ScriptedPeer.connect(
                node.host.listen_port, GOSSIPER, DEV_CHAIN_ID, node.signer.public_key
            )
    # What an operator sees: the ban, the refusals by reason, the junk peer's traffic.
    samples = parse_exposition(node.metrics.render())
    assert samples["sec_peer_bans_total"] == 1
    refused = 'sec_rejected_transactions_total{reason="invalid_signature",source="gossip"}'
    assert samples[refused] >= 1
    received = [v for k, v in samples.items() if k.startswith("sec_peer_received_bytes_total")]
    assert received and min(received) > 0


@pytest.mark.asyncio
async def test_invalid_malformed_gossiped_transactions_get_the_peer_disconnected() -> None:
    node = make_node()
    node.host.set_handlers(Handlers(on_transaction=node._on_gossiped_transaction))
    async with node.host.running():
        peer = await connect(node, GOSSIPER)
        send_transactions(peer, [b"not a transaction %d" % n for n in range(10)])
        await within_deadline("the host to drop the junk gossiper", peer.wait_closed_by_host())
        await peer.close()
        assert not node.host.is_connected(GOSSIPER.public_key)


@pytest.mark.asyncio
async def test_what_an_honest_relay_may_send_is_not_charged() -> None:
    """Unknown senders, nonces out of the window and conflicting nonces depend on the relay's
    view of the chain: many of them in a row leave the peer connected and its next valid
    transaction admitted."""
    node = make_node()
    delivered = Delivered(node)
    node.host.set_handlers(Handlers(on_transaction=delivered))
    async with node.host.running():
        peer = await connect(node, GOSSIPER)
        stranger = PrivateKey.from_label("p2p-node-stranger")
        recipient = dev_account_key("sharer1").address
        honest_rejections = [
            sign_transaction(
                stranger,
                DEV_CHAIN_ID,
                n,
                Transfer(recipient, 1),
                genesis_hash=dev_genesis_hash(),
            )
            for n in range(5)
        ] + [transfer("buyer2", 5_000 + n) for n in range(5)]
        conflicting = [
            sign_transaction(
                dev_account_key("buyer3"),
                DEV_CHAIN_ID,
                0,
                Transfer(recipient, n),
                genesis_hash=dev_genesis_hash(),
            )
            for n in range(1, 7)
        ]
        payloads = [tx.encoded for tx in [*honest_rejections, *conflicting]]
        valid = transfer("buyer1", 0)
        send_transactions(peer, [*payloads, valid.encoded])
        await delivered.wait_for(len(payloads) + 1)
        assert valid.hash in node.mempool
        assert node.host.is_connected(GOSSIPER.public_key)
        assert node.host.stats.peers_dropped == 0
        await peer.close()


def remove_validator(node: Node, key: PrivateKey) -> None:
    """What committing a validator removal does to the state: schedule, then activate."""
    effective = schedule_validator_update(node.state, (), (key.address,), node.app.head.height)
    activate_due_validators(node.state, effective)
    node.state.commit_block()
    assert key.address not in current_validators(node.state)


@pytest.mark.asyncio
async def test_invalid_removed_validator_is_closed_after_the_commit_and_refused() -> None:
    node = make_node()
    assert REMOVED.public_key in node.host.allowed_keys
    async with node.host.running():
        peer = await connect(node, REMOVED)
        remove_validator(node, REMOVED)
        genesis_block = node.store.get_block(0)
        assert genesis_block is not None
        node._on_commit(Committed(genesis_block, (), executed_at_commit=True), time.time())
        await within_deadline("the removed validator's link to close", peer.wait_closed_by_host())
        await peer.close()
        assert REMOVED.public_key not in node.host.allowed_keys
        with pytest.raises(HandshakeAborted, match="instead of confirming"):
            await ScriptedPeer.connect(
                node.host.listen_port, REMOVED, DEV_CHAIN_ID, node.signer.public_key
            )
        assert node.host.connected_peers() == []


def test_invalid_removed_genesis_validator_is_not_allowed_at_start() -> None:
    genesis = dev_genesis()
    store, state, _ = open_chain(MemoryStore(), genesis, TX_TYPES)
    config = NodeConfig(name="node0", p2p=P2PSection(listen="127.0.0.1:0"))
    first = Node(config, validator_key("node0"), genesis, store, state, [])
    remove_validator(first, REMOVED)
    restarted = Node(config, validator_key("node0"), genesis, store, first.state, [])
    assert REMOVED.public_key not in restarted.host.allowed_keys
    assert GOSSIPER.public_key in restarted.host.allowed_keys
