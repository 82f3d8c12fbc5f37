"""What the nemesis checks after every cycle, over JSON-RPC only (what an operator can see).

* **Forks.** The first block hash seen at a height (from any node) is the reference; every node's
  hash at every height it has committed is compared with it, once (`checked` remembers how far
  each node was compared). Any difference is a fork: two nodes committed different blocks at one
  height. Safety says this never happens, whatever the faults.
* **Lost acknowledgements.** Every transaction a node acknowledged as committed must, on every
  node that has reached its height, be committed in the very block named in the acknowledgement:
  that node's block at the height is the reference block (the fork check compared it), which is
  the acknowledged block and lists the transaction. Up to `SAMPLE` of them per check are also
  looked up by hash on every node (`sec_getTransaction`), which checks each node's own index. A
  node not yet at that height is checked in a later cycle; the final check waits for every node
  to get there.
* **Crashes in the logs.** Node logs are scanned (from where the last scan stopped) for Python
  tracebacks and asyncio's "Exception in callback": an exception that escaped a task or a timer
  is a bug even when the process survived it.

Each check costs a bounded number of RPC batches of at most `BATCH` calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from secnode.client.rpc import RpcClientError
from secnode.nemesis.cluster import NemesisCluster
from secnode.nemesis.load import Acknowledged

BATCH: Final = 50
SAMPLE: Final = 10
"""Acknowledgements per check also looked up by hash on every node (its transaction index)."""
TRACEBACK_START: Final = "Traceback (most recent call last)"
CHAINED: Final = "above exception"
CALLBACK: Final = "Exception in callback"


@dataclass(slots=True)
class LogScan:
    """Where each node log was last read up to."""

    offsets: dict[Path, int] = field(default_factory=dict)

    def new_tracebacks(self, path: Path) -> list[str]:
        """One line per traceback written since the last scan: the exception it ends with, and
        the asyncio callback it escaped from when the log says so."""
        start = self.offsets.get(path, 0)
        try:
            with path.open("rb") as log:
                log.seek(start)
                data = log.read()
        except OSError:
            return []
        self.offsets[path] = start + len(data)
        lines = data.decode(errors="replace").splitlines()
        found = []
        for number, line in enumerate(lines):
            if not line.startswith(TRACEBACK_START):
                continue
            before = lines[max(0, number - 2) : number]
            if any(CHAINED in previous for previous in before):
                continue  # the same failure, told again as a chained exception
            cause = next((t for t in lines[number + 1 :] if t and not t.startswith(" ")), line)
            where = next((b for b in reversed(before) if CALLBACK in b), "")
            note = f" (asyncio: {where.strip()[:120]})" if where else ""
            found.append(f"{cause.strip()[:300]}{note}")
        return found


class Checker:
    """Safety checks over a `NemesisCluster` (see the module docstring)."""

    def __init__(self, cluster: NemesisCluster) -> None:
        self.cluster = cluster
        self.reference: dict[int, str] = {}
        self.transactions: dict[int, frozenset[str]] = {}
        """Hashes of the transactions of the reference block at each height."""
        self.forked: set[tuple[int, int]] = set()
        """(node index, height) where the node's block differs from the reference."""
        self.checked = [0] * len(cluster.nodes)
        self.forks: list[str] = []
        self.lost: list[str] = []
        self.unverified: list[Acknowledged] = []
        self.verified = 0
        self.logs = LogScan()

    def check_forks(self) -> list[str]:
        """Compare every newly committed height of every answering node; new forks found."""
        found = []
        for index, node in enumerate(self.cluster.nodes):
            status = self.cluster.status(index)
            if status is None:
                continue
            top = status["height"]
            while self.checked[index] < top:
                first = self.checked[index] + 1
                heights = list(range(first, min(top, first + BATCH - 1) + 1))
                try:
                    blocks = self.cluster.call_batch(
                        index, "sec_getBlock", [{"height": h} for h in heights]
                    )
                except RpcClientError:
                    break
                for height, block in zip(heights, blocks, strict=True):
                    if block is None:
                        break
                    mine = block["hash"]
                    if height not in self.reference:
                        self.reference[height] = mine
                        self.transactions[height] = frozenset(block["tx_hashes"])
                    theirs = self.reference[height]
                    if mine != theirs:
                        self.forked.add((index, height))
                        found.append(f"height {height}: {node.name} has {mine}, another {theirs}")
                    self.checked[index] = height
                else:
                    continue
                break
        self.forks += found
        return found

    def check_acknowledged(self, new: list[Acknowledged], final: bool = False) -> list[str]:
        """Check `new` and earlier unverified acknowledgements on every node; lost ones found.
        Call after `check_forks`, whose block data this reuses. A node not yet compared up to
        an acknowledged height is asked again next time; with `final` that counts as lost."""
        pending = [*self.unverified, *new]
        missing: dict[str, list[str]] = {}
        still: set[str] = set()
        for a in pending:
            for index, node in enumerate(self.cluster.nodes):
                if self.checked[index] < a.height:
                    if final:
                        missing.setdefault(a.hash, []).append(f"{node.name} below {a.height}")
                    else:
                        still.add(a.hash)
                    continue
                absence = self._absence(index, a)
                if absence is not None:
                    missing.setdefault(a.hash, []).append(absence)
        sample = [a for a in pending if a.hash not in still][-SAMPLE:]
        self._look_up(sample, missing)
        found = [
            f"{a.kind} {a.hash} (committed at {a.height} in {a.block_hash} via node{a.node}): "
            + "; ".join(missing[a.hash])
            for a in pending
            if a.hash in missing
        ]
        self.unverified = [a for a in pending if a.hash in still and a.hash not in missing]
        self.verified += len(pending) - len(self.unverified) - len(found)
        self.lost += found
        return found

    def _absence(self, index: int, a: Acknowledged) -> str | None:
        """Why node `index` (compared up to `a.height`) lacks `a`, or None if it holds it."""
        name = self.cluster.nodes[index].name
        if (index, a.height) in self.forked:
            return f"{name} committed another block at {a.height}"
        reference = self.reference.get(a.height)
        if reference != a.block_hash:
            return f"{name} has block {reference} at {a.height}"
        if a.hash not in self.transactions.get(a.height, frozenset()):
            return f"block {reference} at {a.height} does not hold it"
        return None

    def _look_up(self, sample: list[Acknowledged], missing: dict[str, list[str]]) -> None:
        """Ask every node's transaction index for `sample` (sec_getTransaction)."""
        if not sample:
            return
        for index, node in enumerate(self.cluster.nodes):
            try:
                answers = self.cluster.call_batch(
                    index, "sec_getTransaction", [{"hash": a.hash} for a in sample]
                )
            except RpcClientError:
                continue  # a node down now: its blocks were compared above
            for a, answer in zip(sample, answers, strict=True):
                if answer is None or answer.get("status") != "committed":
                    missing.setdefault(a.hash, []).append(f"{node.name}'s index has no record")
                elif answer.get("block_hash") != a.block_hash:
                    where = answer.get("block_hash")
                    missing.setdefault(a.hash, []).append(f"{node.name}'s index says {where}")

    def new_tracebacks(self) -> list[str]:
        """Tracebacks written to any node log since the last call, as 'nodeI: cause'."""
        return [
            f"{node.name}: {cause}"
            for node in self.cluster.nodes
            for cause in self.logs.new_tracebacks(node.log_path)
        ]
