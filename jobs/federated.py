"""Federated-learning jobs at the exchange: the plan checked at admission, rounds run on the provider nodes with
their encrypted updates summed here, and the training's end.

A training is one job (one quota, its whole ε charged at admission by the RDP accountant). The consumer drives it
round by round, because only the consumer can decrypt: it asks for a round with the global model, the exchange
tickets the round's providers, calls the nodes at once, adds the ciphertexts of those that answered — if enough
did — and records `job.round`; the consumer decrypts the sum and asks for the next. `job.trained` ends it with the
metrics and each provider's contribution.

The consumer never learns one provider's update or row count:
  * nodes encrypt under the consumer's key, the exchange only adds, and a job spans at least 2 providers;
  * without differential privacy every round needs every provider (no dropout: a sum without one provider,
    differenced with a sum with it, is its update), and there are no subsets;
  * with it, each released sum carries central DP noise, so dropouts are tolerated down to ``min_quorum`` ≥ 2 and
    leave-one-out trainings are allowed — over the subsets the exchange fixes (``Plan.subset``), not the consumer;
  * `job.round` (each provider's rows in its receipt) is for the providers and the regulators, not the consumer.
"""

from __future__ import annotations

import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from authorization import lifecycle
from authorization.model import Grant
from catalog.models import Asset
from common.db import get_database, utcnow
from common.errors import Conflict, Forbidden, InvalidInput, NotFound
from common.vocab import ComputationKind, JobStatus, Phase, RoundStatus
from jobs import dispatch, outcomes
from jobs.model import Job, JobPayload, JobRound, JobTicket, JobTraining
from jobs.nodes import NodeCall, NodeClient, NodeFailure
from ledger.entries import SYSTEM_ACTOR, Draft, parse_time
from ledger.service import UnitOfWork, unit_of_work
from participants.rules import Principal
from privacy import he
from privacy.federated import DEFAULT_DELTA, FederatedError, Standardizer, TrainingConfig
from protocol import tickets
from protocol.tickets import SignedTicket

