"""Ledger entries: canonical bytes (RFC 8785), signed requests, commitments and entry signatures. Pure.

An entry (the Merkle leaf) is the RFC 8785 canonical JSON of::

    {"v": 1, "seq": n, "type": "asset.published", "time": "2026-11-28T12:00:00.000000Z",
     "actor": "prt_…", "refs": {"asset": ["ast_…"]}, "body": {public fields},
     "commit": {"field": "<hex SHA-256(salt ‖ canonical value)>"},
     "request": {signed request statement, or null for entries the exchange makes by itself},
     "sig": {"actor": "<base64 Ed25519 by the actor's key over the request statement>" | null}}

and the operator's signature is Ed25519 by the log key over ``"pdx-entry/v1\n" ‖ entry bytes``, kept beside
the entry (not inside it), so a verifier checks it over the exact bytes it hashes, without re-serialising.

The actor signs the *request* it sends — method, path, the SHA-256 of the RFC 8785 form of its JSON body, time
and a nonce — and the statement is kept verbatim in the entry: anyone can check offline that the actor asked for
this change, while personal or confidential values of the body stay out of the log (the entry holds only the
public fields and salted commitments). The operator's signature binds the statement to its position and outcome.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from common import crypto
from ledger.errors import LedgerError

ENTRY_VERSION = 1
REQUEST_CONTEXT = b"pdx-request/v1\n"
ENTRY_CONTEXT = b"pdx-entry/v1\n"
SYSTEM_ACTOR = "system"
SALT_BYTES = 16


class EntryError(LedgerError, ValueError):
    """An entry or request statement is malformed or its signature does not verify."""


SAFE_INTEGER = 2**53 - 1  # RFC 8785 numbers are IEEE doubles: beyond this, integers lose precision


def _plain(value: Any) -> bool:
    """Tell whether sorted compact ``json.dumps`` writes ``value`` exactly as RFC 8785 does: no floats, integers
    an IEEE double holds exactly, keys inside the Basic Multilingual Plane (UTF-16 and code-point order agree)."""
    if isinstance(value, str) or value is None or isinstance(value, bool):
        return True
    if isinstance(value, int):
        return -SAFE_INTEGER <= value <= SAFE_INTEGER
    if isinstance(value, dict):
        return all(isinstance(k, str) and k.isascii() and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(item) for item in value)
    return False


def canonical(value: Any) -> bytes:
    """Return the RFC 8785 canonical JSON bytes of ``value`` (the fast C encoder where it agrees with RFC 8785)."""
    try:
        if _plain(value):
            return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise EntryError(f"value cannot be canonicalized: {exc}") from exc


def format_time(moment: datetime) -> str:
    """Return an entry timestamp: UTC, microseconds, 'Z' suffix (sorts as text in time order)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


TIME_FORMAT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")


def parse_time(text: str) -> datetime:
    """Parse an entry timestamp, refusing anything but the exact format ``format_time`` writes."""
    try:
        if not TIME_FORMAT.fullmatch(text):
            raise ValueError("not the exact format")
        moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    except (TypeError, ValueError) as exc:
        raise EntryError(f"time {text!r} is not YYYY-MM-DDTHH:MM:SS.ffffffZ (six fractional digits)") from exc
    return moment


@dataclass(frozen=True)
class SignedRequest:
    """A request statement and the actor's signature over it."""

    statement: dict[str, Any]
    signature: str

    @property
    def actor(self) -> str:
        return self.statement["actor"]

    @property
    def key(self) -> str:
        return self.statement["key"]

    @property
    def nonce(self) -> str:
        return self.statement["nonce"]


def body_digest(body: Any) -> str:
    """Return the hex SHA-256 of the RFC 8785 form of a request's JSON body (``null`` when it has none)."""
    return hashlib.sha256(canonical(body)).hexdigest()


def request_statement(*, actor: str, key: str, method: str, path: str, body: Any, signed_at: str,
                      nonce: str) -> dict[str, Any]:
    """Return the statement a participant signs for one request."""
    return {"actor": actor, "key": key, "method": method.upper(), "path": path, "body_sha256": body_digest(body),
            "signed_at": signed_at, "nonce": nonce}


def request_message(statement: Mapping[str, Any]) -> bytes:
    """Return the bytes signed for a request statement."""
    return REQUEST_CONTEXT + canonical(dict(statement))


