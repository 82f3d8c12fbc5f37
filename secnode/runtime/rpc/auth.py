"""Who may call the restricted RPC methods: bearer tokens and client certificates.

An operator lists methods in `[rpc] restricted_methods`; every other method stays open to
anyone who can reach the port. A restricted method runs only for a request that proves an
identity, in one of two ways:

* `Authorization: Bearer <token>` where the SHA-256 of the token is an entry of the node's
  `auth_tokens_file` (TOML, below). The node stores only digests: a leaked tokens file or
  config backup grants nothing, and a token is never logged (the identity is the entry's
  name). Tokens are 256-bit random strings (`sec rpc token new`), so one SHA-256 is enough: a
  slow KDF protects guessable passwords, not random keys.
* A TLS client certificate that verifies against `[rpc] client_ca` (mutual TLS; the TLS
  handshake checks it, see secnode.tls). Its identity is `cert:<subject CN>` and it
  may call every restricted method.

The tokens file:

    [[tokens]]
    name = "wallet-backend"                 # identity in errors, rate limits and logs
    sha256 = "<64 hex: SHA-256 of the token's UTF-8 bytes>"
    methods = ["sec_sendTransaction"]       # optional: default every restricted method

A request that presents a bearer token which is not in the file is refused whole (HTTP 401),
even for open methods: a client with a wrong token is misconfigured and should hear it at
once. Other Authorization schemes (Basic, of a proxy in front) are ignored.
A valid credential lacking a method gets `forbidden` (HTTP 403); no credential gets
`unauthorized` (HTTP 401). The `Grant` of a request also keys its rate limit: the identity
when there is one, else the remote IP (secnode.runtime.rpc.ratelimit).

Invariant: `Grant.refusal(method)` is None exactly when the method is open or the grant
covers it; `load_tokens` either returns a complete table or raises `AuthConfigError` naming
the file and the entry.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ledger.validation import describe_validation_error
from secnode.runtime.rpc.errors import RpcError, forbidden, unauthorized

BEARER: Final = "bearer"
TOKEN_IDENTITY_PREFIX: Final = "token:"
CERT_IDENTITY_PREFIX: Final = "cert:"
_METHOD_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_.]{0,63}")


class AuthConfigError(ValueError):
    """The tokens file or the restricted method list is unusable; the message says which
    file, entry or method and why."""


class AuthenticationFailed(Exception):
    """A request presented a credential that is not valid (the message never holds it)."""


class _TokenEntry(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    methods: list[str] | None = None


class _TokensFile(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    tokens: list[_TokenEntry] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Grant:
    """What one request proved: its identity and the restricted methods it may call."""

    identity: str | None = None
    """`token:<name>` or `cert:<subject CN>`; None for an anonymous request."""
    methods: frozenset[str] | None = None
    """Restricted methods it may call; None: all of them (ignored when anonymous)."""

    def refusal(self, method: str, restricted: frozenset[str]) -> RpcError | None:
        """None if this grant may call `method`, else the error to answer."""
        if method not in restricted:
            return None
        if self.identity is None:
            return unauthorized(method)
        if self.methods is not None and method not in self.methods:
            return forbidden(method, self.identity)
        return None

    def rate_key(self, remote: str) -> str:
        """The rate-limit bucket: the identity when authenticated, else the remote IP."""
        return self.identity if self.identity is not None else remote


ANONYMOUS: Final = Grant()


def hash_token(token: str) -> str:
    """The hex SHA-256 of a token, as the tokens file stores it."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class TokenTable:
    """The entries of an `auth_tokens_file`, by digest."""

    by_digest: Mapping[str, Grant]

    def grant_for(self, token: str) -> Grant:
        """The grant of `token`; AuthenticationFailed if it is not in the table. The lookup
        is by digest, so its timing says nothing about the secret token."""
        grant = self.by_digest.get(hash_token(token))
        if grant is None:
            raise AuthenticationFailed("the bearer token is not one of this node's tokens")
        return grant


