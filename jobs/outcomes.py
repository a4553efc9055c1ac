"""How a job ends: `job.completed` with its summed ciphertext and each provider's signed usage, or `job.failed`
with the reason, each in one transaction with the grant's quotas (charged from the receipts, or given back).

Declared sizes bind: receipts reporting more rows than the job declared fail it (not a bill), and a completed job
is charged the rows its receipts report, the rest of its reservation given back.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from flask import current_app
from sqlalchemy import select

from authorization import alerts
from authorization.model import Grant
from common.db import utcnow
from common.vocab import JobStatus
from jobs.model import Job, JobResult, JobTicket
from jobs.nodes import NodeFailure
from ledger.entries import SYSTEM_ACTOR, Draft
from ledger.service import unit_of_work

log = logging.getLogger(__name__)


def rows_used(receipts: list[dict[str, Any]]) -> int:
    """Return the rows the nodes' receipts report, in all."""
    return sum(int(r["receipt"]["rows_used"]) for r in receipts)


def check_rows(declared: int, receipts: list[dict[str, Any]]) -> None:
    """Raise ``NodeFailure`` (not a refusal: nothing is billed) if the receipts report more rows than declared."""
    try:
        used = rows_used(receipts)
    except (KeyError, TypeError, ValueError) as exc:
        raise NodeFailure("a node's receipt does not say how many rows it used") from exc
    if used > declared:
        raise NodeFailure(f"the nodes' receipts report {used} rows, above the {declared} rows the job declared: "
                          f"the job is failed, not billed")


def complete_job(job_id: str, result: bytes, receipts: list[dict[str, Any]],
                 noise: dict[str, Any] | None = None) -> None:
    """Store the summed ciphertext, charge the grant the rows the receipts report (giving back the rest of the
    job's reservation) and record `job.completed` with the result's hash, each provider's usage and, for a private
    job, the calibration of the noise it carries."""
    digest = hashlib.sha256(result).hexdigest()
    with unit_of_work(system=True) as uow:
        job = uow.session.scalar(select(Job).where(Job.id == job_id).with_for_update())
        if job.status != JobStatus.ADMITTED:
            log.warning("job %s finished running but is already %s; its result is dropped", job_id, job.status)
            return
        job.status = JobStatus.COMPLETED
        used = rows_used(receipts)
        released = job.rows_reserved - used
        grant = uow.session.scalar(select(Grant).where(Grant.id == job.grant_id).with_for_update())
        grant.rows_used -= released
        uow.session.add(JobResult(job_id=job_id, result=result, result_sha256=digest, receipts=receipts,
                                  error=None, finished_at=utcnow(), release=noise))
        # The nodes' signed receipts go into the entry whole: anyone can check them offline against the
        # providers' keys registered in the log.
        usage = [{"provider": r["receipt"]["provider"], "rows_used": r["receipt"]["rows_used"],
                  "receipt": r["receipt"], "signature": r["signature"]} for r in receipts]
        uow.ledger.append(Draft("job.completed", SYSTEM_ACTOR, refs={"job": [job_id], "grant": [job.grant_id]},
                                body={"result_sha256": digest, "usage": usage,
                                      "rows": {"declared": job.rows_reserved, "used": used, "released": released},
                                      **({"release": noise} if noise is not None else {})}),
                          parties=[job.consumer_id, *[u["provider"] for u in usage]])


def fail_job(job_id: str, reason: str, *, release: bool = True, only_if: str | None = None,
             probe: str | None = None) -> bool:
    """Record `job.failed` with the reason, giving back the quota the job reserved when ``release``; return whether
    it failed the job (not if it had already ended, or is no longer in status ``only_if``). A ``probe`` (a node's
    data-dependent refusal) is noted against the grant in the same transaction, and may raise its alert."""
    with unit_of_work(system=True) as uow:
        job = uow.session.scalar(select(Job).where(Job.id == job_id).with_for_update())
        if job.status in (JobStatus.COMPLETED, JobStatus.FAILED) or (only_if is not None and job.status != only_if):
            return False
        released = {"jobs": 1, "rows": job.rows_reserved, "epsilon": job.epsilon} if release else {
            "jobs": 0, "rows": 0, "epsilon": 0.0}
        grant = uow.session.scalar(select(Grant).where(Grant.id == job.grant_id).with_for_update())
        grant.jobs_used -= released["jobs"]
        grant.rows_used -= released["rows"]
        grant.epsilon_used -= released["epsilon"]
        job.status = JobStatus.FAILED
        uow.session.add(JobResult(job_id=job_id, result=None, result_sha256=None, receipts=[], error=reason,
                                  finished_at=utcnow()))
        providers = list(uow.session.scalars(select(JobTicket.provider_id).where(JobTicket.job_id == job_id)))
        uow.ledger.append(Draft("job.failed", SYSTEM_ACTOR, refs={"job": [job_id], "grant": [job.grant_id]},
                                body={"reason": reason, "released": released}),
                          parties=[job.consumer_id, *providers])
        if probe is not None:
            alerts.note_refusal(uow, job.grant_id, alerts.NODE, probe, utcnow(), alerts.policy_of(current_app.config),
                                consumer_id=job.consumer_id, job_id=job_id)
    return True
