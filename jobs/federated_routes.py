"""HTTP routes of federated training (联邦学习): the consumer drives a federated-learning job round by round.

    POST /jobs/<id>/rounds            ticket and run the next round (202; the nodes answer in the background)
    GET  /jobs/<id>/rounds            the rounds so far (consumer, providers, regulators; rows not to the consumer)
    GET  /jobs/<id>/rounds/<n>        one round, with the summed ciphertext for the consumer
    POST /jobs/<id>/finish            end the training with the metrics, contributions and the model's hash
    GET  /jobs/<id>/training          what the consumer reported at the end
"""

from __future__ import annotations

import base64

from flask import current_app, jsonify
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from authorization.schemas import HEX_HASH, ID
from common.db import read_session, utcnow
from common.errors import Conflict, Forbidden, InvalidInput, NotFound, Unavailable
from common.vocab import ComputationKind
from jobs import federated, runner
from jobs import service as job_service
from jobs.model import Job, JobRound, JobTraining
from ledger import service
from ledger.service import unit_of_work
from participants.rules import CONSUMER
from web.auth import authenticated, current_principal
from web.schemas import RequestSchema

blp = Blueprint("federated", __name__, url_prefix="/api/v1",
                description="Federated training (联邦学习): rounds of a federated-learning job, their encrypted sums, "
                            "and the training's report")

MAX_MODEL = 1001  # weights of up to 1000 features and the intercept


class RoundBody(RequestSchema):
    phase = fields.String(required=True, validate=validate.OneOf([federated.MOMENTS, federated.TRAIN]))
    theta = fields.List(fields.Float(allow_nan=False), load_default=None, allow_none=True,
                        validate=validate.Length(min=2, max=MAX_MODEL),
                        metadata={"description": "the global model: weights on standardized features, then intercept"})
    standardizer = fields.Dict(load_default=None, allow_none=True,
                               metadata={"description": "{mean: [...], std: [...]} from the moments round"})
    providers = fields.List(fields.String(validate=ID), load_default=None, allow_none=True,
                            validate=validate.Length(min=2, max=100),
                            metadata={"description": "a leave-one-out training: the providers taking part"})


class FinishBody(RequestSchema):
    model_sha256 = fields.String(required=True, validate=HEX_HASH)
    metrics = fields.List(fields.Dict(), load_default=list, validate=validate.Length(max=10_000),
                          metadata={"description": "per round: {round, loss, accuracy or r2, …} as the consumer "
                                                   "measured them on its own validation rows"})
    contributions = fields.Dict(keys=fields.String(validate=ID), values=fields.Float(allow_nan=False),
                                load_default=dict, metadata={"description": "provider id → share of the value"})


class RoundSchema(Schema):
    job_id = fields.String()
    number = fields.Integer()
    phase = fields.String()
    status = fields.String()
    providers = fields.Function(lambda r: _providers(r), metadata={
        "description": "the providers the round sums over (the exchange's plan: all, or all but one in a "
                       "leave-one-out training)"})
    contributors = fields.List(fields.String())
    dropped = fields.List(fields.Dict())
    rows = fields.Integer(allow_none=True, metadata={"description": "rows summed; withheld from the consumer"})
    result_sha256 = fields.String(allow_none=True)
    error = fields.String(allow_none=True)
    created_at = fields.DateTime()
    finished_at = fields.DateTime(allow_none=True)


class RoundResultSchema(RoundSchema):
    result = fields.Function(lambda r: None if r.result is None else base64.b64encode(r.result).decode(),
                             metadata={"description": "base64 of the summed ciphertext; only the consumer decrypts"})


class TrainingSchema(Schema):
    job_id = fields.String()
    model_sha256 = fields.String()
    metrics = fields.List(fields.Dict())
    contributions = fields.Dict()
    finished_at = fields.DateTime()


def _providers(row) -> list[str]:
    tickets = row["tickets"] if isinstance(row, dict) else row.tickets
    return sorted(t["provider"] for t in tickets)


