"""Who is calling: bearer tokens, signed requests, the caller's roles (``authenticated``), for every feature's routes.

The plumbing knows no table: the exchange's composition installs an ``Identities`` (the participant registry) on
the app with ``init_app``, and every token and key is looked up through it.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Callable, Protocol

from flask import Flask, current_app, g, request
from sqlalchemy.orm import Session

from common import crypto
from common.db import read_session, utcnow
from common.errors import BadSignature, Forbidden, InvalidInput, Unauthenticated
from ledger import entries
from ledger.entries import SignedRequest

BEARER = re.compile(r"Bearer ([A-Za-z0-9_\-]{1,200})")
EXTENSION_KEY = "pdx.identities"


class Principal(Protocol):
    """The caller behind a token, as the participant registry describes it."""

    id: str
    status: str

    @property
    def is_active(self) -> bool: ...

    def has_role(self, *roles: str) -> bool: ...


class Identities(Protocol):
    """The participant registry, as far as the plumbing needs it."""

    def authenticate(self, session: Session, secret: str) -> Principal:
        """Return the principal behind an API token, or raise ``Unauthenticated``."""

    def active_key(self, session: Session, participant_id: str, key_id: str) -> str | None:
        """Return the base64 public key ``key_id`` if it is a registered, unrevoked key of the participant."""


def init_app(app: Flask, identities: Identities) -> None:
    """Look tokens and keys up in ``identities`` for every request of ``app``."""
    app.extensions[EXTENSION_KEY] = identities


def _identities() -> Identities:
    return current_app.extensions[EXTENSION_KEY]


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
    return _identities().authenticate(read_session(), match.group(1))


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
        public_key = _identities().active_key(read_session(), principal.id, values["key"])
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
