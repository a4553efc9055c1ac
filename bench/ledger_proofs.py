"""ledger-proofs: proof latency from stored perfect-subtree hashes at 1M entries, against the same at 1k entries.

Both ledgers are SQLite files migrated by Alembic whose ``ledger_nodes`` hold every perfect subtree of the
leaf hashes of synthetic entries, bulk-inserted (the entries table is not needed for proofs), with
``ledger_head.size`` set. Each proof is timed as a request would pay it: a fresh session, then
``merkle.inclusion_proof_from`` / ``consistency_proof_from`` / ``root_from`` through ``ledger.log.DbNodes.run``
(which learns the O(log n) nodes a proof needs and fetches them in one query, as the API does). The
two ledgers are measured alternately, proof by proof. If proofs take O(log n) lookups, the 1M/1k latency
ratio stays near log2(10^6) / log2(10^3) = 2; a linear algorithm would give 1000. A second baseline recomputes
the root from all leaf hashes in memory (``merkle.root``), which is what the stored nodes save.
"""

from __future__ import annotations

import json
import math
import random
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from sqlalchemy.orm import sessionmaker

import migrations
from bench.harness import Comparison, Report, Target, median, percentile, timed
from common.db import build_engine
from ledger import log, merkle

SEED = 9162
SMALL = 1_000
INSERT_BATCH = 200_000
TARGET = Target("<=", 3.0, "O(log n): near log2(1M)/log2(1k) = 2 (a linear algorithm would give 1000)")
START_TIME = "2026-01-01T00:00:00.000000Z"


def synthetic_entry(seq: int) -> bytes:
    """Return canonical-looking entry bytes for leaf ``seq`` (sorted compact JSON, as RFC 8785 gives here)."""
    return json.dumps({"v": 1, "seq": seq, "type": "bench.proof", "time": START_TIME, "actor": "system",
                       "refs": {"asset": [f"ast_{seq:032x}"]}, "body": {"n": seq}, "commit": {},
                       "request": None, "sig": {"actor": None}},
                      sort_keys=True, separators=(",", ":")).encode()


def levels_of(leaves: Sequence[bytes]) -> list[list[bytes]]:
    """Return every perfect-subtree hash, level by level (level k: aligned subtrees of 2**k leaves)."""
    levels = [list(leaves)]
    while len(levels[-1]) > 1:
        below = levels[-1]
        levels.append([merkle.node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)])
    return levels


def build_ledger(path: Path, leaves: Sequence[bytes]):
    """Create a migrated SQLite ledger at ``path`` holding the stored nodes of ``leaves``; return its engine."""
    engine = build_engine(f"sqlite:///{path}")
    migrations.upgrade(engine)
    engine.dispose()
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = OFF")  # a bulk load we can redo: no need to wait for the disk
    rows = ((level, index, value) for level, hashes in enumerate(levels_of(leaves))
            for index, value in enumerate(hashes))
    while True:
        batch = [row for _, row in zip(range(INSERT_BATCH), rows)]
        if not batch:
            break
        connection.execute("BEGIN")
        connection.executemany('INSERT INTO ledger_nodes (level, "index", hash) VALUES (?, ?, ?)', batch)
        connection.execute("COMMIT")
    connection.execute("UPDATE ledger_head SET size = ?, last_time = ? WHERE id = ?",
                       (len(leaves), START_TIME, log.HEAD_ID))
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # serve reads from the database file, as a live log
    connection.close()
    return build_engine(f"sqlite:///{path}")


class CountingReader:
    """A NodeReader that counts the lookups it passes on."""

    def __init__(self, reader: merkle.NodeReader) -> None:
        self.reader = reader
        self.lookups = 0

    def subtree_hash(self, start: int, end: int) -> bytes:
        self.lookups += 1
        return self.reader.subtree_hash(start, end)


@dataclass
class Ledger:
    """One benchmark ledger: its size, session factory and random proof requests."""

    size: int
    sessions: sessionmaker
    rng: random.Random

    def case(self, kind: str) -> tuple[int, ...]:
        """Return random arguments for a proof of ``kind`` on this ledger."""
        n, rng = self.size, self.rng
        if kind == "inclusion":
            size = rng.randint(1, n)
            return rng.randrange(size), size
        if kind == "consistency":
            second = rng.randint(2, n)
            return rng.randint(1, second - 1), second
        return (rng.randint(1, n),)


PROOFS: dict[str, Callable[..., object]] = {
    "inclusion": merkle.inclusion_proof_from,
    "consistency": merkle.consistency_proof_from,
    "root": merkle.root_from,
}


def latency(ledger: Ledger, kind: str, args: tuple[int, ...]) -> float:
    """Return the seconds one proof takes, fresh session included (as one request pays it)."""
    start = time.perf_counter()
    with ledger.sessions() as session:
        log.DbNodes(session).run(PROOFS[kind], *args)
    return time.perf_counter() - start


