"""Bad input of every kind gets a 4xx problem naming what is wrong, and changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from common.db import Base, get_database
from tests.support import asset_body, register

pytestmark = pytest.mark.sql  # refused input changes no table

PROBLEM_KEYS = {"type", "title", "status", "detail"}


def _row_counts(app) -> dict[str, int]:
    with app.app_context(), get_database().engine.connect() as connection:
        return {table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
                for table in Base.metadata.sorted_tables}


def _assert_problem(response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert PROBLEM_KEYS <= set(body) and body["status"] == status
    assert body["type"].startswith("urn:pdx:problem:")
    if field is not None:
        assert field in body["errors"], body
    return body


@pytest.fixture
def provider(world):
    return world.participant("provider")


@pytest.mark.parametrize("body, field", [
    (asset_body(grade="2"), "grade"),
    (asset_body(grade=2.5), "grade"),
    (asset_body(grade=5), "grade"),
    (asset_body(keywords="企业"), "keywords"),
    (asset_body(fields=[{"name": "a", "type": "blob"}]), "fields.0.type"),
    (asset_body(fields=[{"name": "a b", "type": "string"}]), "fields.0.name"),
    (asset_body(price={"model": "per-job", "amount": "-1"}), "price.amount"),
    (asset_body(price={"model": "per-job", "amount": "NaN"}), "price.amount"),
    (asset_body(node_endpoint="ftp://node"), "node_endpoint"),
    (asset_body(computation_kinds=["telepathy"]), "computation_kinds.0"),
    (asset_body(title_zh=""), "title_zh"),
    (asset_body(title_zh="x" * 201), "title_zh"),
    (asset_body(title_zh="企业\x00"), "title_zh"),
    (asset_body(authoritative_for=["has space"]), "authoritative_for.0"),
    ({**asset_body(), "owner": "someone-else"}, "owner"),
    ({k: v for k, v in asset_body().items() if k != "grade"}, "grade"),
    ([asset_body()], "_schema"),
])
def test_invalid_asset_bodies_are_refused_naming_the_field(app, client, provider, body, field):
    before = _row_counts(app)
    response = client.post("/api/v1/assets", headers=provider.headers, json=body)
    problem = _assert_problem(response, 422, field)
    assert field in problem["detail"] or problem["detail"]
    assert _row_counts(app) == before


@pytest.mark.parametrize("raw, content_type", [
    (b"{not json", "application/json"),
    (b'{"title_zh": "\xff\xfe"}', "application/json"),
    (b"", "application/json"),
])
def test_unparseable_bodies_are_bad_requests(app, client, provider, raw, content_type):
    before = _row_counts(app)
    response = client.post("/api/v1/assets", headers={**provider.headers, "Content-Type": content_type}, data=raw)
    assert response.status_code in (400, 422)
    _assert_problem(response, response.status_code)
    assert _row_counts(app) == before


def test_body_without_json_content_type_is_refused(app, client, provider):
    import json

    response = client.post("/api/v1/assets", headers={**provider.headers, "Content-Type": "text/plain"},
                           data=json.dumps(asset_body()))
    _assert_problem(response, 422)


def test_oversized_body_is_refused_before_it_is_read(app, client, provider):
    before = _row_counts(app)
    huge = asset_body(description_en="x" * (app.config["MAX_CONTENT_LENGTH"] + 1))
    response = client.post("/api/v1/assets", headers=provider.headers, json=huge)
    _assert_problem(response, 413)
    assert _row_counts(app) == before


@pytest.mark.parametrize("query, field", [
    ("page=0", "page"), ("page=abc", "page"), ("per_page=0", "per_page"), ("per_page=101", "per_page"),
    ("grade=9", "grade"), ("status=deleted", "status"), ("computation_kind=magic", "computation_kind"),
    ("q=", "q"), ("q=%00", "_url"),
])
def test_bad_query_arguments_are_refused(client, query, field):
    _assert_problem(client.get(f"/api/v1/assets?{query}"), 422, field)


def test_bad_participant_listing_arguments_are_refused(client, world):
    _assert_problem(client.get("/api/v1/participants?role=king", headers=world.operator.headers), 422, "role")


@pytest.mark.parametrize("path", [
    "/api/v1/assets/ast_unknown", "/api/v1/assets/%00", "/api/v1/data-elements/DE.NONE", "/api/v1/nowhere",
])
def test_unknown_resources_are_not_found(client, path):
    response = client.get(path)
    assert response.status_code in (404, 422)
    _assert_problem(response, response.status_code)


def test_unknown_ids_in_actions_are_not_found_and_change_nothing(app, client, world, provider):
    before = _row_counts(app)
    for path in ["/api/v1/participants/prt_nobody/admit", "/api/v1/assets/ast_nothing/publish",
                 f"/api/v1/participants/{provider.id}/keys/{'0' * 64}/revoke",
                 f"/api/v1/participants/{provider.id}/tokens/tok_none/revoke"]:
        _assert_problem(client.post(path, headers=world.operator.headers if "admit" in path else provider.headers,
                                    json={}), 404)
    assert _row_counts(app) == before


def test_wrong_method_is_a_problem_with_allow_header(client):
    response = client.delete("/api/v1/assets")
    _assert_problem(response, 405)
    assert "GET" in response.headers["Allow"]


def test_rejected_patch_leaves_the_asset_unchanged(client, provider):
    asset = register(client, provider)
    response = client.patch(f"/api/v1/assets/{asset['id']}", headers=provider.headers,
                            json={"title_en": "new title", "grade": 1, "computation_kinds": ["download"],
                                  "fields": [{"name": "pid", "type": "identifier", "personal": True}]})
    _assert_problem(response, 422, "grade")
    assert client.get(f"/api/v1/assets/{asset['id']}", headers=provider.headers).get_json() == asset
