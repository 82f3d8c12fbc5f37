"""Block building and checking: a built block is accepted by a replica; each broken header
rule is rejected with the state untouched."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from contracts import TX_TYPES
from ledger.blocks import Block, decode_block, header_hash
from ledger.chain import execute_block
from ledger.errors import InvalidBlock, MalformedBlock
from ledger.transactions import SignedTransaction, Transfer
from tests.chainkit import Chain


def _pair() -> tuple[Chain, Chain]:
    return Chain(), Chain()


def _transfers(chain: Chain, count: int) -> list[SignedTransaction]:
    return [
        chain.sign("buyer1", "credit.transfer", Transfer(chain.address("sharer1"), 10 + i))
        for i in range(count)
    ]


def test_replica_accepts_built_block_and_reaches_same_root() -> None:
    proposer, replica = _pair()
    parent = proposer.head
    result = proposer.block(_transfers(proposer, 5))
    decoded = decode_block(result.block.encode(), TX_TYPES)
    assert decoded == result.block
    checked = execute_block(replica.executor, replica.state, parent, decoded)
    assert checked.receipts == result.receipts
    replica.state.commit_block()
    assert replica.state.root() == proposer.state.root() == result.block.header.state_root


def test_builder_skips_inadmissible_candidates() -> None:
    chain = Chain()
    good = _transfers(chain, 2)
    future = chain.sign("buyer2", "credit.transfer", Transfer(chain.address("sharer1"), 1), nonce=7)
    result = chain.block([good[0], future, good[0], good[1]])
    assert [tx.hash for tx in result.block.transactions] == [good[0].hash, good[1].hash]


def _reject(block: Block, parent_chain: Chain, match: str) -> None:
    root_before = parent_chain.state.root()
    with pytest.raises(InvalidBlock, match=match):
        execute_block(parent_chain.executor, parent_chain.state, parent_chain.head, block)
    assert parent_chain.state.root() == root_before
    assert parent_chain.state.changes() == {}


def _tamper(block: Block, **changes: Any) -> Block:
    return Block(dataclasses.replace(block.header, **changes), block.transactions)


def test_invalid_block_wrong_chain() -> None:
    proposer, replica = _pair()
    block = proposer.block([]).block
    _reject(_tamper(block, chain_id="other"), replica, "chain")


def test_invalid_block_wrong_height() -> None:
    proposer, replica = _pair()
    block = proposer.block([]).block
    _reject(_tamper(block, height=5), replica, "height")


def test_invalid_block_wrong_parent() -> None:
    proposer, replica = _pair()
    block = proposer.block([]).block
    _reject(_tamper(block, prev_hash=bytes(32)), replica, "prev_hash")


def test_invalid_block_timestamp_not_increasing() -> None:
    proposer, replica = _pair()
    block = proposer.block([]).block
    _reject(_tamper(block, timestamp_ms=replica.head.timestamp_ms), replica, "timestamp")


def test_invalid_block_state_root() -> None:
    proposer, replica = _pair()
    block = proposer.block(_transfers(proposer, 1)).block
    _reject(_tamper(block, state_root=bytes(32)), replica, "state_root")


def test_invalid_block_receipts_root() -> None:
    proposer, replica = _pair()
    block = proposer.block(_transfers(proposer, 1)).block
    _reject(_tamper(block, receipts_root=bytes(32)), replica, "receipts_root")


def test_invalid_block_validators_hash() -> None:
    proposer, replica = _pair()
    block = proposer.block([]).block
    _reject(_tamper(block, validators_hash=bytes(32)), replica, "validators_hash")


def test_invalid_block_tx_root() -> None:
    proposer, replica = _pair()
    block = proposer.block(_transfers(proposer, 2)).block
    _reject(Block(block.header, block.transactions[:1]), replica, "tx_root")
    with pytest.raises(MalformedBlock, match="tx_root"):
        decode_block(Block(block.header, block.transactions[:1]).encode(), TX_TYPES)


def test_invalid_block_inadmissible_transaction() -> None:
    proposer, replica = _pair()
    replay = _transfers(replica, 1)[0]
    replica.apply(replay)  # the replica's buyer1 nonce moved on; the proposer's did not
    block = proposer.block([replay]).block
    _reject(block, replica, "inadmissible")


def test_invalid_block_duplicate_transaction() -> None:
    proposer, replica = _pair()
    tx = _transfers(proposer, 1)[0]
    block = proposer.block([tx]).block
    from ledger.blocks import transactions_root

    doubled = Block(
        dataclasses.replace(block.header, tx_root=transactions_root([tx, tx])), (tx, tx)
    )
    _reject(doubled, replica, "twice")


def test_header_hash_covers_every_field() -> None:
    chain = Chain()
    header = chain.block([]).block.header
    wire: dict[str, Any] = header.to_wire()
    for name, value in wire.items():
        changed: Any = (
            value + 1
            if isinstance(value, int)
            else (b"\x01" + value[1:] if isinstance(value, bytes) else value + "x")
        )
        changes: dict[str, Any] = {name: changed}
        assert header_hash(dataclasses.replace(header, **changes)) != header_hash(header)


@pytest.mark.parametrize(
    "data",
    [b"", b"\x80", b"\x82\xa6header\x80\xactransactions\x90", b"\xc1" * 10],
)
def test_invalid_block_bytes(data: bytes) -> None:
    with pytest.raises(MalformedBlock):
        decode_block(data, TX_TYPES)
