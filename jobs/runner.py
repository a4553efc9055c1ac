"""Running admitted jobs: send each provider node its ticket, verify the signed receipts, add the ciphertexts, and
record `job.completed` — or `job.failed` with the reason, releasing the quota the job had reserved.

Jobs run in a thread pool inside the server process (``PDX_JOB_WORKERS``), so no HTTP request waits on provider
nodes, and the nodes of one job are called at once, well inside the tickets' five minutes. The exchange never
holds a secret key: it only adds ciphertexts under the consumer's public context.

Quota is given back only when a node that proved its identity refused for a reason that cannot depend on the
data (the ticket refused, an asset not mounted, the kind not run) or the exchange itself could not run the job.
A node that is down, unverified or answers anything else, and a node that refuses for a reason that may depend on
the data — a group below the minimum size, an unknown id, more rows than the ticket's limits, a value beyond its
range — keeps the job's quota spent: otherwise refused probes would be free, and a consumer could learn whether a
record exists by filtering on it. Only fixed problem codes of a node's answer reach the consumer and the ledger. Declared sizes bind: receipts reporting more rows than the job declared fail it (not a bill),
and a completed job is charged the rows its receipts report, the rest of its reservation given back.

A job that nothing runs any more — the server stopped, or a federated training whose first round never started —
is failed with its quota given back once its tickets have expired. Right before the nodes are called the grant is
checked again (``jobs.dispatch``): a job whose grant was revoked, suspended or terminated while it waited fails
with ``grant-not-active-at-dispatch``, its quota given back, and no node is called: `pdx serve` does this before it starts, and
every server process again every ``PDX_JOB_RECOVERY_SECONDS``.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import requests
from flask import Flask, current_app
from sqlalchemy import select

from authorization import alerts
from authorization.model import Grant
from catalog.models import Asset
from common import crypto
from common.db import get_database, utcnow
from jobs import dispatch, grantstatus
from jobs.model import Job, JobPayload, JobResult, JobTicket
from jobs.tickets import SignedTicket
from ledger.entries import SYSTEM_ACTOR, Draft, parse_time
from ledger.service import unit_of_work
from participants.models import ParticipantKey
from privacy import aggregation, fixedpoint, he, release
from provider.app import verify_receipt

EXTENSION_KEY = "pdx.jobs"
HE_STATISTICS = "he-statistics"
RUNNABLE = frozenset({HE_STATISTICS, "he-scoring"})
log = logging.getLogger(__name__)


class NodeFailure(Exception):
    """A provider node did not deliver a valid result; ``refused`` when the job's quota stays spent (anything but a
    verified node's refusal that cannot depend on the data); ``probe`` is the fixed code of a node's refusal that
    may depend on the data (a tracker's answer), counted towards the grant's refusal alerts."""

    def __init__(self, message: str, *, refused: bool = False, probe: str | None = None) -> None:
        super().__init__(message)
        self.refused = refused
        self.probe = probe


class JobRunner:
    """The pool that runs jobs in the background of one server process."""

    def __init__(self, app: Flask, workers: int, timeout: float) -> None:
        self.app = app
        self.timeout = timeout
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pdx-job") if workers else None
        self.running: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def start_recovery(self, interval: float) -> threading.Thread:
        """Recover stranded jobs every ``interval`` seconds in a daemon thread, for the life of the process."""
        thread = threading.Thread(target=self._recover_every, args=(interval,), name="pdx-job-recovery", daemon=True)
        thread.start()
        return thread

    def recover(self, now: datetime) -> list[str]:
        """Fail the stranded jobs that this process is not running; a job that started before its tickets expired
        has ``timeout`` more seconds to finish (in another process, perhaps) before it counts as stranded."""
        with self._lock:
            running = frozenset(self.running)
        with self.app.app_context():
            return recover_stranded(now, grace=timedelta(seconds=self.timeout), running=running)

    def _recover_every(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                recovered = self.recover(utcnow())
                if recovered:
                    log.warning("failed %d stranded job(s): %s", len(recovered), ", ".join(recovered))
            except Exception:  # noqa: BLE001 - the next pass tries again; the process must not lose the thread
                log.exception("recovering stranded jobs failed")

    def submit(self, job_id: str) -> Future | None:
        """Run a job in the background (with no workers configured nothing runs it, and it is failed as stranded)."""
        return None if self.pool is None else self.pool.submit(self._run, job_id)

    def submit_round(self, job_id: str, number: int) -> Future | None:
        """Run a round of a federated training in the background."""
        return None if self.pool is None else self.pool.submit(self._run_round, job_id, number)

    def _run_round(self, job_id: str, number: int) -> None:
        from jobs import federated

        with self.app.app_context():
            try:
                federated.run_round(job_id, number, self.timeout)
            except Exception:  # noqa: BLE001 - as for _run: the failure is recorded, the worker lives on
                log.exception("round %s of job %s crashed", number, job_id)
                federated.fail_round(job_id, number, "internal error while running the round")

    def _run(self, job_id: str) -> None:
        with self._lock:
            self.running.add(job_id)
        with self.app.app_context():
            try:
                run_job(job_id, self.timeout)
            except Exception:  # noqa: BLE001 - a job must never take the worker down; the reason is recorded
                log.exception("job %s crashed", job_id)
                fail_job(job_id, "internal error while running the job")
            finally:
                with self._lock:
                    self.running.discard(job_id)


def init_app(app: Flask, workers: int, timeout: float, *, recovery_interval: float | None = None) -> None:
    """Give ``app`` its job runner; with ``recovery_interval`` (seconds), also recover stranded jobs that often."""
    runner = JobRunner(app, workers, timeout)
    app.extensions[EXTENSION_KEY] = runner
    if recovery_interval:
        runner.start_recovery(recovery_interval)


def call_node(endpoint: str, ticket: JobTicket, payload: JobPayload, timeout: float,
              statement: grantstatus.Statement) -> dict[str, Any]:
    """Send one provider node its ticket, the statement that its grant is active and the job's payload, once it
    proved it holds the provider's key (over a connection pinned to the checked address); return its answer or
    raise ``NodeFailure`` with a fixed problem code, never the node's own words.

    The ticket and the statement travel in headers, so the node authenticates them before it reads the body. The
    quota is given back (``refused=False``) only when the verified node reports a known problem that says it could
    not run the job (``nodes.NODE_PROBLEMS``); an unreachable or unverified node, an unknown answer or a refusal
    that may depend on the data keep it spent, so no probe is free.
    """
    from catalog import nodes

    provider = ticket.provider_id
    try:
        http = nodes.open_verified(endpoint, provider, timeout)
    except nodes.NodeError as exc:
        raise NodeFailure(f"provider {provider}'s node was not sent the job: {exc.code}: {exc}", refused=True) \
            from exc
    body: dict[str, Any] = {"params": payload.params, "context": base64.b64encode(payload.context or b"").decode()}
    if payload.weights is not None:
        body["weights"] = base64.b64encode(payload.weights).decode()
    headers = {**SignedTicket(ticket.ticket, ticket.signature).to_headers(), **statement.to_headers()}
    try:
        with http:
            response = http.post(f"{endpoint.rstrip('/')}/v1/jobs/run", json=body, headers=headers,
                                 timeout=timeout, allow_redirects=False)
        answer = response.json()
    except requests.RequestException as exc:
        raise NodeFailure(f"provider node {endpoint} of {provider} did not answer: {type(exc).__name__}",
                          refused=True) from exc
    except ValueError:
        answer = None
    if response.status_code != 200:
        code, message, refund = nodes.node_problem(response.status_code, answer)
        raise NodeFailure(f"provider {provider} refused: {code}: {message}", refused=not refund,
                          probe=None if refund else code)
    if not isinstance(answer, dict):
        raise NodeFailure(f"provider {provider}'s node answered with something that is not a result", refused=True)
    return answer


def check_receipt(session, provider_id: str, job_id: str, answer: dict[str, Any]) -> bytes:
    """Return a node's result once its receipt is for this job and signed by one of the provider's keys."""
    try:
        result = base64.b64decode(answer["result"], validate=True)
        receipt, signature = answer["receipt"], answer["signature"]
    except (KeyError, TypeError, ValueError) as exc:
        raise NodeFailure(f"provider {provider_id} answered without a result and a signed receipt") from exc
    if receipt.get("job") != job_id or receipt.get("provider") != provider_id:
        raise NodeFailure(f"provider {provider_id}'s receipt is for another job or provider")
    if receipt.get("result_sha256") != hashlib.sha256(result).hexdigest():
        raise NodeFailure(f"provider {provider_id}'s receipt does not match its result")
    keys = session.scalars(select(ParticipantKey.public_key).where(ParticipantKey.participant_id == provider_id,
                                                                  ParticipantKey.revoked_at.is_(None)))
    for public_key in keys:
        try:
            verify_receipt(public_key, receipt, signature)
            return result
        except crypto.BadKey:
            continue
    raise NodeFailure(f"provider {provider_id}'s receipt is not signed by any of its registered keys")


def run_job(job_id: str, timeout: float) -> None:
    """Run one admitted job to completion or failure."""
    with get_database().sessionmaker() as session:
        job = session.get(Job, job_id)
        if job.status != "admitted":
            return  # already run, or failed as stranded while it waited for a worker
        payload = session.get(JobPayload, job_id)
        tickets = list(session.scalars(select(JobTicket).where(JobTicket.job_id == job_id)))
        endpoints = {asset.provider_id: asset.node_endpoint for asset in
                     session.scalars(select(Asset).where(Asset.id.in_(job.assets)))}
        try:
            statements = dispatch.current_statements(job.grant_id, [t.ticket for t in tickets], utcnow())
        except dispatch.GrantNotCurrent as exc:
            fail_job(job_id, str(exc), release=True)  # the consumer did nothing wrong; no node read a row
            return
        with ThreadPoolExecutor(max_workers=max(1, len(tickets))) as calls:
            pending = [calls.submit(call_node, endpoints[t.provider_id], t, payload, timeout,
                                    statements[t.ticket["nonce"]]) for t in tickets]
        results, receipts = [], []
        try:
            for ticket, future in zip(tickets, pending):
                answer = future.result()
                results.append(check_receipt(session, ticket.provider_id, job_id, answer))
                receipts.append({"receipt": answer["receipt"], "signature": answer["signature"]})
            check_rows(job.rows_reserved, receipts)
            total = he.add_ciphertexts(payload.context, results) if len(results) > 1 else results[0]
            total, noise = add_privacy_noise(job, payload, total, tickets[0].ticket.get("obligations") or {})
        except NodeFailure as exc:
            fail_job(job_id, str(exc), release=not exc.refused, probe=exc.probe)
            return
        except he.HEError as exc:
            fail_job(job_id, f"the partial results could not be added: {exc}")
            return
        except (release.ReleaseError, fixedpoint.FixedPointError) as exc:
            fail_job(job_id, f"the differential-privacy noise could not be added: {exc}")
            return
    complete_job(job_id, total, receipts, noise)


def add_privacy_noise(job: Job, payload: JobPayload, total: bytes, obligations: dict[str, Any]
                      ) -> tuple[bytes, dict[str, Any] | None]:
    """Add the calibrated DP noise of a private statistics job to its encrypted sum; return it and the release.

    A job is private when its tickets oblige the nodes to differential privacy (``dp-noise``, the grant's budget):
    then they clipped the aggregated columns, and the noise is calibrated to those bounds. The exchange never sees
    the values it noises: the noise vector is encoded and encrypted under the consumer's public context and added
    to the ciphertext, so the consumer only ever decrypts the noised statistics.
    """
    if job.computation_kind != HE_STATISTICS or not float(obligations.get("dp-noise") or 0.0) > 0:
        return total, None
    plan = aggregation.StatisticsPlan.from_dict(payload.params["plan"])
    calibration = release.calibrate(plan, payload.params.get("bounds"), job.epsilon)
    noise = fixedpoint.encode(calibration.noise(aggregation.layout(plan).size))
    noised = he.add_ciphertexts(payload.context, [total, he.encrypt_vector(payload.context, noise)])
    return noised, calibration.to_json()


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


def recover_stranded(now: datetime, *, grace: timedelta = timedelta(0), running: frozenset[str] = frozenset()
                     ) -> list[str]:
    """Fail every admitted job, of any kind, that nothing runs and whose tickets expired before ``now − grace``
    (the server stopped first; a federated training whose first round never started), giving its quota back;
    return their ids, with those of the federated trainings whose running round was stranded."""
    with get_database().sessionmaker() as session:
        admitted = list(session.scalars(select(Job).where(Job.status == "admitted")))
        expired = []
        for job in admitted:
            tickets = list(session.scalars(select(JobTicket).where(JobTicket.job_id == job.id)))
            if job.id not in running and all(parse_time(t.ticket["expires_at"]) < now - grace for t in tickets):
                expired.append(job.id)
    expired = [job_id for job_id in expired
               if fail_job(job_id, "nothing ran the job before its tickets expired (the exchange stopped, or a "
                                   "federated training never started its first round)", only_if="admitted")]
    from jobs import federated

    return expired + federated.recover_stranded_rounds(now)


def complete_job(job_id: str, result: bytes, receipts: list[dict[str, Any]],
                 noise: dict[str, Any] | None = None) -> None:
    """Store the summed ciphertext, charge the grant the rows the receipts report (giving back the rest of the
    job's reservation) and record `job.completed` with the result's hash, each provider's usage and, for a private
    job, the calibration of the noise it carries."""
    digest = hashlib.sha256(result).hexdigest()
    with unit_of_work(system=True) as uow:
        job = uow.session.scalar(select(Job).where(Job.id == job_id).with_for_update())
        if job.status != "admitted":
            log.warning("job %s finished running but is already %s; its result is dropped", job_id, job.status)
            return
        job.status = "completed"
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
        if job.status in ("completed", "failed") or (only_if is not None and job.status != only_if):
            return False
        released = {"jobs": 1, "rows": job.rows_reserved, "epsilon": job.epsilon} if release else {
            "jobs": 0, "rows": 0, "epsilon": 0.0}
        grant = uow.session.scalar(select(Grant).where(Grant.id == job.grant_id).with_for_update())
        grant.jobs_used -= released["jobs"]
        grant.rows_used -= released["rows"]
        grant.epsilon_used -= released["epsilon"]
        job.status = "failed"
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
