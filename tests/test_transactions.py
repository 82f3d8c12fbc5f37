"""Transaction envelope and body schemas: a sign/encode/decode roundtrip for every type, and one
test_invalid_* per envelope rule and per kind of body rule (docs/protocol.md, "Transactions")."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from typing import Any

import pytest

from contracts import TX_TYPES
from contracts.groups import GroupCancel, GroupJoin, GroupOpen
from contracts.orders import (
    OrderArrive,
    OrderCancel,
    OrderConfirm,
    OrderCreate,
    OrderDispute,
    OrderItem,
    OrderPay,
    OrderPickup,
    OrderResolve,
    OrderReturn,
    OrderReturnReceived,
    OrderReturnShip,
    OrderShip,
)
from contracts.referral import ReferralBind
from contracts.reviews import ReviewPost, ReviewReply
from contracts.trust import Attest
from ledger.encoding import decode, encode
from ledger.errors import InvalidRegistration, InvalidSignature, MalformedTransaction
from ledger.keys import PrivateKey, format_address, verify_signature
from ledger.schema import MAX_AMOUNT, Optional, field, integer, to_wire
from ledger.transactions import (
    MAX_NONCE,
    MAX_TRANSACTION_SIZE,
    AccountRegister,
    AccountRoles,
    Burn,
    Mint,
    ParameterSet,
    SignedTransaction,
    Transfer,
    TxBody,
    ValidatorUpdate,
    decode_transaction,
    sign_transaction,
    signing_bytes,
    verify_transaction,
)
from secnode.network.devnet import dev_genesis_hash

CHAIN = "sec-devnet"
GENESIS = dev_genesis_hash()
"""The committed genesis.json's document hash: part of every signature on the dev network."""
KEY = PrivateKey.from_label("account:buyer1")
OTHER = PrivateKey.from_label("account:sharer1").address
MERCHANT = PrivateKey.from_label("account:merchant1").address
ARBITER = PrivateKey.from_label("account:arbiter").address
NEW_KEY = PrivateKey.from_label("validator:node4").public_key
ORDER = hashlib.sha256(b"order").digest()
SHIPMENT = hashlib.sha256(b"shipment").digest()

SAMPLES: dict[str, Any] = {
    "account.register": AccountRegister(NEW_KEY, ("merchant", "member"), "tea shop"),
    "account.roles": AccountRoles(OTHER, ("arbiter",), ("merchant",)),
    "credit.mint": Mint(OTHER, 1),
    "credit.burn": Burn(MAX_AMOUNT),
    "credit.transfer": Transfer(OTHER, 500, "thanks for the tea"),
    "param.set": ParameterSet("ship_deadline_s", 600),
    "validator.update": ValidatorUpdate((NEW_KEY,), (OTHER,)),
    "referral.bind": ReferralBind(OTHER),
    "order.create": OrderCreate(
        buyer=KEY.address,
        items=(OrderItem("tea-1", 2, 1500), OrderItem("cup", 1, 0, returnable=False)),
        shipping=800,
        arbiter=ARBITER,
        sharer=OTHER,
        commission_bps=500,
        leader=MERCHANT,
        leader_commission_bps=300,
    ),
    "order.pay": OrderPay(ORDER, 3800, SHIPMENT),
    "order.ship": OrderShip(ORDER, SHIPMENT),
    "order.confirm": OrderConfirm(ORDER),
    "order.cancel": OrderCancel(ORDER),
    "order.dispute": OrderDispute(ORDER, SHIPMENT),
    "order.resolve": OrderResolve(ORDER, 0),
    "order.arrive": OrderArrive(ORDER),
    "order.pickup": OrderPickup(ORDER, bytes(range(16))),
    "order.return": OrderReturn(ORDER, (0, 2)),
    "order.return-ship": OrderReturnShip(ORDER, SHIPMENT),
    "order.return-received": OrderReturnReceived(ORDER),
    "trust.attest": Attest(ORDER, MERCHANT, -1),
    "review.post": ReviewPost(ORDER, 4, b"\x05" * 32, b"\x06" * 32),
    "review.reply": ReviewReply(ORDER, b"\x07" * 32),
    "group.open": GroupOpen(
        SHIPMENT, 3000, 2, 10, 1_800_000_000, 500, 200, ARBITER, MERCHANT, 300, 1_000
    ),
    "group.join": GroupJoin(ORDER, 2700, OTHER, 500, b"\x08" * 32),
    "group.cancel": GroupCancel(ORDER),
}
"""One body per transaction type, every optional field set."""

