"""HTTP routes of jobs: submit a job under a grant, read it, fetch its result. Load → call ``jobs.service`` → dump."""

from __future__ import annotations

from flask import current_app
from flask_smorest import Blueprint

from authorization import alerts
from common.db import read_session, utcnow
from common.errors import Unavailable
from jobs import runner, schemas, service
from ledger import service as ledger_service
from participants.rules import CONSUMER
from web.auth import authenticated, current_principal
from web.problems import answers

blp = Blueprint("jobs", __name__, url_prefix="/api/v1",
                description="Jobs (任务): admission under a grant with signed tickets, and results only the "
                            "consumer can decrypt")


@blp.post("/jobs")
@authenticated(CONSUMER, signed=True)
@blp.arguments(schemas.JobBody)
@blp.response(201, schemas.JobSchema)
@answers(blp, 404, "the grant named in the body does not exist or is not visible to the caller")
def submit_job(body):
    """Admit a job under a grant: check its parameters and declared sizes against its assets, decide, consume the
    quotas and issue one ticket per provider (with the declared sizes as limits), atomically."""
    identity = ledger_service.identity()
    if identity is None:
        raise Unavailable("the exchange has no signing key yet; run `pdx init`")
    job = service.submit(read_session(), current_principal(), body, utcnow(), identity,
                         alerts.policy_of(current_app.config))
    if body["computation_kind"] in runner.RUNNABLE:
        current_app.extensions[runner.EXTENSION_KEY].submit(job.id)
    return job


@blp.get("/jobs/<job_id>")
@authenticated()
@blp.response(200, schemas.JobSchema)
def get_job(job_id):
    """Read a job and its status (admitted, completed, failed): its consumer, its providers, regulators."""
    return service.visible(read_session(), current_principal(), job_id)


@blp.get("/jobs/<job_id>/result")
@authenticated(CONSUMER)
@blp.response(200, schemas.JobResultSchema)
@answers(blp, 409, "the job has no result yet (current_status says where it is)")
def get_job_result(job_id):
    """The job's summed ciphertext (for its consumer, who alone can decrypt it), or why it failed."""
    return service.result_of(read_session(), current_principal(), job_id)
