"""What a scenario must satisfy, checked while it runs and at its end.

Safety (any violation fails the scenario):
* no two honest nodes deliver different blocks at one height; each honest node's chain extends
  its own tip (no gap, no fork, strictly increasing heights);
* every delivered commit certificate verifies against the validator set for its height;
* no honest node ever signs two different messages for one (kind, view, seq), also across
  crashes and restarts (this is what the persistence contract protects);
* no two conflicting commit certificates can be assembled at one height, even by f Byzantine
  validators adding their own signatures to every honest CERTIFY signature ever sent;
* bounded buffers: every replica's buffers and logs stay within the configured caps.

Liveness: once the faults are healed (at most f faulty left), every honest node delivers at
least `LIVENESS_BLOCKS` blocks beyond the highest height any honest node had at healing time,
within `liveness_bound` simulated seconds. Scenario classes about views also require every
honest validator to end up in one view, the group's (`require_one_view`); the censorship class
requires every censored transaction to be committed by every honest node (`must_commit`).

Blame: a message an honest node sent is never rejected by another honest node as hostile
(a non-benign `MessageRejected` is what a driver penalises; an honest node must never earn it).
"""

from __future__ import annotations

from consensus.actions import CommitBlock
from consensus.errors import MessageRejected
from consensus.messages import Certify, Message
from consensus.replica import ResourceUsage
from consensus.sim.world import SimNode, World
from consensus.state import signed_key
from ledger.certificates import verify_certificate
from ledger.errors import InvalidCertificate

LIVENESS_BLOCKS = 3
MAX_REPORTED = 5