MINIMAL: dict[str, Any] = {
    "account.register": AccountRegister(NEW_KEY, ()),
    "account.roles": AccountRoles(OTHER, (), ()),
    "credit.transfer": Transfer(OTHER, 1),
    "validator.update": ValidatorUpdate((), ()),
    "order.create": OrderCreate(KEY.address, (OrderItem("x", 1, 0),), 0, ARBITER),
    "order.pay": OrderPay(ORDER, 1),
    "order.dispute": OrderDispute(ORDER),
    "trust.attest": Attest(ORDER, MERCHANT, 1),
    "review.post": ReviewPost(ORDER, 1, b"\x05" * 32, None),
    "group.join": GroupJoin(ORDER, 3200, None, None),
    "group.open": GroupOpen(SHIPMENT, 3000, 2, 10, 1_800_000_000, 0, 0, ARBITER),
}
"""Bodies with every optional field absent and lists empty or minimal."""

ROUNDTRIP_CASES = list(SAMPLES.items()) + list(MINIMAL.items())

OPTIONAL_FIELDS = [
    (tx_type, spec.name)
    for tx_type, cls in TX_TYPES.bodies.items()
    for spec in dataclasses.fields(cls)
    if isinstance(spec.metadata["kind"], Optional)
]


def _sign(tx_type: str = "credit.transfer", body: Any = None, nonce: int = 0) -> SignedTransaction:
    body = SAMPLES[tx_type] if body is None else body
    return sign_transaction(KEY, CHAIN, nonce, body, genesis_hash=GENESIS)


def _wire(tx_type: str = "credit.transfer") -> dict[str, Any]:
    """The decoded wire map of a valid signed transaction (fresh, safe to mutate)."""
    wire: dict[str, Any] = decode(_sign(tx_type).encoded)
    return wire


# --- roundtrip ---------------------------------------------------------------------------------


def test_samples_cover_every_transaction_type() -> None:
    assert set(SAMPLES) == set(TX_TYPES.bodies)
    for tx_type, body in SAMPLES.items():
        assert isinstance(body, TX_TYPES.bodies[tx_type])
        assert tx_type == type(body).TYPE


@pytest.mark.parametrize(
    ("tx_type", "body"),
    ROUNDTRIP_CASES,
    ids=[f"{t}-{i}" for i, (t, _) in enumerate(ROUNDTRIP_CASES)],
)
def test_sign_encode_decode_roundtrip(tx_type: str, body: Any) -> None:
    tx = sign_transaction(KEY, CHAIN, 42, body, genesis_hash=GENESIS)
    decoded = decode_transaction(tx.encoded, TX_TYPES)
    assert decoded == tx
    assert decoded.body == body
    assert decoded.hash == tx.hash == hashlib.sha256(tx.encoded).digest()
    assert encode(decoded.to_wire()) == tx.encoded
    # Ed25519 is deterministic, so signing again gives the same bytes and the same hash.
    assert sign_transaction(KEY, CHAIN, 42, body, genesis_hash=GENESIS).hash == tx.hash
    verify_transaction(decoded, GENESIS)
    assert verify_signature(KEY.public_key, decoded.signing_bytes(GENESIS), decoded.signature)
    assert decoded.sender_address == KEY.address


