"""RFC 9162 (Certificate Transparency v2) §2.1 Merkle tree: hashing, proofs, verification.

Proofs are built from a ``NodeReader``: a source of hashes of *perfect* subtrees
(power-of-two sized and aligned). Any other range the RFC recursion needs is
split into aligned perfect subtrees and folded right to left (the "compact
range" idea of transparency-dev/merkle), so a log that persists perfect-subtree
hashes answers every proof in O(log n) lookups. ``MemoryTree`` is the in-memory
reader; ``completed_nodes`` names exactly the nodes one append creates.

Verification never returns False: it returns None or raises ``ProofError``.

    ValueError
     └── MerkleError          anything this module rejects
          ├── TreeRangeError  an index, size or range the tree cannot serve
          └── ProofError      a proof, leaf hash or root hash that does not verify
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterable, Protocol, Sequence

from ledger.errors import LedgerError

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


class MerkleError(LedgerError, ValueError):
    """Root of every error this module raises."""


class TreeRangeError(MerkleError):
    """An index, size or range lies outside what the tree can serve."""


class ProofError(MerkleError):
    """A proof, leaf hash or root hash failed verification."""


@dataclass(frozen=True)
class Node:
    """The hash of the perfect subtree over leaves [index * 2**level, (index + 1) * 2**level)."""

    level: int
    index: int
    hash: bytes

    @property
    def start(self) -> int:
        """Return the index of the first leaf the subtree covers."""
        return self.index << self.level

    @property
    def end(self) -> int:
        """Return one past the index of the last leaf the subtree covers."""
        return (self.index + 1) << self.level


class NodeReader(Protocol):
    """A source of perfect-subtree hashes, e.g. a database table keyed by (level, index)."""

    def subtree_hash(self, start: int, end: int) -> bytes:
        """Return the hash of the perfect subtree over leaves [start, end)."""
        ...


def leaf_hash(entry: bytes) -> bytes:
    """Hash a log entry into a leaf: SHA-256(0x00 || entry)."""
    return hashlib.sha256(LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash two child hashes into their parent: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """Return the largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _perfect_level(start: int, end: int) -> int:
    """Return log2(end - start), or raise unless [start, end) is an aligned perfect subtree."""
    width = end - start
    if start < 0 or width <= 0 or width & (width - 1) or start % width:
        raise TreeRangeError(f"expected an aligned power-of-two range, found [{start}, {end})")
    return width.bit_length() - 1


def _range_hash(reader: NodeReader, start: int, end: int) -> bytes:
    """Return MTH(D[start:end]); start must be a multiple of a power of two >= end - start."""
    # Such a range is a run of perfect subtrees of decreasing size (the binary digits of
    # end - start), and the RFC split puts the biggest on the left: fold them right to left.
    hashes: list[bytes] = []
    while start < end:
        width = 1 << ((end - start).bit_length() - 1)
        hashes.append(reader.subtree_hash(start, start + width))
        start += width
    result = hashes.pop()
    while hashes:
        result = node_hash(hashes.pop(), result)
    return result


def root_from(reader: NodeReader, size: int) -> bytes:
    """Compute the root of the first size leaves from perfect-subtree hashes."""
    if size < 0:
        raise TreeRangeError(f"expected a tree size >= 0, found {size}")
    return _range_hash(reader, 0, size) if size else EMPTY_ROOT


def inclusion_proof_from(reader: NodeReader, index: int, size: int) -> list[bytes]:
    """Return PATH(index, D[size]) using O(log size) subtree lookups."""
    if not 0 <= index < size:
        raise TreeRangeError(f"expected a leaf index in [0, {size}), found {index}")
    siblings: list[bytes] = []  # top-down; the RFC lists them bottom-up
    start, end = 0, size
    while end - start > 1:
        mid = start + _split(end - start)
        if index < mid:
            siblings.append(_range_hash(reader, mid, end))
            end = mid
        else:
            siblings.append(_range_hash(reader, start, mid))
            start = mid
    return siblings[::-1]


