"""RFC 6962 Merkle trees against the transparency-dev reference vectors, plus property tests.

Vectors: `$SEC_VECTORS_DIR` if set, else the provenance-noted copy in tests/vectors/.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import InvalidProof, MerkleError, MerkleInputError
from ledger.merkle import (
    EMPTY_ROOT,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    merkle_root,
    node_hash,
    verify_consistency,
    verify_inclusion,
)

VECTOR_FILE = "rfc6962_merkle_reference.json"


def _vectors_dir() -> Path:
    configured = os.environ.get("SEC_VECTORS_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parent / "vectors"


VECTORS: dict[str, Any] = json.loads((_vectors_dir() / VECTOR_FILE).read_text())
LEAVES = [leaf_hash(bytes.fromhex(item)) for item in VECTORS["leaf_inputs_hex"]]
INCLUSION = VECTORS["inclusion_proofs"]
CONSISTENCY = VECTORS["consistency_proofs"]


def _unhex(items: list[str]) -> list[bytes]:
    return [bytes.fromhex(item) for item in items]


def _reference_root(leaf_hashes: list[bytes]) -> bytes:
    """MTH of RFC 6962 §2.1, written recursively and independently of ledger.merkle."""
    if not leaf_hashes:
        return hashlib.sha256(b"").digest()
    if len(leaf_hashes) == 1:
        return leaf_hashes[0]
    split = 1
    while split * 2 < len(leaf_hashes):
        split *= 2
    left, right = _reference_root(leaf_hashes[:split]), _reference_root(leaf_hashes[split:])
    return hashlib.sha256(b"\x01" + left + right).digest()


def _flip(data: bytes, position: int) -> bytes:
    return data[:position] + bytes([data[position] ^ 0x01]) + data[position + 1 :]


def _byte_flips(proof: list[bytes]) -> list[list[bytes]]:
    """Every proof obtained by flipping one bit in one byte of one element."""
    altered = []
    for element, item in enumerate(proof):
        for position in range(len(item)):
            altered.append([*proof[:element], _flip(item, position), *proof[element + 1 :]])
    return altered


def _shape_changes(proof: list[bytes]) -> list[list[bytes]]:
    """Proofs with an element dropped or added, or one element 31 / 33 bytes long."""
    changes = [[*proof, LEAVES[0]], [LEAVES[0], *proof]]
    changes += [proof[:element] + proof[element + 1 :] for element in range(len(proof))]
    for element, item in enumerate(proof):
        changes.append([*proof[:element], item[:31], *proof[element + 1 :]])
        changes.append([*proof[:element], item + b"\x00", *proof[element + 1 :]])
    return changes


# --- reference vectors ---------------------------------------------------------------------


def test_leaf_hashes_match_vectors() -> None:
    assert [item.hex() for item in LEAVES] == VECTORS["leaf_hashes_hex"]


def test_node_hashes_match_vectors() -> None:
    levels = VECTORS["node_hashes_by_level_hex"]
    for lower, upper in itertools.pairwise(levels):
        hashes = _unhex(lower)
        pairs = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
        assert [item.hex() for item in pairs] == upper


@pytest.mark.parametrize("size", range(9))
def test_roots_match_vectors(size: int) -> None:
    expected = VECTORS["root_hashes_by_tree_size_hex"][str(size)]
    assert merkle_root(LEAVES[:size]).hex() == expected
    assert _reference_root(LEAVES[:size]).hex() == expected


def test_empty_root_is_hash_of_nothing() -> None:
    assert merkle_root([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()


@pytest.mark.parametrize(
    "case", INCLUSION, ids=lambda c: f"{c['leaf_index_0based']}of{c['tree_size']}"
)
def test_inclusion_proofs_match_vectors(case: dict[str, Any]) -> None:
    index, size = case["leaf_index_0based"], case["tree_size"]
    proof = inclusion_proof(LEAVES[:size], index)
    assert proof == _unhex(case["proof_hex"])
    verify_inclusion(LEAVES[index], index, size, proof, merkle_root(LEAVES[:size]))


@pytest.mark.parametrize("case", CONSISTENCY, ids=lambda c: f"{c['size1']}to{c['size2']}")
def test_consistency_proofs_match_vectors(case: dict[str, Any]) -> None:
    size1, size2 = case["size1"], case["size2"]
    proof = consistency_proof(LEAVES[:size2], size1)
    assert proof == _unhex(case["proof_hex"])
    verify_consistency(
        size1, size2, proof, merkle_root(LEAVES[:size1]), merkle_root(LEAVES[:size2])
    )


@pytest.mark.parametrize(
    "case", INCLUSION, ids=lambda c: f"{c['leaf_index_0based']}of{c['tree_size']}"
)
def test_invalid_altered_inclusion_vectors(case: dict[str, Any]) -> None:
    index, size = case["leaf_index_0based"], case["tree_size"]
    proof, root = _unhex(case["proof_hex"]), merkle_root(LEAVES[:size])
    for altered in _byte_flips(proof) + _shape_changes(proof):
        with pytest.raises(InvalidProof):
            verify_inclusion(LEAVES[index], index, size, altered, root)
    for position in range(32):
        with pytest.raises(InvalidProof):
            verify_inclusion(_flip(LEAVES[index], position), index, size, proof, root)
        with pytest.raises(InvalidProof):
            verify_inclusion(LEAVES[index], index, size, proof, _flip(root, position))
    for other_index, other_size in [(index + 1, size), (index - 1, size), (index, 4 * size)]:
        if 0 <= other_index < other_size:
            with pytest.raises(InvalidProof):
                verify_inclusion(LEAVES[index], other_index, other_size, proof, root)


@pytest.mark.parametrize("case", CONSISTENCY, ids=lambda c: f"{c['size1']}to{c['size2']}")
def test_invalid_altered_consistency_vectors(case: dict[str, Any]) -> None:
    size1, size2 = case["size1"], case["size2"]
    proof = _unhex(case["proof_hex"])
    root1, root2 = merkle_root(LEAVES[:size1]), merkle_root(LEAVES[:size2])
    for altered in _byte_flips(proof) + _shape_changes(proof):
        with pytest.raises(InvalidProof):
            verify_consistency(size1, size2, altered, root1, root2)
    for position in range(32):
        with pytest.raises(InvalidProof):
            verify_consistency(size1, size2, proof, _flip(root1, position), root2)
        with pytest.raises(InvalidProof):
            verify_consistency(size1, size2, proof, root1, _flip(root2, position))
    for other1, other2 in [(size1 + 1, size2), (size1 - 1, size2), (size1, 4 * size2)]:
        if 0 < other1 <= other2:
            with pytest.raises(InvalidProof):
                verify_consistency(other1, other2, proof, root1, root2)


def test_tree_size_is_bound_only_through_the_path_shape() -> None:
    """As in RFC 9162, a proof fixes the tree size only as far as the path's shape: the path
    of leaf 1 is the same in trees of 5 and 6 leaves. The size must come from the signed
    header that carries the root (here, the block header), never from the proof's sender."""
    proof = inclusion_proof(LEAVES[:5], 1)
    verify_inclusion(LEAVES[1], 1, 6, proof, merkle_root(LEAVES[:5]))
    with pytest.raises(InvalidProof):
        verify_inclusion(LEAVES[1], 1, 20, proof, merkle_root(LEAVES[:5]))


