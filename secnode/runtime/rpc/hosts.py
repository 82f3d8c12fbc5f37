"""Two guards against web pages that use a browser as a proxy into the node (docs/operations.md,
"The RPC endpoint in public").

DNS rebinding: a page on `evil.example` makes its own name resolve to 127.0.0.1 and then
reads the node on the user's machine as its own origin, past CORS. The browser still sends
`Host: evil.example:8545`, so a request to `/rpc` or `/ws` whose Host names a host that is
not in `[rpc] allowed_hosts` is refused with 403. `/health` and `/metrics` (read-only, fetched
by monitoring under any name) and the console's static files (the same for everyone) are not
guarded. A Host that is an IP address literal is
always allowed (rebinding needs a name), as Geth's `--http.vhosts` does; `"*"` allows any
name. The default is `localhost` plus the listen address when it is a name.

Cross-site simple POSTs: a page may send `POST /rpc` to any origin without a CORS preflight
when the body is `text/plain`, form-encoded or multipart; it cannot read the answer, but the
call runs. Such a POST from a browser page whose Origin is neither the node's own nor in
`cors_origins` is refused with 403 before it is read. Requests without an Origin (the CLI,
curl, scripts) are not browser pages and are not affected, so `curl -d` keeps working.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Final

from aiohttp import hdrs, web

from secnode.runtime.rpc.cors import CorsPolicy

ANY_HOST: Final = "*"
LOOPBACK_NAMES: Final = ("localhost",)
SIMPLE_CONTENT_TYPES: Final = frozenset(
    {"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"}
)
"""Content types a browser sends cross-site without a preflight (the Fetch standard's
CORS-safelisted request header values)."""
_WILDCARD_ADDRESSES: Final = frozenset({"", "0.0.0.0", "::"})


def check_host_name(value: str) -> str:
    """`value` lower-cased if it is "*" or a host name (no scheme, port or path); ValueError
    saying why not."""
    name = value.strip().lower().rstrip(".")
    if name == ANY_HOST:
        return name
    if not name or any(c in name for c in "/:@ []") or name.startswith("."):
        raise ValueError(f'{value!r} is not a host name like node0.example.org (or "*")')
    return name


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def default_allowed_hosts(listen_host: str) -> tuple[str, ...]:
    """`localhost` plus the listen host when it is a name (an address is allowed anyway)."""
    host = listen_host.strip("[]").lower()
    if host in _WILDCARD_ADDRESSES or _is_address(host) or host in LOOPBACK_NAMES:
        return LOOPBACK_NAMES
    return (*LOOPBACK_NAMES, host)


def host_name(host_header: str) -> str:
    """The host of a Host header value, without its port or IPv6 brackets, lower case."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


@dataclass(frozen=True, slots=True)
class HostPolicy:
    """The names of `[rpc] allowed_hosts`."""

    names: frozenset[str]

    @classmethod
    def of(cls, names: Iterable[str]) -> HostPolicy:
        return cls(frozenset(check_host_name(name) for name in names))

    def allows(self, host_header: str | None) -> bool:
        """True if a request with this Host header may be served."""
        if host_header is None or ANY_HOST in self.names:
            return True  # HTTP/1.0 without Host: not a browser, which always sends one
        host = host_name(host_header)
        return _is_address(host) or host in self.names


def is_cross_site_simple_post(request: web.Request, cors: CorsPolicy) -> bool:
    """True for a POST a browser page of a foreign origin sent without a preflight."""
    if request.method != hdrs.METH_POST or hdrs.ORIGIN not in request.headers:
        return False
    return request.content_type in SIMPLE_CONTENT_TYPES and not cors.allows_socket(request)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def guarded(hosts: HostPolicy, cors: CorsPolicy) -> Callable[[Handler], Handler]:
    """A decorator applying both guards before a route's handler.

    A wrapper per route rather than an aiohttp middleware: aiohttp caches middleware chains in
    a process-wide lru_cache that keeps the app (and the node behind it) alive until the
    interpreter tears down, where freeing it fails ("Error in sys.excepthook" after a clean
    stop)."""

    def wrap(handler: Handler) -> Handler:
        async def guard(request: web.Request) -> web.StreamResponse:
            host = request.headers.get(hdrs.HOST)
            if not hosts.allows(host):
                raise web.HTTPForbidden(
                    text=f"Host {host} is not served by this node: add its name to [rpc] "
                    "allowed_hosts of the node's config.toml (this stops DNS rebinding)\n"
                )
            if is_cross_site_simple_post(request, cors):
                raise web.HTTPForbidden(
                    text=f"a {request.content_type} POST from origin "
                    f"{request.headers[hdrs.ORIGIN]} is refused: not this node's own origin "
                    "and not in [rpc] cors_origins\n"
                )
            return await handler(request)

        return guard

    return wrap