def sign_request(private_key: Ed25519PrivateKey, *, actor: str, method: str, path: str, body: Any,
                 signed_at: datetime | None = None, nonce: str | None = None) -> SignedRequest:
    """Sign a request the way the SDK and the CLI do, and return the statement with its signature."""
    public = crypto.public_key_text(private_key.public_key())
    statement = request_statement(
        actor=actor, key=crypto.key_fingerprint(public), method=method, path=path, body=body,
        signed_at=format_time(signed_at or datetime.now(timezone.utc)), nonce=nonce or secrets.token_hex(16))
    return SignedRequest(statement, crypto.sign(private_key, request_message(statement)))


def verify_request(public_key: Ed25519PublicKey, request: SignedRequest) -> None:
    """Verify the actor's signature over a request statement, raising ``EntryError``."""
    try:
        public_key.verify(crypto.b64decode(request.signature), request_message(request.statement))
    except (InvalidSignature, crypto.BadKey) as exc:
        raise EntryError(f"the signature of {request.actor} over its request does not verify with key "
                         f"{request.key}") from exc


def commitment(value: Any, salt: bytes | None = None) -> tuple[str, str]:
    """Commit to a confidential value: return (hex SHA-256(salt ‖ canonical value), hex salt)."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    return hashlib.sha256(salt + canonical(value)).hexdigest(), salt.hex()


@dataclass(frozen=True)
class Draft:
    """What a service records: the log assigns seq and time, commits to the confidential values and signs."""

    type: str
    actor: str
    refs: dict[str, list[str]] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)
    confidential: dict[str, Any] = field(default_factory=dict)


def build(draft: Draft, *, seq: int, time: str, request: SignedRequest | None, commit: Mapping[str, str],
          operator_key: Ed25519PrivateKey) -> tuple[bytes, str]:
    """Return the canonical entry bytes and the operator's base64 signature over them."""
    if request is not None and request.actor != draft.actor:
        raise EntryError(f"entry actor {draft.actor} differs from the request's signer {request.actor}")
    data = canonical({
        "v": ENTRY_VERSION, "seq": seq, "type": draft.type, "time": time, "actor": draft.actor,
        "refs": {name: sorted(ids) for name, ids in draft.refs.items() if ids}, "body": draft.body,
        "commit": dict(commit), "request": None if request is None else request.statement,
        "sig": {"actor": None if request is None else request.signature},
    })
    return data, crypto.sign(operator_key, ENTRY_CONTEXT + data)


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise EntryError("entry has a duplicate object key")
    return dict(pairs)


def _is_canonical(entry: Any, data: bytes) -> bool:
    # Fast path: without floats and with ASCII keys, sorted compact json.dumps is exactly RFC 8785.
    fast = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return fast == data or canonical(entry) == data


def parse(data: bytes) -> dict[str, Any]:
    """Parse entry bytes, refusing duplicate keys and anything not exactly in its own canonical form."""
    try:
        entry = json.loads(data, object_pairs_hook=_refuse_duplicate_keys)
    except (UnicodeDecodeError, ValueError) as exc:
        raise EntryError(f"entry is not JSON: {exc}") from exc
    if not isinstance(entry, dict):
        raise EntryError("entry is not a JSON object")
    try:
        canonical_form = _is_canonical(entry, data)
    except UnicodeEncodeError as exc:  # an escaped lone surrogate cannot be encoded back
        raise EntryError(f"entry holds a string that is not valid Unicode: {exc}") from exc
    if not canonical_form:
        raise EntryError("entry bytes are not in RFC 8785 canonical form")
    missing = {"v", "seq", "type", "time", "actor", "refs", "body", "commit", "request", "sig"} - set(entry)
    if missing:
        raise EntryError(f"entry lacks {', '.join(sorted(missing))}")
    if entry["v"] != ENTRY_VERSION:
        raise EntryError(f"entry version {entry['v']!r} is not {ENTRY_VERSION}")
    return entry


def verify_operator(data: bytes, signature: str, operator_key: Ed25519PublicKey) -> None:
    """Verify the operator's signature over entry bytes, raising ``EntryError``."""
    try:
        operator_key.verify(crypto.b64decode(signature), ENTRY_CONTEXT + data)
    except (InvalidSignature, crypto.BadKey, TypeError) as exc:
        raise EntryError("the operator's signature over the entry does not verify") from exc


def signed_request_of(entry: Mapping[str, Any]) -> SignedRequest | None:
    """Return the signed request an entry carries, or None for the exchange's own entries."""
    if entry["request"] is None:
        return None
    return SignedRequest(entry["request"], entry["sig"]["actor"])
