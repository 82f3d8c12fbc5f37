"""What the nemesis checks after every cycle, over JSON-RPC only (what an operator can see).

* **Forks.** The first block hash seen at a height (from any node) is the reference; every node's
  hash at every height it has committed is compared with it, once (`checked` remembers how far
  each node was compared). Any difference is a fork: two nodes committed different blocks at one
  height. Safety says this never happens, whatever the faults.
* **Lost acknowledgements.** Every transaction a node acknowledged as committed must, on every
  node that has reached its height, be committed in the very block named in the acknowledgement
  (`sec_getTransaction`). A node not yet at that height is asked again in a later cycle; the final
  check waits for every node to get there.
* **Crashes in the logs.** Node logs are scanned (from where the last scan stopped) for Python
  tracebacks and asyncio's "Exception in callback": an exception that escaped a task or a timer
  is a bug even when the process survived it.

Each check costs a bounded number of RPC batches of at most `BATCH` calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from secnode.nemesis.cluster import NemesisCluster
from secnode.nemesis.load import Acknowledged
from secnode.rpc_client import RpcClientError

BATCH: Final = 50
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
                    theirs = self.reference.setdefault(height, mine)
                    if mine != theirs:
                        found.append(f"height {height}: {node.name} has {mine}, another {theirs}")
                    self.checked[index] = height
                else:
                    continue
                break
        self.forks += found
        return found

    def check_acknowledged(self, new: list[Acknowledged], final: bool = False) -> list[str]:
        """Check `new` and earlier unverified acknowledgements on every node; lost ones found.
        With `final`, a node below an acknowledged height counts as having lost it."""
        pending = [*self.unverified, *new]
        heights = {}
        for index in range(len(self.cluster.nodes)):
            status = self.cluster.status(index)
            heights[index] = -1 if status is None else status["height"]
        missing: dict[str, list[str]] = {}
        still: set[str] = set()
        for index, node in enumerate(self.cluster.nodes):
            ready = [a for a in pending if a.height <= heights[index]]
            for a in pending:
                if a.height > heights[index]:
                    if final:
                        missing.setdefault(a.hash, []).append(f"{node.name} below {a.height}")
                    else:
                        still.add(a.hash)
            for start in range(0, len(ready), BATCH):
                chunk = ready[start : start + BATCH]
                try:
                    answers = self.cluster.call_batch(
                        index, "sec_getTransaction", [{"hash": a.hash} for a in chunk]
                    )
                except RpcClientError:
                    still.update(a.hash for a in chunk)
                    continue
                for a, answer in zip(chunk, answers, strict=True):
                    if answer is None or answer.get("status") != "committed":
                        missing.setdefault(a.hash, []).append(f"{node.name} has no record")
                    elif answer.get("block_hash") != a.block_hash:
                        missing.setdefault(a.hash, []).append(
                            f"{node.name} has it in {answer.get('block_hash')}"
                        )
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

    def new_tracebacks(self) -> list[str]:
        """Tracebacks written to any node log since the last call, as 'nodeI: cause'."""
        return [
            f"{node.name}: {cause}"
            for node in self.cluster.nodes
            for cause in self.logs.new_tracebacks(node.log_path)
        ]
