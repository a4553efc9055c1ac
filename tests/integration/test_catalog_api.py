"""The catalog through the HTTP API: registration, lifecycle, one data one source, visibility, search."""

from __future__ import annotations

import pytest

from tests.support import asset_body, publish, register

pytestmark = pytest.mark.sql  # catalog state and its constraints in the database


@pytest.fixture
def provider(world):
    return world.participant("provider", name="市场监管局")


def test_registered_asset_is_a_draft_owned_by_its_provider(client, provider):
    asset = register(client, provider)
    assert asset["status"] == "draft"
    assert asset["provider_id"] == provider.id
    assert asset["dataset"] == asset["id"]
    assert asset["price"] == {"model": "per-job", "amount": "200.00", "currency": "CNY", "unit_rows": None}
    assert asset["computation_kinds"] == ["aggregate", "he-statistics"]


def test_only_providers_register_assets(client, world):
    consumer = world.participant("consumer")
    response = client.post("/api/v1/assets", headers=consumer.headers, json=asset_body())
    assert response.status_code == 403


def test_lifecycle_runs_draft_published_retired_by_the_owner_only(client, world, provider):
    other = world.participant("provider")
    asset = register(client, provider)
    assert client.post(f"/api/v1/assets/{asset['id']}/publish", headers=other.headers).status_code == 404
    published = publish(client, provider, asset["id"])
    assert published["status"] == "published" and published["published_at"] is not None
    assert client.post(f"/api/v1/assets/{asset['id']}/retire", headers=other.headers).status_code == 403
    again = client.post(f"/api/v1/assets/{asset['id']}/publish", headers=provider.headers)
    assert again.status_code == 409 and again.get_json()["allowed_actions"] == ["retire"]
    assert again.get_json()["status"] == 409 and again.get_json()["current_status"] == "published"
    retired = client.post(f"/api/v1/assets/{asset['id']}/retire", headers=provider.headers).get_json()
    assert retired["status"] == "retired" and retired["retired_at"] is not None
    final = client.post(f"/api/v1/assets/{asset['id']}/publish", headers=provider.headers)
    assert final.status_code == 409 and final.get_json()["allowed_actions"] == []


def test_drafts_are_visible_to_owner_and_operators_only(client, world, provider):
    consumer = world.participant("consumer")
    asset = register(client, provider)
    path = f"/api/v1/assets/{asset['id']}"
    assert client.get(path).status_code == 404
    assert client.get(path, headers=consumer.headers).status_code == 404
    assert client.get(path, headers=provider.headers).status_code == 200
    assert client.get(path, headers=world.operator.headers).status_code == 200
    assert client.get("/api/v1/assets?status=draft").status_code == 403
    own = client.get("/api/v1/assets?status=draft", headers=provider.headers).get_json()
    assert [a["id"] for a in own["items"]] == [asset["id"]]
    assert client.get("/api/v1/assets?status=draft", headers=consumer.headers).get_json()["total"] == 0
    publish(client, provider, asset["id"])
    assert client.get(path).status_code == 200


def test_second_authoritative_source_is_refused_naming_the_first(client, world, provider):
    rival = world.participant("provider")
    first = register(client, provider, authoritative_for=["DE.MR.USCC"])
    publish(client, provider, first["id"])
    response = client.post("/api/v1/assets", headers=rival.headers,
                           json=asset_body(authoritative_for=["DE.TAX.X", "DE.MR.USCC"]))
    assert response.status_code == 409
    problem = response.get_json()
    assert problem["authoritative_asset"] == first["id"]
    assert problem["data_element"] == "DE.MR.USCC"
    assert first["id"] in problem["detail"]
    assert client.get("/api/v1/assets?status=draft", headers=rival.headers).get_json()["total"] == 0
    assert client.get("/api/v1/data-elements/DE.TAX.X").status_code == 404


def test_retiring_an_asset_releases_its_authoritative_claims(client, world, provider):
    first = register(client, provider, authoritative_for=["DE.MR.USCC"])
    publish(client, provider, first["id"])
    assert client.get("/api/v1/data-elements/DE.MR.USCC").get_json()["id"] == first["id"]
    client.post(f"/api/v1/assets/{first['id']}/retire", headers=provider.headers)
    successor = register(client, world.participant("provider"), authoritative_for=["DE.MR.USCC"])
    assert successor["authoritative_for"] == ["DE.MR.USCC"]