MOMENTS, TRAIN = Phase.MOMENTS, Phase.TRAIN
RUNNING, COMPLETED, FAILED = RoundStatus.RUNNING, RoundStatus.COMPLETED, RoundStatus.FAILED  # of a round
MAX_FEATURES = 1000
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    """A federated job's parameters, checked: what every round of it will run."""

    features: list[str]
    label: str
    config: TrainingConfig
    bounds: list[list[float]] | None
    min_quorum: int
    providers: list[str]  # sorted: the order in which leave-one-out trainings leave them out
    contribution: bool
    delta: float

    @property
    def trainings(self) -> int:
        """1, or 1 + one leave-one-out training per provider when contributions are asked for."""
        return 1 + (len(self.providers) if self.contribution else 0)

    @property
    def first_training_round(self) -> int:
        """The moments round comes first unless bounds standardize."""
        return 0 if self.bounds is not None else 1

    @property
    def max_rounds(self) -> int:
        """How many rounds the job may run: the moments round (without bounds) and every training's rounds."""
        return self.first_training_round + self.config.rounds * self.trainings

    @property
    def releases(self) -> int:
        """How many noised sums one record is in: every round of every training without its provider left out."""
        return self.config.rounds * (len(self.providers) if self.contribution else 1)

    @property
    def epsilon(self) -> float:
        """The ε the whole job spends per record (0 without noise)."""
        if not self.config.private:
            return 0.0
        from privacy import accountant  # dp-accounting takes ~1 s to import: only when a training is private

        return accountant.fedavg_epsilon(self.config.noise_multiplier, self.releases, self.delta)

    def subset(self, number: int) -> list[str]:
        """Return the providers round ``number`` sums over: all, or all but the one its training leaves out."""
        training = max(0, number - self.first_training_round) // self.config.rounds
        return [p for i, p in enumerate(self.providers) if i != training - 1]

    def quorum(self, number: int) -> int:
        """Return how many distinct providers must answer round ``number`` for its sum to be released: every one
        without noise (a sum without one, differenced with a sum with it, is its update), else ``min_quorum``."""
        return max(2, self.min_quorum if self.config.private else len(self.subset(number)))

    @classmethod
    def from_params(cls, params: dict[str, Any], providers: list[str]) -> Plan:
        """Check a federated job's ``params`` for a job over ``providers``; raise ``InvalidInput``."""
        errors: dict[str, list[str]] = {}
        providers = sorted(set(providers))
        features, label = params.get("features"), params.get("label")
        if not isinstance(features, list) or not 1 <= len(features) <= MAX_FEATURES \
                or not all(isinstance(f, str) and f for f in features) or len(set(features)) != len(features):
            errors["params.features"] = [f"1–{MAX_FEATURES} distinct column names"]
        if not isinstance(label, str) or not label or (isinstance(features, list) and label in features):
            errors["params.label"] = ["a column name, not one of the features"]
        try:
            config = TrainingConfig.from_json(params.get("training") or {})
        except FederatedError as exc:
            errors["params.training"] = [str(exc)]
            config = None
        private = config is not None and config.private
        if private and config.local_epochs != 1:
            errors["params.training"] = ["a differentially private training takes one clipped gradient step per "
                                         "round: local_epochs must be 1"]
        bounds = params.get("bounds")
        if bounds is not None and (not isinstance(bounds, list) or not isinstance(features, list)
                                   or len(bounds) != len(features)
                                   or not all(_pair(b) for b in bounds)):
            errors["params.bounds"] = ["one [low, high] pair of numbers with low < high per feature"]
        if private and bounds is None:
            errors["params.bounds"] = ["a differentially private training standardizes by bounds (nothing about "
                                       "the rows is released but the noised sums)"]
        if len(providers) < 2:
            errors["assets"] = [f"the assets of at least 2 providers, got {len(providers)}: a training over one "
                                f"provider would show its update"]
        contribution = params.get("contribution", False)
        if not isinstance(contribution, bool) or (contribution and (len(providers) < 3 or not private)):
            errors["params.contribution"] = [
                "true or false; leave-one-out needs at least 3 providers and a differentially private training: "
                "without noise the difference of two subsets' sums is one provider's update and row count"]
        most = len(providers) - (1 if contribution is True else 0)
        quorum = params.get("min_quorum", most)
        if type(quorum) is not int or not 2 <= quorum <= max(most, 2):
            errors["params.min_quorum"] = [f"an integer from 2 to {most}, the providers each sum is over: a sum over "
                                           f"one provider would show its update"]
        elif not private and quorum != len(providers):
            errors["params.min_quorum"] = [f"without differential privacy every round needs all {len(providers)} "
                                           f"providers: a round without one, differenced with a round with it, "
                                           f"would show its update"]
        delta = params.get("delta", DEFAULT_DELTA)
        if not isinstance(delta, (int, float)) or isinstance(delta, bool) or not 0 < delta < 1e-3:
            errors["params.delta"] = ["a number in (0, 0.001)"]
        if errors:
            raise InvalidInput("the federated training's parameters are not usable", errors=errors)
        return cls(features, label, config, bounds, quorum, providers, contribution, float(delta))


def _pair(value: Any) -> bool:
    return (isinstance(value, list) and len(value) == 2 and all(isinstance(v, (int, float)) and not
                                                                  isinstance(v, bool) for v in value)
            and value[0] < value[1])


def plan_for_submission(params: dict[str, Any], assets: list[str], session) -> Plan:
    """Return the plan of a job being submitted (its providers are those of its assets)."""
    return Plan.from_params(params, list(session.scalars(select(Asset.provider_id).where(Asset.id.in_(assets)))))


@dataclass(frozen=True)
class RoundRequest:
    """What the consumer asks for: the next round's phase, the global model and the standardizer, and optionally
    the providers it expects the round to sum over (the exchange's plan decides; a different subset is refused)."""

    phase: str
    theta: list[float] | None
    standardizer: dict[str, Any] | None
    providers: list[str] | None


