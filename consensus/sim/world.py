"""Simulated nodes and the world they live in.

A `SimNode` is a miniature driver: it feeds the replica its inputs at the node's local (skewed)
time and carries out the returned actions exactly as the contract in `consensus.actions` says:
in order, `Persist` appended to a durable record list before anything after it, `CommitBlock`
executed on the node's `ToyChain`, validator changes reported before the next input, timers
scheduled, catch-up requests answered by peers over the same lossy network. A crash drops the
replica object and the chain's volatile state; a restart rebuilds the replica with
`Replica.restore` from the records and the stored chain. A crash may hit in the middle of an
action list, which is exactly what the persistence ordering must survive.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Protocol, assert_never

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
from consensus.crypto import MessageSigner, SignatureScheme
from consensus.errors import InvalidProposal, MessageRejected
from consensus.messages import Message, decode_message, encode_message
from consensus.records import Record, record_is_obsolete
from consensus.replica import Replica, ResourceUsage
from consensus.sim.network import EventQueue, Network
from consensus.sim.toychain import ToyChain
from ledger.certificates import CommitCertificate
from ledger.validators import ValidatorSet

Block = tuple[bytes, bytes, CommitCertificate]
CATCH_UP_BATCH = 32
REPORTED_STATS = {"full_block_early": "full blocks proposed at once"}
"""Replica counters (`Replica.stats`) a run reports, by the name it reports them under."""


class KeyedSigner(MessageSigner, Protocol):
    """A signer that also exposes its public key (to build validator sets)."""

    @property
    def public_key(self) -> bytes: ...


class Behavior(Protocol):
    """A Byzantine strategy wrapped around an otherwise honest node."""

    def outgoing(self, node: SimNode, target: SimNode, message: Message) -> list[Message | bytes]:
        """What actually goes to `target` instead of `message` (may be nothing or several)."""
        ...

    def observe(self, node: SimNode, message: Message) -> None:
        """See every message the node receives."""
        ...

    def serve(self, node: SimNode, blocks: list[Block]) -> list[Block]:
        """Blocks sent in answer to a catch-up request."""
        ...


class Observer(Protocol):
    """What the world reports while it runs; `consensus.sim.checker.Checker` implements it.

    The world only calls these hooks and never reads anything back, so the checker depends on
    the world (it inspects nodes and the clock) and the world does not depend on the checker.
    """

    def count(self, name: str, amount: int = 1) -> None:
        """Something the scenario exercised happened (`amount` times)."""
        ...

    def violation(self, text: str) -> None:
        """A safety rule broke, as `text` explains."""
        ...

    def committed(self, node: SimNode, action: CommitBlock) -> None:
        """`node` executed the block of `action`."""
        ...

    def signed(self, node: SimNode, message: Message) -> None:
        """Honest `node` sent `message`, which it signed."""
        ...

    def usage(self, node: SimNode, usage: ResourceUsage) -> None:
        """The sizes of `node`'s bounded structures, sampled."""
        ...

    def rejected(
        self, node: SimNode, error: MessageRejected, source: SimNode | None = None
    ) -> None:
        """`node` refused input (from `source`, if a node sent it) with `error`."""
        ...


class World:
    """Everything one scenario run shares."""

    def __init__(
        self,
        rng: random.Random,
        config: ReplicaConfig,
        scheme: SignatureScheme,
        genesis: ValidatorSet,
        *,
        wire: bool,
        change_delay: int,
    ) -> None:
        self.rng = rng
        self.config = config
        self.scheme = scheme
        self.genesis = ValidatorSchedule.of(genesis)
        self.wire = wire
        self.change_delay = change_delay
        self.queue = EventQueue()
        self.network = Network(self.queue, rng)
        self.nodes: list[SimNode] = []
        self.checker: Observer | None = None
        """The scenario's checker, seen only through the hooks the world calls."""
        self.checker_require_one_view = False
        """Set by a scenario: honest validators must end in one view (`Checker.one_view`)."""
        self.censored: Callable[[int], bool] | None = None
        """Set by the censorship scenario: the transactions a Byzantine primary leaves out."""

    def add_node(self, node: SimNode) -> None:
        self.nodes.append(node)

    def targets(self, address: bytes) -> list[SimNode]:
        return [n for n in self.nodes if n.address == address]


