"""RFC 9162 §2.1 Merkle tree: published vectors, their corruptions, edge cases and bad arguments."""

from __future__ import annotations

import hashlib

import pytest

from ledger.merkle import (
    EMPTY_ROOT,
    LEAF_PREFIX,
    NODE_PREFIX,
    MemoryTree,
    MerkleError,
    Node,
    ProofError,
    TreeRangeError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root,
    root_from,
    verify_consistency,
    verify_inclusion,
)
from tests.unit.merkle_reference import (
    CONSISTENCY_VECTORS,
    HASHER_VECTORS,
    INCLUSION_VECTORS,
    LEAVES,
    NODE_HASHES,
    ROOTS,
    SOME_HASH,
    _flip,
    _hexes,
)

# --- published vectors -------------------------------------------------------------------------


@pytest.mark.parametrize(("description", "computed", "published"), HASHER_VECTORS)
def test_hashing_matches_the_published_rfc6962_hasher_vectors(description, computed, published):
    assert computed.hex() == published


def test_domain_separation_prefixes_are_the_rfc_bytes():
    assert (LEAF_PREFIX, NODE_PREFIX) == (b"\x00", b"\x01")


@pytest.mark.parametrize("size", range(len(ROOTS)))
def test_root_of_every_prefix_matches_the_published_root(size):
    assert root(LEAVES[:size]) == ROOTS[size]
    assert MemoryTree(LEAVES).root(size) == ROOTS[size]


def test_memory_tree_stores_every_published_perfect_subtree_hash():
    tree = MemoryTree(LEAVES)
    for level, hashes in enumerate(NODE_HASHES):
        for index, expected in enumerate(hashes):
            assert tree.subtree_hash(index << level, (index + 1) << level).hex() == expected


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_VECTORS)
def test_inclusion_proof_matches_and_verifies_the_published_vector(index, size, proof):
    assert inclusion_proof(LEAVES, index, size) == _hexes(proof)
    verify_inclusion(LEAVES[index], index, size, _hexes(proof), ROOTS[size])


@pytest.mark.parametrize(("first", "second", "proof"), CONSISTENCY_VECTORS)
def test_consistency_proof_matches_and_verifies_the_published_vector(first, second, proof):
    assert consistency_proof(LEAVES, first, second) == _hexes(proof)
    verify_consistency(first, second, ROOTS[first], ROOTS[second], _hexes(proof))


def _inclusion_probes(index: int, size: int, proof: list[bytes], leaf: bytes, root_: bytes):
    """Yield the corruptions transparency-dev/merkle's verify_test.go applies to inclusion proofs."""
    yield index - 1, size, proof, leaf, root_
    yield index + 1, size, proof, leaf, root_
    yield index ^ 2, size, proof, leaf, root_
    yield index, size * 2, proof, leaf, root_
    yield index, size // 2, proof, leaf, root_
    yield index, size, proof, leaf_hash(b"WrongLeaf"), root_
    yield index, size, proof, leaf, EMPTY_ROOT
    yield index, size, proof, leaf, SOME_HASH
    for extra in (b"", root_):
        yield index, size, [*proof, extra], leaf, root_
        yield index, size, [extra, *proof], leaf, root_
    for i in range(len(proof)):
        yield index, size, [*proof[:i], _flip(proof[i], 0, 8), *proof[i + 1 :]], leaf, root_
    if proof:
        yield index, size, proof[:-1], leaf, root_
    if len(proof) > 1:
        yield index, size, [proof[0], SOME_HASH, *proof[1:]], leaf, root_


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_VECTORS)
def test_published_inclusion_proof_fails_under_every_reference_corruption(index, size, proof):
    for probe in _inclusion_probes(index, size, _hexes(proof), LEAVES[index], ROOTS[size]):
        i, n, p, leaf, root_ = probe
        with pytest.raises(ProofError):
            verify_inclusion(leaf, i, n, p, root_)


