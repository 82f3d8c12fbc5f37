"""The mutual-authentication handshake, as two sans-io state machines (bytes in, bytes out).

Theory of operation (docs/p2p.md, "Handshake", has the byte layout). It is Noise-XX-shaped with
Ed25519 signatures in place of static Diffie-Hellman, SIGMA-style:

1. initiator -> responder: `{chain, e, v}` - a fresh X25519 ephemeral `e_i`.
2. responder -> initiator: `{e, sealed}` - a fresh ephemeral `e_r`, and sealed under a key from
   DH(e_r, e_i): the responder's node key and its signature over the transcript so far.
3. initiator -> responder: `{sealed}` - sealed the same way: the initiator's node key and its
   signature over the transcript including message 2.

Both sides then derive two directional AES-256-GCM record keys from DH(e_i, e_r) salted with the
hash of the whole transcript. The transcript hash starts from the protocol name and chain id.

Why this is enough:

* Each signature covers both fresh ephemerals, so a recorded handshake is useless: replaying
  message 1 or 3 meets a new ephemeral and fails; replaying message 2 fails the same way.
* A node key and its signature are sealed under the ephemeral DH key, so a man in the middle who
  swaps them (identity misbinding) cannot produce the seal; and the record keys are salted with
  the transcript, so any difference between the two sides' views yields different keys and the
  first record fails authentication.
* Ephemeral-only DH gives forward secrecy: a node key stolen later decrypts no past session.

Policy checked here, after the signature proves the key: the key is not our own, is the one we
meant to dial (initiator), and is on the allowlist. Each failure raises a specific
`HandshakeError` naming the keys involved. A step that raises leaves the machine unusable for a
retry (the caller closes the connection), and calling a step out of order raises
`HandshakeOutOfOrder` without changing anything.

Ephemeral keys come from the operating system's CSPRNG (`X25519PrivateKey.generate`), never
from an injected seeded generator: their secrecy is the security of the session. Tests may pass
a fixed ephemeral.
"""

from __future__ import annotations

import hashlib
from collections.abc import Container
from dataclasses import dataclass
from typing import Final, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ledger.encoding import decode, encode
from ledger.errors import DecodeError
from ledger.keys import (
    PUBLIC_KEY_SIZE,
    SIGNATURE_SIZE,
    PublicKey,
    address_of,
    format_address,
    verify_signature,
)
from p2p.errors import (
    BadHandshakeSignature,
    ChainMismatch,
    HandshakeOutOfOrder,
    MalformedHandshake,
    PeerIdentityMismatch,
    ProtocolMismatch,
    SelfConnection,
    UnknownPeer,
)

PROTOCOL_VERSION: Final = 1
PROTOCOL_NAME: Final = b"SEC/p2p/v1"
MAX_HANDSHAKE_MESSAGE: Final = 1024
"""Handshake messages are a few hundred bytes; anything longer is refused unread."""

EPHEMERAL_SIZE: Final = 32
_ZERO_NONCE: Final = bytes(12)
_RESPONDER_CONTEXT: Final = PROTOCOL_NAME + b" responder signature"
_INITIATOR_CONTEXT: Final = PROTOCOL_NAME + b" initiator signature"
_HANDSHAKE_INFO: Final = PROTOCOL_NAME + b" handshake keys"
_TRANSPORT_INFO: Final = PROTOCOL_NAME + b" transport keys"


class NodeIdentity(Protocol):
    """What the handshake needs of our node key (`ledger.keys.PrivateKey` or `Signer`)."""

    @property
    def public_key(self) -> PublicKey: ...

    def sign(self, message: bytes) -> bytes: ...


@dataclass(frozen=True, slots=True)
class SessionKeys:
    """The outcome of a successful handshake."""

    remote_key: PublicKey
    """The peer's proven, allowlisted Ed25519 node key."""

    send_key: bytes
    """AES-256-GCM key for records we send."""

    receive_key: bytes
    """AES-256-GCM key for records we receive."""

    transcript_hash: bytes
    """SHA-256 of the whole handshake; identical on both sides, unique per session."""


def describe_key(key: bytes) -> str:
    """A node key as its checksummed address, for logs and error messages."""
    return format_address(address_of(key)) if len(key) == PUBLIC_KEY_SIZE else key.hex()


def _hash(*parts: bytes) -> bytes:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return digest.digest()


def _initial_hash(chain_id: str) -> bytes:
    return _hash(PROTOCOL_NAME, b"\x00", chain_id.encode("utf-8"))


def _derive_pair(shared: bytes, salt: bytes, info: bytes) -> tuple[bytes, bytes]:
    """Two 32-byte keys: (initiator-to-responder, responder-to-initiator)."""
    material = HKDF(algorithm=hashes.SHA256(), length=64, salt=salt, info=info).derive(shared)
    return material[:32], material[32:]


