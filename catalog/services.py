"""Catalog use cases: register, change, publish and retire assets; search; manage domains."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog import nodes, rules
from catalog.models import Asset, AssetComputationKind, AuthoritativeSource, Domain
from common.db import new_id
from common.errors import Conflict, DuplicateSource, Forbidden, InvalidInput, NotFound
from ledger.entries import Draft, canonical
from ledger.service import UnitOfWork
from participants.models import Participant, ParticipantRole
from participants.rules import OPERATOR, PROVIDER, Principal

LIKE_ESCAPE = "\\"


@dataclass(frozen=True)
class AssetQuery:
    """What a catalog search asks for."""

    text: str | None = None
    domain: str | None = None
    grade: int | None = None
    max_grade: int | None = None
    provider: str | None = None
    computation_kind: str | None = None
    status: str = rules.PUBLISHED
    offset: int = 0
    limit: int = 20


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _require_provider(actor: Principal) -> None:
    if not actor.has_role(PROVIDER):
        raise Forbidden("only providers register and manage assets", extra={"required_roles": [PROVIDER]})


def _check_domain(session: Session, code: str) -> None:
    if session.get(Domain, code) is None:
        known = session.scalars(select(Domain.code).order_by(Domain.code)).all()
        raise InvalidInput(f"unknown domain {code!r}", errors={"domain": [f"must be one of {', '.join(known)}"]})


def _duplicate_source(session: Session, actor: Principal, code: str, holder_asset_id: str) -> DuplicateSource:
    first = session.get(Asset, holder_asset_id)
    if not can_view(actor, first):
        # Another provider's draft: say that the code is taken, but not by what.
        return DuplicateSource(f"data element {code} is already claimed by an unpublished asset of another "
                               f"provider", errors={"authoritative_for": [f"{code} is already claimed"]},
                               extra={"data_element": code})
    return DuplicateSource(
        f"data element {code} already has an authoritative source: asset {first.id} "
        f"({first.title_en} / {first.title_zh}) of provider {first.provider_id}",
        errors={"authoritative_for": [f"{code} is already sourced by {first.id}"]},
        extra={"data_element": code, "authoritative_asset": first.id, "authoritative_provider": first.provider_id},
    )


def _claim_sources(session: Session, actor: Principal, asset: Asset, codes: list[str]) -> None:
    """Make ``asset`` the authoritative source of ``codes`` (一数一源), naming the holder of any taken code.

    The primary key on the code decides races: a concurrent claim that commits first makes our insert fail,
    which is reported exactly like a claim that was already there.
    """
    for code in codes:
        holder = session.get(AuthoritativeSource, code)
        if holder is not None and holder.asset_id != asset.id:
            raise _duplicate_source(session, actor, code, holder.asset_id)
        if holder is not None:
            continue
        try:
            with session.begin_nested():
                session.add(AuthoritativeSource(code=code, asset_id=asset.id))
        except IntegrityError:
            holder = session.get(AuthoritativeSource, code, populate_existing=True)
            if holder is None:
                raise
            raise _duplicate_source(session, actor, code, holder.asset_id) from None


def _release_sources(session: Session, asset: Asset) -> None:
    for holder in session.scalars(select(AuthoritativeSource).where(AuthoritativeSource.asset_id == asset.id)):
        session.delete(holder)
    session.flush()


def check_endpoint(endpoint: str, policy: str) -> None:
    """Raise ``InvalidInput`` naming node_endpoint if it names an address the operator's policy refuses."""
    try:
        nodes.check_address(endpoint, policy, resolve=False)
    except nodes.NodeError as exc:
        raise InvalidInput(str(exc), errors={"node_endpoint": [str(exc)]}) from exc


def _as_rule_input(values: dict[str, Any]) -> dict[str, Any]:
    return {**values, "element_codes": values.get("element_codes", [])}


def register_asset(session: Session, actor: Principal, values: dict[str, Any], *, now: datetime,
                   node_policy: str = "loopback") -> Asset:
    """Register an asset as a draft owned by the calling provider (its node endpoint within ``node_policy``)."""
    _require_provider(actor)
    check_endpoint(values["node_endpoint"], node_policy)
    values = dict(values)
    values["element_codes"] = values.pop("authoritative_for", [])
    values["domain_code"] = values.pop("domain")
    rule_input = _as_rule_input(values)
    rules.check_asset(rule_input)
    _check_domain(session, values["domain_code"])
    kinds = values.pop("computation_kinds")
    values.setdefault("dataset", None)
    asset = Asset(id=new_id("ast"), provider_id=actor.id, status=rules.DRAFT, created_at=now, updated_at=now,
                  search_text=rules.search_text(rule_input), **values)
    if asset.dataset is None:
        asset.dataset = asset.id
    asset.kind_rows = [AssetComputationKind(kind=kind) for kind in sorted(set(kinds))]
    session.add(asset)
    session.flush()
    _claim_sources(session, actor, asset, asset.element_codes)
    return asset


