"""Configuration and health: bad settings fail at start, an unmigrated database is reported, proxies honoured."""

from __future__ import annotations

import pytest

from app import create_app
from common.config import ConfigError


@pytest.mark.parametrize("config", [{"MAX_BODY_BYTES": "lots"}, {"MAX_BODY_BYTES": 0}, {"PDX_MAX_BODY_BYTES": -5},
                                    {"TRUSTED_PROXIES": -1}, {"MAX_BODY_BYTES": 1.5}])
def test_invalid_settings_are_refused_at_start(tmp_path, config):
    with pytest.raises(ConfigError):
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3", **config})


def test_health_reports_an_unmigrated_database_as_unavailable(tmp_path):
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/empty.sqlite3", "INSTANCE_DIR": str(tmp_path)})
    response = app.test_client().get("/api/v1/health")
    assert response.status_code == 503
    assert "pdx db upgrade" in response.get_json()["detail"]


def test_health_names_the_schema_revision(client):
    body = client.get("/api/v1/health").get_json()
    assert body["status"] == "ok" and body["schema_revision"]


def test_forwarded_host_is_used_only_behind_a_trusted_proxy(database_url, tmp_path):
    headers = {"X-Forwarded-Host": "data.example.gov.cn", "X-Forwarded-Proto": "https"}
    plain = create_app({"DATABASE_URL": database_url, "INSTANCE_DIR": str(tmp_path)})
    proxied = create_app({"DATABASE_URL": database_url, "INSTANCE_DIR": str(tmp_path), "TRUSTED_PROXIES": "1"})
    assert plain.test_client().get("/api/v1/catalog.jsonld", headers=headers).get_json()["@id"].startswith(
        "http://localhost")
    assert proxied.test_client().get("/api/v1/catalog.jsonld", headers=headers).get_json()["@id"].startswith(
        "https://data.example.gov.cn/")


def test_openapi_documents_bearer_auth_and_the_signature_headers_of_signed_writes(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    signed = spec["paths"]["/api/v1/grants"]["post"]
    assert signed["security"] == [{"bearerAuth": []}]
    assert {p["name"] for p in signed["parameters"] if p["in"] == "header"} == {
        "PDX-Key", "PDX-Signed-At", "PDX-Nonce", "PDX-Signature"}
    unsigned = spec["paths"]["/api/v1/participants/{participant_id}/tokens/{token_id}/revoke"]["post"]
    assert not [p for p in unsigned.get("parameters", []) if p["in"] == "header"]
    # The public catalog reads an optional token (drafts for their owner); the health check reads none.
    assert spec["paths"]["/api/v1/assets"]["get"]["security"] == [{}, {"bearerAuth": []}]
    assert "security" not in spec["paths"]["/api/v1/health"]["get"]


def test_openapi_declares_the_problems_each_operation_answers(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    signed = spec["paths"]["/api/v1/grants/{grant_id}/renew"]["post"]["responses"]
    assert {"400", "401", "403", "404", "409", "413", "422", "429"} <= set(signed)
    public = spec["paths"]["/api/v1/domains"]["get"]["responses"]
    assert set(public) == {"200", "414", "422", "429", "default"}
    problem = spec["components"]["responses"]["CONFLICT"]["content"]
    assert problem == {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    assert spec["components"]["schemas"]["Problem"].get("additionalProperties", True) is not False
    size = spec["paths"]["/api/v1/ledger/checkpoints/{size}"]["parameters"][0]["schema"]
    assert size == {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}
