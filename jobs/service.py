"""Submitting and reading jobs: what the job routes call.

``submit`` decodes and checks what the consumer sent (its declarations against the assets, its public context),
lets the exchange say what a federated training spends, expires the grant first if it is overdue, then admits the
job — decision, quotas, one ticket per provider, `job.admitted` — and stores its payload, in one transaction. A
refused statistics job is noted against its grant (a tracker probes with refusals) in a transaction of its own,
and the refusal goes on to the consumer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import replace
from datetime import datetime
from typing import Any, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from authorization import alerts, workflow
from common.errors import Conflict, Forbidden, InvalidInput, NotFound
from common.vocab import ComputationKind
from jobs import admission, federated, runner
from jobs.model import Job, JobPayload, JobResult, JobTicket
from ledger.log import LogIdentity
from ledger.service import unit_of_work
from participants.rules import OPERATOR, REGULATOR, Principal
from privacy import he


def _decoded(body: Mapping[str, Any], name: str) -> bytes | None:
    if body[name] is None:
        return None
    try:
        return base64.b64decode(body[name], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(f"{name} is not base64", errors={name: ["not base64"]}) from exc


def job_request(body: Mapping[str, Any], context: bytes | None) -> admission.JobRequest:
    """Return the admission request a job body describes (its context bound by hash)."""
    context_sha256 = None if context is None else hashlib.sha256(context).hexdigest()
    return admission.JobRequest(grant_id=body["grant"], assets=body["assets"],
                                computation_kind=body["computation_kind"], params=body["params"],
                                context_sha256=context_sha256 or body["context_sha256"], rows=body["rows"],
                                epsilon=body["epsilon"], group_size=body["group_size"],
                                result_cells=body["result_cells"])


def submit(session: Session, actor: Principal, body: Mapping[str, Any], now: datetime, identity: LogIdentity,
           alert_policy: alerts.Policy) -> Job:
    """Admit the job ``body`` describes for ``actor`` (see the module's docstring); return it."""
    try:
        return _admit(session, actor, body, now, identity)
    except (InvalidInput, Forbidden) as exc:
        if body["computation_kind"] in alerts.WATCHED_KINDS:
            with unit_of_work(system=True) as uow:
                alerts.note_refusal(uow, body["grant"], alerts.ADMISSION, alerts.refusal_cause(exc), now,
                                    alert_policy, consumer_id=actor.id)
        raise


def _admit(session: Session, actor: Principal, body: Mapping[str, Any], now: datetime, identity: LogIdentity) -> Job:
    context, weights = _decoded(body, "context"), _decoded(body, "weights")
    request = job_request(body, context)
    admission.check_declarations(session, request)
    kind = body["computation_kind"]
    if (kind in runner.RUNNABLE or kind == ComputationKind.FEDERATED_LEARNING) and context is None:
        raise InvalidInput(f"a {kind} job needs the consumer's public HE context", errors={"context": ["required"]})
    if context is not None:
        try:
            he.require_public_context(context)
        except he.HEError as exc:
            raise InvalidInput(f"context: {exc}", errors={"context": [str(exc)]}) from exc
    if kind == ComputationKind.FEDERATED_LEARNING:
        # the exchange, not the consumer, says what the training spends: the RDP accountant over its rounds
        request = replace(request, epsilon=federated.plan_for_submission(body["params"], body["assets"], session).epsilon)
    with unit_of_work(system=True) as uow:  # an expiry is recorded even when the admission is then refused
        workflow.expire_if_due(uow, body["grant"], now)
    with unit_of_work() as uow:
        job, _ = admission.admit(uow, actor, request, now, identity.key, identity.origin)
        uow.session.add(JobPayload(job_id=job.id, params=body["params"], context=context, weights=weights))
    return job


def visible(session: Session, viewer: Principal, job_id: str) -> Job:
    """Return a job its consumer, its providers, regulators and operators may see; 404 for anyone else."""
    job = session.get(Job, job_id)
    providers = [] if job is None else list(session.scalars(select(JobTicket.provider_id)
                                                             .where(JobTicket.job_id == job.id)))
    if job is None or not (viewer.has_role(REGULATOR, OPERATOR) or viewer.id == job.consumer_id
                           or viewer.id in providers):
        raise NotFound(f"no job {job_id}")
    return job


def result_of(session: Session, viewer: Principal, job_id: str) -> JobResult:
    """Return a job's result to its consumer (404 for anyone else), or 409 while it is still running."""
    job = visible(session, viewer, job_id)
    if job.consumer_id != viewer.id:
        raise NotFound(f"no result of job {job_id} for {viewer.id}")
    result = session.get(JobResult, job_id)
    if result is None:
        raise Conflict(f"job {job_id} is still {job.status}", extra={"current_status": job.status})
    return result
