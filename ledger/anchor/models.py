"""Chain tables: the deployment, the queue of anchors and grant mirrors waiting for the chain, the sender's state.

Mirrors are queued in the same transaction as the grant change they record, so none is lost; anchors are queued
when the sender signs a checkpoint. The sender marks rows sent as it confirms them on the chain.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from common.db import Base, UTCDateTime

PENDING, CONFIRMED, SUPERSEDED = "pending", "confirmed", "superseded"
STATE_ID = 1


class ChainDeployment(Base):
    """Where the exchange's contracts live: one row, written by `pdx chain deploy`."""

    __tablename__ = "chain_deployments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    anchor_address: Mapped[str] = mapped_column(String(42))
    registry_address: Mapped[str] = mapped_column(String(42))
    sender: Mapped[str] = mapped_column(String(42))
    block_number: Mapped[int] = mapped_column(BigInteger)
    ledger_seq: Mapped[int] = mapped_column(BigInteger)  # the `chain.deployed` entry
    deployed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ChainState(Base):
    """The sender's lease (one leader among the server's processes) and its retry state."""

    __tablename__ = "chain_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lease_owner: Mapped[str | None] = mapped_column(String(80))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failures: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ChainAnchor(Base):
    """A signed checkpoint to anchor; a newer pending one supersedes it (an anchor covers every smaller tree)."""

    __tablename__ = "chain_anchors"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    checkpoint_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    state: Mapped[str] = mapped_column(String(12), index=True, default=PENDING)
    enqueued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    block_number: Mapped[int | None] = mapped_column(BigInteger)


class ChainMirror(Base):
    """A grant status change (a mark, see ledger.anchor.records) to record in the GrantRegistry."""

    __tablename__ = "chain_mirrors"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    grant_id: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))
    terms_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    valid_from: Mapped[int] = mapped_column(BigInteger)
    valid_until: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(12), index=True, default=PENDING)
    enqueued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    tx_hash: Mapped[str | None] = mapped_column(String(66))
