"""Job tickets: the exchange's signed, short-lived, single-use permission for one provider node to run one job.

A ticket is the RFC 8785 canonical JSON of ``{"v", "issuer", "job", "grant", "provider", "assets", "operation",
"params_sha256", "context_sha256", "obligations", "issued_at", "expires_at", "nonce"}`` — and, since the job's
declared sizes bind, ``"limits": {"rows", "result_cells"}``: the most rows the node may read and the most values its
result may hold — with an Ed25519 signature by the exchange's log key over ``"pdx-ticket/v1\\n" ‖ ticket``. The
node verifies it with ``TicketVerifier``: signature, issuer, addressee, expiry (at most five minutes), that the
parameters and the consumer's public HE context it received are the ones ticketed, and that the nonce was never
used before. A ticket without ``limits`` (issued before they existed) still verifies; the node then has no limit
to enforce.

On the wire the ticket travels in request headers, not in the body (``PDX-Ticket``: the base64url of its
canonical JSON; ``PDX-Ticket-Signature``), so the node authenticates the caller — ``authenticate``: signature,
issuer, addressee, times — before it reads a byte of the body; only then does it parse the body (bounded) and
``bind`` it: the parameters and context must be the ticketed ones, and the nonce is used up.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from common import crypto, jsonlimits
from ledger.entries import canonical, format_time, parse_time

TICKET_CONTEXT = b"pdx-ticket/v1\n"
TICKET_VERSION = 1
MAX_LIFETIME = timedelta(minutes=5)
CLOCK_SKEW = timedelta(seconds=30)
LIMITS = ("rows", "result_cells")
TICKET_HEADER, SIGNATURE_HEADER = "PDX-Ticket", "PDX-Ticket-Signature"
MAX_HEADER_CHARS = 8000  # a ticket of 100 assets (the most a job names) is ~6,700; gunicorn stops at 8,190


class TicketError(Exception):
    """A ticket the node must refuse; the message says why."""


class Unauthenticated(TicketError):
    """No ticket, or none signed by the exchange: the caller is not authenticated (the body is never read)."""


@dataclass(frozen=True)
class SignedTicket:
    claims: dict[str, Any]
    signature: str

    def to_headers(self) -> dict[str, str]:
        """Return the request headers that carry this ticket to a node."""
        return {TICKET_HEADER: encode_header(self.claims), SIGNATURE_HEADER: self.signature}

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> SignedTicket:
        """Read a ticket from request headers; raise ``TicketError`` when they are missing or malformed."""
        return cls(decode_header(headers.get(TICKET_HEADER), TICKET_HEADER),
                   header_text(headers.get(SIGNATURE_HEADER), SIGNATURE_HEADER))


def encode_header(claims: Mapping[str, Any]) -> str:
    """Return the unpadded base64url of the canonical JSON of ``claims``."""
    return base64.urlsafe_b64encode(canonical(dict(claims))).rstrip(b"=").decode("ascii")


def header_text(value: str | None, name: str) -> str:
    """Return a header's text, refusing it (``Unauthenticated``) when missing or longer than ``MAX_HEADER_CHARS``."""
    if not value:
        raise Unauthenticated(f"the request has no {name} header")
    if len(value) > MAX_HEADER_CHARS:
        raise Unauthenticated(f"the {name} header is longer than {MAX_HEADER_CHARS} characters")
    return value


def decode_header(value: str | None, name: str) -> dict[str, Any]:
    """Read claims from a base64url JSON header (small and flat: parsed only after a length check)."""
    text = header_text(value, name)
    try:
        claims = jsonlimits.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise Unauthenticated(f"the {name} header is not base64url JSON") from exc
    if not isinstance(claims, dict):
        raise Unauthenticated(f"the {name} header is not a JSON object")
    return claims


def digest(value: Any) -> str:
    """Return the hex SHA-256 of the RFC 8785 form of ``value`` (parameters) or of raw bytes (an HE context)."""
    data = value if isinstance(value, bytes) else canonical(value)
    return hashlib.sha256(data).hexdigest()


def _checked_limits(limits: Mapping[str, Any]) -> dict[str, int]:
    values = {name: limits.get(name) for name in LIMITS}
    if set(limits) != set(LIMITS) or any(type(v) is not int or v < 0 for v in values.values()):
        raise ValueError(f"limits are {{'rows': n, 'result_cells': n}} with n ≥ 0 integers, got {dict(limits)!r}")
    return values


