"""Consensus messages: wire types, the bytes each one signs, and the one decoder for the wire.

Every message is a frozen dataclass with `to_wire()` (a list whose first item names the kind) and
is signed by its `sender` over domain-separated canonical bytes that bind the chain id and, where
the message has them, the view and sequence number (see docs/consensus.md, "Message formats"):

    PRE-PREPARE  b"SEC/pbft/pre-prepare/v1" + encode([chain_id, view, seq, digest, parent])
    PREPARE      b"SEC/pbft/prepare/v1"     + encode([chain_id, view, seq, digest])
    COMMIT       b"SEC/pbft/commit/v1"      + encode([chain_id, view, seq, digest])
    CERTIFY      ledger.certificates.commit_signing_bytes(chain_id, seq, digest)
    CHECKPOINT   b"SEC/pbft/checkpoint/v1"  + encode([chain_id, seq, digest])
    VIEW-CHANGE  b"SEC/pbft/view-change/v1" + encode([chain_id, view, checkpoint, prepared, certs])
    NEW-VIEW     b"SEC/pbft/new-view/v1"    + encode([chain_id, view, view-change ids, proposals])

The payload of a PRE-PREPARE is not signed directly: the digest is the block header hash and the
application checks that the payload hashes to it. That is what lets proofs carry a pre-prepare
without its payload. A VIEW-CHANGE's `payloads` are unsigned attachments for the same reason.

Invariant: `decode_message(encode_message(m)) == m` for every well-formed message, and
`decode_message` raises `MalformedMessage` (with the offending field) for anything else,
including non-canonical encodings and input over the size cap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Final, TypeAlias

import msgpack

from consensus.errors import MalformedMessage, MessageTooLarge
from ledger.certificates import COMMIT_CERTIFICATE_DOMAIN, CommitCertificate
from ledger.encoding import decode, encode
from ledger.errors import DecodeError, MalformedBlock
from ledger.hashing import HASH_SIZE
from ledger.keys import ADDRESS_SIZE, SIGNATURE_SIZE, Address

PRE_PREPARE_DOMAIN: Final = b"SEC/pbft/pre-prepare/v1"
PREPARE_DOMAIN: Final = b"SEC/pbft/prepare/v1"
COMMIT_DOMAIN: Final = b"SEC/pbft/commit/v1"
CHECKPOINT_DOMAIN: Final = b"SEC/pbft/checkpoint/v1"
VIEW_CHANGE_DOMAIN: Final = b"SEC/pbft/view-change/v1"
NEW_VIEW_DOMAIN: Final = b"SEC/pbft/new-view/v1"

DEFAULT_MAX_MESSAGE_BYTES: Final = 8 * 1024 * 1024
MAX_INTEGER: Final = 2**63 - 1
MAX_LIST: Final = 4096
"""Longest list any message field may hold (votes, proofs, view changes)."""

Digest = bytes
"""32-byte block header hash; what consensus orders."""


def _pack(items: list[Any]) -> bytes:
    """Canonical encoding of a flat list of str/int/bytes, ~4x faster than `encode`.

    For such lists msgpack's shortest-form packing is exactly `ledger.encoding.encode` (a unit
    test checks it); votes are signed and verified on the hot path, so the difference matters.
    """
    packed: bytes = msgpack.packb(items, use_bin_type=True)
    return packed


@dataclass(frozen=True, slots=True)
class Vote:
    """One validator's signature inside a proof."""

    sender: Address
    """The signer's address."""
    signature: bytes
    """64-byte signature over the proof's signing bytes."""

    def to_wire(self) -> list[Any]:
        return [self.sender, self.signature]


@dataclass(frozen=True, slots=True)
class PrePrepare:
    """The primary's proposal of block `digest` (child of `parent`) at `seq` in `view`."""

    KIND: ClassVar[str] = "pre-prepare"
    view: int
    """View the proposal belongs to."""
    seq: int
    """Sequence number = block height."""
    digest: Digest
    """Header hash of the proposed block."""
    parent: Digest
    """Header hash of the block at `seq - 1`."""
    payload: bytes
    """The encoded block; the application checks it hashes to `digest`."""
    sender: Address
    """The primary of `view`."""
    signature: bytes
    """Signature over `signing_bytes`."""

    def signing_bytes(self, chain_id: str) -> bytes:
        return pre_prepare_signing_bytes(chain_id, self.view, self.seq, self.digest, self.parent)

    def to_wire(self) -> list[Any]:
        return [
            self.KIND,
            self.view,
            self.seq,
            self.digest,
            self.parent,
            self.payload,
            self.sender,
            self.signature,
        ]