def test_published_asset_keeps_its_scope_fields_fixed(client, provider):
    asset = register(client, provider)
    publish(client, provider, asset["id"])
    path = f"/api/v1/assets/{asset['id']}"
    frozen = client.patch(path, headers=provider.headers, json={"grade": 3, "keywords": ["x"]})
    assert frozen.status_code == 409 and set(frozen.get_json()["errors"]) == {"grade"}
    changed = client.patch(path, headers=provider.headers, json={"keywords": ["企业", "信用"],
                                                                 "title_en": "Enterprise registry"})
    assert changed.status_code == 200
    assert changed.get_json()["keywords"] == ["企业", "信用"]
    assert client.get("/api/v1/assets?q=信用").get_json()["total"] == 1


def test_draft_may_change_anything_but_must_stay_consistent(client, provider):
    asset = register(client, provider)
    path = f"/api/v1/assets/{asset['id']}"
    assert client.patch(path, headers=provider.headers, json={"grade": 3}).status_code == 422
    ok = client.patch(path, headers=provider.headers, json={"grade": 3, "computation_kinds": ["he-statistics"]})
    assert ok.status_code == 200 and ok.get_json()["grade"] == 3


@pytest.mark.parametrize("overrides, field", [
    ({"grade": 2, "computation_kinds": ["download"]}, "computation_kinds"),
    ({"grade": 3, "computation_kinds": ["aggregate"]}, "computation_kinds"),
    ({"grade": 1, "computation_kinds": ["download"],
      "fields": [{"name": "person_id", "type": "identifier", "personal": True}]}, "grade"),
    ({"fields": [{"name": "a", "type": "string"}, {"name": "a", "type": "integer"}]}, "fields"),
    ({"domain": "astrology"}, "domain"),
])
def test_inconsistent_assets_are_refused_naming_the_field(client, provider, overrides, field):
    response = client.post("/api/v1/assets", headers=provider.headers, json=asset_body(**overrides))
    assert response.status_code == 422
    assert field in response.get_json()["errors"]


def test_operators_extend_the_domain_vocabulary(client, world, provider):
    new = {"code": "meteorology", "name_zh": "气象", "name_en": "Meteorology", "eu_theme": "ENVI"}
    assert client.post("/api/v1/domains", headers=provider.headers, json=new).status_code == 403
    assert client.post("/api/v1/domains", headers=world.operator.headers, json=new).status_code == 201
    assert client.post("/api/v1/domains", headers=world.operator.headers, json=new).status_code == 409
    codes = [d["code"] for d in client.get("/api/v1/domains").get_json()]
    assert "meteorology" in codes and {"transport", "health", "tax", "agriculture"} <= set(codes)
    assert register(client, provider, domain="meteorology")["domain"] == "meteorology"


@pytest.fixture
def catalog(client, world, provider):
    """Three published assets of two providers and one draft."""
    transport = world.participant("provider", name="交通运输厅")
    tax = register(client, provider, title_zh="企业纳税信用", title_en="Tax credit rating", domain="tax",
                   grade=3, computation_kinds=["he-statistics", "federated-learning"], keywords=["纳税"])
    traffic = register(client, transport, title_zh="高速公路流量", title_en="Expressway traffic counts",
                       domain="transport", grade=1, computation_kinds=["download", "aggregate"],
                       keywords=["traffic_flow"], description_en="Hourly 100% sample of toll stations")
    registry = register(client, provider)
    draft = register(client, provider, title_en="Unpublished registry")
    for asset, owner in ((tax, provider), (traffic, transport), (registry, provider)):
        publish(client, owner, asset["id"])
    return {"tax": tax["id"], "traffic": traffic["id"], "registry": registry["id"], "draft": draft["id"],
            "transport": transport.id, "market": provider.id}


def _ids(client, query):
    body = client.get(f"/api/v1/assets?{query}")
    assert body.status_code == 200, body.get_json()
    return [a["id"] for a in body.get_json()["items"]]


@pytest.mark.parametrize("query, expected", [
    ("q=企业", ["registry", "tax"]),
    ("q=纳税 信用", ["tax"]),
    ("q=EXPRESSWAY", ["traffic"]),
    ("q=expressway toll", ["traffic"]),
    ("q=100%25", ["traffic"]),
    ("q=traffic_flow", ["traffic"]),
    ("q=registry unpublished", []),
    ("domain=tax", ["tax"]),
    ("grade=1", ["traffic"]),
    ("max_grade=2", ["registry", "traffic"]),
    ("computation_kind=federated-learning", ["tax"]),
    ("computation_kind=download", ["traffic"]),
])
def test_search_matches_text_and_filters(client, catalog, query, expected):
    assert sorted(_ids(client, query)) == sorted(catalog[name] for name in expected)


def test_search_by_provider(client, catalog):
    assert _ids(client, f"provider={catalog['transport']}") == [catalog["traffic"]]


