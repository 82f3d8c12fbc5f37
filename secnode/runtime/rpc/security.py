"""The files of `[rpc]` that secure the endpoint, read once when the node opens: the TLS
context (secnode.tls) and the bearer tokens (secnode.runtime.rpc.auth). A missing,
unreadable or mismatched file is a `ConfigError` naming it, raised before the node opens its
store or binds a port.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from secnode.runtime.config import ConfigError, RPCSection, split_host_port
from secnode.runtime.rpc.auth import AuthConfigError, TokenTable, load_tokens
from secnode.runtime.rpc.hosts import default_allowed_hosts
from secnode.tls import TlsConfigError, server_context

log = logging.getLogger("secnode.rpc")

_LOOPBACK_LISTEN = frozenset({"127.0.0.1", "::1", "localhost"})


@dataclass(frozen=True, slots=True)
class RpcSecurity:
    """What `[rpc]` asks of TLS, tokens and Host names, loaded."""

    ssl_context: ssl.SSLContext | None = None
    """None: plain http/ws."""
    tokens: TokenTable | None = None
    """None: no `auth_tokens_file`."""
    allowed_hosts: tuple[str, ...] = ("localhost",)
    """localhost, the listen host when it is a name, and `[rpc] allowed_hosts`."""


def load_rpc_security(section: RPCSection, resolve: Callable[[str], Path]) -> RpcSecurity:
    """Read the TLS and token files of `section` (relative paths through `resolve`, i.e. from
    the node home); ConfigError if one cannot be used."""
    try:
        context = None
        if section.tls_cert:
            client_ca = resolve(section.client_ca) if section.client_ca else None
            context = server_context(resolve(section.tls_cert), resolve(section.tls_key), client_ca)
        restricted = frozenset(section.restricted_methods)
        tokens = None
        if section.auth_tokens_file:
            tokens = load_tokens(resolve(section.auth_tokens_file), restricted)
    except (TlsConfigError, AuthConfigError) as exc:
        raise ConfigError(str(exc)) from None
    host = split_host_port(section.listen)[0]
    if restricted and tokens is None and not section.client_ca:
        log.warning(
            "[rpc] restricted_methods is set but neither auth_tokens_file nor client_ca: "
            "nobody can call %s",
            ", ".join(sorted(restricted)),
        )
    if tokens is not None and context is None and host not in _LOOPBACK_LISTEN:
        log.warning(
            "[rpc] bearer tokens over plain http on %s: anyone on the path can read them; "
            "set tls_cert and tls_key",
            section.listen,
        )
    names = (*default_allowed_hosts(host), *section.allowed_hosts)
    return RpcSecurity(context, tokens, tuple(dict.fromkeys(names)))
