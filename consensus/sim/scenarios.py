"""Scenario construction: one fault class, one validator count, one seed -> one world.

Every scenario has a fault phase (faults active), then heals at `fault_end`: partitions and
link faults end, crashed honest nodes restart. Byzantine nodes (at most f keys) stay Byzantine.
Clients submit transactions throughout; in a saturated scenario (`saturating_load`, about a
third of every class) others flood the pools so full blocks go out at once and the in-flight
window fills. The RNG is seeded from (seed, fault, n), so a scenario is the same whether it runs
alone or inside a long run.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from consensus.config import ReplicaConfig
from consensus.crypto import ED25519, SignatureScheme
from consensus.proofs import primary_of
from consensus.sim.byzantine import Censor, Equivocator, Hostile, Replayer, Silent
from consensus.sim.checker import Checker
from consensus.sim.fastcrypto import FAST, FastSigner
from consensus.sim.network import Conditions
from consensus.sim.toychain import GENESIS_DIGEST
from consensus.sim.world import Behavior, KeyedSigner, SimNode, World
from ledger.keys import PrivateKey, Signer
from ledger.validators import ValidatorSet

FAULT_CLASSES: tuple[str, ...] = (
    "baseline",
    "delay",
    "drop",
    "duplicate",
    "partition",
    "crash",
    "skew",
    "equivocate",
    "double-vote",
    "replay",
    "twins",
    "silent",
    "catch-up",
    "validators",
    "hostile",
    "mixed",
    "stale-primary",
    "lone-view",
    "behind-view-change",
    "censor",
)
"""Every fault class; `all` on the command line means these."""

LIVENESS_BOUND = 60.0
"""Simulated seconds after healing within which honest nodes must make progress."""

SATURATED_SHARE = 0.3
"""Share of scenarios (in every class, drawn per seed) whose clients offer more than the
primary can order, so full blocks go out without waiting (`_schedule_transactions`)."""

SATURATION_POOL = 4
"""Full blocks' worth of pooled transactions at which a saturating client holds back."""


def sim_config() -> ReplicaConfig:
    """Small windows and short timers so a scenario exercises checkpoints and view changes."""
    return ReplicaConfig(
        chain_id="sec-sim",
        genesis_digest=GENESIS_DIGEST,
        checkpoint_interval=4,
        watermark_window=8,
        max_in_flight=4,
        min_validator_change_delay=6,
        batch_wait=0.05,
        empty_block_interval=1.0,
        view_timeout=2.5,
        max_timeout_doublings=3,
        resend_interval=0.5,
        catch_up_retry=1.0,
        max_view_ahead=16,
        max_payload_bytes=16 * 1024,
        max_future_per_peer=64,
        max_future_total=256,
        max_catch_up_blocks=32,
    )


@dataclass
class Plan:
    """Timeline of one scenario."""

    fault_end: float
    """When faults heal (simulated seconds)."""
    description: str
    """Human-readable summary of what the scenario does."""
    healed: bool = False
    """Set at `fault_end`; fault events scheduled later do nothing."""
    on_heal: list[Callable[[], None]] = field(default_factory=list)
    """Extra healing steps (restarts)."""


@dataclass
class Setup:
    """A built scenario, ready to run."""

    world: World
    plan: Plan
    checker: Checker
    real_crypto: bool


def make_signer(label: str, real: bool) -> KeyedSigner:
    return Signer(PrivateKey.from_label(label)) if real else FastSigner(label)