def consistency_proof_from(reader: NodeReader, first: int, second: int) -> list[bytes]:
    """Return PROOF(first, D[second]) using O(log second) subtree lookups; empty if first is 0 or second."""
    if not 0 <= first <= second:
        raise TreeRangeError(f"expected 0 <= first <= second, found first={first}, second={second}")
    if first in (0, second):
        return []
    siblings: list[bytes] = []  # top-down, as in inclusion_proof_from
    start, end, complete = 0, second, True
    while end != first:
        mid = start + _split(end - start)
        if first <= mid:
            siblings.append(_range_hash(reader, mid, end))
            end = mid
        else:
            siblings.append(_range_hash(reader, start, mid))
            start, complete = mid, False
    head = [] if complete else [_range_hash(reader, start, end)]
    return head + siblings[::-1]


def completed_nodes(reader: NodeReader, index: int, leaf: bytes) -> list[Node]:
    """Return, bottom-up, the perfect-subtree nodes that appending leaf at index completes."""
    if index < 0:
        raise TreeRangeError(f"expected a leaf index >= 0, found {index}")
    _expect_hash("leaf hash", leaf, MerkleError)
    nodes = [Node(0, index, leaf)]
    while nodes[-1].index & 1:
        right = nodes[-1]
        left = reader.subtree_hash(2 * right.start - right.end, right.start)
        nodes.append(Node(right.level + 1, right.index >> 1, node_hash(left, right.hash)))
    return nodes


@dataclass(frozen=True)
class Frontier:
    """The right edge of a tree of ``size`` leaves: the roots of its perfect subtrees, largest first.

    It is all an append needs (the left siblings of the new leaf's path are exactly these), so a log can keep it
    beside its size and append without reading any stored node.
    """

    size: int
    hashes: tuple[bytes, ...]

    @classmethod
    def of(cls, reader: NodeReader, size: int) -> Frontier:
        """Read the frontier of the first ``size`` leaves from a node source (O(log n) lookups)."""
        return cls(size, tuple(reader.subtree_hash(start, end) for start, end in _frontier_ranges(size)))

    @classmethod
    def from_bytes(cls, size: int, data: bytes) -> Frontier:
        """Rebuild a frontier stored as its concatenated hashes."""
        count = bin(size).count("1")
        if len(data) != count * HASH_SIZE:
            raise MerkleError(f"a frontier of size {size} has {count} hashes, found {len(data)} bytes")
        return cls(size, tuple(data[i:i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)))

    def to_bytes(self) -> bytes:
        """Return the hashes concatenated, largest subtree first."""
        return b"".join(self.hashes)

    def subtree_hash(self, start: int, end: int) -> bytes:
        """Return the hash of one of the frontier's perfect subtrees (a ``NodeReader`` for appends)."""
        for (first, last), value in zip(_frontier_ranges(self.size), self.hashes):
            if (first, last) == (start, end):
                return value
        raise TreeRangeError(f"[{start}, {end}) is not a perfect subtree on the edge of a tree of {self.size}")

    def append(self, leaf: bytes) -> tuple[Frontier, list[Node]]:
        """Return the frontier after appending ``leaf`` and the nodes the append completes."""
        nodes = completed_nodes(self, self.size, leaf)
        kept = self.hashes[:len(self.hashes) - (len(nodes) - 1)]
        return Frontier(self.size + 1, (*kept, nodes[-1].hash)), nodes

    def root(self) -> bytes:
        """Return the root of the tree the frontier is the edge of."""
        if not self.hashes:
            return EMPTY_ROOT
        value = self.hashes[-1]
        for left in reversed(self.hashes[:-1]):
            value = node_hash(left, value)
        return value


def _frontier_ranges(size: int) -> list[tuple[int, int]]:
    ranges, start = [], 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            ranges.append((start, start + (1 << level)))
            start += 1 << level
    return ranges


