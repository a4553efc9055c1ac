"""Tables of jobs: what was admitted, its tickets and payload, its result, and a federated training's rounds."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from common.db import Base, UTCDateTime


class Job(Base):
    """A computation admitted under a grant (the compute component runs it)."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("grants.id"), index=True)
    consumer_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), index=True)
    computation_kind: Mapped[str] = mapped_column(String(32))
    assets: Mapped[list[str]] = mapped_column(JSON)
    params_sha256: Mapped[str] = mapped_column(String(64))
    context_sha256: Mapped[str | None] = mapped_column(String(64))
    rows_reserved: Mapped[int] = mapped_column(BigInteger)
    epsilon: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class JobTicket(Base):
    """The signed ticket for one provider's part of a job, kept until the compute worker delivers it."""

    __tablename__ = "job_tickets"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), primary_key=True)
    ticket: Mapped[dict[str, Any]] = mapped_column(JSON)
    signature: Mapped[str] = mapped_column(String(100))


class JobPayload(Base):
    """What the consumer sent with a job: its parameters, its public HE context, encrypted weights if scoring."""

    __tablename__ = "job_payloads"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    context: Mapped[bytes | None] = mapped_column(LargeBinary)
    weights: Mapped[bytes | None] = mapped_column(LargeBinary)


class JobResult(Base):
    """The outcome of a job: the summed ciphertext (only the consumer can decrypt it) or the reason it failed."""

    __tablename__ = "job_results"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    result: Mapped[bytes | None] = mapped_column(LargeBinary)
    result_sha256: Mapped[str | None] = mapped_column(String(64))
    receipts: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime())
    release: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the DP noise's calibration (privacy.release)


class JobRound(Base):
    """One round of a federated-learning job: its tickets, the providers that answered, the summed ciphertext."""

    __tablename__ = "job_rounds"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    phase: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # running, completed, failed
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    tickets: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    contributors: Mapped[list[str]] = mapped_column(JSON, default=list)
    dropped: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    rows: Mapped[int] = mapped_column(BigInteger, default=0)
    result: Mapped[bytes | None] = mapped_column(LargeBinary)
    result_sha256: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class JobTraining(Base):
    """What the consumer reported when it finished a federated training: per-round metrics, each provider's
    contribution (kept for sharing revenue), and the hash of the final model."""

    __tablename__ = "job_trainings"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    model_sha256: Mapped[str] = mapped_column(String(64))
    metrics: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    contributions: Mapped[dict[str, float]] = mapped_column(JSON)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime())
