"""One error shape for every HTTP error: RFC 9457 problem details, mapped here and nowhere else."""

from __future__ import annotations

import http
import logging
from typing import Any, Callable, Mapping

from flask import Flask, Response, json
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from marshmallow import INCLUDE, Schema, fields
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException, InternalServerError

from common.errors import PdxError
from ledger.errors import LedgerError
from ledger.log import ReplayedRequest

PROBLEM_TYPE_BASE = "urn:pdx:problem:"
MEDIA_TYPE = "application/problem+json"
RESERVED_MEMBERS = frozenset({"type", "title", "status", "detail", "instance", "errors"})
# Titles of the slugs pdx uses; HTTP errors from Werkzeug/webargs get the same title as domain errors.
TITLES = {"bad-request": "Bad request", "unauthenticated": "Authentication required", "forbidden": "Forbidden",
          "not-found": "Not found", "method-not-allowed": "Method not allowed", "conflict":
          "Conflict with the resource's state", "body-too-large": "Request body too large",
          "unsupported-media-type": "Unsupported media type", "invalid-input": "Invalid input",
          "too-many-requests": "Too many requests"}

log = logging.getLogger(__name__)


def problem(status: int, slug: str, title: str, detail: str, *, errors: Mapping[str, list[str]] | None = None,
            extra: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None) -> Response:
    """Build a problem-details response."""
    body: dict[str, Any] = {"type": PROBLEM_TYPE_BASE + slug, "title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = {field: list(messages) for field, messages in errors.items()}
    # Extension members never replace the standard ones (RFC 9457 §3.2).
    body.update({key: value for key, value in (extra or {}).items() if key not in RESERVED_MEMBERS})
    response = Response(json.dumps(body, ensure_ascii=False), status=status, mimetype=MEDIA_TYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def flatten_messages(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Flatten marshmallow's nested messages into ``{"fields.0.name": [...]}``."""
    if isinstance(messages, Mapping):
        flat: dict[str, list[str]] = {}
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            flat.update(flatten_messages(value, name))
        return flat
    if isinstance(messages, (list, tuple)) and all(isinstance(m, str) for m in messages):
        return {prefix or "_body": list(messages)}
    if isinstance(messages, (list, tuple)):
        flat = {}
        for index, value in enumerate(messages):
            flat.update(flatten_messages(value, f"{prefix}.{index}" if prefix else str(index)))
        return flat
    return {prefix or "_body": [str(messages)]}


def _http_slug(code: int) -> str:
    return {400: "bad-request", 401: "unauthenticated", 403: "forbidden", 404: "not-found",
            405: "method-not-allowed", 409: "conflict", 413: "body-too-large", 415: "unsupported-media-type",
            422: "invalid-input", 429: "too-many-requests"}.get(code, f"http-{code}")


def from_http_exception(error: HTTPException) -> Response:
    """Render a Werkzeug/webargs HTTP error as a problem."""
    code = error.code or 500
    if code >= 500:
        return problem(500, "internal-error", "Internal error", "the server could not complete the request")
    data = getattr(error, "data", None) or {}
    errors = None
    messages = data.get("messages") or data.get("errors")
    if messages:
        # webargs nests messages under the request location ("json", "query", ...); the field names suffice.
        errors = {}
        for location_messages in messages.values():
            errors.update(flatten_messages(location_messages))
    detail = data.get("message") or error.description or error.name
    if errors and code == 422:
        detail = "the request has invalid fields: " + ", ".join(sorted(errors))
    elif errors and "_body" in errors:
        detail = "; ".join(errors["_body"])
    headers = dict(data.get("headers") or {})
    if code == 405 and error.get_response().headers.get("Allow"):
        headers["Allow"] = error.get_response().headers["Allow"]
    slug = _http_slug(code)
    return problem(code, slug, TITLES.get(slug, error.name), detail, errors=errors, headers=headers)


def from_pdx_error(error: PdxError) -> Response:
    """Render a domain error as a problem."""
    headers = {"WWW-Authenticate": 'Bearer realm="pdx"'} if error.status == 401 else None
    return problem(error.status, error.slug, error.title, error.detail, errors=error.errors, extra=error.extra,
                   headers=headers)


def from_integrity_error(error: IntegrityError) -> Response:
    """A uniqueness or reference race the services did not foresee: a conflict to retry, not a server error."""
    log.warning("integrity error mapped to 409: %s", error.orig)
    return problem(409, "conflict", TITLES["conflict"],
                   "the change conflicts with a concurrent change to the same resource; read it again and retry")


def from_ledger_error(error: LedgerError) -> Response:
    """A replayed signed request is a conflict; any other ledger failure means the ledger is not usable."""
    if isinstance(error, ReplayedRequest):
        return problem(409, "replayed-request", "Replayed request", str(error))
    log.error("ledger unavailable: %s", error)
    return problem(503, "unavailable", "Service unavailable", str(error))


def register(app: Flask) -> None:
    """Install the problem handlers on ``app``."""
    app.register_error_handler(LedgerError, from_ledger_error)
    app.register_error_handler(PdxError, from_pdx_error)
    app.register_error_handler(HTTPException, from_http_exception)
    app.register_error_handler(IntegrityError, from_integrity_error)

    @app.errorhandler(InternalServerError)
    def _internal(error: InternalServerError) -> Response:
        original = getattr(error, "original_exception", None)
        if original is not None:
            log.error("unhandled error", exc_info=original)
        return problem(500, "internal-error", "Internal error", "the server could not complete the request")


class ProblemSchema(Schema):
    """RFC 9457 problem details, the body of every error response.

    A problem may carry extension members (RFC 9457 §3.2) that say more about its kind, such as
    ``required_roles``, ``current_status`` or ``limit``; the document allows them.
    """

    class Meta:
        unknown = INCLUDE

    type = fields.String(metadata={"description": "urn:pdx:problem:<slug>"})
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()),
                         metadata={"description": "messages per field (dotted paths for nested fields)"})


class PdxApi(Api):
    """flask-smorest's Api with every HTTP error rendered as RFC 9457 problem details."""

    ERROR_SCHEMA = ProblemSchema

    def handle_http_exception(self, error):
        return from_http_exception(error)

    def _register_responses(self) -> None:
        """Register a response per status as flask-smorest does, errors with the media type they are sent with."""
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, MEDIA_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Any other error, a server error above all", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, MEDIA_TYPE)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)


def answers(blp, status: int, why: str) -> Callable:
    """Declare a problem status a view answers beyond those derived from its shape (see ``exchange.apidoc``)."""
    return blp.alt_response(status, schema=ProblemSchema, content_type=MEDIA_TYPE, description=why)