class MemoryTree:
    """An append-only in-memory log that stores every perfect-subtree hash, level by level."""

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]  # level k holds aligned subtrees of 2**k leaves
        for leaf in leaf_hashes:
            self.append(leaf)

    def __len__(self) -> int:
        return len(self._levels[0])

    def append(self, leaf: bytes) -> list[Node]:
        """Append one leaf hash and return the nodes it completes (amortized O(1))."""
        nodes = completed_nodes(self, len(self), leaf)
        for node in nodes:
            if node.level == len(self._levels):
                self._levels.append([])
            self._levels[node.level].append(node.hash)
        return nodes

    def subtree_hash(self, start: int, end: int) -> bytes:
        """Return the stored hash of the perfect subtree over leaves [start, end)."""
        level = _perfect_level(start, end)
        if end > len(self):
            raise TreeRangeError(f"expected a range within {len(self)} leaves, found [{start}, {end})")
        return self._levels[level][start >> level]

    def root(self, size: int | None = None) -> bytes:
        """Return the root of the first size leaves (default: all)."""
        return root_from(self, self._size(size))

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Return the inclusion proof of leaf index in the tree of size leaves (default: all)."""
        return inclusion_proof_from(self, index, self._size(size))

    def consistency_proof(self, first: int, second: int | None = None) -> list[bytes]:
        """Return the consistency proof from size first to size second (default: all)."""
        return consistency_proof_from(self, first, self._size(second))

    def _size(self, size: int | None) -> int:
        if size is None:
            return len(self)
        if not 0 <= size <= len(self):
            raise TreeRangeError(f"expected a tree size in [0, {len(self)}], found {size}")
        return size


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """Compute MTH over a list of leaf hashes (RFC 9162 §2.1.1)."""
    return MemoryTree(leaf_hashes).root()


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int, size: int) -> list[bytes]:
    """Return the inclusion proof of leaf index in the tree of the first size leaf hashes."""
    return MemoryTree(leaf_hashes).inclusion_proof(index, size)


def consistency_proof(leaf_hashes: Sequence[bytes], first: int, second: int) -> list[bytes]:
    """Return the consistency proof between the trees of the first `first` and `second` leaf hashes."""
    return MemoryTree(leaf_hashes).consistency_proof(first, second)


def _expect_hash(name: str, value: bytes, error: type[MerkleError] = ProofError) -> None:
    if len(value) != HASH_SIZE:
        raise error(f"expected {name} of {HASH_SIZE} bytes, found {len(value)} bytes")


def _expect_hashes(proof: Sequence[bytes]) -> None:
    for i, value in enumerate(proof):
        _expect_hash(f"proof[{i}]", value)


def _length_error(want: int, proof: Sequence[bytes], what: str) -> ProofError:
    return ProofError(f"expected {want} proof hashes for {what}, found {len(proof)}")


def _inclusion_length(index: int, size: int) -> int:
    """Return len(PATH(index, D[size])): the inner path plus the right-border hops."""
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def _consistency_length(first: int, second: int) -> int:
    """Return len(PROOF(first, D[second])) for 0 < first < second."""
    shift = (first & -first).bit_length() - 1
    length = _inclusion_length((first - 1) >> shift, ((second - 1) >> shift) + 1)
    return length if first == 1 << shift else length + 1


def _expect_equal(name: str, expected: bytes, found: bytes) -> None:
    if expected != found:
        raise ProofError(f"expected {name} {expected.hex()}, found {found.hex()}")


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Raise ProofError unless proof shows leaf_hash at index in the tree of size with root."""
    if not 0 <= index < size:
        raise ProofError(f"expected a leaf index in [0, {size}), found {index}")
    _expect_hash("leaf hash", leaf_hash)
    _expect_hash("root", root)
    _expect_hashes(proof)
    what = f"leaf {index} of a tree of size {size}"
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            raise _length_error(_inclusion_length(index, size), proof, what)
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise _length_error(_inclusion_length(index, size), proof, what)
    _expect_equal("root", root, r)


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> None:
    """Raise ProofError unless proof shows the tree of size first is a prefix of the one of size second."""
    if not 0 <= first <= second:
        raise ProofError(f"expected 0 <= first <= second, found first={first}, second={second}")
    _expect_hash("first root", first_root)
    _expect_hash("second root", second_root)
    _expect_hashes(proof)
    what = f"sizes {first} and {second}"
    if first == 0 or first == second:  # the empty tree, or the same tree: nothing to prove
        if proof:
            raise _length_error(0, proof, what)
        _expect_equal("first root", EMPTY_ROOT if first == 0 else second_root, first_root)
        return
    if not proof:
        raise _length_error(_consistency_length(first, second), proof, what)
    path = [first_root, *proof] if first & (first - 1) == 0 else list(proof)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise _length_error(_consistency_length(first, second), proof, what)
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise _length_error(_consistency_length(first, second), proof, what)
    _expect_equal("first root", first_root, fr)
    _expect_equal("second root", second_root, sr)
