"""Each node checks a transaction's signature once, whichever way the transaction arrives first:
by RPC or gossip (admission checks it), or inside a proposal (the block's execution checks it,
and its gossiped copy arriving afterwards is admitted without a second check)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import nacl.signing
import pytest

from consensus.app import Proposal
from contracts import TX_TYPES
from ledger.transactions import SignedTransaction, Transfer, parse_transaction, sign_transaction
from secnode.network.devnet import DEV_CHAIN_ID, DEV_GENESIS_TIME_MS, dev_account_key
from secnode.runtime.mempool import RECENTLY_VERIFIED, Mempool
from secnode.runtime.node import Node
from tests.nodekit import make_network, open_node, public_key

NOW = DEV_GENESIS_TIME_MS / 1000 + 10


class Verifications:
    """Counts Ed25519 verifications (every path ends in PyNaCl's VerifyKey.verify)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = nacl.signing.VerifyKey.verify

        def counting(key: nacl.signing.VerifyKey, *args: object, **kwargs: object) -> object:
            self.count += 1
            return original(key, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(nacl.signing.VerifyKey, "verify", counting)


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[tuple[Node, Node]]:
    network = make_network(tmp_path)
    primary, replica = open_node(network, "node0"), open_node(network, "node1")
    yield primary, replica
    primary.store.close()
    replica.store.close()


def _transfers(node: Node, count: int) -> list[SignedTransaction]:
    return [
        sign_transaction(
            dev_account_key("buyer1"),
            DEV_CHAIN_ID,
            nonce,
            Transfer(dev_account_key("seller1").address, 1),
            genesis_hash=node.genesis.document_hash(),
        )
        for nonce in range(count)
    ]


def _propose(primary: Node) -> Proposal:
    proposal = primary.app.make_proposal(1, primary.app.head.hash(), NOW, required=True)
    assert proposal is not None
    return proposal


def test_transaction_first_seen_in_a_proposal_is_verified_once(
    nodes: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    primary, replica = nodes
    txs = _transfers(primary, 3)
    for tx in txs:
        primary.mempool.admit(tx, primary._lookup)
    proposal = _propose(primary)
    verifications = Verifications(monkeypatch)
    replica.app.validate_proposal(proposal, NOW, fresh=True)
    assert verifications.count == 3  # none was in the replica's mempool: the block checked them
    peer = public_key("node0")
    for tx in txs:  # their gossiped copies arrive after the proposal
        assert replica._on_gossiped_transaction(peer, tx.encoded)
    assert verifications.count == 3
    assert all(tx.hash in replica.mempool for tx in txs)


def test_transaction_admitted_before_the_proposal_is_not_verified_by_the_block(
    nodes: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    primary, replica = nodes
    txs = _transfers(primary, 2)
    verifications = Verifications(monkeypatch)
    for tx in txs:
        primary.mempool.admit(tx, primary._lookup)
        replica.mempool.admit(tx, replica._lookup)
    assert verifications.count == 4  # once per node
    proposal = _propose(primary)
    replica.app.validate_proposal(proposal, NOW, fresh=True)
    assert verifications.count == 4


def test_invalid_signature_is_still_refused_at_admission(nodes: tuple[Node, Node]) -> None:
    """Remembering verified hashes never lets an unchecked transaction in: another signature
    is another hash."""
    primary, replica = nodes
    tx = _transfers(primary, 1)[0]
    forged_wire = tx.to_wire() | {"signature": bytes(64)}
    forged = parse_transaction(forged_wire, TX_TYPES)
    replica.mempool.remember_verified([tx])
    assert forged.hash != tx.hash
    assert not replica._on_gossiped_transaction(public_key("node0"), forged.encoded)
    assert forged.hash not in replica.mempool


def test_remembered_hashes_are_bounded() -> None:
    pool = Mempool(DEV_CHAIN_ID, genesis_hash=bytes(32))
    tx = _transfers_for_pool(RECENTLY_VERIFIED + 5)
    pool.remember_verified(tx)
    assert tx[0].hash not in pool.verified and tx[5].hash in pool.verified
    assert tx[-1].hash in pool.verified


def _transfers_for_pool(count: int) -> list[SignedTransaction]:
    """Stand-ins with distinct hashes (remember_verified reads only the hash)."""
    template = sign_transaction(
        dev_account_key("buyer1"),
        DEV_CHAIN_ID,
        0,
        Transfer(dev_account_key("seller1").address, 1),
        genesis_hash=bytes(32),
    )
    return [
        SignedTransaction(
            template.chain_id,
            template.sender,
            template.nonce,
            template.body,
            template.signature,
            template.encoded,
            index.to_bytes(32, "big"),
            template.sender_address,
        )
        for index in range(count)
    ]
