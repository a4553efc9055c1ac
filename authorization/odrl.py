"""A grant's terms as an ODRL 2.2 Agreement (JSON-LD), for data-space connectors. Pure."""

from __future__ import annotations

from typing import Any

from authorization.terms import SCENARIO, Scope, Terms

ODRL_CONTEXT = "http://www.w3.org/ns/odrl.jsonld"
PROFILE = "urn:pdx:odrl-profile:v1"
PDX_NS = "urn:pdx:odrl:"
CNY = "http://dbpedia.org/resource/Chinese_yuan"


def _constraint(left: str, operator: str, right: Any, datatype: str | None = None) -> dict[str, Any]:
    value = {"@value": right, "@type": datatype} if datatype else right
    return {"leftOperand": left, "operator": operator, "rightOperand": value}


def _target(scope: Scope, base_url: str, provider: str) -> dict[str, Any] | str:
    if scope.kind == SCENARIO:
        return {"@type": "AssetCollection", "uid": f"{base_url}/api/v1/grants#assets-of-{provider}",
                "source": [f"{base_url}/api/v1/assets/{asset}" for asset in sorted(scope.assets)]}
    refinement = [_constraint("pdx:provider", "eq", f"{base_url}/api/v1/participants/{provider}"),
                  _constraint("pdx:grade", "lteq", scope.max_grade)]
    if scope.domain:
        refinement.append(_constraint("pdx:domain", "eq", f"{base_url}/api/v1/domains/{scope.domain}"))
    return {"@type": "AssetCollection", "uid": f"{base_url}/api/v1/assets", "refinement": refinement}


def agreement(grant_id: str, consumer_id: str, providers: list[str], scope: Scope, terms: Terms, status: str,
              base_url: str) -> dict[str, Any]:
    """Return the ODRL Agreement of a grant: one permission per approving provider, with the terms as
    constraints, the price as a compensate duty, and raw distribution prohibited."""
    constraints = [
        _constraint("dateTime", "gteq", terms.valid_from.isoformat(), "xsd:dateTime"),
        _constraint("dateTime", "lt", terms.valid_until.isoformat(), "xsd:dateTime"),
        _constraint("count", "lteq", terms.max_jobs),
        _constraint("pdx:rowsProcessed", "lteq", terms.max_rows),
        _constraint("pdx:minGroupSize", "gteq", terms.min_group_size),
        _constraint("pdx:resultCells", "lteq", terms.max_result_cells),
    ]
    if terms.epsilon is not None:
        constraints.append(_constraint("pdx:privacyBudgetEpsilon", "lteq", terms.epsilon, "xsd:decimal"))
    if scope.kind == SCENARIO:
        constraints.append(_constraint("purpose", "eq", scope.purpose))
        constraints.append(_constraint("pdx:scenario", "eq", scope.scenario))
    action = [{"rdf:value": {"@id": "odrl:use"}, "refinement": [
        _constraint("pdx:computationKind", "isAnyOf", sorted(terms.computation_kinds))]}]
    permissions, prohibitions = [], []
    for provider in providers:
        assigner = f"{base_url}/api/v1/participants/{provider}"
        target = _target(scope, base_url, provider)
        permission: dict[str, Any] = {"target": target, "assigner": assigner, "action": action,
                                      "constraint": constraints}
        if terms.price_amount > 0:
            permission["duty"] = [{"action": "compensate", "constraint": [
                _constraint("payAmount", "eq", str(terms.price_amount), "xsd:decimal") | {"unit": CNY}]}]
        permissions.append(permission)
        prohibitions.append({"target": target, "assigner": assigner, "action": "distribute"})
    return {
        "@context": [ODRL_CONTEXT, {"pdx": PDX_NS}],
        "@type": "Agreement",
        "uid": f"{base_url}/api/v1/grants/{grant_id}",
        "profile": PROFILE,
        "assignee": f"{base_url}/api/v1/participants/{consumer_id}",
        "pdx:kind": scope.kind,
        "pdx:status": status,
        "permission": permissions,
        "prohibition": prohibitions,
    }
