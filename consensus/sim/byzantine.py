"""Byzantine strategies. Each wraps a node that otherwise runs the honest replica code.

* `Equivocator`: as primary, sends a different (valid, properly signed) block to half of the
  replicas; with `double_vote` it also signs PREPARE/COMMIT/CERTIFY for a second digest to half
  of the replicas.
* `Replayer`: re-sends old messages it has seen (other replicas' and its own), duplicated and
  out of order, to random replicas.
* `Hostile`: malformed input: forged signatures, signatures for another chain id, a key outside
  the validator set, far-future views and heights (buffer pressure), oversized payloads, garbage
  bytes; answers catch-up requests with forged certificates and payloads.
* `Silent`: sends nothing (crash-stop).

Twins (two nodes with one key, both running honest code) need no wrapper: the world simply has
two nodes with the same signer, which is what makes them equivocate.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import replace

from consensus.messages import (
    Certify,
    Commit,
    Message,
    Prepare,
    PrePrepare,
)
from consensus.sim.fastcrypto import FastSigner
from consensus.sim.toychain import ToyBlock, block_digest
from consensus.sim.world import Block, SimNode
from ledger.certificates import CommitCertificate, CommitSignature


def _sign(node: SimNode, message: Message, chain_id: str) -> Message:
    return replace(message, signature=node.signer.sign(message.signing_bytes(chain_id)))


def alternative_block(node: SimNode, m: PrePrepare) -> PrePrepare:
    """A second valid block for the same height and parent, signed by the same primary."""
    block = ToyBlock.decode(m.payload)
    other = ToyBlock(
        block.seq, block.parent, block.timestamp_ms + 1, block.proposer + b"'", block.txs, ()
    )
    payload = other.encode()
    draft = PrePrepare(m.view, m.seq, block_digest(payload), m.parent, payload, m.sender, b"")
    signed = _sign(node, draft, node.world.config.chain_id)
    return signed  # type: ignore[return-value]  # replace keeps the type


class Equivocator:
    """Equivocating primary, optionally also a double voter."""

    def __init__(self, rng: random.Random, *, double_vote: bool) -> None:
        self.rng = rng
        self.double_vote = double_vote
        self._alternatives: dict[tuple[int, int], PrePrepare] = {}

    def outgoing(self, node: SimNode, target: SimNode, message: Message) -> list[Message | bytes]:
        second_half = target.index % 2 == 1
        if isinstance(message, PrePrepare):
            if not second_half:
                return [message]
            key = (message.view, message.seq)
            alternative = self._alternatives.get(key)
            if alternative is None:
                alternative = self._alternatives[key] = alternative_block(node, message)
                if len(self._alternatives) > 256:
                    del self._alternatives[next(iter(self._alternatives))]
            return [alternative]
        if self.double_vote and isinstance(message, Prepare | Commit | Certify) and second_half:
            evil = hashlib.sha256(b"evil" + message.digest).digest()
            alternative_pp = self._alternatives.get((getattr(message, "view", -1), message.seq))
            digest = alternative_pp.digest if alternative_pp is not None else evil
            forged = replace(message, digest=digest)
            return [_sign(node, forged, node.world.config.chain_id), message]
        return [message]

    def observe(self, node: SimNode, message: Message) -> None:
        return None

    def serve(self, node: SimNode, blocks: list[Block]) -> list[Block]:
        return blocks


class Replayer:
    """Replays old traffic at random."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.seen: list[Message] = []

    def observe(self, node: SimNode, message: Message) -> None:
        if len(self.seen) < 2000:
            self.seen.append(message)
        elif self.rng.random() < 0.05:
            self.seen[self.rng.randrange(len(self.seen))] = message

    def outgoing(self, node: SimNode, target: SimNode, message: Message) -> list[Message | bytes]:
        out: list[Message | bytes] = [message]
        if self.seen and self.rng.random() < 0.5:
            out.extend(self.rng.choice(self.seen) for _ in range(self.rng.randint(1, 3)))
        if self.rng.random() < 0.1:
            out.append(message)
        self.rng.shuffle(out)
        return out

    def serve(self, node: SimNode, blocks: list[Block]) -> list[Block]:
        return blocks


class Hostile:
    """Malformed and forged input of every kind the core must reject."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.outsider = FastSigner(f"outsider-{rng.random()}")

    def outgoing(self, node: SimNode, target: SimNode, message: Message) -> list[Message | bytes]:
        rng = self.rng
        out: list[Message | bytes] = [message]
        if rng.random() < 0.6:
            out.append(self._forgery(node, message))
        return out

    def _forgery(self, node: SimNode, message: Message) -> Message | bytes:
        rng = self.rng
        chain_id = node.world.config.chain_id
        choice = rng.randrange(8)
        if choice == 0:
            return replace(message, signature=rng.randbytes(64))
        if choice == 1:
            return _sign(node, message, chain_id + "-other")
        if choice == 2:
            return _sign(node, replace(message, sender=self.outsider.address), chain_id)
        if choice == 3 and isinstance(message, Prepare | Commit | PrePrepare):
            ahead = rng.choice((1, 2, 5, 10_000))
            return _sign(node, replace(message, view=message.view + ahead), chain_id)
        if choice == 4 and isinstance(message, Prepare | Commit | Certify | PrePrepare):
            ahead = rng.choice((3, 17, 40, 10_000))
            return _sign(node, replace(message, seq=message.seq + ahead), chain_id)
        if choice == 5 and isinstance(message, PrePrepare):
            huge = message.payload + bytes(node.world.config.max_payload_bytes)
            return _sign(node, replace(message, payload=huge), chain_id)
        if choice == 6:
            return rng.randbytes(rng.randrange(1, 200))
        return message

    def observe(self, node: SimNode, message: Message) -> None:
        return None

    def serve(self, node: SimNode, blocks: list[Block]) -> list[Block]:
        forged: list[Block] = []
        for digest, payload, certificate in blocks:
            if self.rng.random() < 0.5:
                payload = payload + b"x"
            else:
                fake = tuple(
                    CommitSignature(s.validator, self.rng.randbytes(64))
                    for s in certificate.signatures
                )
                certificate = CommitCertificate(certificate.height, certificate.block_hash, fake)
            forged.append((digest, payload, certificate))
        return forged


class Silent:
    """Crash-stop: never sends anything."""

    def outgoing(self, node: SimNode, target: SimNode, message: Message) -> list[Message | bytes]:
        return []

    def observe(self, node: SimNode, message: Message) -> None:
        return None

    def serve(self, node: SimNode, blocks: list[Block]) -> list[Block]:
        return []


class Censor:
    """Follows the protocol to the letter, but its proposals leave out one client's
    transactions (set on its toy chain by the scenario): only the request timer exposes it."""

    def outgoing(self, node: SimNode, target: SimNode, message: Message) -> list[Message | bytes]:
        return [message]

    def observe(self, node: SimNode, message: Message) -> None:
        return None

    def serve(self, node: SimNode, blocks: list[Block]) -> list[Block]:
        return blocks