@pytest.mark.parametrize("tx_type", sorted(SAMPLES))
def test_signing_bytes_are_domain_prefix_and_encoded_list(tx_type: str) -> None:
    tx = _sign(tx_type)
    body_wire = to_wire(SAMPLES[tx_type])
    expected = b"SEC/tx/v2" + encode([CHAIN, GENESIS, KEY.public_key, 0, tx_type, body_wire])
    assert tx.signing_bytes(GENESIS) == expected
    assert signing_bytes(CHAIN, GENESIS, KEY.public_key, 0, SAMPLES[tx_type]) == expected


def test_envelope_wire_is_exactly_the_six_fields() -> None:
    wire = _wire()
    assert set(wire) == {"chain_id", "sender", "nonce", "type", "body", "signature"}
    assert wire["sender"] == KEY.public_key
    assert len(wire["signature"]) == 64


@pytest.mark.parametrize(("tx_type", "name"), OPTIONAL_FIELDS)
def test_optional_field_none_is_omitted_from_the_wire(tx_type: str, name: str) -> None:
    body = dataclasses.replace(SAMPLES[tx_type], **{name: None})
    wire = _sign(tx_type, body).to_wire()
    assert name not in wire["body"]
    assert name in _wire(tx_type)["body"]  # and present when set


def test_hash_is_stable_and_distinct_per_transaction() -> None:
    hashes = {sign_transaction(KEY, CHAIN, n, Burn(1), genesis_hash=GENESIS).hash for n in range(3)}
    assert len(hashes) == 3


def test_largest_order_within_the_size_cap_is_accepted() -> None:
    items = tuple(OrderItem("s" * 64, 1_000_000, MAX_AMOUNT) for _ in range(64))
    body = OrderCreate(KEY.address, items, MAX_AMOUNT, ARBITER, OTHER, 10_000)
    tx = sign_transaction(KEY, CHAIN, MAX_NONCE, body, genesis_hash=GENESIS)
    assert len(tx.encoded) <= MAX_TRANSACTION_SIZE
    assert decode_transaction(tx.encoded, TX_TYPES) == tx


# --- envelope rules ----------------------------------------------------------------------------


def _reject(wire: Any, match: str) -> None:
    with pytest.raises(MalformedTransaction, match=match):
        decode_transaction(encode(wire), TX_TYPES)


@pytest.mark.parametrize("name", ["chain_id", "sender", "nonce", "type", "body", "signature"])
def test_invalid_envelope_missing_field(name: str) -> None:
    wire = _wire()
    del wire[name]
    _reject(wire, f"missing field '{name}'")


def test_invalid_envelope_unknown_field() -> None:
    _reject(_wire() | {"fee": 1}, "unknown field 'fee'")


@pytest.mark.parametrize("value", [[1, 2], "tx", 7, None, b"\x01"])
def test_invalid_envelope_not_a_map(value: Any) -> None:
    _reject(value, "transaction must be a map")


