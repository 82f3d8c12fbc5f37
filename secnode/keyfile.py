"""Key files: an Ed25519 seed as JSON with mode 0600, optionally bound to one network's genesis.

Format (`type` "sec-ed25519-key/v1"): {"type", "seed": hex, "public_key": hex, "address": sec1,
"genesis": hex (optional)}. Reading checks the permissions (no group or other access), the format,
that the stored public key matches the seed, and the genesis field's shape. Used by the node (its
node.key), `sec keys` and `sec tx --key`, and `sec genesis new`.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ledger.keys import SEED_SIZE, PrivateKey, format_address


class KeyFileError(Exception):
    """A key file that is missing, unreadable, malformed or has the wrong permissions."""


KEY_FILE_TYPE: Final = "sec-ed25519-key/v1"


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A key file's contents."""

    key: PrivateKey
    """The private key."""
    genesis_hash: bytes | None
    """Genesis document hash of the network the key was made for (optional field "genesis";
    None in key files written before it existed, or made with no network in mind). `sec`
    refuses to sign with this key for a node whose genesis differs."""


def write_key_file(
    path: Path, key: PrivateKey, *, overwrite: bool = False, genesis_hash: bytes | None = None
) -> None:
    """Write `key` as JSON with mode 0600 (created that way, never world-readable in between),
    recording `genesis_hash` (the network it is for) when given."""
    if path.exists() and not overwrite:
        raise KeyFileError(f"{path} already exists; refusing to overwrite a key")
    document = {
        "type": KEY_FILE_TYPE,
        "seed": key.seed.hex(),
        "public_key": key.public_key.hex(),
        "address": format_address(key.address),
    }
    if genesis_hash is not None:
        document["genesis"] = genesis_hash.hex()
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    descriptor = os.open(path, flags, 0o600)
    try:
        os.fchmod(descriptor, 0o600)
        os.write(descriptor, (json.dumps(document, indent=2) + "\n").encode())
    finally:
        os.close(descriptor)


def read_key_file(path: Path) -> PrivateKey:
    """Load a key file, checking permissions, format and that the stored public key matches."""
    return read_key_record(path).key


def read_key_record(path: Path) -> KeyRecord:
    """Load a key file with its optional genesis (checked as `read_key_file` does)."""
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except FileNotFoundError:
        raise KeyFileError(f"key file {path} does not exist") from None
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"key file {path} is accessible by group or others (mode {stat.S_IMODE(mode):o}); "
            f"run: chmod 600 {path}"
        )
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise KeyFileError(f"key file {path} is not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("type") != KEY_FILE_TYPE:
        raise KeyFileError(f"key file {path} is not a {KEY_FILE_TYPE} document")
    try:
        seed = bytes.fromhex(document["seed"])
    except (KeyError, TypeError, ValueError):
        raise KeyFileError(f"key file {path} has no valid hex 'seed'") from None
    key = PrivateKey(seed) if len(seed) == SEED_SIZE else None
    if key is None:
        raise KeyFileError(f"key file {path}: seed is {len(seed)} bytes, expected {SEED_SIZE}")
    if document.get("public_key") not in (None, key.public_key.hex()):
        raise KeyFileError(f"key file {path}: public_key does not match the seed")
    genesis = document.get("genesis")
    if genesis is None:
        return KeyRecord(key, None)
    try:
        genesis_hash = bytes.fromhex(genesis) if isinstance(genesis, str) else b""
    except ValueError:
        genesis_hash = b""
    if len(genesis_hash) != 32:
        raise KeyFileError(f"key file {path}: 'genesis' is not 64 hex characters: {genesis!r}")
    return KeyRecord(key, genesis_hash)
