"""Serving the console bundle over HTTP: the files of `STATIC_DIR` at `/` and the generated
`config.json` next to index.html (docs/console.md), for a node (`[rpc] console = true`) and for
`sec console` alike.

Theory of operation: `load_bundle` reads the bundle once, at start, into memory, and
`add_console_routes` registers one exact route per file. A request can therefore only ever
reach a file that was inside the bundle directory when it was read: there is no path joining
at request time, so `..`, `%2e%2e`, absolute paths and symlinks pointing out of the bundle
have nothing to resolve against and get aiohttp's plain 404, and there are no directory
listings. Only files whose every path segment is a plain name (`[A-Za-z0-9_-]`, dots inside,
never leading) and whose extension has a known content type are served; anything else in
the directory (dotfiles, editor backups, odd names) is skipped.

Invariants: the bundle's size is bounded (`MAX_FILES`, `MAX_FILE_BYTES`, `MAX_TOTAL_BYTES`),
so a node never holds more than that in memory for it; a request does no disk I/O and no
compression (both done at load), so serving never blocks the event loop; every HTML answer
carries a strict Content-Security-Policy (scripts from the bundle only, connections to the
node only) and every answer `X-Content-Type-Options: nosniff`.

Caching: the files are referenced by plain relative URLs (ES module imports), without content
hashes, so a browser must revalidate them (`Cache-Control: no-cache` with a strong ETag: a
repeat visit costs a 304 per file). `config.json` is never stored (`no-store`): it is the
node URL and the genesis this server was started with.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from ledger.errors import LedgerError
from secnode.console import STATIC_DIR

MAX_FILES: Final = 2_000
MAX_FILE_BYTES: Final = 8 << 20
MAX_TOTAL_BYTES: Final = 32 << 20
ENTRY_PAGE: Final = "index.html"
CONFIG_PATH: Final = "config.json"

CONTENT_TYPES: Final[Mapping[str, str]] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}
"""Extensions served, with their Content-Type (`.js` as text/javascript so modules load)."""

_COMPRESSIBLE: Final = frozenset(
    {".html", ".js", ".mjs", ".css", ".json", ".map", ".webmanifest", ".txt", ".md", ".svg"}
)
_SEGMENT: Final = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
_HOST: Final = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")
_SECURITY_HEADERS: Final[Mapping[str, str]] = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class ConsoleError(LedgerError):
    """The bundle cannot be served: missing, too large, or a bad console setting."""


@dataclass(frozen=True, slots=True)
class Asset:
    """One file of the bundle, ready to send."""

    body: bytes
    """The file's bytes."""
    content_type: str
    """Its Content-Type header."""
    etag: str
    """Strong ETag: a quoted prefix of the SHA-256 of `body`."""
    gzipped: bytes | None = None
    """`body` gzip-compressed, when that is smaller (text formats only)."""

    @classmethod
    def of(cls, body: bytes, content_type: str, *, compress: bool) -> Asset:
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        packed = gzip.compress(body, compresslevel=6, mtime=0) if compress else None
        smaller = packed if packed is not None and len(packed) < len(body) else None
        return cls(body, content_type, etag, smaller)


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    """What `config.json` tells the console (interface A, docs/console.md)."""

    node: str
    """RPC base URL of the node to read; "" means the origin that served the page."""
    genesis: dict[str, Any] | None
    """The genesis document (as `Genesis.model_dump(mode="json")`), or None: ask the node."""
    pinned: bool
    """True when the genesis came from the user's own file (`sec console --genesis`)."""

    def document(self) -> dict[str, Any]:
        return {"node": self.node, "genesis": self.genesis, "pinned": self.pinned}


