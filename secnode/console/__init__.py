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