def build(
    seed: int, fault: str, n: int, *, beyond_threshold: bool = False, crypto: str = "auto"
) -> Setup:
    """Construct the world for (seed, fault, n); see `FAULT_CLASSES`."""
    rng = random.Random(f"sec-sim/v1/{seed}/{fault}/{n}/{int(beyond_threshold)}")
    real = crypto == "ed25519" or (crypto == "auto" and seed % 25 == 0)
    scheme: SignatureScheme = ED25519 if real else FAST
    config = sim_config()
    spare = 1 if fault == "validators" else 0
    signers = [make_signer(f"sim/{seed}/{i}", real) for i in range(n + spare)]
    validators = ValidatorSet.from_public_keys([s.public_key for s in signers[:n]])
    wire = fault == "hostile" or seed % 10 == 1
    world = World(
        rng, config, scheme, validators, wire=wire, change_delay=config.min_validator_change_delay
    )
    checker = Checker(world, n + spare)
    world.checker = checker
    f = (n - 1) // 3
    primary0 = primary_of(validators, 0)
    order = list(range(n))
    rng.shuffle(order)
    if rng.random() < 0.5:  # often make the first primary faulty
        first = next(i for i in range(n) if signers[i].address == primary0)
        order.remove(first)
        order.insert(0, first)
    plan = Plan(fault_end=rng.uniform(3.0, 6.0), description=fault)
    builder = _BUILDERS.get(fault)
    if builder is None:
        raise ValueError(f"unknown fault class {fault!r}")
    if beyond_threshold:
        _twins_beyond_threshold(world, plan, signers[:n], order, f + 1)
    else:
        builder(world, plan, signers, order[:f], n)
    _schedule_transactions(world, plan, checker, saturating_load(seed, fault, n))
    checker.require_one_view = world.checker_require_one_view
    return Setup(world, plan, checker, real)


def saturating_load(seed: int, fault: str, n: int) -> random.Random | None:
    """The random source of a saturated scenario's extra clients, or None if (seed, fault, n)
    is not one (`SATURATED_SHARE` of them are, independently of everything else drawn)."""
    load = random.Random(f"sec-sim/v1/{seed}/{fault}/{n}/load")
    return load if load.random() < SATURATED_SHARE else None


# --- builders ---------------------------------------------------------------------------------

Builder = Callable[[World, Plan, list[KeyedSigner], list[int], int], None]


def _honest(
    world: World,
    signers: list[KeyedSigner],
    faulty: dict[int, Behavior],
    twins: tuple[int, ...] = (),
) -> None:
    """Add one node per signer; those in `faulty` or `twins` are not honest."""
    for index, signer in enumerate(signers):
        behavior = faulty.get(index)
        honest = behavior is None and index not in twins
        world.add_node(SimNode(world, index, signer, honest=honest, behavior=behavior))


def _later(world: World, plan: Plan, time: float, action: Callable[[], None]) -> None:
    def guarded() -> None:
        if not plan.healed:
            action()

    world.queue.at(time, guarded)


def _baseline(world: World, plan: Plan, signers: list[KeyedSigner], bad: list[int], n: int) -> None:
    plan.fault_end = 2.0
    _honest(world, signers, {})


def _links(conditions: Conditions) -> Builder:
    def build(world: World, plan: Plan, signers: list[KeyedSigner], bad: list[int], n: int) -> None:
        world.network.conditions = conditions
        _honest(world, signers, {})

    return build


def _delay(world: World, plan: Plan, signers: list[KeyedSigner], bad: list[int], n: int) -> None:
    rng = world.rng
    _links(
        Conditions(
            delay_max=rng.uniform(0.05, 0.3), tail_probability=rng.uniform(0.05, 0.3), tail_max=1.0
        )
    )(world, plan, signers, bad, n)


def _drop(world: World, plan: Plan, signers: list[KeyedSigner], bad: list[int], n: int) -> None:
    _links(Conditions(drop=world.rng.uniform(0.03, 0.3)))(world, plan, signers, bad, n)


def _duplicate(
    world: World, plan: Plan, signers: list[KeyedSigner], bad: list[int], n: int
) -> None:
    rng = world.rng
    _links(Conditions(duplicate=rng.uniform(0.1, 0.5), tail_probability=0.1))(
        world, plan, signers, bad, n
    )


def _partition(
    world: World, plan: Plan, signers: list[KeyedSigner], bad: list[int], n: int
) -> None:
    rng = world.rng
    plan.fault_end = rng.uniform(4.0, 8.0)
    _honest(world, signers, {})
    time = rng.uniform(0.2, 1.0)
    while time < plan.fault_end:
        nodes = list(range(len(world.nodes)))
        rng.shuffle(nodes)
        cut = rng.randint(1, len(nodes) - 1)
        _later(
            world,
            plan,
            time,
            functools.partial(world.network.partition, [nodes[:cut], nodes[cut:]]),
        )
        time += rng.uniform(0.5, 3.0)
        if rng.random() < 0.5:
            _later(world, plan, time, lambda: world.network.partition([]))
            time += rng.uniform(0.2, 1.5)