def owned(session: Session, actor: Principal, asset_id: str) -> Asset:
    asset = session.get(Asset, asset_id)
    if asset is None or not can_view(actor, asset):
        raise NotFound(f"no asset {asset_id}")
    if asset.provider_id != actor.id:
        raise Forbidden(f"asset {asset_id} belongs to another provider; only its owner may change it")
    return asset


def _snapshot(asset: Asset) -> dict[str, Any]:
    return {
        "title_zh": asset.title_zh, "title_en": asset.title_en, "description_zh": asset.description_zh,
        "description_en": asset.description_en, "domain_code": asset.domain_code, "keywords": asset.keywords,
        "fields": asset.fields, "grade": asset.grade, "computation_kinds": asset.computation_kinds,
        "update_frequency": asset.update_frequency, "license": asset.license, "price": asset.price,
        "node_endpoint": asset.node_endpoint, "dataset": asset.dataset, "element_codes": asset.element_codes,
    }


def metadata_sha256(asset: Asset) -> str:
    """Return the hash of all an asset's metadata, as its ledger entries record it."""
    return hashlib.sha256(canonical(_snapshot(asset))).hexdigest()


def _ledger_body(asset: Asset) -> dict[str, Any]:
    """What the ledger records of an asset: its scope-defining fields and a hash of all its metadata."""
    return {"provider": asset.provider_id, "domain": asset.domain_code, "grade": asset.grade,
            "computation_kinds": asset.computation_kinds, "authoritative_for": asset.element_codes,
            "title_zh": asset.title_zh, "title_en": asset.title_en, "metadata_sha256": metadata_sha256(asset)}


def update_asset(uow: UnitOfWork, actor: Principal, asset_id: str, changes: dict[str, Any], *, now: datetime,
                 node_policy: str = "loopback") -> Asset:
    """Change an asset's metadata: anything while a draft, descriptive fields once published (recorded)."""
    session = uow.session
    if "node_endpoint" in changes:
        check_endpoint(changes["node_endpoint"], node_policy)
    asset = owned(session, actor, asset_id)
    changes = dict(changes)
    if "domain" in changes:
        changes["domain_code"] = changes.pop("domain")
    if "authoritative_for" in changes:
        changes["element_codes"] = changes.pop("authoritative_for")
    if "dataset" in changes and changes["dataset"] is None:
        changes["dataset"] = asset.id
    current = _snapshot(asset)
    changed = {name for name, value in changes.items() if current[name] != value}
    public_names = {"domain_code": "domain", "element_codes": "authoritative_for"}
    rules.check_changes(asset.status, {public_names.get(name, name) for name in changed})
    merged = {**current, **changes}
    rules.check_asset(merged)
    if "domain_code" in changed:
        _check_domain(session, merged["domain_code"])
    for name in changed:
        if name == "computation_kinds":
            asset.kind_rows = [AssetComputationKind(kind=kind) for kind in sorted(set(merged[name]))]
        else:
            setattr(asset, name, merged[name])
    if "element_codes" in changed:
        _release_sources(session, asset)
        _claim_sources(session, actor, asset, merged["element_codes"])
    asset.search_text = rules.search_text(merged)
    asset.updated_at = now
    session.flush()
    if asset.status == rules.PUBLISHED and changed:
        uow.ledger.append(Draft("asset.updated", actor.id, refs={"asset": [asset.id]},
                                body={**_ledger_body(asset), "changed": sorted(changed)}))
    return asset


def change_lifecycle(uow: UnitOfWork, actor: Principal, asset_id: str, action: str, *, now: datetime) -> Asset:
    """Publish a draft or retire a published asset (the owning provider only), and record it."""
    session = uow.session
    asset = owned(session, actor, asset_id)
    asset.status = rules.next_status(action, asset.status)
    asset.updated_at = now
    if asset.status == rules.PUBLISHED:
        asset.published_at = now
    if asset.status == rules.RETIRED:
        asset.retired_at = now
        _release_sources(session, asset)
    body = _ledger_body(asset)
    if asset.status == rules.PUBLISHED:  # the node the exchange will call is registered with the asset
        body["node_endpoint"] = asset.node_endpoint
    uow.ledger.append(Draft(f"asset.{asset.status}", actor.id, refs={"asset": [asset.id]}, body=body))
    return asset


