"""HTTP plumbing shared by the feature blueprints: the API object, bearer authentication, pagination."""

from __future__ import annotations

import functools
import http
import re
from typing import Any, Callable

from flask import current_app, g, request
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from marshmallow import Schema, ValidationError, fields, pre_load, validate
from werkzeug.routing import IntegerConverter

from common import crypto
from common.db import read_session, utcnow
from common.errors import BadSignature, Forbidden, InvalidInput, Unauthenticated
from exchange import problems
from exchange.participants import services as participant_services
from exchange.participants.rules import Principal
from ledger import entries
from ledger.entries import SignedRequest

MAX_INT64 = 2**63 - 1


class Count(IntegerConverter):
    """A URL part that is a non-negative integer a 64-bit column can hold (``<count:size>``).

    Werkzeug's ``int`` takes any number of digits, and a larger one reached the database as an overflow (a 500);
    beyond the bound no route matches, so the answer is 404, and the OpenAPI document states the maximum.
    """

    def __init__(self, url_map, *args, **kwargs) -> None:
        super().__init__(url_map, min=0, max=MAX_INT64)


BEARER = re.compile(r"Bearer ([A-Za-z0-9_\-]{1,200})")
MAX_PER_PAGE = 100


class PdxApi(Api):
    """flask-smorest's Api with every HTTP error rendered as RFC 9457 problem details."""

    ERROR_SCHEMA = problems.ProblemSchema

    def handle_http_exception(self, error):
        return problems.from_http_exception(error)

    def _register_responses(self) -> None:
        """Register a response per status as flask-smorest does, errors with the media type they are sent with."""
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, problems.MEDIA_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Any other error, a server error above all", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, problems.MEDIA_TYPE)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)


def answers(blp, status: int, why: str) -> Callable:
    """Declare a problem status a view answers beyond those derived from its shape (see ``exchange.apidoc``)."""
    return blp.alt_response(status, schema=problems.ProblemSchema, content_type=problems.MEDIA_TYPE,
                            description=why)


def current_principal() -> Principal:
    """Return the principal authenticated for this request."""
    return g.pdx_principal


def _authenticate_request() -> Principal:
    header = request.headers.get("Authorization")
    if header is None:
        raise Unauthenticated("this endpoint needs an 'Authorization: Bearer <token>' header")
    match = BEARER.fullmatch(header.strip())
    if match is None:
        raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
    return participant_services.authenticate(read_session(), match.group(1))


NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")
KEY_ID = re.compile(r"[0-9a-f]{64}")
SIGNATURE_HEADERS = {"key": "PDX-Key", "signed_at": "PDX-Signed-At", "nonce": "PDX-Nonce",
                     "signature": "PDX-Signature"}
SELF_CERTIFIED = "self-certified"
SIGNATURE_PARAMETERS = [
    {"in": "header", "name": "PDX-Key", "required": True, "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
     "description": "id of the signing key: hex SHA-256 of the raw Ed25519 public key"},
    {"in": "header", "name": "PDX-Signed-At", "required": True, "schema": {"type": "string"},
     "description": "signing time, UTC, YYYY-MM-DDTHH:MM:SS.ffffffZ"},
    {"in": "header", "name": "PDX-Nonce", "required": True,
     "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{16,64}$"}, "description": "never reused"},
    {"in": "header", "name": "PDX-Signature", "required": True, "schema": {"type": "string"},
     "description": "base64 Ed25519 over 'pdx-request/v1\\n' + RFC 8785 {actor, key, method, path, body_sha256, "
                    "signed_at, nonce} (docs/ledger.md)"},
]


def _request_body() -> Any:
    if not request.get_data(cache=True):
        return None
    return request.get_json(silent=True, force=True)


def signed_request(principal: Principal, *, self_certified: bool = False) -> SignedRequest:
    """Verify the caller's signature over this request (method, path, body, time, nonce) and return it.

    The key must be one of the caller's registered, unrevoked keys, except for key registration, where the
    request is signed by the key being registered (``self_certified``).
    """
    values = {name: request.headers.get(header) for name, header in SIGNATURE_HEADERS.items()}
    missing = [SIGNATURE_HEADERS[name] for name, value in values.items() if not value]
    if missing:
        raise BadSignature(f"state-changing requests must be signed with the participant's key; missing "
                           f"{', '.join(missing)} (docs/ledger.md explains the signature)")
    if not KEY_ID.fullmatch(values["key"]) or not NONCE.fullmatch(values["nonce"]):
        raise BadSignature("PDX-Key must be a hex SHA-256 key id and PDX-Nonce 16-64 URL-safe characters")
    try:
        signed_at = entries.parse_time(values["signed_at"])
    except entries.EntryError as exc:
        raise BadSignature(f"PDX-Signed-At: {exc}") from exc
    window = current_app.config["PDX_SIGNATURE_WINDOW_SECONDS"]
    if abs((utcnow() - signed_at).total_seconds()) > window:
        raise BadSignature(f"the request was signed at {values['signed_at']}, more than {window} s from the "
                           f"exchange's clock")
    body = _request_body()
    if self_certified:
        public_key = body.get("public_key") if isinstance(body, dict) else None
        if isinstance(public_key, str):
            try:
                crypto.load_public_key(public_key)
            except (crypto.BadKey, ValueError) as exc:
                raise InvalidInput(f"public_key is not an Ed25519 public key: {exc}",
                                   errors={"public_key": [str(exc)]}) from exc
        if not isinstance(public_key, str) or crypto.key_fingerprint(public_key) != values["key"]:
            raise BadSignature("a key registration must be signed by the key it registers")
    else:
        public_key = participant_services.active_key(read_session(), principal.id, values["key"])
        if public_key is None:
            raise BadSignature(f"key {values['key']} is not a registered, unrevoked key of {principal.id}")
    try:
        statement = entries.request_statement(actor=principal.id, key=values["key"], method=request.method,
                                              path=request.path, body=body, signed_at=values["signed_at"],
                                              nonce=values["nonce"])
    except entries.EntryError as exc:
        raise InvalidInput(f"the JSON body has no RFC 8785 form to sign: {exc}",
                           errors={"_body": ["integers beyond ±2^53 and lone surrogates cannot be signed"]}) from exc
    signed = SignedRequest(statement, values["signature"])
    try:
        entries.verify_request(crypto.load_public_key(public_key), signed)
    except (entries.EntryError, crypto.BadKey) as exc:
        raise BadSignature(str(exc)) from exc
    return signed