def _consistency_probes(first: int, second: int, proof: list[bytes], r1: bytes, r2: bytes):
    """Yield the corruptions transparency-dev/merkle's verify_test.go applies to consistency proofs."""
    yield first - 1, second, r1, r2, proof
    yield first + 1, second, r1, r2, proof
    yield first ^ 2, second, r1, r2, proof
    yield first, second * 2, r1, r2, proof
    yield first, second // 2, r1, r2, proof
    yield first, second, SOME_HASH, r2, proof
    yield first, second, r1, SOME_HASH, proof
    yield first, second, r2, r1, proof
    yield first, second, r1, r2, []
    for extra in (b"", r1, r2):
        yield first, second, r1, r2, [*proof, extra]
        yield first, second, r1, r2, [extra, *proof]
    yield first, second, r1, r2, [proof[0], *proof]
    yield first, second, r1, r2, proof[:-1]
    for i in range(len(proof)):
        yield first, second, r1, r2, [*proof[:i], _flip(proof[i], 0, 16), *proof[i + 1 :]]


@pytest.mark.parametrize(("first", "second", "proof"), [v for v in CONSISTENCY_VECTORS if v[2]])
def test_published_consistency_proof_fails_under_every_reference_corruption(first, second, proof):
    for probe in _consistency_probes(first, second, _hexes(proof), ROOTS[first], ROOTS[second]):
        with pytest.raises(ProofError):
            verify_consistency(*probe)


# --- edge cases and bad arguments --------------------------------------------------------------


def test_the_empty_tree_root_is_the_sha256_of_nothing():
    assert root([]) == MemoryTree().root() == EMPTY_ROOT == ROOTS[0] == hashlib.sha256(b"").digest()


def test_a_one_leaf_tree_has_the_leaf_hash_as_root_and_an_empty_inclusion_proof():
    assert root(LEAVES[:1]) == LEAVES[0]
    assert inclusion_proof(LEAVES, 0, 1) == []
    verify_inclusion(LEAVES[0], 0, 1, [], LEAVES[0])
    with pytest.raises(ProofError):
        verify_inclusion(LEAVES[1], 0, 1, [], LEAVES[0])


def test_consistency_between_equal_sizes_needs_an_empty_proof_and_equal_roots():
    assert consistency_proof(LEAVES, 5, 5) == []
    verify_consistency(5, 5, ROOTS[5], ROOTS[5], [])
    with pytest.raises(ProofError, match="expected first root"):
        verify_consistency(5, 5, ROOTS[5], ROOTS[6], [])
    with pytest.raises(ProofError, match="expected 0 proof hashes"):
        verify_consistency(5, 5, ROOTS[5], ROOTS[5], [ROOTS[5]])


def test_consistency_from_the_empty_tree_needs_an_empty_proof_and_the_empty_root():
    assert consistency_proof(LEAVES, 0, 8) == []
    verify_consistency(0, 8, EMPTY_ROOT, ROOTS[8], [])
    with pytest.raises(ProofError, match="expected 0 proof hashes"):
        verify_consistency(0, 8, EMPTY_ROOT, ROOTS[8], [EMPTY_ROOT])
    with pytest.raises(ProofError, match="expected first root"):
        verify_consistency(0, 8, ROOTS[1], ROOTS[8], [])


def test_completed_nodes_report_their_level_index_and_leaf_range():
    nodes = MemoryTree(LEAVES[:7]).append(LEAVES[7])
    ranges = [(n.level, n.index, n.start, n.end) for n in nodes]
    assert ranges == [(0, 7, 7, 8), (1, 3, 6, 8), (2, 1, 4, 8), (3, 0, 0, 8)]
    assert nodes[-1] == Node(3, 0, ROOTS[8])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: inclusion_proof(LEAVES, 8, 8), "leaf index in \\[0, 8\\), found 8"),
        (lambda: inclusion_proof(LEAVES, -1, 8), "found -1"),
        (lambda: inclusion_proof(LEAVES, 0, 0), "found 0"),
        (lambda: inclusion_proof(LEAVES, 0, 9), "tree size in \\[0, 8\\], found 9"),
        (lambda: consistency_proof(LEAVES, 6, 3), "first <= second, found first=6, second=3"),
        (lambda: consistency_proof(LEAVES, 1, 9), "found 9"),
        (lambda: MemoryTree(LEAVES).root(9), "found 9"),
        (lambda: MemoryTree(LEAVES).subtree_hash(2, 5), "aligned power-of-two range, found \\[2, 5\\)"),
        (lambda: MemoryTree(LEAVES).subtree_hash(2, 6), "found \\[2, 6\\)"),
        (lambda: MemoryTree(LEAVES[:3]).subtree_hash(0, 4), "within 3 leaves, found \\[0, 4\\)"),
        (lambda: root_from(MemoryTree(), -1), "found -1"),
    ],
)
def test_proof_generation_rejects_bad_arguments_with_a_tree_range_error(call, message):
    with pytest.raises(TreeRangeError, match="expected .*" + message):
        call()


