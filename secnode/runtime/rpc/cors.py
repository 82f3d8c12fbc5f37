"""Which web pages may read this node: CORS on `/rpc` and `/health`, and the Origin rule of
`GET /ws` (docs/operations.md, "Web console").

`[rpc] cors_origins` lists the origins (`scheme://host[:port]`, exact match, or `"*"`) whose
pages may call the node from a browser. For such an origin the node answers the preflight
`OPTIONS /rpc` (POST with a `Content-Type` header) and adds `Access-Control-Allow-Origin: <that
origin>` (with `Vary: Origin`) to every `/rpc` and `/health` answer, errors (413, 429)
included, so the page can read why it was refused. The default, an empty list, adds no CORS
header: a browser then lets no other origin read the node's answers.

WebSockets are not covered by the browser's same-origin rule: any page a user opens could
open `ws://127.0.0.1:8545/ws` and read a node on the user's machine or intranet that the page's
author cannot reach (cross-site WebSocket hijacking). So `GET /ws` checks the Origin header a
browser always sends: it is accepted when it is the node's own origin (the console the node
serves itself) or is allowed by `cors_origins`, and refused with 403 otherwise, whatever
`cors_origins` holds. A request without an Origin header is not from a browser page (the CLI,
scripts) and is always accepted: the rule protects browsers' users, it is not access control.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from aiohttp import hdrs, web

ANY_ORIGIN: Final = "*"
CORS_PATHS: Final = frozenset({"/rpc", "/health"})
"""Paths whose answers carry CORS headers for an allowed origin."""
PREFLIGHT_MAX_AGE_S: Final = 600
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


def check_origin(value: str) -> str:
    """`value` if it is "*" or a serialized origin as browsers send it: `http(s)://host[:port]`
    in lower case, no path, no trailing slash, no default port; ValueError saying why not."""
    if value == ANY_ORIGIN:
        return value
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f'{value!r} is not an origin like http://127.0.0.1:8080 (or "*")')
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{value!r} has an invalid port") from None
    canonical = f"{parts.scheme}://{parts.netloc.lower()}"
    if port == _DEFAULT_PORTS[parts.scheme]:
        canonical = canonical.rsplit(":", 1)[0]
    if value != canonical:
        raise ValueError(
            f"{value!r} is not an origin as a browser sends it: write {canonical!r} "
            "(lower case, no path, no trailing slash, no default port)"
        )
    return value


def _host_port(scheme: str, netloc: str) -> tuple[str, int] | None:
    try:
        parts = urllib.parse.urlsplit(f"{scheme}://{netloc}")
        port = parts.port
    except ValueError:
        return None
    if parts.hostname is None:
        return None
    return parts.hostname, port if port is not None else _DEFAULT_PORTS.get(scheme, 80)


def same_origin(origin: str, host: str) -> bool:
    """True if `origin` (a browser's Origin header) names the host:port the request was sent
    to (its Host header): a page this node served itself."""
    scheme = urllib.parse.urlsplit(origin).scheme
    if scheme not in _DEFAULT_PORTS:
        return False
    mine = _host_port(scheme, host)
    return mine is not None and _host_port(scheme, origin.split("://", 1)[1]) == mine


@dataclass(frozen=True, slots=True)
class CorsPolicy:
    """The origins of `[rpc] cors_origins`."""

    origins: frozenset[str]

    @classmethod
    def of(cls, origins: Iterable[str]) -> CorsPolicy:
        return cls(frozenset(check_origin(origin) for origin in origins))

    def allows(self, origin: str) -> bool:
        """True if a page of `origin` may read this node's /rpc and /health answers."""
        return ANY_ORIGIN in self.origins or origin in self.origins

    def allows_socket(self, request: web.Request) -> bool:
        """True if `request` (a GET /ws) may become a WebSocket: no Origin (not a browser),
        the node's own origin, or an allowed one."""
        origin = request.headers.get(hdrs.ORIGIN)
        return origin is None or same_origin(origin, request.host) or self.allows(origin)

    def install(self, app: web.Application) -> None:
        """Answer preflights on OPTIONS /rpc and add the CORS headers to the answers of
        `CORS_PATHS`; with no origins configured, only the OPTIONS route (which then refuses
        every origin) is added."""

        async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
            if request.path not in CORS_PATHS or not self.origins:
                return
            response.headers.add(hdrs.VARY, hdrs.ORIGIN)
            origin = request.headers.get(hdrs.ORIGIN)
            if origin is not None and self.allows(origin):
                response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
                response.headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = hdrs.RETRY_AFTER

        async def preflight(request: web.Request) -> web.Response:
            origin = request.headers.get(hdrs.ORIGIN)
            if origin is None:  # not a CORS preflight: say what the path accepts
                return web.Response(status=204, headers={hdrs.ALLOW: "POST, OPTIONS"})
            if not self.allows(origin):
                raise web.HTTPForbidden(
                    text=f"origin {origin} may not call this node: it is not in "
                    "[rpc] cors_origins of the node's config.toml\n"
                )
            return web.Response(
                status=204,
                headers={
                    hdrs.ACCESS_CONTROL_ALLOW_METHODS: "POST",
                    hdrs.ACCESS_CONTROL_ALLOW_HEADERS: "Content-Type",
                    hdrs.ACCESS_CONTROL_MAX_AGE: str(PREFLIGHT_MAX_AGE_S),
                },
            )

        app.on_response_prepare.append(add_headers)
        app.router.add_route("OPTIONS", "/rpc", preflight)
