"""RFC 9162 §2.1 Merkle tree: published vectors, a naive RFC reference, and tamper detection."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.merkle import (
    EMPTY_ROOT,
    LEAF_PREFIX,
    NODE_PREFIX,
    MemoryTree,
    MerkleError,
    Node,
    ProofError,
    TreeRangeError,
    completed_nodes,
    consistency_proof,
    consistency_proof_from,
    inclusion_proof,
    inclusion_proof_from,
    leaf_hash,
    node_hash,
    root,
    root_from,
    verify_consistency,
    verify_inclusion,
)

# --- published reference vectors ---------------------------------------------------------------
# Copied verbatim (hex) from Google's RFC 6962 Go library, https://github.com/transparency-dev/merkle
# (the code formerly in google/certificate-transparency and google/trillian):
#   testonly/constants.go    @ 582a6ad190b6848f1d26f8bf08ddef29955d9db1  LeafInputs, NodeHashes, RootHashes
#   proof/verify_test.go     @ 02194e9afb6c1d95b5381350007963aa70fff472  inclusionProofs, consistencyProofs
#   rfc6962/rfc6962_test.go  @ 78493b07ef9b552e3379abf9e23d4da26fbe797c  TestRFC6962Hasher
# verify_test.go numbers leaves from 1; the indices below are converted to 0-based.

LEAF_INPUTS = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f",
)]

# NodeHashes()[level][index]: hashes of every perfect subtree of the 8-leaf tree.
NODE_HASHES = [
    [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    [
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    [
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    ["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
]

# RootHashes(): roots of the trees of the first 0..8 leaf inputs.
ROOTS = [bytes.fromhex(h) for h in (
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)]

# (index, size, proof)
INCLUSION_VECTORS = [
    (0, 1, []),
    (0, 8, [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]),
    (5, 8, [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ]),
]

# (first, second, proof)
CONSISTENCY_VECTORS = [
    (1, 1, []),
    (1, 8, [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]),
    (6, 8, [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]),
    (2, 5, [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ]),
    (6, 7, [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]),
]

# TestRFC6962Hasher: (description, computed, published)
HASHER_VECTORS = [
    ("empty root", EMPTY_ROOT, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ("empty leaf", leaf_hash(b""), "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    ("leaf", leaf_hash(b"L123456"), "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"),
    ("node", node_hash(b"N123", b"N456"), "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"),
]

LEAVES = [leaf_hash(entry) for entry in LEAF_INPUTS]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def _hexes(proof: list[str]) -> list[bytes]:
    return [bytes.fromhex(h) for h in proof]


# --- naive reference, straight from the recursive definitions of RFC 9162 §2.1 ------------------


def _sha(*parts: bytes) -> bytes:
    return hashlib.sha256(b"".join(parts)).digest()


def _k(n: int) -> int:
    k = 1
    while 2 * k < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    if not d:
        return _sha()
    if len(d) == 1:
        return _sha(b"\x00", d[0])
    k = _k(len(d))
    return _sha(b"\x01", ref_mth(d[:k]), ref_mth(d[k:]))


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return ref_path(m, d[:k]) + [ref_mth(d[k:])]
    return ref_path(m - k, d[k:]) + [ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [ref_mth(d)]
    k = _k(len(d))
    if m <= k:
        return ref_subproof(m, d[:k], b) + [ref_mth(d[k:])]
    return ref_subproof(m - k, d[k:], False) + [ref_mth(d[:k])]


def ref_proof(m: int, d: list[bytes]) -> list[bytes]:
    return ref_subproof(m, d, True)


class DictStore:
    """A stand-in for a database table of perfect-subtree hashes keyed by (level, index)."""

    def __init__(self) -> None:
        self.nodes: dict[tuple[int, int], bytes] = {}

    def subtree_hash(self, start: int, end: int) -> bytes:
        level = (end - start).bit_length() - 1
        return self.nodes[level, start >> level]


class CountingReader:
    """A fake node source for huge logs: arbitrary hashes, but every lookup is counted."""

    def __init__(self) -> None:
        self.lookups = 0

    def subtree_hash(self, start: int, end: int) -> bytes:
        width = end - start
        assert width > 0 and width & (width - 1) == 0 and start % width == 0, (start, end)
        self.lookups += 1
        return _sha(f"{start}:{end}".encode())


entries_lists = st.lists(st.binary(max_size=4), min_size=1, max_size=64)
unique_entries_lists = st.lists(st.binary(max_size=4), min_size=2, max_size=64, unique=True)


def _flip(value: bytes, position: int, mask: int) -> bytes:
    position %= len(value)
    return value[:position] + bytes([value[position] ^ mask]) + value[position + 1 :]


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