ENVELOPE_CASES: list[tuple[str, Any, str]] = [
    ("chain_id", 1, r"chain_id: expected text, got int"),
    ("chain_id", b"sec-devnet", r"chain_id: expected text, got bytes"),
    ("chain_id", "", r"chain_id: length 0 outside \[1, 64\]"),
    ("chain_id", "c" * 65, r"chain_id: length 65 outside \[1, 64\]"),
    ("chain_id", "sec\ndevnet", r"chain_id: control characters"),
    ("sender", KEY.public_key[:31], r"sender: expected 32 bytes, got 31"),
    ("sender", KEY.public_key + b"\x00", r"sender: expected 32 bytes, got 33"),
    ("sender", KEY.public_key.hex(), r"sender: expected 32 bytes, got str"),
    ("sender", KEY.address, r"sender: expected 32 bytes, got 20"),
    ("signature", bytes(63), r"signature: expected 64 bytes, got 63"),
    ("signature", bytes(65), r"signature: expected 64 bytes, got 65"),
    ("signature", "00" * 64, r"signature: expected 64 bytes, got str"),
    ("nonce", -1, r"nonce: -1 is outside \[0, 9223372036854775807\]"),
    ("nonce", MAX_NONCE + 1, r"nonce: 9223372036854775808 is outside"),
    ("nonce", 2**64 - 1, r"nonce: 18446744073709551615 is outside"),
    ("nonce", True, r"nonce: expected an integer, got bool"),
    ("nonce", "0", r"nonce: expected an integer, got str"),
    ("type", "credit.steal", r"type: unknown transaction type 'credit.steal'"),
    ("type", "Credit.Transfer", r"type: unknown transaction type"),
    ("type", b"credit.transfer", r"type: unknown transaction type b'credit.transfer'"),
    ("type", None, r"type: unknown transaction type None"),
    ("body", [], r"body: expected a map, got list"),
    ("body", None, r"body: expected a map, got NoneType"),
]


@pytest.mark.parametrize(
    ("name", "value", "match"), ENVELOPE_CASES, ids=[f"{n}-{m[:24]}" for n, _, m in ENVELOPE_CASES]
)
def test_invalid_envelope_field(name: str, value: Any, match: str) -> None:
    _reject(_wire() | {name: value}, match)


def test_invalid_body_of_another_type() -> None:
    _reject(_wire() | {"type": "credit.burn"}, "body: unknown field 'memo'")


def test_invalid_oversized_bytes_rejected_before_decoding() -> None:
    with pytest.raises(MalformedTransaction, match=f"more than the cap of {MAX_TRANSACTION_SIZE}"):
        decode_transaction(b"\xc0" * (MAX_TRANSACTION_SIZE + 1), TX_TYPES)


def _oversized_order() -> OrderCreate:
    # Text limits count characters, not bytes: 64 items of 64 four-byte characters pass every
    # field rule but make an encoding larger than the transaction cap.
    items = tuple(OrderItem("\U0001d11e" * 64, 1, 1) for _ in range(64))
    return OrderCreate(KEY.address, items, 0, ARBITER)


def test_invalid_oversized_transaction_cannot_be_signed() -> None:
    with pytest.raises(MalformedTransaction, match="more than the cap"):
        sign_transaction(KEY, CHAIN, 0, _oversized_order(), genesis_hash=GENESIS)


def test_invalid_oversized_transaction_cannot_be_decoded() -> None:
    wire = _wire() | {"type": "order.create", "body": to_wire(_oversized_order())}
    data = encode(wire)
    assert len(data) > MAX_TRANSACTION_SIZE
    with pytest.raises(MalformedTransaction, match="more than the cap"):
        decode_transaction(data, TX_TYPES)


def _encode_envelope_with(raw_values: dict[str, bytes]) -> bytes:
    """Hand-assemble an envelope map, substituting pre-encoded bytes for some values."""
    wire = _wire()
    items = sorted(wire.items(), key=lambda item: item[0].encode())
    parts = [encode(key) + raw_values.get(key, encode(value)) for key, value in items]
    return bytes([0x80 | len(items)]) + b"".join(parts)


def test_hand_assembled_envelope_matches_the_encoder() -> None:
    assert _encode_envelope_with({}) == _sign().encoded


NON_CANONICAL: list[tuple[str, Callable[[], bytes]]] = [
    ("nonce as uint64", lambda: _encode_envelope_with({"nonce": b"\xcf" + bytes(8)})),
    ("nonce as uint8", lambda: _encode_envelope_with({"nonce": b"\xcc\x00"})),
    ("chain id as str16", lambda: _encode_envelope_with({"chain_id": b"\xda\x00\x0a" + b"s" * 10})),
    (
        "sender as bin16",
        lambda: _encode_envelope_with({"sender": b"\xc5\x00\x20" + KEY.public_key}),
    ),
    ("trailing byte", lambda: _sign().encoded + b"\xc0"),
    ("map16 header", lambda: b"\xde\x00\x06" + _sign().encoded[1:]),
    ("truncated", lambda: _sign().encoded[:-1]),
    ("empty", lambda: b""),
]


