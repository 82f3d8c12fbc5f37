"""`sec keys new|show`: Ed25519 key files (mode 0600), optionally bound to one network's genesis."""

from __future__ import annotations

import argparse
from pathlib import Path

from ledger.keys import (
    PrivateKey,
    format_address,
)
from secnode.cli.common import emit
from secnode.keyfile import read_key_file, write_key_file


def _keys_new(args: argparse.Namespace) -> int:
    genesis_hash = None
    if args.genesis:
        from ledger.genesis import load_genesis

        genesis_hash = load_genesis(Path(args.genesis)).document_hash()
    key = PrivateKey.generate()
    path = Path(args.out)
    write_key_file(path, key, overwrite=args.force, genesis_hash=genesis_hash)
    address = format_address(key.address)
    data = {"path": str(path), "address": address, "public_key": key.public_key.hex()}
    human = f"wrote {path} (mode 0600)\naddress     {address}\npublic key  {key.public_key.hex()}"
    if genesis_hash is not None:
        data["genesis"] = genesis_hash.hex()
        human += f"\nfor genesis {genesis_hash.hex()}"
    emit(args, human, data)
    return 0


def _keys_show(args: argparse.Namespace) -> int:
    key = read_key_file(Path(args.path))
    address = format_address(key.address)
    emit(
        args,
        f"address     {address}\npublic key  {key.public_key.hex()}",
        {"address": address, "public_key": key.public_key.hex()},
    )
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `sec keys`."""
    keys = commands.add_parser("keys", help="create and inspect Ed25519 key files")
    key_commands = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    new = key_commands.add_parser("new", help="generate a key file (mode 0600)")
    new.add_argument("--out", required=True, help="path of the key file to write")
    new.add_argument("--force", action="store_true", help="overwrite an existing file")
    new.add_argument(
        "--genesis",
        metavar="FILE",
        help="genesis.json of the network the key is for: recorded, and `sec tx` refuses to "
        "sign with the key for a node of another network",
    )
    new.add_argument("--json", action="store_true", help="machine-readable output")
    new.set_defaults(handler=_keys_new)
    show = key_commands.add_parser("show", help="print a key file's address and public key")
    show.add_argument("path", help="key file")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(handler=_keys_show)
