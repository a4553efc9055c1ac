"""Database plumbing: the declarative base, engines, and the unit of work the services run in.

The engine is built by ``init_app`` (never at import time) and kept in ``app.extensions``. A request gets one
session; writes go through ``unit_of_work()``, which commits everything done inside it in one transaction or
rolls all of it back. On SQLite a write transaction starts with ``BEGIN IMMEDIATE`` so that concurrent writers
queue on the database lock instead of failing when they upgrade a read lock; the file is created 0600 and every
commit is synced (``synchronous = FULL``) before it is acknowledged.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from flask import Flask, current_app, g
from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from common import keyfiles

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

EXTENSION_KEY = "pdx.db"
_BEGIN_OPTION = "pdx_sqlite_begin"
SQLITE_BUSY_TIMEOUT_MS = 30_000


class Base(DeclarativeBase):
    """Declarative base of every pdx table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC timestamp on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def utcnow() -> datetime:
    """Return the current time in UTC, to the microsecond."""
    return datetime.now(timezone.utc)


def new_id(prefix: str) -> str:
    """Return a fresh public identifier such as ``ast_3f0c…``: the prefix tells the kind of resource."""
    return f"{prefix}_{uuid.uuid4().hex}"


def _configure_sqlite(engine: Engine) -> None:
    """Turn on foreign keys and WAL, and let the unit of work choose the BEGIN mode.

    pysqlite's own transaction handling is switched off (the SQLAlchemy-documented recipe) so that the
    ``begin`` event below emits the BEGIN itself.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # FULL: a commit is on disk before it is acknowledged, also across a power loss (WAL's NORMAL would
        # keep the database consistent but could drop the last acknowledged commits).
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        mode = connection.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


def build_engine(url: str, echo: bool = False) -> Engine:
    """Create an engine for ``url`` with the settings pdx needs on that backend."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
            keyfiles.create_private(Path(parsed.database))  # contact e-mails, salts, job payloads: owner only
        engine = create_engine(url, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        _configure_sqlite(engine)
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True)


class Database:
    """The engine and session factory of one app."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessionmaker = sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        """Yield a session in a write transaction that commits on success and rolls back on any error."""
        with self.sessionmaker() as session, session.begin():
            if self.is_sqlite:
                # The first connection of the transaction carries the option that the begin event reads.
                session.connection(execution_options={_BEGIN_OPTION: "IMMEDIATE"})
            yield session


def init_app(app: Flask, url: str, echo: bool = False) -> Database:
    """Bind a new engine for ``url`` to ``app`` and close request sessions on teardown."""
    database = Database(build_engine(url, echo=echo))
    app.extensions[EXTENSION_KEY] = database

    @app.teardown_appcontext
    def _close_session(_exc):
        session = g.pop("pdx_session", None)
        if session is not None:
            session.close()

    return database


def get_database() -> Database:
    """Return the database of the current app."""
    return current_app.extensions[EXTENSION_KEY]


def read_session() -> Session:
    """Return the current request's read session (opened on first use, closed at teardown)."""
    if "pdx_session" not in g:
        g.pdx_session = get_database().sessionmaker()
    return g.pdx_session


@contextlib.contextmanager
def unit_of_work() -> Iterator[Session]:
    """Run a write in one transaction of the current app's database; see ``Database.transaction``."""
    with get_database().transaction() as session:
        yield session
