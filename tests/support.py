"""Test data builders."""

from __future__ import annotations

import copy
from typing import Any

ASSET: dict[str, Any] = {
    "title_zh": "企业登记注册信息",
    "title_en": "Enterprise registration records",
    "description_zh": "全省市场主体登记信息",
    "description_en": "Registered market entities of the province",
    "domain": "market-regulation",
    "keywords": ["企业", "registry"],
    "fields": [
        {"name": "uscc", "type": "identifier", "description": "unified social credit code"},
        {"name": "registered_capital", "type": "number", "unit": "CNY 10k"},
    ],
    "grade": 2,
    "computation_kinds": ["aggregate", "he-statistics"],
    "update_frequency": "daily",
    "license": "pdx-authorized-use-1.0",
    "price": {"model": "per-job", "amount": "200.00", "currency": "CNY"},
    "node_endpoint": "http://127.0.0.1:8701",
}


def asset_body(**overrides: Any) -> dict[str, Any]:
    """Return a valid asset registration body with ``overrides`` applied."""
    body = copy.deepcopy(ASSET)
    body.update(overrides)
    return body


def register(client, actor, **overrides: Any) -> dict[str, Any]:
    """Register an asset through the API and return its JSON; fail the test if refused."""
    response = client.post("/api/v1/assets", headers=actor.headers, json=asset_body(**overrides))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def publish(client, actor, asset_id: str) -> dict[str, Any]:
    response = client.post(f"/api/v1/assets/{asset_id}/publish", headers=actor.headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def terms(**overrides: Any) -> dict[str, Any]:
    """Return valid grant terms: a 30-day window, modest quotas, no DP budget, free."""
    from datetime import datetime, timedelta, timezone

    now = datetime.now(timezone.utc)
    body = {"computation_kinds": ["he-statistics", "aggregate"], "valid_from": (now - timedelta(minutes=1)).isoformat(),
            "valid_until": (now + timedelta(days=30)).isoformat(), "max_jobs": 10, "max_rows": 1_000_000,
            "min_group_size": 10, "max_result_cells": 1000}
    body.update(overrides)
    return body


def scenario_request(asset_ids: list[str], **term_overrides: Any) -> dict[str, Any]:
    """Return a per-scenario grant request for SME credit scoring over ``asset_ids``."""
    return {"kind": "scenario", "scenario": "SME credit scoring 中小企业信用评分",
            "purpose": "score loan applicants of the bank's inclusive-finance programme", "assets": asset_ids,
            "terms": terms(**term_overrides)}


def request_grant(client, consumer, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/v1/grants", headers=consumer.headers, json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def grant_action(client, actor, grant_id: str, action: str, body: dict[str, Any] | None = None,
                 expect: int = 200) -> dict[str, Any]:
    response = client.post(f"/api/v1/grants/{grant_id}/{action}", headers=actor.headers, json=body or {})
    assert response.status_code == expect, response.get_json()
    return response.get_json()


def node_headers(app, claims: dict, signature: str, *, statement: bool = True) -> dict[str, str]:
    """The headers the exchange sends a node with a ticket: the ticket and (unless ``statement`` is False) a fresh
    statement, signed with ``app``'s log key, that the ticket's grant is active."""
    from datetime import datetime, timezone

    from ledger import service
    from protocol import grantstatus
    from protocol.tickets import SignedTicket

    headers = SignedTicket(claims, signature).to_headers()
    if statement:
        with app.app_context():
            log = service.identity()
        headers.update(grantstatus.issue(log.key, issuer=log.origin, ticket=claims,
                                         now=datetime.now(timezone.utc)).to_headers())
    return headers
