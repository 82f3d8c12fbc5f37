"""`sec keys new|show|list|encrypt|change-passphrase|export-public`: Ed25519 key files (mode
0600), encrypted with a passphrase by default, optionally bound to one network's genesis.

Passphrases come from `--passphrase-file`, SEC_KEY_PASSPHRASE_FILE, SEC_KEY_PASSPHRASE or a prompt
(secnode/passphrase.py), never from an argument. Listing, showing and exporting public keys need
no passphrase: the public key and address of an encrypted file are in clear (and authenticated).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Final

from ledger.keys import PrivateKey, address_of, format_address
from secnode.cli.common import CommandError, emit, passphrase_options
from secnode.keyfile import (
    KEY_FILE_TYPE,
    KeyFileError,
    KeyInfo,
    change_passphrase,
    encrypt_key_file,
    read_key_info,
    read_key_record,
    write_key_file,
)
from secnode.keystore import DEFAULT_SCRYPT, KEYSTORE_TYPE, KeystoreError, ScryptParams
from secnode.passphrase import PassphraseSource

LISTED_SUFFIXES: Final = (".key", ".json")
MAX_LISTED_SIZE: Final = 64 * 1024
"""`sec keys list` looks only at *.key and *.json files up to this size."""


def _source(args: argparse.Namespace) -> PassphraseSource:
    file = getattr(args, "passphrase_file", None)
    return PassphraseSource(file=None if file is None else Path(file))


def scrypt_params(args: argparse.Namespace) -> ScryptParams:
    n: int = args.scrypt_n
    try:
        params = ScryptParams(n=n, r=DEFAULT_SCRYPT.r, p=DEFAULT_SCRYPT.p)
    except KeystoreError as exc:
        raise CommandError(f"--scrypt-n: {exc}") from None
    if n < DEFAULT_SCRYPT.n:
        print(
            f"sec: warning: --scrypt-n {n} is weaker than the default {DEFAULT_SCRYPT.n}: "
            "a stolen file resists passphrase guessing for less time (for tests only)",
            file=sys.stderr,
        )
    return params


def _emit_sealed(args: argparse.Namespace, headline: str, path: Path, passphrase: str) -> int:
    """Print what was sealed at `path`, after reading it back with its passphrase (a write that
    cannot be opened is caught now); the time that took is the unlock time on this machine."""
    started = time.perf_counter()
    read_key_record(path, lambda _: passphrase)
    data = _describe(read_key_info(path))
    data["unlock_seconds"] = round(time.perf_counter() - started, 3)
    unlock = f"unlock      {data['unlock_seconds']:.2f} s on this machine (checked)"
    emit(args, f"{headline}\n{_human(data)}\n{unlock}", data)
    return 0


def _describe(info: KeyInfo) -> dict[str, Any]:
    return {
        "path": str(info.path),
        "address": format_address(address_of(info.public_key)),
        "public_key": info.public_key.hex(),
        "encrypted": info.encrypted,
        "scrypt": None
        if info.scrypt is None
        else {"n": info.scrypt.n, "r": info.scrypt.r, "p": info.scrypt.p},
        "genesis": None if info.genesis_hash is None else info.genesis_hash.hex(),
    }


def _human(data: dict[str, Any]) -> str:
    scrypt = data["scrypt"]
    protection = (
        f"encrypted (scrypt n={scrypt['n']} r={scrypt['r']} p={scrypt['p']}, chacha20-poly1305)"
        if scrypt
        else "PLAIN (not encrypted)"
    )
    lines = [
        f"address     {data['address']}",
        f"public key  {data['public_key']}",
        f"file        {protection}",
    ]
    if data["genesis"]:
        lines.append(f"for genesis {data['genesis']}")
    return "\n".join(lines)


def _keys_new(args: argparse.Namespace) -> int:
    source = _source(args)
    if args.plain and source.given():
        raise CommandError("--plain writes an unencrypted file, yet a passphrase was given")
    genesis_hash = None
    if args.genesis:
        from ledger.genesis import load_genesis

        genesis_hash = load_genesis(Path(args.genesis)).document_hash()
    path = Path(args.out)
    if path.exists() and not args.force:
        raise KeyFileError(f"{path} already exists; refusing to overwrite a key")
    scrypt = scrypt_params(args)
    passphrase = None if args.plain else source.new(path)
    key = PrivateKey.generate()
    write_key_file(
        path,
        key,
        overwrite=args.force,
        genesis_hash=genesis_hash,
        passphrase=passphrase,
        scrypt=scrypt,
    )
    if passphrase is not None:
        return _emit_sealed(args, f"wrote {path} (mode 0600)", path, passphrase)
    data = _describe(read_key_info(path))
    human = f"wrote {path} (mode 0600)\n{_human(data)}"
    emit(
        args, human + "\nwarning: anyone who can read it can sign with it (sec keys encrypt)", data
    )
    return 0


def _keys_show(args: argparse.Namespace) -> int:
    path = Path(args.path)
    info = read_key_info(path)
    data = _describe(info)
    source = _source(args)
    verify = info.encrypted and (args.verify or source.given())
    if verify:  # opening checks the tag over the clear fields and seed -> public key
        read_key_record(path, source.existing)
    elif not info.encrypted:
        verify = True  # a plain file's public key was derived from its seed when read
    data["verified"] = verify
    human = _human(data)
    if info.encrypted:
        human += (
            "\nverified    the passphrase opens it and the seed derives this public key"
            if verify
            else "\nverified    no (public part read in clear; give a passphrase to check it)"
        )
    emit(args, human, data)
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    root = Path(args.dir)
    if not root.is_dir():
        raise CommandError(f"{root} is not a directory")
    rows: list[dict[str, Any]] = []
    for path in sorted(p for p in root.rglob("*") if p.suffix in LISTED_SUFFIXES):
        if not _claims_key(path):
            continue
        try:
            rows.append(_describe(read_key_info(path)))
        except KeyFileError as exc:
            rows.append({"path": str(path), "error": str(exc)})
    if getattr(args, "json", False):
        print(json.dumps(rows, indent=2, sort_keys=True))
        return 0
    if not rows:
        print(f"no key files under {root}")
        return 0
    for row in rows:
        if "error" in row:
            print(f"{row['path']}  ERROR  {row['error']}")
            continue
        state = "encrypted" if row["encrypted"] else "PLAIN    "
        network = f"genesis {row['genesis'][:12]}" if row["genesis"] else "any network"
        print(f"{row['path']}  {state}  {row['address']}  {row['public_key']}  {network}")
    return 0


def _claims_key(path: Path) -> bool:
    """True if `path` is a small JSON file whose `type` names a key format: a key file damaged
    inside is listed with its error; genesis.json, other JSON and non-JSON files (a TLS key in
    PEM) are skipped."""
    try:
        if not path.is_file() or path.stat().st_size > MAX_LISTED_SIZE:
            return False
        document = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and document.get("type") in (KEY_FILE_TYPE, KEYSTORE_TYPE)


def _keys_encrypt(args: argparse.Namespace) -> int:
    path = Path(args.path)
    scrypt = scrypt_params(args)
    if read_key_info(path).encrypted:  # a missing or damaged file fails here, before asking
        raise KeyFileError(f"key file {path} is already encrypted (the file is unchanged)")
    passphrase = _source(args).new(path)
    encrypt_key_file(path, passphrase, scrypt)
    return _emit_sealed(args, f"encrypted {path} in place (mode 0600)", path, passphrase)


def _keys_change_passphrase(args: argparse.Namespace) -> int:
    path = Path(args.path)
    scrypt = scrypt_params(args)
    current = _source(args)
    new_file = None if args.new_passphrase_file is None else Path(args.new_passphrase_file)
    # The new one only from its own file or the prompt: the variables hold the current one.
    fresh = PassphraseSource(file=new_file, environ={})
    new: list[str] = []

    def ask_new() -> str:
        new.append(fresh.new(path))
        return new[0]

    change_passphrase(path, current.existing, ask_new, scrypt)
    return _emit_sealed(args, f"changed the passphrase of {path} (mode 0600)", path, new[0])


def _keys_export_public(args: argparse.Namespace) -> int:
    path = Path(args.path)
    info = read_key_info(path)
    name = args.name or (path.parent.name if path.stem == "node" else path.stem)
    entry = {"name": name, "public_key": info.public_key.hex()}
    if getattr(args, "json", False):
        address = format_address(address_of(info.public_key))
        print(json.dumps({**entry, "address": address}, sort_keys=True))
    else:  # exactly a genesis.json "validators" entry (§9.1): the address is not part of it
        print(json.dumps(entry))
        print(f"address {format_address(address_of(info.public_key))}", file=sys.stderr)
    return 0


def _power_of_two(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 2 or value & (value - 1):
        raise argparse.ArgumentTypeError(f"{value} is not a power of two above 1")
    return value


def scrypt_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scrypt-n",
        type=_power_of_two,
        default=DEFAULT_SCRYPT.n,
        metavar="N",
        help=f"scrypt cost, a power of two (default {DEFAULT_SCRYPT.n} = 2^17, 128 MiB); lower "
        "only for tests: it makes a stolen file faster to guess",
    )


def _action(
    key_commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help: str,
    description: str,
) -> argparse.ArgumentParser:
    """One `sec keys ACTION` parser: no abbreviated options (`--passphrase` must never be read
    as --passphrase-file), and `--json` like every action."""
    parser = key_commands.add_parser(name, help=help, description=description, allow_abbrev=False)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `sec keys` and its actions."""
    keys = commands.add_parser(
        "keys", help="create, encrypt and inspect Ed25519 key files", allow_abbrev=False
    )
    key_commands = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    new = _action(
        key_commands,
        "new",
        help="generate a key file (mode 0600), encrypted unless --plain",
        description="Generate a key and write it encrypted with a passphrase (asked twice on a "
        "terminal, or from --passphrase-file / SEC_KEY_PASSPHRASE_FILE / SEC_KEY_PASSPHRASE). "
        "--plain writes it unencrypted.",
    )
    new.add_argument("--out", required=True, help="path of the key file to write")
    new.add_argument("--force", action="store_true", help="overwrite an existing file")
    new.add_argument(
        "--genesis",
        metavar="FILE",
        help="genesis.json of the network the key is for: recorded, and `sec tx` refuses to "
        "sign with the key for a node of another network",
    )
    new.add_argument(
        "--plain", action="store_true", help="write the seed unencrypted (development only)"
    )
    passphrase_options(new)
    scrypt_option(new)
    new.set_defaults(handler=_keys_new)

    show = _action(
        key_commands,
        "show",
        help="print a key file's address and public key (no passphrase needed)",
        description="Print the address, public key, encryption and network of a key file. With a "
        "passphrase (--passphrase-file, the variables, or --verify to be asked) an encrypted "
        "file is opened too, proving the clear public key is the sealed key's.",
    )
    show.add_argument("path", help="key file")
    show.add_argument("--verify", action="store_true", help="open the file (asks the passphrase)")
    passphrase_options(show)
    show.set_defaults(handler=_keys_show)

    listing = _action(
        key_commands,
        "list",
        help="list the key files under DIR (no passphrase needed)",
        description="List every key file (a *.key or *.json holding a sec key document) under "
        "DIR, recursively: path, encrypted or PLAIN, address, public key, network. A key file "
        "damaged inside is listed with its error.",
    )
    listing.add_argument("dir", nargs="?", default=".", help="directory (default: .)")
    listing.set_defaults(handler=_keys_list)

    encrypt = _action(
        key_commands,
        "encrypt",
        help="encrypt a plain key file in place (atomic, mode 0600)",
        description="Replace a plain key file by its encrypted form: same key, same genesis "
        "binding. Written to a temporary file, synced, then renamed over FILE.",
    )
    encrypt.add_argument("path", help="plain key file")
    passphrase_options(encrypt)
    scrypt_option(encrypt)
    encrypt.set_defaults(handler=_keys_encrypt)

    change = _action(
        key_commands,
        "change-passphrase",
        help="re-seal an encrypted key file under a new passphrase (atomic)",
        description="Open FILE with its current passphrase (--passphrase-file, the variables or "
        "a prompt), then seal it again under a new one (--new-passphrase-file, or asked twice) "
        "with fresh salt and nonce. A wrong current passphrase changes nothing.",
    )
    change.add_argument("path", help="encrypted key file")
    passphrase_options(change)
    change.add_argument(
        "--new-passphrase-file", metavar="FILE", help="the new passphrase: FILE's first line"
    )
    scrypt_option(change)
    change.set_defaults(handler=_keys_change_passphrase)

    export = _action(
        key_commands,
        "export-public",
        help="print the public key as a genesis.json validators entry",
        description='Print {"name": NAME, "public_key": HEX} on one line: an entry of '
        'genesis.json\'s "validators" (or, with roles and balance added, "accounts"). The '
        "address goes to stderr (--json puts it in the object). No passphrase needed.",
    )
    export.add_argument("path", help="key file")
    export.add_argument(
        "--name", help="the entry's name (default: the home directory of a node.key, else the stem)"
    )
    export.set_defaults(handler=_keys_export_public)