@pytest.mark.parametrize("make", [m for _, m in NON_CANONICAL], ids=[n for n, _ in NON_CANONICAL])
def test_invalid_non_canonical_bytes(make: Callable[[], bytes]) -> None:
    with pytest.raises(MalformedTransaction, match="transaction bytes"):
        decode_transaction(make(), TX_TYPES)


def test_invalid_unsorted_map_keys() -> None:
    wire = _wire()
    items = sorted(wire.items(), key=lambda item: item[0].encode(), reverse=True)
    data = bytes([0x80 | len(items)]) + b"".join(encode(k) + encode(v) for k, v in items)
    with pytest.raises(MalformedTransaction, match="non-canonical"):
        decode_transaction(data, TX_TYPES)


def test_invalid_duplicate_map_key() -> None:
    data = _sign().encoded
    duplicate = encode("nonce") + encode(0)
    with pytest.raises(MalformedTransaction, match="non-canonical"):
        decode_transaction(bytes([data[0] + 1]) + data[1:] + duplicate, TX_TYPES)


@pytest.mark.parametrize(("tx_type", "name"), OPTIONAL_FIELDS)
def test_invalid_explicit_null_optional_field(tx_type: str, name: str) -> None:
    # An absent optional field has exactly one wire form (omitted). Accepting an explicit null
    # would give one signed transaction two encodings, hence two hashes (and two order ids).
    wire = _wire(tx_type)
    wire["body"][name] = None
    _reject(wire, f"body.{name}: .*omitted")


# --- signatures --------------------------------------------------------------------------------


TAMPERING: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    ("body amount", lambda w: w["body"].update(amount=w["body"]["amount"] + 1)),
    ("body recipient", lambda w: w["body"].update(to=MERCHANT)),
    ("body memo", lambda w: w["body"].update(memo="thanks for the tee")),
    ("body memo removed", lambda w: w["body"].pop("memo")),
    ("chain id", lambda w: w.update(chain_id="sec-testnet")),
    ("nonce", lambda w: w.update(nonce=1)),
    ("sender", lambda w: w.update(sender=PrivateKey.from_label("account:buyer2").public_key)),
    (
        "signature bit",
        lambda w: w.update(signature=bytes([w["signature"][0] ^ 1]) + w["signature"][1:]),
    ),
]


@pytest.mark.parametrize("tamper", [t for _, t in TAMPERING], ids=[n for n, _ in TAMPERING])
def test_invalid_tampered_transaction_fails_signature(
    tamper: Callable[[dict[str, Any]], None],
) -> None:
    wire = _wire()
    tamper(wire)
    tx = decode_transaction(encode(wire), TX_TYPES)  # still well-formed ...
    with pytest.raises(InvalidSignature, match="signature does not verify"):
        verify_transaction(tx, GENESIS)  # ... but not what the sender signed


def test_invalid_type_is_signed() -> None:
    wire = _wire("order.confirm")
    wire["type"] = "order.cancel"  # same body class, different meaning
    with pytest.raises(InvalidSignature):
        verify_transaction(decode_transaction(encode(wire), TX_TYPES), GENESIS)


def test_invalid_chain_id_is_signed() -> None:
    devnet = _sign()
    other = sign_transaction(
        KEY, "sec-testnet", 0, SAMPLES["credit.transfer"], genesis_hash=GENESIS
    )
    assert devnet.signing_bytes(GENESIS) != other.signing_bytes(GENESIS)
    replayed = decode_transaction(encode(devnet.to_wire() | {"chain_id": "sec-testnet"}), TX_TYPES)
    with pytest.raises(InvalidSignature):
        verify_transaction(replayed, GENESIS)
    verify_transaction(other, GENESIS)


