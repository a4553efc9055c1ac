"""ledger-append: durable appends per second through the real path, against raw sqlite3 inserts of the same bytes.

The pdx arm is what a service does: ``create_app`` with a log key, the Alembic migrations, then inside an app
context ``ledger.service.unit_of_work()`` and ``uow.ledger.append(Draft(...))`` — one entry per transaction, and
100 entries per transaction (group commit). The baseline arm inserts the canonical entry bytes the pdx arm just
wrote, with their 32-byte leaf hash, into a plain table of another SQLite file opened with the same pragmas
(WAL, synchronous=NORMAL, BEGIN IMMEDIATE). "Durable" here means what synchronous=NORMAL in WAL mode gives: a
commit survives the process crashing, not the machine losing power (no fsync per commit), on both arms alike.

A third arm builds the same entries without any database (RFC 8785 canonical JSON, Ed25519 signature, leaf
hash): raw insert + build is the ceiling for any implementation that signs each entry in-process.
"""

from __future__ import annotations

import hashlib
import sqlite3
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import migrations
from app import create_app
from bench.harness import Comparison, Report, Target, interleave, median, profile_call, round_ratios, timed
from common import keyfiles
from common.db import get_database
from ledger import entries, merkle, service
from ledger.entries import Draft

ENTRY_TYPE = "bench.append"
ORIGIN = "bench.pdx/ledger"
GROUP = 100  # entries per transaction in the group-commit mode
RAW_REPEATS = 3  # the raw arm is ~50x faster: repeat it within a round and keep its median, to tame noise
TARGET = Target(">=", 0.5, "the issue: the ledger append path reaches at least 50 % of raw SQLite inserts")
RAW_PRAGMAS = ("PRAGMA foreign_keys = ON", "PRAGMA busy_timeout = 30000", "PRAGMA journal_mode = WAL",
               "PRAGMA synchronous = NORMAL")  # exactly what common.db sets on every pdx connection
PROFILED_SQLALCHEMY = {"flush", "get", "scalar", "execute", "commit", "begin", "connection"}
PROFILED_C = ("<method 'commit' of 'sqlite3", "<method 'execute' of 'sqlite3", "<method 'sign' of")


def body(number: int) -> dict[str, object]:
    """Return a realistic 500-byte entry body (an asset publication)."""
    return {"provider": f"prt_{number:032x}", "domain": "market", "grade": 1 + number % 4,
            "computation_kinds": ["aggregate", "he-statistics", "federated-learning"],
            "authoritative_for": [f"MR.ENT.{number % 10**6:06d}", f"MR.ENT.{(number + 1) % 10**6:06d}"],
            "title_zh": "市场主体登记信息（企业基本信息、股东及出资、变更记录）",
            "title_en": "Market entity registrations: enterprise basics, shareholders and capital contributions, "
                        "change history",
            "metadata_sha256": hashlib.sha256(str(number).encode()).hexdigest()}


def draft(number: int) -> Draft:
    """Return the system entry the benchmark appends as its ``number``-th."""
    return Draft(ENTRY_TYPE, entries.SYSTEM_ACTOR,
                 refs={"asset": [f"ast_{number:032x}"], "participant": [f"prt_{number:032x}"]}, body=body(number))