def authenticated(*roles: str, inactive_ok: bool = False, signed: bool | str = False) -> Callable:
    """Require a valid bearer token, an active participant (unless ``inactive_ok``) and one of ``roles``.

    With ``signed`` the request must also carry the caller's signature (see ``signed_request``); the verified
    statement is kept for the ledger entry the request produces.
    """

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = _authenticate_request()
            if not inactive_ok and not principal.is_active:
                raise Forbidden(f"participant {principal.id} is {principal.status}: it may only read its own status",
                                extra={"participant_status": principal.status})
            if roles and not principal.has_role(*roles):
                raise Forbidden(f"this action requires the role {' or '.join(roles)}",
                                extra={"required_roles": list(roles)})
            if signed:
                g.pdx_signed_request = signed_request(principal, self_certified=signed == SELF_CERTIFIED)
            g.pdx_principal = principal
            return view(*args, **kwargs)

        wrapper._pdx_roles = roles  # read by the role-matrix tests and the API docs
        wrapper._pdx_signed = bool(signed)
        doc = getattr(wrapper, "_apidoc", {})
        manual = doc.setdefault("manual_doc", {})
        manual["security"] = [{"bearerAuth": []}]
        if signed:
            manual["parameters"] = SIGNATURE_PARAMETERS
        wrapper._apidoc = doc
        return wrapper

    return decorator


class Amount(fields.Decimal):
    """A money amount: exact decimal text with at most two places, documented as a string ("200.00").

    The OpenAPI type of a decimal is otherwise ``number`` with string bounds, which is no valid OpenAPI.
    """

    OPENAPI = ("string", None)  # (type, format), registered on the API object by exchange.api

    def __init__(self, **kwargs: Any) -> None:
        metadata = {"pattern": r"^[0-9]{1,10}(\.[0-9]{1,2})?$", "example": "200.00", **kwargs.pop("metadata", {})}
        super().__init__(places=2, as_string=True, metadata=metadata, **kwargs)


CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _control_character_paths(value, path: str = "") -> dict[str, list[str]]:
    if isinstance(value, str):
        return {path or "_body": ["contains a NUL or control character"]} if CONTROL_CHARACTERS.search(value) else {}
    found: dict[str, list[str]] = {}
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if isinstance(key, str) and CONTROL_CHARACTERS.search(key):
            found["_body"] = ["a field name contains a NUL or control character"]
        found.update(_control_character_paths(item, f"{path}.{key}" if path else str(key)))
    return found


class RequestSchema(Schema):
    """Base of every request schema: refuses NUL and other control characters anywhere in the input.

    PostgreSQL cannot store NUL in text, and no field of pdx has a use for control characters.
    """

    @pre_load
    def _refuse_control_characters(self, data, **_kwargs):
        found = _control_character_paths(data)
        if found:
            raise ValidationError(found)
        return data


def refuse_control_characters_in_url() -> None:
    """Refuse a request whose path or query holds control characters (a ``before_request`` hook)."""
    if CONTROL_CHARACTERS.search(request.path) or any(
            CONTROL_CHARACTERS.search(value) for value in request.args.values()):
        raise InvalidInput("the URL contains a NUL or control character", errors={"_url": ["control character"]})


class PageArgs(RequestSchema):
    """Query arguments of every paginated list."""

    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=MAX_PER_PAGE))


def page_window(args: dict) -> tuple[int, int]:
    """Return (offset, limit) for the page the arguments name."""
    return (args["page"] - 1) * args["per_page"], args["per_page"]


def page_body(items: list, args: dict, total: int) -> dict:
    """Return the envelope of one page of results."""
    return {"items": items, "page": args["page"], "per_page": args["per_page"], "total": total}


def page_schema(item_schema: type[Schema], name: str) -> type[Schema]:
    """Return the schema of a page of ``item_schema`` items."""
    return Schema.from_dict(
        {"items": fields.List(fields.Nested(item_schema)), "page": fields.Integer(),
         "per_page": fields.Integer(), "total": fields.Integer()},
        name=name,
    )


OPTIONAL_BEARER = [{}, {"bearerAuth": []}]


def optionally_authenticated(view: Callable) -> Callable:
    """Document a public view that reads its caller through ``optional_principal``: a token is optional."""
    doc = getattr(view, "_apidoc", {})
    doc.setdefault("manual_doc", {})["security"] = OPTIONAL_BEARER
    view._apidoc = doc
    return view


def optional_principal() -> Principal | None:
    """Return the caller on a public endpoint: None when anonymous; a bad token is still refused.

    A pending or suspended participant reads public endpoints as an anonymous caller would.
    """
    if request.headers.get("Authorization") is None:
        return None
    principal = _authenticate_request()
    return principal if principal.is_active else None