def test_appending_a_hash_of_the_wrong_length_is_rejected():
    with pytest.raises(MerkleError, match="expected leaf hash of 32 bytes, found 3 bytes"):
        MemoryTree().append(b"abc")


PROOF_5_IN_8 = _hexes(INCLUSION_VECTORS[2][2])
PROOF_6_TO_8 = _hexes(CONSISTENCY_VECTORS[2][2])
PROOF_2_TO_5 = _hexes(CONSISTENCY_VECTORS[3][2])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: verify_inclusion(LEAVES[0], 8, 8, [], ROOTS[8]), "leaf index in \\[0, 8\\), found 8"),
        (lambda: verify_inclusion(LEAVES[0], 0, 0, [], EMPTY_ROOT), "found 0"),
        (lambda: verify_inclusion(b"short", 0, 1, [], ROOTS[1]), "leaf hash of 32 bytes, found 5"),
        (lambda: verify_inclusion(LEAVES[0], 0, 1, [], b""), "root of 32 bytes, found 0"),
        (lambda: verify_inclusion(LEAVES[0], 0, 2, [b"x"], ROOTS[2]), "proof\\[0\\] of 32 bytes, found 1"),
        (lambda: verify_inclusion(LEAVES[5], 5, 8, [], ROOTS[8]),
         "3 proof hashes for leaf 5 of a tree of size 8, found 0"),
        (lambda: verify_inclusion(LEAVES[5], 5, 8, [*PROOF_5_IN_8, SOME_HASH], ROOTS[8]), "3 proof hashes .* found 4"),
        (lambda: verify_inclusion(LEAVES[1], 0, 1, [], ROOTS[1]), f"root {ROOTS[1].hex()}, found {LEAVES[1].hex()}"),
        (lambda: verify_consistency(3, 2, ROOTS[3], ROOTS[2], []), "first <= second, found first=3, second=2"),
        (lambda: verify_consistency(-1, 2, ROOTS[0], ROOTS[2], []), "found first=-1"),
        (lambda: verify_consistency(2, 5, b"x", ROOTS[5], []), "first root of 32 bytes, found 1"),
        (lambda: verify_consistency(0, 3, EMPTY_ROOT, ROOTS[3], [ROOTS[1]]),
         "0 proof hashes for sizes 0 and 3, found 1"),
        (lambda: verify_consistency(2, 5, ROOTS[2], ROOTS[5], []), "2 proof hashes for sizes 2 and 5, found 0"),
        (lambda: verify_consistency(6, 8, ROOTS[6], ROOTS[8], PROOF_6_TO_8[:2]), "3 proof hashes .* found 2"),
        (lambda: verify_consistency(6, 8, ROOTS[6], ROOTS[8], [*PROOF_6_TO_8, SOME_HASH]), "3 proof hashes .* found 4"),
        (lambda: verify_consistency(2, 5, ROOTS[2], ROOTS[4], PROOF_2_TO_5), f"second root {ROOTS[4].hex()}, found"),
    ],
)
def test_verification_rejects_bad_arguments_with_a_proof_error_saying_what_was_expected(call, message):
    with pytest.raises(ProofError, match="expected .*" + message):
        call()


def test_every_error_is_a_merkle_error_and_a_value_error():
    assert issubclass(ProofError, MerkleError) and issubclass(TreeRangeError, MerkleError)
    assert issubclass(MerkleError, ValueError)
