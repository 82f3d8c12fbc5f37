"""A lock-step cluster for unit tests and examples: replicas, toy chains, a FIFO network.

Unlike the simulator there is no randomness: messages are delivered in sending order, a filter
decides which links work, and time advances only when the test says so. Each replica's actions
are carried out per the driver contract (persist, then send; commit; timers; records GC).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import assert_never

from consensus.actions import (
    Action,
    Broadcast,
    CommitBlock,
    DiscardRecords,
    EnteredView,
    FaultDetected,
    Persist,
    RequestCatchUp,
    Send,
    SetTimer,
)
from consensus.config import ReplicaConfig, ValidatorSchedule
from consensus.crypto import ED25519, SignatureScheme
from consensus.errors import MessageRejected
from consensus.messages import Certify, Message
from consensus.records import Record, record_is_obsolete
from consensus.replica import Replica
from consensus.sim.fastcrypto import FAST, FastSigner
from consensus.sim.toychain import GENESIS_DIGEST, ToyChain
from consensus.sim.world import KeyedSigner
from ledger.keys import Address, PrivateKey, Signer
from ledger.validators import ValidatorSet

Link = Callable[[int, int, Message], bool]
_FETCH = Certify(0, bytes(32), Address(bytes(20)), bytes(64))
"""Stand-in message for asking `link` whether a catch-up fetch can pass."""


def cluster_config(**overrides: object) -> ReplicaConfig:
    """Small windows and round timers, convenient for tests."""
    values: dict[str, object] = {
        "chain_id": "sec-test",
        "genesis_digest": GENESIS_DIGEST,
        "checkpoint_interval": 4,
        "watermark_window": 8,
        "max_in_flight": 2,
        "min_validator_change_delay": 6,
        "batch_wait": 0.1,
        "empty_block_interval": 1.0,
        "view_timeout": 3.0,
        "resend_interval": 1.0,
        "catch_up_retry": 1.0,
        "max_view_ahead": 8,
        "max_payload_bytes": 4096,
        "max_future_per_peer": 8,
        "max_future_total": 32,
        "max_catch_up_blocks": 16,
    }
    values.update(overrides)
    return ReplicaConfig(**values)  # type: ignore[arg-type]


class Cluster:
    """n validators (plus `spare` non-validator nodes) wired by a deterministic FIFO network."""

    def __init__(
        self,
        n: int = 4,
        *,
        config: ReplicaConfig | None = None,
        real_crypto: bool = True,
        spare: int = 0,
    ) -> None:
        self.config = config or cluster_config()
        self.scheme: SignatureScheme = ED25519 if real_crypto else FAST
        self.signers: list[KeyedSigner] = [
            Signer(PrivateKey.from_label(f"cluster/{i}")) if real_crypto else FastSigner(str(i))
            for i in range(n + spare)
        ]
        self.validators = ValidatorSet.from_public_keys([s.public_key for s in self.signers[:n]])
        self.apps = [ToyChain(b"node-%d" % i) for i in range(n + spare)]
        self.records: list[list[Record]] = [[] for _ in self.signers]
        self.replicas: list[Replica | None] = [
            Replica(self.config, s, a, self.validators, scheme=self.scheme)
            for s, a in zip(self.signers, self.apps, strict=True)
        ]
        self.timers: list[float | None] = [None] * len(self.signers)
        self.queue: deque[tuple[int, int, Message]] = deque()
        self.link: Link = lambda source, target, message: True
        self.actions: list[list[list[Action]]] = [[] for _ in self.signers]
        self.catch_up: list[list[RequestCatchUp]] = [[] for _ in self.signers]
        self.serve_catch_up = True
        """Answer `RequestCatchUp` from the first claimed peer's chain (a well-behaved driver)."""
        self.fetches: deque[tuple[int, RequestCatchUp]] = deque()
        self.rejections: list[MessageRejected] = []
        self.now = 0.0
        self.tx = 0

    @property
    def size(self) -> int:
        return len(self.signers)

    def index_of(self, address: bytes) -> int:
        return next(i for i, s in enumerate(self.signers) if s.address == address)

    def primary_index(self) -> int:
        live = next(r for r in self.replicas if r is not None)
        return self.index_of(live.primary)

    def replica(self, index: int) -> Replica:
        replica = self.replicas[index]
        if replica is None:
            raise LookupError(f"node {index} is crashed")
        return replica

    def start(self) -> None:
        for index, replica in enumerate(self.replicas):
            if replica is not None:
                self.apply(index, replica.start(self.now))
        self.deliver()

    # --- driver --------------------------------------------------------------------------------

    def apply(self, index: int, actions: list[Action]) -> None:
        self.actions[index].append(actions)
        changes: list[tuple[int, ValidatorSet]] = []
        for action in actions:
            match action:
                case Broadcast():
                    for target in range(self.size):
                        if target != index:
                            self.queue.append((index, target, action.message))
                case Send():
                    for target in range(self.size):
                        if self.signers[target].address == action.to and target != index:
                            self.queue.append((index, target, action.message))
                case Persist():
                    self.records[index].append(action.record)
                case DiscardRecords():
                    self.records[index] = [
                        r
                        for r in self.records[index]
                        if not record_is_obsolete(r, action.through_seq, action.before_view)
                    ]
                case SetTimer():
                    self.timers[index] = action.deadline
                case CommitBlock():
                    block = self.apps[index].commit(
                        action.seq, action.digest, action.payload, action.certificate
                    )
                    if block.validators:
                        validators = ValidatorSet.from_public_keys(block.validators)
                        changes.append((action.seq, validators))
                case RequestCatchUp():
                    self.catch_up[index].append(action)
                    if self.serve_catch_up:
                        self.fetches.append((index, action))
                case FaultDetected() | EnteredView():
                    pass  # informational; tests read them from `self.actions`
                case _:
                    assert_never(action)
        for height, validators in changes:  # reported before the next input, as required
            effective = height + self.config.min_validator_change_delay
            self.apps[index].changes.append((height, effective, validators))
            replica = self.replicas[index]
            if replica is not None:
                self.apply(index, replica.on_validator_set(height, effective, validators, self.now))

    def send(self, target: int, message: Message, source: int = -1) -> list[Action]:
        """Feed one message to one replica; rejected messages raise."""
        actions = self.replica(target).on_message(message, self.now)
        self.apply(target, actions)
        return actions

    def deliver(self, limit: int = 200_000) -> None:
        """Deliver queued messages in FIFO order until none are left."""
        for _ in range(limit):
            if not self.queue:
                if not self.fetches:
                    return
                self.fetch(*self.fetches.popleft())
                continue
            source, target, message = self.queue.popleft()
            if self.replicas[target] is None or not self.link(source, target, message):
                continue
            try:
                self.send(target, message, source)
            except MessageRejected as exc:
                self.rejections.append(exc)
        raise RuntimeError("message storm: the queue did not drain")

    def fetch(self, index: int, request: RequestCatchUp) -> None:
        """Feed `index` the requested blocks from a claimed peer that can reach it."""
        for peer in range(self.size):
            if peer == index or self.signers[peer].address not in request.peers:
                continue
            if self.replicas[peer] is None or not self.link(peer, index, _FETCH):
                continue
            for height in range(request.from_height, request.to_height + 1):
                stored = self.apps[peer].block(height)
                replica = self.replicas[index]
                if stored is None or replica is None:
                    return
                try:
                    actions = replica.on_catch_up_block(height, *stored, self.now)
                except MessageRejected as exc:
                    self.rejections.append(exc)
                    return
                self.apply(index, actions)
            return

    def advance(self, seconds: float, step: float = 0.05) -> None:
        """Let `seconds` pass, firing due timers and delivering messages."""
        end = self.now + seconds
        while self.now < end:
            self.now = min(end, self.now + step)
            for index, deadline in enumerate(self.timers):
                replica = self.replicas[index]
                if replica is not None and deadline is not None and deadline <= self.now:
                    self.timers[index] = None
                    self.apply(index, replica.on_tick(self.now))
            self.deliver()

    def submit(self, count: int = 1) -> None:
        """Clients send `count` transactions to every live node."""
        for _ in range(count):
            self.tx += 1
            for index, replica in enumerate(self.replicas):
                self.apps[index].add_transaction(self.tx, self.now)
                if replica is not None:
                    self.apply(index, replica.on_pending_transactions(self.now))
        self.deliver()

    def run_until(self, condition: Callable[[], bool], timeout: float = 60.0) -> None:
        end = self.now + timeout
        while not condition():
            if self.now >= end:
                heights = [a.height for a in self.apps]
                raise AssertionError(f"condition not met within {timeout}s; heights {heights}")
            self.advance(0.1)

    # --- faults --------------------------------------------------------------------------------

    def crash(self, index: int) -> None:
        self.replicas[index] = None
        self.apps[index].crash()
        self.timers[index] = None

    def restart(self, index: int) -> None:
        app = self.apps[index]
        schedule = ValidatorSchedule.of(self.validators)
        for _, effective, validators in app.changes:
            schedule = schedule.with_change(effective, validators)
        replica = Replica.restore(
            self.config,
            self.signers[index],
            app,
            schedule,
            height=app.height,
            digest=app.tip,
            records=list(self.records[index]),
            certificates=[c for _, _, c in app.blocks],
            scheme=self.scheme,
            now=self.now,
        )
        self.replicas[index] = replica
        self.apply(index, replica.start(self.now))
        self.deliver()

    def isolate(self, *indices: int) -> None:
        """Cut `indices` off from everyone (messages to and from them are lost)."""
        cut = set(indices)
        self.link = lambda source, target, message: source not in cut and target not in cut

    def heal(self) -> None:
        self.link = lambda source, target, message: True

    def heights(self) -> list[int]:
        return [a.height for a in self.apps]

    def genesis_digest(self) -> bytes:
        return GENESIS_DIGEST
