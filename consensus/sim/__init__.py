"""Deterministic discrete-event simulator for the consensus core.

N replicas (the real `consensus.Replica`) run on a seeded in-memory network with delay, loss,
duplication, reordering, partitions, crash-restart from persisted records, clock skew and
Byzantine replicas. After each scenario `checker` verifies safety (no conflicting commits, every
certificate verifies, no honest replica signs two different things), liveness after healing, and
bounded buffers. `world` runs the nodes and reports to an `Observer`; `checker` is that
observer and reads the world, never the other way round. `python -m consensus.sim.runner
--help` (also `sec sim`).

Everything is derived from the scenario seed: a failing seed reproduces exactly.
"""
