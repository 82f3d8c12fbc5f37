"""A tiny strict schema language for transaction bodies and other wire maps.

Core types are frozen dataclasses; each field declares its wire kind in `metadata["kind"]`.
`parse_struct(cls, value, where)` turns a decoded wire map into an instance, rejecting missing
fields, unknown fields and wrong types with a `MalformedTransaction` naming the field path.
Optional fields (kind wrapped in `Optional`) are None when absent from the wire; `to_wire`
omits them when None and `parse_struct` rejects an explicit None, so each value has exactly one
wire form (otherwise one signed transaction would have two encodings, hence two hashes).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any, Final, TypeVar

from ledger.errors import MalformedTransaction

_CONTROL: Final = re.compile("[\x00-\x1f]")
"""The control characters (code points below 32) that text fields refuse."""
MAX_AMOUNT: Final = 2**63 - 1
"""Largest amount of credits in one field: fits a signed 64-bit integer everywhere."""

Kind = Callable[[Any, str], Any]
T = TypeVar("T")


def _fail(where: str, message: str) -> MalformedTransaction:
    return MalformedTransaction(f"{where}: {message}")


def integer(minimum: int, maximum: int) -> Kind:
    def check(value: Any, where: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise _fail(where, f"expected an integer, got {type(value).__name__}")
        if not minimum <= value <= maximum:
            raise _fail(where, f"{value} is outside [{minimum}, {maximum}]")
        return value

    return check


def raw_bytes(size: int) -> Kind:
    def check(value: Any, where: str) -> bytes:
        if not isinstance(value, bytes):
            raise _fail(where, f"expected {size} bytes, got {type(value).__name__}")
        if len(value) != size:
            raise _fail(where, f"expected {size} bytes, got {len(value)}")
        return value

    return check


def text(max_length: int, *, min_length: int = 0) -> Kind:
    def check(value: Any, where: str) -> str:
        if not isinstance(value, str):
            raise _fail(where, f"expected text, got {type(value).__name__}")
        if not min_length <= len(value) <= max_length:
            raise _fail(where, f"length {len(value)} outside [{min_length}, {max_length}]")
        if _CONTROL.search(value) is not None:
            raise _fail(where, "control characters are not allowed")
        return value

    return check


def one_of(*choices: Any) -> Kind:
    def check(value: Any, where: str) -> Any:
        if isinstance(value, bool) or value not in choices:
            raise _fail(where, f"{value!r} is not one of {list(choices)}")
        return value

    return check


def list_of(item: Kind, *, max_items: int, min_items: int = 0, unique: bool = False) -> Kind:
    def check(value: Any, where: str) -> tuple[Any, ...]:
        if not isinstance(value, list | tuple):
            raise _fail(where, f"expected a list, got {type(value).__name__}")
        if not min_items <= len(value) <= max_items:
            raise _fail(where, f"{len(value)} items, allowed [{min_items}, {max_items}]")
        parsed = tuple(item(v, f"{where}[{i}]") for i, v in enumerate(value))
        if unique and len(set(parsed)) != len(parsed):
            raise _fail(where, "items must be unique")
        return parsed

    return check


def struct(cls: type[Any]) -> Kind:
    def check(value: Any, where: str) -> Any:
        return parse_struct(cls, value, where)

    return check


class Optional:
    """Marks a field kind as optional: absent on the wire means None (never an explicit None)."""

    def __init__(self, kind: Kind) -> None:
        self.kind = kind


def field(kind: Kind | Optional, doc: str = "") -> Any:
    """Declare a dataclass field with its wire kind (doc is for readers and OpenRPC)."""
    if isinstance(kind, Optional):
        return dataclasses.field(default=None, metadata={"kind": kind, "doc": doc})
    return dataclasses.field(metadata={"kind": kind, "doc": doc})


_Layout = tuple[tuple[tuple[str, Any], ...], frozenset[str], tuple[str, ...]]
_LAYOUTS: dict[type[Any], _Layout] = {}


def _layout(cls: type[Any]) -> _Layout:
    """A schema class's (name, kind) pairs in field order, its field names, and the names in
    canonical (sorted) order: computed once per class (a fixed set), as every transaction is
    parsed and signed through them."""
    layout = _LAYOUTS.get(cls)
    if layout is None:
        fields = dataclasses.fields(cls)
        layout = _LAYOUTS[cls] = (
            tuple((spec.name, spec.metadata["kind"]) for spec in fields),
            frozenset(spec.name for spec in fields),
            tuple(sorted(spec.name for spec in fields)),
        )
    return layout


def parse_struct(cls: type[T], value: Any, where: str = "body") -> T:
    """Build `cls` from a wire map, strictly."""
    if not isinstance(value, dict):
        raise _fail(where, f"expected a map, got {type(value).__name__}")
    kinds, names, _ = _layout(cls)
    if not names.issuperset(value):
        unknown = sorted(set(value) - names)
        raise _fail(where, f"unknown field {unknown[0]!r}")
    arguments: dict[str, Any] = {}
    for name, kind in kinds:
        if isinstance(kind, Optional):
            if name not in value:
                arguments[name] = None
            elif value[name] is None:
                raise _fail(f"{where}.{name}", "an absent optional field must be omitted, not null")
            else:
                arguments[name] = kind.kind(value[name], f"{where}.{name}")
        else:
            if name not in value:
                raise _fail(where, f"missing field {name!r}")
            arguments[name] = kind(value[name], f"{where}.{name}")
    return cls(**arguments)


def to_wire(instance: Any) -> dict[str, Any]:
    """The wire map of a schema dataclass: None-valued optional fields are omitted."""
    out: dict[str, Any] = {}
    # Keys in canonical (sorted) order, so encoding takes the packer's fast path.
    for name in _layout(type(instance))[2]:
        item = getattr(instance, name)
        if item is None:
            continue
        out[name] = _wire_value(item)
    return out


def _wire_value(item: Any) -> Any:
    kind = type(item)
    if kind is bytes or kind is int or kind is str:
        return item
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        return to_wire(item)
    if isinstance(item, tuple | list):
        return [_wire_value(v) for v in item]
    return item