def start_round(uow: UnitOfWork, actor: Principal, job_id: str, request: RoundRequest, now: datetime, ticket_key,
                issuer: str) -> JobRound:
    """Ticket the next round of a federated job for the providers its plan sums that round over."""
    job = uow.session.scalar(select(Job).where(Job.id == job_id).with_for_update())
    if job is None or job.consumer_id != actor.id:
        raise NotFound(f"no job {job_id} of {actor.id}")
    if job.computation_kind != ComputationKind.FEDERATED_LEARNING:
        raise Conflict(f"job {job_id} is a {job.computation_kind} job, not a federated training")
    if job.status not in (JobStatus.ADMITTED, JobStatus.RUNNING):
        raise Conflict(f"job {job_id} is {job.status}", extra={"current_status": job.status})
    grant = uow.session.get(Grant, job.grant_id)
    if grant.status != lifecycle.ACTIVE or datetime.fromisoformat(grant.terms["valid_until"]) <= now:
        raise Forbidden(f"grant {grant.id} is {grant.status if grant.status != lifecycle.ACTIVE else 'past its window'}"
                        f": the training cannot go on")
    payload = uow.session.get(JobPayload, job_id)
    ticketed = {t.provider_id: t for t in uow.session.scalars(select(JobTicket).where(JobTicket.job_id == job_id))}
    plan = Plan.from_params(payload.params, list(ticketed))
    done = uow.session.scalar(select(func.count()).select_from(JobRound).where(JobRound.job_id == job_id))
    if uow.session.scalar(select(func.count()).select_from(JobRound).where(JobRound.job_id == job_id,
                                                                            JobRound.status == RUNNING)):
        raise Conflict(f"a round of job {job_id} is still running")
    if done >= plan.max_rounds:
        raise Conflict(f"job {job_id} has run all {plan.max_rounds} rounds its plan allows")
    _check_round(request, plan, done)
    providers = plan.subset(done)
    # the nodes scale their noise to the quorum the exchange enforces, whatever the consumer's params said
    params = {**payload.params, "phase": request.phase, "round": done, "theta": request.theta,
              "standardizer": request.standardizer, "min_quorum": plan.min_quorum}
    digest = tickets.digest(params)
    issued = []
    for provider in providers:
        base = ticketed[provider].ticket
        signed = tickets.issue(ticket_key, issuer=issuer, job=job.id, grant=job.grant_id, provider=provider,
                               assets=base["assets"], operation=ComputationKind.FEDERATED_LEARNING, params_sha256=digest,
                               context_sha256=job.context_sha256, obligations=base["obligations"], now=now)
        issued.append({"provider": provider, "ticket": signed.claims, "signature": signed.signature})
    job.status = JobStatus.RUNNING
    row = JobRound(job_id=job.id, number=done, phase=request.phase, status=RUNNING, params=params, tickets=issued,
                   contributors=[], dropped=[], rows=0, created_at=now)
    uow.session.add(row)
    uow.session.flush()
    return row


def _check_round(request: RoundRequest, plan: Plan, number: int) -> None:
    errors: dict[str, list[str]] = {}
    moments = plan.bounds is None and number == 0
    if request.phase == MOMENTS and not moments:
        errors["phase"] = ["the moments phase is round 0 only, and only when no bounds standardize (never under "
                           "differential privacy)"]
    if request.phase == TRAIN:
        if request.theta is None or len(request.theta) != len(plan.features) + 1:
            errors["theta"] = [f"the global model: {len(plan.features) + 1} numbers (weights, then intercept)"]
        if plan.bounds is None and request.standardizer is None:
            errors["standardizer"] = ["the pooled mean and std from the moments round"]
        if moments:
            errors["phase"] = ["round 0 computes the moments"]
    if request.standardizer is not None:
        try:
            fits = Standardizer.from_json(request.standardizer).mean.size == len(plan.features)
        except FederatedError:
            fits = False
        if not fits:
            errors["standardizer"] = [f"{{mean, std}}: {len(plan.features)} finite means and non-negative stds"]
    expected = plan.subset(number)
    if request.providers is not None and sorted(request.providers) != expected:
        errors["providers"] = [f"round {number} sums over {', '.join(expected)}: the exchange fixes which provider "
                               f"each leave-one-out training leaves out (in sorted order, after the training over "
                               f"all), and only for a differentially private job that asked for contributions"]
    if errors:
        raise InvalidInput("the round request is not usable", errors=errors)