def lookups(ledger: Ledger, kind: str, cases: list[tuple[int, ...]]) -> float:
    """Return the mean number of stored-node lookups the proofs of ``cases`` make."""
    with ledger.sessions() as session:
        counting = CountingReader(log.DbNodes(session))
        for args in cases:
            PROOFS[kind](counting, *args)
    return counting.lookups / len(cases)


def check(ledger: Ledger, leaves: Sequence[bytes], root: bytes) -> None:
    """Verify the stored tree against the in-memory root and a few proofs, before timing anything."""
    with ledger.sessions() as session:
        nodes = log.DbNodes(session)
        found = merkle.root_from(nodes, ledger.size)
        if found != root:
            raise RuntimeError(f"stored tree root {found.hex()} differs from the in-memory root {root.hex()}")
        rng = random.Random(SEED)
        for _ in range(20):
            index, size = rng.randrange(ledger.size), ledger.size
            merkle.verify_inclusion(leaves[index], index, size, merkle.inclusion_proof_from(nodes, index, size),
                                    root)
            first = rng.randint(1, ledger.size)
            merkle.verify_consistency(first, size, merkle.root_from(nodes, first), root,
                                      merkle.consistency_proof_from(nodes, first, size))


def run(quick: bool = False, profile: bool = False) -> Report:
    """Run the benchmark and return its report."""
    big_size = 100_000 if quick else 1_000_000
    samples = 150 if quick else 400
    report = Report("ledger-proofs", f"proof latency from stored subtree hashes at {big_size:,} entries",
                    {"big": big_size, "small": SMALL, "proofs_per_kind_and_size": samples, "seed": SEED})
    with tempfile.TemporaryDirectory(prefix="pdx-bench-proofs-") as folder:
        started = time.perf_counter()
        big_leaves = [merkle.leaf_hash(synthetic_entry(seq)) for seq in range(big_size)]
        hashed = time.perf_counter()
        big_engine = build_ledger(Path(folder) / "big.sqlite3", big_leaves)
        built = time.perf_counter()
        small_leaves = big_leaves[:SMALL]
        small_engine = build_ledger(Path(folder) / "small.sqlite3", small_leaves)
        holder: dict[str, bytes] = {}
        recompute = timed(lambda: holder.update(root=merkle.root(big_leaves)))
        report.params["build_seconds"] = {"leaf_hashes": round(hashed - started, 1),
                                          "nodes_and_insert": round(built - hashed, 1)}
        try:
            big = Ledger(big_size, sessionmaker(bind=big_engine), random.Random(SEED))
            small = Ledger(SMALL, sessionmaker(bind=small_engine), random.Random(SEED + 1))
            check(big, big_leaves, holder["root"])
            check(small, small_leaves, merkle.root(small_leaves))
            for kind in PROOFS:
                report.comparisons += _measure(kind, big, small, samples)
        finally:
            big_engine.dispose()
            small_engine.dispose()
    root_row = next(c for c in report.comparisons if c.metric.startswith("root_from, median"))
    report.comparisons.append(Comparison(
        "root_from (stored nodes) vs merkle.root (all leaves in memory)", "ms", root_row.value, recompute * 1e3,
        f"merkle.root over all {big_size:,} leaf hashes, once", root_row.value / (recompute * 1e3)))
    report.notes.append(f"log2({big_size:,}) / log2({SMALL:,}) = {math.log2(big_size) / math.log2(SMALL):.2f}: "
                        f"the ratio O(log n) predicts")
    for c in report.comparisons:
        if "lookups_big" in c.extra:
            report.notes.append(f"{c.metric.split(',')[0]}: {c.extra['lookups_big']:.1f} stored nodes per call at "
                                f"{big_size:,} entries, {c.extra['lookups_small']:.1f} at {SMALL:,}, fetched in one "
                                f"query")
    return report


def _measure(kind: str, big: Ledger, small: Ledger, samples: int) -> list[Comparison]:
    times: dict[int, list[float]] = {big.size: [], small.size: []}
    cases: dict[int, list[tuple[int, ...]]] = {big.size: [], small.size: []}
    for number in range(samples):
        pair = (big, small) if number % 2 == 0 else (small, big)
        for ledger in pair:
            args = ledger.case(kind)
            cases[ledger.size].append(args)
            times[ledger.size].append(latency(ledger, kind, args))
    big_ms = [t * 1e3 for t in times[big.size]]
    small_ms = [t * 1e3 for t in times[small.size]]
    extra = {"lookups_big": lookups(big, kind, cases[big.size]),
             "lookups_small": lookups(small, kind, cases[small.size])}
    name = "root_from" if kind == "root" else f"{kind} proof"
    baseline = f"the same on a {small.size:,}-entry ledger"
    return [
        Comparison(f"{name}, median", "ms", median(big_ms), median(small_ms), baseline,
                   median(big_ms) / median(small_ms), TARGET, extra),
        Comparison(f"{name}, p95", "ms", percentile(big_ms, 95), percentile(small_ms, 95), baseline,
                   percentile(big_ms, 95) / percentile(small_ms, 95)),
    ]