def parse_tokens(document: Any, source: str, restricted: frozenset[str]) -> TokenTable:
    """The table of a decoded tokens file; AuthConfigError naming `source` and the entry."""
    try:
        parsed = _TokensFile.model_validate(document)
    except ValidationError as exc:
        raise AuthConfigError(f"{source}: {describe_validation_error(exc, '(file)')}") from None
    by_digest: dict[str, Grant] = {}
    names: set[str] = set()
    for entry in parsed.tokens:
        if entry.name in names:
            raise AuthConfigError(f"{source}: token name {entry.name!r} appears twice")
        if entry.sha256 in by_digest:
            raise AuthConfigError(f"{source}: token {entry.name!r} repeats another's sha256")
        names.add(entry.name)
        methods = None
        if entry.methods is not None:
            unknown = sorted(set(entry.methods) - restricted)
            if unknown:
                raise AuthConfigError(
                    f"{source}: token {entry.name!r} lists {unknown[0]!r}, which is not in "
                    "[rpc] restricted_methods (open methods need no token)"
                )
            methods = frozenset(entry.methods)
        by_digest[entry.sha256] = Grant(TOKEN_IDENTITY_PREFIX + entry.name, methods)
    return TokenTable(by_digest)


def load_tokens(path: Path, restricted: frozenset[str]) -> TokenTable:
    """Read and check an `auth_tokens_file` (AuthConfigError if it cannot be used)."""
    try:
        document = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise AuthConfigError(f"[rpc] auth_tokens_file {path} does not exist") from None
    except OSError as exc:
        raise AuthConfigError(
            f"cannot read [rpc] auth_tokens_file {path}: {exc.strerror}"
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise AuthConfigError(f"{path} is not valid TOML: {exc}") from None
    return parse_tokens(document, str(path), restricted)


def new_token() -> str:
    """A fresh bearer token: 256 random bits, URL-safe text (no spaces, no quoting needed)."""
    return secrets.token_urlsafe(32)


def add_token_entry(text: str, name: str, token: str, methods: list[str] | None) -> str:
    """The tokens file `text` with an entry for `token` (stored as its digest) appended;
    AuthConfigError if `text` is not a tokens file, or `name` is taken or malformed."""
    try:
        existing = _TokensFile.model_validate(tomllib.loads(text))
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise AuthConfigError(f"not a tokens file: {exc}") from None
    try:
        entry = _TokenEntry(name=name, sha256=hash_token(token), methods=methods)
    except ValidationError as exc:
        raise AuthConfigError(describe_validation_error(exc, "(token)")) from None
    if any(old.name == name for old in existing.tokens):
        raise AuthConfigError(f"a token named {name!r} exists already; revoke it first")
    if methods is not None and not all(_METHOD_NAME.fullmatch(method) for method in methods):
        raise AuthConfigError(f"--method takes method names like sec_sendTransaction: {methods}")
    lines = ["[[tokens]]", f'name = "{entry.name}"', f'sha256 = "{entry.sha256}"']
    if methods is not None:
        lines.append("methods = [" + ", ".join(f'"{method}"' for method in methods) + "]")
    separator = (
        "" if not text or text.endswith("\n\n") else ("\n" if text.endswith("\n") else "\n\n")
    )
    return text + separator + "\n".join(lines) + "\n"


def check_restricted(restricted: Iterable[str], known: Iterable[str]) -> frozenset[str]:
    """`restricted` as a set, once every name is a method of this node (a misspelt name
    would leave the method it meant open)."""
    names = frozenset(restricted)
    unknown = sorted(names - frozenset(known))
    if unknown:
        raise AuthConfigError(
            f"[rpc] restricted_methods names {unknown[0]!r}, which is not a method of this "
            "node (rpc.discover lists them)"
        )
    return names


def certificate_identity(peercert: Mapping[str, Any] | None) -> str | None:
    """`cert:<CN>` of a verified client certificate (`SSLObject.getpeercert()`), None if the
    client sent none."""
    if not peercert:
        return None
    common_names = [
        value for rdn in peercert.get("subject", ()) for key, value in rdn if key == "commonName"
    ]
    return CERT_IDENTITY_PREFIX + (common_names[0] if common_names else "unnamed")


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    """The node's restricted methods and the credentials that open them."""

    restricted: frozenset[str] = frozenset()
    tokens: TokenTable | None = None
    """None: no tokens file, bearer tokens are refused."""

    def authenticate(self, authorization: str | None, peercert: Mapping[str, Any] | None) -> Grant:
        """The grant of a request from its Authorization header and its verified client
        certificate; AuthenticationFailed for a malformed or unknown token."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        # Other schemes are not ours: a proxy in front doing Basic auth forwards its header.
        if scheme.lower() == BEARER:
            if not token.strip():
                raise AuthenticationFailed("the Authorization header is 'Bearer' without a token")
            if self.tokens is None:
                raise AuthenticationFailed("this node accepts no bearer tokens")
            return self.tokens.grant_for(token.strip())
        identity = certificate_identity(peercert)
        return ANONYMOUS if identity is None else Grant(identity)
