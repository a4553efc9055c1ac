"""The grant re-checked at dispatch: right before the exchange calls provider nodes, for a job or for each round of
a federated training, the job's grant must still be active and within its window, and its consumer and providers
still active participants. Admission checked all this too, but a grant can be revoked, suspended or terminated (and
a party suspended) while a job waits for a worker, or between two rounds of a training.

When it holds, the exchange signs, for each ticket, a grant status statement (``protocol.grantstatus``) that
the node requires beside the ticket. When it does not, nothing is sent: the job fails with the fixed problem code
``grant-not-active-at-dispatch``, and its quota is given back — the consumer did nothing wrong, and no node read a
row (a federated round after the first keeps the rows already trained on spent, as any failed round does).

After the call, ``checked_result`` takes a node's answer only with a receipt for this job, signed by one of the
provider's registered, unrevoked keys (``protocol.receipts``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Mapping

from sqlalchemy import select

from authorization import lifecycle
from authorization.model import Grant
from common.db import get_database
from jobs.nodes import NodeFailure
from ledger import service
from participants.models import Participant, ParticipantKey
from participants.rules import ACTIVE as PARTICIPANT_ACTIVE
from protocol import grantstatus, receipts

CODE = "grant-not-active-at-dispatch"


class GrantNotCurrent(Exception):
    """The job's grant (or one of its parties) is no longer in force: no node is called."""

    code = CODE


def check(session, grant_id: str, providers: Iterable[str], now: datetime) -> None:
    """Raise ``GrantNotCurrent`` unless grant ``grant_id`` is active and within its window at ``now``, and its
    consumer and ``providers`` are active participants (read fresh from ``session``)."""
    grant = session.scalar(select(Grant).where(Grant.id == grant_id).execution_options(populate_existing=True))
    if grant is None or grant.status != lifecycle.ACTIVE:
        raise GrantNotCurrent(f"{CODE}: grant {grant_id} is {getattr(grant, 'status', 'gone')}; no node was called")
    if datetime.fromisoformat(grant.terms["valid_until"]) <= now:
        raise GrantNotCurrent(f"{CODE}: grant {grant_id} is past its window; no node was called")
    parties = {grant.consumer_id, *providers}
    statuses = {participant: status for participant, status in session.execute(
        select(Participant.id, Participant.status).where(Participant.id.in_(parties)))}
    inactive = sorted(p for p in parties if statuses.get(p) != PARTICIPANT_ACTIVE)
    if inactive:
        raise GrantNotCurrent(f"{CODE}: a party of grant {grant_id} is not active ({', '.join(inactive)}); no node "
                              f"was called")


def statements(tickets: Iterable[Mapping[str, Any]], now: datetime) -> dict[str, grantstatus.Statement]:
    """Sign, for each ticket's claims, that its grant is active at ``now``; keyed by the ticket's nonce."""
    log = service.identity()
    return {claims["nonce"]: grantstatus.issue(log.key, issuer=log.origin, ticket=claims, now=now)
            for claims in tickets}


def current_statements(grant_id: str, tickets: list[Mapping[str, Any]], now: datetime
                       ) -> dict[str, grantstatus.Statement]:
    """Re-check the grant in a fresh session and sign the statements for ``tickets``; raise ``GrantNotCurrent``."""
    with get_database().sessionmaker() as session:
        check(session, grant_id, [t["provider"] for t in tickets], now)
    return statements(tickets, now)


def checked_result(session, job_id: str, provider_id: str, answer: dict[str, Any]) -> bytes:
    """Return a node's result once its receipt is for this job and signed by one of the provider's registered,
    unrevoked keys; raise ``NodeFailure`` otherwise (the quota stays spent: the node answered)."""
    keys = session.scalars(select(ParticipantKey.public_key).where(ParticipantKey.participant_id == provider_id,
                                                                  ParticipantKey.revoked_at.is_(None)))
    try:
        return receipts.checked_result(answer, job_id, provider_id, list(keys))
    except receipts.ReceiptError as exc:
        raise NodeFailure(str(exc)) from exc
