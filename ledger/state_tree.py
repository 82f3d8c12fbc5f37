"""The state root: an authenticated key -> value map with membership and non-membership proofs.

Hashing rules (an independent verifier needs only these; docs/state_tree.md says the same):

* ``H`` is SHA-256; every hash is 32 bytes. Bits of a 32-byte string are numbered 0..255 from
  the most significant bit of its first byte.
* A key's *path* is ``H(key)``; an entry stores ``value_hash = H(value)``.
* The tree is the binary trie over paths, compressed so that every subtree is one of:

  - *empty* (no entry has this prefix): its hash is 32 zero bytes;
  - a *leaf* (exactly one entry has this prefix): ``H(0x00 || path || value_hash)``; the leaf
    sits at the highest position whose prefix it alone holds, and its hash does not depend on
    that position;
  - an *internal node* (two or more entries): ``H(0x01 || left || right)``, where the left child
    holds the entries whose next path bit is 0 and the right child those whose bit is 1. A
    child may be empty (entries that agree on a bit make a chain of such nodes).

* The root is the hash of the whole tree: 32 zero bytes when empty, the leaf hash when there is
  one entry. It is a pure function of the set of (key, value) pairs, whatever the order of
  updates.

A `StateProof` for ``key`` lists ``siblings`` *from the root downward*: ``siblings[i]`` is the
hash of the child at depth ``i + 1`` on the other side of bit ``i`` of the key's path. The walk
along the key's path ends at depth ``d = len(siblings)`` (at most 256) in one of three ways:

* the key's own leaf (membership): ``value_hash`` is ``H(value)``, ``other_leaf`` is None;
* an empty subtree (non-membership): ``value_hash`` and ``other_leaf`` are None;
* another key's leaf (non-membership): ``other_leaf`` gives its path and value hash; its path
  differs from the key's but agrees on the first ``d`` bits.

To verify, start from the hash of the terminal (leaf hash, or 32 zero bytes) and for
``i = d - 1`` down to ``0`` combine with ``siblings[i]`` as ``H(0x01 || sibling || node)`` if
bit ``i`` of the path is 1, else ``H(0x01 || node || sibling)``; the result must equal the root.

Costs: `StateTree.set` and `StateTree.delete` find where one path ends (a binary search over
the depth, 9 lookups) and mark the branches above it stale, O(depth); `StateTree.root` rehashes
the stale branches only, deepest first, so a block that changes k keys costs O(k * depth)
hashes however large the state.

Storage: a tree's nodes are a base (a dict built in memory, or the nodes persisted in the
block store, `ledger.tree_store.StoredNodes`, read on demand) plus its own changes since.
`unsaved_nodes` lists what a store must write to hold this tree, `rebase` then drops them
from memory (the store does so every few blocks, journaling the changed keys in between); a
node therefore opens a 1M-key tree by reading its root, not by folding.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from ledger.errors import InvalidProof
from ledger.hashing import HASH_SIZE

PATH_BITS: Final = 256
EMPTY_HASH: Final = bytes(HASH_SIZE)
_LEAF_PREFIX: Final = b"\x00"
_NODE_PREFIX: Final = b"\x01"
_WIRE_FIELDS: Final = frozenset({"key", "value_hash", "siblings", "other_leaf"})

# Representation. Nodes live in dicts `position -> bytes`. Positions number nodes heap-style:
# the root is 1 and the children of p are 2p (bit 0) and 2p + 1 (bit 1), so the node at depth
# d on path P is (1 << d) | (P >> (256 - d)), its ancestors are p >> 1, p >> 2, ..., 1, and a
# deeper node always has a larger number. A value is a leaf (96 bytes: path || value hash ||
# leaf hash; path first so that sorting leaves sorts paths) or a branch *record* (64 bytes:
# the hashes of its left and right subtrees, as in Jellyfish); an empty subtree has no node.
# * Records make a rehash read one entry per stale branch, not its two children: a random
#   access costs ~1 us on a 1M-key tree (cache misses), more than the SHA-256.
# * A tree is a large `_base` dict, never mutated once built and shared by copies, plus its
#   own small `_delta` of changed positions (`_REMOVED` for a deleted node); `copy()` costs
#   O(delta), and the delta is folded into a new base once it outgrows 1/16 of it.
# * Or the base is the store's nodes, which advance with each committed block: the store
#   folds the committed tree's delta (`unsaved_nodes`, `rebase`), and a tree copied from it
#   before stays right because its own delta covers every position that block wrote.
# * Dicts of ints and bytes are invisible to the cyclic GC. Node objects or tuples were
#   measured worse: 2-3 s per full collection at 1M keys, or GC taking half the update time.
_REMOVED: Final = b""
_LEAF_SIZE: Final = 3 * HASH_SIZE
_RECORD_SIZE: Final = 2 * HASH_SIZE
_PATH: Final = slice(0, HASH_SIZE)
_VALUE_HASH: Final = slice(HASH_SIZE, 2 * HASH_SIZE)
_LEAF_HASH: Final = slice(2 * HASH_SIZE, 3 * HASH_SIZE)
_LEFT_HASH: Final = slice(0, HASH_SIZE)
_RIGHT_HASH: Final = slice(HASH_SIZE, 2 * HASH_SIZE)
_NEW_RECORD: Final = EMPTY_HASH + EMPTY_HASH
_MIN_REBASE: Final = 1 << 16


class NodeSource(Protocol):
    """Where a tree's base nodes come from: a dict, or the store (`tree_store.StoredNodes`)."""

    def get(self, position: int, /) -> bytes | None:
        """The node at `position`, None if there is none."""
        ...

    def __getitem__(self, position: int, /) -> bytes:
        """The node at `position`, which must exist."""
        ...


