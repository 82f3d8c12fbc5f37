"""Canonical encoding: deterministic msgpack, one byte string per value.

Allowed values: None, bool, int in [-2**63, 2**64 - 1], str (UTF-8), bytes, list, and dict with
str keys. Canonical form (see docs/protocol.md, "Encoding"):

* every integer, string, bytes, array and map uses the shortest msgpack form;
* str uses the str family, bytes the bin family (never mixed);
* map keys are unique and sorted by their UTF-8 bytes;
* nesting is at most `MAX_DEPTH` deep; floats, extension types and timestamps do not exist.

Invariant: `decode(b)` succeeds only if `encode(decode(b)) == b`, so a hash or signature over
encoded bytes identifies exactly one value. `decode` is the one entry point for untrusted bytes
and refuses input longer than its `max_size`.
"""

from __future__ import annotations

from typing import Any, Final

import msgpack

from ledger.errors import DecodeError, EncodeError

MAX_DEPTH: Final = 32
DEFAULT_MAX_SIZE: Final = 4 * 1024 * 1024
_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**64 - 1

Value = Any  # None | bool | int | str | bytes | list[Value] | dict[str, Value]


def _canonical(value: Value, depth: int) -> Value:
    """Return `value` with every map's keys sorted; raise EncodeError for disallowed values.

    Keys are sorted by code point, which for str is the order of their UTF-8 bytes (UTF-8
    preserves code point order), so no key is encoded just to be compared."""
    if depth > MAX_DEPTH:
        raise EncodeError(f"value nested deeper than {MAX_DEPTH} levels")
    kind = type(value)
    if kind is bytes or kind is str:
        return value
    if value is None or isinstance(value, bool | str | bytes):
        return value
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise EncodeError(f"integer {value} outside [-2**63, 2**64-1]")
        return value
    if isinstance(value, msgpack.ExtType):
        raise EncodeError(f"msgpack extension type {value.code} is not allowed")
    if isinstance(value, list | tuple):
        return [_canonical(item, depth + 1) for item in value]
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise EncodeError(f"map key {key!r} is not a str")
        return {key: _canonical(value[key], depth + 1) for key in sorted(value)}
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise EncodeError(f"type {type(value).__name__} cannot be encoded")


def _already_canonical(value: Value, depth: int) -> bool:
    """True if `value` may be packed as it is: allowed types only, every map's keys sorted.

    Sorting str keys by code point equals sorting their UTF-8 bytes (UTF-8 preserves code point
    order), so `keys == sorted(keys)` is the canonical-order test. Does not raise: anything
    unusual answers False and takes the slow path, which raises with a precise message.
    Items that are str or bytes (most of a transaction or block) are accepted in the loops
    without a call: this walk runs on every decoded transaction, so its cost is per-tx CPU.
    """
    if depth > MAX_DEPTH:
        return False
    kind = type(value)
    if kind is bytes or kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return bool(_INT_MIN <= value <= _INT_MAX)
    if kind is list:
        items: Any = value
    elif kind is dict:
        keys = list(value)
        for key in keys:
            if type(key) is not str:
                return False
        if keys != sorted(keys):
            return False
        items = value.values()
    else:
        return False
    deeper = depth + 1
    for item in items:
        item_kind = type(item)
        if item_kind is bytes or item_kind is str:
            continue
        if not _already_canonical(item, deeper):
            return False
    return True


def encode(value: Value) -> bytes:
    """Encode `value` canonically. Tuples encode as arrays; bytearray as bytes."""
    if not _already_canonical(value, 0):
        value = _canonical(value, 0)
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


def decode(data: bytes, max_size: int = DEFAULT_MAX_SIZE) -> Value:
    """Decode canonical bytes; raise DecodeError naming the problem for anything else."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    if len(data) > max_size:
        raise DecodeError(f"encoded value is {len(data)} bytes, more than the cap of {max_size}")
    if len(data) == 0:
        raise DecodeError("empty input")
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            timestamp=0,
        )
    except msgpack.ExtraData as exc:
        raise DecodeError("trailing bytes after the encoded value") from exc
    except (ValueError, TypeError, msgpack.UnpackException, RecursionError) as exc:
        raise DecodeError(f"not valid msgpack: {exc}") from exc
    # Fast path: a decoded value whose maps are already in canonical order re-packs to the input
    # iff every item used its shortest form (the C packer always picks the shortest).
    if _already_canonical(value, 0):
        canonical = msgpack.packb(value, use_bin_type=True)
    else:
        try:
            canonical = encode(value)
        except EncodeError as exc:
            raise DecodeError(f"value not allowed: {exc}") from exc
        if canonical == bytes(data):  # only reachable for values _already_canonical refuses
            raise DecodeError("value not allowed in canonical encoding")
    if canonical != bytes(data):
        raise DecodeError("non-canonical encoding (non-minimal form, unsorted or duplicate keys)")
    return value
