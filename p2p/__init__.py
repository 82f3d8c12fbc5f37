"""Authenticated, encrypted transport and gossip between SEC chain nodes.

p2p knows nothing of PBFT, blocks or transactions: every payload is opaque bytes, and the node
decodes them (with `ledger.encoding.decode`). The wire format, handshake and tuning table are in
docs/p2p.md.

Using it from the node::

    from p2p import Handlers, P2PConfig, P2PHost, PeerAddress, Tuning, allowlist

    config = P2PConfig(
        chain_id=genesis.chain_id,
        allowed_keys=allowlist([*validator_keys, *observer_keys]),
        peers=(PeerAddress(public_key=key, host="10.0.0.2", port=26656), ...),
        listen_host="0.0.0.0",
        listen_port=26656,
        tuning=Tuning(),                       # defaults are documented per field
    )
    host = P2PHost(config, node_key, Handlers(
        on_transaction=mempool_admit,          # (peer, tx) -> bool: relay it on?
        on_consensus=consensus_inbox_put,      # (peer, payload) -> None, must not block
        on_request=serve_catch_up,             # async (peer, payload) -> response bytes
        on_peer_connected=...,                 # (peer) -> None
        on_peer_disconnected=...,              # (peer, reason) -> None
    ))
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(host.run())          # until host.stop()
        await host.wait_listening()
        host.broadcast_transaction(tx_bytes)   # gossip, deduplicated, relayed by every node
        host.broadcast_consensus(message)      # to every connected peer (not relayed)
        host.send_consensus(peer, message)     # to one peer
        block = await host.request(peer, b"...")   # catch-up; raises a RequestError
        host.set_allowed_keys(new_allowlist)   # e.g. after a validator set change: closes
                                               # the links of keys no longer allowed
        ...
        host.stop()

`node_key` is a `ledger.keys.PrivateKey` or `Signer`; peers are identified by their Ed25519
public key (`ledger.keys.PublicKey`; `address_of` gives the account-style address for logs).

Contract with the node:

* Handlers are called on the event loop; all but `on_request` are synchronous and must not
  block. Raise `InvalidPayload` from a handler to charge the sender; other exceptions are
  treated as bugs: logged with a traceback, and only that connection is closed.
* Sending never waits. A peer whose send queue overflows its caps, or whose socket does not
  drain within `write_timeout`, is dropped (and redialled with backoff if configured), so one
  slow peer never delays the others. Pace bulk transfers with `await host.wait_sent(peer)`.
* Consensus messages are not relayed: validators must be fully meshed (every validator lists
  every other in `peers`; connections are deduplicated whichever side dials).
* `on_transaction` sees each transaction once per node while its hash is in the seen-cache
  (`seen_cache_size`); the mempool should still deduplicate.
"""

from p2p.config import P2PConfig, PeerAddress, Tuning, allowlist
from p2p.errors import (
    InvalidPayload,
    MessageTooLarge,
    P2PError,
    PeerDisconnected,
    PeerNotConnected,
    RequestError,
    RequestFailed,
    RequestRejected,
    RequestTimeout,
)
from p2p.handlers import Handlers
from p2p.host import HostStats, P2PHost
from p2p.peer import PeerInfo
from p2p.score import Offense

__all__ = [
    "Handlers",
    "HostStats",
    "InvalidPayload",
    "MessageTooLarge",
    "Offense",
    "P2PConfig",
    "P2PError",
    "P2PHost",
    "PeerAddress",
    "PeerDisconnected",
    "PeerInfo",
    "PeerNotConnected",
    "RequestError",
    "RequestFailed",
    "RequestRejected",
    "RequestTimeout",
    "Tuning",
    "allowlist",
]
