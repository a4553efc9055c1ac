"""Participant use cases. Writes take the caller's unit of work (session + ledger) and the acting principal;
every change of a participant or a key is recorded in the ledger in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from common import crypto, key_vouch
from common.db import new_id
from common.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from ledger import entries
from ledger import log as ledger_log
from ledger.entries import SYSTEM_ACTOR, Draft
from ledger.service import UnitOfWork, append_genesis
from participants import rules
from participants.models import ApiToken, Participant, ParticipantKey, ParticipantRole
from participants.rules import Principal


@dataclass(frozen=True)
class IssuedToken:
    """A token row and its secret, which is shown to the caller exactly once."""

    row: ApiToken
    secret: str


def _new_participant(session: Session, *, name_zh: str, name_en: str, roles: list[str], contact_email: str | None,
                     status: str, now: datetime) -> Participant:
    participant = Participant(
        id=new_id("prt"), name_zh=name_zh, name_en=name_en, contact_email=contact_email,
        status=status, created_at=now, updated_at=now,
        role_rows=[ParticipantRole(role=role) for role in rules.check_roles(roles)],
    )
    session.add(participant)
    session.flush()
    return participant


def _issue_token(session: Session, participant_id: str, label: str | None, now: datetime) -> IssuedToken:
    secret = crypto.new_token()
    row = ApiToken(id=new_id("tok"), participant_id=participant_id, token_hash=crypto.token_hash(secret),
                   label=label, created_at=now)
    session.add(row)
    session.flush()
    return IssuedToken(row=row, secret=secret)


def _record_enrolment(uow: UnitOfWork, actor_id: str, participant: Participant) -> None:
    uow.ledger.append(Draft(
        "participant.enrolled", actor_id, refs={"participant": [participant.id]},
        body={"name_zh": participant.name_zh, "name_en": participant.name_en, "roles": participant.roles,
              "status": participant.status},
        confidential={"contact_email": participant.contact_email} if participant.contact_email else {},
    ), parties=[participant.id])


def bootstrap_operator(uow: UnitOfWork, *, name_zh: str, name_en: str, now: datetime,
                       contact_email: str | None = None) -> tuple[Participant, IssuedToken]:
    """Create the first operator, active at once, with its first token; refuse if an operator exists.

    On an empty log this also writes the genesis entry (the log's origin and public key).
    """
    session = uow.session
    existing = session.scalar(select(ParticipantRole).where(ParticipantRole.role == rules.OPERATOR).limit(1))
    if existing is not None:
        raise Conflict(f"the exchange already has an operator ({existing.participant_id})",
                       extra={"operator": existing.participant_id})
    if ledger_log.size(session) == 0:
        append_genesis(uow)
    operator = _new_participant(session, name_zh=name_zh, name_en=name_en, roles=[rules.OPERATOR],
                                contact_email=contact_email, status=rules.ACTIVE, now=now)
    _record_enrolment(uow, SYSTEM_ACTOR, operator)
    return operator, _issue_token(session, operator.id, "bootstrap", now)


def create_participant(uow: UnitOfWork, actor: Principal, *, name_zh: str, name_en: str, roles: list[str],
                       now: datetime, contact_email: str | None = None) -> tuple[Participant, IssuedToken]:
    """Enrol an organisation as a pending participant and give it its first token (operators only)."""
    _require(actor, rules.OPERATOR)
    participant = _new_participant(uow.session, name_zh=name_zh, name_en=name_en, roles=roles,
                                   contact_email=contact_email, status=rules.PENDING, now=now)
    _record_enrolment(uow, actor.id, participant)
    return participant, _issue_token(uow.session, participant.id, "enrolment", now)


STATUS_ENTRY_TYPES = {"admit": "participant.admitted", "suspend": "participant.suspended",
                      "reinstate": "participant.reinstated"}


def change_status(uow: UnitOfWork, actor: Principal, participant_id: str, action: str,
                  reason: str | None = None, *, now: datetime) -> Participant:
    """Admit, suspend or reinstate a participant (operators only; never the acting operator itself)."""
    _require(actor, rules.OPERATOR)
    participant = _load(uow.session, participant_id)
    if participant.id == actor.id:
        raise Conflict("an operator cannot change its own status", extra={"participant": participant.id})
    participant.status = rules.next_status(action, participant.status)
    participant.status_reason = reason
    participant.updated_at = now
    uow.ledger.append(Draft(STATUS_ENTRY_TYPES[action], actor.id, refs={"participant": [participant.id]},
                            body={"status": participant.status, "reason": reason}), parties=[participant.id])
    return participant


def can_view(viewer: Principal, participant: Participant) -> bool:
    """Tell whether ``viewer`` may read ``participant``'s profile.

    Everyone reads their own; operators and regulators read all; other active participants read the
    profiles of active participants (they need to know whom they trade with).
    """
    if viewer.id == participant.id or viewer.has_role(rules.OPERATOR, rules.REGULATOR):
        return True
    return viewer.is_active and participant.status == rules.ACTIVE


def get_participant(session: Session, viewer: Principal, participant_id: str) -> Participant:
    """Return a participant the viewer may see; hide the others behind 404."""
    if not viewer.is_active and viewer.id != participant_id:
        raise Forbidden(f"participant {viewer.id} is {viewer.status}: it may only read its own status",
                        extra={"participant_status": viewer.status})
    participant = session.get(Participant, participant_id)
    if participant is None or not can_view(viewer, participant):
        raise NotFound(f"no participant {participant_id}")
    return participant


def list_participants(session: Session, viewer: Principal, *, role: str | None, status: str | None,
                      offset: int, limit: int) -> tuple[list[Participant], int]:
    """Return one page of the participants the viewer may see, oldest first, and the total count."""
    query = select(Participant)
    if not viewer.has_role(rules.OPERATOR, rules.REGULATOR):
        query = query.where(Participant.status == rules.ACTIVE)
    if status is not None:
        query = query.where(Participant.status == status)
    if role is not None:
        query = query.where(Participant.id.in_(select(ParticipantRole.participant_id)
                                               .where(ParticipantRole.role == role)))
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.scalars(query.order_by(Participant.created_at, Participant.id).offset(offset).limit(limit)).all()
    return list(rows), int(total or 0)


VOUCH_NEEDED = ("a key registration needs an endorsement by one of the participant's registered keys or, for a "
                "first or recovery key, an operator's approval (docs/participants.md); a bearer token alone "
                "proves nothing about a key")


def _check_possession(participant_id: str, public_key: str, proof: str) -> str:
    try:
        crypto.load_public_key(public_key)
    except (crypto.BadKey, ValueError) as exc:
        raise InvalidInput(f"public_key is not an Ed25519 public key: {exc}",
                           errors={"public_key": [str(exc)]}) from exc
    try:
        crypto.verify(public_key, proof, crypto.key_registration_message(participant_id, public_key))
    except crypto.BadKey as exc:
        raise InvalidInput("proof is not a signature of the key-registration message by this key",
                           errors={"proof": [str(exc)]}) from exc
    return crypto.key_fingerprint(public_key)


def _check_endorsement(session: Session, participant_id: str, public_key: str, endorsement: dict) -> None:
    endorser = active_key(session, participant_id, endorsement["key"])
    key_vouch.check_endorsement(participant_id, public_key, endorsement, endorser)


def _check_approval(session: Session, participant_id: str, public_key: str, approval: dict, now: datetime) -> None:
    operator = session.get(Participant, approval["operator"])
    active = operator is not None and rules.OPERATOR in operator.roles and operator.status == rules.ACTIVE
    try:
        approved_at = entries.parse_time(approval["approved_at"])
    except entries.EntryError as exc:
        raise InvalidInput(f"approval.approved_at: {exc}", errors={"approval.approved_at": [str(exc)]}) from exc
    key_vouch.check_approval(participant_id, public_key, approval, operator_active=active,
                             operator_key=active_key(session, approval["operator"], approval["key"]) if active
                             else None, approved_at=approved_at, now=now)


def _add_key(uow: UnitOfWork, owner_id: str, key_id: str, public_key: str, label: str | None,
             vouch: dict, now: datetime) -> ParticipantKey:
    session = uow.session
    existing = session.get(ParticipantKey, key_id)
    if existing is not None:
        raise Conflict(f"key {key_id} is already registered" + (" and revoked" if existing.revoked_at else ""),
                       extra={"key": key_id})
    key = ParticipantKey(id=key_id, participant_id=owner_id, public_key=public_key, label=label,
                         created_at=now)
    session.add(key)
    session.flush()
    uow.ledger.append(Draft("key.registered", owner_id, refs={"participant": [owner_id], "key": [key_id]},
                            body={"public_key": public_key, "algorithm": "ed25519", "label": label, **vouch}))
    return key


def register_key(uow: UnitOfWork, actor: Principal, *, public_key: str, proof: str, label: str | None = None,
                 endorsement: dict | None = None, approval: dict | None = None,
                 now: datetime) -> ParticipantKey:
    """Register an Ed25519 public key: its proof of possession plus a proof a token thief lacks.

    That is an ``endorsement`` by an unrevoked key the participant already has, or, for a first key or a
    recovery after every key is lost, an active operator's signed ``approval`` (given out of band after checking
    the key id with the organisation). Both are recorded in the ``key.registered`` entry for auditors.
    """
    key_id = _check_possession(actor.id, public_key, proof)
    if endorsement is None and approval is None:
        raise Forbidden(VOUCH_NEEDED, extra={"has_keys": bool(_unrevoked_keys(uow.session, actor.id))})
    vouch: dict = {}
    try:
        if endorsement is not None:
            _check_endorsement(uow.session, actor.id, public_key, endorsement)
            vouch["endorsement"] = dict(endorsement)
        if approval is not None:
            _check_approval(uow.session, actor.id, public_key, approval, now)
            vouch["approval"] = dict(approval)
    except key_vouch.VouchRefused as exc:
        raise Forbidden(str(exc), extra={exc.vouch: exc.reason}) from exc
    return _add_key(uow, actor.id, key_id, public_key, label, vouch, now)


def register_bootstrap_key(uow: UnitOfWork, operator: Principal, *, public_key: str, proof: str, now: datetime,
                           label: str | None = None) -> ParticipantKey:
    """Register the very first key of the exchange, the bootstrapped operator's, in its bootstrap transaction.

    Nothing can vouch for it: it is the root every later approval descends from, so it is refused once any key
    exists.
    """
    if not operator.has_role(rules.OPERATOR):
        raise Forbidden("only the bootstrapped operator registers a key without an endorsement or approval")
    if uow.session.scalar(select(func.count()).select_from(ParticipantKey)):
        raise Conflict("the exchange already has keys: the bootstrap key can only be the first one")
    return _add_key(uow, operator.id, _check_possession(operator.id, public_key, proof), public_key, label, {},
                    now)


def _unrevoked_keys(session: Session, participant_id: str) -> list[ParticipantKey]:
    return list(session.scalars(select(ParticipantKey).where(ParticipantKey.participant_id == participant_id,
                                                             ParticipantKey.revoked_at.is_(None))))


def active_key(session: Session, participant_id: str, key_id: str) -> str | None:
    """Return the base64 public key ``key_id`` if it is a registered, unrevoked key of the participant."""
    key = session.get(ParticipantKey, key_id)
    if key is None or key.participant_id != participant_id or key.revoked_at is not None:
        return None
    return key.public_key


def list_keys(session: Session, participant_id: str) -> list[ParticipantKey]:
    """Return a participant's keys, revoked ones included, oldest first."""
    return list(session.scalars(select(ParticipantKey).where(ParticipantKey.participant_id == participant_id)
                                .order_by(ParticipantKey.created_at, ParticipantKey.id)))


