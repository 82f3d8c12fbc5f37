"""`sec rpc token NAME --tokens-file FILE --out FILE [--method METHOD]...`: make a bearer token
for a node's restricted RPC methods (docs/operations.md, "The RPC endpoint in public").

The token goes to `--out` only (created 0600, never overwritten) for the client to use with
`--token-file`; the node's tokens file gets its SHA-256 under NAME (atomically: a reader sees
the old file or the new one). Nothing prints the token. A node reads its tokens file at start:
restart it to apply the new entry.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from secnode.cli.common import CommandError
from secnode.keyfile import _replace_atomically  # the one atomic 0600 writer of the tree
from secnode.runtime.rpc.auth import AuthConfigError, add_token_entry, hash_token, new_token


def _write_new_secret(path: Path, text: str) -> None:
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise CommandError(f"--out {path} exists already; choose another file") from None
    except OSError as exc:
        raise CommandError(f"cannot create --out {path}: {exc.strerror}") from None
    try:
        os.write(descriptor, text.encode())
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _run(args: argparse.Namespace) -> int:
    tokens_file: Path = args.tokens_file
    out: Path = args.out
    try:
        text = tokens_file.read_text() if tokens_file.exists() else ""
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"cannot read --tokens-file {tokens_file}: {exc}") from None
    token = new_token()
    try:
        updated = add_token_entry(text, args.name, token, args.methods)
    except AuthConfigError as exc:
        raise CommandError(f"--tokens-file {tokens_file}: {exc}") from None
    if out.exists():
        raise CommandError(f"--out {out} exists already; choose another file")
    _write_new_secret(out, token + "\n")
    try:
        _replace_atomically(tokens_file, updated.encode())
    except OSError as exc:
        out.unlink()  # no token without its entry
        raise CommandError(f"cannot write --tokens-file {tokens_file}: {exc.strerror}") from None
    scope = ", ".join(args.methods) if args.methods else "every restricted method"
    print(f"token {args.name!r} written to {out} (mode 0600); sha256 {hash_token(token)}")
    print(f"{tokens_file} lets it call {scope}; restart the node to load it")
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`sec rpc token`."""
    rpc = commands.add_parser("rpc", help="secure a node's RPC endpoint (bearer tokens)")
    verbs = rpc.add_subparsers(dest="rpc_verb", metavar="VERB", required=True)
    token = verbs.add_parser(
        "token",
        help="make a bearer token for restricted methods",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    token.add_argument("name", metavar="NAME", help="who holds it (letters, digits, _ . @ -)")
    token.add_argument(
        "--tokens-file", type=Path, required=True, metavar="FILE", help="the node's tokens file"
    )
    token.add_argument(
        "--out", type=Path, required=True, metavar="FILE", help="new file for the token itself"
    )
    token.add_argument(
        "--method",
        dest="methods",
        action="append",
        metavar="METHOD",
        help="limit it to this restricted method (repeat; default all restricted methods)",
    )
    token.set_defaults(handler=_run)