# --- rejection reasons ---------------------------------------------------------------------

ROOT8 = merkle_root(LEAVES)
PROOF_5_OF_8 = inclusion_proof(LEAVES, 5)
PROOF_6_TO_8 = consistency_proof(LEAVES, 6)
ROOT6 = merkle_root(LEAVES[:6])


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_invalid_inclusion_hash_lengths(length: int) -> None:
    bad = bytes(length)
    with pytest.raises(InvalidProof, match="leaf hash is"):
        verify_inclusion(bad, 5, 8, PROOF_5_OF_8, ROOT8)
    with pytest.raises(InvalidProof, match="root is"):
        verify_inclusion(LEAVES[5], 5, 8, PROOF_5_OF_8, bad)
    with pytest.raises(InvalidProof, match="proof hash 1 is"):
        verify_inclusion(LEAVES[5], 5, 8, [PROOF_5_OF_8[0], bad, PROOF_5_OF_8[2]], ROOT8)


@pytest.mark.parametrize(("index", "size"), [(-1, 8), (5, -1), (8, 8), (9, 8), (0, 0)])
def test_invalid_inclusion_index_or_size(index: int, size: int) -> None:
    with pytest.raises(InvalidProof):
        verify_inclusion(LEAVES[5], index, size, PROOF_5_OF_8, ROOT8)


