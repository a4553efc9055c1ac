"""RFC 9162 §2.1 Merkle tree: agreement with the naive RFC reference, scaling, and tamper detection."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.merkle import (
    MemoryTree,
    ProofError,
    completed_nodes,
    consistency_proof_from,
    inclusion_proof,
    inclusion_proof_from,
    leaf_hash,
    root,
    root_from,
    verify_consistency,
    verify_inclusion,
)
from tests.unit.merkle_reference import (
    LEAVES,
    ROOTS,
    CountingReader,
    DictStore,
    _flip,
    entries_lists,
    ref_mth,
    ref_path,
    ref_proof,
    unique_entries_lists,
)

# --- agreement with the naive RFC reference ----------------------------------------------------


def test_every_proof_in_trees_up_to_33_leaves_equals_the_rfc_reference_and_verifies():
    entries = [i.to_bytes(2, "big") for i in range(33)]
    tree = MemoryTree(leaf_hash(e) for e in entries)
    for size in range(1, len(entries) + 1):
        d = entries[:size]
        assert tree.root(size) == ref_mth(d)
        for index in range(size):
            proof = tree.inclusion_proof(index, size)
            assert proof == ref_path(index, d)
            verify_inclusion(leaf_hash(d[index]), index, size, proof, ref_mth(d))
        for first in range(1, size + 1):
            proof = tree.consistency_proof(first, size)
            assert proof == ref_proof(first, d)
            verify_consistency(first, size, ref_mth(d[:first]), ref_mth(d), proof)


@settings(max_examples=60, deadline=None)
@given(entries_lists)
def test_every_inclusion_proof_of_a_random_tree_equals_the_reference_and_verifies(entries):
    tree = MemoryTree(leaf_hash(e) for e in entries)
    size, expected_root = len(entries), ref_mth(entries)
    assert tree.root() == root([leaf_hash(e) for e in entries]) == expected_root
    for index in range(size):
        proof = tree.inclusion_proof(index)
        assert proof == ref_path(index, entries)
        verify_inclusion(leaf_hash(entries[index]), index, size, proof, expected_root)


@settings(max_examples=60, deadline=None)
@given(entries_lists, st.data())
def test_every_consistency_proof_of_a_random_tree_equals_the_reference_and_verifies(entries, data):
    tree = MemoryTree(leaf_hash(e) for e in entries)
    for _ in range(8):
        second = data.draw(st.integers(0, len(entries)), label="second")
        first = data.draw(st.integers(0, second), label="first")
        proof = tree.consistency_proof(first, second)
        assert proof == ([] if first == 0 else ref_proof(first, entries[:second]))
        verify_consistency(first, second, ref_mth(entries[:first]), ref_mth(entries[:second]), proof)


@settings(max_examples=40, deadline=None)
@given(entries_lists)
def test_a_store_fed_only_the_completed_nodes_answers_the_same_proofs(entries):
    store, tree = DictStore(), MemoryTree()
    for index, entry in enumerate(entries):
        nodes = completed_nodes(store, index, leaf_hash(entry))
        assert nodes == tree.append(leaf_hash(entry))
        assert len(nodes) == 1 + (len(bin(index)) - len(bin(index).rstrip("1")))
        for node in nodes:
            assert node.hash == ref_mth(entries[node.start : node.end])
            store.nodes[node.level, node.index] = node.hash
    size = len(entries)
    assert root_from(store, size) == tree.root()
    for index in range(size):
        assert inclusion_proof_from(store, index, size) == tree.inclusion_proof(index)
        assert consistency_proof_from(store, index, size) == tree.consistency_proof(index)


@pytest.mark.parametrize("size", [999_999, 1_000_000, 1 << 20, (1 << 20) + 1])
def test_proofs_over_a_million_leaves_take_logarithmically_many_lookups(size):
    depth = (size - 1).bit_length()
    for probe in (0, 1, size // 3, size // 2, size - 2, size - 1):
        reader = CountingReader()
        assert len(inclusion_proof_from(reader, probe, size)) <= depth
        assert reader.lookups <= 2 * depth
        reader = CountingReader()
        consistency_proof_from(reader, probe + 1, size)
        assert reader.lookups <= 3 * depth
    reader = CountingReader()
    root_from(reader, size)
    assert reader.lookups == size.bit_count()


# --- tamper detection --------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(unique_entries_lists, st.data())
def test_any_tampering_with_an_inclusion_proof_raises(entries, data):
    total = len(entries)
    size = data.draw(st.integers(1, total), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    tree = MemoryTree(leaf_hash(e) for e in entries)
    leaf, proof, good_root = leaf_hash(entries[index]), tree.inclusion_proof(index, size), tree.root(size)
    verify_inclusion(leaf, index, size, proof, good_root)

    target = data.draw(st.sampled_from(["proof", "leaf", "root", "index", "size"]), label="target")
    position, mask = data.draw(st.integers(0, 31)), data.draw(st.integers(1, 255))
    if target == "proof" and not proof:
        target = "leaf"
    if target == "proof":
        i = data.draw(st.integers(0, len(proof) - 1))
        proof = [*proof[:i], _flip(proof[i], position, mask), *proof[i + 1 :]]
    elif target == "leaf":
        leaf = _flip(leaf, position, mask)
    elif target == "root":
        good_root = _flip(good_root, position, mask)
    elif target == "index":
        index = data.draw(st.integers(-1, size + 1).filter(lambda i: i != index), label="new index")
    else:  # claim another size, together with the real root of the tree at that size
        size = data.draw(st.integers(0, total).filter(lambda n: n != size), label="new size")
        good_root = tree.root(size)
    with pytest.raises(ProofError):
        verify_inclusion(leaf, index, size, proof, good_root)


@settings(max_examples=150, deadline=None)
@given(unique_entries_lists, st.data())
def test_any_tampering_with_a_consistency_proof_raises(entries, data):
    total = len(entries)
    second = data.draw(st.integers(2, total), label="second")
    first = data.draw(st.integers(1, second - 1), label="first")
    tree = MemoryTree(leaf_hash(e) for e in entries)
    r1, r2, proof = tree.root(first), tree.root(second), tree.consistency_proof(first, second)
    verify_consistency(first, second, r1, r2, proof)

    target = data.draw(st.sampled_from(["proof", "first root", "second root", "first", "second"]))
    position, mask = data.draw(st.integers(0, 31)), data.draw(st.integers(1, 255))
    if target == "proof":
        i = data.draw(st.integers(0, len(proof) - 1))
        proof = [*proof[:i], _flip(proof[i], position, mask), *proof[i + 1 :]]
    elif target == "first root":
        r1 = _flip(r1, position, mask)
    elif target == "second root":
        r2 = _flip(r2, position, mask)
    elif target == "first":  # claim another size, with the real root at that size
        first = data.draw(st.integers(0, total).filter(lambda n: n != first), label="new first")
        r1 = tree.root(first)
    else:
        second = data.draw(st.integers(0, total).filter(lambda n: n != second), label="new second")
        r2 = tree.root(second)
    with pytest.raises(ProofError):
        verify_consistency(first, second, r1, r2, proof)


def test_the_tree_size_is_bound_by_the_root_not_by_the_inclusion_proof():
    # RFC 9162 verification cannot tell size 3 from size 4 when handed the size-3 root: the two
    # paths of leaf 0 have the same shape. The signed checkpoint is what binds a root to a size.
    verify_inclusion(LEAVES[0], 0, 4, inclusion_proof(LEAVES, 0, 3), ROOTS[3])
    with pytest.raises(ProofError):
        verify_inclusion(LEAVES[0], 0, 4, inclusion_proof(LEAVES, 0, 3), ROOTS[4])
