"""Turning rows into the plain facts the decision point reads (the one place ORM rows meet the pure core)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from authorization.engine import AssetFacts, GrantFacts, PrincipalFacts
from authorization.model import Grant
from authorization.terms import Scope, Terms
from catalog.models import Asset
from common.vocab import AssetStatus
from participants.models import Participant
from participants.rules import ACTIVE, Principal


def principal_facts(principal: Principal) -> PrincipalFacts:
    return PrincipalFacts(principal.id, principal.roles, principal.is_active)


def scope_of(grant: Grant) -> Scope:
    return Scope(kind=grant.kind, providers=frozenset(grant.providers), domain=grant.domain,
                 max_grade=grant.max_grade, assets=frozenset(grant.assets), scenario=grant.scenario,
                 purpose=grant.purpose)


def grant_facts(grant: Grant) -> GrantFacts:
    return GrantFacts(id=grant.id, consumer_id=grant.consumer_id, status=grant.status, scope=scope_of(grant),
                      terms=Terms.from_json(grant.terms), jobs_used=grant.jobs_used, rows_used=grant.rows_used,
                      epsilon_used=grant.epsilon_used, core_exception=grant.core_exception,
                      dp_exception=grant.dp_exception)


def asset_facts(session: Session, asset_ids: list[str]) -> tuple[list[AssetFacts], list[str]]:
    """Return facts of the assets that exist (in the order asked) and the ids that do not."""
    rows = session.execute(select(Asset, Participant.status).join(Participant, Participant.id == Asset.provider_id)
                           .where(Asset.id.in_(asset_ids))).all()
    found = {asset.id: AssetFacts(asset.id, asset.provider_id, status == ACTIVE, asset.domain_code, asset.grade,
                                  asset.status == AssetStatus.PUBLISHED, frozenset(asset.computation_kinds))
             for asset, status in rows}
    return [found[i] for i in asset_ids if i in found], [i for i in asset_ids if i not in found]

