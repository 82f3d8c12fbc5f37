"""The sans-io handshake: mutual authentication, allowlist, impersonation, replay, tampering."""

from __future__ import annotations

from collections.abc import Container

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from ledger.encoding import decode, encode
from ledger.keys import PrivateKey, PublicKey
from p2p.errors import (
    BadHandshakeSignature,
    ChainMismatch,
    HandshakeError,
    HandshakeOutOfOrder,
    MalformedHandshake,
    PeerIdentityMismatch,
    ProtocolMismatch,
    SelfConnection,
    UnknownPeer,
)
from p2p.handshake import InitiatorHandshake, ResponderHandshake, SessionKeys

ALICE = PrivateKey.from_label("p2p-alice")
BOB = PrivateKey.from_label("p2p-bob")
MALLORY = PrivateKey.from_label("p2p-mallory")
CHAIN = "sec-test"
ALLOWED = frozenset({ALICE.public_key, BOB.public_key})


class Impostor:
    """Claims `claimed`'s node key but can only sign with its own."""

    def __init__(self, claimed: PublicKey, signer: PrivateKey) -> None:
        self.public_key = claimed
        self._signer = signer

    def sign(self, message: bytes) -> bytes:
        return self._signer.sign(message)


def run_handshake(
    initiator: InitiatorHandshake, responder: ResponderHandshake
) -> tuple[SessionKeys, SessionKeys, tuple[bytes, bytes, bytes]]:
    message_1 = initiator.first_message()
    message_2 = responder.respond(message_1)
    message_3, initiator_keys = initiator.finish(message_2)
    return initiator_keys, responder.finish(message_3), (message_1, message_2, message_3)


def pair(
    *,
    initiator: PrivateKey | Impostor = ALICE,
    responder: PrivateKey | Impostor = BOB,
    expected: PublicKey | None = BOB.public_key,
    allowed: Container[PublicKey] = ALLOWED,
) -> tuple[InitiatorHandshake, ResponderHandshake]:
    return (
        InitiatorHandshake(initiator, CHAIN, allowed, expected),
        ResponderHandshake(responder, CHAIN, allowed),
    )


def test_handshake_authenticates_both_sides_and_agrees_on_keys() -> None:
    alice_keys, bob_keys, _ = run_handshake(*pair())
    assert alice_keys.remote_key == BOB.public_key
    assert bob_keys.remote_key == ALICE.public_key
    assert alice_keys.send_key == bob_keys.receive_key
    assert alice_keys.receive_key == bob_keys.send_key
    assert alice_keys.send_key != alice_keys.receive_key
    assert alice_keys.transcript_hash == bob_keys.transcript_hash


def test_each_session_has_fresh_keys() -> None:
    first, _, _ = run_handshake(*pair())
    second, _, _ = run_handshake(*pair())
    assert first.send_key != second.send_key
    assert first.transcript_hash != second.transcript_hash


def test_invalid_unknown_initiator_is_refused() -> None:
    initiator = InitiatorHandshake(MALLORY, CHAIN, ALLOWED, BOB.public_key)
    responder = ResponderHandshake(BOB, CHAIN, ALLOWED)
    with pytest.raises(UnknownPeer, match="is not on the allowlist"):
        run_handshake(initiator, responder)


def test_invalid_unknown_responder_is_refused() -> None:
    initiator = InitiatorHandshake(ALICE, CHAIN, ALLOWED, None)
    responder = ResponderHandshake(MALLORY, CHAIN, ALLOWED)
    with pytest.raises(UnknownPeer):
        run_handshake(initiator, responder)


def test_invalid_dialled_peer_proves_another_allowlisted_key() -> None:
    allowed = ALLOWED | {MALLORY.public_key}
    initiator, responder = pair(responder=MALLORY, expected=BOB.public_key, allowed=allowed)
    with pytest.raises(PeerIdentityMismatch, match=r"dialled sec1.* but the peer proved sec1"):
        run_handshake(initiator, responder)


def test_invalid_responder_impersonating_another_node() -> None:
    initiator, responder = pair(responder=Impostor(BOB.public_key, MALLORY))
    with pytest.raises(BadHandshakeSignature, match="signature does not verify"):
        run_handshake(initiator, responder)


def test_invalid_initiator_impersonating_another_node() -> None:
    initiator, responder = pair(initiator=Impostor(ALICE.public_key, MALLORY))
    with pytest.raises(BadHandshakeSignature, match="signature does not verify"):
        run_handshake(initiator, responder)


def test_invalid_replayed_message_3() -> None:
    _, _, (message_1, _, message_3) = run_handshake(*pair())
    responder = ResponderHandshake(BOB, CHAIN, ALLOWED)
    responder.respond(message_1)  # a fresh ephemeral: the old message 3 cannot match
    with pytest.raises(BadHandshakeSignature, match="failed authentication"):
        responder.finish(message_3)


