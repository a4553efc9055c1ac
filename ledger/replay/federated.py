"""Replay rules for federated training (jobs.federated): its rounds and its end. Pure.

A federated-learning job is admitted like any job (``grants._job_admitted``); then every `job.round` must follow
the previous one of that job, and a round that released a result (completed) only while its grant is active (a
revoked, suspended or expired grant stops the training; a round it cut short is recorded as failed); and
`job.trained`, signed by the job's consumer, ends it — or `job.failed` does, when a round failed.
"""

from __future__ import annotations

from common.vocab import RoundStatus
from ledger.entries import SYSTEM_ACTOR
from ledger.replay.base import API, ReplayError, Route, Rule, State, expect, ref
from ledger.replay.grants import ACTIVE, grant_of
from ledger.replay.receipts import check_usage

ROUND, TRAINED = "job.round", "job.trained"
ROUND_STATUSES = (RoundStatus.COMPLETED, RoundStatus.FAILED)  # as recorded: a round is recorded once it ended


def _federated_job(state: State, entry: dict):
    grant_id, grant = grant_of(state, entry)
    job_id = ref(entry, "job")
    if job_id not in grant.running or job_id not in grant.federated:
        raise ReplayError("job-status", f"{entry['type']} for job {job_id}, which is not a running federated "
                                        f"training under grant {grant_id}")
    return grant_id, grant, job_id


def _round(state: State, entry: dict) -> None:
    grant_id, grant, job_id = _federated_job(state, entry)
    body = entry["body"]
    if entry["actor"] != SYSTEM_ACTOR:
        raise ReplayError("job-round", "a round is recorded by the exchange itself")
    if grant.status != ACTIVE and body["status"] == RoundStatus.COMPLETED:  # a round the grant's end cut short fails
        raise ReplayError("grant-not-active", f"round of job {job_id} under grant {grant_id}, which is {grant.status}, "
                                              f"released a result")
    expected = grant.federated[job_id]
    if body["round"] != expected:
        raise ReplayError("job-round", f"job {job_id} records round {body['round']}, the next is {expected}")
    if body["status"] not in ROUND_STATUSES or (body["status"] == RoundStatus.COMPLETED) != bool(body["result_sha256"]):
        raise ReplayError("job-round", f"round {expected} of job {job_id} is {body['status']!r} with result "
                                       f"{body['result_sha256']!r}")
    check_usage(state, entry, job_id, grant.job_providers[job_id])
    grant.federated[job_id] = expected + 1


def _trained(state: State, entry: dict) -> None:
    grant_id, grant, job_id = _federated_job(state, entry)
    if entry["actor"] != grant.consumer:
        raise ReplayError("grant-party", f"training {job_id} ended by {entry['actor']}, not by {grant.consumer}")
    if grant.federated[job_id] == 0:
        raise ReplayError("job-round", f"training {job_id} ended before any round")
    grant.running.pop(job_id)
    grant.federated.pop(job_id)
    grant.job_providers.pop(job_id, None)


RULES: dict[str, Rule] = {ROUND: _round, TRAINED: _trained}
ROUTES: dict[str, Route] = {TRAINED: lambda entry, request: expect(request, "POST",
                                                                   f"{API}/jobs/{ref(entry, 'job')}/finish")}
SYSTEM_TYPES = frozenset({ROUND})