def _crash(world: World, plan: Plan, signers: list[KeyedSigner], bad: list[int], n: int) -> None:
    rng = world.rng
    plan.fault_end = rng.uniform(4.0, 8.0)
    _honest(world, signers, {})
    for _ in range(rng.randint(2, 6)):
        node = rng.choice(world.nodes)
        start = rng.uniform(0.3, plan.fault_end - 0.5)
        if rng.random() < 0.5:
            _later(world, plan, start, node.crash_mid_list)
        else:
            _later(world, plan, start, node.crash)
        _later(world, plan, start + rng.uniform(0.2, 3.0), node.restart)
    plan.on_heal.extend(node.restart for node in world.nodes)


def _skew(world: World, plan: Plan, signers: list[KeyedSigner], bad: list[int], n: int) -> None:
    rng = world.rng
    _honest(world, signers, {})
    for node in world.nodes:
        node.offset = rng.uniform(-0.5, 0.5)
        node.rate = rng.uniform(0.97, 1.03)
    world.network.conditions = Conditions(delay_max=rng.uniform(0.02, 0.1))


def _byzantine(make: Callable[[random.Random], Behavior]) -> Builder:
    def build(world: World, plan: Plan, signers: list[KeyedSigner], bad: list[int], n: int) -> None:
        _honest(world, signers, {index: make(world.rng) for index in bad})
        world.network.conditions = Conditions(delay_max=world.rng.uniform(0.01, 0.08))

    return build


def _twins(world: World, plan: Plan, signers: list[KeyedSigner], bad: list[int], n: int) -> None:
    rng = world.rng
    plan.fault_end = rng.uniform(4.0, 7.0)
    _honest(world, signers, {}, twins=tuple(bad))
    for index in bad:
        world.add_node(SimNode(world, len(world.nodes), signers[index], honest=False))
    time = rng.uniform(0.2, 1.0)
    while time < plan.fault_end:
        nodes = list(range(len(world.nodes)))
        rng.shuffle(nodes)
        cut = rng.randint(1, len(nodes) - 1)
        _later(
            world,
            plan,
            time,
            functools.partial(world.network.partition, [nodes[:cut], nodes[cut:]]),
        )
        time += rng.uniform(0.5, 2.5)


def _twins_beyond_threshold(
    world: World, plan: Plan, signers: list[KeyedSigner], order: list[int], keys: int
) -> None:
    """Negative control: f+1 twinned keys bridge two groups of honest replicas."""
    plan.fault_end = 6.0
    plan.description = f"twins with {keys} keys (beyond f)"
    bad = order[:keys]
    _honest(world, signers, {}, twins=tuple(bad))
    twins = [
        SimNode(world, len(world.nodes) + i, signers[index], honest=False)
        for i, index in enumerate(bad)
    ]
    for twin in twins:
        world.add_node(twin)
    honest = [i for i in range(len(signers)) if i not in bad]
    half = len(honest) // 2
    group_a = honest[:half] + bad
    group_b = honest[half:] + [t.index for t in twins]
    world.network.partition([group_a, group_b])


def _silent(world: World, plan: Plan, signers: list[KeyedSigner], bad: list[int], n: int) -> None:
    _honest(world, signers, {index: Silent() for index in bad})


def _catch_up(world: World, plan: Plan, signers: list[KeyedSigner], bad: list[int], n: int) -> None:
    rng = world.rng
    plan.fault_end = rng.uniform(8.0, 11.0)
    _honest(world, signers, {index: Hostile(rng) for index in bad})
    laggard = rng.choice([node for node in world.nodes if node.honest])
    others = [node.index for node in world.nodes if node is not laggard]
    start = rng.uniform(0.3, 1.5)
    if rng.random() < 0.5:
        _later(world, plan, start, lambda: world.network.partition([others, [laggard.index]]))
    else:
        _later(world, plan, start, laggard.crash)
        plan.on_heal.append(laggard.restart)