def test_invalid_replayed_message_2() -> None:
    _, _, (_, message_2, _) = run_handshake(*pair())
    initiator = InitiatorHandshake(ALICE, CHAIN, ALLOWED, BOB.public_key)
    with pytest.raises(BadHandshakeSignature):
        initiator.finish(message_2)


def test_invalid_swapped_identity_in_message_2() -> None:
    """A man in the middle re-sealing message 2 with his own ephemeral is caught."""
    initiator, responder = pair()
    message_2 = decode(responder.respond(initiator.first_message()))
    mallory_ephemeral = X25519PrivateKey.generate().public_key().public_bytes_raw()
    forged = encode({"e": mallory_ephemeral, "sealed": message_2["sealed"]})
    with pytest.raises(BadHandshakeSignature):
        initiator.finish(forged)


@pytest.mark.parametrize("index", [1, 2])
def test_invalid_tampered_handshake_message(index: int) -> None:
    initiator, responder = pair()
    message_1 = initiator.first_message()
    message_2 = responder.respond(message_1)
    if index == 1:
        tampered = bytearray(message_2)
        tampered[-5] ^= 0x01
        with pytest.raises(HandshakeError):
            initiator.finish(bytes(tampered))
        return
    message_3, _ = initiator.finish(message_2)
    tampered = bytearray(message_3)
    tampered[-5] ^= 0x01
    with pytest.raises(HandshakeError):
        responder.finish(bytes(tampered))


def test_invalid_chain_mismatch() -> None:
    initiator = InitiatorHandshake(ALICE, "other-chain", ALLOWED, BOB.public_key)
    with pytest.raises(ChainMismatch, match="peer is on chain 'other-chain', we are on 'sec-test'"):
        ResponderHandshake(BOB, CHAIN, ALLOWED).respond(initiator.first_message())


def test_invalid_protocol_version() -> None:
    message_1 = encode({"chain": CHAIN, "e": bytes(32), "v": 2})
    with pytest.raises(ProtocolMismatch, match="version 2, we speak 1"):
        ResponderHandshake(BOB, CHAIN, ALLOWED).respond(message_1)


@pytest.mark.parametrize(
    ("message", "match"),
    [
        (b"\xff\x00garbage", "not canonical msgpack"),
        (encode([1, 2]), "must be a map of"),
        (encode({"chain": CHAIN, "e": b"short", "v": 1}), "ephemeral must be 32 bytes, got 5"),
        (encode({"chain": CHAIN, "e": "text", "v": 1}), "field 'e' must be bytes, got str"),
        (encode({"chain": CHAIN, "e": bytes(32), "v": 1, "x": 0}), "must be a map of"),
        (encode({"chain": CHAIN, "e": bytes(32), "v": 1}), "low-order point"),
        (b"\x00" * 2000, "cap is 1024"),
    ],
)
def test_invalid_malformed_handshake(message: bytes, match: str) -> None:
    with pytest.raises(MalformedHandshake, match=match):
        ResponderHandshake(BOB, CHAIN, ALLOWED).respond(message)


def test_invalid_self_connection() -> None:
    initiator, responder = pair(responder=ALICE, expected=None)
    with pytest.raises(SelfConnection, match="our own node key"):
        run_handshake(initiator, responder)


def test_invalid_out_of_order_steps_change_nothing() -> None:
    initiator, responder = pair()
    with pytest.raises(HandshakeOutOfOrder, match="message 3 in state expect_message_1"):
        responder.finish(b"")
    message_2 = responder.respond(initiator.first_message())  # still usable
    with pytest.raises(HandshakeOutOfOrder, match="message 1 in state expect_message_3"):
        responder.respond(initiator.first_message())
    message_3, _ = initiator.finish(message_2)
    with pytest.raises(HandshakeOutOfOrder, match="already finished"):
        initiator.finish(message_2)
    assert responder.finish(message_3).remote_key == ALICE.public_key


FIELD_NAMES = st.sampled_from(["e", "sealed", "s", "sig", "chain", "v"])
FIELD_VALUES = st.one_of(
    st.binary(max_size=80), st.integers(-(2**63), 2**64 - 1), st.text(max_size=5)
)


@given(st.dictionaries(FIELD_NAMES, FIELD_VALUES, max_size=4))
def test_arbitrary_message_2_raises_only_handshake_errors(fields: dict[str, object]) -> None:
    initiator = InitiatorHandshake(ALICE, CHAIN, ALLOWED, BOB.public_key)
    with pytest.raises(HandshakeError):
        initiator.finish(encode(fields))


@given(st.binary(max_size=120))
def test_arbitrary_sealed_identity_raises_only_handshake_errors(sealed: bytes) -> None:
    initiator, responder = pair()
    responder.respond(initiator.first_message())
    with pytest.raises(HandshakeError):
        responder.finish(encode({"sealed": sealed}))
