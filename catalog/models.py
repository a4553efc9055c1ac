"""Catalog tables: domains, assets (metadata only; the data stay on the provider node), authoritative sources."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from common.db import Base, UTCDateTime


class Domain(Base):
    """A classification domain (分类): operator-extensible."""

    __tablename__ = "domains"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    eu_theme: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Asset(Base):
    """A registered data asset (公共数据资源登记). Only metadata: the rows are mounted on the provider's node."""

    __tablename__ = "assets"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    title_zh: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str] = mapped_column(String(200))
    description_zh: Mapped[str] = mapped_column(Text)
    description_en: Mapped[str] = mapped_column(Text)
    domain_code: Mapped[str] = mapped_column(ForeignKey("domains.code"), index=True)
    keywords: Mapped[list[str]] = mapped_column(JSON)
    fields: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    grade: Mapped[int] = mapped_column(Integer, index=True)
    update_frequency: Mapped[str] = mapped_column(String(16))
    license: Mapped[str] = mapped_column(String(200))
    price: Mapped[dict[str, Any]] = mapped_column(JSON)
    node_endpoint: Mapped[str] = mapped_column(String(500))
    pending_node_endpoint: Mapped[str | None] = mapped_column(String(500))  # a change awaiting the operator
    dataset: Mapped[str] = mapped_column(String(100))
    element_codes: Mapped[list[str]] = mapped_column(JSON)
    search_text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    kind_rows: Mapped[list[AssetComputationKind]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="AssetComputationKind.kind"
    )

    @property
    def computation_kinds(self) -> list[str]:
        return [row.kind for row in self.kind_rows]


class AssetComputationKind(Base):
    """A computation kind an asset allows (a table, so that search can filter on it with an index)."""

    __tablename__ = "asset_computation_kinds"

    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True, index=True)


class AuthoritativeSource(Base):
    """一数一源: the one asset that is the authoritative source of a data-element code.

    The primary key on ``code`` makes a second claim impossible even under concurrent writers.
    A claim lives while its asset is a draft or published and is released when the asset is retired.
    """

    __tablename__ = "authoritative_sources"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id"), index=True)
