"""The migrations build exactly the schema the models describe, and seed the domain vocabulary."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from catalog.models import Domain
from common.db import Base, build_engine

pytestmark = pytest.mark.sql  # the schema the migrations build


def test_migrated_schema_matches_the_models(database_url):
    engine = build_engine(database_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert differences == []


def test_default_domains_are_seeded(database_url):
    engine = build_engine(database_url)
    with engine.connect() as connection:
        codes = set(connection.execute(select(Domain.code)).scalars())
    engine.dispose()
    assert {"transport", "health", "market-regulation", "natural-resources", "ecology", "social-security", "tax",
            "education", "public-safety", "agriculture"} <= codes
