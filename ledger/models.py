"""Ledger tables: entries, stored perfect-subtree hashes, the head row (the append lock), checkpoints, and the
outcome of the last state check (the tables compared with the log, ``exchange.state_check``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from common.db import Base, UTCDateTime


class LedgerHead(Base):
    """The single row appenders lock: the log's size, the time of its last entry, and the tree's right edge
    (the frontier: roots of its perfect subtrees, largest first), which is all an append needs to read."""

    __tablename__ = "ledger_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    last_time: Mapped[str] = mapped_column(String(32))
    frontier: Mapped[bytes] = mapped_column(LargeBinary)


class LedgerEntry(Base):
    """One log entry: its canonical bytes and leaf hash, plus columns copied out of it for querying."""

    __tablename__ = "ledger_entries"
    __table_args__ = (UniqueConstraint("actor", "nonce"),)

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    operator_sig: Mapped[str] = mapped_column(String(100))
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32), index=True)
    type: Mapped[str] = mapped_column(String(64), index=True)
    actor: Mapped[str] = mapped_column(String(40), index=True)
    nonce: Mapped[str | None] = mapped_column(String(64))


class LedgerParty(Base):
    """A participant an entry concerns (it may read that entry)."""

    __tablename__ = "ledger_parties"

    seq: Mapped[int] = mapped_column(ForeignKey("ledger_entries.seq"), primary_key=True)
    participant_id: Mapped[str] = mapped_column(String(40), primary_key=True, index=True)


class LedgerNode(Base):
    """The hash of the perfect subtree (level, index): leaves [index·2^level, (index+1)·2^level)."""

    __tablename__ = "ledger_nodes"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class LedgerCheckpoint(Base):
    """A checkpoint the log signed: at most one per tree size."""

    __tablename__ = "ledger_checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LedgerCosignature(Base):
    """A witness's cosignature line on a checkpoint."""

    __tablename__ = "ledger_cosignatures"

    size: Mapped[int] = mapped_column(ForeignKey("ledger_checkpoints.size"), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    witness_id: Mapped[str] = mapped_column(String(40), index=True)
    key_id: Mapped[str] = mapped_column(String(64))
    line: Mapped[str] = mapped_column(Text)
    timestamp: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LedgerOpening(Base):
    """The salt of a commitment in an entry, so the operator can open it to a regulator on demand."""

    __tablename__ = "ledger_openings"

    seq: Mapped[int] = mapped_column(ForeignKey("ledger_entries.seq"), primary_key=True)
    field: Mapped[str] = mapped_column(String(64), primary_key=True)
    salt: Mapped[str] = mapped_column(String(64))


class RequestNonce(Base):
    """A signed request's nonce, kept for twice the signature window, so that no signed request runs twice
    (also those that change state without a ledger entry, such as a draft)."""

    __tablename__ = "request_nonces"

    participant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class StateCheck(Base):
    """The outcome of the last state check (one row, ``latest``): what every server process's gate reads."""

    __tablename__ = "state_checks"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    ok: Mapped[bool] = mapped_column(Boolean)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ledger_size: Mapped[int] = mapped_column(BigInteger)
    count: Mapped[int] = mapped_column(Integer)
    differences: Mapped[list[str]] = mapped_column(JSON)