def can_view(viewer: Principal | None, asset: Asset) -> bool:
    """Published and retired metadata is public; drafts are seen by their owner and operators only."""
    if asset.status != rules.DRAFT:
        return True
    return viewer is not None and (viewer.id == asset.provider_id or viewer.has_role(OPERATOR))


def get_asset(session: Session, viewer: Principal | None, asset_id: str) -> Asset:
    """Return an asset the viewer may see; hide the rest behind 404."""
    asset = session.get(Asset, asset_id)
    if asset is None or not can_view(viewer, asset):
        raise NotFound(f"no asset {asset_id}")
    return asset


def search_assets(session: Session, viewer: Principal | None, query: AssetQuery) -> tuple[list[Asset], int]:
    """Return one page of matching assets in a stable order (newest first, then id) and the total count."""
    statement = select(Asset).where(Asset.status == query.status)
    if query.status == rules.DRAFT:
        if viewer is None:
            raise Forbidden("drafts are visible to their owner and operators only; authenticate to list yours")
        if not viewer.has_role(OPERATOR):
            statement = statement.where(Asset.provider_id == viewer.id)
    for token in rules.query_tokens(query.text or ""):
        statement = statement.where(Asset.search_text.like(f"%{_escape_like(token)}%", escape=LIKE_ESCAPE))
    if query.domain is not None:
        statement = statement.where(Asset.domain_code == query.domain)
    if query.grade is not None:
        statement = statement.where(Asset.grade == query.grade)
    if query.max_grade is not None:
        statement = statement.where(Asset.grade <= query.max_grade)
    if query.provider is not None:
        statement = statement.where(Asset.provider_id == query.provider)
    if query.computation_kind is not None:
        statement = statement.where(Asset.id.in_(
            select(AssetComputationKind.asset_id).where(AssetComputationKind.kind == query.computation_kind)))
    total = session.scalar(select(func.count()).select_from(statement.subquery()))
    newest = func.coalesce(Asset.published_at, Asset.created_at)
    rows = session.scalars(statement.order_by(newest.desc(), Asset.id).offset(query.offset).limit(query.limit))
    return list(rows), int(total or 0)


def published_assets(session: Session) -> list[tuple[Asset, Participant]]:
    """Return every published asset with its provider, for the DCAT export."""
    rows = session.execute(select(Asset, Participant).join(Participant, Participant.id == Asset.provider_id)
                           .where(Asset.status == rules.PUBLISHED).order_by(Asset.published_at, Asset.id))
    return [(asset, provider) for asset, provider in rows]


def get_domain(session: Session, code: str) -> Domain:
    """Return one domain of the vocabulary."""
    domain = session.get(Domain, code)
    if domain is None:
        raise NotFound(f"no domain {code}")
    return domain


def operator_of_record(session: Session) -> Participant | None:
    """Return the first operator: the publisher of the catalog as a whole."""
    return session.scalar(select(Participant).join(ParticipantRole).where(ParticipantRole.role == OPERATOR)
                          .order_by(Participant.created_at).limit(1))


def list_domains(session: Session) -> list[Domain]:
    """Return every domain, by code."""
    return list(session.scalars(select(Domain).order_by(Domain.code)))


def add_domain(uow: UnitOfWork, actor: Principal, *, code: str, name_zh: str, name_en: str, now: datetime,
               eu_theme: str | None = None) -> Domain:
    """Add a domain to the vocabulary (operators only)."""
    if not actor.has_role(OPERATOR):
        raise Forbidden("only operators extend the domain vocabulary", extra={"required_roles": [OPERATOR]})
    session = uow.session
    if session.get(Domain, code) is not None:
        raise Conflict(f"domain {code} already exists", errors={"code": ["already exists"]})
    domain = Domain(code=code, name_zh=name_zh, name_en=name_en, eu_theme=eu_theme, created_at=now)
    session.add(domain)
    session.flush()
    uow.ledger.append(Draft("domain.added", actor.id, refs={"domain": [code]},
                            body={"code": code, "name_zh": name_zh, "name_en": name_en, "eu_theme": eu_theme}))
    return domain


def authoritative_source(session: Session, viewer: Principal | None, code: str) -> Asset:
    """Return the asset that is the authoritative source of a data-element code, if the viewer may see it."""
    holder = session.get(AuthoritativeSource, code)
    asset = None if holder is None else session.get(Asset, holder.asset_id)
    if asset is None or not can_view(viewer, asset):
        raise NotFound(f"no visible asset is the authoritative source of data element {code}")
    return asset

