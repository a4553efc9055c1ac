"""The authorization workflow through the API: the three kinds, approvals, counter-offers, the regulator,
the life of a grant, expiry and renewal; every transition recorded by its actor."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.support import grant_action, publish, register, request_grant, scenario_request, terms

pytestmark = pytest.mark.sql  # grant state and its ledger entries committed together


@pytest.fixture
def market(client, world):
    """Two providers with published assets of grades 1–3, a consumer and a regulator."""
    tax = world.participant("provider", name="税务局")
    transport = world.participant("provider", name="交通厅")
    assets = {
        "tax3": publish(client, tax, register(client, tax, domain="tax", grade=3,
                                              computation_kinds=["he-statistics", "he-scoring"])["id"]),
        "tax2": publish(client, tax, register(client, tax, domain="tax", grade=2)["id"]),
        "traffic1": publish(client, transport, register(client, transport, domain="transport", grade=1,
                                                        computation_kinds=["download", "aggregate"])["id"]),
        "licences2": publish(client, transport, register(client, transport, domain="transport", grade=2)["id"]),
    }
    return {"tax": tax, "transport": transport, "consumer": world.participant("consumer", name="银行"),
            "regulator": world.participant("regulator", name="大数据局"),
            "assets": {name: asset["id"] for name, asset in assets.items()}}


def _ledger_types(client, regulator, grant_id):
    size = client.get("/api/v1/ledger/checkpoint", headers=regulator.headers).get_json()["size"]
    entries = []
    for start in range(0, size, 1000):
        entries += client.get(f"/api/v1/ledger/entries?start={start}&end={min(size, start + 1000)}",
                              headers=regulator.headers).get_json()["entries"]
    return [(e["entry"]["type"], e["entry"]["actor"]) for e in entries
            if grant_id in e["entry"]["refs"].get("grant", [])]


def test_scenario_grant_over_grade_2_is_active_once_its_provider_approves(client, market):
    consumer, transport = market["consumer"], market["transport"]
    grant = request_grant(client, consumer, scenario_request([market["assets"]["licences2"]]))
    assert grant["status"] == "requested" and grant["kind_zh"] == "依场景授权"
    assert grant["needs_regulator"] is False and grant["allowed_actions"] == ["withdraw"]
    assert [p["provider_id"] for p in grant["providers"]] == [transport.id]
    approved = grant_action(client, transport, grant["id"], "approve")
    assert approved["status"] == "active" and approved["activated_at"]
    assert _ledger_types(client, market["regulator"], grant["id"]) == [
        ("grant.requested", consumer.id), ("grant.provider_approved", transport.id), ("grant.activated", "system")]


def test_grade_3_needs_every_provider_and_then_the_regulator(client, market):
    consumer, tax, transport, regulator = (market[k] for k in ("consumer", "tax", "transport", "regulator"))
    grant = request_grant(client, consumer, scenario_request([market["assets"]["tax3"],
                                                              market["assets"]["licences2"]]))
    assert grant["needs_regulator"] is True
    assert grant_action(client, tax, grant["id"], "approve")["status"] == "requested"
    grant_action(client, regulator, grant["id"], "co-approve", expect=409)
    assert grant_action(client, transport, grant["id"], "approve")["status"] == "provider-approved"
    active = grant_action(client, regulator, grant["id"], "co-approve")
    assert active["status"] == "active" and active["regulator_id"] == regulator.id
    assert [t for t, _ in _ledger_types(client, regulator, grant["id"])][-2:] == [
        "grant.regulator_approved", "grant.activated"]


def test_the_no_dp_exception_is_the_regulators_co_approval_with_a_reason(client, market):
    consumer, tax, regulator = market["consumer"], market["tax"], market["regulator"]
    grant = request_grant(client, consumer, scenario_request([market["assets"]["tax3"]]))
    refused = grant_action(client, tax, grant["id"], "approve", {"dp_exception": True}, expect=422)
    assert "dp_exception" in refused["errors"]
    assert grant_action(client, tax, grant["id"], "approve")["status"] == "provider-approved"
    refused = grant_action(client, regulator, grant["id"], "co-approve", {"dp_exception": True}, expect=422)
    assert "reason" in refused["errors"]
    assert grant_action(client, regulator, grant["id"], "co-approve", {"dp_exception": True, "reason": "   "},
                        expect=422)["errors"]["reason"]
    active = grant_action(client, regulator, grant["id"], "co-approve",
                          {"dp_exception": True, "reason": "exact county tables for the statistical yearbook"})
    assert active["status"] == "active" and active["dp_exception"] is True and active["core_exception"] is False
    entries = client.get("/api/v1/ledger/entries?start=0&end=1000", headers=regulator.headers).get_json()["entries"]
    approved = [e["entry"] for e in entries if e["entry"]["type"] == "grant.regulator_approved"]
    assert approved[-1]["body"]["dp_exception"] is True


def test_comprehensive_grants_always_need_the_regulator(client, market):
    consumer, transport, regulator = market["consumer"], market["transport"], market["regulator"]
    grant = request_grant(client, consumer, {"kind": "comprehensive", "providers": [transport.id], "max_grade": 2,
                                             "terms": terms()})
    assert grant["needs_regulator"] is True and grant["kind_zh"] == "综合授权"
    assert grant_action(client, transport, grant["id"], "approve")["status"] == "provider-approved"
    assert grant_action(client, regulator, grant["id"], "co-approve")["status"] == "active"


def test_domain_grant_without_named_providers_asks_everyone_publishing_in_the_domain(client, market):
    grant = request_grant(client, market["consumer"], {"kind": "domain", "domain": "transport", "max_grade": 2,
                                                       "terms": terms()})
    assert [p["provider_id"] for p in grant["providers"]] == [market["transport"].id]
    assert grant["needs_regulator"] is False and grant["kind_zh"] == "分领域授权"


@pytest.mark.parametrize("body, field", [
    ({"kind": "scenario", "assets": [], "terms": terms()}, "scenario"),
    ({"kind": "domain", "domain": "astrology", "max_grade": 2, "terms": terms()}, "domain"),
    ({"kind": "domain", "domain": "transport", "terms": terms()}, "max_grade"),
    ({"kind": "domain", "domain": "transport", "max_grade": 4, "terms": terms()}, "max_grade"),
    ({"kind": "comprehensive", "max_grade": 2, "terms": terms()}, "providers"),
    ({"kind": "comprehensive", "providers": ["prt_nobody"], "max_grade": 2, "terms": terms()}, "providers"),
    ({**scenario_request(["ast_missing"])}, "assets"),
    ({"kind": "domain", "domain": "transport", "max_grade": 2,
      "terms": terms(valid_until="2000-01-01T00:00:00+00:00")}, "terms.valid_until"),
    ({"kind": "domain", "domain": "transport", "max_grade": 2, "terms": terms(max_jobs=0)}, "terms.max_jobs"),
    ({"kind": "domain", "domain": "transport", "max_grade": 2, "terms": terms(epsilon=-1)}, "terms.epsilon"),
    ({"kind": "galactic", "terms": terms()}, "kind"),
])
def test_bad_requests_are_refused_naming_the_field(client, market, body, field):
    response = client.post("/api/v1/grants", headers=market["consumer"].headers, json=body)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]


def test_only_consumers_request_and_providers_cannot_authorize_themselves(client, world, market):
    both = world.participant("provider", "consumer")
    asset = publish(client, both, register(client, both)["id"])
    response = client.post("/api/v1/grants", headers=both.headers, json=scenario_request([asset["id"]]))
    assert response.status_code == 422 and "providers" in response.get_json()["errors"]
    assert client.post("/api/v1/grants", headers=market["tax"].headers,
                       json=scenario_request([asset["id"]])).status_code == 403


def test_a_counter_offer_narrows_and_the_consumer_accepts_it(client, market):
    consumer, transport = market["consumer"], market["transport"]
    grant = request_grant(client, consumer, scenario_request([market["assets"]["licences2"]]))
    widened = grant_action(client, transport, grant["id"], "counter", {"terms": {**grant["terms"], "max_jobs": 50}},
                           expect=422)
    assert set(widened["errors"]) == {"terms.max_jobs"}
    narrowed = {**grant["terms"], "max_jobs": 3, "computation_kinds": ["aggregate"]}
    countered = grant_action(client, transport, grant["id"], "counter", {"terms": narrowed, "reason": "pilot"})
    assert countered["status"] == "countered" and countered["counter_terms"]["max_jobs"] == 3
    assert countered["allowed_actions"] == ["reject"]  # the provider waits for the consumer, or gives up
    accepted = grant_action(client, consumer, grant["id"], "accept")
    assert accepted["status"] == "active" and accepted["terms"]["max_jobs"] == 3
    assert accepted["requested_terms"]["max_jobs"] == 10


def test_a_declined_counter_offer_ends_the_request(client, market):
    consumer, transport = market["consumer"], market["transport"]
    grant = request_grant(client, consumer, scenario_request([market["assets"]["licences2"]]))
    grant_action(client, transport, grant["id"], "counter", {"terms": {**grant["terms"], "max_jobs": 1}})
    declined = grant_action(client, consumer, grant["id"], "decline")
    assert declined["status"] == "declined" and declined["ended_at"]
    assert grant_action(client, consumer, grant["id"], "accept", expect=409)["allowed_actions"] == []


def test_rejection_carries_its_reason(client, market):
    grant = request_grant(client, market["consumer"], scenario_request([market["assets"]["licences2"]]))
    rejected = grant_action(client, market["transport"], grant["id"], "reject", {"reason": "purpose too broad"})
    assert rejected["status"] == "rejected" and rejected["end_reason"] == "purpose too broad"
    assert rejected["providers"][0]["decision"] == "rejected"


@pytest.fixture
def active_grant(client, market):
    grant = request_grant(client, market["consumer"], scenario_request([market["assets"]["licences2"]]))
    return grant_action(client, market["transport"], grant["id"], "approve")


def test_regulator_suspends_and_reinstates_provider_revokes_consumer_terminates(client, market, active_grant):
    grant_id, regulator = active_grant["id"], market["regulator"]
    assert grant_action(client, regulator, grant_id, "suspend", {"reason": "audit"})["status"] == "suspended"
    assert grant_action(client, regulator, grant_id, "suspend", expect=409)["allowed_actions"] == ["reinstate"]
    assert grant_action(client, regulator, grant_id, "reinstate")["status"] == "active"
    assert grant_action(client, market["transport"], grant_id, "revoke",
                        {"reason": "data quality incident"})["status"] == "revoked"
    assert grant_action(client, market["consumer"], grant_id, "terminate", expect=409)["current_status"] == "revoked"


def test_consumer_terminates_its_grant(client, market, active_grant):
    ended = grant_action(client, market["consumer"], active_grant["id"], "terminate", {"reason": "project done"})
    assert ended["status"] == "terminated" and ended["end_reason"] == "project done"


@pytest.mark.parametrize("who, action", [("tax", "approve"), ("consumer", "approve"), ("transport", "accept"),
                                         ("regulator", "revoke"), ("transport", "suspend")])
def test_illegal_actions_are_conflicts_or_refusals(client, market, active_grant, who, action):
    response = client.post(f"/api/v1/grants/{active_grant['id']}/{action}", headers=market[who].headers, json={})
    assert response.status_code in (403, 404, 409)
    if response.status_code == 409:
        assert "allowed_actions" in response.get_json()


def test_each_party_sees_only_its_own_grants(client, world, market, active_grant):
    stranger = world.participant("consumer")
    assert client.get(f"/api/v1/grants/{active_grant['id']}", headers=stranger.headers).status_code == 404
    assert client.get("/api/v1/grants", headers=stranger.headers).get_json()["total"] == 0
    assert client.get("/api/v1/grants", headers=market["tax"].headers).get_json()["total"] == 0
    for viewer in ("consumer", "transport", "regulator"):
        listed = client.get("/api/v1/grants", headers=market[viewer].headers).get_json()
        assert [g["id"] for g in listed["items"]] == [active_grant["id"]]


def test_an_expired_grant_is_recorded_as_expired_when_next_touched(app, client, market):
    soon = datetime.now(timezone.utc) + timedelta(seconds=1)
    grant = request_grant(client, market["consumer"], scenario_request(
        [market["assets"]["licences2"]], valid_until=soon.isoformat()))
    import time

    time.sleep(1.2)
    response = client.post(f"/api/v1/grants/{grant['id']}/approve", headers=market["transport"].headers, json={})
    assert response.status_code == 409 and response.get_json()["current_status"] == "expired"
    assert _ledger_types(client, market["regulator"], grant["id"])[-1] == ("grant.expired", "system")


def test_renewal_is_a_new_request_linked_to_the_old_grant(client, market, active_grant):
    until = (datetime.now(timezone.utc) + timedelta(days=90)).isoformat()
    response = client.post(f"/api/v1/grants/{active_grant['id']}/renew", headers=market["consumer"].headers,
                           json={"valid_until": until})
    assert response.status_code == 201
    renewal = response.get_json()
    assert renewal["renewal_of"] == active_grant["id"] and renewal["status"] == "requested"
    assert renewal["terms"]["max_jobs"] == active_grant["terms"]["max_jobs"]


def test_grant_terms_export_as_odrl(client, market, active_grant):
    response = client.get(f"/api/v1/grants/{active_grant['id']}/odrl", headers=market["consumer"].headers)
    assert response.status_code == 200 and response.mimetype == "application/ld+json"
    document = response.get_json()
    assert document["@type"] == "Agreement" and document["uid"].endswith(active_grant["id"])
    permission = document["permission"][0]
    assert permission["assigner"].endswith(market["transport"].id)
    operands = {c["leftOperand"]: c for c in permission["constraint"]}
    assert operands["count"]["rightOperand"] == 10 and operands["purpose"]["operator"] == "eq"
    assert document["prohibition"][0]["action"] == "distribute"


def test_an_all_providers_domain_grant_skips_suspended_providers_and_grades_above_its_maximum(client, world,
                                                                                             market):
    second = world.participant("provider", name="另一交通机构")
    publish(client, second, register(client, second, domain="transport", grade=2)["id"])
    client.post(f"/api/v1/participants/{second.id}/suspend", headers=world.operator.headers, json={})
    publish(client, market["transport"], register(client, market["transport"], domain="transport", grade=3,
                                                  computation_kinds=["he-statistics"])["id"])
    grant = request_grant(client, market["consumer"], {"kind": "domain", "domain": "transport", "max_grade": 2,
                                                       "terms": terms()})
    assert [p["provider_id"] for p in grant["providers"]] == [market["transport"].id]
    assert grant["needs_regulator"] is False  # the grade-3 asset lies above the grant's maximum grade