class SimNode:
    """One simulated node: replica + toy chain + durable records + local clock."""

    def __init__(
        self,
        world: World,
        index: int,
        signer: KeyedSigner,
        *,
        honest: bool = True,
        behavior: Behavior | None = None,
    ) -> None:
        self.world = world
        self.index = index
        self.signer = signer
        self.address = signer.address
        self.honest = honest
        self.behavior = behavior
        self.app = ToyChain(b"node-%d" % index)
        self.records: list[Record] = []
        self.replica: Replica | None = None
        self.offset = 0.0
        self.rate = 1.0
        self.token = 0
        self.crash_during_next = False
        self.crashes = 0
        self.inputs = 0
        self.fetch_round = 0

    # --- clock -------------------------------------------------------------------------------

    def local(self) -> float:
        return self.world.queue.now * self.rate + self.offset

    def global_time(self, local: float) -> float:
        return (local - self.offset) / self.rate

    # --- lifecycle -----------------------------------------------------------------------------

    def schedule(self) -> ValidatorSchedule:
        schedule = self.world.genesis
        for _, effective, validators in self.app.changes:
            schedule = schedule.with_change(effective, validators)
        return schedule

    def boot(self) -> None:
        world = self.world
        self.replica = Replica(
            world.config, self.signer, self.app, self.schedule(), scheme=world.scheme, now=0.0
        )
        self.execute(self.replica.start(self.local()))

    def crash(self) -> None:
        if self.replica is None:
            return
        if self.world.checker is not None:
            self.world.checker.count("crashes")
        self.report_stats()
        self.replica = None
        self.app.crash()
        self.token += 1
        self.crashes += 1

    def crash_mid_list(self) -> None:
        """Crash while carrying out the next action list (after a random prefix of it)."""
        self.crash_during_next = True

    def report_stats(self) -> None:
        """Tell the checker what the replica counted that a scenario must show it exercised
        (called when the replica object goes away: at a crash and at the end of the run)."""
        if self.replica is None or self.world.checker is None:
            return
        for stat, name in REPORTED_STATS.items():
            amount = self.replica.stats.get(stat, 0)
            if amount:
                self.world.checker.count(name, amount)

    def restart(self) -> None:
        if self.replica is not None:
            return
        world, app = self.world, self.app
        recent = [
            certificate for _, _, certificate in app.blocks[-3 * world.config.watermark_window :]
        ]
        self.replica = Replica.restore(
            world.config,
            self.signer,
            app,
            self.schedule(),
            height=app.height,
            digest=app.tip,
            records=list(self.records),
            certificates=recent,
            scheme=world.scheme,
            now=self.local(),
        )
        self.execute(self.replica.start(self.local()))

    # --- inputs --------------------------------------------------------------------------------

    def receive(self, message: Message | bytes, source: int) -> None:
        replica = self.replica
        if replica is None:
            return
        checker = self.world.checker
        if isinstance(message, bytes):
            try:
                message = decode_message(message)
            except MessageRejected as exc:
                if checker is not None:
                    checker.rejected(self, exc)
                return
        if self.behavior is not None:
            self.behavior.observe(self, message)
        try:
            actions = replica.on_message(message, self.local())
        except MessageRejected as exc:
            if checker is not None:
                checker.rejected(self, exc, self.world.nodes[source])
            return
        self.execute(actions)

    def tick(self, token: int) -> None:
        if self.replica is not None and token == self.token:
            self.execute(self.replica.on_tick(self.local()))

    def transactions_arrived(self) -> None:
        if self.replica is not None:
            self.execute(self.replica.on_pending_transactions(self.local()))

    # --- actions -------------------------------------------------------------------------------

    def execute(self, actions: list[Action]) -> None:
        cut = -1
        if self.crash_during_next and actions:
            self.crash_during_next = False
            cut = self.world.rng.randrange(len(actions))
        changes: list[tuple[int, ValidatorSet]] = []
        for position, action in enumerate(actions):
            if position == cut:
                self.crash()  # the rest of the list is lost, as in a real crash
                return
            match action:
                case Broadcast():
                    self.send_out(action.message, [n for n in self.world.nodes if n is not self])
                case Send():
                    self.send_out(action.message, self.world.targets(action.to))
                case Persist():
                    self.records.append(action.record)
                case SetTimer():
                    self.token += 1
                    self.world.queue.at(self.global_time(action.deadline), self.tick, self.token)
                case CommitBlock():
                    change = self.commit(action)
                    if change is not None:
                        changes.append((action.seq, change))
                case DiscardRecords():
                    self.records = [
                        r
                        for r in self.records
                        if not record_is_obsolete(r, action.through_seq, action.before_view)
                    ]
                case RequestCatchUp():
                    self.fetch(action)
                case EnteredView():
                    if self.world.checker is not None:
                        self.world.checker.count("views entered")
                case FaultDetected():
                    if self.world.checker is not None:
                        self.world.checker.count("faults detected")
                case _:
                    assert_never(action)
        self.inputs += 1
        if self.world.checker is not None and not self.inputs % 16 and self.replica is not None:
            self.world.checker.usage(self, self.replica.resource_usage())
        for height, validators in changes:
            if self.world.checker is not None:
                self.world.checker.count("validator changes applied")
            effective = height + self.world.change_delay
            self.app.changes.append((height, effective, validators))
            if self.replica is not None:
                self.execute(
                    self.replica.on_validator_set(height, effective, validators, self.local())
                )

    def commit(self, action: CommitBlock) -> ValidatorSet | None:
        checker = self.world.checker
        try:
            block = self.app.commit(action.seq, action.digest, action.payload, action.certificate)
        except InvalidProposal as exc:
            if checker is not None and self.honest:
                checker.violation(
                    f"node {self.index} delivered a block that breaks the chain: {exc}"
                )
            return None
        if checker is not None:
            checker.committed(self, action)
        if block.validators:
            return ValidatorSet.from_public_keys(block.validators)
        return None

    def send_out(self, message: Message, targets: list[SimNode]) -> None:
        world = self.world
        if self.honest and world.checker is not None:
            world.checker.signed(self, message)
        transmit = world.network.transmit
        if self.behavior is None:
            payload: Message | bytes = encode_message(message) if world.wire else message
            for target in targets:
                transmit(self.index, target.index, target.receive, payload, self.index)
            return
        for target in targets:
            for item in self.behavior.outgoing(self, target, message):
                if world.wire and not isinstance(item, bytes):
                    item = encode_message(item)
                transmit(self.index, target.index, target.receive, item, self.index)

    # --- catch-up ------------------------------------------------------------------------------

    def fetch(self, request: RequestCatchUp) -> None:
        """Ask one peer (rotating over the claimed ones, then everyone) for the blocks."""
        world = self.world
        claimed = [n for n in world.nodes if n.address in request.peers and n is not self]
        others = [n for n in world.nodes if n is not self]
        peers = claimed if claimed and self.fetch_round % 3 != 2 else others
        peer = peers[self.fetch_round % len(peers)]
        self.fetch_round += 1
        last = min(request.to_height, request.from_height + CATCH_UP_BATCH - 1)
        world.network.transmit(
            self.index, peer.index, peer.serve, self.index, request.from_height, last
        )

    def serve(self, requester: int, first: int, last: int) -> None:
        if self.replica is None:
            return
        blocks = [b for b in (self.app.block(h) for h in range(first, last + 1)) if b is not None]
        if self.behavior is not None:
            blocks = self.behavior.serve(self, blocks)
        target = self.world.nodes[requester]
        self.world.network.transmit(self.index, requester, target.take_blocks, first, blocks)

    def take_blocks(self, first: int, blocks: list[Block]) -> None:
        for seq, (digest, payload, certificate) in enumerate(blocks, start=first):
            replica = self.replica
            if replica is None:
                return
            try:
                actions = replica.on_catch_up_block(seq, digest, payload, certificate, self.local())
            except MessageRejected as exc:
                if self.world.checker is not None:
                    self.world.checker.rejected(self, exc)
                continue
            if self.world.checker is not None:
                self.world.checker.count("catch-up blocks accepted")
            self.execute(actions)