class PdxArm:
    """Appends through create_app + unit_of_work, and reads back the bytes it wrote for the raw arm."""

    def __init__(self, folder: Path) -> None:
        instance = folder / "instance"
        keyfiles.generate(instance / "log.key")
        self.path = folder / "pdx.sqlite3"
        self.app = create_app({"DATABASE_URL": f"sqlite:///{self.path}", "INSTANCE_DIR": str(instance),
                               "LEDGER_ORIGIN": ORIGIN})
        self.context = self.app.app_context()
        self.context.push()
        migrations.upgrade(get_database().engine)
        with service.unit_of_work() as uow:
            service.append_genesis(uow)
        self.key = service.identity().key
        self.count = 1
        self.written: list[tuple[bytes, bytes]] = []

    def close(self) -> None:
        get_database().engine.dispose()
        self.context.pop()

    def _drafts(self, n: int) -> list[Draft]:
        drafts = [draft(self.count + i) for i in range(n)]
        self.count += n
        return drafts

    def one_per_transaction(self, n: int) -> float:
        """Append n entries, one transaction each; return appends per second."""
        drafts = self._drafts(n)

        def run() -> None:
            for item in drafts:
                with service.unit_of_work() as uow:
                    uow.ledger.append(item)

        rate = n / timed(run)
        self._read_back(n)
        return rate

    def grouped(self, n: int) -> float:
        """Append n entries, GROUP per transaction; return appends per second."""
        drafts = self._drafts(n)
        groups = [drafts[i:i + GROUP] for i in range(0, n, GROUP)]

        def run() -> None:
            for group in groups:
                with service.unit_of_work() as uow:
                    for item in group:
                        uow.ledger.append(item)

        rate = n / timed(run)
        self._read_back(n)
        return rate

    def _read_back(self, n: int) -> None:
        with sqlite3.connect(self.path) as connection:
            rows = connection.execute("SELECT data, leaf_hash FROM ledger_entries ORDER BY seq DESC LIMIT ?",
                                      (n,)).fetchall()
        self.written = rows[::-1]


class RawArm:
    """Inserts given (entry bytes, leaf hash) rows into a plain table with the pdx pragmas."""

    def __init__(self, path: Path) -> None:
        self.connection = sqlite3.connect(path, isolation_level=None)
        for pragma in RAW_PRAGMAS:
            self.connection.execute(pragma)
        self.connection.execute("CREATE TABLE entries (seq INTEGER PRIMARY KEY, data BLOB NOT NULL, "
                                "leaf_hash BLOB NOT NULL)")
        self.count = 0

    def close(self) -> None:
        self.connection.close()

    def _rows(self, written: list[tuple[bytes, bytes]]) -> list[tuple[int, bytes, bytes]]:
        rows = [(self.count + i, data, leaf) for i, (data, leaf) in enumerate(written)]
        self.count += len(rows)
        return rows

    def one_per_transaction(self, written: list[tuple[bytes, bytes]]) -> float:
        """Insert the rows, one transaction each, RAW_REPEATS times; return the median inserts per second."""
        execute = self.connection.execute

        def once() -> float:
            rows = self._rows(written)

            def run() -> None:
                for row in rows:
                    execute("BEGIN IMMEDIATE")
                    execute("INSERT INTO entries (seq, data, leaf_hash) VALUES (?, ?, ?)", row)
                    execute("COMMIT")

            return len(rows) / timed(run)

        return median([once() for _ in range(RAW_REPEATS)])

    def grouped(self, written: list[tuple[bytes, bytes]]) -> float:
        """Insert the rows, GROUP per transaction (one INSERT each), RAW_REPEATS times; return the median rate."""
        execute = self.connection.execute

        def once() -> float:
            rows = self._rows(written)
            groups = [rows[i:i + GROUP] for i in range(0, len(rows), GROUP)]

            def run() -> None:
                for group in groups:
                    execute("BEGIN IMMEDIATE")
                    for row in group:
                        execute("INSERT INTO entries (seq, data, leaf_hash) VALUES (?, ?, ?)", row)
                    execute("COMMIT")

            return len(rows) / timed(run)

        return median([once() for _ in range(RAW_REPEATS)])


def build_rate(key, first: int, n: int) -> float:
    """Build n entries as LedgerWriter.append does, without a database; return entries per second."""
    drafts = [draft(first + i) for i in range(n)]
    stamp = entries.format_time(datetime.now(timezone.utc))

    def run() -> None:
        for seq, item in enumerate(drafts, first):
            data, _ = entries.build(item, seq=seq, time=stamp, request=None, commit={}, operator_key=key)
            merkle.leaf_hash(data)

    return n / timed(run)