def key_path(key: bytes) -> bytes:
    """The 256-bit path of `key` in the tree: ``SHA-256(key)``."""
    return hashlib.sha256(key).digest()


def state_leaf_hash(path: bytes, value_hash: bytes) -> bytes:
    """``SHA-256(0x00 || path || value_hash)``: the hash of a one-entry subtree."""
    return hashlib.sha256(_LEAF_PREFIX + path + value_hash).digest()


def state_node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``: the hash of a subtree holding two or more entries."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _make_leaf(path: bytes, value: bytes) -> bytes:
    value_hash = hashlib.sha256(value).digest()
    return path + value_hash + hashlib.sha256(_LEAF_PREFIX + path + value_hash).digest()


def _position(path: int, depth: int) -> int:
    """The position of the node at `depth` on `path`."""
    return (1 << depth) | (path >> (PATH_BITS - depth))


def _bit(path: int, depth: int) -> int:
    """Bit `depth` of `path` (0 is the most significant): the side the path takes there."""
    return (path >> (PATH_BITS - 1 - depth)) & 1


def _shared_bits(path_a: int, path_b: int) -> int:
    """Number of leading bits two paths share (256 if equal)."""
    return PATH_BITS - (path_a ^ path_b).bit_length()


def _build(leaves: list[bytes]) -> dict[int, bytes]:
    """The canonical tree over `leaves` (sorted, distinct paths), hashed bottom-up.

    One pass over the leaves with a stack of finished subtrees (hash, depth of its top branch
    or 0 for a leaf, a path inside it). Leaves i and i+1 meet at the branch whose depth is the
    number of bits their paths share; leaf i hangs one level below the deeper of its two
    meeting branches. Meeting depths strictly increase up the stack, so a shallower one first
    merges every deeper pending pair.
    """
    nodes: dict[int, bytes] = {}
    if not leaves:
        return nodes
    paths = [int.from_bytes(leaf[_PATH], "big") for leaf in leaves]
    meets = [-1, *(_shared_bits(a, b) for a, b in itertools.pairwise(paths)), -1]
    hashes: list[bytes] = []
    tops: list[int] = []
    samples: list[int] = []
    pending: list[int] = []  # pending[j]: depth of the branch joining stack entries j and j + 1
    for index, (leaf, path) in enumerate(zip(leaves, paths, strict=True)):
        meet = meets[index + 1]
        depth = max(meets[index], meet) + 1
        nodes[(1 << depth) | (path >> (PATH_BITS - depth))] = leaf  # _position, inlined
        hashes.append(leaf[_LEAF_HASH])
        tops.append(0)
        samples.append(path)
        while pending and pending[-1] > meet:
            depth = pending.pop()
            right_hash, right_top, right_sample = hashes.pop(), tops.pop(), samples.pop()
            if right_top > depth + 1:  # only a branch deeper than a child needs a chain
                right_hash = _lift(nodes, right_hash, right_top, right_sample, depth)
            left_hash, sample = hashes[-1], samples[-1]
            if tops[-1] > depth + 1:
                left_hash = _lift(nodes, left_hash, tops[-1], sample, depth)
            record = left_hash + right_hash
            nodes[(1 << depth) | (sample >> (PATH_BITS - depth))] = record
            hashes[-1] = hashlib.sha256(_NODE_PREFIX + record).digest()
            tops[-1] = depth
        pending.append(meet)
    _lift(nodes, hashes[0], tops[0], samples[0], -1)
    return nodes


