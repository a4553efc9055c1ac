"""Refusal-pattern alerts: a run of refused probes on one grant is raised to its providers and the regulator.

A tracker probes with jobs that are refused, at admission (a statistics job outside what the grant or the asset
allows) or by a node whose refusal may depend on the data (a group below the minimum size, an unknown id, a value
beyond the declared range). Each such refusal is noted against the grant; when ``threshold`` of them fall within
``window`` and after the grant's last alert, the exchange raises ``grant.alert`` (by ``system``, to the grant's
providers; the regulator reads every entry) in the same transaction as the alert row. The alert does not pause
the grant (docs/decisions.md): the providers may revoke it and the regulator suspend it, with the usual actions.

``due`` is the pure rule; ``note_refusal`` applies it in the caller's unit of work.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from authorization.model import Grant, GrantAlert, GrantProvider, GrantRefusal
from common.db import new_id
from common.errors import Forbidden, PdxError
from common.vocab import ComputationKind
from ledger.entries import SYSTEM_ACTOR, Draft, format_time
from ledger.service import UnitOfWork
from participants.rules import OPERATOR, PROVIDER, REGULATOR, Principal

ADMISSION, NODE = "admission", "node"
ALERT_ENTRY = "grant.alert"
WATCHED_KINDS = frozenset({ComputationKind.HE_STATISTICS})  # the kinds whose admission refusals count (node refusals: every kind)


@dataclass(frozen=True)
class Policy:
    """How many refusals within how long raise an alert (PDX_ALERT_REFUSALS, PDX_ALERT_WINDOW_SECONDS)."""

    threshold: int
    window: timedelta


def policy_of(config: Mapping[str, Any]) -> Policy:
    """Return the alert policy an app's configuration sets."""
    return Policy(int(config["PDX_ALERT_REFUSALS"]), timedelta(seconds=int(config["PDX_ALERT_WINDOW_SECONDS"])))


@dataclass(frozen=True)
class Refusal:
    at: datetime
    cause: str
    job_id: str | None = None


def due(refusals: Sequence[Refusal], last_alert: datetime | None, now: datetime, policy: Policy
        ) -> tuple[Refusal, ...]:
    """Return the refusals that raise an alert now (those within the window and after the last alert, once there
    are at least ``threshold`` of them), or nothing."""
    since = now - policy.window
    counted = tuple(r for r in refusals if r.at > since and (last_alert is None or r.at > last_alert))
    return counted if policy.threshold > 0 and len(counted) >= policy.threshold else ()


def alert_body(counted: Sequence[Refusal], policy: Policy) -> dict:
    """Return the body of the ``grant.alert`` entry for ``counted`` refusals."""
    return {"refusals": len(counted), "threshold": policy.threshold,
            "window_seconds": int(policy.window.total_seconds()),
            "causes": dict(sorted(Counter(r.cause for r in counted).items())),
            "jobs": sorted(r.job_id for r in counted if r.job_id is not None),
            "first": format_time(min(r.at for r in counted)), "last": format_time(max(r.at for r in counted))}


def refusal_cause(exc: PdxError) -> str:
    """Return what a refusal names: the parameters an invalid job got wrong, or the decision point's forbids."""
    if exc.errors:
        return ",".join(sorted(exc.errors))
    codes = sorted(r["code"] for r in exc.extra.get("reasons", []) if r.get("effect") == "forbid")
    return ",".join(codes) or exc.slug


def note_refusal(uow: UnitOfWork, grant_id: str, source: str, cause: str, now: datetime, policy: Policy, *,
                 consumer_id: str, job_id: str | None = None) -> GrantAlert | None:
    """Note one refusal of a job ``consumer_id`` sent under a grant (not counted when the grant is someone else's);
    raise and record an alert if it completes a run. Return the alert, if any."""
    session = uow.session
    grant = session.scalar(select(Grant).where(Grant.id == grant_id).with_for_update())
    if grant is None or grant.consumer_id != consumer_id:
        return None
    session.add(GrantRefusal(id=new_id("rfs"), grant_id=grant_id, source=source, cause=cause[:200], job_id=job_id,
                             refused_at=now))
    session.flush()
    last = session.scalar(select(func.max(GrantAlert.raised_at)).where(GrantAlert.grant_id == grant_id))
    rows = session.scalars(select(GrantRefusal).where(GrantRefusal.grant_id == grant_id,
                                                      GrantRefusal.refused_at > now - policy.window))
    counted = due([Refusal(r.refused_at, r.cause, r.job_id) for r in rows], last, now, policy)
    if not counted:
        return None
    body = alert_body(counted, policy)
    seq = uow.ledger.append(Draft(ALERT_ENTRY, SYSTEM_ACTOR, refs={"grant": [grant_id],
                                                                   "participant": list(grant.providers),
                                                                   **({"job": body["jobs"]} if body["jobs"] else {})},
                                  body=body), parties=grant.providers)
    alert = GrantAlert(id=new_id("alr"), grant_id=grant_id, refusals=body["refusals"], threshold=policy.threshold,
                       window_seconds=body["window_seconds"], causes=body["causes"], jobs=body["jobs"],
                       first_at=min(r.at for r in counted), raised_at=now, ledger_seq=seq)
    session.add(alert)
    return alert


def list_alerts(session: Session, viewer: Principal, *, grant_id: str | None, offset: int, limit: int
                ) -> tuple[list[GrantAlert], int]:
    """Return one page of the alerts a viewer may see, newest first: regulators and operators all, providers those
    on grants they decide on (never as the grant's consumer); anyone else is refused."""
    if not viewer.has_role(REGULATOR, OPERATOR, PROVIDER):
        raise Forbidden("refusal alerts are for the grant's providers and the regulator",
                        extra={"required_roles": [PROVIDER, REGULATOR]})
    query = select(GrantAlert)
    if not viewer.has_role(REGULATOR, OPERATOR):
        query = query.where(GrantAlert.grant_id.in_(
            select(GrantProvider.grant_id).where(GrantProvider.provider_id == viewer.id)))
    if grant_id is not None:
        query = query.where(GrantAlert.grant_id == grant_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(GrantAlert.raised_at.desc(), GrantAlert.id).offset(offset).limit(limit))
    return list(rows), total