def test_invalid_genesis_is_signed() -> None:
    # Two networks with the same chain id and the same key registered: a signature made for
    # one verifies only against that network's genesis hash.
    tx = _sign()
    other_genesis = hashlib.sha256(b"another network").digest()
    assert tx.signing_bytes(GENESIS) != tx.signing_bytes(other_genesis)
    with pytest.raises(InvalidSignature, match=f"genesis {other_genesis.hex()[:16]}"):
        verify_transaction(tx, other_genesis)
    verify_transaction(tx, GENESIS)


def test_invalid_signature_by_another_key() -> None:
    forged = sign_transaction(
        PrivateKey.from_label("account:buyer2"),
        CHAIN,
        0,
        Transfer(OTHER, 500),
        genesis_hash=GENESIS,
    )
    wire = _wire() | {"signature": forged.signature}
    with pytest.raises(InvalidSignature):
        verify_transaction(decode_transaction(encode(wire), TX_TYPES), GENESIS)


@dataclasses.dataclass(frozen=True, slots=True)
class _Untyped(TxBody):
    """A body class that forgot its TYPE."""

    amount: int = field(integer(1, 10), "fen")


def test_invalid_sign_body_without_a_type_name() -> None:
    # A body cannot be signed under another type's name any more (mypy rejects that call: see
    # test_typed_bodies.py); what is left to refuse at run time is a class naming no type.
    with pytest.raises(InvalidRegistration, match="body class _Untyped declares no TYPE name"):
        sign_transaction(KEY, CHAIN, 0, _Untyped(1), genesis_hash=GENESIS)


def test_sign_takes_the_type_from_the_body_class() -> None:
    # order.confirm and order.cancel share one wire schema but not one class, nor one signature.
    confirm = sign_transaction(KEY, CHAIN, 0, OrderConfirm(ORDER), genesis_hash=GENESIS)
    cancel = sign_transaction(KEY, CHAIN, 0, OrderCancel(ORDER), genesis_hash=GENESIS)
    assert (confirm.type, cancel.type) == ("order.confirm", "order.cancel")
    assert confirm.to_wire()["body"] == cancel.to_wire()["body"]
    assert confirm.signature != cancel.signature
    assert isinstance(decode_transaction(cancel.encoded, TX_TYPES).body, OrderCancel)


@pytest.mark.parametrize(
    ("tx_type", "body", "match"),
    [
        ("credit.transfer", Transfer(OTHER, 0), r"body.amount: 0 is outside"),
        ("credit.mint", Mint(OTHER[:19], 1), r"body.to: expected 20 bytes, got 19"),
        ("account.register", AccountRegister(NEW_KEY, ("root",)), r"body.roles\[0\]: 'root'"),
        ("trust.attest", Attest(ORDER, OTHER, 0), r"body.value: 0 is not one of"),
    ],
)
def test_invalid_sign_revalidates_the_body(tx_type: str, body: Any, match: str) -> None:
    with pytest.raises(MalformedTransaction, match=match):
        sign_transaction(KEY, CHAIN, 0, body, genesis_hash=GENESIS)


@pytest.mark.parametrize("nonce", [-1, MAX_NONCE + 1])
def test_invalid_sign_nonce_out_of_range(nonce: int) -> None:
    with pytest.raises(MalformedTransaction, match="nonce"):
        _sign(nonce=nonce)


# --- body rules --------------------------------------------------------------------------------


def _set(**changes: Any) -> Callable[[dict[str, Any]], None]:
    return lambda body: body.update(changes)


def _drop(name: str) -> Callable[[dict[str, Any]], None]:
    return lambda body: body.pop(name)


def _set_item(index: int, **changes: Any) -> Callable[[dict[str, Any]], None]:
    return lambda body: body["items"][index].update(changes)


