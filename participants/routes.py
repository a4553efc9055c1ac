"""HTTP routes of the participants API: load, call a service, dump."""

from __future__ import annotations

from flask_smorest import Blueprint

from common.db import read_session, unit_of_work, utcnow
from ledger.service import unit_of_work as recorded_work
from participants import schemas, services
from participants.rules import OPERATOR
from web.auth import SELF_CERTIFIED, authenticated, current_principal
from web.problems import answers
from web.schemas import page_body, page_window

blp = Blueprint("participants", __name__, url_prefix="/api/v1/participants",
                description="Participants (数据提供方 providers, 数据使用方 consumers, 监管方 regulators, "
                            "运营方 operators), their keys and API tokens")


def _resolve(participant_id: str) -> str:
    """Let ``me`` stand for the caller's own id in every participant path."""
    return current_principal().id if participant_id == "me" else participant_id


def _enrolment(participant, issued) -> dict:
    return {"participant": participant,
            "token": {"token": issued.secret, "id": issued.row.id, "label": issued.row.label}}


@blp.post("")
@authenticated(OPERATOR, signed=True)
@blp.arguments(schemas.ParticipantCreate)
@blp.response(201, schemas.Enrolment)
def create_participant(body):
    """Enrol an organisation (pending until admitted); its first API token is returned once."""
    with recorded_work() as uow:
        participant, issued = services.create_participant(uow, current_principal(), **body, now=utcnow())
        return _enrolment(participant, issued)


@blp.get("")
@authenticated()
@blp.arguments(schemas.ParticipantQuery, location="query")
@blp.response(200, schemas.ParticipantPage)
def list_participants(args):
    """List the participants the caller may see, oldest first."""
    offset, limit = page_window(args)
    rows, total = services.list_participants(read_session(), current_principal(), role=args["role"],
                                             status=args["status"], offset=offset, limit=limit)
    return page_body(rows, args, total)


@blp.get("/me")
@authenticated(inactive_ok=True)
@blp.response(200, schemas.Participant)
def get_me():
    """Read the caller's own participant record and status (allowed while pending or suspended)."""
    principal = current_principal()
    return services.get_participant(read_session(), principal, principal.id)


@blp.get("/<participant_id>")
@authenticated(inactive_ok=True)
@blp.response(200, schemas.Participant)
def get_participant(participant_id):
    """Read a participant's profile."""
    return services.get_participant(read_session(), current_principal(), participant_id)


def _status_route(action: str, summary: str):
    @authenticated(OPERATOR, signed=True)
    @blp.arguments(schemas.StatusChange)
    @blp.response(200, schemas.Participant)
    def view(body, participant_id):
        with recorded_work() as uow:
            return services.change_status(uow, current_principal(), participant_id, action, body["reason"],
                                          now=utcnow())

    view.__doc__ = summary
    view.__name__ = f"{action}_participant"
    blp.post(f"/<participant_id>/{action}")(view)


_status_route("admit", "Admit a pending participant (operators only).")
_status_route("suspend", "Suspend a participant, with a reason (operators only).")
_status_route("reinstate", "Reinstate a suspended participant (operators only).")


@blp.get("/<participant_id>/keys")
@authenticated()
@blp.response(200, schemas.Key(many=True))
def list_keys(participant_id):
    """List a participant's registered public keys, revoked ones included."""
    session = read_session()
    participant_id = _resolve(participant_id)
    services.get_participant(session, current_principal(), participant_id)
    return services.list_keys(session, participant_id)


@blp.post("/me/keys")
@authenticated(signed=SELF_CERTIFIED)
@blp.arguments(schemas.KeyRegistration)
@blp.response(201, schemas.Key)
def register_key(body):
    """Register an Ed25519 public key; the request is signed by that key (proof of possession), and the body
    carries an endorsement by an existing key of the caller or, for a first or recovery key, an operator's
    approval."""
    with recorded_work() as uow:
        return services.register_key(uow, current_principal(), **body, now=utcnow())


@blp.post("/<participant_id>/keys/<key_id>/revoke")
@authenticated(signed=True)
@blp.response(200, schemas.Key)
def revoke_key(participant_id, key_id):
    """Revoke a key (its owner or an operator)."""
    with recorded_work() as uow:
        return services.revoke_key(uow, current_principal(), _resolve(participant_id), key_id, utcnow())


def _issued(issued) -> dict:
    return {"token": issued.secret, "id": issued.row.id, "label": issued.row.label}


@blp.post("/me/tokens")
@authenticated(signed=True)
@blp.arguments(schemas.TokenRequest)
@blp.response(201, schemas.IssuedToken)
def issue_token(body):
    """Issue another API token for the caller (signed: a stolen token cannot mint more); the secret is returned
    once."""
    with unit_of_work() as session:
        return _issued(services.issue_token(session, current_principal(), body["label"], utcnow()))


@blp.post("/<participant_id>/tokens")
@authenticated(OPERATOR, signed=True)
@blp.arguments(schemas.TokenRequest)
@blp.response(201, schemas.IssuedToken)
def issue_token_for(body, participant_id):
    """Issue a token for a participant that lost or revoked its own (operators; recovery); returned once."""
    with unit_of_work() as session:
        return _issued(services.issue_token_for(session, current_principal(), participant_id, body["label"],
                                                         utcnow()))


@blp.get("/<participant_id>/tokens")
@authenticated()
@blp.response(200, schemas.Token(many=True))
def list_tokens(participant_id):
    """List a participant's tokens without their secrets (the participant itself or an operator)."""
    participant_id = _resolve(participant_id)
    services.require_self_or_operator(current_principal(), participant_id)
    return services.list_tokens(read_session(), participant_id)


@blp.post("/<participant_id>/tokens/<token_id>/revoke")
@authenticated()
@blp.response(200, schemas.Token)
@answers(blp, 409, "the token is already revoked")
def revoke_token(participant_id, token_id):
    """Revoke a token (its owner or an operator)."""
    with unit_of_work() as session:
        return services.revoke_token(session, current_principal(), _resolve(participant_id), token_id, utcnow())