def issue(key: Ed25519PrivateKey, *, issuer: str, job: str, grant: str, provider: str, assets: list[str],
          operation: str, params_sha256: str, context_sha256: str | None, obligations: Mapping[str, Any],
          now: datetime, lifetime: timedelta = MAX_LIFETIME,
          limits: Mapping[str, int] | None = None) -> SignedTicket:
    """Sign a ticket for one provider's part of a job (with the job's declared sizes as its ``limits``)."""
    if lifetime > MAX_LIFETIME or lifetime <= timedelta(0):
        raise ValueError(f"a ticket lives at most {MAX_LIFETIME}")
    claims = {"v": TICKET_VERSION, "issuer": issuer, "job": job, "grant": grant, "provider": provider,
              "assets": sorted(assets), "operation": operation, "params_sha256": params_sha256,
              "context_sha256": context_sha256, "obligations": dict(obligations), "issued_at": format_time(now),
              "expires_at": format_time(now + lifetime), "nonce": secrets.token_hex(16)}
    if limits is not None:
        claims["limits"] = _checked_limits(limits)
    return SignedTicket(claims, crypto.sign(key, TICKET_CONTEXT + canonical(claims)))


class NonceStore(Protocol):
    def use(self, nonce: str, expires_at: datetime) -> bool:
        """Record ``nonce``; return False if it was already used."""


class MemoryNonceStore:
    """Used nonces kept until their ticket expires (a provider node persists them; see provider/)."""

    def __init__(self) -> None:
        self._seen: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def use(self, nonce: str, expires_at: datetime) -> bool:
        with self._lock:
            if nonce in self._seen:
                return False
            self._seen[nonce] = expires_at
            return True

    def forget_expired(self, now: datetime) -> None:
        with self._lock:
            self._seen = {n: t for n, t in self._seen.items() if t > now}


class TicketVerifier:
    """What a provider node checks before it computes anything."""

    def __init__(self, exchange_key: Ed25519PublicKey, issuer: str, provider_id: str, nonces: NonceStore) -> None:
        self.exchange_key = exchange_key
        self.issuer = issuer
        self.provider_id = provider_id
        self.nonces = nonces

    def verify(self, ticket: SignedTicket, *, params: Any, context: bytes | None, now: datetime) -> dict[str, Any]:
        """Return the ticket's claims if the node may run it, else raise ``TicketError`` saying why."""
        return self.bind(self.authenticate(ticket, now=now), params=params, context=context)

    def authenticate(self, ticket: SignedTicket, *, now: datetime) -> dict[str, Any]:
        """Return the claims of a ticket signed by the exchange for this node and current at ``now`` (before the
        request's body is read), else raise ``TicketError``."""
        claims = ticket.claims
        try:
            self.exchange_key.verify(crypto.b64decode(ticket.signature), TICKET_CONTEXT + canonical(claims))
        except (InvalidSignature, crypto.BadKey, ValueError) as exc:
            raise Unauthenticated("the ticket's signature does not verify with the exchange's key") from exc
        if claims.get("v") != TICKET_VERSION or claims.get("issuer") != self.issuer:
            raise TicketError(f"the ticket was issued by {claims.get('issuer')!r}, expected {self.issuer!r}")
        if claims.get("provider") != self.provider_id:
            raise TicketError(f"the ticket is addressed to {claims.get('provider')}, not to this node "
                              f"({self.provider_id})")
        try:
            issued, expires = parse_time(claims["issued_at"]), parse_time(claims["expires_at"])
        except (KeyError, ValueError) as exc:
            raise TicketError("the ticket's times are malformed") from exc
        if expires - issued > MAX_LIFETIME:
            raise TicketError(f"the ticket claims a lifetime above {MAX_LIFETIME}")
        if now > expires:
            raise TicketError(f"the ticket expired at {claims['expires_at']}")
        if now + CLOCK_SKEW < issued:
            raise TicketError(f"the ticket is dated in the future ({claims['issued_at']})")
        if "limits" in claims:
            try:
                _checked_limits(claims["limits"])
            except (ValueError, AttributeError) as exc:
                raise TicketError("the ticket's limits are malformed") from exc
        return claims

    def bind(self, claims: dict[str, Any], *, params: Any, context: bytes | None) -> dict[str, Any]:
        """Check an authenticated ticket against the body it came with and use up its nonce; return its claims."""
        if digest(params) != claims.get("params_sha256"):
            raise TicketError("the job parameters differ from the ones the ticket was issued for")
        expected_context = claims.get("context_sha256")
        if (context is None) != (expected_context is None) or (context is not None and
                                                               digest(context) != expected_context):
            raise TicketError("the HE context differs from the one the ticket was issued for")
        if not self.nonces.use(claims["nonce"], parse_time(claims["expires_at"])):
            raise TicketError(f"ticket nonce {claims['nonce']} was already used: a replay")
        return claims
