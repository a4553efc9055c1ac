"""The decision dry run (`POST /decisions`): would this job be allowed under this grant, and why — nothing is
consumed or recorded. A regulator asks about any grant and is answered as its consumer would be."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from sqlalchemy.orm import Session

from authorization import facts, workflow
from authorization.engine import COMPUTE, DOWNLOAD, Action, Context, Decision, decide
from common.errors import InvalidInput
from participants import services as participants
from participants.rules import REGULATOR, Principal


def explain(session: Session, viewer: Principal, request: Mapping[str, Any], now: datetime) -> Decision:
    """Return the decision point's answer for ``request`` (a decision body) as of ``now``."""
    grant = None if request["grant"] is None else workflow.load(session, viewer, request["grant"])
    principal = viewer
    if grant is not None and viewer.has_role(REGULATOR):
        holder = participants.get_participant(session, viewer, grant.consumer_id)
        principal = Principal(holder.id, frozenset(holder.roles), holder.status, "dry-run")
    assets, unknown = facts.asset_facts(session, request["assets"])
    if unknown:
        raise InvalidInput(f"unknown assets: {', '.join(unknown)}", errors={"assets": unknown})
    context = Context(now=now, grant=None if grant is None else facts.grant_facts(grant), rows=request["rows"],
                      epsilon=request["epsilon"], group_size=request["group_size"],
                      result_cells=request["result_cells"])
    action = Action(DOWNLOAD if request["action"] == DOWNLOAD else COMPUTE, request["computation_kind"])
    return decide(facts.principal_facts(principal), action, assets, context)