@dataclass(frozen=True, slots=True)
class Prepare:
    """A backup's vote that it accepted the pre-prepare for `digest` at (`view`, `seq`)."""

    KIND: ClassVar[str] = "prepare"
    view: int
    """View of the vote."""
    seq: int
    """Sequence number = block height."""
    digest: Digest
    """Header hash voted for."""
    sender: Address
    """The voting validator."""
    signature: bytes
    """Signature over `signing_bytes`."""

    def signing_bytes(self, chain_id: str) -> bytes:
        return PREPARE_DOMAIN + _pack([chain_id, self.view, self.seq, self.digest])

    def to_wire(self) -> list[Any]:
        return [self.KIND, self.view, self.seq, self.digest, self.sender, self.signature]


@dataclass(frozen=True, slots=True)
class Commit:
    """A replica's vote, bound to the view, that `digest` is prepared at `seq`."""

    KIND: ClassVar[str] = "commit"
    view: int
    """View of the vote."""
    seq: int
    """Sequence number = block height."""
    digest: Digest
    """Header hash voted for."""
    sender: Address
    """The voting validator."""
    signature: bytes
    """Signature over `signing_bytes`."""

    def signing_bytes(self, chain_id: str) -> bytes:
        return COMMIT_DOMAIN + _pack([chain_id, self.view, self.seq, self.digest])

    def to_wire(self) -> list[Any]:
        return [self.KIND, self.view, self.seq, self.digest, self.sender, self.signature]


@dataclass(frozen=True, slots=True)
class Certify:
    """A replica's certificate signature: sent only once `digest` is decided at `seq`.

    The signature is over `commit_signing_bytes(chain_id, seq, digest)`, so 2f+1 of them form a
    `CommitCertificate`. It carries no view, which is why it is sent only after the decision
    (2f+1 COMMITs in one view), never merely after preparing: see docs/consensus.md.
    """

    KIND: ClassVar[str] = "certify"
    seq: int
    """Height of the decided block."""
    digest: Digest
    """Header hash of the decided block."""
    sender: Address
    """The signing validator."""
    signature: bytes
    """Signature over `commit_signing_bytes`."""

    def signing_bytes(self, chain_id: str) -> bytes:
        """Exactly `ledger.certificates.commit_signing_bytes` (a unit test pins it)."""
        return COMMIT_CERTIFICATE_DOMAIN + _pack([chain_id, self.seq, self.digest])

    def to_wire(self) -> list[Any]:
        return [self.KIND, self.seq, self.digest, self.sender, self.signature]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A replica's statement that it delivered block `digest` at checkpoint height `seq`."""

    KIND: ClassVar[str] = "checkpoint"
    seq: int
    """Checkpoint height."""
    digest: Digest
    """Header hash of the block at `seq` (it commits to the post-execution state root)."""
    sender: Address
    """The signing validator."""
    signature: bytes
    """Signature over `signing_bytes`."""

    def signing_bytes(self, chain_id: str) -> bytes:
        return checkpoint_signing_bytes(chain_id, self.seq, self.digest)

    def to_wire(self) -> list[Any]:
        return [self.KIND, self.seq, self.digest, self.sender, self.signature]


@dataclass(frozen=True, slots=True)
class CheckpointProof:
    """A quorum of CHECKPOINT signatures for one (seq, digest); seq 0 is genesis, unsigned."""

    seq: int
    """Checkpoint height."""
    digest: Digest
    """Block header hash at `seq`."""
    votes: tuple[Vote, ...]
    """Checkpoint signatures sorted by sender."""

    def to_wire(self) -> list[Any]:
        return [self.seq, self.digest, [v.to_wire() for v in self.votes]]


