"""Alembic environment: runs migrations on the connection pdx hands over, or on the configured URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from authorization import model as _authorization_model  # noqa: F401
from catalog import models as _catalog_models  # noqa: F401  (registers the tables)
from common.db import Base
from jobs import model as _job_model  # noqa: F401
from ledger import models as _ledger_models  # noqa: F401
from ledger.anchor import models as _anchor_models  # noqa: F401
from participants import models as _participant_models  # noqa: F401

target_metadata = Base.metadata


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = create_engine(context.config.get_main_option("sqlalchemy.url"))
    with engine.begin() as own_connection:
        _run(own_connection)