def _values(row, schema: type[Schema]) -> dict:
    """Return the attributes a schema shows, read while the row's session is open."""
    names = [name for name in schema().fields if name != "providers"]
    return {name: getattr(row, name) for name in names + (["tickets"] if "providers" in schema().fields else [])}


def _visible(job_id: str) -> Job:
    job = job_service.visible(read_session(), current_principal(), job_id)
    if job.computation_kind != ComputationKind.FEDERATED_LEARNING:
        raise NotFound(f"job {job_id} is not a federated training")
    return job


@blp.post("/jobs/<job_id>/rounds")
@authenticated(CONSUMER, signed=True)
@blp.arguments(RoundBody)
@blp.response(202, RoundSchema)
def start_round(body, job_id):
    """Ticket the next round for the job's providers and run it in the background; poll the round for its sum."""
    identity = service.identity()
    if identity is None:
        raise Unavailable("the exchange has no signing key yet; run `pdx init`")
    request = federated.RoundRequest(body["phase"], body["theta"], body["standardizer"], body["providers"])
    actor = current_principal()
    try:
        with unit_of_work() as uow:
            row = federated.start_round(uow, actor, job_id, request, utcnow(), identity.key, identity.origin)
            started = _values(row, RoundSchema)  # this request's read session predates the round
    except (InvalidInput, Forbidden) as exc:  # a first round refused: the job must not stay admitted, holding quota
        federated.abandon_unstarted(job_id, actor.id, f"the first round was refused: {exc.detail}")
        raise
    current_app.extensions[runner.EXTENSION_KEY].submit_round(job_id, started["number"])
    return started


@blp.get("/jobs/<job_id>/rounds")
@authenticated()
@blp.response(200, RoundSchema(many=True))
def list_rounds(job_id):
    """The rounds of a federated training so far, in order (the rows each summed: not for the consumer)."""
    job = _visible(job_id)
    rows = list(read_session().scalars(select(JobRound).where(JobRound.job_id == job.id).order_by(JobRound.number)))
    return jsonify([_for_viewer(job, RoundSchema().dump(row)) for row in rows])


@blp.get("/jobs/<job_id>/rounds/<count:number>")
@authenticated()
@blp.response(200, RoundResultSchema)
def get_round(job_id, number):
    """One round; its summed ciphertext is shown to the job's consumer only, its rows to everyone else."""
    job = _visible(job_id)
    row = read_session().get(JobRound, (job.id, number))
    if row is None:
        raise NotFound(f"job {job_id} has no round {number}")
    if current_principal().id != job.consumer_id:
        return jsonify(RoundSchema().dump(row))  # without the sum: it is the consumer's alone
    return jsonify(_for_viewer(job, RoundResultSchema().dump(row)))


def _for_viewer(job: Job, dumped: dict) -> dict:
    """Withhold a round's row total from the job's consumer: the totals of a subset and of everyone, or of rounds
    with and without a dropout, would difference to one provider's row count (it decodes what it may know)."""
    return {**dumped, "rows": None} if current_principal().id == job.consumer_id else dumped


@blp.post("/jobs/<job_id>/finish")
@authenticated(CONSUMER, signed=True)
@blp.arguments(FinishBody)
@blp.response(200, TrainingSchema)
def finish(body, job_id):
    """End the training: the consumer's per-round metrics, each provider's contribution, the final model's hash."""
    with unit_of_work() as uow:
        report = federated.finish(uow, current_principal(), job_id, body["model_sha256"], body["metrics"],
                                  body["contributions"])
        uow.session.flush()
        return _values(report, TrainingSchema)


@blp.get("/jobs/<job_id>/training")
@authenticated()
@blp.response(200, TrainingSchema)
def get_training(job_id):
    """What the consumer reported when it finished the training (metrics, contributions, model hash)."""
    job = _visible(job_id)
    report = read_session().get(JobTraining, job.id)
    if report is None:
        raise Conflict(f"job {job_id} is still {job.status}", extra={"current_status": job.status})
    return report
