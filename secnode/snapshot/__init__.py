"""Snapshots of a node's state at a certified height, to join a long chain without replaying it.

`format.py` is the on-disk layout (manifest, chunks, the certified proof file) and its checks;
`trace.py` follows the validator set from the genesis through the recorded change proofs and
checks a header's commit certificate against it; `create.py` writes a snapshot from a stopped
node's store; `restore.py` verifies one and writes a store that `sec node start` continues from.
The command is `secnode/cli/snapshot.py`; docs/operations.md "Snapshots and pruning".
"""