def abandon_unstarted(job_id: str, consumer_id: str, reason: str) -> bool:
    """Fail a federated job of ``consumer_id`` that has no round yet, giving its quota back (nothing was released);
    return whether it did. A training whose first round request is refused never stays admitted holding quota."""
    with get_database().sessionmaker() as session:
        job = session.get(Job, job_id)
        if job is None or job.consumer_id != consumer_id or job.computation_kind != ComputationKind.FEDERATED_LEARNING \
                or job.status != JobStatus.ADMITTED or session.scalar(
                    select(func.count()).select_from(JobRound).where(JobRound.job_id == job_id)):
            return False
    outcomes.fail_job(job_id, reason, release=True)
    return True


def run_round(job_id: str, number: int, timeout: float, nodes: NodeClient) -> None:
    """Call the round's providers at once, add the ciphertexts of those that answered, record the round."""
    database = get_database()
    with database.sessionmaker() as session:  # closed before the nodes are called: no transaction waits on them
        row = session.get(JobRound, (job_id, number))
        payload = session.get(JobPayload, job_id)
        job = session.get(Job, job_id)
        plan = Plan.from_params(payload.params, list(session.scalars(
            select(JobTicket.provider_id).where(JobTicket.job_id == job_id))))
        endpoints = {a.provider_id: a.node_endpoint for a in session.scalars(select(Asset).where(
            Asset.id.in_(job.assets)))}
        calls = [(t, endpoints[t["provider"]]) for t in row.tickets]
        params, context = row.params, payload.context
    try:  # every round re-checks the grant before any node is called: a training spans many tickets' lifetimes
        statements = dispatch.current_statements(job.grant_id, [t["ticket"] for t, _ in calls], utcnow())
    except dispatch.GrantNotCurrent as exc:
        fail_round(job_id, number, f"round {number}: {exc}")
        return
    node_calls = [NodeCall(endpoint, t["provider"], SignedTicket(t["ticket"], t["signature"]),
                           statements[t["ticket"]["nonce"]], params, context) for t, endpoint in calls]
    with ThreadPoolExecutor(max_workers=max(1, len(node_calls))) as pool:
        pending = [(call, pool.submit(nodes.run, call, timeout)) for call in node_calls]
    results, usage, dropped = [], [], []
    with database.sessionmaker() as session:
        for call, future in pending:
            try:
                answer = future.result()
                results.append(dispatch.checked_result(session, job_id, call.provider_id, answer))
                usage.append({"provider": call.provider_id, "rows_used": answer["receipt"]["rows_used"],
                              "receipt": answer["receipt"], "signature": answer["signature"]})
            except NodeFailure as exc:
                dropped.append({"provider": call.provider_id, "reason": str(exc)[:500]})
    total, error, quorum = None, None, plan.quorum(number)
    answered = len({u["provider"] for u in usage})
    if answered < quorum:
        needed = (f"the quorum is {quorum}" if plan.config.private else
                  f"a training without noise needs every one of the {quorum} providers")
        error = (f"round {number}: {answered} of {len(calls)} providers answered, {needed}: "
                 f"{'; '.join(d['reason'] for d in dropped)}")
    else:
        try:
            total = he.add_ciphertexts(context, results) if len(results) > 1 else results[0]
        except he.HEError as exc:
            error = f"round {number}: the updates could not be added: {exc}"
    error = _record_round(job_id, number, total, usage, dropped, error)
    if error is not None:
        outcomes.fail_job(job_id, error, release=number == 0)


