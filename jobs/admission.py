"""Admitting a job: check what it declares, decide, consume the grant's quotas and record `job.admitted` in one
transaction, then ticket each provider with the job's declared sizes as limits.

The grant row is locked for the transaction (``SELECT … FOR UPDATE``; SQLite write transactions are exclusive),
so concurrent submissions against one grant are admitted one at a time and never exceed its quotas.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from authorization import engine, facts, workflow
from catalog.models import Asset
from common.db import new_id
from common.errors import Forbidden, InvalidInput
from common.vocab import JobStatus
from jobs import declarations
from jobs.model import Job, JobTicket
from ledger.entries import Draft
from ledger.service import UnitOfWork
from participants.rules import Principal
from protocol import tickets


@dataclass(frozen=True)
class JobRequest:
    """What a consumer asks to compute."""

    grant_id: str
    assets: list[str]
    computation_kind: str
    params: dict[str, Any]
    context_sha256: str | None
    rows: int
    epsilon: float
    group_size: int
    result_cells: int


class Denied(Forbidden):
    """The decision point said no; the reasons travel with the error."""

    slug = "denied"
    title = "Denied by policy"


def _unknown(unknown: list[str]) -> InvalidInput:
    return InvalidInput(f"unknown assets: {', '.join(unknown)}", errors={"assets": [f"no asset {u}" for u in unknown]})


def check_declarations(session, request: JobRequest) -> None:
    """Refuse (422) a job of a kind nothing runs, or whose parameters or declared sizes do not fit its assets."""
    assets = list(session.scalars(select(Asset).where(Asset.id.in_(request.assets))))
    fields = {asset.id: {f["name"]: f["type"] for f in asset.fields} for asset in assets}
    ranges = {asset.id: {f["name"]: (f["minimum"], f["maximum"]) for f in asset.fields
                         if f.get("minimum") is not None and f.get("maximum") is not None} for asset in assets}
    filterable = {asset.id: frozenset(f["name"] for f in asset.fields if f.get("filterable")) for asset in assets}
    unknown = [a for a in request.assets if a not in fields]
    if unknown:
        raise _unknown(unknown)
    declarations.check(request.computation_kind, request.params, request.rows, request.result_cells, fields,
                       request.epsilon, ranges, filterable)


def decision_for(uow: UnitOfWork, actor: Principal, request: JobRequest, now: datetime,
                 *, lock: bool = False) -> tuple[engine.Decision, Any, list[engine.AssetFacts]]:
    """Gather the facts of a job request and ask the decision point."""
    grant = workflow.load(uow.session, actor, request.grant_id, lock=lock)
    assets, unknown = facts.asset_facts(uow.session, request.assets)
    if unknown:
        raise _unknown(unknown)
    context = engine.Context(now=now, grant=facts.grant_facts(grant), rows=request.rows, epsilon=request.epsilon,
                             group_size=request.group_size, result_cells=request.result_cells)
    action = engine.Action(engine.COMPUTE, request.computation_kind)
    return engine.decide(facts.principal_facts(actor), action, assets, context), grant, assets


def admit(uow: UnitOfWork, actor: Principal, request: JobRequest, now: datetime, ticket_key, issuer: str
          ) -> tuple[Job, list[JobTicket]]:
    """Admit a job if the decision point allows it, consuming quotas, and issue one ticket per provider."""
    decision, grant, assets = decision_for(uow, actor, request, now, lock=True)
    if not decision.allow:
        raise Denied("; ".join(r.message for r in decision.forbids),
                     extra={"reasons": decision.reasons_json()})
    grant.jobs_used += 1
    grant.rows_used += request.rows
    grant.epsilon_used += request.epsilon
    job = Job(id=new_id("job"), grant_id=grant.id, consumer_id=actor.id, computation_kind=request.computation_kind,
              assets=list(request.assets), params_sha256=tickets.digest(request.params),
              context_sha256=request.context_sha256, rows_reserved=request.rows, epsilon=request.epsilon,
              status=JobStatus.ADMITTED, created_at=now)
    uow.session.add(job)
    obligations = decision.obligations_json()
    by_provider: dict[str, list[str]] = {}
    for asset in assets:
        by_provider.setdefault(asset.provider_id, []).append(asset.id)
    issued = []
    for provider, provider_assets in sorted(by_provider.items()):
        signed = tickets.issue(ticket_key, issuer=issuer, job=job.id, grant=grant.id, provider=provider,
                               assets=provider_assets, operation=request.computation_kind,
                               params_sha256=job.params_sha256, context_sha256=request.context_sha256,
                               obligations=obligations, now=now,
                               limits={"rows": request.rows, "result_cells": request.result_cells})
        row = JobTicket(job_id=job.id, provider_id=provider, ticket=signed.claims, signature=signed.signature)
        uow.session.add(row)
        issued.append(row)
    uow.session.flush()
    uow.ledger.append(Draft("job.admitted", actor.id, refs={"job": [job.id], "grant": [grant.id],
                                                              "asset": list(request.assets),
                                                              "participant": sorted(by_provider)},
                            body={"computation_kind": request.computation_kind, "rows": request.rows,
                                  "epsilon": request.epsilon, "group_size": request.group_size,
                                  "result_cells": request.result_cells, "params_sha256": job.params_sha256,
                                  "context_sha256": request.context_sha256, "obligations": obligations,
                                  "usage": {"jobs": grant.jobs_used, "rows": grant.rows_used,
                                            "epsilon": grant.epsilon_used},
                                  "assets": [{"id": a.id, "provider": a.provider_id, "grade": a.grade,
                                              "domain": a.domain} for a in assets]}),
                      parties=sorted(by_provider))
    return job, issued
