"""Every error the p2p package raises. One base, `P2PError`; each subclass names the broken rule.

Messages carry the offending values (sizes, kinds, addresses) so a log line explains itself.

The tree follows who broke the rule (as in h11's Local/RemoteProtocolError):

* `RemoteProtocolError` - the peer sent something invalid. It counts against the peer's score;
  the ones marked *fatal* below desynchronise or poison the stream and close the connection.
* `HandshakeError` - the peer could not prove an allowlisted identity; the connection is refused.
* `PeerDropped` - we decided to drop a healthy-looking connection (slow, dead, misbehaving).
* `RequestError` - what `P2PHost.request` raises when no response arrives.
* `InvalidPayload`, `RequestRejected` - raised by the node's handlers to tell p2p that a payload
  was bad (the sender is penalised) or that a request cannot be served (the requester is told why).
"""

from __future__ import annotations


class P2PError(Exception):
    """Base of every p2p error."""


class InvalidConfig(P2PError):
    """A configuration value outside its allowed range."""


class MessageTooLarge(P2PError):
    """We tried to send a message whose frame exceeds the frame cap (a local error)."""


class HostLifecycleError(P2PError):
    """A host method called in the wrong phase (e.g. `run` twice)."""


class PeerNotConnected(P2PError):
    """A send or request addressed to a peer with no authenticated connection."""


# --- the peer broke the protocol ---------------------------------------------------------------


class RemoteProtocolError(P2PError):
    """Base of protocol violations by the remote peer; each one counts against its score."""


class TamperedRecord(RemoteProtocolError):
    """Fatal: a record failed authentication (modified, replayed, reordered or forged)."""


class RecordTooLarge(RemoteProtocolError):
    """Fatal: a record header announces more bytes than the record cap (or fewer than a tag)."""


class TruncatedRecord(RemoteProtocolError):
    """Fatal: the stream ended in the middle of a record."""


class FrameError(RemoteProtocolError):
    """Base of errors in one frame inside an authenticated record."""


class FrameTooLarge(FrameError):
    """A frame whose length prefix exceeds the frame cap."""


class TruncatedFrame(FrameError):
    """A frame whose length prefix runs past the end of its record."""


class MalformedFrame(FrameError):
    """A frame that is not exactly one msgpack array of a known message's shape."""


class UnknownMessageType(FrameError):
    """A well-formed frame whose message kind this version does not know."""


# --- the peer failed the handshake -------------------------------------------------------------


class HandshakeError(P2PError):
    """Base of handshake failures; the connection is refused and the failure logged."""


class MalformedHandshake(HandshakeError):
    """A handshake message that is not of the expected shape, size or encoding."""


class ProtocolMismatch(HandshakeError):
    """The peer speaks another protocol version."""


class ChainMismatch(HandshakeError):
    """The peer belongs to another chain."""


class BadHandshakeSignature(HandshakeError):
    """The peer claimed a key it could not sign for (impersonation, replay or tampering)."""


class UnknownPeer(HandshakeError):
    """The peer proved a key that is not on the allowlist."""


class PeerIdentityMismatch(HandshakeError):
    """The peer we dialled proved a different (possibly allowlisted) key than configured."""


class SelfConnection(HandshakeError):
    """The peer proved our own key: we dialled ourselves."""


class PeerBanned(HandshakeError):
    """The peer proved an allowlisted key that is banned for recent misbehaviour."""


class HandshakeTimeout(HandshakeError):
    """The handshake did not complete within the configured time."""


class HandshakeAborted(HandshakeError):
    """The peer closed the connection during the handshake (it may have refused us)."""


class HandshakeOutOfOrder(P2PError):
    """A local bug: a handshake step was called twice or before the step it depends on."""


# --- we dropped the peer -----------------------------------------------------------------------


class PeerDropped(P2PError):
    """Base of local decisions to close an authenticated connection."""


class SlowPeer(PeerDropped):
    """The peer's send queue overflowed or a write stalled past the write timeout."""


class DeadPeer(PeerDropped):
    """Nothing arrived from the peer within the idle timeout."""


class MisbehavingPeer(PeerDropped):
    """The peer's score fell below the disconnect threshold."""


class ConnectionReplaced(PeerDropped):
    """A second connection to the same peer won the tie-break, so this one closes."""


class HandlerFailed(PeerDropped):
    """A node handler raised an unexpected exception (a bug); only this connection closes."""


class HostStopping(PeerDropped):
    """The host is shutting down."""


class SessionExhausted(PeerDropped):
    """The 64-bit record counter would wrap; the connection must be re-established."""


class PeerNoLongerAllowed(PeerDropped):
    """The peer's key was taken off the allowlist (e.g. a validator removed by a committed
    block); not a ban, but its connections are refused until it is allowed again."""


class RemoteClosed(PeerDropped):
    """The peer closed the connection (cleanly, between records)."""


# --- request/response --------------------------------------------------------------------------


class RequestError(P2PError):
    """Base of the ways `P2PHost.request` fails."""


class RequestTimeout(RequestError):
    """No response within the request timeout."""


class RequestFailed(RequestError):
    """The peer answered the request with an error (its reason is in the message)."""


class PeerDisconnected(RequestError):
    """The connection closed while the request was outstanding."""


# --- raised by the node's handlers -------------------------------------------------------------


class InvalidPayload(P2PError):
    """Raised by a node handler: the payload is invalid; the sender is penalised."""


class RequestRejected(P2PError):
    """Raised by the node's request handler: the request cannot be served (message sent back)."""
