"""Grant status statements: the node accepts only the exchange's current word, for this ticket, that its grant is
active."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocol import grantstatus
from protocol.grantstatus import Statement, StatusError

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
KEY = Ed25519PrivateKey.generate()
TICKET = {"grant": "grt_1", "job": "job_1", "nonce": "ab" * 16}


def _statement(**overrides) -> Statement:
    return grantstatus.issue(overrides.pop("key", KEY), issuer="test.pdx/ledger", ticket={**TICKET, **overrides},
                             now=NOW)


def _verify(statement: Statement, *, now: datetime = NOW, ticket: dict | None = None) -> None:
    grantstatus.verify(KEY.public_key(), "test.pdx/ledger", statement, ticket or TICKET, now)


def test_a_current_statement_for_the_ticket_passes_and_survives_its_headers():
    statement = _statement()
    _verify(Statement.from_headers(statement.to_headers()))


@pytest.mark.parametrize("ticket", [{**TICKET, "nonce": "cd" * 16}, {**TICKET, "job": "job_2"},
                                    {**TICKET, "grant": "grt_2"}])
def test_a_statement_for_another_ticket_is_refused(ticket):
    with pytest.raises(StatusError, match="another ticket"):
        _verify(_statement(), ticket=ticket)


def test_an_expired_statement_is_refused():
    with pytest.raises(StatusError, match="expired"):
        _verify(_statement(), now=NOW + grantstatus.MAX_LIFETIME + timedelta(seconds=1))


def test_a_statement_signed_by_another_key_or_edited_is_refused():
    with pytest.raises(StatusError, match="signature"):
        _verify(_statement(key=Ed25519PrivateKey.generate()))
    edited = _statement()
    with pytest.raises(StatusError, match="signature"):
        _verify(Statement({**edited.claims, "expires_at": "2027-01-01T00:00:00.000000Z"}, edited.signature))


def test_missing_headers_are_a_refusal_not_an_error():
    with pytest.raises(StatusError):
        Statement.from_headers({})
    with pytest.raises(StatusError):
        Statement.from_headers({grantstatus.STATUS_HEADER: "!!", grantstatus.STATUS_SIGNATURE_HEADER: "x"})


def test_a_statement_cannot_be_issued_for_longer_than_its_bound():
    with pytest.raises(ValueError):
        grantstatus.issue(KEY, issuer="i", ticket=TICKET, now=NOW, lifetime=timedelta(minutes=5))
