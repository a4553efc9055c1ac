"""The approval workflow: request, provider decisions and counter-offers, regulator co-approval, the life of a
grant afterwards, expiry and renewal. Every transition is one ledger entry by its actor, in the same transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from authorization import lifecycle
from authorization import terms as term_rules
from authorization.lifecycle import CONSUMER, PROVIDER, REGULATOR
from authorization.model import Grant, GrantAsset, GrantProvider
from authorization.terms import COMPREHENSIVE, CORE_GRADE, DOMAIN, SCENARIO, Terms
from catalog.models import Asset, Domain
from catalog.rules import PUBLISHED
from common.db import new_id
from common.errors import Conflict, Forbidden, InvalidInput, NotFound
from common.vocab import ProviderDecision as Decision
from ledger.anchor import outbox
from ledger.entries import SYSTEM_ACTOR, Draft
from ledger.service import UnitOfWork
from participants.models import Participant, ParticipantRole
from participants.rules import ACTIVE, OPERATOR, Principal

PENDING, APPROVED, COUNTERED, REJECTED = (Decision.PENDING, Decision.APPROVED, Decision.COUNTERED,
                                         Decision.REJECTED)


def _active_providers(session: Session, ids: list[str]) -> list[str]:
    rows = session.scalars(select(Participant.id).join(ParticipantRole).where(
        Participant.id.in_(ids), ParticipantRole.role == PROVIDER, Participant.status == ACTIVE)).all()
    missing = sorted(set(ids) - set(rows))
    if missing:
        raise InvalidInput(f"not active providers: {', '.join(missing)}",
                           errors={"providers": [f"{m} is not an active provider" for m in missing]})
    return sorted(set(ids))


def _published(session: Session, **filters: Any) -> list[Asset]:
    query = select(Asset).where(Asset.status == PUBLISHED)
    for name, value in filters.items():
        query = query.where(value if name == "where" else getattr(Asset, name) == value)
    return list(session.scalars(query))


def _scope(session: Session, kind: str, body: dict[str, Any]) -> tuple[list[str], list[Asset]]:
    """Return (providers who must approve, assets in scope now) for a request, or raise naming the field."""
    if kind == SCENARIO:
        for name in ("scenario", "purpose", "assets"):
            if not body.get(name):
                raise InvalidInput(f"a per-scenario request names its {name}", errors={name: ["required"]})
        assets = list(session.scalars(select(Asset).where(Asset.id.in_(body["assets"]))))
        unpublished = sorted(set(body["assets"]) - {a.id for a in assets if a.status == PUBLISHED})
        if unpublished:
            raise InvalidInput(f"not published assets: {', '.join(unpublished)}",
                               errors={"assets": [f"{a} is not a published asset" for a in unpublished]})
        return _active_providers(session, [a.provider_id for a in assets]), assets
    if body.get("max_grade") is None:
        raise InvalidInput(f"a {kind} request names its max_grade", errors={"max_grade": ["required"]})
    if body["max_grade"] >= CORE_GRADE:
        raise InvalidInput("grade-4 (core) data is granted only per scenario, with the regulator's exception",
                           errors={"max_grade": ["at most 3 for comprehensive and per-domain grants"]})
    if kind == COMPREHENSIVE:
        if not body.get("providers"):
            raise InvalidInput("a comprehensive request names its providers", errors={"providers": ["required"]})
        providers = _active_providers(session, body["providers"])
        in_scope = _published(session, where=Asset.provider_id.in_(providers))
        return providers, [a for a in in_scope if a.grade <= body["max_grade"]]
    if not body.get("domain") or session.get(Domain, body["domain"]) is None:
        raise InvalidInput("a per-domain request names a known domain", errors={"domain": ["unknown or missing"]})
    in_domain = [a for a in _published(session, domain_code=body["domain"]) if a.grade <= body["max_grade"]]
    if body.get("providers"):
        providers = _active_providers(session, body["providers"])
    else:  # "all providers": the active ones publishing in the domain now; later newcomers never approved
        publishing = sorted({a.provider_id for a in in_domain})
        active = set(session.scalars(select(Participant.id).where(Participant.id.in_(publishing),
                                                                 Participant.status == ACTIVE)))
        providers = [p for p in publishing if p in active]
        if not providers:
            raise InvalidInput(f"no active provider publishes in domain {body['domain']} up to grade "
                               f"{body['max_grade']}", errors={"domain": ["no supply"]})
    return providers, [a for a in in_domain if a.provider_id in providers]


def _entry(uow: UnitOfWork, type_: str, actor: str, grant: Grant, body: dict[str, Any] | None = None) -> None:
    refs = {"grant": [grant.id], "participant": [grant.consumer_id, *grant.providers]}
    if grant.assets:
        refs["asset"] = grant.assets
    seq = uow.ledger.append(Draft(type_, actor, refs=refs, body={"status": grant.status, **(body or {})}),
                            parties=[grant.consumer_id, *grant.providers])
    outbox.mark_grant(uow.session, grant, seq)  # queues the change for the chain's grant registry, if deployed


def _scope_body(grant: Grant) -> dict[str, Any]:
    return {"kind": grant.kind, "providers": grant.providers, "domain": grant.domain, "max_grade": grant.max_grade,
            "assets": grant.assets, "scenario": grant.scenario, "purpose": grant.purpose,
            "needs_regulator": grant.needs_regulator, "renewal_of": grant.renewal_of}


def request_grant(uow: UnitOfWork, actor: Principal, body: dict[str, Any], now: datetime,
                  renewal_of: str | None = None) -> Grant:
    """Record a consumer's authorization request at ``now``; every provider in scope must then decide."""
    if not actor.has_role(CONSUMER):
        raise Forbidden("only consumers request authorizations", extra={"required_roles": [CONSUMER]})
    session, kind = uow.session, body["kind"]
    terms: Terms = body["terms"]
    problems = term_rules.check_terms(terms)
    if problems:
        raise InvalidInput("the terms are incoherent", errors={f"terms.{k}": v for k, v in problems.items()})
    providers, assets = _scope(session, kind, body)
    if actor.id in providers:
        raise InvalidInput("a participant cannot authorize itself", errors={"providers": ["includes the requester"]})
    grades = [a.grade for a in assets] + ([body["max_grade"]] if kind != SCENARIO else [])
    grant = Grant(
        id=new_id("grt"), consumer_id=actor.id, kind=kind, status=lifecycle.REQUESTED,
        domain=body.get("domain") if kind == DOMAIN else None,
        max_grade=body.get("max_grade") if kind != SCENARIO else None,
        scenario=body.get("scenario"), purpose=body.get("purpose"), terms=terms.to_json(),
        requested_terms=terms.to_json(), needs_regulator=term_rules.needs_regulator(kind, grades),
        renewal_of=renewal_of, jobs_used=0, rows_used=0, epsilon_used=0.0, core_exception=False,
        dp_exception=False,
        created_at=now, updated_at=now,
        parties=[GrantProvider(provider_id=p, decision=PENDING) for p in providers],
        asset_rows=[GrantAsset(asset_id=a.id) for a in assets] if kind == SCENARIO else [],
    )
    session.add(grant)
    session.flush()
    _entry(uow, lifecycle.REQUESTED_ENTRY, actor.id, grant, {**_scope_body(grant), "terms": grant.terms})
    return grant