def _validators(
    world: World, plan: Plan, signers: list[KeyedSigner], bad: list[int], n: int
) -> None:
    rng = world.rng
    plan.fault_end = rng.uniform(5.0, 8.0)
    _honest(world, signers, {})
    members = signers[:n]
    leaving = rng.randrange(n)
    new_keys = (
        *(s.public_key for i, s in enumerate(members) if i != leaving),
        signers[n].public_key,
    )
    height = rng.randint(2, 8)
    for node in world.nodes:
        node.app.planned_changes[height] = new_keys
    world.network.conditions = Conditions(drop=rng.uniform(0.0, 0.05))
    plan.description = f"validators: replace member {leaving} by node {n} at height {height}"


def _mixed(world: World, plan: Plan, signers: list[KeyedSigner], bad: list[int], n: int) -> None:
    rng = world.rng
    kinds: list[Callable[[random.Random], Behavior]] = [
        lambda r: Equivocator(r, double_vote=True),
        Replayer,
        Hostile,
        lambda r: Silent(),
    ]
    _honest(world, signers, {index: rng.choice(kinds)(rng) for index in bad})
    world.network.conditions = Conditions(
        delay_max=rng.uniform(0.01, 0.15),
        tail_probability=rng.uniform(0.0, 0.2),
        drop=rng.uniform(0.0, 0.1),
        duplicate=rng.uniform(0.0, 0.2),
    )
    honest = [node for node in world.nodes if node.honest]
    for _ in range(rng.randint(0, 3)):
        node = rng.choice(honest)
        start = rng.uniform(0.3, plan.fault_end - 0.3)
        _later(world, plan, start, node.crash)
        _later(world, plan, start + rng.uniform(0.2, 2.0), node.restart)
    plan.on_heal.extend(node.restart for node in honest)
    for node in world.nodes:
        node.offset = rng.uniform(-0.2, 0.2)


def _primary_index(world: World, signers: list[KeyedSigner], n: int) -> int:
    validators = ValidatorSet.from_public_keys([s.public_key for s in signers[:n]])
    first = primary_of(validators, 0)
    return next(i for i in range(n) if signers[i].address == first)


def _stale_primary(
    world: World, plan: Plan, signers: list[KeyedSigner], bad: list[int], n: int
) -> None:
    """The primary of view 0 crashes; the others change view and go on; it restarts into view
    0 (its records say so) and must learn their view, not drag them back or sit apart."""
    rng = world.rng
    plan.fault_end = rng.uniform(6.0, 9.0)
    _honest(world, signers, {})
    world.checker_require_one_view = True
    primary = world.nodes[_primary_index(world, signers, n)]
    crash = primary.crash_mid_list if rng.random() < 0.5 else primary.crash
    _later(world, plan, rng.uniform(0.5, 1.5), crash)
    if rng.random() < 0.5:  # comes back before the healing, cut off: it stays in view 0
        back = rng.uniform(plan.fault_end - 2.0, plan.fault_end - 0.5)
        others = [node.index for node in world.nodes if node is not primary]
        _later(world, plan, back - 0.01, lambda: world.network.partition([others, [primary.index]]))
        _later(world, plan, back, primary.restart)
    plan.on_heal.append(primary.restart)
    world.network.conditions = Conditions(delay_max=rng.uniform(0.01, 0.1))
    plan.description = f"stale-primary: node {primary.index}, primary of view 0, restarts late"


def _lone_view(
    world: World, plan: Plan, signers: list[KeyedSigner], bad: list[int], n: int
) -> None:
    """One validator is cut off long enough to time out alone into a higher view; after the
    healing it must be back in the group's view (it may restart while alone)."""
    rng = world.rng
    plan.fault_end = rng.uniform(6.0, 10.0)
    _honest(world, signers, {})
    world.checker_require_one_view = True
    loner = rng.choice(world.nodes)
    others = [node.index for node in world.nodes if node is not loner]
    _later(
        world,
        plan,
        rng.uniform(0.3, 1.0),
        lambda: world.network.partition([others, [loner.index]]),
    )
    if rng.random() < 0.4:
        restart = rng.uniform(4.0, plan.fault_end - 0.3)
        _later(world, plan, restart - 0.2, loner.crash)
        _later(world, plan, restart, loner.restart)
    plan.on_heal.append(loner.restart)
    world.network.conditions = Conditions(delay_max=rng.uniform(0.01, 0.1))
    plan.description = f"lone-view: node {loner.index} cut off, alone in a higher view"


