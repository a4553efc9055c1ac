"""The exceptions the services raise; the HTTP layer turns each into an RFC 9457 problem.

PdxError
 ├── MalformedBody       400  the body is not UTF-8 JSON within the parsing limits (``extra["limit"]`` names it)
 ├── InvalidInput        422  a value breaks a domain rule (``errors`` names the fields)
 ├── Unauthenticated     401  no, malformed, unknown or revoked credentials
 │   └── BadSignature    401  a state-changing request lacks a valid signature by the caller's key
 ├── Forbidden           403  authenticated, but this participant may not do this
 ├── NotFound            404  no such resource, or not visible to this participant
 ├── Conflict            409  the resource's state forbids it (``extra`` may list what is allowed)
 │   ├── DuplicateSource 409  a data-element code already has its authoritative source
 │   └── Replayed        409  a signed request whose nonce was already used
 └── Unavailable         503  a part the request needs is not set up or not reachable
"""

from __future__ import annotations

from typing import Any, Mapping


class PdxError(Exception):
    """Root of every error pdx raises on purpose."""

    status = 500
    slug = "internal-error"
    title = "Internal error"

    def __init__(
        self,
        detail: str,
        *,
        errors: Mapping[str, list[str]] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = dict(errors or {})
        self.extra = dict(extra or {})


class MalformedBody(PdxError):
    status = 400
    slug = "malformed-body"
    title = "Malformed request body"


class InvalidInput(PdxError):
    status = 422
    slug = "invalid-input"
    title = "Invalid input"


class Unauthenticated(PdxError):
    status = 401
    slug = "unauthenticated"
    title = "Authentication required"


class BadSignature(Unauthenticated):
    slug = "invalid-signature"
    title = "Missing or invalid request signature"


class Forbidden(PdxError):
    status = 403
    slug = "forbidden"
    title = "Forbidden"


class NotFound(PdxError):
    status = 404
    slug = "not-found"
    title = "Not found"


class Conflict(PdxError):
    status = 409
    slug = "conflict"
    title = "Conflict with the resource's state"


class Replayed(Conflict):
    slug = "replayed-request"
    title = "Replayed request"


class DuplicateSource(Conflict):
    slug = "duplicate-authoritative-source"
    title = "Data element already has an authoritative source"


class Unavailable(PdxError):
    status = 503
    slug = "unavailable"
    title = "Service unavailable"