def _record_round(job_id: str, number: int, total: bytes | None, usage: list[dict[str, Any]],
                  dropped: list[dict[str, str]], error: str | None) -> str | None:
    """Record the round's outcome (and `job.round`); return the error it ended with, if any.

    A grant that stopped being active while the round ran (revoked, suspended, terminated) releases nothing more:
    the sum is withheld and the round fails.
    """
    with unit_of_work(system=True) as uow:
        row = uow.session.get(JobRound, (job_id, number))
        job = uow.session.get(Job, job_id)
        grant = uow.session.scalar(select(Grant).where(Grant.id == job.grant_id).with_for_update())
        if error is None and grant.status != lifecycle.ACTIVE:
            total, error = None, (f"round {number}: grant {grant.id} became {grant.status} during the round; its "
                                  f"result is withheld")
        row.status, row.finished_at, row.error = (FAILED if error else COMPLETED), utcnow(), error
        row.contributors = [u["provider"] for u in usage]
        row.dropped = dropped
        row.rows = sum(u["rows_used"] for u in usage)
        if total is not None:
            row.result, row.result_sha256 = total, hashlib.sha256(total).hexdigest()
        # the providers' receipts (rows used) are for them and the regulators: not the consumer, who would
        # otherwise read each provider's row count off every round
        uow.ledger.append(Draft("job.round", SYSTEM_ACTOR, refs={"job": [job_id], "grant": [job.grant_id]},
                                body={"round": number, "phase": row.phase, "status": row.status,
                                      "params_sha256": tickets.digest(row.params),
                                      "result_sha256": row.result_sha256, "usage": usage, "dropped": dropped}),
                          parties=[t["provider"] for t in row.tickets])
    return error


def finish(uow: UnitOfWork, actor: Principal, job_id: str, model_sha256: str, metrics: list[dict[str, Any]],
           contributions: dict[str, float]) -> JobTraining:
    """End a federated training with the consumer's report: metrics per round, contributions, the model's hash."""
    job = uow.session.scalar(select(Job).where(Job.id == job_id).with_for_update())
    if job is None or job.consumer_id != actor.id:
        raise NotFound(f"no job {job_id} of {actor.id}")
    if job.computation_kind != ComputationKind.FEDERATED_LEARNING or job.status != JobStatus.RUNNING:
        raise Conflict(f"job {job_id} is a {job.computation_kind} job that is {job.status}; only a running "
                       f"federated training is finished", extra={"current_status": job.status})
    rounds = list(uow.session.scalars(select(JobRound).where(JobRound.job_id == job_id)))
    if any(r.status == RUNNING for r in rounds) or not any(r.phase == TRAIN and r.status == COMPLETED
                                                             for r in rounds):
        raise Conflict(f"job {job_id} has a round still running, or no completed training round")
    providers = set(uow.session.scalars(select(JobTicket.provider_id).where(JobTicket.job_id == job_id)))
    unknown = sorted(set(contributions) - providers)
    if unknown:
        raise InvalidInput("contributions name providers outside the job", errors={"contributions": unknown})
    job.status = JobStatus.COMPLETED
    report = JobTraining(job_id=job_id, model_sha256=model_sha256, metrics=metrics, contributions=contributions,
                         finished_at=utcnow())
    uow.session.add(report)
    uow.ledger.append(Draft("job.trained", actor.id, refs={"job": [job_id], "grant": [job.grant_id]},
                            body={"rounds": len(rounds), "model_sha256": model_sha256,
                                  "final_metrics": metrics[-1] if metrics else {},
                                  "contributions": contributions}),
                      parties=sorted(providers))
    return report


def fail_round(job_id: str, number: int, reason: str) -> None:
    """Record a round that could not run at all, and fail its job (the rows already trained on stay spent)."""
    _record_round(job_id, number, None, [], [], reason)
    outcomes.fail_job(job_id, reason, release=number == 0)


def recover_stranded_rounds(now: datetime) -> list[str]:
    """Fail the rounds a stop interrupted once their tickets have expired (and so their trainings); return the
    jobs failed. `pdx serve` runs this with ``jobs.runner.recover_stranded`` before it starts."""
    with get_database().sessionmaker() as session:
        running = list(session.scalars(select(JobRound).where(JobRound.status == RUNNING)))
        stranded = [(r.job_id, r.number) for r in running
                    if all(parse_time(t["ticket"]["expires_at"]) < now for t in r.tickets)]
    for job_id, number in stranded:
        fail_round(job_id, number, f"round {number}: the exchange stopped before the round ran and its tickets "
                                   f"expired")
    return [job_id for job_id, _ in stranded]
