"""`ChainActivity`: what this node saw of recent commits, in memory, for sec_getNetwork.

Two things a status page wants cannot be read cheaply from the store on every call: which
validator signed most recently (a scan of certificates) and when this node committed each block
(never stored: it is this node's wall clock, not chain data). The node records both on each
commit (`record`, O(signers)); at start `seeded` reads the last `SIGNED_WINDOW` certificates and
the last `RECENT_BLOCKS` blocks once (commit times of blocks before the start are unknown: None).

Invariant: memory is bounded: `RECENT_BLOCKS` entries, and one height per validator address
that signed a certificate seen (validators are at most a few hundred).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Final

from ledger.blocks import Block
from ledger.certificates import CommitCertificate
from ledger.store import ChainStore

RECENT_BLOCKS: Final = 20
"""Blocks kept for the network page (newest first)."""
SIGNED_WINDOW: Final = 256
"""Certificates read at start to seed each validator's last signed height."""


@dataclass(frozen=True, slots=True)
class RecentBlock:
    """One recently committed block as the network page shows it."""

    height: int
    """Block height."""
    hash: bytes
    """Header hash."""
    timestamp_ms: int
    """Block time (the proposer's clock)."""
    tx_count: int
    """Transactions in the block."""
    signers: int
    """Signatures in its commit certificate (0 for genesis)."""
    committed_ms: int | None
    """This node's wall clock when it committed the block; None if it does not know (the block
    was committed before the node started)."""

    @property
    def finality_ms(self) -> int | None:
        """From block time to this node's commit (negative if the clocks disagree)."""
        return None if self.committed_ms is None else self.committed_ms - self.timestamp_ms


class ChainActivity:
    """Recent blocks and each validator's last signed height (see the module docstring)."""

    def __init__(self) -> None:
        self.recent: deque[RecentBlock] = deque(maxlen=RECENT_BLOCKS)
        """The last blocks, oldest first (append order)."""
        self.last_signed: dict[bytes, int] = {}
        """Validator address -> highest height whose certificate it signed."""

    @classmethod
    def seeded(cls, store: ChainStore) -> ChainActivity:
        """Activity as far as the store shows it (O(`SIGNED_WINDOW` + `RECENT_BLOCKS`) reads)."""
        activity = cls()
        head = store.head_height() or 0
        for height in range(max(1, head - SIGNED_WINDOW + 1), head + 1):
            certificate = store.get_certificate(height)
            if certificate is not None:
                activity._signed(certificate)
        for height in range(max(0, head - RECENT_BLOCKS + 1), head + 1):
            block = store.get_block(height)
            if block is not None:
                activity._remember(block, store.get_certificate(height), None)
        return activity

    def record(
        self, block: Block, certificate: CommitCertificate | None, committed_ms: int
    ) -> None:
        """A block this node just committed, at its wall clock time `committed_ms`."""
        if certificate is not None:
            self._signed(certificate)
        self._remember(block, certificate, committed_ms)

    def _signed(self, certificate: CommitCertificate) -> None:
        for signature in certificate.signatures:
            address = bytes(signature.validator)
            if self.last_signed.get(address, -1) < certificate.height:
                self.last_signed[address] = certificate.height

    def _remember(
        self, block: Block, certificate: CommitCertificate | None, committed_ms: int | None
    ) -> None:
        self.recent.append(
            RecentBlock(
                height=block.height,
                hash=block.hash(),
                timestamp_ms=block.header.timestamp_ms,
                tx_count=len(block.transactions),
                signers=0 if certificate is None else len(certificate.signatures),
                committed_ms=committed_ms,
            )
        )

    def newest_first(self) -> list[RecentBlock]:
        return list(reversed(self.recent))