BODY_CASES: list[tuple[str, str, Callable[[dict[str, Any]], None], str]] = [
    # (name, type, mutation of the valid sample's wire body, expected message)
    ("missing field", "credit.transfer", _drop("amount"), r"body: missing field 'amount'"),
    ("missing struct field", "order.create", _drop("arbiter"), r"body: missing field 'arbiter'"),
    ("unknown field", "credit.transfer", _set(fee=1), r"body: unknown field 'fee'"),
    ("unknown field on burn", "credit.burn", _set(to=OTHER), r"body: unknown field 'to'"),
    ("address as text", "credit.transfer", _set(to="sec1abc"), r"body.to: expected 20 .*got str"),
    ("address too long", "credit.transfer", _set(to=OTHER + b"\x00"), r"body.to: .*got 21"),
    ("address too short", "referral.bind", _set(inviter=OTHER[:19]), r"body.inviter: .*got 19"),
    ("public key length", "account.register", _set(public_key=bytes(33)), r"public_key: .*got 33"),
    ("order id length", "order.pay", _set(order_id=ORDER[:31]), r"body.order_id: .*got 31"),
    ("hash as list", "order.ship", _set(shipment_hash=[1, 2]), r"shipment_hash: .*got list"),
    ("amount zero", "credit.transfer", _set(amount=0), r"body.amount: 0 is outside \[1, "),
    ("amount negative", "credit.mint", _set(amount=-5), r"body.amount: -5 is outside"),
    (
        "amount above 2**63-1",
        "credit.burn",
        _set(amount=2**63),
        r"body.amount: 9223372036854775808",
    ),
    ("amount as text", "order.pay", _set(amount="3800"), r"body.amount: expected an integer"),
    ("bool for int", "credit.transfer", _set(amount=True), r"body.amount: .*integer, got bool"),
    ("bool for refund", "order.resolve", _set(refund=False), r"body.refund: .*integer, got bool"),
    ("refund negative", "order.resolve", _set(refund=-1), r"body.refund: -1 is outside"),
    ("param value negative", "param.set", _set(value=-1), r"body.value: -1 is outside"),
    ("param name empty", "param.set", _set(name=""), r"body.name: length 0 outside \[1, 64\]"),
    ("param name too long", "param.set", _set(name="p" * 65), r"body.name: length 65 outside"),
    ("memo too long", "credit.transfer", _set(memo="m" * 141), r"body.memo: length 141 outside"),
    ("memo newline", "credit.transfer", _set(memo="a\nb"), r"body.memo: control characters"),
    ("memo NUL", "credit.transfer", _set(memo="a\x00"), r"body.memo: control characters"),
    ("memo as bytes", "credit.transfer", _set(memo=b"hi"), r"body.memo: expected text, got bytes"),
    ("name too long", "account.register", _set(name="n" * 65), r"body.name: length 65 outside"),
    ("name tab", "account.register", _set(name="a\tb"), r"body.name: control characters"),
    ("roles not a list", "account.register", _set(roles="admin"), r"body.roles: expected a list"),
    ("duplicate roles", "account.register", _set(roles=["admin", "admin"]), r"must be unique"),
    ("duplicate grant", "account.roles", _set(grant=["member", "member"]), r"body.grant: .*unique"),
    ("unknown role", "account.register", _set(roles=["root"]), r"body.roles\[0\]: 'root' is not"),
    ("role wrong case", "account.roles", _set(revoke=["Admin"]), r"body.revoke\[0\]: 'Admin'"),
    ("too many roles", "account.roles", _set(grant=["member"] * 7), r"7 items, allowed \[0, 6\]"),
    ("too many validators", "validator.update", _set(add=[NEW_KEY] * 65), r"body.add: 65 items"),
    ("duplicate validator", "validator.update", _set(add=[NEW_KEY] * 2), r"body.add: .*unique"),
    ("validator key length", "validator.update", _set(add=[OTHER]), r"body.add\[0\]: .*got 20"),
    ("removal by key", "validator.update", _set(remove=[NEW_KEY]), r"body.remove\[0\]: .*got 32"),
    ("no items", "order.create", _set(items=[]), r"body.items: 0 items, allowed \[1, 64\]"),
    ("too many items", "order.create", _set(items=[{}] * 65), r"body.items: 65 items"),
    ("item not a map", "order.create", _set(items=["tea"]), r"body.items\[0\]: expected a map"),
    ("item quantity 0", "order.create", _set_item(1, quantity=0), r"items\[1\].quantity: 0 is"),
    ("item quantity big", "order.create", _set_item(0, quantity=10**6 + 1), r"quantity: 1000001"),
    ("item price negative", "order.create", _set_item(0, unit_price=-1), r"unit_price: -1 is"),
    ("item sku empty", "order.create", _set_item(0, sku=""), r"items\[0\].sku: length 0"),
    ("item unknown field", "order.create", _set_item(0, colour=1), r"unknown field 'colour'"),
    ("commission 10001", "order.create", _set(commission_bps=10_001), r"10001 is outside"),
    ("commission negative", "order.create", _set(commission_bps=-1), r"commission_bps: -1 is"),
    ("sharer length", "order.create", _set(sharer=OTHER[:10]), r"body.sharer: .*got 10"),
    ("shipping bool", "order.create", _set(shipping=True), r"body.shipping: .*got bool"),
    ("attest value 0", "trust.attest", _set(value=0), r"body.value: 0 is not one of \[1, -1\]"),
    ("attest value 2", "trust.attest", _set(value=2), r"body.value: 2 is not one of"),
    ("attest value -2", "trust.attest", _set(value=-2), r"body.value: -2 is not one of"),
    ("attest value true", "trust.attest", _set(value=True), r"body.value: True is not one of"),
    ("attest value text", "trust.attest", _set(value="+1"), r"body.value: '\+1' is not one of"),
    ("reason hash length", "order.dispute", _set(reason_hash=bytes(33)), r"reason_hash: .*got 33"),
]


