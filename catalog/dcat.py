"""The published catalog as DCAT-AP 3 JSON-LD (pure: takes plain values, returns a dict)."""

from __future__ import annotations

from typing import Any, Iterable

from catalog import vocab
from common.vocab import ComputationKind

CONTEXT = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "adms": "http://www.w3.org/ns/adms#",
    "pdx": "urn:pdx:vocab:",
}
EU = "http://publications.europa.eu/resource/authority/"
DCAT_AP_3 = "http://data.europa.eu/r5r/"
# 分级 -> EU access-right authority: open data is public, graded data restricted, core data non-public.
ACCESS_RIGHTS = {1: "PUBLIC", 2: "RESTRICTED", 3: "RESTRICTED", 4: "NON_PUBLIC"}


def _text(zh: str, en: str) -> list[dict[str, str]]:
    return [{"@value": zh, "@language": "zh"}, {"@value": en, "@language": "en"}]


def _datetime(value) -> dict[str, str] | None:
    return None if value is None else {"@value": value.isoformat(), "@type": "xsd:dateTime"}


def dataset(asset: Any, provider: Any, domain: Any, base_url: str) -> dict[str, Any]:
    """Return one asset as a dcat:Dataset with its provider-node service as the distribution's access."""
    asset_url = f"{base_url}/api/v1/assets/{asset.id}"
    themes = [{"@id": f"{base_url}/api/v1/domains/{asset.domain_code}"}]
    if domain is not None and domain.eu_theme:
        themes.append({"@id": f"{EU}data-theme/{domain.eu_theme}"})
    node: dict[str, Any] = {
        "@id": asset_url,
        "@type": "dcat:Dataset",
        "dct:identifier": asset.id,
        "dct:title": _text(asset.title_zh, asset.title_en),
        "dct:description": _text(asset.description_zh, asset.description_en),
        "dcat:keyword": list(asset.keywords),
        "dcat:theme": themes,
        "dct:publisher": {"@id": f"{base_url}/api/v1/participants/{provider.id}", "@type": "foaf:Agent",
                          "foaf:name": _text(provider.name_zh, provider.name_en)},
        "dct:accrualPeriodicity": {"@id": f"{EU}frequency/{vocab.FREQUENCIES[asset.update_frequency]}"},
        "dct:accessRights": {"@id": f"{EU}access-right/{ACCESS_RIGHTS[asset.grade]}"},
        "dct:issued": _datetime(asset.published_at),
        "dct:modified": _datetime(asset.updated_at),
        "dct:conformsTo": [{"@id": f"urn:pdx:data-element:{code}"} for code in asset.element_codes],
        "pdx:grade": asset.grade,
        "pdx:computationKinds": list(asset.computation_kinds),
        "pdx:fields": [{"pdx:name": f["name"], "pdx:type": f["type"], "pdx:unit": f.get("unit"),
                        "pdx:personal": bool(f.get("personal")), "pdx:filterable": bool(f.get("filterable"))}
                       for f in asset.fields],
        "dcat:distribution": [{
            "@id": f"{asset_url}#distribution",
            "@type": "dcat:Distribution",
            "dct:license": {"@id": asset.license} if ":" in asset.license else {"rdfs:label": asset.license},
            "dct:accessRights": {"@id": f"{EU}access-right/{ACCESS_RIGHTS[asset.grade]}"},
            "dcat:accessURL": {"@id": asset.node_endpoint},
            "dcat:accessService": {"@type": "dcat:DataService", "dcat:endpointURL": {"@id": asset.node_endpoint},
                                   "dct:title": _text("数据提供方节点", "Provider node")},
        }],
    }
    if ComputationKind.DOWNLOAD in asset.computation_kinds:
        node["dcat:distribution"][0]["dcat:downloadURL"] = {
            "@id": f"{asset.node_endpoint.rstrip('/')}/v1/datasets/{asset.dataset}/download"}
    return {key: value for key, value in node.items() if value not in (None, [])}


def _publisher(operator: Any | None, base_url: str) -> dict[str, Any]:
    if operator is None:
        return {"@type": "foaf:Agent", "foaf:name": _text("公共数据授权运营方", "pdx exchange operator")}
    return {"@id": f"{base_url}/api/v1/participants/{operator.id}", "@type": "foaf:Agent",
            "foaf:name": _text(operator.name_zh, operator.name_en)}


def catalog(rows: Iterable[tuple[Any, Any]], domains: dict[str, Any], base_url: str, operator: Any | None
            ) -> dict[str, Any]:
    """Return the whole published catalog as one DCAT-AP 3 dcat:Catalog document."""
    return {
        "@context": {**CONTEXT, "rdfs": "http://www.w3.org/2000/01/rdf-schema#"},
        "@id": f"{base_url}/api/v1/catalog.jsonld",
        "@type": "dcat:Catalog",
        "dct:conformsTo": {"@id": DCAT_AP_3},
        "dct:title": _text("公共数据授权运营目录", "pdx public data catalog"),
        "dct:description": _text("已发布的公共数据资源（仅元数据，数据保留在提供方节点）",
                                 "Published public data assets (metadata only; the data stay on provider nodes)"),
        "dct:publisher": _publisher(operator, base_url),
        "dcat:dataset": [dataset(asset, provider, domains.get(asset.domain_code), base_url)
                         for asset, provider in rows],
    }
