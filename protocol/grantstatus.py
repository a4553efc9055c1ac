"""Grant status statements: the exchange's signed word, fresh at dispatch, that a job's grant is still active.

A ticket lives up to five minutes; a grant can be revoked, suspended or terminated within them. So the node does
not run on a ticket alone: every call to ``/v1/jobs/run`` also carries a statement, signed with the same log key
as the ticket over ``"pdx-grant-status/v1\\n" ‖ RFC 8785 JSON`` of ``{"v", "issuer", "grant", "job", "nonce",
"status": "active", "at", "expires_at"}``, that the exchange made right after it re-checked the grant (and its
parties) at dispatch. It names the ticket's nonce, so it vouches for that ticket only, and it lives at most
``MAX_LIFETIME`` (30 s). The node refuses a ticket without a current statement for it (fail closed), so a ticket
taken from the exchange's tables, a queue or the wire is worthless once the grant is revoked (decision 39).

Headers: ``PDX-Grant-Status`` (base64url of the canonical claims) and ``PDX-Grant-Status-Signature``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from common import crypto
from common.vocab import GrantStatus
from ledger.entries import canonical, format_time, parse_time
from protocol.tickets import CLOCK_SKEW, TicketError, decode_header, encode_header, header_text

STATEMENT_CONTEXT = b"pdx-grant-status/v1\n"
STATEMENT_VERSION = 1
MAX_LIFETIME = timedelta(seconds=30)
ACTIVE = GrantStatus.ACTIVE
STATUS_HEADER, STATUS_SIGNATURE_HEADER = "PDX-Grant-Status", "PDX-Grant-Status-Signature"


class StatusError(TicketError):
    """No current statement that the ticket's grant is active: the node refuses (a refusal independent of data)."""


@dataclass(frozen=True)
class Statement:
    claims: dict[str, Any]
    signature: str

    def to_headers(self) -> dict[str, str]:
        """Return the request headers that carry this statement to a node."""
        return {STATUS_HEADER: encode_header(self.claims), STATUS_SIGNATURE_HEADER: self.signature}

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Statement:
        """Read a statement from request headers; raise ``StatusError`` when they are missing or malformed."""
        try:
            return cls(decode_header(headers.get(STATUS_HEADER), STATUS_HEADER),
                       header_text(headers.get(STATUS_SIGNATURE_HEADER), STATUS_SIGNATURE_HEADER))
        except TicketError as exc:
            raise StatusError(f"no current grant status statement: {exc}") from exc


def issue(key: Ed25519PrivateKey, *, issuer: str, ticket: Mapping[str, Any], now: datetime,
          lifetime: timedelta = MAX_LIFETIME) -> Statement:
    """Sign that the grant of ``ticket`` (its claims) is active at ``now``, for that ticket's nonce only."""
    if lifetime > MAX_LIFETIME or lifetime <= timedelta(0):
        raise ValueError(f"a grant status statement lives at most {MAX_LIFETIME}")
    claims = {"v": STATEMENT_VERSION, "issuer": issuer, "grant": ticket["grant"], "job": ticket["job"],
              "nonce": ticket["nonce"], "status": ACTIVE, "at": format_time(now),
              "expires_at": format_time(now + lifetime)}
    return Statement(claims, crypto.sign(key, STATEMENT_CONTEXT + canonical(claims)))


def verify(exchange_key: Ed25519PublicKey, issuer: str, statement: Statement, ticket: Mapping[str, Any],
           now: datetime) -> None:
    """Raise ``StatusError`` unless ``statement`` is the exchange's current word that the ticket's grant is active."""
    claims = statement.claims
    try:
        exchange_key.verify(crypto.b64decode(statement.signature), STATEMENT_CONTEXT + canonical(claims))
    except (InvalidSignature, crypto.BadKey, ValueError) as exc:
        raise StatusError("the grant status statement's signature does not verify with the exchange's key") from exc
    if claims.get("v") != STATEMENT_VERSION or claims.get("issuer") != issuer:
        raise StatusError(f"the grant status statement was issued by {claims.get('issuer')!r}, expected {issuer!r}")
    for name in ("grant", "job", "nonce"):
        if claims.get(name) != ticket.get(name):
            raise StatusError(f"the grant status statement is for another ticket ({name} differs)")
    if claims.get("status") != ACTIVE:
        raise StatusError(f"grant {claims.get('grant')} is {claims.get('status')}")
    try:
        at, expires = parse_time(claims["at"]), parse_time(claims["expires_at"])
    except (KeyError, ValueError) as exc:
        raise StatusError("the grant status statement's times are malformed") from exc
    if expires - at > MAX_LIFETIME:
        raise StatusError(f"the grant status statement claims a lifetime above {MAX_LIFETIME}")
    if now > expires:
        raise StatusError(f"the grant status statement expired at {claims['expires_at']}: the node needs a current one")
    if now + CLOCK_SKEW < at:
        raise StatusError(f"the grant status statement is dated in the future ({claims['at']})")