def _behind_view_change(
    world: World, plan: Plan, signers: list[KeyedSigner], bad: list[int], n: int
) -> None:
    """A validator is down while the others run far past its window; it restarts, fetches the
    blocks, and must take part in a view change at once (the primary is cut off): its view
    change, from an old checkpoint, must not be refused as hostile."""
    rng = world.rng
    plan.fault_end = rng.uniform(13.0, 16.0)
    _honest(world, signers, {})
    world.checker_require_one_view = True
    primary = world.nodes[_primary_index(world, signers, n)]
    laggard = rng.choice([node for node in world.nodes if node is not primary])
    _later(world, plan, rng.uniform(0.3, 0.8), laggard.crash)
    back = plan.fault_end - rng.uniform(4.0, 6.0)
    others = [node.index for node in world.nodes if node is not primary]
    _later(world, plan, back, laggard.restart)
    _later(world, plan, back, lambda: world.network.partition([others, [primary.index]]))
    plan.on_heal.append(laggard.restart)
    plan.description = (
        f"behind-view-change: node {laggard.index} restarts far behind, primary "
        f"{primary.index} cut off"
    )


def _censor(world: World, plan: Plan, signers: list[KeyedSigner], bad: list[int], n: int) -> None:
    """The primary of view 0 follows the protocol but never proposes one client's transactions
    (ids divisible by 3). The backups' request timer must vote it out, so those commit."""
    rng = world.rng
    censor = _primary_index(world, signers, n)
    _honest(world, signers, {censor: Censor()})
    world.nodes[censor].app.censor = _censored
    world.censored = _censored
    world.network.conditions = Conditions(delay_max=rng.uniform(0.01, 0.1))
    plan.description = f"censor: primary {censor} leaves out every third transaction"


def _censored(tx: int) -> bool:
    return tx % 3 == 0


_BUILDERS: dict[str, Builder] = {
    "baseline": _baseline,
    "delay": _delay,
    "drop": _drop,
    "duplicate": _duplicate,
    "partition": _partition,
    "crash": _crash,
    "skew": _skew,
    "equivocate": _byzantine(lambda r: Equivocator(r, double_vote=False)),
    "double-vote": _byzantine(lambda r: Equivocator(r, double_vote=True)),
    "replay": _byzantine(Replayer),
    "twins": _twins,
    "silent": _silent,
    "catch-up": _catch_up,
    "validators": _validators,
    "hostile": _byzantine(Hostile),
    "mixed": _mixed,
    "stale-primary": _stale_primary,
    "lone-view": _lone_view,
    "behind-view-change": _behind_view_change,
    "censor": _censor,
}


def _schedule_transactions(
    world: World, plan: Plan, checker: Checker, load: random.Random | None
) -> None:
    """Clients submit a transaction every ~0.7 s (exponential gaps), to every live node.

    With `load` (a saturated scenario) other clients also send bursts of up to two full blocks
    every ~0.1 s, holding back while a live node's pool has `SATURATION_POOL` full blocks
    waiting (as a full mempool would refuse them): primaries then find full blocks ready, the
    early-proposal path of `normal.try_propose`, and fill the in-flight window. Their draws come
    from `load`, so the rest of the scenario's randomness is the same as without it."""
    rng = world.rng
    counter = [0]

    def add() -> None:
        counter[0] += 1
        censored = world.censored
        if censored is not None and censored(counter[0]) and not plan.healed:
            checker.must_commit.add(counter[0])
        for node in world.nodes:
            if node.replica is not None:
                node.app.add_transaction(counter[0], node.local())
                node.transactions_arrived()

    def submit() -> None:
        add()
        world.queue.at(world.queue.now + rng.expovariate(0.8), submit)

    world.queue.at(rng.uniform(0.0, 0.3), submit)
    if load is None:
        return
    block = world.nodes[0].app.max_batch
    checker.count("saturated scenarios")

    def flood() -> None:
        pools = [len(node.app.mempool) for node in world.nodes if node.replica is not None]
        if pools and max(pools) < SATURATION_POOL * block:
            for _ in range(load.randint(1, 2 * block)):
                add()
        world.queue.at(world.queue.now + load.expovariate(10.0), flood)

    world.queue.at(load.uniform(0.0, 0.3), flood)
