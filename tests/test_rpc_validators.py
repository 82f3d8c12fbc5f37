"""sec_getValidatorsWithProof over HTTP against a real dev chain: the record proves under the
certified head's state root, a scheduled change shows in `pending`, and a pinned height that is
not the head is refused (docs/protocol.md §15 step 3, docs/rpc.md)."""

from __future__ import annotations

import pytest

from ledger.certificates import verify_certificate
from ledger.keys import PrivateKey
from ledger.state_tree import verify_state_proof
from ledger.transactions import ValidatorUpdate
from ledger.validator_state import VALIDATORS_KEY
from ledger.validators import ValidatorSet
from secnode.network import devnet
from secnode.schema.objects import BlockHeader, CommitCertificate, StateProof
from tests.rpc_node import serve, sign

METHOD = "sec_getValidatorsWithProof"


@pytest.mark.asyncio
async def test_validators_record_proves_under_the_certified_head() -> None:
    async with serve() as served:
        new_key = PrivateKey.from_label("validator:node4").public_key
        update = sign("admin", 0, "validator.update", ValidatorUpdate((new_key,), ()))
        await served.result("sec_sendTransaction", {"tx": update.encoded.hex()})
        served.node.commit_pending()
        answer = await served.result(METHOD)
    genesis_set = served.node.genesis.validator_set()
    header = BlockHeader.model_validate(answer["header"]).to_header()
    assert answer["height"] == header.height == 1
    assert header.hash().hex() == answer["block_hash"]
    assert header.state_root.hex() == answer["state_root"]
    verify_certificate(
        CommitCertificate.model_validate(answer["certificate"]).to_certificate(),
        devnet.DEV_CHAIN_ID,
        genesis_set,
        height=1,
        block_hash=header.hash(),
    )
    verify_state_proof(
        header.state_root,
        VALIDATORS_KEY,
        bytes.fromhex(answer["value"]),
        StateProof.model_validate(answer["proof"]).to_proof(),
    )
    assert answer["hash"] == genesis_set.hash().hex() == header.validators_hash.hex()
    assert answer["quorum"] == genesis_set.quorum
    [pending] = answer["pending"]
    grown = ValidatorSet.from_public_keys([*(m.public_key for m in genesis_set.members), new_key])
    assert pending["hash"] == grown.hash().hex()
    assert pending["effective_height"] == 1 + 8  # validator_change_delay's default
    assert len(pending["validators"]) == 5


@pytest.mark.asyncio
async def test_invalid_pinned_height_names_the_head() -> None:
    async with serve() as served:
        pinned = await served.result(METHOD, {"height": 0})
        assert pinned["height"] == 0 and pinned["certificate"] is None
        error = await served.error(METHOD, {"height": 3})
    assert error["code"] == -32000
    assert "the head is 0" in error["message"]
