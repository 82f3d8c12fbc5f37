"""Shared pieces of the `sec` command line: the one error type, values read from the command line
(keys, addresses, amounts, hashes), output helpers and the common options.

Every command handler is `(args) -> exit status`; a failure the user can act on is raised as
`CommandError` (or a `RpcClientError` / `LedgerError` from below) and `cli.py` prints it as one
line on stderr with exit status 1. Keys never leave this process; only signed transactions are
sent.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TypeVar

from ledger import state_tree
from ledger.accounts import ROLE_NAMES
from ledger.errors import LedgerError
from ledger.keys import (
    PUBLIC_KEY_SIZE,
    PrivateKey,
    parse_address,
)
from ledger.schema import MAX_AMOUNT
from secnode.client.rpc import (
    CA_VARIABLE,
    CLIENT_CERT_VARIABLE,
    CLIENT_KEY_VARIABLE,
    DEFAULT_RPC_URL,
    TOKEN_FILE_VARIABLE,
    TOKEN_VARIABLE,
    Credentials,
    MalformedAnswer,
    RpcClient,
    load_credentials,
)
from secnode.keyfile import read_key_record
from secnode.passphrase import PassphraseSource
from secnode.schema import models as m
from secnode.schema.objects import Receipt, StateProof

DEV_PREFIX: Final = "dev:"


NOT_FOUND_CODE: Final = -32000


_HASH_RE: Final = re.compile(r"^[0-9a-fA-F]{64}$")


_VALIDATOR_NAME_RE: Final = re.compile(r"^node[0-9]{1,2}$")


ADDRESS_HELP: Final = "sec1 address or dev:NAME"
MAX_PAGES: Final = 10_000
"""`--all` listings stop after this many pages (a node that never ends a listing)."""

PageT = TypeVar("PageT")
CursorT = TypeVar("CursorT")


Handler = Callable[[argparse.Namespace], int]


class CommandError(Exception):
    """A user-facing failure: printed by `cli.py` as one line on stderr, exit status 1. The
    message names the option or value that was wrong."""


# --- values from the command line ---------------------------------------------------------------


def _dev_account_names() -> list[str]:
    from secnode.network.devnet import DEV_ACCOUNTS  # pydantic-heavy: imported only when used

    return [name for name, _, _ in DEV_ACCOUNTS]


def _dev_key(name: str, option: str, *, validator: bool = False) -> PrivateKey:
    from secnode.network.devnet import dev_account_key, validator_key

    if validator:
        if not _VALIDATOR_NAME_RE.match(name):
            raise CommandError(f"{option}: {name!r} is not a development validator (node0...)")
        return validator_key(name)
    names = _dev_account_names()
    if name not in names:
        raise CommandError(
            f"{option}: unknown development account {name!r}; known: {', '.join(names)}"
        )
    return dev_account_key(name)


def load_signing_key(spec: str, passphrase_file: str | None = None) -> PrivateKey:
    """--key FILE or --key dev:NAME (announcing on stderr that dev keys are public); an
    encrypted FILE is opened with the passphrase from `passphrase_file`, the environment or a
    prompt (secnode/passphrase.py)."""
    return load_signing_record(spec, passphrase_file)[0]


def load_signing_record(
    spec: str, passphrase_file: str | None = None
) -> tuple[PrivateKey, bytes | None]:
    """`load_signing_key` plus the genesis hash the key file was made for (None for dev keys
    and for key files that record none)."""
    if spec.startswith(DEV_PREFIX):
        name = spec[len(DEV_PREFIX) :]
        key = _dev_key(name, "--key")
        print(
            f"sec: note: {spec} is a development key derived from a PUBLIC label; "
            "anyone can sign as this account",
            file=sys.stderr,
        )
        return key, None
    source = PassphraseSource(file=None if passphrase_file is None else Path(passphrase_file))
    record = read_key_record(Path(spec), source.existing)
    return record.key, record.genesis_hash


def check_key_network(spec: str, made_for: bytes | None, rpc: str, status: m.StatusResult) -> bytes:
    """The node's genesis hash from its `sec_status`; raise CommandError if the key file
    `spec` was made for another network (a signature there would be for the wrong network)."""
    node_genesis = status.genesis_hash
    if made_for is not None and made_for != node_genesis:
        raise CommandError(
            f"--key {spec} was made for the network with genesis {made_for.hex()}, but the node "
            f"at {rpc} runs chain {status.chain_id!r} with genesis {node_genesis.hex()}; "
            "refusing to sign for another network"
        )
    return node_genesis


def resolve_address(text: str, option: str, *, validator: bool = False) -> bytes:
    """sec1 text, or dev:NAME (a development account, or dev:nodeN validator)."""
    if text.startswith(DEV_PREFIX):
        return _dev_key(text[len(DEV_PREFIX) :], option, validator=validator).address
    try:
        return parse_address(text)
    except LedgerError as exc:
        raise CommandError(f"{option}: {exc}") from None


def resolve_public_key(text: str, option: str, *, validator: bool = False) -> bytes:
    """64 hex characters, or dev:NAME."""
    if text.startswith(DEV_PREFIX):
        return bytes(_dev_key(text[len(DEV_PREFIX) :], option, validator=validator).public_key)
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != PUBLIC_KEY_SIZE:
        raise CommandError(
            f"{option}: a public key is {2 * PUBLIC_KEY_SIZE} hex characters, got {text!r}"
        )
    return key


def parse_roles(text: str, option: str) -> tuple[str, ...]:
    roles = tuple(r.strip() for r in text.split(",") if r.strip())
    for role in roles:
        if role not in ROLE_NAMES:
            raise CommandError(
                f"{option}: unknown role {role!r}; roles are {', '.join(ROLE_NAMES)}"
            )
    return roles


def amount(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_AMOUNT:
        raise argparse.ArgumentTypeError(f"must be a whole number of fen >= 1, got {text!r}")
    return value


def count(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_AMOUNT:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}")
    return value


def timeout_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 60:
        raise argparse.ArgumentTypeError(f"must be seconds in (0, 60], got {text!r}")
    return value


def hash_hex(text: str, what: str) -> str:
    if not _HASH_RE.match(text):
        raise CommandError(f"{what} must be 64 hex characters, got {text!r}")
    return text.lower()


# --- output ------------------------------------------------------------------------------------


def print_fields(rows: list[tuple[str, Any]]) -> None:
    """Aligned `key  value` lines."""
    width = max((len(key) for key, _ in rows), default=0) + 2
    for key, value in rows:
        print(f"{key:<{width}}{value}")


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


def emit(args: argparse.Namespace, human: str, data: dict[str, Any]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        print(human)


def format_time(ms: int) -> str:
    stamp = datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def receipt_line(receipt: Receipt) -> str:
    if receipt.ok:
        return "ok"
    return f"failed ({receipt.code}): {receipt.message}"


def requested_proof(
    args: argparse.Namespace, method: str, proof: StateProof | None
) -> state_tree.StateProof:
    """The state proof asked for with prove=true, as the ledger's proof; MalformedAnswer if the
    node left it out."""
    if proof is None:
        raise MalformedAnswer(args.rpc, method, "proof: missing, though prove=true was asked")
    return proof.to_proof()


# --- talking to a node and the common options ---------------------------------------------------


def credentials(args: argparse.Namespace) -> Credentials:
    """The TLS trust, client certificate and token of the common options (or of their
    environment variables, for commands such as `sec demo` that do not take the options)."""
    return load_credentials(
        getattr(args, "ca", None),
        getattr(args, "token_file", None),
        getattr(args, "client_cert", None),
        getattr(args, "client_key", None),
    )


def connect(args: argparse.Namespace, wait_s: float = 0.0) -> RpcClient:
    return RpcClient(args.rpc, timeout_s=30.0 + wait_s, credentials=credentials(args))


def common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--rpc",
        default=DEFAULT_RPC_URL,
        metavar="URL",
        help=f"node RPC URL (default {DEFAULT_RPC_URL})",
    )
    common.add_argument("--json", action="store_true", help="machine-readable output")
    secure = common.add_argument_group("a node in public (docs/operations.md)")
    secure.add_argument(
        "--ca",
        metavar="FILE",
        help=f"PEM CA that signed the node's https certificate (or {CA_VARIABLE})",
    )
    secure.add_argument(
        "--token-file",
        metavar="FILE",
        help=f"file holding the bearer token for restricted methods (or {TOKEN_FILE_VARIABLE}, "
        f"or the token itself in {TOKEN_VARIABLE}); never on the command line",
    )
    secure.add_argument(
        "--client-cert",
        metavar="FILE",
        help=f"PEM client certificate for mutual TLS (or {CLIENT_CERT_VARIABLE})",
    )
    secure.add_argument(
        "--client-key",
        metavar="FILE",
        help=f"its PEM key, if not in --client-cert (or {CLIENT_KEY_VARIABLE})",
    )
    return common


class _RefusePassphraseArgument(argparse.Action):
    """`--passphrase VALUE` and `--password VALUE`: an error that does not repeat VALUE (an
    exact option also stops argparse from taking `--passphrase` as short for --passphrase-file
    and echoing the value as a file name)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        parser.error(
            f"{option_string}: a passphrase is never taken from the command line (other users "
            "see arguments in ps); use --passphrase-file FILE, SEC_KEY_PASSPHRASE_FILE=FILE, "
            "SEC_KEY_PASSPHRASE or the prompt"
        )


