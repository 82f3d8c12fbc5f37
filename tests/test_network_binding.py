"""Cross-network replay (finding 10 of issue 11): a signature binds one network (chain id and
genesis hash, docs/protocol.md §5.2.1), `sec genesis new` makes a new chain id per network,
and `sec` refuses to sign with a key file made for another network."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import cli
from ledger.accounts import get_account
from ledger.errors import InvalidSignature
from ledger.genesis import load_genesis, parse_genesis
from ledger.transactions import Transfer
from secnode.keyfile import KeyFileError, read_key_record, write_key_file
from secnode.network import devnet
from secnode.runtime.mempool import Mempool, MempoolRejected
from tests.chainkit import Chain
from tests.rpc_node import ServedNode


def _network_b() -> Chain:
    """Same chain id, same accounts and keys as the development network; another genesis."""
    document = devnet.dev_genesis_document()
    document["genesis_time_ms"] += 1
    return Chain(genesis=parse_genesis(document, "network B"))


def test_invalid_transaction_signed_for_another_network_with_the_same_chain_id() -> None:
    network_a, network_b = Chain(), _network_b()
    assert network_a.genesis.chain_id == network_b.genesis.chain_id
    transfer = network_a.sign("buyer1", "credit.transfer", Transfer(network_a.address("buyer2"), 7))
    pool = Mempool(network_b.genesis.chain_id, genesis_hash=network_b.genesis.document_hash())
    with pytest.raises(MempoolRejected) as rejected:
        pool.admit(transfer, lambda address: get_account(network_b.state, address))
    assert rejected.value.code == "invalid_signature"
    assert network_b.genesis.document_hash().hex()[:16] in str(rejected.value)
    with pytest.raises(InvalidSignature, match="signed for another network"):
        network_b.apply(transfer)
    assert network_b.balance("buyer2") == devnet.DEV_ACCOUNTS[6][2]  # nothing moved on B
    assert network_a.apply(transfer).ok  # and it is a good transaction on A


def test_genesis_new_gives_each_network_its_own_chain_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chain_ids = []
    for name in ("a", "b"):
        out = tmp_path / name
        status = cli.main(["genesis", "new", "--validators", "1", "--dev", "--out", str(out)])
        assert status == 0, capsys.readouterr().err
        genesis = load_genesis(out / "genesis.json")
        chain_ids.append(genesis.chain_id)
        for key_file in [out / "node0" / "node.key", *sorted((out / "accounts").iterdir())]:
            assert read_key_record(key_file).genesis_hash == genesis.document_hash(), key_file
    assert all(re.fullmatch(r"sec-[0-9a-f]{8}", c) for c in chain_ids), chain_ids
    assert chain_ids[0] != chain_ids[1]
    out = tmp_path / "named"
    status = cli.main(["genesis", "new", "--chain-id", "shop-1", "--dev", "--out", str(out)])
    assert status == 0 and load_genesis(out / "genesis.json").chain_id == "shop-1"


def test_old_key_files_without_a_genesis_still_load(tmp_path: Path) -> None:
    path = tmp_path / "old.key"
    write_key_file(path, devnet.dev_account_key("buyer1"))
    assert "genesis" not in json.loads(path.read_text())
    record = read_key_record(path)
    assert record.key.public_key == devnet.dev_account_key("buyer1").public_key
    assert record.genesis_hash is None


def test_invalid_key_file_genesis_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.key"
    write_key_file(path, devnet.dev_account_key("buyer1"), genesis_hash=bytes(32))
    document = json.loads(path.read_text()) | {"genesis": "abc"}
    path.write_text(json.dumps(document))
    with pytest.raises(KeyFileError, match="'genesis' is not 64 hex characters: 'abc'"):
        read_key_record(path)


def test_invalid_sign_with_a_key_file_made_for_another_network(
    served: ServedNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other_genesis = _network_b().genesis.document_hash()
    path = tmp_path / "buyer1.key"
    write_key_file(path, devnet.dev_account_key("buyer1"), genesis_hash=other_genesis)
    argv = ["tx", "transfer", "--rpc", served.url, "--key", str(path), "--to", "dev:buyer2"]
    status = cli.main([*argv, "--amount", "3"])
    _, err = capsys.readouterr()
    assert status == 1
    assert f"made for the network with genesis {other_genesis.hex()}" in err
    assert f"runs chain 'sec-devnet' with genesis {devnet.dev_genesis_hash().hex()}" in err
    assert "refusing to sign for another network" in err
    assert served.call(lambda: len(served.node.mempool)) == 0
    # The same key recorded for this network signs as before.
    write_key_file(path, devnet.dev_account_key("buyer1"), overwrite=True, genesis_hash=None)
    assert cli.main([*argv, "--amount", "3"]) == 0
    write_key_file(
        path,
        devnet.dev_account_key("buyer1"),
        overwrite=True,
        genesis_hash=devnet.dev_genesis_hash(),
    )
    assert cli.main([*argv, "--amount", "4"]) == 0


def test_keys_new_records_the_genesis_it_is_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    genesis = Path(__file__).resolve().parents[1] / "genesis.json"
    path = tmp_path / "shop.key"
    status = cli.main(
        ["keys", "new", "--plain", "--out", str(path), "--genesis", str(genesis), "--json"]
    )
    assert status == 0
    assert json.loads(capsys.readouterr().out)["genesis"] == devnet.dev_genesis_hash().hex()
    assert read_key_record(path).genesis_hash == devnet.dev_genesis_hash()
