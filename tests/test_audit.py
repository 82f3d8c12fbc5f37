"""The trust RPC methods, `sec tx attest`, `sec query trust|attestations` and the auditor,
against a real served node: VERIFIED for an honest node, the failed check named for a node that
serves a wrong score, a wrong proof, a wrong input or a wrong epoch record."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import cli
import tests.rpc_node
from contracts.epochs import EPOCH_KEY, get_epoch, score_key
from contracts.trust import attestation_key
from ledger.encoding import decode, encode
from ledger.keys import format_address
from ledger.merkle import inclusion_proof, leaf_hash, merkle_root, verify_inclusion
from ledger.state_tree import StateProof
from secnode.network.devnet import dev_account_key, dev_genesis_document
from secnode.runtime.metrics import Metrics
from secnode.runtime.rpc.server import make_app, start_rpc_server
from tests.foreign_node import ForeignNode
from tests.orderkit import WINDOWS
from tests.rpc_node import RpcTestNode, ServedNode

PARAMETERS = {**WINDOWS, "attest_window_s": 10_000, "trust_epoch_blocks": 10}


def address(name: str) -> str:
    return format_address(dev_account_key(name).address)


@pytest.fixture(autouse=True)
def audit_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's auditor remembers into its own file, never the user's ~/.sec."""
    path = tmp_path / "audit-state.json"
    monkeypatch.setenv("SEC_AUDIT_STATE", str(path))
    return path


def run(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, str, str]:
    status = cli.main(list(arguments))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


# --- page proofs -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 4, 8, 16])
def test_aligned_pages_prove_against_the_root_of_all_leaves(size: int) -> None:
    for count in range(1, 70):
        leaves = [leaf_hash(bytes([k])) for k in range(count)]
        root = merkle_root(leaves)
        pages = [merkle_root(leaves[s : s + size]) for s in range(0, count, size)]
        for index, page_root in enumerate(pages):
            verify_inclusion(page_root, index, len(pages), inclusion_proof(pages, index), root)


# --- a served chain with one committed epoch -----------------------------------------------------


class Tampered:
    """A NodeView over a real node whose state answers are altered by `tamper`."""

    def __init__(self, node: RpcTestNode, tamper: Callable[[str, bytes, Any], Any]) -> None:
        self.node = node
        self.state = _TamperedState(node, tamper)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.node, name)


class _TamperedState:
    def __init__(self, node: RpcTestNode, tamper: Callable[[str, bytes, Any], Any]) -> None:
        self.node = node
        self.tamper = tamper

    def get_committed(self, key: bytes) -> bytes | None:
        return self.tamper("value", key, self.node.state.get_committed(key))  # type: ignore[no-any-return]

    def prove(self, key: bytes) -> StateProof:
        return self.tamper("proof", key, self.node.state.prove(key))  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.node.state, name)


class Network:
    """A served node with a committed trust epoch; `serve_tampered` adds lying front ends."""

    def __init__(self, served: ServedNode, genesis_file: Path) -> None:
        self.served = served
        self.genesis_file = genesis_file
        self.order_id = ""
        self._runners: list[web.AppRunner] = []

    @property
    def node(self) -> RpcTestNode:
        return self.served.node

    def blocks(self, count: int) -> None:
        for _ in range(count):
            self.served.call(self.node.commit_pending)

    def serve_tampered(self, tamper: Callable[[str, bytes, Any], Any]) -> str:
        async def start() -> int:
            app = make_app(Tampered(self.node, tamper), Metrics())  # type: ignore[arg-type]
            runner, port = await start_rpc_server(app, "127.0.0.1", 0)
            self._runners.append(runner)
            return port

        port = asyncio.run_coroutine_threadsafe(start(), self.served.loop).result(10)
        return f"http://127.0.0.1:{port}"

    def close(self) -> None:
        for runner in self._runners:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), self.served.loop).result(10)
        self.served.stop()


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    document = dev_genesis_document()
    document["parameters"] = {**document["parameters"], **PARAMETERS}
    genesis_file = tmp_path_factory.mktemp("audit") / "genesis.json"
    genesis_file.write_text(json.dumps(document))
    with pytest.MonkeyPatch.context() as patch:
        from ledger.genesis import parse_genesis

        patch.setattr(tests.rpc_node, "dev_genesis", lambda: parse_genesis(document))
        served = ServedNode().start()
    network = Network(served, genesis_file)
    try:
        yield network
    finally:
        network.close()