class Checker:
    """Collects violations for one scenario: the world's `Observer`, which also reads the world
    (its clock, its nodes) to judge liveness."""

    def __init__(self, world: World, validators: int) -> None:
        self.world = world
        self.validators = validators
        self.safety: list[str] = []
        self.liveness: list[str] = []
        self.decided: dict[int, bytes] = {}
        self.signatures: dict[tuple[bytes, str, int, int], bytes] = {}
        self.certifiers: dict[int, dict[bytes, set[bytes]]] = {}
        """height -> digest -> honest validators that sent CERTIFY for it."""
        self.rejections: dict[str, int] = {}
        self.counters: dict[str, int] = {}
        """What the scenario exercised (view changes, catch-up blocks, ...)."""
        self.heal_height = 0
        self.heal_time = 0.0
        self.require_one_view = False
        """All honest validators must end in one view, the group's (view-sync classes)."""
        self.must_commit: set[int] = set()
        """Transactions every honest node must commit (censorship class)."""

    def violation(self, text: str) -> None:
        if len(self.safety) < MAX_REPORTED:
            self.safety.append(f"t={self.world.queue.now:.3f} {text}")
        else:
            self.safety.append("...")

    # --- hooks ---------------------------------------------------------------------------------

    def committed(self, node: SimNode, action: CommitBlock) -> None:
        if not node.honest:
            return
        first = self.decided.setdefault(action.seq, action.digest)
        if first != action.digest:
            self.violation(
                f"node {node.index} delivered {action.digest.hex()[:12]} at height {action.seq}, "
                f"another honest node delivered {first.hex()[:12]}"
            )
        try:
            verify_certificate(
                action.certificate,
                self.world.config.chain_id,
                node.schedule().at(action.seq),
                height=action.seq,
                block_hash=action.digest,
                verify=self.world.scheme.verify,
            )
        except InvalidCertificate as exc:
            self.violation(
                f"node {node.index} delivered height {action.seq} with a bad certificate: {exc}"
            )

    def signed(self, node: SimNode, message: Message) -> None:
        if isinstance(message, Certify):
            self._certified(node, message)
        kind, view, seq = signed_key(message)
        key = (node.address, kind, view, seq)
        first = self.signatures.setdefault(key, message.signature)
        if first != message.signature:
            self.violation(
                f"honest node {node.index} signed two different {kind} messages for "
                f"view {view} seq {seq} (crashes so far: {node.crashes})"
            )

    def _certified(self, node: SimNode, message: Certify) -> None:
        by_digest = self.certifiers.setdefault(message.seq, {})
        signers = by_digest.setdefault(message.digest, set())
        if node.address in signers:
            return
        signers.add(node.address)
        validators = node.schedule().at(message.seq)
        byzantine = validators.max_faulty
        assemblable = [d for d, s in by_digest.items() if len(s) + byzantine >= validators.quorum]
        if len(assemblable) > 1:
            self.violation(
                f"two conflicting commit certificates can be assembled at height {message.seq} "
                f"(honest certificate signatures for {len(assemblable)} blocks)"
            )

    def usage(self, node: SimNode, usage: ResourceUsage) -> None:
        config = self.world.config
        bounds = {
            "buffered": config.max_future_total,
            "buffered_largest_share": config.max_future_per_peer,
            "slots": config.watermark_window + 1,
            "view_changes": (self.validators + 1) * (config.max_view_ahead + 2),
            "signed": 4 * (config.watermark_window + 2) + 2 * (config.max_view_ahead + 2),
            "catch_up_blocks": config.max_catch_up_blocks,
            "answered": self.validators * (config.watermark_window + 4),
            "peer_views": self.validators,
        }
        for name, bound in bounds.items():
            value = getattr(usage, name)
            if value > bound:
                self.violation(f"node {node.index} holds {value} {name}, bound {bound}")

    def count(self, name: str, amount: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + amount

    def rejected(
        self, node: SimNode, error: MessageRejected, source: SimNode | None = None
    ) -> None:
        name = type(error).__name__
        self.rejections[name] = self.rejections.get(name, 0) + 1
        if not error.benign:
            self.count("rejected hostile input")
            if source is not None and source.honest and node.honest:
                self.violation(
                    f"node {node.index} blamed honest node {source.index} for its message: "
                    f"{name}: {error}"
                )

    # --- liveness --------------------------------------------------------------------------------

    def honest_nodes(self) -> list[SimNode]:
        return [n for n in self.world.nodes if n.honest]

    def mark_healed(self) -> None:
        self.heal_time = self.world.queue.now
        self.heal_height = max((n.app.height for n in self.honest_nodes()), default=0)

    def live_enough(self) -> bool:
        target = self.heal_height + LIVENESS_BLOCKS
        honest = self.honest_nodes()
        if not all(n.app.height >= target for n in honest):
            return False
        if self.must_commit and not all(self.must_commit <= n.app.committed_tx for n in honest):
            return False
        return not self.require_one_view or self.one_view()

    def one_view(self) -> bool:
        """Every honest validator is up, out of view change, in the same view, the group's."""
        views = set()
        for node in self.honest_nodes():
            replica = node.replica
            if replica is None:
                return False
            if replica.address not in node.schedule().at(replica.height + 1):
                continue
            if replica.in_view_change or not replica.view_in_sync:
                return False
            views.add(replica.view)
        return len(views) <= 1

    def judge_liveness(self, bound: float) -> None:
        target = self.heal_height + LIVENESS_BLOCKS
        for node in self.honest_nodes():
            if node.app.height < target:
                view = node.replica.view if node.replica is not None else -1
                self.liveness.append(
                    f"node {node.index} at height {node.app.height} (view {view}), "
                    f"{target} expected within {bound:.0f}s after healing at "
                    f"t={self.heal_time:.1f}"
                )
            missing = sorted(self.must_commit - node.app.committed_tx)
            if missing:
                self.liveness.append(
                    f"node {node.index} never committed censored transactions {missing[:5]} "
                    f"within {bound:.0f}s after healing"
                )
        if self.require_one_view and not self.one_view() and not self.liveness:
            views = {
                n.index: (n.replica.view, n.replica.in_view_change, n.replica.group_view)
                for n in self.honest_nodes()
                if n.replica is not None
            }
            self.liveness.append(
                f"honest validators not back in one view within {bound:.0f}s after healing: "
                f"(view, in view change, group view) by node {views}"
            )