def test_search_pages_are_stable_and_newest_first(client, catalog):
    everything = _ids(client, "per_page=100")
    assert everything == [catalog["registry"], catalog["traffic"], catalog["tax"]]
    paged = _ids(client, "per_page=2&page=1") + _ids(client, "per_page=2&page=2")
    assert paged == everything
    assert _ids(client, "per_page=2&page=3") == []
    assert client.get("/api/v1/assets?per_page=2").get_json()["total"] == 3


def test_dcat_export_lists_published_assets_only(client, catalog):
    response = client.get("/api/v1/catalog.jsonld")
    assert response.status_code == 200
    assert response.mimetype == "application/ld+json"
    document = response.get_json()
    assert document["@type"] == "dcat:Catalog"
    datasets = {d["dct:identifier"]: d for d in document["dcat:dataset"]}
    assert set(datasets) == {catalog["tax"], catalog["traffic"], catalog["registry"]}
    traffic = datasets[catalog["traffic"]]
    assert {"@value": "高速公路流量", "@language": "zh"} in traffic["dct:title"]
    assert traffic["dct:accessRights"]["@id"].endswith("/access-right/PUBLIC")
    assert datasets[catalog["tax"]]["dct:accessRights"]["@id"].endswith("/access-right/RESTRICTED")
    assert traffic["dct:accrualPeriodicity"]["@id"].endswith("/frequency/DAILY")
    assert "dcat:downloadURL" in traffic["dcat:distribution"][0]
    assert "dcat:downloadURL" not in datasets[catalog["tax"]]["dcat:distribution"][0]
    access = traffic["dcat:distribution"][0]["dcat:accessService"]["dcat:endpointURL"]["@id"]
    assert access == "http://127.0.0.1:8701"


def test_claim_held_by_another_providers_draft_is_refused_without_revealing_it(client, world, provider):
    draft = register(client, provider, authoritative_for=["DE.SECRET"], title_en="Confidential plan")
    rival = world.participant("provider")
    response = client.post("/api/v1/assets", headers=rival.headers, json=asset_body(authoritative_for=["DE.SECRET"]))
    assert response.status_code == 409
    text = response.get_data(as_text=True)
    assert draft["id"] not in text and "Confidential plan" not in text and provider.id not in text


def test_concurrent_claims_of_one_code_admit_exactly_one(app, client, world):
    """Real threads, each with its own connection: the loser gets the 409 that names the winner, never a 500."""
    import threading

    providers = [world.participant("provider") for _ in range(4)]
    barrier = threading.Barrier(len(providers))
    statuses = []

    def claim(actor):
        with app.test_client() as own_client:
            own_client.actors.update(client.actors)
            barrier.wait()
            response = own_client.post("/api/v1/assets", headers=actor.headers,
                                       json=asset_body(authoritative_for=["DE.RACE"]))
            statuses.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=claim, args=(actor,)) for actor in providers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    codes = sorted(status for status, _ in statuses)
    assert codes == [201, 409, 409, 409]
    assert all(body["type"].endswith("duplicate-authoritative-source") for status, body in statuses if status == 409)


def test_setting_dataset_to_null_on_a_draft_restores_the_default(client, provider):
    asset = register(client, provider, dataset="registry_v1")
    assert asset["dataset"] == "registry_v1"
    reset = client.patch(f"/api/v1/assets/{asset['id']}", headers=provider.headers, json={"dataset": None})
    assert reset.status_code == 200 and reset.get_json()["dataset"] == asset["id"]


@pytest.mark.parametrize("price, field", [
    ({"model": "per-row", "amount": "5.00"}, "price.unit_rows"),
    ({"model": "per-job", "amount": "5.00", "unit_rows": 100}, "price.unit_rows"),
    ({"model": "free", "amount": "5.00"}, "price.amount"),
])
def test_price_terms_must_fit_the_price_model(client, provider, price, field):
    response = client.post("/api/v1/assets", headers=provider.headers, json=asset_body(price=price))
    assert response.status_code == 422 and field in response.get_json()["errors"]


def test_domain_iris_of_the_dcat_export_resolve(client, catalog):
    document = client.get("/api/v1/catalog.jsonld").get_json()
    theme = document["dcat:dataset"][0]["dcat:theme"][0]["@id"]
    path = theme[theme.index("/api/v1/"):]
    assert client.get(path).status_code == 200
    assert document["dct:publisher"]["foaf:name"][0]["@value"] == "运营方"


def test_free_assets_need_no_amount(client, provider):
    asset = register(client, provider, price={"model": "free"})
    assert asset["price"]["amount"] == "0.00"
