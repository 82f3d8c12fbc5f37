"""The validators of a network whose operators keep their own keys (`sec genesis new
--validators-file FILE` and `--validator NAME=HEX`).

Each operator runs `sec keys new` on their own machine and sends `sec keys export-public`'s line,
`{"name": NAME, "public_key": HEX}`, to whoever assembles the genesis; no private key ever leaves
its machine. A key list is those lines: a JSON array of such objects, or one object per line
(what `sec keys export-public >> keys.json` on each line gives). An object may also carry the
`"address"` that `export-public --json` adds; it must then be that key's address, which catches a
key mangled on its way. Everything is checked before anything is written: names are genesis
validator names (they become node home directories too), keys are 64 lowercase hex digits, and
neither repeats.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ledger.keys import address_of, format_address
from secnode.runtime.config import ConfigError

MAX_KEY_LIST_BYTES: Final = 1 << 20
"""A key list is at most this big (100 validators take 10 KiB)."""

_NAME: Final = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")  # genesis.json's validator name rule
_HEX_KEY: Final = re.compile(r"^[0-9a-f]{64}$")
_RESERVED: Final = frozenset({"accounts"})
"""Names that would collide with another entry of the network directory."""
_FIELDS: Final = frozenset({"name", "public_key", "address"})


class KeyListError(ConfigError):
    """A validator key list that cannot make a genesis: unreadable, malformed, or repeating."""


@dataclass(frozen=True, slots=True)
class ValidatorKey:
    """One validator whose private key stays with its operator."""

    name: str
    """Genesis validator name, also its node home directory and config name."""
    public_key: bytes
    """Its Ed25519 public key (32 bytes)."""


def read_key_list(path: Path) -> list[ValidatorKey]:
    """The validators listed in `path` (KeyListError naming the file and what is wrong)."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_KEY_LIST_BYTES + 1)
    except OSError as exc:
        raise KeyListError(f"cannot read validators file {path}: {exc.strerror}") from None
    if len(data) > MAX_KEY_LIST_BYTES:
        raise KeyListError(f"validators file {path} is over {MAX_KEY_LIST_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise KeyListError(f"validators file {path} is not UTF-8 text") from None
    return parse_key_list(text, str(path))


def parse_key_list(text: str, source: str) -> list[ValidatorKey]:
    """The validators in `text`: a JSON array of entries, or one JSON entry per line."""
    stripped = text.strip()
    if not stripped:
        raise KeyListError(f"{source}: no validators (expected `sec keys export-public` lines)")
    if stripped.startswith("["):
        entries = [(f"{source}: entry {i + 1}", e) for i, e in enumerate(_load(stripped, source))]
        if not entries:
            raise KeyListError(f"{source}: the array lists no validators")
    else:
        entries = [
            (f"{source}: line {number}", _load(line, f"{source}: line {number}"))
            for number, line in enumerate(text.splitlines(), start=1)
            if line.strip()
        ]
    return check_unique([_entry(document, where) for where, document in entries], source)


def parse_validator_option(value: str) -> ValidatorKey:
    """`--validator NAME=HEX`."""
    name, equals, key = value.partition("=")
    if not equals:
        raise KeyListError(f"--validator {value!r} is not NAME=HEX")
    return _entry({"name": name.strip(), "public_key": key.strip()}, f"--validator {value!r}")


def check_unique(keys: Iterable[ValidatorKey], source: str) -> list[ValidatorKey]:
    """`keys` as a list, if no name and no public key appears twice."""
    listed = list(keys)
    names: set[str] = set()
    public_keys: dict[bytes, str] = {}
    for key in listed:
        if key.name in names:
            raise KeyListError(f"{source}: validator name {key.name!r} appears twice")
        names.add(key.name)
        if key.public_key in public_keys:
            raise KeyListError(
                f"{source}: validators {public_keys[key.public_key]!r} and {key.name!r} have the "
                f"same public key {key.public_key.hex()}: each validator needs its own key"
            )
        public_keys[key.public_key] = key.name
    return listed


def _load(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise KeyListError(f"{where}: not JSON ({exc})") from None


def _entry(document: Any, where: str) -> ValidatorKey:
    if not isinstance(document, dict):
        raise KeyListError(
            f'{where}: expected {{"name": ..., "public_key": ...}}, got {document!r}'
        )
    unknown = sorted(set(document) - _FIELDS)
    if unknown:
        raise KeyListError(f"{where}: unknown field(s) {', '.join(map(repr, unknown))}")
    name, public_key = document.get("name"), document.get("public_key")
    if not isinstance(name, str) or not _NAME.match(name):
        raise KeyListError(
            f"{where}: name {name!r} is not a validator name (a lowercase letter, then up to 31 "
            "lowercase letters, digits, '_' or '-')"
        )
    if name in _RESERVED:
        raise KeyListError(f"{where}: name {name!r} is reserved (the network's {name}/ directory)")
    if not isinstance(public_key, str) or not _HEX_KEY.match(public_key):
        raise KeyListError(
            f"{where}: public_key of {name!r} is {public_key!r}, not 64 lowercase hex digits"
        )
    raw = bytes.fromhex(public_key)
    if "address" in document:
        expected = format_address(address_of(raw))
        if document["address"] != expected:
            raise KeyListError(
                f"{where}: address {document['address']!r} of {name!r} is not its public key's "
                f"address {expected}: the entry was altered"
            )
    return ValidatorKey(name, raw)