@dataclass(frozen=True, slots=True)
class PreparedProof:
    """Proof that `digest` was prepared at (`view`, `seq`): the pre-prepare and 2f prepares."""

    view: int
    """View in which the block was prepared."""
    seq: int
    """Sequence number = block height."""
    digest: Digest
    """Header hash of the prepared block."""
    parent: Digest
    """Header hash of its parent, as signed in the pre-prepare."""
    primary: Address
    """The primary of `view` that signed the pre-prepare."""
    primary_signature: bytes
    """The pre-prepare signature."""
    prepares: tuple[Vote, ...]
    """2f PREPARE signatures from distinct non-primary validators, sorted by sender."""

    def pre_prepare_signing_bytes(self, chain_id: str) -> bytes:
        return pre_prepare_signing_bytes(chain_id, self.view, self.seq, self.digest, self.parent)

    def prepare_signing_bytes(self, chain_id: str) -> bytes:
        return PREPARE_DOMAIN + _pack([chain_id, self.view, self.seq, self.digest])

    def to_wire(self) -> list[Any]:
        return [
            self.view,
            self.seq,
            self.digest,
            self.parent,
            self.primary,
            self.primary_signature,
            [v.to_wire() for v in self.prepares],
        ]


@dataclass(frozen=True, slots=True)
class ViewChange:
    """A replica's request to move to `view`, with everything it knows above its checkpoint.

    Invariant (what makes the new view safe): for every height above `checkpoint.seq` up to the
    highest height this replica sent a COMMIT for, it carries either a commit certificate or its
    latest prepared proof. `payloads[i]` is the block of `prepared[i]` (unsigned attachment).
    """

    KIND: ClassVar[str] = "view-change"
    view: int
    """The view the sender wants to move to."""
    checkpoint: CheckpointProof
    """The sender's stable checkpoint."""
    prepared: tuple[PreparedProof, ...]
    """Latest prepared proof per undecided height, ascending by seq."""
    certificates: tuple[CommitCertificate, ...]
    """Commit certificates it holds above the checkpoint, ascending by height."""
    payloads: tuple[bytes, ...]
    """Blocks of `prepared`, same order; empty inside a NEW-VIEW."""
    sender: Address
    """The replica asking for the view change."""
    signature: bytes
    """Signature over `signing_bytes` (which excludes `payloads`)."""

    def signing_bytes(self, chain_id: str) -> bytes:
        body = [
            chain_id,
            self.view,
            self.checkpoint.to_wire(),
            [p.to_wire() for p in self.prepared],
            [c.to_wire() for c in self.certificates],
        ]
        return VIEW_CHANGE_DOMAIN + encode(body)

    def without_payloads(self) -> ViewChange:
        return ViewChange(
            self.view,
            self.checkpoint,
            self.prepared,
            self.certificates,
            (),
            self.sender,
            self.signature,
        )

    def to_wire(self) -> list[Any]:
        return [
            self.KIND,
            self.view,
            self.checkpoint.to_wire(),
            [p.to_wire() for p in self.prepared],
            [c.to_wire() for c in self.certificates],
            list(self.payloads),
            self.sender,
            self.signature,
        ]


@dataclass(frozen=True, slots=True)
class NewView:
    """The new primary's proof that `view` starts: a quorum of view changes and re-proposals."""

    KIND: ClassVar[str] = "new-view"
    view: int
    """The view that starts."""
    view_changes: tuple[ViewChange, ...]
    """At least a quorum of VIEW-CHANGE messages for `view`, without payloads."""
    pre_prepares: tuple[PrePrepare, ...]
    """Re-proposals in `view` of the prepared prefix the view changes determine, ascending."""
    sender: Address
    """The primary of `view`."""
    signature: bytes
    """Signature over `signing_bytes`."""

    def signing_bytes(self, chain_id: str) -> bytes:
        body = [
            chain_id,
            self.view,
            [[vc.sender, vc.signature] for vc in self.view_changes],
            [[pp.seq, pp.digest, pp.parent] for pp in self.pre_prepares],
        ]
        return NEW_VIEW_DOMAIN + encode(body)

    def to_wire(self) -> list[Any]:
        return [
            self.KIND,
            self.view,
            [vc.to_wire() for vc in self.view_changes],
            [pp.to_wire() for pp in self.pre_prepares],
            self.sender,
            self.signature,
        ]


