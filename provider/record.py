"""The node's own append-only record (SQLite in its state folder): ticket nonces used and jobs served.

It is the node's evidence, independent of the exchange: what it computed, for which ticket, on how many rows,
and the hash of what it returned. The nonce table is also what makes a ticket single-use across restarts.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime
from pathlib import Path

from common.keyfiles import create_private

SCHEMA = """
CREATE TABLE IF NOT EXISTS used_nonces (nonce TEXT PRIMARY KEY, expires_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS served_jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, job TEXT NOT NULL, grant_id TEXT NOT NULL, operation TEXT NOT NULL,
    assets TEXT NOT NULL, rows_used INTEGER NOT NULL, result_sha256 TEXT NOT NULL, served_at TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS served_jobs_append_only BEFORE UPDATE ON served_jobs
    BEGIN SELECT RAISE(ABORT, 'the record of served jobs is append-only'); END;
CREATE TRIGGER IF NOT EXISTS served_jobs_no_delete BEFORE DELETE ON served_jobs
    BEGIN SELECT RAISE(ABORT, 'the record of served jobs is append-only'); END;
"""


class NodeRecord:
    """Thread-safe access to the node's SQLite record (also a ``tickets.NonceStore``)."""

    def __init__(self, state_dir: Path) -> None:
        path = state_dir / "node.sqlite3"
        create_private(path)  # job payload hashes and grants: the owner's only
        self._connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._connection.executescript("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;" + SCHEMA)
        self._lock = threading.Lock()

    def use(self, nonce: str, expires_at: datetime) -> bool:
        """Record a ticket nonce; False if it was already used."""
        with self._lock:
            try:
                self._connection.execute("INSERT INTO used_nonces VALUES (?, ?)", (nonce, expires_at.isoformat()))
            except sqlite3.IntegrityError:
                return False
            return True

    def served(self, *, job: str, grant: str, operation: str, assets: list[str], rows: int, result_sha256: str,
               served_at: datetime) -> int:
        """Append one served job and return its sequence number."""
        with self._lock:
            cursor = self._connection.execute(
                "INSERT INTO served_jobs (job, grant_id, operation, assets, rows_used, result_sha256, served_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (job, grant, operation, ",".join(assets), rows, result_sha256, served_at.isoformat()))
            return int(cursor.lastrowid)

    def jobs(self) -> list[tuple]:
        """Return every served job, oldest first."""
        with self._lock:
            return list(self._connection.execute("SELECT job, grant_id, operation, assets, rows_used, "
                                                 "result_sha256, served_at FROM served_jobs ORDER BY seq"))

    def close(self) -> None:
        self._connection.close()