def test_invalid_inclusion_wrong_types() -> None:
    with pytest.raises(InvalidProof, match="not bytes"):
        verify_inclusion("00" * 32, 5, 8, PROOF_5_OF_8, ROOT8)  # type: ignore[arg-type]
    with pytest.raises(InvalidProof, match="not a sequence"):
        verify_inclusion(LEAVES[5], 5, 8, b"".join(PROOF_5_OF_8), ROOT8)  # type: ignore[arg-type]
    with pytest.raises(InvalidProof, match="not a non-negative integer"):
        verify_inclusion(LEAVES[5], True, 8, PROOF_5_OF_8, ROOT8)


def test_invalid_inclusion_proof_length_is_named() -> None:
    with pytest.raises(InvalidProof, match="has 2 hashes, expected 3"):
        verify_inclusion(LEAVES[5], 5, 8, PROOF_5_OF_8[:2], ROOT8)


def test_invalid_inclusion_root_mismatch_is_named() -> None:
    with pytest.raises(InvalidProof, match="computes root"):
        verify_inclusion(LEAVES[4], 5, 8, PROOF_5_OF_8, ROOT8)


def test_invalid_consistency_sizes() -> None:
    with pytest.raises(InvalidProof, match="larger than new size"):
        verify_consistency(8, 6, PROOF_6_TO_8, ROOT8, ROOT6)
    with pytest.raises(InvalidProof, match="not non-negative"):
        verify_consistency(-1, 8, PROOF_6_TO_8, ROOT6, ROOT8)


def test_invalid_consistency_equal_sizes() -> None:
    verify_consistency(8, 8, [], ROOT8, ROOT8)
    with pytest.raises(InvalidProof, match="must be empty"):
        verify_consistency(8, 8, [ROOT8], ROOT8, ROOT8)
    with pytest.raises(InvalidProof, match="old root"):
        verify_consistency(8, 8, [], ROOT6, ROOT8)


def test_invalid_consistency_from_empty_tree() -> None:
    verify_consistency(0, 8, [], EMPTY_ROOT, ROOT8)
    with pytest.raises(InvalidProof, match="must be empty"):
        verify_consistency(0, 8, [ROOT8], EMPTY_ROOT, ROOT8)
    with pytest.raises(InvalidProof, match="old root"):
        verify_consistency(0, 8, [], ROOT6, ROOT8)


@pytest.mark.parametrize("length", [0, 31, 33])
def test_invalid_consistency_hash_lengths(length: int) -> None:
    bad = bytes(length)
    with pytest.raises(InvalidProof, match="old root is"):
        verify_consistency(6, 8, PROOF_6_TO_8, bad, ROOT8)
    with pytest.raises(InvalidProof, match="new root is"):
        verify_consistency(6, 8, PROOF_6_TO_8, ROOT6, bad)
    with pytest.raises(InvalidProof, match="proof hash 0 is"):
        verify_consistency(6, 8, [bad, *PROOF_6_TO_8[1:]], ROOT6, ROOT8)


def test_invalid_consistency_proof_length_is_named() -> None:
    with pytest.raises(InvalidProof, match="has 4 hashes, expected 3"):
        verify_consistency(6, 8, [*PROOF_6_TO_8, ROOT8], ROOT6, ROOT8)