Message: TypeAlias = PrePrepare | Prepare | Commit | Certify | Checkpoint | ViewChange | NewView
"""Any consensus message; a closed union (`Replica` dispatches over it with `assert_never`)."""


def pre_prepare_signing_bytes(
    chain_id: str, view: int, seq: int, digest: bytes, parent: bytes
) -> bytes:
    return PRE_PREPARE_DOMAIN + _pack([chain_id, view, seq, digest, parent])


def checkpoint_signing_bytes(chain_id: str, seq: int, digest: bytes) -> bytes:
    return CHECKPOINT_DOMAIN + _pack([chain_id, seq, digest])


def encode_message(message: Message) -> bytes:
    """The canonical wire bytes of `message`."""
    return encode(message.to_wire())


def decode_message(data: bytes, max_size: int = DEFAULT_MAX_MESSAGE_BYTES) -> Message:
    """Parse wire bytes; raise `MalformedMessage` (or `MessageTooLarge`) naming the problem."""
    if isinstance(data, bytes | bytearray | memoryview) and len(data) > max_size:
        raise MessageTooLarge(f"message is {len(data)} bytes, more than the cap of {max_size}")
    try:
        value = decode(bytes(data) if not isinstance(data, bytes) else data, max_size)
    except DecodeError as exc:
        raise MalformedMessage(f"not a canonical encoding: {exc}") from exc
    return message_from_wire(value)


def message_from_wire(value: Any) -> Message:
    """Build a message from its decoded wire value; raise `MalformedMessage` naming the field."""
    if not isinstance(value, list) or not value or not isinstance(value[0], str):
        raise MalformedMessage("a message is a list starting with its kind")
    parser = _PARSERS.get(value[0])
    if parser is None:
        raise MalformedMessage(f"unknown message kind {value[0]!r}")
    return parser(value)


# --- field parsers ----------------------------------------------------------------------------


def _fields(value: list[Any], count: int, kind: str) -> list[Any]:
    if len(value) != count:
        raise MalformedMessage(f"{kind} has {len(value) - 1} fields, expected {count - 1}")
    return value