def _revoke_owned(session: Session, actor: Principal, model: type, kind: str, participant_id: str, row_id: str,
                  now: datetime):
    """Mark a key or token of ``participant_id`` revoked, after checking who asks and that it is not already."""
    row = session.get(model, row_id)
    if row is None or row.participant_id != participant_id:
        raise NotFound(f"no {kind} {row_id} for participant {participant_id}")
    require_self_or_operator(actor, participant_id)
    if row.revoked_at is not None:
        raise Conflict(f"{kind} {row_id} is already revoked", extra={kind: row_id})
    row.revoked_at = now
    return row


def revoke_key(uow: UnitOfWork, actor: Principal, participant_id: str, key_id: str, now: datetime) -> ParticipantKey:
    """Revoke a key: its owner may, and so may an operator (for a compromised key)."""
    key = _revoke_owned(uow.session, actor, ParticipantKey, "key", participant_id, key_id, now)
    uow.ledger.append(Draft("key.revoked", actor.id, refs={"participant": [participant_id], "key": [key_id]}),
                      parties=[participant_id])
    return key


def issue_token(session: Session, actor: Principal, label: str | None, now: datetime) -> IssuedToken:
    """Give the caller another token."""
    return _issue_token(session, actor.id, label, now)


def issue_token_for(session: Session, actor: Principal, participant_id: str, label: str | None,
                    now: datetime) -> IssuedToken:
    """Give a participant a token as its operator, for recovery after its own were stolen or lost."""
    _require(actor, rules.OPERATOR)
    return _issue_token(session, _load(session, participant_id).id, label or "issued by an operator", now)


