"""Field types of the RPC schema: how bytes, hashes and addresses look in JSON.

Conventions (docs/rpc.md, "Encoding"):

* bytes are lowercase hex without "0x" (`HexBytes`, `Hash32`); a model holds them as `bytes`,
  so a client reads ledger values, not text;
* addresses (20 bytes) are checksummed sec1 text (`AddressBytes`); a model holds the 20 bytes;
* integers stay JSON numbers (amounts go up to 2**63 - 1: JavaScript clients need a big-integer
  aware parser);
* inside transaction bodies and receipt events every 20-byte value is an address (no other field
  of those has that size), so `json_value` applies the address rule by size there.

Invariant: a value that validates serializes back to the same JSON text the node sent (for the
lowercase hex and checksummed addresses the node always sends), so a client that parses an
answer and prints it with `model_dump(mode="json")` prints what the node answered.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    ValidationError,
    WithJsonSchema,
)

from ledger.errors import InvalidAddress
from ledger.hashing import HASH_SIZE
from ledger.keys import ADDRESS_SIZE, format_address, parse_address
from ledger.validation import validation_problems

MAX_PROBLEMS_SHOWN: Final = 3
"""`problems_text` names at most this many fields (and counts the rest)."""


def _bytes_from_hex(value: object) -> bytes:
    """Hex text (from JSON) or bytes (from Python) as bytes; ValueError naming the bad value."""
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected hex text, got {type(value).__name__}")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise ValueError(f"not hex: {value[:80]!r}") from None


def _hash_from_hex(value: object) -> bytes:
    data = _bytes_from_hex(value)
    if len(data) != HASH_SIZE:
        raise ValueError(f"a hash is {HASH_SIZE} bytes ({2 * HASH_SIZE} hex), got {len(data)}")
    return data


def _address_from_text(value: object) -> bytes:
    """sec1 text (from JSON) or 20 bytes (from Python); ValueError naming the bad value."""
    if isinstance(value, bytes):
        if len(value) != ADDRESS_SIZE:
            raise ValueError(f"an address is {ADDRESS_SIZE} bytes, got {len(value)}")
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected sec1 address text, got {type(value).__name__}")
    try:
        return parse_address(value)
    except InvalidAddress as exc:
        raise ValueError(str(exc)) from None


def address_text(text: str) -> str:
    """Checksummed sec1 text, lowercased; ValueError naming what is wrong with it."""
    _address_from_text(text)
    return text.lower()


_JSON_TEXT: Final = WithJsonSchema({"type": "string"})
_AS_HEX: Final = PlainSerializer(bytes.hex, return_type=str)

HexBytes = Annotated[bytes, BeforeValidator(_bytes_from_hex), _AS_HEX, _JSON_TEXT]
"""Bytes of any length; JSON: lowercase hex."""
Hash32 = Annotated[bytes, BeforeValidator(_hash_from_hex), _AS_HEX, _JSON_TEXT]
"""A 32-byte hash or root; JSON: 64 hex characters."""
AddressBytes = Annotated[
    bytes,
    BeforeValidator(_address_from_text),
    PlainSerializer(format_address, return_type=str),
    _JSON_TEXT,
]
"""A 20-byte account address; JSON: checksummed sec1 text."""


class StrictModel(BaseModel):
    """Base of every schema model: no coercion (a string is not a number), no unknown fields,
    immutable once validated."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


def json_value(value: Any) -> Any:
    """A wire value (as in bodies and events) with bytes rendered per the module conventions."""
    if isinstance(value, bytes):
        return format_address(value) if len(value) == ADDRESS_SIZE else value.hex()
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return value


def problems_text(exc: ValidationError) -> str:
    """The problems of `exc` as one line: "header.height: Input should be a valid integer"."""
    problems = validation_problems(exc, bare_value_errors=True)
    shown = "; ".join(
        f"{path or '(result)'}: {message}" for path, message in problems[:MAX_PROBLEMS_SHOWN]
    )
    hidden = len(problems) - MAX_PROBLEMS_SHOWN
    return shown if hidden <= 0 else f"{shown}; and {hidden} more"
