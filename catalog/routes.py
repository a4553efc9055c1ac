"""HTTP routes of the catalog: assets, domains, data elements and the DCAT-AP export."""

from __future__ import annotations

from flask import Response, current_app, json, request
from flask_smorest import Blueprint

from catalog import dcat, endpoints, nodes, schemas, services
from common.db import read_session, utcnow
from ledger.service import unit_of_work as recorded_work
from participants.rules import OPERATOR, PROVIDER
from web.auth import authenticated, current_principal, optional_principal, optionally_authenticated
from web.problems import answers
from web.schemas import page_body, page_window

blp = Blueprint("catalog", __name__, url_prefix="/api/v1",
                description="The catalog (公共数据资源登记, 数据目录认领, 数据资源挂载): asset metadata only; "
                            "the data stay on provider nodes")
blp.record_once(lambda state: nodes.bind(state.app))  # job workers reach nodes with this app's keys and setting
PROOF_TIMEOUT_SECONDS = 10


def _node_policy() -> str:
    return current_app.config[nodes.SETTING]


@blp.get("/assets")
@optionally_authenticated
@blp.arguments(schemas.AssetQuery, location="query")
@blp.response(200, schemas.AssetPage)
@answers(blp, 403, "an anonymous caller asked for drafts")
def search_assets(args):
    """Search the catalog (public); drafts only for their owner or operators, with a token."""
    offset, limit = page_window(args)
    query = services.AssetQuery(text=args["q"], domain=args["domain"], grade=args["grade"],
                                max_grade=args["max_grade"], provider=args["provider"],
                                computation_kind=args["computation_kind"], status=args["status"],
                                offset=offset, limit=limit)
    rows, total = services.search_assets(read_session(), optional_principal(), query)
    return page_body(rows, args, total)


@blp.post("/assets")
@authenticated(PROVIDER, signed=True)
@blp.arguments(schemas.AssetBody)
@blp.response(201, schemas.Asset)
def register_asset(body):
    """Register an asset as a draft (providers)."""
    with recorded_work() as uow:  # a draft writes no entry, but its signed request's nonce is used up
        return services.register_asset(uow.session, current_principal(), body, now=utcnow(),
                                       node_policy=_node_policy())


@blp.get("/assets/<asset_id>")
@optionally_authenticated
@blp.response(200, schemas.Asset)
def get_asset(asset_id):
    """Read an asset's metadata (public once published)."""
    return services.get_asset(read_session(), optional_principal(), asset_id)


@blp.patch("/assets/<asset_id>")
@authenticated(PROVIDER, signed=True)
@blp.arguments(schemas.AssetPatch)
@blp.response(200, schemas.Asset)
def update_asset(body, asset_id):
    """Change an asset: any field while a draft, descriptive fields once published (owner only)."""
    with recorded_work() as uow:
        return services.update_asset(uow, current_principal(), asset_id, body, now=utcnow(),
                                     node_policy=_node_policy())


def _lifecycle_route(action: str, summary: str) -> None:
    @authenticated(PROVIDER, signed=True)
    @blp.response(200, schemas.Asset)
    def view(asset_id):
        with recorded_work() as uow:
            return services.change_lifecycle(uow, current_principal(), asset_id, action, now=utcnow())

    view.__doc__ = summary
    view.__name__ = f"{action}_asset"
    blp.post(f"/assets/<asset_id>/{action}")(view)


_lifecycle_route("publish", "Publish a draft asset (owner only).")
_lifecycle_route("retire", "Retire a published asset; releases its authoritative claims (owner only).")


@blp.post("/assets/<asset_id>/endpoint")
@authenticated(PROVIDER, signed=True)
@blp.arguments(schemas.EndpointChange)
@blp.response(202, schemas.Asset)
def request_endpoint_change(body, asset_id):
    """Ask to move a published asset to another node (owner); an operator approves once that node proves the key."""
    with recorded_work() as uow:
        return endpoints.request_change(uow, current_principal(), asset_id, body["node_endpoint"], _node_policy(),
                                        now=utcnow())


@blp.post("/assets/<asset_id>/endpoint/approve")
@authenticated(OPERATOR, signed=True)
@blp.arguments(schemas.EndpointDecision)
@blp.response(200, schemas.Asset)
def approve_endpoint_change(body, asset_id):
    """Approve a pending node endpoint change (operators): the node there must prove a registered provider key."""
    asset, endpoint = endpoints.pending(read_session(), current_principal(), asset_id)
    key_id = endpoints.prove(asset, endpoint, min(PROOF_TIMEOUT_SECONDS, current_app.config["PDX_NODE_TIMEOUT_SECONDS"]))
    with recorded_work() as uow:
        return endpoints.decide(uow, current_principal(), asset_id, endpoint, key_id=key_id, now=utcnow())


@blp.post("/assets/<asset_id>/endpoint/reject")
@authenticated(OPERATOR, signed=True)
@blp.arguments(schemas.EndpointDecision)
@blp.response(200, schemas.Asset)
def reject_endpoint_change(body, asset_id):
    """Reject a pending node endpoint change (operators)."""
    _, endpoint = endpoints.pending(read_session(), current_principal(), asset_id)
    with recorded_work() as uow:
        return endpoints.decide(uow, current_principal(), asset_id, endpoint, key_id=None, now=utcnow(),
                                reason=body["reason"])


@blp.get("/domains")
@blp.response(200, schemas.Domain(many=True))
def list_domains():
    """List the classification domains (分类)."""
    return services.list_domains(read_session())


@blp.get("/domains/<code>")
@blp.response(200, schemas.Domain)
def get_domain(code):
    """Read one classification domain (the IRI the DCAT export uses as a theme)."""
    return services.get_domain(read_session(), code)


@blp.post("/domains")
@authenticated(OPERATOR, signed=True)
@blp.arguments(schemas.Domain)
@blp.response(201, schemas.Domain)
def add_domain(body):
    """Add a classification domain (operators)."""
    with recorded_work() as uow:
        return services.add_domain(uow, current_principal(), **body, now=utcnow())


@blp.get("/data-elements/<path:code>")
@optionally_authenticated
@blp.response(200, schemas.Asset)
def authoritative_source(code):
    """Return the authoritative source asset of a data-element code (一数一源)."""
    return services.authoritative_source(read_session(), optional_principal(), code)


@blp.get("/catalog.jsonld")
@blp.response(200, content_type="application/ld+json")
def catalog_jsonld():
    """The whole published catalog as DCAT-AP 3 JSON-LD (public)."""
    session = read_session()
    domains = {domain.code: domain for domain in services.list_domains(session)}
    operator = services.operator_of_record(session)
    document = dcat.catalog(services.published_assets(session), domains, request.host_url.rstrip("/"), operator)
    return Response(json.dumps(document, ensure_ascii=False), mimetype="application/ld+json")