def _lift(nodes: dict[int, bytes], node_hash: bytes, top: int, sample: int, parent: int) -> bytes:
    """Store the chain of branches (one empty child each) that joins a subtree whose top
    branch is at depth `top` to a branch at depth `parent`; return the chain's top hash.
    `sample` is any path in the subtree; a leaf (`top` 0) needs no chain."""
    for depth in range(top - 1, parent, -1):
        if _bit(sample, depth):
            record = EMPTY_HASH + node_hash
        else:
            record = node_hash + EMPTY_HASH
        nodes[_position(sample, depth)] = record
        node_hash = hashlib.sha256(_NODE_PREFIX + record).digest()
    return node_hash


class StateTree:
    """The authenticated map behind the state root; stores value hashes, not values.

    Invariants: the live nodes (`_delta` over `_base`) are exactly those of the canonical tree
    of the current entries (see the module docstring), so `root()` depends only on the set of
    entries; a dict `_base` is never mutated (a stored one changes only by the commit of a tree
    this one descends from, see `unsaved_nodes`). A branch record is current unless the branch
    is in `_stale`, which also holds all its ancestors; a record half is current unless that
    child is in `_stale` or in `_changed` (positions that became a leaf or empty since the last
    `root()`). `_root_hash` caches `root()`.
    """

    __slots__ = ("_base", "_changed", "_delta", "_root_hash", "_size", "_stale")

    def __init__(self) -> None:
        self._base: NodeSource = {}
        self._delta: dict[int, bytes] = {}
        self._stale: set[int] = set()
        self._changed: set[int] = set()
        self._root_hash: bytes | None = None
        self._size = 0

    @classmethod
    def from_items(cls, items: Iterable[tuple[bytes, bytes]]) -> StateTree:
        """A tree holding `items` (key, value); a repeated key keeps its last value.

        Builds the canonical tree directly from the sorted leaves, hashing each branch once.
        """
        leaves = [_make_leaf(key_path(key), value) for key, value in dict(items).items()]
        leaves.sort()
        tree = cls()
        tree._base = _build(leaves)
        tree._size = len(leaves)
        return tree

    @classmethod
    def over(cls, nodes: NodeSource, entries: int) -> StateTree:
        """The tree whose nodes are `nodes` (e.g. persisted ones), holding `entries` entries;
        nothing is read until asked for."""
        tree = cls()
        tree._base = nodes
        tree._size = entries
        return tree

    def unsaved_nodes(self, stored: NodeSource) -> list[tuple[int, bytes | None]]:
        """What `stored` must write (node, or None to delete) to hold exactly this tree.

        `stored` must hold this tree's base, or the base plus changes that this tree's own
        changes cover (an ancestor committed since this tree was copied from it): then this
        tree's changes are all it lacks. A tree over another base writes all its nodes, which
        is right for a store holding no nodes yet.
        """
        self.root()
        changes = [(position, stored_node or None) for position, stored_node in self._delta.items()]
        if self._base is stored:
            return changes
        base = self._base
        if not isinstance(base, dict):
            raise TypeError("a tree over stored nodes can only be saved to that store")
        delta = self._delta
        return [(p, node) for p, node in base.items() if p not in delta] + changes

    def reads_from(self, stored: NodeSource) -> bool:
        """Whether this tree's base is `stored` (its unsaved nodes are then its changes only)."""
        return self._base is stored

    @property
    def unsaved_size(self) -> int:
        """Positions changed since the base was built or saved (what `copy` costs)."""
        return len(self._delta)

    def rebase(self, stored: NodeSource) -> None:
        """Read this tree from `stored`, which now holds it (after `unsaved_nodes` were
        written): the in-memory changes are dropped. Copies made earlier are unaffected."""
        self.root()
        self._base = stored
        self._delta = {}

    def copy(self) -> StateTree:
        """An independent tree with the same entries; O(changes since the base was folded)."""
        twin = StateTree()
        twin._base = self._base
        twin._delta = self._delta.copy()
        twin._stale = self._stale.copy()
        twin._changed = self._changed.copy()
        twin._root_hash = self._root_hash
        twin._size = self._size
        return twin

    def __len__(self) -> int:
        return self._size

    def get_value_hash(self, key: bytes) -> bytes | None:
        """``SHA-256(value)`` stored for `key`, or None if the key is absent."""
        path = key_path(key)
        _, found = self._find_end(int.from_bytes(path, "big"))
        if found is not None and found[_PATH] == path:
            return found[_VALUE_HASH]
        return None

    def set(self, key: bytes, value: bytes) -> None:
        """Map `key` to `value`: O(depth) work, the root is rehashed on the next `root()`."""
        path = key_path(key)
        leaf = _make_leaf(path, value)
        path_int = int.from_bytes(path, "big")
        position, found = self._find_end(path_int)
        if found == leaf:
            return
        if found is None or found[_PATH] == path:
            if found is None:
                self._size += 1
            self._delta[position] = leaf
            self._changed.add(position)
        else:
            self._split(position, found, leaf, path_int)
            self._size += 1
        self._mark_stale(position >> 1)

    def delete(self, key: bytes) -> bool:
        """Remove `key`; return whether it was present (deleting an absent key changes nothing).

        A sibling left alone in its subtree floats up to the highest position it alone holds.
        """
        path = key_path(key)
        position, found = self._find_end(int.from_bytes(path, "big"))
        if found is None or found[_PATH] != path:
            return False
        delta, stale = self._delta, self._stale
        delta[position] = _REMOVED
        self._size -= 1
        floating: bytes | None = None
        while position > 1:
            sibling = self._get(position ^ 1)
            if floating is None:
                if sibling is None or len(sibling) != _LEAF_SIZE:
                    break  # the parent still holds two or more entries
                delta[position ^ 1] = _REMOVED
                floating = sibling
            elif sibling is None:
                delta[position] = _REMOVED  # a branch above the lone leaf, which replaces it
            else:
                break
            position >>= 1
            stale.discard(position)  # this branch is replaced by the floating leaf
        if floating is not None:
            delta[position] = floating
        self._changed.add(position)
        self._mark_stale(position >> 1)
        return True

    def root(self) -> bytes:
        """The 32-byte state root; rehashes only the branches changed since the last call."""
        if self._root_hash is not None:
            return self._root_hash
        delta, base, changed = self._delta, self._base, self._changed
        fresh: dict[int, bytes] = {}  # new hashes of the stale branches
        for position in sorted(self._stale, reverse=True):  # deeper positions are larger
            record = delta.get(position) or base[position]  # self._record, inlined
            left, right = 2 * position, 2 * position + 1
            left_hash = fresh.get(left)
            if left_hash is None:
                left_hash = self._hash_at(left) if left in changed else record[_LEFT_HASH]
            right_hash = fresh.get(right)
            if right_hash is None:
                right_hash = self._hash_at(right) if right in changed else record[_RIGHT_HASH]
            record = left_hash + right_hash
            delta[position] = record
            fresh[position] = hashlib.sha256(_NODE_PREFIX + record).digest()
        self._stale.clear()
        changed.clear()
        root_hash = fresh.get(1) or self._hash_at(1)
        self._root_hash = root_hash
        base = self._base  # a stored base is folded by the store's commit, `rebase`
        if isinstance(base, dict) and len(delta) > max(_MIN_REBASE, len(base) // 16):
            self._fold_delta(base)
        return root_hash

    def prove(self, key: bytes) -> StateProof:
        """A membership proof if `key` is present, else a non-membership proof."""
        self.root()
        path = key_path(key)
        path_int = int.from_bytes(path, "big")
        position, found = self._find_end(path_int)
        depth = position.bit_length() - 1
        siblings = tuple(
            self._record(position >> (depth - level))[
                _LEFT_HASH if _bit(path_int, level) else _RIGHT_HASH
            ]
            for level in range(depth)
        )
        if found is None:
            return StateProof(key, None, siblings, None)
        if found[_PATH] == path:
            return StateProof(key, found[_VALUE_HASH], siblings, None)
        return StateProof(key, None, siblings, OtherLeaf(found[_PATH], found[_VALUE_HASH]))

    def _get(self, position: int) -> bytes | None:
        """The live node at `position` (None if there is none)."""
        stored = self._delta.get(position)
        if stored is None:
            return self._base.get(position)
        return stored or None  # _REMOVED

    def _record(self, position: int) -> bytes:
        """The record of the branch at `position`, which must exist."""
        return self._delta.get(position) or self._base[position]

    def _hash_at(self, position: int) -> bytes:
        """The hash of the subtree at `position`, whose record (if a branch) is current."""
        stored = self._get(position)
        if stored is None:
            return EMPTY_HASH
        if len(stored) == _LEAF_SIZE:
            return stored[_LEAF_HASH]
        return hashlib.sha256(_NODE_PREFIX + stored).digest()

    def _find_end(self, path: int) -> tuple[int, bytes | None]:
        """Where the walk from the root along `path` ends: the position of the first node that
        is not a branch, and the leaf there (None if the subtree is empty).

        The walk passes branches down to that depth and nothing lives below it, so "a branch
        is at depth d" is monotone in d: binary search (9 probes) instead of walking. Over
        stored nodes, though, a probe below the leaves is a wasted store read, while the
        records on the path are read by `root()` next anyway (and the top ones are cached):
        there, walk down.
        """
        delta, base = self._delta, self._base
        if not isinstance(base, dict):
            position = 1
            for depth in range(PATH_BITS + 1):
                stored = delta.get(position)
                if stored is None:
                    stored = base.get(position)
                if stored is None or len(stored) != _RECORD_SIZE:
                    return position, stored or None  # `or`: _REMOVED
                position = 2 * position + ((path >> (PATH_BITS - 1 - depth)) & 1)  # _bit
        low, high = 0, PATH_BITS  # branches above depth `low`; no branch at depth `high`
        while low < high:
            middle = (low + high) // 2
            position = (1 << middle) | (path >> (PATH_BITS - middle))  # _position, inlined
            stored = delta.get(position)
            if stored is None:
                stored = base.get(position)
            if stored is not None and len(stored) == _RECORD_SIZE:
                low = middle + 1
            else:
                high = middle
        position = _position(path, low)
        return position, self._get(position)

    def _split(self, position: int, existing: bytes, new: bytes, new_path: int) -> None:
        """Replace leaf `existing` at `position` by the branches down to where its path and
        that of leaf `new` part, with the two leaves below."""
        delta, stale = self._delta, self._stale
        parting = _shared_bits(int.from_bytes(existing[_PATH], "big"), new_path)
        for depth in range(position.bit_length() - 1, parting + 1):
            delta[position] = _NEW_RECORD  # the side off the path is empty; the other is stale
            stale.add(position)
            position = 2 * position + _bit(new_path, depth)
        delta[position] = new
        delta[position ^ 1] = existing
        self._changed.update((position, position ^ 1))

    def _mark_stale(self, position: int) -> None:
        """Mark the branch at `position` and its ancestors for rehashing."""
        self._root_hash = None
        stale = self._stale
        while position and position not in stale:
            stale.add(position)
            position >>= 1

    def _fold_delta(self, old_base: dict[int, bytes]) -> None:
        """Replace the base by base + delta (a new dict: other copies keep the old base)."""
        base = old_base.copy()
        for position, stored in self._delta.items():
            if stored:
                base[position] = stored
            else:
                base.pop(position, None)
        self._base = base
        self._delta = {}


@dataclass(frozen=True, slots=True)
class OtherLeaf:
    """The leaf found where an absent key's path ends (non-membership)."""

    path: bytes
    """Path (``SHA-256(other key)``) of the leaf; differs from the proven key's path."""
    value_hash: bytes
    """``SHA-256(value)`` stored in that leaf."""


@dataclass(frozen=True, slots=True)
class StateProof:
    """Proof that `key` maps to a value (``value_hash`` set) or is absent (``value_hash`` None).

    Wire form (`to_wire`): ``{"key": bytes, "value_hash": bytes | None, "siblings": [bytes],
    "other_leaf": None | {"path": bytes, "value_hash": bytes}}``.
    """

    key: bytes
    """The key the proof is about (not its path)."""
    value_hash: bytes | None
    """``SHA-256(value)`` for membership; None for non-membership."""
    siblings: tuple[bytes, ...]
    """Sibling hashes from the root downward: ``siblings[i]`` is across bit i of the path."""
    other_leaf: OtherLeaf | None
    """For non-membership: the other key's leaf occupying the slot, or None if it is empty."""

    def to_wire(self) -> dict[str, Any]:
        other = self.other_leaf
        return {
            "key": self.key,
            "value_hash": self.value_hash,
            "siblings": list(self.siblings),
            "other_leaf": None
            if other is None
            else {"path": other.path, "value_hash": other.value_hash},
        }

    @classmethod
    def from_wire(cls, value: Any) -> StateProof:
        """Parse the wire form; raise InvalidProof naming the malformed field."""
        if not isinstance(value, dict) or set(value) != _WIRE_FIELDS:
            raise InvalidProof(f"state proof must be a map of exactly {sorted(_WIRE_FIELDS)}")
        key, value_hash, siblings = value["key"], value["value_hash"], value["siblings"]
        if not isinstance(key, bytes):
            raise InvalidProof(f"state proof key is a {type(key).__name__}, not bytes")
        if value_hash is not None:
            _check_hash("value hash", value_hash)
        _check_siblings(siblings)
        other = value["other_leaf"]
        other_leaf = None
        if other is not None:
            if not isinstance(other, dict) or set(other) != {"path", "value_hash"}:
                raise InvalidProof("state proof other_leaf must be None or {path, value_hash}")
            _check_hash("other leaf path", other["path"])
            _check_hash("other leaf value hash", other["value_hash"])
            other_leaf = OtherLeaf(other["path"], other["value_hash"])
        return cls(key, value_hash, tuple(siblings), other_leaf)


def verify_state_proof(root: bytes, key: bytes, value: bytes | None, proof: StateProof) -> None:
    """Raise InvalidProof unless `proof` shows that under `root`, `key` maps to exactly `value`
    (value given) or is absent (value None). Returns None only for a proof that verifies."""
    _check_hash("root", root)
    if not isinstance(proof, StateProof):
        raise InvalidProof(f"expected a StateProof, got {type(proof).__name__}")
    if not isinstance(key, bytes) or not isinstance(proof.key, bytes):
        raise InvalidProof("key and proof key must be bytes")
    if proof.key != key:
        raise InvalidProof(f"proof is for key {proof.key.hex()}, not {key.hex()}")
    _check_siblings(proof.siblings)
    path = key_path(key)
    depth = len(proof.siblings)
    if value is not None:
        if not isinstance(value, bytes):
            raise InvalidProof(f"value is a {type(value).__name__}, not bytes or None")
        if proof.value_hash is None:
            raise InvalidProof(f"value given for key {key.hex()} but the proof is of absence")
        _check_hash("value hash", proof.value_hash)
        if proof.other_leaf is not None:
            raise InvalidProof("a membership proof must not carry another leaf")
        value_hash = hashlib.sha256(value).digest()
        if value_hash != proof.value_hash:
            raise InvalidProof(
                f"value hashes to {value_hash.hex()}, the proof has {proof.value_hash.hex()}"
            )
        node = state_leaf_hash(path, proof.value_hash)
    elif proof.value_hash is not None:
        raise InvalidProof(f"key {key.hex()} claimed absent but the proof is of membership")
    elif proof.other_leaf is None:
        node = EMPTY_HASH
    else:
        other = proof.other_leaf
        _check_hash("other leaf path", other.path)
        _check_hash("other leaf value hash", other.value_hash)
        if other.path == path:
            raise InvalidProof(f"the leaf at the end of the path is key {key.hex()} itself")
        common = _shared_bits(int.from_bytes(other.path, "big"), int.from_bytes(path, "big"))
        if common < depth:
            raise InvalidProof(
                f"other leaf {other.path.hex()} shares {common} path bits with the key, "
                f"so it cannot sit at depth {depth}"
            )
        node = state_leaf_hash(other.path, other.value_hash)
    path_int = int.from_bytes(path, "big")
    for level in range(depth - 1, -1, -1):
        sibling = proof.siblings[level]
        if _bit(path_int, level):
            node = state_node_hash(sibling, node)
        else:
            node = state_node_hash(node, sibling)
    if node != root:
        raise InvalidProof(
            f"proof for key {key.hex()} computes root {node.hex()}, not {root.hex()}"
        )


def _check_hash(name: str, value: object) -> None:
    if not isinstance(value, bytes):
        raise InvalidProof(f"{name} is a {type(value).__name__}, not bytes")
    if len(value) != HASH_SIZE:
        raise InvalidProof(f"{name} is {len(value)} bytes, not {HASH_SIZE}: {value.hex()}")


def _check_siblings(siblings: object) -> None:
    if not isinstance(siblings, list | tuple):
        raise InvalidProof(f"siblings is a {type(siblings).__name__}, not a list")
    if len(siblings) > PATH_BITS:
        raise InvalidProof(f"proof has {len(siblings)} siblings, more than {PATH_BITS}")
    for level, sibling in enumerate(siblings):
        _check_hash(f"sibling {level}", sibling)