@pytest.mark.parametrize(
    ("tx_type", "mutate", "match"),
    [(t, m, e) for _, t, m, e in BODY_CASES],
    ids=[name for name, *_ in BODY_CASES],
)
def test_invalid_body(tx_type: str, mutate: Callable[[dict[str, Any]], None], match: str) -> None:
    wire = _wire(tx_type)
    mutate(wire["body"])
    _reject(wire, match)


def test_protocol_document_worked_example() -> None:
    # These values are printed in docs/protocol.md, "Worked example": change both together.
    sharer = PrivateKey.from_label("account:sharer1").address
    assert format_address(KEY.address) == "sec12h9tjj93usyg7zlar3ys2d50k3chymguddax0q"
    assert format_address(sharer) == "sec1qwfg89y02uv4q5pkla6nzps6daam32v9m3lgpr"
    tx = sign_transaction(KEY, CHAIN, 0, Transfer(sharer, 500), genesis_hash=GENESIS)
    assert tx.signing_bytes(GENESIS).hex() == (
        "5345432f74782f763296aa7365632d6465766e6574c4209e773a5b88c50077ae27120deb6f705b3928e65e99"
        "a00aa0b1c0f7c5df15cbf1c420082f3a87224d268eed989c8fae169dc7f21da7e264ca9e34461ce3d72532c3"
        "f700af6372656469742e7472616e7366657282a6616d6f756e74cd01f4a2746fc414039283948f5719505036"
        "ff7531061a6f7bb8a985"
    )
    assert tx.hash.hex() == "61c84814ce0a93ed788bf46f2e3b0a63f2e3d8e1b9a800a9592ed7ccd2cc38e5"
    assert GENESIS.hex() == "9e773a5b88c50077ae27120deb6f705b3928e65e99a00aa0b1c0f7c5df15cbf1"
