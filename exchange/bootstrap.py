"""Acting in-process exactly as a signed API call would: used by `pdx init`, the demo seed and the tests.

Each helper signs the same request statement the SDK would send over HTTP, so the ledger entries written
here verify like any other.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.db import utcnow
from ledger.entries import sign_request
from ledger.service import UnitOfWork, unit_of_work
from participants import services
from participants.keys import approval, endorsement, public_text, registration_body
from participants.models import Participant, ParticipantKey
from participants.rules import Principal

T = TypeVar("T")


def principal_of(participant: Participant) -> Principal:
    """Return the principal of a participant acting in-process (no token involved)."""
    return Principal(participant.id, frozenset(participant.roles), participant.status, "in-process")


def act(actor: Principal, key: Ed25519PrivateKey, method: str, path: str, body: Any,
        change: Callable[[UnitOfWork], T]) -> T:
    """Sign ``method path body`` as ``actor`` and run ``change`` in a unit of work that records it."""
    signed = sign_request(key, actor=actor.id, method=method, path=path, body=body)
    with unit_of_work(signed) as uow:
        return change(uow)


def register_key(actor: Principal, key: Ed25519PrivateKey, label: str | None = None, *,
                 endorser: Ed25519PrivateKey | None = None,
                 approver: tuple[Principal, Ed25519PrivateKey] | None = None) -> ParticipantKey:
    """Register ``key`` for ``actor`` with a request signed by that key (proof of possession), vouched for by
    ``endorser`` (a key ``actor`` already has) or approved by ``approver`` (an operator and its key)."""
    public = public_text(key)
    body = registration_body(
        key, actor.id, label=label,
        endorsement=None if endorser is None else endorsement(endorser, actor.id, public),
        approval=None if approver is None else approval(approver[1], approver[0].id, actor.id, public, utcnow()))
    return act(actor, key, "POST", "/api/v1/participants/me/keys", body,
               lambda uow: services.register_key(uow, actor, **body, now=utcnow()))


def bootstrap_operator(name_zh: str, name_en: str, key: Ed25519PrivateKey, contact_email: str | None = None,
                       before_commit: Callable[[], None] | None = None
                       ) -> tuple[Participant, services.IssuedToken, ParticipantKey]:
    """Create the first operator (and the genesis entry) and register its signing key, in one transaction.

    ``before_commit`` runs last inside the transaction (`pdx init` saves the private key file there), so a
    failure anywhere leaves neither an operator without a key nor a key file without an operator.
    """
    now = utcnow()
    with unit_of_work() as uow:
        operator, token = services.bootstrap_operator(uow, name_zh=name_zh, name_en=name_en, now=now,
                                                      contact_email=contact_email)
        actor = principal_of(operator)
        body = registration_body(key, actor.id, label="operator")
        uow.ledger.request = sign_request(key, actor=actor.id, method="POST", path="/api/v1/participants/me/keys",
                                          body=body)
        registered = services.register_bootstrap_key(uow, actor, **body, now=now)
        if before_commit is not None:
            before_commit()
    return operator, token, registered