def test_invalid_builder_inputs() -> None:
    with pytest.raises(MerkleInputError, match="leaf hash 1"):
        merkle_root([LEAVES[0], LEAVES[1][:31]])
    with pytest.raises(MerkleInputError, match="not in a tree of 8"):
        inclusion_proof(LEAVES, 8)
    with pytest.raises(MerkleInputError, match="not in a tree of 8"):
        inclusion_proof(LEAVES, -1)
    with pytest.raises(MerkleInputError, match=r"not in 0\.\.8"):
        consistency_proof(LEAVES, 9)
    assert issubclass(InvalidProof, MerkleError)
    assert issubclass(MerkleInputError, MerkleError)


# --- properties over random trees ----------------------------------------------------------


@st.composite
def _trees(draw: st.DrawFn) -> list[bytes]:
    size = draw(st.integers(min_value=1, max_value=200))
    seed = draw(st.binary(min_size=4, max_size=4))
    return [leaf_hash(seed + index.to_bytes(2, "big")) for index in range(size)]


@given(leaves=_trees(), data=st.data())
def test_random_inclusion_proofs_verify_and_alterations_fail(
    leaves: list[bytes], data: st.DataObject
) -> None:
    size = len(leaves)
    root = merkle_root(leaves)
    assert root == _reference_root(leaves)
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    proof = inclusion_proof(leaves, index)
    verify_inclusion(leaves[index], index, size, proof, root)
    if proof:
        element = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
        position = data.draw(st.integers(min_value=0, max_value=31))
        flipped = [*proof[:element], _flip(proof[element], position), *proof[element + 1 :]]
        with pytest.raises(InvalidProof):
            verify_inclusion(leaves[index], index, size, flipped, root)
        with pytest.raises(InvalidProof):
            verify_inclusion(leaves[index], index, size, proof[:-1], root)
    with pytest.raises(InvalidProof):
        verify_inclusion(leaves[index], index, size, [*proof, root], root)
    with pytest.raises(InvalidProof):
        verify_inclusion(_flip(leaves[index], 0), index, size, proof, root)
    other = data.draw(st.integers(min_value=0, max_value=size - 1))
    if leaves[other] != leaves[index]:
        with pytest.raises(InvalidProof):
            verify_inclusion(leaves[other], index, size, proof, root)
        with pytest.raises(InvalidProof):
            verify_inclusion(leaves[index], other, size, proof, root)


@given(leaves=_trees(), data=st.data())
def test_random_consistency_proofs_verify_and_alterations_fail(
    leaves: list[bytes], data: st.DataObject
) -> None:
    size2 = len(leaves)
    size1 = data.draw(st.integers(min_value=0, max_value=size2))
    root1, root2 = merkle_root(leaves[:size1]), merkle_root(leaves)
    proof = consistency_proof(leaves, size1)
    verify_consistency(size1, size2, proof, root1, root2)
    if proof:
        element = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
        position = data.draw(st.integers(min_value=0, max_value=31))
        flipped = [*proof[:element], _flip(proof[element], position), *proof[element + 1 :]]
        with pytest.raises(InvalidProof):
            verify_consistency(size1, size2, flipped, root1, root2)
        with pytest.raises(InvalidProof):
            verify_consistency(size1, size2, proof[:-1], root1, root2)
    with pytest.raises(InvalidProof):
        verify_consistency(size1, size2, [*proof, root1], root1, root2)
    with pytest.raises(InvalidProof):
        verify_consistency(size1, size2, proof, _flip(root1, 5), root2)
    if size1 > 0:  # every tree extends the empty tree, whatever its root
        with pytest.raises(InvalidProof):
            verify_consistency(size1, size2, proof, root1, _flip(root2, 5))
    if 0 < size1 < size2:
        with pytest.raises(InvalidProof):
            verify_consistency(size1, size2, proof, root1, merkle_root([*leaves[:-1], root1]))
