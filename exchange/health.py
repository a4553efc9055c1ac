"""Liveness and readiness: the only endpoint besides the catalog and the API docs that needs no token."""

from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields
from sqlalchemy.exc import SQLAlchemyError

import migrations
from common.db import get_database
from web.problems import answers, problem

blp = Blueprint("health", __name__, url_prefix="/api/v1", description="Service health")


class Health(Schema):
    status = fields.String()
    database = fields.String()
    schema_revision = fields.String()


@blp.get("/health")
@blp.response(200, Health)
@answers(blp, 503, "the database is unreachable or not migrated")
def health():
    """Tell whether the service answers and its database is reachable and migrated to the code's schema."""
    engine = get_database().engine
    try:
        revision = migrations.current(engine)
    except SQLAlchemyError:
        return problem(503, "unavailable", "Service unavailable", "the database does not answer")
    if revision != migrations.head():
        return problem(503, "unavailable", "Service unavailable",
                       f"the database is at schema {revision or 'none'}, the code needs {migrations.head()}; "
                       f"run `pdx db upgrade`")
    return {"status": "ok", "database": engine.dialect.name, "schema_revision": revision}
