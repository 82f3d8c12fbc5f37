"""TEST-ONLY FAULT: a validator that lies on the wire, for `sec nemesis`.

Off by default. A node becomes Byzantine only when its process starts with the environment
variable `SEC_BYZANTINE` set to one of `BEHAVIOURS`; `make_host` then returns a `ByzantineHost`
instead of a plain `P2PHost`. Nothing else in the node changes: the replica stays honest and the
lies are added (or substituted) on the way out, where an attacker who holds a validator key but
runs modified software would put them.

* `replay`: every outgoing consensus message is sent as usual, and each send also re-sends up to
  `REPLAY_BURST` older consensus messages of this node (kept in a ring of `REPLAY_MEMORY`) to a
  random connected peer. Honest peers must treat them as duplicates or stale messages.
* `equivocate`: for every PRE-PREPARE and PREPARE this node sends, half of its peers (the ones
  whose position in the sorted peer list is odd) get a conflicting message signed with the node's
  real key for the same (view, seq): a PRE-PREPARE of the same block with its timestamp moved by
  1 ms (a different, otherwise well-formed header), or a PREPARE for a digest that names no block.
  The other half get the honest message. Safety must hold regardless: one faulty validator of
  four cannot assemble a quorum for either side.

Invariant: with `SEC_BYZANTINE` unset (the only production setting) `make_host` builds exactly the
`P2PHost` the node always built. An unknown value is refused at start with the list of values.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
from collections import deque
from typing import Final

from consensus.errors import MessageRejected
from consensus.messages import (
    Message,
    Prepare,
    PrePrepare,
    decode_message,
    encode_message,
)
from contracts import TX_TYPES
from ledger.blocks import decode_block
from ledger.errors import LedgerError
from ledger.keys import PublicKey, Signer
from p2p import P2PConfig, P2PError, P2PHost

log = logging.getLogger("secnode.byzantine")

ENVIRONMENT_VARIABLE: Final = "SEC_BYZANTINE"
BEHAVIOURS: Final = ("replay", "equivocate")
REPLAY_MEMORY: Final = 256
"""Older consensus messages kept for replaying."""
REPLAY_BURST: Final = 2
"""Old messages re-sent per honest send."""


class ByzantineConfigError(LedgerError):
    """`SEC_BYZANTINE` holds a value that names no behaviour."""


def behaviour_from_environment() -> str | None:
    """The configured behaviour, None when the variable is unset or empty."""
    value = os.environ.get(ENVIRONMENT_VARIABLE, "").strip()
    if not value:
        return None
    if value not in BEHAVIOURS:
        raise ByzantineConfigError(
            f"{ENVIRONMENT_VARIABLE}={value!r} is not one of {', '.join(BEHAVIOURS)}"
        )
    return value


def make_host(config: P2PConfig, signer: Signer, chain_id: str) -> P2PHost:
    """The node's P2P host: a plain `P2PHost` unless `SEC_BYZANTINE` asks for a liar."""
    behaviour = behaviour_from_environment()
    if behaviour is None:
        return P2PHost(config, signer)
    log.warning("TEST-ONLY FAULT: this node is Byzantine (%s=%s)", ENVIRONMENT_VARIABLE, behaviour)
    return ByzantineHost(config, signer, chain_id, behaviour)


class ByzantineHost(P2PHost):
    """A `P2PHost` whose outgoing consensus traffic lies as its behaviour says."""

    def __init__(self, config: P2PConfig, signer: Signer, chain_id: str, behaviour: str) -> None:
        super().__init__(config, signer)
        self.behaviour = behaviour
        self._signer = signer
        self._chain_id = chain_id
        self._sent: deque[bytes] = deque(maxlen=REPLAY_MEMORY)
        self._random = random.Random()
        self.lies = 0
        """Messages sent that an honest node would not have sent (for logs and tests)."""

    def broadcast_consensus(self, payload: bytes) -> int:
        if self.behaviour == "replay":
            sent = super().broadcast_consensus(payload)
            self._replay()
            self._sent.append(payload)
            return sent
        forged = self._conflicting(payload)
        if forged is None:
            return super().broadcast_consensus(payload)
        peers = self.connected_peers()
        for position, peer in enumerate(peers):
            self._send_quietly(peer, forged if position % 2 else payload)
        self.lies += len(peers) // 2
        return len(peers)

    def send_consensus(self, peer: PublicKey, payload: bytes) -> None:
        if self.behaviour == "replay":
            super().send_consensus(peer, payload)
            self._replay()
            self._sent.append(payload)
            return
        forged = self._conflicting(payload)
        peers = self.connected_peers()
        if forged is not None and peer in peers and peers.index(peer) % 2:
            self.lies += 1
            payload = forged
        super().send_consensus(peer, payload)

    def _replay(self) -> None:
        peers = self.connected_peers()
        if not peers or not self._sent:
            return
        for _ in range(min(REPLAY_BURST, len(self._sent))):
            old = self._sent[self._random.randrange(len(self._sent))]
            self._send_quietly(self._random.choice(peers), old)
            self.lies += 1

    def _send_quietly(self, peer: PublicKey, payload: bytes) -> None:
        try:
            super().send_consensus(peer, payload)
        except P2PError as exc:  # a peer that just left: the lie is lost, like any send
            log.debug("byzantine send to a peer failed: %s", exc)

    def _conflicting(self, payload: bytes) -> bytes | None:
        """A signed message conflicting with `payload`, or None if it is not a vote we forge."""
        try:
            message = decode_message(payload)
        except MessageRejected:
            return None
        forged = self._forge(message)
        return None if forged is None else encode_message(forged)

    def _forge(self, message: Message) -> Message | None:
        if isinstance(message, PrePrepare):
            try:
                block = decode_block(message.payload, TX_TYPES)
            except LedgerError:
                return None
            header = dataclasses.replace(block.header, timestamp_ms=block.header.timestamp_ms + 1)
            other = dataclasses.replace(block, header=header)
            forged_pre = dataclasses.replace(
                message, digest=other.hash(), payload=other.encode(), signature=b""
            )
            signature = self._signer.sign(forged_pre.signing_bytes(self._chain_id))
            return dataclasses.replace(forged_pre, signature=signature)
        if isinstance(message, Prepare):
            digest = bytes(self._random.getrandbits(8) for _ in range(len(message.digest)))
            forged_vote = dataclasses.replace(message, digest=digest, signature=b"")
            signature = self._signer.sign(forged_vote.signing_bytes(self._chain_id))
            return dataclasses.replace(forged_vote, signature=signature)
        return None
