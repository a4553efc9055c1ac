"""Liveness and readiness: the only endpoint besides the catalog and the API docs that needs no token."""

from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields
from sqlalchemy import text

from common.db import read_session

blp = Blueprint("health", __name__, url_prefix="/api/v1", description="Service health")


class Health(Schema):
    status = fields.String()
    database = fields.String()


@blp.get("/health")
@blp.response(200, Health)
def health():
    """Tell whether the service and its database answer."""
    session = read_session()
    session.execute(text("SELECT 1"))
    return {"status": "ok", "database": session.get_bind().dialect.name}