def load_bundle(root: Path = STATIC_DIR) -> dict[str, Asset]:
    """Every servable file under `root`, keyed by its URL path relative to `/` (e.g.
    "js/app.js"); symlinks are followed only while they stay inside `root`."""
    base = root.resolve()
    if not base.is_dir():
        raise ConsoleError(f"console bundle {root} is not a directory")
    assets: dict[str, Asset] = {}
    total = 0
    for path in sorted(base.rglob("*")):
        relative = path.relative_to(base)
        extension = path.suffix.lower()
        if (
            extension not in CONTENT_TYPES
            or not all(_SEGMENT.fullmatch(part) for part in relative.parts)
            or not path.resolve().is_relative_to(base)
            or not path.is_file()
        ):
            continue
        if len(assets) == MAX_FILES:
            raise ConsoleError(f"console bundle {root} has more than {MAX_FILES} files")
        body = path.read_bytes()
        if len(body) > MAX_FILE_BYTES:
            raise ConsoleError(f"{path} is over {MAX_FILE_BYTES} bytes; not a console file")
        total += len(body)
        if total > MAX_TOTAL_BYTES:
            raise ConsoleError(f"console bundle {root} is over {MAX_TOTAL_BYTES} bytes")
        compress = extension in _COMPRESSIBLE
        assets[relative.as_posix()] = Asset.of(body, CONTENT_TYPES[extension], compress=compress)
    return assets


def websocket_origin(url: str) -> str:
    """ws:// (or wss://) origin of an http(s) base URL: what the console's WebSocket opens."""
    parts = urllib.parse.urlsplit(url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}"


def http_origin(url: str) -> str:
    """scheme://host[:port] of a URL."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(settings: ConsoleSettings, host: str) -> str:
    """The HTML's CSP: everything from the bundle's own origin only, no inline script or
    style, and connections to the node only (its http origin and its ws/wss twin).

    `host` is the request's Host header, used only when the console reads the node that
    serves it (`settings.node == ""`), for that node's own WebSocket origin; a Host that is
    not a plain host[:port] adds nothing."""
    if settings.node:
        sources = [http_origin(settings.node), websocket_origin(settings.node)]
    else:
        sources = [f"ws://{host}", f"wss://{host}"] if _HOST.fullmatch(host) else []
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src " + " ".join(["'self'", *sources]),
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def _accepts_gzip(request: web.Request) -> bool:
    return any(
        coding.split(";")[0].strip() == "gzip"
        for coding in request.headers.get("Accept-Encoding", "").split(",")
    )


def _answer(
    request: web.Request, asset: Asset, cache: str, headers: Mapping[str, str]
) -> web.Response:
    gzipped = asset.gzipped is not None and _accepts_gzip(request)
    body = asset.gzipped if gzipped and asset.gzipped is not None else asset.body
    # Each representation has its own strong ETag; a client's copy of either is still current.
    etag = asset.etag[:-1] + '-gzip"' if gzipped else asset.etag
    common = {**_SECURITY_HEADERS, **headers, "Cache-Control": cache, "ETag": etag}
    if asset.gzipped is not None:
        common["Vary"] = "Accept-Encoding"
    if asset.etag[1:-1] in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=common)
    if gzipped:
        common["Content-Encoding"] = "gzip"
    return web.Response(body=body, headers={**common, "Content-Type": asset.content_type})


def add_console_routes(
    app: web.Application, assets: Mapping[str, Asset], settings: ConsoleSettings
) -> None:
    """Serve `assets` at `/` + their path (index.html at `/` too) and `config.json` from
    `settings`. One exact GET/HEAD route per file: no pattern, so nothing else is reachable,
    and a route of the app registered earlier (`/rpc`, `/ws` ...) keeps its meaning, since a
    bundle file cannot be named like one (every served file has an extension)."""
    config = Asset.of(
        json.dumps(settings.document(), separators=(",", ":")).encode(),
        CONTENT_TYPES[".json"],
        compress=True,
    )

    def handler(asset: Asset, cache: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        is_html = asset.content_type.startswith("text/html")

        async def serve(request: web.Request) -> web.Response:
            extra = (
                {"Content-Security-Policy": content_security_policy(settings, request.host)}
                if is_html
                else {}
            )
            return _answer(request, asset, cache, extra)

        return serve

    for path, asset in assets.items():
        if path != CONFIG_PATH:  # the generated one wins over a stray file of that name
            app.router.add_get("/" + path, handler(asset, "no-cache"))
    if ENTRY_PAGE in assets:
        app.router.add_get("/", handler(assets[ENTRY_PAGE], "no-cache"))
    app.router.add_get("/" + CONFIG_PATH, handler(config, "no-store"))
