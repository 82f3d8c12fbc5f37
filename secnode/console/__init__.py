"""The web console: a static bundle (HTML, CSS, ES modules under `static/`) that reads a node
over JSON-RPC and checks proofs and certificates in the browser (docs/console.md).

No build step and no Node.js toolchain: the files under `static/` are served as they are,
either by a node (`[rpc] console = true`) or from the user's own machine (`sec console`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

STATIC_DIR: Final = Path(__file__).resolve().parent / "static"
"""The bundle's root directory (index.html is its entry page)."""

LOCAL_LISTEN: Final = "127.0.0.1:8080"
"""Where `sec console` serves the bundle unless told otherwise (`--listen`)."""
LOCAL_ORIGINS: Final = ("http://127.0.0.1:8080", "http://localhost:8080")
"""The origins a browser sends for `sec console` at `LOCAL_LISTEN`: what `sec testnet` lets
read its nodes (`[rpc] cors_origins`)."""