def _uint(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_INTEGER:
        raise MalformedMessage(f"{name} {value!r} is not an integer in [0, 2**63-1]")
    return value


def _fixed(value: Any, size: int, name: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != size:
        shown = len(value) if isinstance(value, bytes) else type(value).__name__
        raise MalformedMessage(f"{name} must be {size} bytes, got {shown}")
    return value


def _digest(value: Any, name: str) -> bytes:
    return _fixed(value, HASH_SIZE, name)


def _address(value: Any, name: str) -> Address:
    return Address(_fixed(value, ADDRESS_SIZE, name))


def _signature(value: Any, name: str) -> bytes:
    return _fixed(value, SIGNATURE_SIZE, name)


def _list(value: Any, name: str) -> list[Any]:
    if not isinstance(value, list) or len(value) > MAX_LIST:
        raise MalformedMessage(f"{name} must be a list of at most {MAX_LIST} items")
    return value


def _votes(value: Any, name: str) -> tuple[Vote, ...]:
    votes = []
    for item in _list(value, name):
        if not isinstance(item, list) or len(item) != 2:
            raise MalformedMessage(f"each entry of {name} is [sender, signature]")
        votes.append(Vote(_address(item[0], f"{name} sender"), _signature(item[1], name)))
    return tuple(votes)


def _parse_pre_prepare(value: list[Any]) -> PrePrepare:
    _, view, seq, digest, parent, payload, sender, signature = _fields(value, 8, "pre-prepare")
    if not isinstance(payload, bytes):
        raise MalformedMessage("pre-prepare payload must be bytes")
    return PrePrepare(
        _uint(view, "view"),
        _uint(seq, "seq"),
        _digest(digest, "digest"),
        _digest(parent, "parent"),
        payload,
        _address(sender, "sender"),
        _signature(signature, "signature"),
    )


def _parse_vote(value: list[Any]) -> Prepare | Commit:
    kind, view, seq, digest, sender, signature = _fields(value, 6, value[0])
    cls = Prepare if kind == Prepare.KIND else Commit
    return cls(
        _uint(view, "view"),
        _uint(seq, "seq"),
        _digest(digest, "digest"),
        _address(sender, "sender"),
        _signature(signature, "signature"),
    )


def _parse_seq_vote(value: list[Any]) -> Certify | Checkpoint:
    kind, seq, digest, sender, signature = _fields(value, 5, value[0])
    cls = Certify if kind == Certify.KIND else Checkpoint
    return cls(
        _uint(seq, "seq"),
        _digest(digest, "digest"),
        _address(sender, "sender"),
        _signature(signature, "signature"),
    )


def checkpoint_proof_from_wire(value: Any) -> CheckpointProof:
    if not isinstance(value, list) or len(value) != 3:
        raise MalformedMessage("checkpoint proof is [seq, digest, votes]")
    return CheckpointProof(
        _uint(value[0], "checkpoint seq"),
        _digest(value[1], "checkpoint digest"),
        _votes(value[2], "checkpoint votes"),
    )


def prepared_proof_from_wire(value: Any) -> PreparedProof:
    if not isinstance(value, list) or len(value) != 7:
        raise MalformedMessage("prepared proof is [view, seq, digest, parent, primary, sig, votes]")
    return PreparedProof(
        _uint(value[0], "prepared view"),
        _uint(value[1], "prepared seq"),
        _digest(value[2], "prepared digest"),
        _digest(value[3], "prepared parent"),
        _address(value[4], "prepared primary"),
        _signature(value[5], "prepared primary signature"),
        _votes(value[6], "prepared votes"),
    )


def _parse_certificate(value: Any) -> CommitCertificate:
    try:
        return CommitCertificate.from_wire(value)
    except MalformedBlock as exc:
        raise MalformedMessage(f"view-change certificate: {exc}") from exc


def _parse_view_change(value: list[Any]) -> ViewChange:
    _, view, checkpoint, prepared, certificates, payloads, sender, signature = _fields(
        value, 8, "view-change"
    )
    payload_list = _list(payloads, "view-change payloads")
    if not all(isinstance(p, bytes) for p in payload_list):
        raise MalformedMessage("view-change payloads must be bytes")
    return ViewChange(
        _uint(view, "view"),
        checkpoint_proof_from_wire(checkpoint),
        tuple(prepared_proof_from_wire(p) for p in _list(prepared, "view-change prepared")),
        tuple(_parse_certificate(c) for c in _list(certificates, "view-change certificates")),
        tuple(payload_list),
        _address(sender, "sender"),
        _signature(signature, "signature"),
    )


def _parse_new_view(value: list[Any]) -> NewView:
    _, view, view_changes, pre_prepares, sender, signature = _fields(value, 6, "new-view")
    changes = []
    for item in _list(view_changes, "new-view view changes"):
        if not isinstance(item, list) or not item or item[0] != ViewChange.KIND:
            raise MalformedMessage("new-view view changes must be view-change messages")
        change = _parse_view_change(item)
        if change.payloads:
            raise MalformedMessage("view changes inside a new-view carry no payloads")
        changes.append(change)
    proposals = []
    for item in _list(pre_prepares, "new-view pre-prepares"):
        if not isinstance(item, list) or not item or item[0] != PrePrepare.KIND:
            raise MalformedMessage("new-view re-proposals must be pre-prepare messages")
        proposals.append(_parse_pre_prepare(item))
    return NewView(
        _uint(view, "view"),
        tuple(changes),
        tuple(proposals),
        _address(sender, "sender"),
        _signature(signature, "signature"),
    )


_PARSERS: Final[dict[str, Callable[[list[Any]], Message]]] = {
    PrePrepare.KIND: _parse_pre_prepare,
    Prepare.KIND: _parse_vote,
    Commit.KIND: _parse_vote,
    Certify.KIND: _parse_seq_vote,
    Checkpoint.KIND: _parse_seq_vote,
    ViewChange.KIND: _parse_view_change,
    NewView.KIND: _parse_new_view,
}
