"""Changing the node endpoint of a published asset: the owner asks, an operator approves once the node at the new
address has proved it holds one of the provider's registered keys (or rejects); each step is a ledger entry.

A draft's endpoint changes freely (PATCH): nothing is sent to a draft's node. A published asset's endpoint is
where the exchange sends tickets, plans and HE contexts, so it changes only through this workflow.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from catalog import nodes, rules
from catalog.models import Asset
from catalog.services import check_endpoint, metadata_sha256, owned
from common.errors import Conflict, Forbidden, InvalidInput, NotFound
from ledger.entries import Draft
from ledger.replay.catalog import ENDPOINT_APPROVED, ENDPOINT_REJECTED, ENDPOINT_REQUESTED
from ledger.service import UnitOfWork
from participants.rules import OPERATOR, Principal


def request_change(uow: UnitOfWork, actor: Principal, asset_id: str, endpoint: str, policy: str, *,
                   now: datetime) -> Asset:
    """Record the owner's request to move a published asset to another node; it waits for an operator."""
    asset = owned(uow.session, actor, asset_id)
    if asset.status != rules.PUBLISHED:
        raise Conflict(f"asset {asset_id} is {asset.status}: a draft's endpoint is changed with PATCH, a retired "
                       f"asset's not at all", extra={"current_status": asset.status})
    check_endpoint(endpoint, policy)
    if endpoint == asset.node_endpoint:
        raise InvalidInput(f"{endpoint} is already the node endpoint of asset {asset_id}",
                           errors={"node_endpoint": ["unchanged"]})
    asset.pending_node_endpoint = endpoint
    asset.updated_at = now
    uow.ledger.append(Draft(ENDPOINT_REQUESTED, actor.id, refs={"asset": [asset.id]},
                            body={"node_endpoint": endpoint}))
    return asset


def pending(session: Session, actor: Principal, asset_id: str) -> tuple[Asset, str]:
    """Return an asset and its pending endpoint, for an operator's decision."""
    if not actor.has_role(OPERATOR):
        raise Forbidden("only operators decide node endpoint changes", extra={"required_roles": [OPERATOR]})
    asset = session.get(Asset, asset_id)
    if asset is None or asset.status == rules.DRAFT:
        raise NotFound(f"no published asset {asset_id}")
    if asset.pending_node_endpoint is None:
        raise Conflict(f"asset {asset_id} has no pending node endpoint change")
    return asset, asset.pending_node_endpoint


def prove(asset: Asset, endpoint: str, timeout: float) -> str:
    """Check the new endpoint's addresses and challenge its node; return the provider key it proved."""
    try:
        return nodes.check_and_verify(endpoint, asset.provider_id, timeout)
    except nodes.NodeError as exc:
        raise Conflict(f"not approved: {exc.code}: {exc}. The provider runs its node there with one of its "
                       f"registered keys, then the operator approves again (or rejects the change)",
                       extra={"node_problem": exc.code}) from exc


def decide(uow: UnitOfWork, actor: Principal, asset_id: str, endpoint: str, *, key_id: str | None, now: datetime,
           reason: str | None = None) -> Asset:
    """Approve (with the key the node proved) or reject (``key_id`` None) the pending change, and record it."""
    asset, waiting = pending(uow.session, actor, asset_id)
    if waiting != endpoint:
        raise Conflict(f"the pending endpoint of asset {asset_id} changed to {waiting} meanwhile; decide again")
    asset.pending_node_endpoint = None
    asset.updated_at = now
    if key_id is None:
        uow.ledger.append(Draft(ENDPOINT_REJECTED, actor.id, refs={"asset": [asset.id]},
                                body={"node_endpoint": endpoint, "reason": reason}),
                          parties=[asset.provider_id])
        return asset
    asset.node_endpoint = endpoint
    uow.session.flush()
    uow.ledger.append(Draft(ENDPOINT_APPROVED, actor.id, refs={"asset": [asset.id]},
                            body={"node_endpoint": endpoint, "key": key_id, "metadata_sha256": metadata_sha256(asset)}),
                      parties=[asset.provider_id])
    return asset
