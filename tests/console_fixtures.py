"""Fixtures for the console's in-browser verifier, produced by the real Python code.

`Shop` is a served development node (tests/rpc_node.py) on which a real shopping scenario ran
through the CLI: an order with a sharer, paid, shipped, confirmed and completed; three
attestations and a committed trust epoch; a group buy that formed. The browser tests point the
JavaScript `Verifier` at it.

`build_fixtures(shop)` returns the JSON the vectors page (`static/vectors.html`) checks the
JavaScript against: state proofs (membership, absence at an empty subtree, absence at another
key's leaf) and tampered variants, header hashes, a certificate valid and tampered (bad
signature, duplicate signer, non-member, below quorum, wrong block), genesis hashes, the
account, order, group, member, score and epoch records decoded as the RPC shows them, extra
Ed25519 and address cases, and canonical-encoding rejections. Every expected outcome is what
the Python implementation answers (`verify_state_proof`, `verify_certificate`,
`verify_signature`, `parse_address`, `decode`), so the JavaScript must agree with it case by case.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import nacl.bindings

import cli
import tests.rpc_node
from contracts.epochs import get_epoch
from ledger.certificates import (
    CommitCertificate,
    CommitSignature,
    commit_signing_bytes,
    verify_certificate,
)
from ledger.encoding import decode, encode
from ledger.errors import DecodeError, InvalidAddress, InvalidCertificate, InvalidProof
from ledger.genesis import parse_genesis
from ledger.keys import Address, PrivateKey, format_address, parse_address, verify_signature
from ledger.state_tree import OtherLeaf, StateProof, verify_state_proof
from secnode.network.devnet import dev_genesis_document
from secnode.schema.objects import BlockHeader
from secnode.schema.objects import CommitCertificate as CertificateJson
from secnode.schema.objects import StateProof as StateProofJson
from tests.orderkit import WINDOWS
from tests.rpc_node import ServedNode

PARAMETERS = {**WINDOWS, "attest_window_s": 10_000, "trust_epoch_blocks": 10}
"""Short windows and epochs, so the scenario completes an order and commits an epoch quickly."""

Case = dict[str, Any]


@dataclass
class Shop:
    """A served node after the shopping scenario (see the module docstring)."""

    served: ServedNode
    document: dict[str, Any]
    order_id: str = ""
    group_id: str = ""
    transfer_hash: str = ""

    @property
    def url(self) -> str:
        return self.served.url

    def rpc(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """The result of one JSON-RPC call (an error fails the test setup)."""
        request = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}
        with urllib.request.urlopen(
            urllib.request.Request(
                self.url + "/rpc",
                json.dumps(request).encode(),
                {"Content-Type": "application/json"},
            ),
            timeout=30,
        ) as response:
            answer = json.loads(response.read())
        if "result" not in answer:
            raise AssertionError(f"{method} {params}: {answer}")
        return answer["result"]

    def sec(self, *arguments: str) -> dict[str, Any]:
        """Run `sec ... --rpc URL --wait --json` in-process; its JSON output."""
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            status = cli.main([*arguments, "--rpc", self.url, "--wait", "--json"])
        if status != 0:
            raise AssertionError(f"sec {' '.join(arguments)} exited {status}: {out.getvalue()}")
        result: dict[str, Any] = json.loads(out.getvalue())
        return result

    def blocks(self, count: int) -> None:
        for _ in range(count):
            self.served.call(self.served.node.commit_pending)


@contextlib.contextmanager
def shop() -> Iterator[Shop]:
    """A served node with short windows, after the shopping scenario; stopped on exit."""
    document = dev_genesis_document()
    document["parameters"] = {**document["parameters"], **PARAMETERS}
    with _patched(tests.rpc_node, "dev_genesis", lambda: parse_genesis(document)):
        served = ServedNode().start()
    try:
        network = Shop(served, document)
        _shop(network)
        yield network
    finally:
        served.stop()


@contextlib.contextmanager
def _patched(owner: Any, name: str, value: Callable[[], Any]) -> Iterator[None]:
    """Set `owner.name` to `value` for the block (the served node reads it at start)."""
    saved = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, saved)


def _shop(network: Shop) -> None:
    sec = network.sec
    transfer = sec("tx", "transfer", "--key", "dev:buyer1", "--to", "dev:buyer2", "--amount", "250")
    network.transfer_hash = transfer["hash"]
    order = sec(
        *("tx", "order", "create", "--key", "dev:merchant1", "--buyer", "dev:buyer2"),
        *("--item", "tea:2:1000", "--item-not-returnable", "cake:1:600", "--shipping", "500"),
        *("--arbiter", "dev:arbiter", "--sharer", "dev:sharer1", "--commission-bps", "500"),
    )["order_id"]
    network.order_id = order
    sec("tx", "order", "pay", "--key", "dev:buyer2", "--order", order)
    sec("tx", "order", "ship", "--key", "dev:merchant1", "--order", order, "--shipment", "SF1")
    sec("tx", "order", "confirm", "--key", "dev:buyer2", "--order", order)
    network.blocks(12)  # the return window passes: COMPLETED
    for key, subject, value in (
        ("dev:buyer2", "dev:merchant1", "+1"),
        ("dev:buyer2", "dev:sharer1", "-1"),
        ("dev:merchant1", "dev:buyer2", "1"),
    ):
        sec("tx", "attest", "--key", key, "--order", order, "--subject", subject, "--value", value)
    group = sec(
        *("tx", "group", "open", "--key", "dev:merchant1", "--item", "rice 5 kg"),
        *("--price", "3000", "--min", "2", "--max", "3", "--deadline-in", "3600"),
        *("--opener-discount", "500", "--shipping", "200", "--arbiter", "dev:arbiter"),
        *("--commission-bps", "500"),
    )
    network.group_id = group["hash"]
    sec("tx", "group", "join", "--key", "dev:buyer1", "--group", network.group_id)
    sec(
        *("tx", "group", "join", "--key", "dev:buyer2", "--group", network.group_id),
        *("--sharer", "dev:sharer1", "--commission-bps", "500"),
    )
    for _ in range(40):
        epoch = network.served.call(lambda: get_epoch(network.served.node.state))
        if epoch is not None and epoch.attestations == 3:
            return
        network.blocks(1)
    raise AssertionError("no epoch with the three attestations was committed")


# --- fixtures ----------------------------------------------------------------------------------


def build_fixtures(network: Shop) -> dict[str, Any]:
    """Every fixture suite (see the module docstring), as JSON-ready data."""
    return {
        "state_proofs": _state_proofs(network),
        "headers": _headers(network),
        "certificates": _certificates(network),
        "genesis": _genesis(network),
        "records": _records(network),
        "ed25519": _ed25519(),
        "addresses": _addresses(),
        "msgpack": _msgpack(),
    }


def _outcome(check: Callable[[], object], *errors: type[Exception]) -> bool:
    try:
        check()
    except errors:
        return False
    return True


def _proof_case(
    case_id: str, root: bytes, key: bytes, value: bytes | None, proof: StateProof
) -> Case:
    valid = _outcome(lambda: verify_state_proof(root, key, value, proof), InvalidProof)
    return {
        "id": case_id,
        "root": root.hex(),
        "key": key.hex(),
        "value": None if value is None else value.hex(),
        "proof": StateProofJson.of(proof).model_dump(mode="json"),
        "valid": valid,
    }


def _flip(data: bytes, at: int = 0) -> bytes:
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]


def _state_proofs(network: Shop) -> list[Case]:
    node = network.served.node
    state = node.state
    root = node.head.state_root
    key = b"order:" + bytes.fromhex(network.order_id)
    value = network.served.call(lambda: state.get_committed(key))
    member = network.served.call(lambda: state.prove(key))
    assert value is not None
    empty: tuple[bytes, StateProof] | None = None
    other: tuple[bytes, StateProof] | None = None
    for i in range(2000):
        probe = f"absent:{i}".encode()
        proof = network.served.call(lambda probe=probe: state.prove(probe))  # type: ignore[misc]
        if proof.other_leaf is None and empty is None:
            empty = (probe, proof)
        if proof.other_leaf is not None and other is None:
            other = (probe, proof)
        if empty and other:
            break
    assert empty is not None and other is not None, "no absent key of each kind in 2000 tries"
    siblings = list(member.siblings)
    tampered_sibling = StateProof(
        member.key, member.value_hash, (_flip(siblings[0]), *siblings[1:]), None
    )
    other_key, other_proof = other
    assert other_proof.other_leaf is not None
    wrong_leaf = StateProof(
        other_key,
        None,
        other_proof.siblings,
        OtherLeaf(_flip(other_proof.other_leaf.path, 31), other_proof.other_leaf.value_hash),
    )
    own_path = StateProof(
        other_key,
        None,
        other_proof.siblings,
        OtherLeaf(hashlib.sha256(other_key).digest(), other_proof.other_leaf.value_hash),
    )
    cases = [
        _proof_case("member", root, key, value, member),
        _proof_case("absent-empty", root, empty[0], None, empty[1]),
        _proof_case("absent-other-leaf", root, other_key, None, other_proof),
        _proof_case("tampered-value", root, key, _flip(value, len(value) - 1), member),
        _proof_case("tampered-sibling", root, key, value, tampered_sibling),
        _proof_case("wrong-key", root, _flip(key, len(key) - 1), value, member),
        _proof_case("wrong-root", _flip(root), key, value, member),
        _proof_case("member-claimed-absent", root, key, None, member),
        _proof_case("absent-claimed-present", root, empty[0], value, empty[1]),
        _proof_case("other-leaf-moved", root, other_key, None, wrong_leaf),
        _proof_case("other-leaf-is-the-key", root, other_key, None, own_path),
        _proof_case(
            "too-many-siblings",
            root,
            key,
            value,
            StateProof(member.key, member.value_hash, (siblings[0],) * 257, None),
        ),
    ]
    expected_valid = {"member", "absent-empty", "absent-other-leaf"}
    assert {c["id"] for c in cases if c["valid"]} == expected_valid, cases
    return cases


def _headers(network: Shop) -> list[Case]:
    store = network.served.node.store
    cases: list[Case] = []
    for height in (0, 1, network.served.node.head.height):
        block = network.served.call(lambda height=height: store.get_block(height))  # type: ignore[misc]
        assert block is not None, f"the node has no block {height}"
        header = block.header
        cases.append(
            {
                "id": f"block-{height}",
                "header": BlockHeader.of(header).model_dump(mode="json"),
                "hash": header.hash().hex(),
                "valid": True,
            }
        )
    changed = dict(cases[1]["header"], timestamp_ms=cases[1]["header"]["timestamp_ms"] + 1)
    cases.append(
        {"id": "tampered-timestamp", "header": changed, "hash": cases[1]["hash"], "valid": False}
    )
    return cases


def _certificate_json(certificate: CommitCertificate) -> dict[str, Any]:
    return CertificateJson.of(certificate).model_dump(mode="json")


def _certificates(network: Shop) -> list[Case]:
    node = network.served.node
    height = node.head.height
    certificate = network.served.call(lambda: node.store.get_certificate(height))
    assert certificate is not None
    chain_id = node.genesis.chain_id
    validators = node.genesis.validator_set()
    entries = list(certificate.signatures)
    outsider = PrivateKey.from_label("account:outsider")
    message = commit_signing_bytes(chain_id, height, certificate.block_hash)
    variants: dict[str, tuple[CommitCertificate, int | None]] = {
        "valid": (certificate, height),
        "bad-signature": (
            CommitCertificate(
                height,
                certificate.block_hash,
                (
                    CommitSignature(entries[0].validator, _flip(entries[0].signature, 5)),
                    *entries[1:],
                ),
            ),
            height,
        ),
        "duplicate-signer": (
            CommitCertificate(height, certificate.block_hash, (*entries, entries[0])),
            height,
        ),
        "non-member": (
            CommitCertificate(
                height,
                certificate.block_hash,
                (*entries, CommitSignature(Address(outsider.address), outsider.sign(message))),
            ),
            height,
        ),
        "below-quorum": (
            CommitCertificate(height, certificate.block_hash, tuple(entries[:2])),
            height,
        ),
        "wrong-height": (certificate, height - 1),
    }
    cases = []
    for name, (variant, expected_height) in variants.items():
        valid = _outcome(
            lambda variant=variant, expected_height=expected_height: verify_certificate(  # type: ignore[misc]
                variant, chain_id, validators, height=expected_height
            ),
            InvalidCertificate,
        )
        cases.append(
            {
                "id": name,
                "chain_id": chain_id,
                "validators": [bytes(m.public_key).hex() for m in validators.members],
                "height": expected_height,
                "certificate": _certificate_json(variant),
                "valid": valid,
            }
        )
    assert [c["id"] for c in cases if c["valid"]] == ["valid"], cases
    return cases


def _genesis(network: Shop) -> list[Case]:
    minimal = {k: v for k, v in network.document.items() if k not in ("note", "pretrusted")}
    reordered = dict(reversed(list(network.document.items())))
    changed = dict(network.document, note="another note")
    return [
        {"id": name, "document": document, "hash": parse_genesis(document).document_hash().hex()}
        for name, document in (
            ("shop", network.document),
            ("dev", dev_genesis_document()),
            ("defaults-omitted", minimal),
            ("keys-reordered", reordered),
            ("note-changed", changed),
        )
    ]


def _records(network: Shop) -> list[Case]:
    """Raw records and the JSON the RPC shows for them (built by secnode.schema)."""
    merchant = format_address(PrivateKey.from_label("account:merchant1").address)
    sharer = format_address(PrivateKey.from_label("account:sharer1").address)
    account = network.rpc("sec_getAccount", {"address": merchant, "prove": True})
    order = network.rpc("sec_getOrder", {"order_id": network.order_id, "prove": True})
    group = network.rpc("sec_getGroup", {"group_id": network.group_id, "prove": True})
    trust = network.rpc("sec_getTrustScore", {"address": merchant})
    negative = network.rpc("sec_getTrustScore", {"address": sharer})
    shown_account = {k: account[k] for k in ("public_key", "nonce", "balance", "roles", "name")}
    cases: list[Case] = [
        {"id": "account", "kind": "account", "raw": account["value"], "expected": shown_account},
        {
            "id": "order",
            "kind": "order",
            "key": network.order_id,
            "raw": order["value"],
            "expected": order["order"],
        },
        {
            "id": "group",
            "kind": "group",
            "key": network.group_id,
            "raw": group["value"],
            "expected": group["group"],
        },
        {
            "id": "score",
            "kind": "score",
            "raw": trust["values"]["score"],
            "expected": {k: trust[k] for k in ("score", "positive", "negative")},
        },
        {
            "id": "score-negative",
            "kind": "score",
            "raw": negative["values"]["score"],
            "expected": {k: negative[k] for k in ("score", "positive", "negative")},
        },
        {
            "id": "epoch",
            "kind": "epoch",
            "raw": trust["values"]["epoch"],
            "expected": trust["epoch"],
        },
    ]
    for member in group["members"]:
        shown = {k: v for k, v in member.items() if k not in ("proof", "value")}
        cases.append(
            {
                "id": f"member-{member['index']}",
                "kind": "member",
                "key": member["index"],
                "raw": member["value"],
                "expected": shown,
            }
        )
    truncated = bytes.fromhex(order["value"])
    fields = decode(truncated)
    cases.append(
        {
            "id": "order-24-fields",
            "kind": "order",
            "key": network.order_id,
            "raw": encode(fields[:-1]).hex(),
            "expected": None,
        }
    )
    return cases


_ORDER = 2**252 + 27742317777372353535851937790883648493
_SMALL_ORDER_POINT = bytes.fromhex(
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"
)


def _ed25519_case(case_id: str, public_key: bytes, message: bytes, signature: bytes) -> Case:
    return {
        "id": case_id,
        "public_key": public_key.hex(),
        "message": message.hex(),
        "signature": signature.hex(),
        "valid": verify_signature(public_key, message, signature),
    }


def _ed25519() -> list[Case]:
    """Cases beyond Wycheproof where WebCrypto alone could differ from libsodium (PyNaCl)."""
    key = PrivateKey.from_label("account:console")
    public = bytes(key.public_key)
    message = b"SEC console"
    signature = key.sign(message)
    s = int.from_bytes(signature[32:], "little")
    # A small-order public key with R = that point and S = 0: [S]B = R + [k]A holds for any
    # message when A and R have order dividing 8 and k's multiple cancels; libsodium refuses.
    identity = (1).to_bytes(32, "little")
    non_canonical_key = (2**255 - 19 + 1).to_bytes(32, "little")  # y = p + 1, i.e. y = 1
    return [
        _ed25519_case("valid", public, message, signature),
        _ed25519_case("other-message", public, message + b"!", signature),
        _ed25519_case(
            "s-plus-l", public, message, signature[:32] + (s + _ORDER).to_bytes(32, "little")
        ),
        _ed25519_case("identity-key-identity-r", identity, message, identity + bytes(32)),
        _ed25519_case(
            "small-order-key", _SMALL_ORDER_POINT, message, _SMALL_ORDER_POINT + bytes(32)
        ),
        _ed25519_case("small-order-r", public, message, _SMALL_ORDER_POINT + signature[32:]),
        _ed25519_case("non-canonical-key", non_canonical_key, message, identity + bytes(32)),
        _ed25519_case("short-key", public[:31], message, signature),
        _ed25519_case("long-signature", public, message, signature + b"\x00"),
        _ed25519_case(
            "key-sign-bit-flipped", public[:31] + bytes([public[31] ^ 0x80]), message, signature
        ),
        _ed25519_case("not-a-point", bytes([2]) + bytes(31), message, signature),
        _ed25519_case(
            "libsodium-signed",
            nacl.bindings.crypto_sign_seed_keypair(bytes(32))[0],
            message,
            nacl.bindings.crypto_sign(
                message, nacl.bindings.crypto_sign_seed_keypair(bytes(32))[1]
            )[:64],
        ),
    ]


def _address_case(case_id: str, text: str) -> Case:
    try:
        parsed: str | None = parse_address(text).hex()
    except InvalidAddress:
        parsed = None
    return {"id": case_id, "text": text, "address": parsed}


def _addresses() -> list[Case]:
    good = format_address(PrivateKey.from_label("account:merchant1").address)
    zero = format_address(bytes(20))
    swapped = good[:10] + ("q" if good[10] != "q" else "p") + good[11:]
    return [
        _address_case("merchant1", good),
        _address_case("zero", zero),
        _address_case("upper-case", good.upper()),
        _address_case("mixed-case", good[:6].upper() + good[6:]),
        _address_case("bad-checksum", swapped),
        _address_case("other-prefix", "bc1" + good[3:]),
        _address_case("too-short", good[:-1]),
        _address_case("too-long", good + "q"),
        _address_case("bad-character", good[:8] + "b" + good[9:]),
        _address_case("hex", "00" * 20),
    ]


def _msgpack_case(case_id: str, data: bytes) -> Case:
    try:
        decode(data)
        accepted = True
    except DecodeError:
        accepted = False
    return {"id": case_id, "hex": data.hex(), "accepted": accepted}


def _msgpack() -> list[Case]:
    """Encodings beyond the shared suite: canonical values accepted, every rule broken once."""
    deep: Any = 0
    for _ in range(32):
        deep = [deep]
    record = encode(
        {"a": [1, -1, 2**64 - 1, -(2**63), b"\x00" * 300, "é" * 40], "b": None, "ab": True}
    )
    return [
        _msgpack_case("nested-record", record),
        _msgpack_case("depth-32", encode(deep)),
        _msgpack_case("depth-33", b"\x91" + encode(deep)),
        _msgpack_case("unsorted-keys", b"\x82\xa1b\x01\xa1a\x02"),
        _msgpack_case("prefix-key-after", b"\x82\xa2ab\x01\xa1a\x02"),
        _msgpack_case("duplicate-key", b"\x82\xa1a\x01\xa1a\x02"),
        _msgpack_case("trailing-byte", encode(1) + b"\x00"),
        _msgpack_case("truncated", encode([1, 2, 3])[:-1]),
        _msgpack_case("empty", b""),
        _msgpack_case("invalid-utf8", b"\xa2\xc3\x28"),
        _msgpack_case("integer-key", b"\x81\x01\x02"),
        _msgpack_case("unused-c1", b"\xc1"),
        _msgpack_case("float32", b"\xca\x00\x00\x00\x00"),
        _msgpack_case("ext", b"\xd4\x01\x00"),
        _msgpack_case("positive-as-int8", b"\xd0\x01"),
        _msgpack_case("long-array-count", b"\xdd\xff\xff\xff\xff"),
        _msgpack_case("str8-for-short-text", b"\xd9\x01a"),
    ]
