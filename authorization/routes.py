"""HTTP routes of authorization: grants and their workflow, ODRL, refusal alerts, the decision dry run."""

from __future__ import annotations

from typing import Any

from flask import Response, json, request
from flask_smorest import Blueprint

from authorization import alerts, explain, facts, lifecycle, odrl, schemas, workflow
from authorization.model import Grant
from authorization.terms import Terms
from common.db import read_session, utcnow
from common.errors import InvalidInput
from ledger.service import unit_of_work
from participants.rules import CONSUMER, OPERATOR, PROVIDER, REGULATOR, Principal
from web.auth import authenticated, current_principal
from web.problems import answers
from web.schemas import page_body, page_window

blp = Blueprint("authorization", __name__, url_prefix="/api/v1",
                description="Authorization (授权): comprehensive 综合授权, per-domain 分领域授权 and per-scenario "
                            "依场景授权 grants, the decision point, and job admission with tickets")

ACTIONS = sorted(name for name, t in lifecycle.TRANSITIONS.items() if t.party != lifecycle.SYSTEM)


class GrantView:
    """A grant as one viewer sees it: the grant plus the actions that viewer may take next."""

    def __init__(self, grant: Grant, viewer: Principal) -> None:
        self._grant = grant
        party = workflow.party_of(viewer, grant)
        self.allowed_actions = [] if party is None else lifecycle.allowed_actions(grant.status, party)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._grant, name)


def _expire_first(grant_id: str) -> None:
    # Its own transaction: an expiry is recorded even when the action that noticed it is then refused.
    with unit_of_work(system=True) as uow:
        workflow.expire_if_due(uow, grant_id, utcnow())


@blp.post("/grants")
@authenticated(CONSUMER, signed=True)
@blp.arguments(schemas.GrantRequest)
@blp.response(201, schemas.Grant)
def request_grant(body):
    """Request an authorization; the providers in scope (and the regulator where required) then decide."""
    with unit_of_work() as uow:
        return GrantView(workflow.request_grant(uow, current_principal(), body, utcnow()), current_principal())


@blp.get("/grants")
@authenticated()
@blp.arguments(schemas.GrantQuery, location="query")
@blp.response(200, schemas.GrantPage)
def list_grants(args):
    """List the grants the caller takes part in (regulators and operators: all), newest first."""
    viewer = current_principal()
    offset, limit = page_window(args)
    rows, total = workflow.list_grants(read_session(), viewer, status=args["status"], kind=args["kind"],
                                       offset=offset, limit=limit)
    return page_body([GrantView(g, viewer) for g in rows], args, total)


@blp.get("/alerts")
@authenticated(PROVIDER, REGULATOR, OPERATOR)
@blp.arguments(schemas.AlertQuery, location="query")
@blp.response(200, schemas.AlertPage)
def list_alerts(args):
    """List refusal alerts, newest first: regulators and operators all, providers those on grants they decide on;
    consumers are refused (403), never shown the alerts their probes raised."""
    offset, limit = page_window(args)
    rows, total = alerts.list_alerts(read_session(), current_principal(), grant_id=args["grant"], offset=offset,
                                     limit=limit)
    return page_body(rows, args, total)


@blp.get("/grants/<grant_id>")
@authenticated()
@blp.response(200, schemas.Grant)
def get_grant(grant_id):
    """Read a grant you take part in."""
    return GrantView(workflow.load(read_session(), current_principal(), grant_id), current_principal())


@blp.post("/grants/<grant_id>/<any({}):action>".format(",".join(f'"{a}"' for a in ACTIONS)))
@authenticated(signed=True)
@blp.arguments(schemas.GrantAction)
@blp.response(200, schemas.Grant)
def act_on_grant(body, grant_id, action):
    """Take a workflow action: approve, counter, reject (providers); accept, decline, withdraw, terminate
    (consumer); co-approve, regulator-reject, suspend, reinstate (regulator); revoke (providers)."""
    if action == "counter" and body["terms"] is None:
        raise InvalidInput("a counter-offer carries the narrowed terms", errors={"terms": ["required"]})
    _expire_first(grant_id)
    with unit_of_work() as uow:
        grant = workflow.act(uow, current_principal(), grant_id, action, now=utcnow(), reason=body["reason"],
                             counter=body["terms"], core_exception=body["core_exception"],
                             dp_exception=body["dp_exception"])
        return GrantView(grant, current_principal())


@blp.post("/grants/<grant_id>/renew")
@authenticated(CONSUMER, signed=True)
@blp.arguments(schemas.Renewal)
@blp.response(201, schemas.Grant)
def renew_grant(body, grant_id):
    """Request the renewal of a grant: a new linked request with the same scope and terms over a new window."""
    now = utcnow()
    with unit_of_work() as uow:
        renewed = workflow.renew(uow, current_principal(), grant_id, body["valid_from"] or now, body["valid_until"],
                                 now)
        return GrantView(renewed, current_principal())


@blp.get("/grants/<grant_id>/odrl")
@authenticated()
@blp.response(200, content_type="application/ld+json", description="ODRL 2.2 Agreement")
def grant_odrl(grant_id):
    """The grant's terms as an ODRL 2.2 Agreement (JSON-LD) for data-space connectors."""
    grant = workflow.load(read_session(), current_principal(), grant_id)
    document = odrl.agreement(grant.id, grant.consumer_id, grant.providers, facts.scope_of(grant),
                              Terms.from_json(grant.terms), grant.status, request.host_url.rstrip("/"))
    return Response(json.dumps(document, ensure_ascii=False), mimetype="application/ld+json")


@blp.post("/decisions")
@authenticated(CONSUMER, REGULATOR)
@blp.arguments(schemas.DecisionBody)
@blp.response(200, schemas.Decision)
@answers(blp, 404, "the grant named in the body does not exist or is not visible to the caller")
def dry_run(body):
    """Explain, without admitting anything, whether a job would be allowed and why (consumers, regulators)."""
    decision = explain.explain(read_session(), current_principal(), body, utcnow())
    return {"allow": decision.allow, "reasons": decision.reasons_json(),
            "obligations": decision.obligations_json()}
