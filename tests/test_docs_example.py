"""docs/protocol.md §18.4 (block 1 of the development chain and its certificate) recomputed
from the code: every value the section shows must be what the reference implementation
computes, so the worked example cannot contradict §7 again (its receipt was once encoded with
`message`, which the receipts root does not commit to)."""

from __future__ import annotations

from pathlib import Path

from contracts import build_executor
from ledger.accounts import account_key
from ledger.certificates import commit_signing_bytes
from ledger.chain import build_block
from ledger.encoding import encode
from ledger.genesis import genesis_block, genesis_state, load_genesis
from ledger.receipts import committed_form
from ledger.transactions import Transfer, sign_transaction
from secnode.network import devnet

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL = ROOT / "docs" / "protocol.md"


def _section(text: str, title: str) -> str:
    start = text.index(title)
    end = text.find("\n### ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_worked_example_block_1_matches_the_code() -> None:
    genesis = load_genesis(ROOT / "genesis.json")
    state = genesis_state(genesis)
    block_0 = genesis_block(genesis, state.compute_root())
    state.commit_block()
    transfer = sign_transaction(
        devnet.dev_account_key("buyer1"),
        genesis.chain_id,
        0,
        Transfer(devnet.dev_account_key("sharer1").address, 500),
        genesis_hash=genesis.document_hash(),
    )
    result = build_block(
        build_executor(genesis.chain_id, genesis.document_hash()),
        state,
        block_0.header,
        [transfer],
        timestamp_ms=genesis.genesis_time_ms + 1000,
        proposer=devnet.validator_key("node0").address,
        view=0,
    )
    header = result.block.header
    block_hash = result.block.hash()
    signing = commit_signing_bytes(genesis.chain_id, 1, block_hash)
    state.commit_block()
    expected = {
        "tx_root": header.tx_root.hex(),
        "receipts_root": header.receipts_root.hex(),
        "state_root": header.state_root.hex(),
        "validators_hash": header.validators_hash.hex(),
        "committed receipt": committed_form(result.receipts[0]).hex(),
        "header encoding": encode(header.to_wire()).hex(),
        "block hash": block_hash.hex(),
        "commit signing bytes": signing.hex(),
        "buyer1 after block 1": (
            state.get(account_key(devnet.dev_account_key("buyer1").address)) or b""
        ).hex(),
        **{
            f"signature of {name}": devnet.validator_key(name).sign(signing).hex()
            for name in ("node0", "node1", "node2")
        },
    }
    section = _section(PROTOCOL.read_text(), "### 18.4 Block 1 and its certificate")
    missing = {what: value for what, value in expected.items() if f"`{value}`" not in section}
    assert not missing, f"§18.4 disagrees with the code; the computed values are {missing}"
