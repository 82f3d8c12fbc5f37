"""The state sync messages, carried as p2p requests beside the catch-up ones (pure).

Requests are canonical msgpack maps with a "want" key (a catch-up request is {from, to}):

    {"want": "offers"}
        -> [[height, block hash, state root, chunks digest], ...]  the snapshots a peer serves,
           newest first, at most MAX_OFFERS
    {"want": "file", "height": H, "name": NAME, "offset": OFFSET}
        -> [size, piece]  bytes OFFSET.. of file NAME of the snapshot at H (manifest.json,
           proof.bin or a chunk-NNNNNN.bin it lists), and the file's size: exactly
           min(PIECE_BYTES, size - OFFSET) bytes, so a file takes at most size/PIECE_BYTES
           requests and a peer cannot drip it a byte at a time

Every answer is read with its bounds checked here; what the bytes mean (hashes, the
certificate) is checked by `secnode.statesync.fetch` and `secnode.snapshot`. A request that does
not parse is the peer's fault (InvalidPayload, charged); one for a snapshot or file this node
does not have is refused (RequestRejected, not charged: snapshots come and go).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from ledger.encoding import decode, encode
from ledger.errors import LedgerError
from p2p import InvalidPayload
from secnode.snapshot.format import MAX_FILE_BYTES, MAX_MANIFEST_BYTES

PIECE_BYTES: Final = 1024 * 1024
"""The most file bytes one answer carries: well inside a p2p frame (4 MiB)."""
MAX_OFFERS: Final = 16
"""Offers one peer may list; more are refused as malformed."""
MAX_REQUEST_BYTES: Final = 1024
MAX_NAME_LENGTH: Final = 64


class StateSyncError(LedgerError):
    """A peer's state sync answer is unusable, or state sync failed; the message says why."""


@dataclass(frozen=True, slots=True)
class Offer:
    """One snapshot a peer serves. Offers with equal fields vouch for the same chunks."""

    height: int
    block_hash: bytes
    state_root: bytes
    chunks_digest: bytes

    def to_wire(self) -> list[Any]:
        return [self.height, self.block_hash, self.state_root, self.chunks_digest]


@dataclass(frozen=True, slots=True)
class OffersRequest:
    """{"want": "offers"}"""


@dataclass(frozen=True, slots=True)
class FileRequest:
    """{"want": "file", ...}: a piece of one file of one snapshot."""

    height: int
    name: str
    offset: int


def is_state_sync(value: object) -> bool:
    """Whether a decoded request is a state sync one (not a catch-up {from, to})."""
    return isinstance(value, dict) and "want" in value


def offers_request() -> bytes:
    return encode({"want": "offers"})


def file_request(height: int, name: str, offset: int) -> bytes:
    return encode({"want": "file", "height": height, "name": name, "offset": offset})


def parse_request(value: object) -> OffersRequest | FileRequest:
    """A decoded request (`is_state_sync`) as a typed one; InvalidPayload naming the flaw."""
    if not isinstance(value, dict):
        raise InvalidPayload("state sync request must be a map")
    if value == {"want": "offers"}:
        return OffersRequest()
    if value.get("want") != "file" or set(value) != {"want", "height", "name", "offset"}:
        raise InvalidPayload("state sync request must be {want: offers} or {want: file, ...}")
    height, name, offset = value["height"], value["name"], value["offset"]
    if not _natural(height) or not _natural(offset):
        raise InvalidPayload("state sync file request: height and offset must be integers >= 0")
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_LENGTH:
        raise InvalidPayload("state sync file request: name must be a short string")
    return FileRequest(height, name, offset)


def decode_request(payload: bytes) -> object:
    """A request's decoded value (InvalidPayload if it is not canonical bytes within bounds)."""
    try:
        return decode(payload, max_size=MAX_REQUEST_BYTES)
    except LedgerError as exc:
        raise InvalidPayload(f"request does not decode: {exc}") from None


def encode_offers(offers: list[Offer]) -> bytes:
    return encode([offer.to_wire() for offer in offers[:MAX_OFFERS]])


def decode_offers(answer: bytes) -> list[Offer]:
    """A peer's offers; StateSyncError unless each is [height >= 1, 3 x 32-byte hash] and
    none is listed twice (a copy would count as a second peer vouching for it)."""
    try:
        value = decode(answer, max_size=MAX_OFFERS * 128 + 64)
    except LedgerError as exc:
        raise StateSyncError(f"offers do not decode: {exc}") from None
    if not isinstance(value, list) or len(value) > MAX_OFFERS:
        raise StateSyncError(f"offers must be a list of at most {MAX_OFFERS}")
    offers = []
    for item in value:
        if (
            not isinstance(item, list)
            or len(item) != 4
            or not _natural(item[0])
            or item[0] < 1
            or not all(isinstance(h, bytes) and len(h) == 32 for h in item[1:])
        ):
            raise StateSyncError("each offer must be [height >= 1, block hash, root, digest]")
        offers.append(Offer(item[0], item[1], item[2], item[3]))
    if len(set(offers)) != len(offers):
        raise StateSyncError("offers list the same snapshot twice")
    return offers


def encode_piece(size: int, piece: bytes) -> bytes:
    return encode([size, piece])


def decode_piece(answer: bytes, offset: int, name: str) -> tuple[int, bytes]:
    """(file size, piece) of a file answer asked at `offset`; StateSyncError unless the size
    is within the bounds of a snapshot file, `offset` inside it, and the piece exactly
    min(PIECE_BYTES, size - offset) bytes."""
    try:
        value = decode(answer, max_size=PIECE_BYTES + 64)
    except LedgerError as exc:
        raise StateSyncError(f"{name} piece does not decode: {exc}") from None
    if not isinstance(value, list) or len(value) != 2 or not isinstance(value[1], bytes):
        raise StateSyncError(f"{name} piece must be [size, bytes]")
    size, piece = value
    limit = MAX_MANIFEST_BYTES if name == "manifest.json" else MAX_FILE_BYTES
    if not _natural(size) or size > limit:
        raise StateSyncError(f"{name} size {size!r} is out of bounds (at most {limit})")
    if offset >= size or len(piece) != min(PIECE_BYTES, size - offset):
        raise StateSyncError(
            f"{name} piece at {offset} has {len(piece)} bytes, not min({PIECE_BYTES}, "
            f"{size} - {offset})"
        )
    return size, piece


def _natural(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