def _mode(pdx_run: Callable[[int], float], raw_run: Callable[[list], float], pdx: PdxArm,
          chunk: int, rounds: int) -> dict[str, list[float]]:
    if not pdx.written:
        pdx_run(chunk)  # the raw arm needs bytes the pdx arm wrote
    return interleave({"pdx": lambda: pdx_run(chunk), "raw": lambda: raw_run(pdx.written),
                       "build": lambda: build_rate(pdx.key, 10**9, chunk)}, rounds)


def _comparisons(label: str, samples: dict[str, list[float]]) -> list[Comparison]:
    pdx, raw, build = samples["pdx"], samples["raw"], samples["build"]
    ceiling = [1 / (1 / r + 1 / b) for r, b in zip(raw, build)]
    unit = "appends/s"
    return [
        Comparison(f"append, {label}", unit, median(pdx), median(raw), "raw sqlite3 insert of the same bytes",
                   median(round_ratios(pdx, raw)), TARGET,
                   {"pdx_min": min(pdx), "pdx_max": max(pdx), "raw_min": min(raw), "raw_max": max(raw)}),
        Comparison(f"ceiling, {label}", unit, median(ceiling), median(raw),
                   "raw insert; ceiling = raw insert + entry build (RFC 8785, Ed25519, leaf hash)",
                   median(round_ratios(ceiling, raw)), None, {"build_per_s": median(build)}),
        Comparison(f"append vs ceiling, {label}", unit, median(pdx), median(ceiling),
                   "raw insert + entry build, no ORM", median(round_ratios(pdx, ceiling))),
    ]


def _profiled(file: str, function: str) -> bool:
    """Keep pdx's own functions, the SQLAlchemy session calls they make, and the C calls underneath."""
    return ("/ledger/" in file or "/common/" in file or file.endswith("rfc8785/_impl.py") and function == "dumps"
            or file.endswith("sqlalchemy/orm/session.py") and function in PROFILED_SQLALCHEMY
            or file == "~" and function.startswith(PROFILED_C)) and "<genexpr>" not in function


def _profile(pdx: PdxArm, chunk: int) -> list[str]:
    """Profile one chunk of each mode and return where the time goes."""
    lines = []
    for label, run in (("1 entry per transaction", pdx.one_per_transaction),
                       (f"{GROUP} entries per transaction", pdx.grouped)):
        lines.append(f"profile, {chunk} appends, {label} (cProfile adds overhead to Python code):")
        lines += profile_call(lambda: run(chunk), chunk, "append", _profiled)
    return lines


def run(quick: bool = False, profile: bool = False) -> Report:
    """Run the benchmark and return its report."""
    per_mode = 600 if quick else 3000
    rounds = 3 if quick else 6
    chunk = per_mode // rounds
    report = Report("ledger-append", "durable appends per second on SQLite",
                    {"entries_per_mode": per_mode, "rounds": rounds, "chunk": chunk, "group": GROUP,
                     "raw_repeats_per_round": RAW_REPEATS, "warmup_rounds": 1})
    with tempfile.TemporaryDirectory(prefix="pdx-bench-append-") as folder:
        pdx = PdxArm(Path(folder))
        raw = RawArm(Path(folder) / "raw.sqlite3")
        try:
            single = _mode(pdx.one_per_transaction, raw.one_per_transaction, pdx, chunk, rounds)
            grouped = _mode(pdx.grouped, raw.grouped, pdx, chunk, rounds)
            report.comparisons += _comparisons("1 entry per transaction", single)
            report.comparisons += _comparisons(f"{GROUP} entries per transaction", grouped)
            sizes = [len(data) for data, _ in pdx.written]
            report.params["entry_bytes"] = round(sum(sizes) / len(sizes))
            if profile:
                report.profile += _profile(pdx, chunk)
        finally:
            raw.close()
            pdx.close()
    report.notes.append(f"entries are ~{report.params['entry_bytes']} bytes (a 500-byte body); {rounds} measured "
                        f"rounds of {chunk} appends per mode after one warm-up round, arms rotated each round")
    report.notes.append("the ceiling rows: even with free database writes, building and signing each entry "
                        "(RFC 8785 + Ed25519 + SHA-256) bounds pdx/raw at the ceiling ratio")
    return report