def _public_bytes(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _exchange(private: X25519PrivateKey, remote: bytes) -> bytes:
    try:
        return private.exchange(X25519PublicKey.from_public_bytes(remote))
    except ValueError:
        # cryptography refuses low-order points (an all-zero shared secret).
        raise MalformedHandshake("peer ephemeral key is a low-order point") from None


def _decode_map(message: bytes, what: str, fields: dict[str, type]) -> dict[str, object]:
    """Decode a handshake map with exactly `fields`, each of its exact type."""
    if len(message) > MAX_HANDSHAKE_MESSAGE:
        raise MalformedHandshake(f"{what} is {len(message)} bytes, cap is {MAX_HANDSHAKE_MESSAGE}")
    try:
        value = decode(message, max_size=MAX_HANDSHAKE_MESSAGE)
    except DecodeError as exc:
        raise MalformedHandshake(f"{what} is not canonical msgpack: {exc}") from None
    if not isinstance(value, dict) or set(value) != set(fields):
        shape = sorted(value) if isinstance(value, dict) else type(value).__name__
        raise MalformedHandshake(f"{what} must be a map of {sorted(fields)}, got {shape}")
    for name, expected in fields.items():
        if type(value[name]) is not expected:
            raise MalformedHandshake(
                f"{what} field {name!r} must be {expected.__name__}, "
                f"got {type(value[name]).__name__}"
            )
    return value


def _fixed_bytes(value: object, size: int, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != size:
        length = len(value) if isinstance(value, bytes) else type(value).__name__
        raise MalformedHandshake(f"{what} must be {size} bytes, got {length}")
    return value


def _seal_identity(identity: NodeIdentity, key: bytes, transcript: bytes, context: bytes) -> bytes:
    """Our node key and its signature over `transcript`, sealed under `key`."""
    static = bytes(identity.public_key)
    signature = identity.sign(context + _hash(transcript, static))
    payload = encode({"s": static, "sig": signature})
    return AESGCM(key).encrypt(_ZERO_NONCE, payload, transcript)


def _open_identity(sealed: bytes, key: bytes, transcript: bytes, context: bytes) -> PublicKey:
    """The peer's node key from its sealed identity, once its signature is verified."""
    try:
        payload = AESGCM(key).decrypt(_ZERO_NONCE, sealed, transcript)
    except InvalidTag:
        raise BadHandshakeSignature(
            "peer's sealed identity failed authentication (tampered, replayed or wrong session)"
        ) from None
    fields = _decode_map(payload, "sealed identity", {"s": bytes, "sig": bytes})
    static = _fixed_bytes(fields["s"], PUBLIC_KEY_SIZE, "node key")
    signature = _fixed_bytes(fields["sig"], SIGNATURE_SIZE, "signature")
    if not verify_signature(static, context + _hash(transcript, static), signature):
        raise BadHandshakeSignature(
            f"peer claims node key {describe_key(static)} but its signature does not verify"
        )
    return PublicKey(static)


def _check_policy(
    remote: PublicKey,
    own: PublicKey,
    allowed: Container[PublicKey],
    expected: PublicKey | None,
) -> None:
    if remote == own:
        raise SelfConnection(f"peer proved our own node key {describe_key(own)}")
    if expected is not None and remote != expected:
        raise PeerIdentityMismatch(
            f"dialled {describe_key(expected)} but the peer proved {describe_key(remote)}"
        )
    if remote not in allowed:
        raise UnknownPeer(f"node key {describe_key(remote)} is not on the allowlist")


class InitiatorHandshake:
    """The dialling side: `first_message()`, then `finish(message_2) -> (message_3, keys)`."""

    __slots__ = ("_allowed", "_ephemeral", "_expected", "_finished", "_hash", "_identity", "_m1")

    def __init__(
        self,
        identity: NodeIdentity,
        chain_id: str,
        allowed: Container[PublicKey],
        expected: PublicKey | None,
        ephemeral: X25519PrivateKey | None = None,
    ) -> None:
        self._identity = identity
        self._allowed = allowed
        self._expected = expected
        self._ephemeral = ephemeral if ephemeral is not None else X25519PrivateKey.generate()
        self._m1 = encode(
            {"chain": chain_id, "e": _public_bytes(self._ephemeral), "v": PROTOCOL_VERSION}
        )
        self._hash = _hash(_initial_hash(chain_id), self._m1)
        self._finished = False

    def first_message(self) -> bytes:
        """Message 1: our ephemeral, protocol version and chain id."""
        return self._m1

    def finish(self, message_2: bytes) -> tuple[bytes, SessionKeys]:
        """Check message 2; return message 3 and the session keys, or raise HandshakeError."""
        if self._finished:
            raise HandshakeOutOfOrder("initiator handshake already finished")
        self._finished = True
        fields = _decode_map(message_2, "handshake message 2", {"e": bytes, "sealed": bytes})
        remote_ephemeral = _fixed_bytes(fields["e"], EPHEMERAL_SIZE, "responder ephemeral")
        shared = _exchange(self._ephemeral, remote_ephemeral)
        transcript_1 = _hash(self._hash, remote_ephemeral)
        to_responder, to_initiator = _derive_pair(shared, transcript_1, _HANDSHAKE_INFO)
        sealed = fields["sealed"]
        if not isinstance(sealed, bytes):  # checked by _decode_map; narrows the type
            raise MalformedHandshake("sealed identity must be bytes")
        remote = _open_identity(sealed, to_initiator, transcript_1, _RESPONDER_CONTEXT)
        _check_policy(remote, self._identity.public_key, self._allowed, self._expected)
        transcript_2 = _hash(self._hash, message_2)
        sealed_3 = _seal_identity(self._identity, to_responder, transcript_2, _INITIATOR_CONTEXT)
        message_3 = encode({"sealed": sealed_3})
        transcript_3 = _hash(transcript_2, message_3)
        send, receive = _derive_pair(shared, transcript_3, _TRANSPORT_INFO)
        return message_3, SessionKeys(remote, send, receive, transcript_3)


class ResponderHandshake:
    """The accepting side: `respond(message_1) -> message_2`, then `finish(message_3) -> keys`."""

    __slots__ = (
        "_allowed",
        "_chain_id",
        "_ephemeral",
        "_hash",
        "_identity",
        "_keys",
        "_shared",
        "_state",
    )

    def __init__(
        self,
        identity: NodeIdentity,
        chain_id: str,
        allowed: Container[PublicKey],
        ephemeral: X25519PrivateKey | None = None,
    ) -> None:
        self._identity = identity
        self._chain_id = chain_id
        self._allowed = allowed
        self._ephemeral = ephemeral if ephemeral is not None else X25519PrivateKey.generate()
        self._hash = b""
        self._shared = b""
        self._keys = (b"", b"")
        self._state = "expect_message_1"

    def respond(self, message_1: bytes) -> bytes:
        """Check message 1 (version, chain); return message 2 carrying our sealed identity."""
        if self._state != "expect_message_1":
            raise HandshakeOutOfOrder(f"responder got message 1 in state {self._state}")
        self._state = "failed"
        fields = _decode_map(message_1, "handshake message 1", {"chain": str, "e": bytes, "v": int})
        if fields["v"] != PROTOCOL_VERSION:
            raise ProtocolMismatch(
                f"peer speaks protocol version {fields['v']}, we speak {PROTOCOL_VERSION}"
            )
        if fields["chain"] != self._chain_id:
            raise ChainMismatch(
                f"peer is on chain {fields['chain']!r}, we are on {self._chain_id!r}"
            )
        remote_ephemeral = _fixed_bytes(fields["e"], EPHEMERAL_SIZE, "initiator ephemeral")
        self._shared = _exchange(self._ephemeral, remote_ephemeral)
        transcript_0 = _hash(_initial_hash(self._chain_id), message_1)
        own_ephemeral = _public_bytes(self._ephemeral)
        transcript_1 = _hash(transcript_0, own_ephemeral)
        self._keys = _derive_pair(self._shared, transcript_1, _HANDSHAKE_INFO)
        sealed = _seal_identity(self._identity, self._keys[1], transcript_1, _RESPONDER_CONTEXT)
        message_2 = encode({"e": own_ephemeral, "sealed": sealed})
        self._hash = _hash(transcript_0, message_2)
        self._state = "expect_message_3"
        return message_2

    def finish(self, message_3: bytes) -> SessionKeys:
        """Check message 3 and the initiator's identity; return the session keys."""
        if self._state != "expect_message_3":
            raise HandshakeOutOfOrder(f"responder got message 3 in state {self._state}")
        self._state = "failed"
        fields = _decode_map(message_3, "handshake message 3", {"sealed": bytes})
        sealed = fields["sealed"]
        if not isinstance(sealed, bytes):  # checked by _decode_map; narrows the type
            raise MalformedHandshake("sealed identity must be bytes")
        remote = _open_identity(sealed, self._keys[0], self._hash, _INITIATOR_CONTEXT)
        _check_policy(remote, self._identity.public_key, self._allowed, None)
        transcript_3 = _hash(self._hash, message_3)
        to_responder, to_initiator = _derive_pair(self._shared, transcript_3, _TRANSPORT_INFO)
        self._state = "finished"
        return SessionKeys(remote, to_initiator, to_responder, transcript_3)
