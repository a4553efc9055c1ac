"""Every grant action from every status, for every party: legal ones succeed, illegal ones get 409 with the
allowed actions (or 403 for someone who takes no part). The expected table is the workflow of
docs/authorization.md, written down here independently of authorization/lifecycle.py."""

from __future__ import annotations

import pytest

from tests.support import grant_action, publish, register, request_grant, scenario_request

pytestmark = pytest.mark.sql  # grant state transitions in the database

# status -> {party: actions that party may take}
EXPECTED = {
    "requested": {"provider": {"approve", "counter", "reject"}, "consumer": {"withdraw"}, "regulator": set()},
    "countered": {"provider": {"reject"}, "consumer": {"accept", "decline", "withdraw"}, "regulator": set()},
    "provider-approved": {"provider": set(), "consumer": {"withdraw"},
                          "regulator": {"co-approve", "regulator-reject"}},
    "active": {"provider": {"revoke"}, "consumer": {"terminate"}, "regulator": {"suspend"}},
    "suspended": {"provider": {"revoke"}, "consumer": {"terminate"}, "regulator": {"reinstate"}},
    "revoked": {"provider": set(), "consumer": set(), "regulator": set()},
}
ACTIONS = ["approve", "counter", "reject", "accept", "decline", "withdraw", "co-approve", "regulator-reject",
           "revoke", "terminate", "suspend", "reinstate"]
# how to bring a fresh grade-3 grant (which needs the regulator) to each status
PATHS = {
    "requested": [],
    "countered": [("provider", "counter")],
    "provider-approved": [("provider", "approve")],
    "active": [("provider", "approve"), ("regulator", "co-approve")],
    "suspended": [("provider", "approve"), ("regulator", "co-approve"), ("regulator", "suspend")],
    "revoked": [("provider", "approve"), ("regulator", "co-approve"), ("provider", "revoke")],
}


@pytest.fixture
def parties(client, world):
    provider = world.participant("provider")
    asset = publish(client, provider, register(client, provider, grade=3, computation_kinds=["he-statistics"])["id"])
    return {"provider": provider, "consumer": world.participant("consumer"),
            "regulator": world.participant("regulator"), "outsider": world.participant("consumer"),
            "asset": asset["id"]}


def _grant_in(client, parties, status):
    grant = request_grant(client, parties["consumer"], scenario_request([parties["asset"]],
                                                                        computation_kinds=["he-statistics"]))
    for party, action in PATHS[status]:
        body = {"terms": grant["terms"]} if action == "counter" else {}
        grant = grant_action(client, parties[party], grant["id"], action, body)
    assert grant["status"] == status
    return grant


@pytest.mark.parametrize("status", list(EXPECTED))
def test_each_party_may_take_exactly_the_expected_actions(client, parties, status):
    for party, allowed in EXPECTED[status].items():
        grant = _grant_in(client, parties, status)
        view = client.get(f"/api/v1/grants/{grant['id']}", headers=parties[party].headers).get_json()
        assert set(view["allowed_actions"]) == allowed, (status, party)
        for action in ACTIONS:
            if action in allowed:
                continue
            body = {"terms": grant["terms"]} if action == "counter" else {}
            response = client.post(f"/api/v1/grants/{grant['id']}/{action}", headers=parties[party].headers,
                                   json=body)
            assert response.status_code == 409, (status, party, action, response.get_json())
            assert set(response.get_json()["allowed_actions"]) == allowed
        for action in allowed:  # each legal action works from this status (on a fresh grant each time)
            fresh = _grant_in(client, parties, status)
            body = {"terms": fresh["terms"]} if action == "counter" else {}
            grant_action(client, parties[party], fresh["id"], action, body)


def test_an_outsider_takes_no_part(client, parties):
    grant = _grant_in(client, parties, "requested")
    for action in ACTIONS:
        body = {"terms": grant["terms"]} if action == "counter" else {}
        response = client.post(f"/api/v1/grants/{grant['id']}/{action}", headers=parties["outsider"].headers,
                               json=body)
        assert response.status_code == 404  # another consumer's grant is invisible to it
