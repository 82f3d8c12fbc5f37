"""Child process for the crash test: commits blocks to LevelDB forever until SIGKILLed.

Usage: python -m tests.crash_writer DATA_DIR [FLUSH_BLOCKS]
(FLUSH_BLOCKS: flush the state tree's nodes at least every this many blocks; default the store's)
Prints "ready" once the store is open, then one line per committed height.
"""

from __future__ import annotations

import sys
from pathlib import Path

from contracts import TX_TYPES
from ledger.chain import build_block
from ledger.execution import Executor
from ledger.store import open_chain
from ledger.store_leveldb import LevelDBStore
from ledger.transactions import Transfer, sign_transaction
from secnode.network.devnet import dev_account_key, dev_genesis, validator_key


def main() -> None:
    genesis = dev_genesis()
    store, state, head = open_chain(LevelDBStore(Path(sys.argv[1])), genesis, TX_TYPES)
    if len(sys.argv) > 2:
        store.flush_blocks = int(sys.argv[2])
    executor = Executor(genesis.chain_id, genesis.document_hash())
    names = ["buyer1", "buyer2", "buyer3", "sharer1", "sharer2"]
    from ledger.accounts import get_account

    print("ready", head.height, flush=True)
    while True:
        txs = []
        for i, name in enumerate(names):
            account = get_account(state, dev_account_key(name).address)
            assert account is not None
            target = dev_account_key(names[(i + 1) % len(names)]).address
            for n in range(20):
                txs.append(
                    sign_transaction(
                        dev_account_key(name),
                        genesis.chain_id,
                        account.nonce + n,
                        Transfer(target, 1 + n),
                        genesis_hash=genesis.document_hash(),
                    )
                )
        result = build_block(
            executor,
            state,
            head,
            txs,
            timestamp_ms=head.timestamp_ms + 1000,
            proposer=validator_key("node0").address,
            view=0,
        )
        changes = state.commit_block()
        store.commit_block(result.block, None, result.receipts, changes)
        head = result.block.header
        print(head.height, flush=True)


if __name__ == "__main__":
    main()
