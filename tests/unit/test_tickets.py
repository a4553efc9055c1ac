"""Job tickets: the node refuses forged, altered, expired, replayed and misaddressed tickets."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocol.tickets import MemoryNonceStore, SignedTicket, TicketError, TicketVerifier, digest, issue

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
EXCHANGE = Ed25519PrivateKey.generate()
PARAMS = {"statistics": ["count", "sum"], "column": "vat_paid"}
CONTEXT = b"public-ckks-context-bytes"


def _ticket(key=EXCHANGE, **overrides):
    values = {"issuer": "pdx.local/ledger", "job": "job_1", "grant": "grt_1", "provider": "prt_tax",
              "assets": ["ast_tax"], "operation": "he-statistics", "params_sha256": digest(PARAMS),
              "context_sha256": digest(CONTEXT), "obligations": {"min-group-size": 10}, "now": NOW}
    values.update(overrides)
    return issue(key, **values)


def _verifier(provider="prt_tax", nonces=None):
    return TicketVerifier(EXCHANGE.public_key(), "pdx.local/ledger", provider, nonces or MemoryNonceStore())


def test_a_fresh_ticket_for_this_node_verifies_once():
    verifier = _verifier()
    ticket = _ticket()
    claims = verifier.verify(ticket, params=PARAMS, context=CONTEXT, now=NOW + timedelta(seconds=5))
    assert claims["job"] == "job_1" and claims["obligations"] == {"min-group-size": 10}
    with pytest.raises(TicketError, match="replay"):
        verifier.verify(ticket, params=PARAMS, context=CONTEXT, now=NOW + timedelta(seconds=6))


def test_round_trip_through_headers_keeps_it_valid():
    ticket = SignedTicket.from_headers(_ticket().to_headers())
    assert _verifier().verify(ticket, params=PARAMS, context=CONTEXT, now=NOW)["provider"] == "prt_tax"


@pytest.mark.parametrize("attack, message", [
    (lambda t: _ticket(key=Ed25519PrivateKey.generate()), "signature"),
    (lambda t: replace(t, claims={**t.claims, "assets": ["ast_tax", "ast_other"]}), "signature"),
    (lambda t: replace(t, claims={**t.claims, "expires_at": "2099-01-01T00:00:00.000000Z"}), "signature"),
    (lambda t: replace(t, signature=t.signature[:-4] + "AAA="), "signature"),
    (lambda t: _ticket(provider="prt_other"), "addressed"),
    (lambda t: _ticket(issuer="evil.example/ledger"), "issued by"),
    (lambda t: _ticket(now=NOW - timedelta(minutes=6)), "expired"),
    (lambda t: _ticket(now=NOW + timedelta(minutes=2)), "future"),
    (lambda t: _ticket(params_sha256=digest({"statistics": ["raw_rows"]})), "parameters"),
    (lambda t: _ticket(context_sha256=digest(b"another context")), "HE context"),
])
def test_attacks_are_refused_with_the_reason(attack, message):
    with pytest.raises(TicketError, match=message):
        _verifier().verify(attack(_ticket()), params=PARAMS, context=CONTEXT, now=NOW)


def test_a_ticket_cannot_live_longer_than_five_minutes():
    with pytest.raises(ValueError):
        _ticket(lifetime=timedelta(minutes=6))


def test_a_refused_ticket_does_not_burn_its_nonce():
    nonces = MemoryNonceStore()
    ticket = _ticket()
    with pytest.raises(TicketError):
        _verifier(nonces=nonces).verify(ticket, params={"other": 1}, context=CONTEXT, now=NOW)
    assert _verifier(nonces=nonces).verify(ticket, params=PARAMS, context=CONTEXT, now=NOW)


def test_malformed_ticket_header_is_refused():
    with pytest.raises(TicketError):
        SignedTicket.from_headers({"PDX-Ticket": "not base64url json", "PDX-Ticket-Signature": "x"})


def test_a_ticket_carries_the_jobs_limits_under_its_signature():
    ticket = _ticket(limits={"rows": 1000, "result_cells": 7})
    claims = _verifier().verify(ticket, params=PARAMS, context=CONTEXT, now=NOW)
    assert claims["limits"] == {"rows": 1000, "result_cells": 7}
    raised = replace(ticket, claims={**ticket.claims, "limits": {"rows": 10**9, "result_cells": 7}})
    with pytest.raises(TicketError, match="signature"):
        _verifier().verify(raised, params=PARAMS, context=CONTEXT, now=NOW)


def test_a_ticket_without_limits_still_verifies():
    claims = _verifier().verify(_ticket(), params=PARAMS, context=CONTEXT, now=NOW)
    assert "limits" not in claims


@pytest.mark.parametrize("limits", [{"rows": -1, "result_cells": 1}, {"rows": 1}, {"rows": "many", "result_cells": 1},
                                    {"rows": True, "result_cells": 1}])
def test_malformed_limits_are_never_signed(limits):
    with pytest.raises(ValueError, match="limits"):
        _ticket(limits=limits)


def test_a_ticket_travels_in_headers_and_is_authenticated_before_any_body():
    ticket = _ticket()
    claims = _verifier().authenticate(SignedTicket.from_headers(ticket.to_headers()), now=NOW)
    assert claims == ticket.claims
    assert _verifier().bind(claims, params=PARAMS, context=CONTEXT) == claims


def test_a_ticket_for_a_hundred_assets_fits_a_header_line():
    from protocol.tickets import MAX_HEADER_CHARS, TICKET_HEADER

    headers = _ticket(assets=[f"ast_{i:036d}" for i in range(100)], limits={"rows": 10**12, "result_cells": 10**9},
                      obligations={"min-group-size": 10, "dp-noise": 1.0, "charge": 123.45}).to_headers()
    assert len(headers[TICKET_HEADER]) <= MAX_HEADER_CHARS
    assert len(TICKET_HEADER) + 2 + MAX_HEADER_CHARS < 8190  # gunicorn's limit on one header line


@pytest.mark.parametrize("headers", [{}, {"PDX-Ticket": "e30", "PDX-Ticket-Signature": ""},
                                     {"PDX-Ticket": "%%%", "PDX-Ticket-Signature": "x"},
                                     {"PDX-Ticket": "W10", "PDX-Ticket-Signature": "x"},
                                     {"PDX-Ticket": "a" * 9000, "PDX-Ticket-Signature": "x"}])
def test_missing_or_malformed_ticket_headers_are_unauthenticated(headers):
    from protocol.tickets import Unauthenticated

    with pytest.raises(Unauthenticated):
        _verifier().authenticate(SignedTicket.from_headers(headers), now=NOW)


def test_a_forged_ticket_in_headers_is_unauthenticated():
    from protocol.tickets import Unauthenticated

    headers = _ticket(key=Ed25519PrivateKey.generate()).to_headers()
    with pytest.raises(Unauthenticated, match="signature"):
        _verifier().authenticate(SignedTicket.from_headers(headers), now=NOW)
