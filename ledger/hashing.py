"""The ledger's one hash function and its size.

Every hash the ledger computes or accepts (block header hashes, RFC 6962 Merkle nodes, state
tree nodes and paths, the block hash a commit certificate names, what PBFT orders) is SHA-256,
so it is `HASH_SIZE` bytes long. Each use prefixes its own domain bytes (see the module that
computes it); this module owns only the size, so that no file states it on its own.
"""

from __future__ import annotations

from typing import Final

HASH_SIZE: Final = 32
"""Bytes in every ledger hash (SHA-256)."""
