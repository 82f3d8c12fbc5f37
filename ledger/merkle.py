"""RFC 6962 (Certificate Transparency) Merkle trees: the block's transaction root.

Hashing (RFC 6962 §2.1, SHA-256, every hash 32 bytes):

* the root of the empty tree is ``SHA-256("")``;
* a leaf hash is ``SHA-256(0x00 || leaf bytes)``;
* an interior node hash is ``SHA-256(0x01 || left || right)``;
* a tree of n > 1 leaves splits at k, the largest power of two smaller than n: the left subtree
  holds leaves ``[0, k)``, the right subtree ``[k, n)``.

Builders (`merkle_root`, `inclusion_proof`, `consistency_proof`) take leaf hashes, not leaf
bytes, so a caller hashes each transaction once. Inclusion proofs are RFC 6962 §2.1.1 PATH and
consistency proofs §2.1.2 PROOF, both ordered from the leaf (or the old root) towards the root,
the same order as RFC 9162 and transparency-dev/merkle.

Verifiers (`verify_inclusion`, `verify_consistency`) are the iterative algorithms of RFC 9162
§2.1.3.2 and §2.1.4.2. Invariant: they return None only for a proof that verifies; anything else
(a hash that is not 32 bytes, a negative or out-of-range index or size, a proof of the wrong
length, a root mismatch) raises `InvalidProof` with a message naming the problem. Builders
raise `MerkleInputError` for arguments that describe no tree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final

from ledger.errors import InvalidProof, MerkleInputError
from ledger.hashing import HASH_SIZE

EMPTY_ROOT: Final = hashlib.sha256(b"").digest()
_LEAF_PREFIX: Final = b"\x00"
_NODE_PREFIX: Final = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``: the hash of one leaf."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``: the hash of an interior node."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def merkle_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """The RFC 6962 Merkle Tree Hash over already-hashed leaves, with n - 1 node hashes.

    Pairing neighbours level by level and carrying an odd last node up unchanged builds exactly
    the RFC's left-balanced tree (split at the largest power of two below n).
    """
    _check_leaf_hashes(leaf_hashes)
    if not leaf_hashes:
        return EMPTY_ROOT
    level = list(leaf_hashes)
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """RFC 6962 §2.1.1 PATH(index, D[n]) for n = len(leaf_hashes), ordered leaf to root."""
    _check_leaf_hashes(leaf_hashes)
    size = len(leaf_hashes)
    if not _is_count(index) or index >= size:
        raise MerkleInputError(f"leaf index {index!r} is not in a tree of {size} leaves")
    return _path(leaf_hashes, index, 0, size)


def consistency_proof(leaf_hashes: Sequence[bytes], size1: int) -> list[bytes]:
    """RFC 6962 §2.1.2 PROOF(size1, D[n]) for n = len(leaf_hashes), ordered bottom to top.

    The proof for size1 == 0 or size1 == n is empty (RFC 9162 §2.1.4.1).
    """
    _check_leaf_hashes(leaf_hashes)
    size2 = len(leaf_hashes)
    if not _is_count(size1) or size1 > size2:
        raise MerkleInputError(f"old size {size1!r} is not in 0..{size2}")
    if size1 == 0:
        return []
    return _subproof(leaf_hashes, size1, 0, size2, complete=True)


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise InvalidProof unless `proof` shows leaf `index` of a `tree_size` tree is `leaf_hash`.

    RFC 9162 §2.1.3.2, after checking every input's shape and the proof length.
    """
    _check_hash("leaf hash", leaf_hash)
    _check_hash("root", root)
    _check_proof_hashes(proof)
    if not _is_count(tree_size):
        raise InvalidProof(f"tree size {tree_size!r} is not a non-negative integer")
    if not _is_count(index):
        raise InvalidProof(f"leaf index {index!r} is not a non-negative integer")
    if index >= tree_size:
        raise InvalidProof(f"leaf index {index} is not in a tree of {tree_size} leaves")
    expected = _inclusion_proof_length(index, tree_size)
    if len(proof) != expected:
        raise InvalidProof(
            f"inclusion proof for leaf {index} of {tree_size} has {len(proof)} hashes, "
            f"expected {expected}"
        )
    fn, sn = index, tree_size - 1
    result = leaf_hash
    for sibling in proof:
        if sn == 0:
            raise InvalidProof("inclusion proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            while fn != 0 and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            result = node_hash(result, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InvalidProof("inclusion proof is shorter than the path to the root")
    if result != root:
        raise InvalidProof(
            f"inclusion proof for leaf {index} of {tree_size} computes root {result.hex()}, "
            f"not {root.hex()}"
        )


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Raise InvalidProof unless `proof` shows the `size1` tree `root1` is a prefix of `root2`.

    RFC 9162 §2.1.4.2. Equal sizes need an empty proof and equal roots; size1 == 0 needs an
    empty proof and `root1` equal to the empty-tree root.
    """
    _check_hash("old root", root1)
    _check_hash("new root", root2)
    _check_proof_hashes(proof)
    if not _is_count(size1) or not _is_count(size2):
        raise InvalidProof(f"tree sizes {size1!r}, {size2!r} are not non-negative integers")
    if size1 > size2:
        raise InvalidProof(f"old size {size1} is larger than new size {size2}")
    if size1 == 0 or size1 == size2:
        if proof:
            raise InvalidProof(
                f"consistency proof from {size1} to {size2} must be empty, has {len(proof)} hashes"
            )
        expected_root1 = EMPTY_ROOT if size1 == 0 else root2
        if root1 != expected_root1:
            raise InvalidProof(
                f"old root {root1.hex()} of size {size1} is not {expected_root1.hex()}"
            )
        return
    expected = _consistency_proof_length(size1, size2)
    if len(proof) != expected:
        raise InvalidProof(
            f"consistency proof from {size1} to {size2} has {len(proof)} hashes, "
            f"expected {expected}"
        )
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    old, new = path[0], path[0]
    for sibling in path[1:]:
        if sn == 0:
            raise InvalidProof("consistency proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            old = node_hash(sibling, old)
            new = node_hash(sibling, new)
            while fn != 0 and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            new = node_hash(new, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InvalidProof("consistency proof is shorter than the path to the root")
    if old != root1:
        raise InvalidProof(
            f"consistency proof computes old root {old.hex()}, not {root1.hex()} (size {size1})"
        )
    if new != root2:
        raise InvalidProof(
            f"consistency proof computes new root {new.hex()}, not {root2.hex()} (size {size2})"
        )


def _path(leaf_hashes: Sequence[bytes], index: int, lo: int, hi: int) -> list[bytes]:
    """PATH(index, D[lo:hi]) with `index` relative to `lo`."""
    size = hi - lo
    if size == 1:
        return []
    split = _split_point(size)
    if index < split:
        proof = _path(leaf_hashes, index, lo, lo + split)
        proof.append(merkle_root(leaf_hashes[lo + split : hi]))
    else:
        proof = _path(leaf_hashes, index - split, lo + split, hi)
        proof.append(merkle_root(leaf_hashes[lo : lo + split]))
    return proof


def _subproof(
    leaf_hashes: Sequence[bytes], size1: int, lo: int, hi: int, *, complete: bool
) -> list[bytes]:
    """SUBPROOF(size1, D[lo:hi], complete) of RFC 6962 §2.1.2."""
    size = hi - lo
    if size1 == size:
        return [] if complete else [merkle_root(leaf_hashes[lo:hi])]
    split = _split_point(size)
    if size1 <= split:
        proof = _subproof(leaf_hashes, size1, lo, lo + split, complete=complete)
        proof.append(merkle_root(leaf_hashes[lo + split : hi]))
    else:
        proof = _subproof(leaf_hashes, size1 - split, lo + split, hi, complete=False)
        proof.append(merkle_root(leaf_hashes[lo : lo + split]))
    return proof


def _split_point(size: int) -> int:
    """The largest power of two strictly smaller than `size` (size >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def _inclusion_proof_length(index: int, size: int) -> int:
    """Hashes in PATH(index, D[size]): levels where the path differs from the last leaf's, plus
    the left-subtree roots it passes on the right border."""
    inner = (index ^ (size - 1)).bit_length()
    return inner + bin(index >> inner).count("1")


def _consistency_proof_length(size1: int, size2: int) -> int:
    """Hashes in PROOF(size1, D[size2]) for 0 < size1 < size2 (as in transparency-dev/merkle)."""
    shift = (size1 & -size1).bit_length() - 1
    inner = ((size1 - 1) ^ (size2 - 1)).bit_length()
    border = bin((size1 - 1) >> inner).count("1")
    seed = 0 if size1 == 1 << shift else 1
    return seed + inner - shift + border


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_hash(name: str, value: object) -> None:
    if not isinstance(value, bytes):
        raise InvalidProof(f"{name} is a {type(value).__name__}, not bytes")
    if len(value) != HASH_SIZE:
        raise InvalidProof(f"{name} is {len(value)} bytes, not {HASH_SIZE}: {value.hex()}")


def _check_proof_hashes(proof: Sequence[bytes]) -> None:
    if isinstance(proof, bytes | str) or not isinstance(proof, Sequence):
        raise InvalidProof(f"proof is a {type(proof).__name__}, not a sequence of hashes")
    for position, item in enumerate(proof):
        _check_hash(f"proof hash {position}", item)


def _check_leaf_hashes(leaf_hashes: Sequence[bytes]) -> None:
    for position, item in enumerate(leaf_hashes):
        if not isinstance(item, bytes) or len(item) != HASH_SIZE:
            raise MerkleInputError(f"leaf hash {position} is not {HASH_SIZE} bytes: {item!r}")
