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