def visible(viewer: Principal, grant: Grant) -> bool:
    """Consumers see their grants, providers the grants they decide on, regulators and operators all."""
    return (viewer.has_role(REGULATOR, OPERATOR) or grant.consumer_id == viewer.id
            or viewer.id in grant.providers)


def load(session: Session, viewer: Principal, grant_id: str, *, lock: bool = False) -> Grant:
    """Return a grant the viewer may see (locked for update when ``lock``), or 404."""
    query = select(Grant).where(Grant.id == grant_id)
    if lock:
        query = query.with_for_update()
    grant = session.scalar(query)
    if grant is None or not visible(viewer, grant):
        raise NotFound(f"no grant {grant_id}")
    return grant


def list_grants(session: Session, viewer: Principal, *, status: str | None, kind: str | None, offset: int,
                limit: int) -> tuple[list[Grant], int]:
    """Return one page of the grants the viewer takes part in (regulators and operators: all), newest first."""
    query = select(Grant)
    if not viewer.has_role(REGULATOR, OPERATOR):
        query = query.where((Grant.consumer_id == viewer.id) | Grant.id.in_(
            select(GrantProvider.grant_id).where(GrantProvider.provider_id == viewer.id)))
    if status is not None:
        query = query.where(Grant.status == status)
    if kind is not None:
        query = query.where(Grant.kind == kind)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Grant.created_at.desc(), Grant.id).offset(offset).limit(limit))
    return list(rows), total


def party_of(viewer: Principal, grant: Grant) -> str | None:
    """Return the role the viewer plays in this grant's workflow, if any."""
    if grant.consumer_id == viewer.id:
        return CONSUMER
    if viewer.id in grant.providers and viewer.has_role(PROVIDER):
        return PROVIDER
    if viewer.has_role(REGULATOR):
        return REGULATOR
    return None


def _advance(grant: Grant) -> bool:
    """Set the status an approval leads to; return True when the grant is ready to become active."""
    if any(party.decision != APPROVED for party in grant.parties):
        grant.status = lifecycle.REQUESTED
        return False
    grant.status = lifecycle.PROVIDER_APPROVED
    return not grant.needs_regulator


def _activate(uow: UnitOfWork, grant: Grant, now: datetime) -> None:
    grant.status = lifecycle.ACTIVE
    grant.activated_at = now
    _entry(uow, lifecycle.ACTIVATED_ENTRY, SYSTEM_ACTOR, grant,
           {"terms": grant.terms, "core_exception": grant.core_exception, "dp_exception": grant.dp_exception,
            "regulator": grant.regulator_id})


def _end(grant: Grant, status: str, reason: str | None, now: datetime) -> None:
    grant.status = status
    grant.end_reason = reason
    grant.ended_at = now


