"""The state tree against a from-scratch reference built from the documented hashing rules.

`_reference_root` and `_reference_verify` use only hashlib and the rules in docs/state_tree.md,
so they check the documentation as much as the code.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import state_tree
from ledger.encoding import decode, encode
from ledger.errors import InvalidProof
from ledger.state_tree import (
    EMPTY_HASH,
    OtherLeaf,
    StateProof,
    StateTree,
    key_path,
    verify_state_proof,
)


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _path_bit(path: bytes, depth: int) -> int:
    return (path[depth // 8] >> (7 - depth % 8)) & 1


def _reference_root(entries: dict[bytes, bytes]) -> bytes:
    """The root recomputed from scratch: split by path bit until a subtree holds <= 1 entry."""
    value_hashes = {_sha(key): _sha(value) for key, value in entries.items()}

    def subtree(paths: list[bytes], depth: int) -> bytes:
        if not paths:
            return bytes(32)
        if len(paths) == 1:
            return _sha(b"\x00" + paths[0] + value_hashes[paths[0]])
        left = [path for path in paths if not _path_bit(path, depth)]
        right = [path for path in paths if _path_bit(path, depth)]
        return _sha(b"\x01" + subtree(left, depth + 1) + subtree(right, depth + 1))

    return subtree(list(value_hashes), 0)


def _reference_verify(root: bytes, key: bytes, value: bytes | None, proof: StateProof) -> bool:
    """The verification recipe of docs/state_tree.md, for proofs the tree produced."""
    path = _sha(key)
    if value is not None:
        node = _sha(b"\x00" + path + _sha(value))
    elif proof.other_leaf is None:
        node = bytes(32)
    else:
        node = _sha(b"\x00" + proof.other_leaf.path + proof.other_leaf.value_hash)
    for depth in reversed(range(len(proof.siblings))):
        sibling = proof.siblings[depth]
        node = _sha(b"\x01" + (sibling + node if _path_bit(path, depth) else node + sibling))
    return node == root


def _flip(data: bytes, position: int) -> bytes:
    return data[:position] + bytes([data[position] ^ 0x80]) + data[position + 1 :]


KEYS = st.binary(max_size=6)
VALUES = st.binary(max_size=8)
MAPS = st.dictionaries(KEYS, VALUES, max_size=40)


def _tree_by_sets(entries: dict[bytes, bytes]) -> StateTree:
    tree = StateTree()
    for key, value in entries.items():
        tree.set(key, value)
    return tree


def _assert_rejected(root: bytes, key: bytes, value: bytes | None, proof: StateProof) -> None:
    with pytest.raises(InvalidProof):
        verify_state_proof(root, key, value, proof)


# --- roots ---------------------------------------------------------------------------------


def test_fixed_roots() -> None:
    """Small vectors for independent implementations (also in docs/state_tree.md)."""
    assert StateTree().root() == EMPTY_HASH == bytes(32)
    one = StateTree.from_items([(b"a", b"1")])
    assert one.root() == _sha(b"\x00" + _sha(b"a") + _sha(b"1"))
    three_entries = [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")]
    three = StateTree.from_items(three_entries)
    assert three.root() == _reference_root({b"a": b"1", b"b": b"2", b"c": b"3"})
    # paths: a = 1100..., b = 0011..., c = 0010...: a alone on the right of the root; b and c
    # share "001", so two one-child branches lead down to the branch that splits them.
    leaf_a, leaf_b, leaf_c = (_sha(b"\x00" + _sha(k) + _sha(v)) for k, v in three_entries)
    zero = bytes(32)
    split_bc = _sha(b"\x01" + leaf_c + leaf_b)
    chain = _sha(b"\x01" + _sha(b"\x01" + zero + split_bc) + zero)
    assert three.root() == _sha(b"\x01" + chain + leaf_a)
    assert three.root().hex() == (
        "8e2a164a410203f51300d7c6645b7a37f549768457be109acc126c63573a9e0a"
    )
    two = StateTree.from_items(three_entries[:2])
    assert two.root().hex() == "70a50295110313dd28320faccbee14d04dc2894e877a2e407115a2f337ed4efa"


@given(entries=MAPS, data=st.data())
def test_root_is_independent_of_insertion_order(
    entries: dict[bytes, bytes], data: st.DataObject
) -> None:
    order = data.draw(st.permutations(list(entries.items())))
    tree = StateTree()
    for key, value in order:
        tree.set(key, value)
        if data.draw(st.booleans()):
            tree.root()  # interleaved roots must not change the final one
    expected = _reference_root(entries)
    assert tree.root() == expected
    assert StateTree.from_items(entries.items()).root() == expected
    assert len(tree) == len(entries)


OPERATIONS = st.lists(
    st.tuples(st.sampled_from(["set", "delete", "root"]), st.integers(0, 15), VALUES),
    max_size=80,
)


@given(initial=MAPS, operations=OPERATIONS)
def test_random_operations_match_a_dict_model(
    initial: dict[bytes, bytes], operations: list[tuple[str, int, bytes]]
) -> None:
    tree = StateTree.from_items(initial.items())
    model = dict(initial)
    for operation, number, value in operations:
        key = b"k%d" % number
        if operation == "set":
            tree.set(key, value)
            model[key] = value
        elif operation == "delete":
            assert tree.delete(key) == (key in model)
            model.pop(key, None)
        else:
            assert tree.root() == _reference_root(model)
        assert len(tree) == len(model)
        expected_hash = _sha(model[key]) if key in model else None
        assert tree.get_value_hash(key) == expected_hash
    assert tree.root() == _reference_root(model)


@given(initial=MAPS, operations=OPERATIONS)
def test_folding_the_delta_into_a_new_base_keeps_roots(
    initial: dict[bytes, bytes], operations: list[tuple[str, int, bytes]]
) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(state_tree, "_MIN_REBASE", 0)  # fold at almost every root()
        tree = StateTree.from_items(initial.items())
        model = dict(initial)
        for operation, number, value in operations:
            key = b"k%d" % number
            if operation == "set":
                tree.set(key, value)
                model[key] = value
            elif operation == "delete":
                tree.delete(key)
                model.pop(key, None)
            else:
                assert tree.root() == _reference_root(model)
        assert tree.root() == _reference_root(model)


@given(entries=MAPS, extra=MAPS)
def test_deletes_restore_the_previous_root(
    entries: dict[bytes, bytes], extra: dict[bytes, bytes]
) -> None:
    tree = StateTree.from_items(entries.items())
    before = tree.root()
    added = {key: value for key, value in extra.items() if key not in entries}
    for key, value in added.items():
        tree.set(key, value)
    for key in added:
        assert tree.delete(key)
    assert tree.root() == before == _reference_root(entries)
    assert not tree.delete(b"never set, longer than any generated key")
    assert tree.root() == before


@given(entries=MAPS, changes=MAPS)
def test_copies_are_independent(entries: dict[bytes, bytes], changes: dict[bytes, bytes]) -> None:
    original = StateTree.from_items(entries.items())
    original_root = original.root()
    twin = original.copy()
    for key, value in changes.items():
        twin.set(key, value)
    for key in list(entries)[::2]:
        twin.delete(key)
    changed = {**entries, **changes}
    for key in list(entries)[::2]:
        changed.pop(key, None)
    assert twin.root() == _reference_root(changed)
    assert original.root() == original_root
    original.set(b"only in the original", b"x")
    assert twin.root() == _reference_root(changed)


def _keys_sharing_long_prefixes(count: int) -> list[bytes]:
    """Keys whose paths agree on many leading bits: long chains of one-child branches."""
    keys = sorted((b"deep%d" % number for number in range(count)), key=key_path)
    pairs = sorted(
        itertools.pairwise(keys),
        key=lambda pair: (
            int.from_bytes(key_path(pair[0]), "big") ^ int.from_bytes(key_path(pair[1]), "big")
        ),
    )
    return [key for pair in pairs[:4] for key in pair]


def test_long_chains_build_update_delete_and_prove() -> None:
    deep = _keys_sharing_long_prefixes(3000)  # adjacent pairs share ~20 leading bits
    entries = {key: b"v" + key for key in deep}
    built = StateTree.from_items(entries.items())
    grown = _tree_by_sets(entries)
    assert built.root() == grown.root() == _reference_root(entries)
    for key in deep:
        proof = built.prove(key)
        assert len(proof.siblings) > 15
        verify_state_proof(built.root(), key, entries[key], proof)
    for key in deep[::2]:
        built.delete(key)
        del entries[key]
        assert built.root() == _reference_root(entries)
        verify_state_proof(built.root(), key, None, built.prove(key))


# --- proofs --------------------------------------------------------------------------------


@given(entries=MAPS, absent=st.lists(KEYS, max_size=5))
def test_membership_and_non_membership_proofs_verify(
    entries: dict[bytes, bytes], absent: list[bytes]
) -> None:
    tree = StateTree.from_items(entries.items())
    root = tree.root()
    for key, value in entries.items():
        proof = tree.prove(key)
        assert proof.value_hash == _sha(value)
        verify_state_proof(root, key, value, proof)
        assert _reference_verify(root, key, value, proof)
        assert StateProof.from_wire(decode(encode(proof.to_wire()))) == proof
    for key in absent:
        if key in entries:
            continue
        proof = tree.prove(key)
        assert proof.value_hash is None
        verify_state_proof(root, key, None, proof)
        assert _reference_verify(root, key, None, proof)
        assert StateProof.from_wire(decode(encode(proof.to_wire()))) == proof


def test_both_kinds_of_non_membership_proof_occur() -> None:
    tree = StateTree.from_items((b"key%d" % number, b"v") for number in range(8))
    kinds = set()
    for number in range(100, 200):
        proof = tree.prove(b"key%d" % number)
        verify_state_proof(tree.root(), b"key%d" % number, None, proof)
        kinds.add("empty" if proof.other_leaf is None else "other leaf")
    assert kinds == {"empty", "other leaf"}


def _alterations(proof: StateProof, position: int) -> list[StateProof]:
    """Proofs with one sibling byte flipped, a sibling dropped or added, or hashes resized."""
    altered = []
    siblings = proof.siblings
    for level, sibling in enumerate(siblings):
        flipped = (*siblings[:level], _flip(sibling, position), *siblings[level + 1 :])
        altered.append(replace(proof, siblings=flipped))
    if siblings:
        altered.append(replace(proof, siblings=siblings[:-1]))
        altered.append(replace(proof, siblings=siblings[1:]))
        altered.append(replace(proof, siblings=(*siblings[:-1], siblings[-1][:31])))
    altered.append(replace(proof, siblings=(*siblings, EMPTY_HASH)))
    altered.append(replace(proof, siblings=(EMPTY_HASH, *siblings)))
    if proof.other_leaf is not None:
        other = proof.other_leaf
        altered.append(replace(proof, other_leaf=replace(other, path=_flip(other.path, 31))))
        altered.append(
            replace(proof, other_leaf=replace(other, value_hash=_flip(other.value_hash, position)))
        )
        altered.append(replace(proof, other_leaf=None))
    return altered


@given(
    entries=MAPS.filter(bool),
    absent=KEYS,
    position=st.integers(0, 31),
    new_value=VALUES,
)
def test_altered_proofs_fail(
    entries: dict[bytes, bytes], absent: bytes, position: int, new_value: bytes
) -> None:
    tree = StateTree.from_items(entries.items())
    root = tree.root()
    key, value = next(iter(entries.items()))
    proof = tree.prove(key)
    for altered in _alterations(proof, position):
        _assert_rejected(root, key, value, altered)
    if new_value != value:
        _assert_rejected(root, key, new_value, proof)
    _assert_rejected(root, key, None, proof)
    _assert_rejected(_flip(root, position), key, value, proof)
    for other_key, other_value in entries.items():
        if other_key != key:
            _assert_rejected(root, other_key, other_value, replace(proof, key=other_key))
            _assert_rejected(root, other_key, other_value, proof)
    if absent not in entries:
        absence = tree.prove(absent)
        for altered in _alterations(absence, position):
            _assert_rejected(root, absent, None, altered)
        _assert_rejected(root, absent, new_value, absence)
        _assert_rejected(root, key, None, replace(absence, key=key))


# --- rejection reasons ---------------------------------------------------------------------

TREE = StateTree.from_items((b"key%d" % number, b"value%d" % number) for number in range(20))
ROOT = TREE.root()
PRESENT = TREE.prove(b"key3")
ABSENT_KEY = next(
    b"absent%d" % n for n in range(1000) if TREE.prove(b"absent%d" % n).other_leaf is not None
)
ABSENT = TREE.prove(ABSENT_KEY)


def test_valid_fixtures() -> None:
    verify_state_proof(ROOT, b"key3", b"value3", PRESENT)
    verify_state_proof(ROOT, ABSENT_KEY, None, ABSENT)


@pytest.mark.parametrize("length", [0, 31, 33])
def test_invalid_root_length(length: int) -> None:
    with pytest.raises(InvalidProof, match=f"root is {length} bytes"):
        verify_state_proof(bytes(length), b"key3", b"value3", PRESENT)


@pytest.mark.parametrize("length", [31, 33])
def test_invalid_sibling_length(length: int) -> None:
    siblings = (bytes(length), *PRESENT.siblings[1:])
    with pytest.raises(InvalidProof, match=f"sibling 0 is {length} bytes"):
        verify_state_proof(ROOT, b"key3", b"value3", replace(PRESENT, siblings=siblings))


def test_invalid_too_many_siblings() -> None:
    siblings = (EMPTY_HASH,) * 257
    with pytest.raises(InvalidProof, match="257 siblings, more than 256"):
        verify_state_proof(ROOT, b"key3", b"value3", replace(PRESENT, siblings=siblings))


def test_invalid_key_mismatch() -> None:
    with pytest.raises(InvalidProof, match="proof is for key"):
        verify_state_proof(ROOT, b"key4", b"value3", PRESENT)


def test_invalid_value_mismatch() -> None:
    with pytest.raises(InvalidProof, match="value hashes to"):
        verify_state_proof(ROOT, b"key3", b"value4", PRESENT)


@pytest.mark.parametrize("length", [31, 33])
def test_invalid_value_hash_length(length: int) -> None:
    with pytest.raises(InvalidProof, match=f"value hash is {length} bytes"):
        verify_state_proof(ROOT, b"key3", b"value3", replace(PRESENT, value_hash=bytes(length)))


def test_invalid_value_given_with_absence_proof() -> None:
    with pytest.raises(InvalidProof, match="proof is of absence"):
        verify_state_proof(ROOT, ABSENT_KEY, b"anything", ABSENT)


def test_invalid_absence_claimed_with_membership_proof() -> None:
    with pytest.raises(InvalidProof, match="claimed absent"):
        verify_state_proof(ROOT, b"key3", None, PRESENT)


def test_invalid_absence_claimed_for_present_key() -> None:
    own_leaf = OtherLeaf(key_path(b"key3"), _sha(b"value3"))
    forged = replace(PRESENT, value_hash=None, other_leaf=own_leaf)
    with pytest.raises(InvalidProof, match="itself"):
        verify_state_proof(ROOT, b"key3", None, forged)
    empty_slot = replace(PRESENT, value_hash=None)
    with pytest.raises(InvalidProof, match="computes root"):
        verify_state_proof(ROOT, b"key3", None, empty_slot)


def test_invalid_other_leaf_off_the_path() -> None:
    assert ABSENT.other_leaf is not None
    path = key_path(ABSENT_KEY)
    off_path = bytes([path[0] ^ 0x80]) + path[1:]
    forged = replace(ABSENT, other_leaf=replace(ABSENT.other_leaf, path=off_path))
    with pytest.raises(InvalidProof, match="shares 0 path bits"):
        verify_state_proof(ROOT, ABSENT_KEY, None, forged)


@pytest.mark.parametrize("field", ["path", "value_hash"])
def test_invalid_other_leaf_hash_length(field: str) -> None:
    assert ABSENT.other_leaf is not None
    forged = replace(ABSENT, other_leaf=replace(ABSENT.other_leaf, **{field: bytes(31)}))
    with pytest.raises(InvalidProof, match=r"other leaf .* is 31 bytes"):
        verify_state_proof(ROOT, ABSENT_KEY, None, forged)


def test_invalid_membership_proof_with_other_leaf() -> None:
    forged = replace(PRESENT, other_leaf=OtherLeaf(bytes(32), bytes(32)))
    with pytest.raises(InvalidProof, match="must not carry another leaf"):
        verify_state_proof(ROOT, b"key3", b"value3", forged)


def test_invalid_root_mismatch() -> None:
    with pytest.raises(InvalidProof, match="computes root"):
        verify_state_proof(_flip(ROOT, 0), b"key3", b"value3", PRESENT)


def test_invalid_argument_types() -> None:
    with pytest.raises(InvalidProof, match="not bytes"):
        verify_state_proof(ROOT.hex(), b"key3", b"value3", PRESENT)  # type: ignore[arg-type]
    with pytest.raises(InvalidProof, match="must be bytes"):
        verify_state_proof(ROOT, "key3", b"value3", PRESENT)  # type: ignore[arg-type]
    with pytest.raises(InvalidProof, match="not bytes or None"):
        verify_state_proof(ROOT, b"key3", "value3", PRESENT)  # type: ignore[arg-type]
    with pytest.raises(InvalidProof, match="expected a StateProof"):
        verify_state_proof(ROOT, b"key3", b"value3", PRESENT.to_wire())  # type: ignore[arg-type]


def _wire(**changes: Any) -> dict[str, Any]:
    wire = ABSENT.to_wire()
    wire.update(changes)
    return wire


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        ([1, 2], "must be a map"),
        ({"key": b"k", "value_hash": None, "siblings": []}, "must be a map"),
        (_wire(extra=1), "must be a map"),
        (_wire(key="text"), "key is a str"),
        (_wire(value_hash=bytes(31)), "value hash is 31 bytes"),
        (_wire(siblings=b"\x00" * 32), "not a list"),
        (_wire(siblings=[bytes(32)] * 257), "more than 256"),
        (_wire(siblings=[bytes(32), 7]), "sibling 1 is a int"),
        (_wire(other_leaf=[bytes(32), bytes(32)]), "other_leaf must be"),
        (_wire(other_leaf={"path": bytes(32)}), "other_leaf must be"),
        (_wire(other_leaf={"path": bytes(33), "value_hash": bytes(32)}), "path is 33 bytes"),
    ],
)
def test_invalid_wire_form(wire: Any, reason: str) -> None:
    with pytest.raises(InvalidProof, match=reason):
        StateProof.from_wire(wire)


def test_wire_form_is_plain_and_encodable() -> None:
    for proof in (PRESENT, ABSENT):
        wire = proof.to_wire()
        assert set(wire) == {"key", "value_hash", "siblings", "other_leaf"}
        assert StateProof.from_wire(decode(encode(wire))) == proof
