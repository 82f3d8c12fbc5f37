"""The node-local proofs of validator changes (ledger.validator_changes) and
sec_getValidatorChanges: recorded with the block that schedules a change, on a real dev chain,
proving the record under that block's certified state_root; kept across a restart; and a store
that lacks a proof (written before the index) says its list is incomplete."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from contracts import TX_TYPES
from ledger.encoding import decode
from ledger.state_tree import verify_state_proof
from ledger.store import open_chain
from ledger.transactions import ValidatorUpdate
from ledger.validator_changes import VALIDATOR_CHANGES_PREFIX
from ledger.validator_state import VALIDATORS_KEY
from secnode.network.devnet import validator_key
from secnode.runtime.node import Node
from secnode.runtime.rpc.validator_methods import get_validator_changes
from secnode.runtime.rpc.view import NodeView
from secnode.schema.models import NoParams
from secnode.schema.validators import ValidatorChangesResult
from tests.rpc_node import RpcTestNode, sign
from tests.test_validator_changes import _chain_with_a_validator_added


def _add(node: RpcTestNode, nonce: int, name: str) -> None:
    body = ValidatorUpdate((validator_key(name).public_key,), ())
    tx = sign("admin", nonce, "validator.update", body)
    asyncio.run(node.submit(tx))


def _changes(view: Any) -> ValidatorChangesResult:
    return asyncio.run(get_validator_changes(cast(NodeView, view), NoParams()))


def _scheduled(node: RpcTestNode) -> dict[int, list[int]]:
    """Effective heights by the block that scheduled them, from the receipts' events."""
    found: dict[int, list[int]] = {}
    for height in range(1, node.head.height + 1):
        for receipt in node.store.get_receipts(height) or []:
            for event in receipt.events:
                if event.get("event") == "validator.update":
                    found.setdefault(height, []).append(event["effective_height"])
    return found


def _chain_with_changes() -> RpcTestNode:
    """Block 1: a transfer-free empty block; block 2: two updates; block 3: none; block 4: one."""
    node = RpcTestNode()
    node.commit_pending()
    _add(node, 0, "node4")
    _add(node, 1, "node5")
    node.commit_pending()
    node.commit_pending()
    _add(node, 2, "node6")
    node.commit_pending()
    return node


def test_each_scheduled_change_is_served_with_a_proof_under_its_blocks_state_root() -> None:
    node = _chain_with_changes()
    scheduled = _scheduled(node)
    assert sorted(scheduled) == [2, 4] and len(scheduled[2]) == 2, scheduled
    answer = _changes(node)
    assert answer.complete is True
    listed = [(c.scheduled_height, c.effective_height) for c in answer.changes]
    assert listed == [(h, e) for h in sorted(scheduled) for e in scheduled[h]]
    for change in answer.changes:
        block = node.store.get_block(change.scheduled_height)
        assert block is not None
        verify_state_proof(
            block.header.state_root, VALIDATORS_KEY, change.value, change.proof.to_proof()
        )
        pending = dict(decode(change.value)["pending"])
        assert change.effective_height in pending
    # the record proven for block 2 is the one after block 2, not the head's (node6 is later)
    assert len(decode(answer.changes[0].value)["pending"]) == 2
    assert len(decode(answer.changes[2].value)["pending"]) == 3
    # blocks 1 and 3 scheduled nothing: no row
    rows = [key for key, _ in node.store.index_rows(VALIDATOR_CHANGES_PREFIX)]
    assert [int.from_bytes(key[1:], "big") for key in rows] == [2, 4]


def test_the_proofs_survive_a_restart() -> None:
    node = _chain_with_changes()
    before = _changes(node)
    store, state, _ = open_chain(node.store.kv, node.genesis, TX_TYPES)
    after = _changes(SimpleNamespace(store=store, state=state))
    assert after == before and after.complete is True


def test_a_store_without_a_changes_proof_says_it_is_incomplete() -> None:
    """As a store written before the index: the head's record knows the change, no row."""
    node = _chain_with_changes()
    node.store.kv.write([(VALIDATOR_CHANGES_PREFIX + (4).to_bytes(8, "big"), None)], sync=True)
    answer = _changes(node)
    assert answer.complete is False
    assert [c.scheduled_height for c in answer.changes] == [2, 2]


def test_a_node_opened_on_a_store_older_than_the_index_says_it_is_incomplete(
    tmp_path: Path,
) -> None:
    """A LevelDB store whose blocks were written without the index (a change scheduled in
    block 1, effective at 9): the node opens it, cannot make the proof afterwards (no
    historical state), and says so rather than serving a list that hides the change."""
    home, _ = _chain_with_a_validator_added(tmp_path, 12)
    node = Node.open(home)
    try:
        answer = _changes(node)
    finally:
        node.store.close()
    assert answer.changes == [] and answer.complete is False
