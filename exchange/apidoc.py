"""The error answers each operation of the OpenAPI document declares, derived from what the operation is.

Every error is an RFC 9457 problem (``application/problem+json``). The statuses an operation can answer follow
from the machinery it passes through, so they are declared here once rather than on each view:

- every operation: 422 (a control character in the URL, or invalid query arguments), 429 (rate limits), and 414
  (a request line longer than gunicorn accepts: answered by the HTTP server before the exchange, so not as a
  problem);
- a method that carries a body (POST, PUT, PATCH, DELETE): 400 (the body is no JSON within the parsing limits)
  and 413 (the body is larger than the exchange accepts);
- an operation that needs a bearer token: 401 (missing, unknown or revoked credentials) and 403 (a suspended
  participant, or the wrong role); a public operation that reads an optional token: 401 (a bad one);
- an operation that needs a request signature: 409 (a replayed nonce) on top of the 401 for a bad signature;
- a path with parameters: 404 (no such resource, or not visible to the caller).

A view declares any other status it answers with ``alt_response``. The fuzz test of the whole document
(tests/attacks/test_openapi_fuzz.py) fails on any answer whose status an operation does not declare.
"""

from __future__ import annotations

import http
from typing import Any

from apispec import BasePlugin

from common.webjson import BODY_METHODS

PROBLEM_MEDIA_TYPE = "application/problem+json"
EVERY_OPERATION = (http.HTTPStatus.UNPROCESSABLE_ENTITY, http.HTTPStatus.TOO_MANY_REQUESTS)
WITH_BODY = (http.HTTPStatus.BAD_REQUEST, http.HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
AUTHENTICATED = (http.HTTPStatus.UNAUTHORIZED, http.HTTPStatus.FORBIDDEN)
SIGNED = (http.HTTPStatus.CONFLICT,)
WITH_PATH_PARAMETERS = (http.HTTPStatus.NOT_FOUND,)
SIGNATURE_HEADER = "PDX-Signature"
URI_TOO_LONG = {"description": "the request line is longer than the HTTP server (gunicorn) accepts; it answers "
                               "before the exchange, with a page of its own rather than a problem"}


def error_statuses(path: str, method: str, operation: dict[str, Any]) -> list[http.HTTPStatus]:
    """Return the error statuses an operation answers by the machinery it passes through."""
    statuses = list(EVERY_OPERATION)
    if method.upper() in BODY_METHODS:
        statuses += WITH_BODY
    security = operation.get("security") or []
    if {} in security:
        statuses.append(http.HTTPStatus.UNAUTHORIZED)
    elif security:
        statuses += AUTHENTICATED
    if any(isinstance(parameter, dict) and parameter.get("name") == SIGNATURE_HEADER
           for parameter in operation.get("parameters", ())):
        statuses += SIGNED
    if "{" in path:
        statuses += WITH_PATH_PARAMETERS
    return statuses


class ProblemResponsesPlugin(BasePlugin):
    """An apispec plugin adding each operation's derived error statuses as problem responses."""

    def operation_helper(self, path: str | None = None, operations: dict | None = None, **_kwargs: Any) -> None:
        for method, operation in (operations or {}).items():
            responses = operation.setdefault("responses", {})
            for status in error_statuses(path or "", method, operation):
                # A name refers to the response component flask-smorest registers for the status.
                responses.setdefault(str(status.value), status.name)
            responses.setdefault(str(http.HTTPStatus.REQUEST_URI_TOO_LONG.value), URI_TOO_LONG)
