"""Tables of grants (authorization requests become grants), provider decisions and scenario assets."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from common.db import Base, UTCDateTime


class Grant(Base):
    """An authorization from request to end: its kind and scope, current terms, status and usage so far."""

    __tablename__ = "grants"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    consumer_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(20), index=True)
    domain: Mapped[str | None] = mapped_column(ForeignKey("domains.code"))
    max_grade: Mapped[int | None] = mapped_column(Integer)
    scenario: Mapped[str | None] = mapped_column(String(200))
    purpose: Mapped[str | None] = mapped_column(Text)
    terms: Mapped[dict[str, Any]] = mapped_column(JSON)
    requested_terms: Mapped[dict[str, Any]] = mapped_column(JSON)
    counter_terms: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    countered_by: Mapped[str | None] = mapped_column(String(40))
    needs_regulator: Mapped[bool] = mapped_column(Boolean)
    core_exception: Mapped[bool] = mapped_column(Boolean, default=False)
    dp_exception: Mapped[bool] = mapped_column(Boolean, default=False)  # statistics without ε on grade ≥ 3
    regulator_id: Mapped[str | None] = mapped_column(String(40))
    renewal_of: Mapped[str | None] = mapped_column(ForeignKey("grants.id"))
    jobs_used: Mapped[int] = mapped_column(Integer, default=0)
    rows_used: Mapped[int] = mapped_column(BigInteger, default=0)
    epsilon_used: Mapped[float] = mapped_column(Float, default=0.0)
    end_reason: Mapped[str | None] = mapped_column(Text)
    mark_status: Mapped[str | None] = mapped_column(String(20))  # the last mirrored status (ledger.anchor.records)
    mark_seq: Mapped[int | None] = mapped_column(BigInteger)  # the ledger entry that set it
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    parties: Mapped[list[GrantProvider]] = relationship(cascade="all, delete-orphan", lazy="selectin",
                                                        order_by="GrantProvider.provider_id")
    asset_rows: Mapped[list[GrantAsset]] = relationship(cascade="all, delete-orphan", lazy="selectin",
                                                        order_by="GrantAsset.asset_id")

    @property
    def providers(self) -> list[str]:
        return [party.provider_id for party in self.parties]

    @property
    def assets(self) -> list[str]:
        return [row.asset_id for row in self.asset_rows]


class GrantProvider(Base):
    """A provider whose approval the grant needs, and its decision."""

    __tablename__ = "grant_providers"

    grant_id: Mapped[str] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), primary_key=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), primary_key=True, index=True)
    decision: Mapped[str] = mapped_column(String(16))  # pending, approved, countered, rejected
    reason: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class GrantAsset(Base):
    """An asset a per-scenario grant names."""

    __tablename__ = "grant_assets"

    grant_id: Mapped[str] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), primary_key=True)
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id"), primary_key=True)


class GrantRefusal(Base):
    """One refused probe under a grant: an admission refusal of a statistics job, or a node's refusal that may
    depend on the data (counted towards the grant's refusal alerts, never shown to its consumer)."""

    __tablename__ = "grant_refusals"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("grants.id"), index=True)
    source: Mapped[str] = mapped_column(String(16))  # "admission" or "node"
    cause: Mapped[str] = mapped_column(String(200))
    job_id: Mapped[str | None] = mapped_column(String(40))
    refused_at: Mapped[datetime] = mapped_column(UTCDateTime())


class GrantAlert(Base):
    """A run of refusals on one grant within the alert window, raised to its providers and the regulator."""

    __tablename__ = "grant_alerts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("grants.id"), index=True)
    refusals: Mapped[int] = mapped_column(Integer)
    threshold: Mapped[int] = mapped_column(Integer)
    window_seconds: Mapped[int] = mapped_column(Integer)
    causes: Mapped[dict[str, Any]] = mapped_column(JSON)
    jobs: Mapped[list[str]] = mapped_column(JSON)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime())
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    ledger_seq: Mapped[int] = mapped_column(BigInteger)