def passphrase_options(parser: argparse.ArgumentParser) -> None:
    """`--passphrase-file FILE` for a command that may open an encrypted key file."""
    parser.add_argument(
        "--passphrase-file",
        metavar="FILE",
        help="passphrase of an encrypted key file: FILE's first line (else "
        "SEC_KEY_PASSPHRASE_FILE, SEC_KEY_PASSPHRASE, or a prompt on a terminal)",
    )
    parser.add_argument(
        "--passphrase",
        "--password",
        nargs="?",
        action=_RefusePassphraseArgument,
        help=argparse.SUPPRESS,
    )


def tx_options() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--key",
        required=True,
        metavar="FILE|dev:NAME",
        help="signing key file, or dev:NAME for a development account (public keys!)",
    )
    passphrase_options(options)
    options.add_argument("--wait", action="store_true", help="wait for commit; print the receipt")
    options.add_argument(
        "--timeout",
        type=timeout_seconds,
        default=30.0,
        metavar="S",
        help="seconds --wait waits (<= 60)",
    )
    options.add_argument("--nonce", type=count, help="sender nonce (default: asked from the node)")
    return options


def follow_pages(
    fetch: Callable[[CursorT | None], PageT],
    cursor: CursorT | None,
    next_cursor: Callable[[PageT], CursorT | None],
    *,
    follow: bool,
) -> list[PageT]:
    """The pages of a listing from `cursor`: the one page asked for, or with `follow` (`--all`)
    every next page too. A node that never ends its listing is a CommandError after MAX_PAGES."""
    pages: list[PageT] = []
    for _ in range(MAX_PAGES):
        page = fetch(cursor)
        pages.append(page)
        cursor = next_cursor(page)
        if cursor is None or not follow:
            return pages
    raise CommandError(f"the listing did not end after {MAX_PAGES} pages")