def act(uow: UnitOfWork, actor: Principal, grant_id: str, action: str, *, now: datetime, reason: str | None = None,
        counter: Terms | None = None, core_exception: bool = False, dp_exception: bool = False) -> Grant:
    """Take a workflow action on a grant at ``now`` as its consumer, one of its providers, or a regulator (who may
    co-approve with the grade-4 exception and with the no-DP exception, which is recorded with its reason)."""
    grant = load(uow.session, actor, grant_id, lock=True)
    party = party_of(actor, grant)
    if party is None:
        raise Forbidden(f"{actor.id} takes no part in grant {grant_id}")
    transition = lifecycle.check(action, grant.status, party)
    body: dict[str, Any] = {"reason": reason}
    decision = next((p for p in grant.parties if p.provider_id == actor.id), None)
    if party == PROVIDER and action in ("approve", "counter") and decision.decision != PENDING:
        raise Conflict(f"{actor.id} already decided ({decision.decision})",
                       extra={"current_status": grant.status, "allowed_actions": []})
    if action == "counter":
        problems = term_rules.narrowing_problems(Terms.from_json(grant.terms), counter)
        if problems:
            raise InvalidInput("a counter-offer may only narrow the terms",
                               errors={f"terms.{k}": v for k, v in problems.items()})
        grant.counter_terms, grant.countered_by = counter.to_json(), actor.id
        body["counter_terms"] = grant.counter_terms
    if action == "co-approve" and core_exception and grant.kind != SCENARIO:
        raise InvalidInput("a grade-4 exception is given only for a scenario",
                           errors={"core_exception": ["scenario only"]})
    if dp_exception and action != "co-approve":
        raise InvalidInput("the no-DP exception is given only by the regulator's co-approval",
                           errors={"dp_exception": ["co-approve only"]})
    if dp_exception and not (reason or "").strip():
        raise InvalidInput("the regulator records why statistics may be released without differential privacy",
                           errors={"reason": ["required with dp_exception"]})
    if decision is not None and action in ("approve", "counter", "reject"):
        decision.decision = {"approve": APPROVED, "counter": COUNTERED, "reject": REJECTED}[action]
        decision.reason, decision.decided_at = reason, now
    if transition.target is not None:
        grant.status = transition.target
    ready = action == "co-approve"
    if action == "approve":
        ready = _advance(grant)
    elif action == "accept":
        grant.terms, grant.counter_terms = grant.counter_terms, None
        for p in grant.parties:
            if p.provider_id == grant.countered_by:
                p.decision, p.decided_at = APPROVED, now
        body["terms"] = grant.terms
        ready = _advance(grant)
    elif action == "decline":
        grant.counter_terms = None
    if action == "co-approve":
        grant.regulator_id, grant.core_exception, grant.dp_exception = actor.id, core_exception, dp_exception
        body["core_exception"], body["dp_exception"] = core_exception, dp_exception
    if grant.status in lifecycle.ENDED:
        _end(grant, grant.status, reason, now)
    grant.updated_at = now
    _entry(uow, transition.entry, actor.id, grant, body)
    if ready:  # the actor's entry first, then the activation it caused
        _activate(uow, grant, now)
    return grant


def _expire(uow: UnitOfWork, grant: Grant, now: datetime) -> bool:
    if grant.status not in lifecycle.OPEN | lifecycle.LIVE or Terms.from_json(grant.terms).valid_until > now:
        return False
    _end(grant, lifecycle.EXPIRED, "validity window closed", now)
    grant.updated_at = now
    _entry(uow, lifecycle.TRANSITIONS["expire"].entry, SYSTEM_ACTOR, grant, {"reason": grant.end_reason})
    return True


def expire_if_due(uow: UnitOfWork, grant_id: str, now: datetime) -> bool:
    """Expire one grant if its window has closed (run in its own transaction before acting on the grant)."""
    grant = uow.session.scalar(select(Grant).where(Grant.id == grant_id).with_for_update())
    return grant is not None and _expire(uow, grant, now)


def expire_due(uow: UnitOfWork, now: datetime) -> list[str]:
    """Expire every open or live grant whose window has closed (`pdx grant expire-due`, run from cron)."""
    open_or_live = list(lifecycle.OPEN | lifecycle.LIVE)
    grants = uow.session.scalars(select(Grant).where(Grant.status.in_(open_or_live)).with_for_update())
    return [grant.id for grant in grants if _expire(uow, grant, now)]


def renew(uow: UnitOfWork, actor: Principal, grant_id: str, valid_from: datetime, valid_until: datetime,
          now: datetime) -> Grant:
    """Request a renewal at ``now``: a new request with the grant's scope and current terms over a new window."""
    old = load(uow.session, actor, grant_id)
    if old.consumer_id != actor.id:
        raise Forbidden("only the grant's consumer renews it")
    terms = Terms.from_json(old.terms).with_window(valid_from, valid_until)
    body = {"kind": old.kind, "providers": old.providers, "domain": old.domain, "max_grade": old.max_grade,
            "assets": old.assets, "scenario": old.scenario, "purpose": old.purpose, "terms": terms}
    return request_grant(uow, actor, body, now, renewal_of=old.id)