@pytest.fixture(scope="module")
def shopped(network: Network) -> Network:
    """buyer2 buys from merchant1 through sharer1; all three attest; an epoch is committed."""
    url = network.served.url

    def sec(*arguments: str) -> dict[str, Any]:
        import contextlib
        import io

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            status = cli.main([*arguments, "--rpc", url, "--wait", "--json"])
        assert status == 0, (arguments, out.getvalue())
        result: dict[str, Any] = json.loads(out.getvalue())
        return result

    created = sec(
        "tx",
        "order",
        "create",
        "--key",
        "dev:merchant1",
        "--buyer",
        "dev:buyer2",
        "--item",
        "tea:2:1000",
        "--shipping",
        "500",
        "--arbiter",
        "dev:arbiter",
        "--sharer",
        "dev:sharer1",
        "--commission-bps",
        "500",
    )
    order = created["order_id"]
    sec("tx", "order", "pay", "--key", "dev:buyer2", "--order", order)
    sec("tx", "order", "ship", "--key", "dev:merchant1", "--order", order, "--shipment", "SF1")
    sec("tx", "order", "confirm", "--key", "dev:buyer2", "--order", order)
    network.blocks(12)  # the return window passes: COMPLETED
    sec(
        "tx",
        "attest",
        "--key",
        "dev:buyer2",
        "--order",
        order,
        "--subject",
        "dev:merchant1",
        "--value",
        "+1",
    )
    sec(
        "tx",
        "attest",
        "--key",
        "dev:buyer2",
        "--order",
        order,
        "--subject",
        "dev:sharer1",
        "--value",
        "-1",
    )
    sec(
        "tx",
        "attest",
        "--key",
        "dev:merchant1",
        "--order",
        order,
        "--subject",
        "dev:buyer2",
        "--value",
        "1",
    )
    network.order_id = order
    for _ in range(40):
        epoch = network.served.call(lambda: get_epoch(network.node.state))
        if epoch is not None and epoch.attestations == 3:
            break
        network.blocks(1)
    else:
        raise AssertionError("no epoch with the three attestations was committed")
    return network


# --- honest node -------------------------------------------------------------------------------