def list_tokens(session: Session, participant_id: str) -> list[ApiToken]:
    """Return a participant's tokens (never their secrets), oldest first."""
    return list(session.scalars(select(ApiToken).where(ApiToken.participant_id == participant_id)
                                .order_by(ApiToken.created_at, ApiToken.id)))


def revoke_token(session: Session, actor: Principal, participant_id: str, token_id: str, now: datetime) -> ApiToken:
    """Revoke a token: its owner may, and so may an operator."""
    return _revoke_owned(session, actor, ApiToken, "token", participant_id, token_id, now)


def authenticate(session: Session, secret: str) -> Principal:
    """Return the principal behind an API token, or raise ``Unauthenticated``."""
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == crypto.token_hash(secret)))
    if token is None:
        raise Unauthenticated("unknown API token")
    if token.revoked_at is not None:
        raise Unauthenticated("this API token has been revoked")
    participant = session.get(Participant, token.participant_id)
    return Principal(id=participant.id, roles=frozenset(participant.roles), status=participant.status,
                     token_id=token.id)


def _load(session: Session, participant_id: str) -> Participant:
    participant = session.get(Participant, participant_id)
    if participant is None:
        raise NotFound(f"no participant {participant_id}")
    return participant


def _require(actor: Principal, *roles: str) -> None:
    if not actor.has_role(*roles):
        raise Forbidden(f"requires the role {' or '.join(roles)}")


def require_self_or_operator(actor: Principal, participant_id: str) -> None:
    """Raise ``Forbidden`` unless the actor is the participant itself or an operator."""
    if actor.id != participant_id and not actor.has_role(rules.OPERATOR):
        raise Forbidden("only the participant itself or an operator may do this")
