"""What the RPC layer may see of a node: `NodeView`.

The node implements this protocol; RPC methods use nothing else. Reads of state must use the
committed view (`state.get_committed`, `state.prove`, `state.committed_root`) because a block
may be executing in the overlay while a request is served.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ledger.genesis import Genesis
from ledger.state import State
from ledger.store import ChainStore
from ledger.transactions import SignedTransaction
from ledger.validators import ValidatorSet
from secnode.runtime.chain_activity import ChainActivity
from secnode.runtime.mempool import Mempool


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """A snapshot of the node for sec_status and /health."""

    node_name: str
    """Operator-facing name from the config."""
    node_address: bytes
    """Address of the node key."""
    height: int
    """Height of the last committed block."""
    head_hash: bytes
    """Header hash of the last committed block."""
    head_time_ms: int
    """Timestamp of the last committed block."""
    view: int
    """Current PBFT view."""
    view_changes: int
    """View changes seen since start."""
    is_validator: bool
    """Whether this node is in the current validator set."""
    peers: int
    """Connected, authenticated peers."""
    syncing: bool
    """True while catching up from peers."""
    view_in_sync: bool = True
    """False when the replica is known to be in another view than the group's (it then only
    follows the chain; it does not add fault tolerance)."""
    group_view: int | None = None
    """The highest view at least f+1 validators are known to be in (None: not known yet)."""


@dataclass(frozen=True, slots=True)
class PeerStatus:
    """One connected peer, for sec_getNetwork."""

    public_key: bytes
    """The peer's node key (32 bytes)."""
    host: str | None
    """`ip:port` of the other end of the connection, if known."""
    name: str | None = None
    """The name this node's config gives it, if any."""


class NodeView(Protocol):
    """The node as the RPC layer sees it."""

    genesis: Genesis
    store: ChainStore
    state: State
    mempool: Mempool
    activity: ChainActivity
    """Recent commits as this node saw them (commit times, last signed heights)."""

    def status(self) -> NodeStatus: ...

    def peers(self) -> list[PeerStatus]:
        """The connected, authenticated peers."""
        ...

    def validators_at(self, height: int) -> ValidatorSet:
        """The validator set that certifies block `height` (from genesis and committed state)."""
        ...

    async def submit(self, tx: SignedTransaction) -> None:
        """Admit to the mempool and gossip; raises secnode.runtime.mempool.MempoolRejected."""
        ...

    async def wait_committed(
        self,
        tx_hash: bytes,
        timeout: float,  # noqa: ASYNC109  # a bounded wait is this method's contract
    ) -> tuple[int, int] | None:
        """Wait until `tx_hash` is committed; (height, index), or None on timeout."""
        ...
