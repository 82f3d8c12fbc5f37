"""Pruning (`[storage]`, `ChainStore.prune_blocks`, the node's per-commit step) and the RPC's
`pruned` error: a pruned height loses its block, receipts, certificate and hash row, keeps its
transaction index row, and every read of it says it was pruned and from which height the node
keeps blocks; the genesis, the head and the blocks that scheduled validator changes stay."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.transactions import Transfer, ValidatorUpdate
from secnode.network.devnet import dev_account_key, validator_key
from secnode.runtime.config import (
    MIN_RECENT_BLOCKS,
    ConfigError,
    StorageSection,
    load_config,
    parse_config,
)
from secnode.runtime.node import PRUNE_PER_COMMIT, Node
from secnode.runtime.rpc.errors import PRUNED
from tests.joinkit import SourceChain
from tests.nodekit import make_network
from tests.rpc_node import serve, sign

# --- the config ----------------------------------------------------------------------------------


def test_an_archive_node_prunes_nothing() -> None:
    assert StorageSection().archive is True
    assert StorageSection().prune_floor(10**6) == 0


def test_the_floor_is_the_larger_of_prune_below_and_the_window_but_never_near_the_head() -> None:
    fixed = StorageSection(archive=False, prune_below=1_000)
    assert fixed.prune_floor(5_000) == 1_000
    assert fixed.prune_floor(1_100) == 1_100 + 1 - MIN_RECENT_BLOCKS
    window = StorageSection(archive=False, keep_recent=2_000)
    assert window.prune_floor(5_000) == 3_001
    both = StorageSection(archive=False, prune_below=4_000, keep_recent=2_000)
    assert both.prune_floor(5_000) == 4_000
    assert StorageSection(archive=False).prune_floor(5_000) == 0


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"prune_below": 10}, "an archive node keeps every block"),
        ({"archive": False, "keep_recent": 10}, f"at least {MIN_RECENT_BLOCKS}"),
        ({"archive": False, "keep_everything": True}, "keep_everything"),
    ],
)
def test_invalid_storage_config_is_refused(section: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config({"name": "n", "storage": section}, "config.toml")


# --- the store and the RPC --------------------------------------------------------------------


@pytest.mark.asyncio
async def test_pruned_blocks_commits_and_transactions_say_they_were_pruned() -> None:
    async with serve() as served:
        node = served.node
        node.commit_pending()  # block 1: empty
        await node.submit(
            sign("buyer1", 0, "credit.transfer", Transfer(dev_account_key("buyer2").address, 5))
        )
        node.commit_pending()  # block 2: the transfer
        tx_hash = node.store.get_block(2).transactions[0].hash  # type: ignore[union-attr]
        for _ in range(6):
            node.commit_pending()  # up to block 8
        assert node.store.prune_blocks(5, 100) == 4  # heights 1..4
        assert node.store.pruned_below() == 5
        for method, params in [
            ("sec_getBlock", {"height": 3}),
            ("sec_getBlock", {"height": 3, "full": True}),
            ("sec_getCommit", {"height": 2}),
            ("sec_getTransaction", {"hash": tx_hash.hex()}),
        ]:
            error = await served.error(method, params)
            assert error["code"] == PRUNED.code == -32010, (method, error)
            assert "was pruned: this node keeps blocks from height 5" in error["message"]
            assert error["data"]["kept_from"] == 5
        assert (await served.result("sec_getBlock", {"height": 5}))["header"]["height"] == 5
        assert (await served.result("sec_getBlock", {"height": 0}))["header"]["height"] == 0
        above = await served.error("sec_getBlock", {"height": 99})
        assert above["code"] != PRUNED.code  # not yet committed is not found, not pruned
        assert node.store.get_receipts(3) is None and node.store.get_certificate(3) is None
        assert node.store.find_transaction(tx_hash) == (2, 0)  # the index row stays


def test_pruning_never_passes_the_head_and_resumes_from_its_marker() -> None:
    from tests.rpc_node import RpcTestNode

    node = RpcTestNode()
    for _ in range(5):
        node.commit_pending()
    assert node.store.prune_blocks(100, 2) == 2  # 1, 2
    assert node.store.prune_blocks(100, 100) == 2  # 3, 4; never 5, the head
    assert node.store.prune_blocks(100, 100) == 0
    assert [h for h in range(6) if node.store.get_block(h) is not None] == [0, 5]


# --- the node ------------------------------------------------------------------------------------


def test_a_non_archive_node_prunes_a_few_heights_per_commit_and_keeps_change_blocks(
    tmp_path: Path,
) -> None:
    root = make_network(tmp_path / "net")
    home = root / "node0"
    chain = SourceChain(home)
    try:
        update = ValidatorUpdate((validator_key("node4").public_key,), ())
        chain.run([chain.sign(dev_account_key("admin"), "admin", update)])
        for _ in range(2, 301):
            chain.run([])
    finally:
        chain.close()
    config_path = home / "config.toml"
    text = config_path.read_text()
    assert "[storage]\narchive = true\n" in text  # a new home shows the default
    config_path.write_text(
        text.replace("archive = true\nprune_below = 0", "archive = false\nprune_below = 40")
    )
    assert load_config(home).storage.prune_below == 40
    node = Node.open(home)
    try:
        steps = 0
        while node.store.pruned_below() < 40:
            node._prune(node.app.head.height)
            steps += 1
        assert steps == -(-39 // PRUNE_PER_COMMIT)  # 1..39, a bounded step per commit
        kept = [h for h in range(45) if node.store.get_block(h) is not None]
        assert kept == [0, 1, *range(40, 45)]  # block 1 scheduled the validator change
    finally:
        node.store.close()


def test_the_storage_keys_and_the_pruned_error_are_documented() -> None:
    docs = Path(__file__).resolve().parent.parent / "docs"
    operations = (docs / "operations.md").read_text()
    assert "## Snapshots and pruning" in operations
    for name in StorageSection.model_fields:
        assert f"\n{name} = " in operations, name
    assert f"| {PRUNED.code} | `{PRUNED.name}` |" in (docs / "rpc.md").read_text()
