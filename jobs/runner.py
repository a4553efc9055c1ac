"""Running admitted jobs: send each provider node its ticket, verify the signed receipts, add the ciphertexts, and
record the outcome (``jobs.outcomes``). Nodes are called through the injected ``jobs.nodes.NodeClient``.

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

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import select

from catalog.models import Asset
from common.db import get_database, utcnow
from common.vocab import ComputationKind, JobStatus
from jobs import dispatch, federated
from jobs.model import Job, JobPayload, JobTicket
from jobs.nodes import HttpNodeClient, NodeCall, NodeClient, NodeFailure
from jobs.outcomes import check_rows, complete_job, fail_job
from ledger.entries import parse_time
from privacy import aggregation, fixedpoint, he, release
from protocol.tickets import SignedTicket

EXTENSION_KEY = "pdx.jobs"
RUNNABLE = frozenset({ComputationKind.HE_STATISTICS, ComputationKind.HE_SCORING})
log = logging.getLogger(__name__)


class JobRunner:
    """The pool that runs jobs in the background of one server process."""

    def __init__(self, app: Flask, workers: int, timeout: float, nodes: NodeClient) -> None:
        self.app = app
        self.timeout = timeout
        self.nodes = nodes
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
        with self.app.app_context():
            try:
                federated.run_round(job_id, number, self.timeout, self.nodes)
            except Exception:  # noqa: BLE001 - as for _run: the failure is recorded, the worker lives on
                log.exception("round %s of job %s crashed", number, job_id)
                federated.fail_round(job_id, number, "internal error while running the round")

    def _run(self, job_id: str) -> None:
        with self._lock:
            self.running.add(job_id)
        with self.app.app_context():
            try:
                run_job(job_id, self.timeout, self.nodes)
            except Exception:  # noqa: BLE001 - a job must never take the worker down; the reason is recorded
                log.exception("job %s crashed", job_id)
                fail_job(job_id, "internal error while running the job")
            finally:
                with self._lock:
                    self.running.discard(job_id)


def init_app(app: Flask, workers: int, timeout: float, *, recovery_interval: float | None = None,
             nodes: NodeClient | None = None) -> None:
    """Give ``app`` its job runner, calling nodes through ``nodes`` (HTTP unless given); with ``recovery_interval``
    (seconds), also recover stranded jobs that often."""
    runner = JobRunner(app, workers, timeout, nodes or HttpNodeClient())
    app.extensions[EXTENSION_KEY] = runner
    if recovery_interval:
        runner.start_recovery(recovery_interval)


def run_job(job_id: str, timeout: float, nodes: NodeClient) -> None:
    """Run one admitted job to completion or failure."""
    with get_database().sessionmaker() as session:
        job = session.get(Job, job_id)
        if job.status != JobStatus.ADMITTED:
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
        calls = [NodeCall(endpoints[t.provider_id], t.provider_id, SignedTicket(t.ticket, t.signature),
                          statements[t.ticket["nonce"]], payload.params, payload.context, payload.weights)
                 for t in tickets]
        with ThreadPoolExecutor(max_workers=max(1, len(calls))) as pool:
            pending = [pool.submit(nodes.run, call, timeout) for call in calls]
        results, receipts = [], []
        try:
            for call, future in zip(calls, pending):
                answer = future.result()
                results.append(dispatch.checked_result(session, job_id, call.provider_id, answer))
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
    if job.computation_kind != ComputationKind.HE_STATISTICS or not float(obligations.get("dp-noise") or 0.0) > 0:
        return total, None
    plan = aggregation.StatisticsPlan.from_dict(payload.params["plan"])
    calibration = release.calibrate(plan, payload.params.get("bounds"), job.epsilon)
    noise = fixedpoint.encode(calibration.noise(aggregation.layout(plan).size))
    noised = he.add_ciphertexts(payload.context, [total, he.encrypt_vector(payload.context, noise)])
    return noised, calibration.to_json()


def recover_stranded(now: datetime, *, grace: timedelta = timedelta(0), running: frozenset[str] = frozenset()
                     ) -> list[str]:
    """Fail every admitted job, of any kind, that nothing runs and whose tickets expired before ``now − grace``
    (the server stopped first; a federated training whose first round never started), giving its quota back;
    return their ids, with those of the federated trainings whose running round was stranded."""
    with get_database().sessionmaker() as session:
        admitted = list(session.scalars(select(Job).where(Job.status == JobStatus.ADMITTED)))
        expired = []
        for job in admitted:
            tickets = list(session.scalars(select(JobTicket).where(JobTicket.job_id == job.id)))
            if job.id not in running and all(parse_time(t.ticket["expires_at"]) < now - grace for t in tickets):
                expired.append(job.id)
    expired = [job_id for job_id in expired
               if fail_job(job_id, "nothing ran the job before its tickets expired (the exchange stopped, or a "
                                   "federated training never started its first round)", only_if=JobStatus.ADMITTED)]
    return expired + federated.recover_stranded_rounds(now)