def test_query_trust_shows_the_score_with_verified_proofs(
    shopped: Network, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(capsys, "query", "trust", "dev:merchant1", "--rpc", shopped.served.url)
    assert status == 0, out
    assert "of all trust" in out and "+1 / -0" in out and "verified" in out
    status, out, _ = run(
        capsys, "query", "trust", "dev:sharer1", "--rpc", shopped.served.url, "--json"
    )
    answer = json.loads(out)
    assert (answer["positive"], answer["negative"], answer["verified"]) == (0, 1, True)


def test_query_attestations_lists_by_subject_and_attester(
    shopped: Network, capsys: pytest.CaptureFixture[str]
) -> None:
    url = shopped.served.url
    status, out, _ = run(
        capsys, "query", "attestations", "--attester", "dev:buyer2", "--rpc", url, "--json"
    )
    listing = json.loads(out)
    assert status == 0 and listing["total"] == 2
    assert [a["subject"] for a in listing["attestations"]] == [
        address("merchant1"),
        address("sharer1"),
    ]
    assert [a["value"] for a in listing["attestations"]] == [1, -1]
    status, out, _ = run(capsys, "query", "attestations", "--subject", "dev:buyer2", "--rpc", url)
    assert status == 0 and "+1 " + address("merchant1") in out


def test_audit_trust_verifies_an_honest_node(
    shopped: Network, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("merchant1", "sharer1", "buyer3"):  # buyer3 has no record: score 0
        status, out, _ = run(
            capsys,
            "audit",
            "trust",
            f"dev:{name}",
            "--rpc",
            shopped.served.url,
            "--genesis",
            str(shopped.genesis_file),
        )
        assert status == 0, out
        assert f"VERIFIED {address(name)}" in out
        for check in (
            "header",
            "certificates",
            "epoch proof",
            "score proof",
            "inputs",
            "recompute",
        ):
            assert f"ok      {check}" in out


def test_audit_trust_needs_the_right_genesis(
    shopped: Network, capsys: pytest.CaptureFixture[str]
) -> None:
    # The committed genesis.json has other parameters: another genesis hash, another chain.
    status, out, _ = run(capsys, "audit", "trust", "dev:merchant1", "--rpc", shopped.served.url)
    assert status == 1 and "FAILED  certificates" in out


def test_audit_chain_replays_every_block(
    shopped: Network, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(
        capsys,
        "audit",
        "chain",
        "--rpc",
        shopped.served.url,
        "--genesis",
        str(shopped.genesis_file),
    )
    assert status == 0, out
    assert "VERIFIED blocks 1.." in out and "blocks [" in err


def test_get_trust_epoch_pages_prove_against_the_inputs_root(shopped: Network) -> None:
    from secnode.client.rpc import RpcClient

    client = RpcClient(shopped.served.url)
    whole = client.call("sec_getTrustEpoch", {"page_size": 16})
    assert whole["page"]["pages"] == 1 and len(whole["leaves"]) == 3
    root = bytes.fromhex(whole["epoch"]["inputs_root"])
    assert merkle_root([leaf_hash(bytes.fromhex(x)) for x in whole["leaves"]]) == root
    assert len(whole["attestations"]) == 3
    bare = client.call("sec_getTrustEpoch", {"page_size": 16, "decoded": False})
    assert bare["attestations"] == [] and bare["leaves"] == whole["leaves"]
    error = _rpc_error(client, "sec_getTrustEpoch", {"page": 1, "page_size": 16})
    assert error == -32602
    assert _rpc_error(client, "sec_getTrustEpoch", {"page_size": 100}) == -32602
    assert _rpc_error(client, "sec_getTrustEpoch", {"epoch": 999}) == -32000


def _rpc_error(client: Any, method: str, params: dict[str, Any]) -> int:
    from secnode.client.rpc import RpcCallError

    with pytest.raises(RpcCallError) as raised:
        client.call(method, params)
    return raised.value.code


# --- lying nodes -------------------------------------------------------------------------------


def _wrong_score(kind: str, key: bytes, value: Any) -> Any:
    if kind == "value" and key == score_key(dev_account_key("merchant1").address):
        score, positive, negative = decode(value)
        return encode([score + 1, positive, negative])
    return value


def _wrong_proof(kind: str, key: bytes, value: Any) -> Any:
    if kind == "proof" and key == score_key(dev_account_key("merchant1").address):
        siblings = list(value.siblings)
        siblings[-1] = bytes(32) if siblings[-1] != bytes(32) else b"\x01" * 32
        return StateProof(value.key, value.value_hash, tuple(siblings), value.other_leaf)
    return value


def _wrong_input(kind: str, key: bytes, value: Any) -> Any:
    if kind == "value" and key == attestation_key(1):
        record = decode(value)
        record[3] = -record[3]
        return encode(record)
    return value


def _wrong_epoch(kind: str, key: bytes, value: Any) -> Any:
    if kind == "value" and key == EPOCH_KEY:
        record = decode(value)
        record["scores_root"] = bytes(32)
        return encode(record)
    return value


@pytest.mark.parametrize(
    ("tamper", "check"),
    [
        (_wrong_score, "score proof"),
        (_wrong_proof, "score proof"),
        (_wrong_input, "inputs"),
        (_wrong_epoch, "epoch proof"),
    ],
)
def test_audit_trust_names_the_failed_check_of_a_lying_node(
    shopped: Network,
    capsys: pytest.CaptureFixture[str],
    tamper: Callable[[str, bytes, Any], Any],
    check: str,
) -> None:
    url = shopped.serve_tampered(tamper)
    status, out, _ = run(
        capsys,
        "audit",
        "trust",
        "dev:merchant1",
        "--rpc",
        url,
        "--genesis",
        str(shopped.genesis_file),
    )
    assert status == 1, out
    assert f"FAILED  {check}" in out, out
    assert "VERIFIED" not in out


# --- freshness and the validators proof ----------------------------------------------------------


def _audit(capsys: pytest.CaptureFixture[str], network: Network, *arguments: str) -> Any:
    status, out, _ = run(
        capsys, "audit", *arguments, "--genesis", str(network.genesis_file), "--json"
    )
    answer = json.loads(out)
    assert (status == 0) == answer["verified"], out
    return answer


def test_audit_prints_the_height_and_block_time_it_verified(
    shopped: Network, capsys: pytest.CaptureFixture[str]
) -> None:
    url = shopped.served.url
    head = shopped.served.call(lambda: shopped.node.head)
    status, out, _ = run(
        capsys,
        "audit",
        "trust",
        "dev:merchant1",
        "--rpc",
        url,
        "--genesis",
        str(shopped.genesis_file),
    )
    assert status == 0, out
    assert f"at height {head.height}, block time 20" in out
    status, out, _ = run(
        capsys, "audit", "chain", "--rpc", url, "--genesis", str(shopped.genesis_file)
    )
    assert status == 0, out
    assert f"height {head.height}, block time 20" in out
    assert "ok      validators" in out
    answer = _audit(capsys, shopped, "chain", "--rpc", url)
    assert answer["height"] == head.height and answer["block_time_ms"] == head.timestamp_ms


def test_invalid_answer_older_than_a_verified_height_is_refused(
    shopped: Network, capsys: pytest.CaptureFixture[str], audit_state: Path
) -> None:
    url = shopped.served.url
    assert _audit(capsys, shopped, "trust", "dev:merchant1", "--rpc", url)["verified"]
    seen = json.loads(audit_state.read_text())
    [entry] = seen["chains"].values()
    head = shopped.served.call(lambda: shopped.node.head.height)
    assert entry["height"] == head and entry["node"] == url
    # A lagging node of the same chain (its own copy, two blocks behind): refused at once.
    with pytest.MonkeyPatch.context() as patch:
        from ledger.genesis import parse_genesis

        document = json.loads(shopped.genesis_file.read_text())
        patch.setattr(tests.rpc_node, "dev_genesis", lambda: parse_genesis(document))
        lagging = ServedNode().start()
    try:
        for _ in range(2):
            lagging.call(lagging.node.commit_pending)
        answer = _audit(capsys, shopped, "chain", "--rpc", lagging.url)
    finally:
        lagging.stop()
    assert answer["failed"] == "freshness"
    assert f"node {lagging.url} answered at height 2, older than height {head}" in answer["detail"]
    assert url in answer["detail"] and str(audit_state) in answer["detail"]
    # A trust answer below a height verified elsewhere is refused the same way.
    entry["height"] = head + 5
    audit_state.write_text(json.dumps(seen))
    answer = _audit(capsys, shopped, "trust", "dev:merchant1", "--rpc", url)
    assert answer["failed"] == "freshness" and answer["passed"] == []
    assert f"answered at height {head}, older than height {head + 5}" in answer["detail"]


def test_invalid_answer_older_than_max_age_is_refused(
    shopped: Network, capsys: pytest.CaptureFixture[str]
) -> None:
    url = shopped.served.url
    # The dev chain's block times are from its 2025 genesis: far more than a minute old.
    for kind in (("trust", "dev:merchant1"), ("chain",)):
        answer = _audit(capsys, shopped, *kind, "--rpc", url, "--max-age", "60")
        assert answer["failed"] == "freshness", answer
        assert "--max-age is 60 s" in answer["detail"]
        assert _audit(capsys, shopped, *kind, "--rpc", url, "--max-age", "1e10")["verified"]


def _wrong_validators(kind: str, key: bytes, value: Any) -> Any:
    if kind == "value" and key == b"validators":
        record = decode(value)
        return encode({**record, "pending": [[10**6, record["current"]]]})
    return value


def test_audit_chain_fails_on_a_validators_record_that_does_not_prove(
    shopped: Network, capsys: pytest.CaptureFixture[str]
) -> None:
    url = shopped.serve_tampered(_wrong_validators)
    answer = _audit(capsys, shopped, "chain", "--rpc", url)
    assert answer["failed"] == "validators", answer
    assert [p["check"] for p in answer["passed"]] == ["replay"]


# --- validator changes (last: it changes the shared network's validator set) --------------------


def test_audit_trust_follows_a_validator_change_by_replaying_the_chain(
    shopped: Network, capsys: pytest.CaptureFixture[str]
) -> None:
    url = shopped.served.url
    status, out, _ = run(
        capsys,
        "tx",
        "validator-update",
        "--key",
        "dev:admin",
        "--remove",
        "dev:node3",
        "--rpc",
        url,
        "--wait",
        "--json",
    )
    assert status == 0, out
    effective = json.loads(out)["receipt"]["events"][0]["effective_height"]
    head = shopped.served.call(lambda: shopped.node.head.height)
    shopped.blocks(effective - head + 1)  # node0..2 still make a quorum (2) of the new set
    status, out, _ = run(capsys, "query", "status", "--rpc", url, "--json")
    assert json.loads(out)["height"] > effective
    status, out, _ = run(
        capsys,
        "audit",
        "trust",
        "dev:merchant1",
        "--rpc",
        url,
        "--genesis",
        str(shopped.genesis_file),
    )
    assert status == 0, out
    assert "replayed from genesis (validator change)" in out and "VERIFIED" in out
    status, out, _ = run(
        capsys, "audit", "chain", "--rpc", url, "--genesis", str(shopped.genesis_file)
    )
    assert status == 0 and "VERIFIED" in out, out


# --- answers of the wrong shape --------------------------------------------------------------


def test_invalid_malformed_bundle_fails_the_answer_check(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with ForeignNode({"sec_getTrustScore": {"address": address("merchant1")}}) as node:
        status, out, _ = run(capsys, "audit", "trust", "dev:merchant1", "--rpc", node.url)
    assert status == 1 and "VERIFIED" not in out
    [line] = out.splitlines()
    assert line.startswith("FAILED  answer")
    assert f"node {node.url} answered sec_getTrustScore with a malformed result: " in line
    assert "scored: Field required" in line
