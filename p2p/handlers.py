"""The node's callbacks (`Handlers`): where p2p hands over what arrives.

Invariants the host keeps for them: every callback runs on the event loop; `on_transaction` sees
a transaction's bytes at most once per node while its digest is in the seen-cache;
`on_peer_connected` and `on_peer_disconnected` alternate per peer (a connection replaced by a
newer one to the same peer fires neither). An `InvalidPayload` raised by a callback charges the
sending peer; any other exception is treated as a bug: logged with its traceback, and only that
peer's connection is closed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ledger.keys import PublicKey
from p2p.errors import RequestRejected

TransactionHandler = Callable[[PublicKey, bytes], bool]
ConsensusHandler = Callable[[PublicKey, bytes], None]
RequestHandler = Callable[[PublicKey, bytes], Awaitable[bytes]]
PeerConnectedHandler = Callable[[PublicKey], None]
PeerDisconnectedHandler = Callable[[PublicKey, str], None]


def relay_every_transaction(peer: PublicKey, transaction: bytes) -> bool:
    """Default `on_transaction`: a pure relay (a node should validate before relaying)."""
    return True


def ignore_consensus(peer: PublicKey, payload: bytes) -> None:
    """Default `on_consensus`: drop it (an observer without consensus)."""


async def refuse_requests(peer: PublicKey, payload: bytes) -> bytes:
    """Default `on_request`: serve nothing."""
    raise RequestRejected("this node serves no requests")


def ignore_connected(peer: PublicKey) -> None:
    """Default `on_peer_connected`."""


def ignore_disconnected(peer: PublicKey, reason: str) -> None:
    """Default `on_peer_disconnected`."""


@dataclass(frozen=True, slots=True)
class Handlers:
    """The node's callbacks. All but `on_request` are synchronous and must not block: hand the
    payload to your own queue. Raise `InvalidPayload` from any of them to penalise the sender."""

    on_transaction: TransactionHandler = relay_every_transaction
    """A new (not yet seen) gossiped transaction. Return True to relay it to our other peers
    (it is valid or at least admissible), False to stop it here; to relay it later, call
    `P2PHost.broadcast_transaction` with the same bytes."""

    on_consensus: ConsensusHandler = ignore_consensus
    """A consensus message sent to us directly (p2p never relays these)."""

    on_request: RequestHandler = refuse_requests
    """A catch-up request; return the response bytes, or raise `RequestRejected(reason)`.
    Runs as its own task; at most `max_inflight_requests` at once per peer."""

    on_peer_connected: PeerConnectedHandler = ignore_connected
    """A peer now has an authenticated connection."""

    on_peer_disconnected: PeerDisconnectedHandler = ignore_disconnected
    """A peer lost its last connection; the reason is human-readable."""
