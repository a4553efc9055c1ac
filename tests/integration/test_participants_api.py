"""Participants through the HTTP API: enrolment, admission, suspension, keys and tokens."""

from __future__ import annotations

import pytest

from common import crypto
from participants import keys

pytestmark = pytest.mark.sql  # participant, token and key state in the database


def _register_key(client, actor, key=None, proof=None):
    """Register a further key of ``actor``, endorsed by the key the fixture registered for it."""
    key = key or client.new_key()
    public = keys.public_text(key)
    return client.post("/api/v1/participants/me/keys", headers=actor.headers, json={
        "public_key": public, "proof": proof or keys.registration_proof(key, actor.id), "label": "laptop",
        "endorsement": keys.endorsement(actor.key, actor.id, public)})


def test_enrolment_returns_a_token_once_and_stores_only_its_hash(app, client, world):
    response = client.post("/api/v1/participants", headers=world.operator.headers,
                           json={"name_zh": "山东省税务局", "name_en": "Tax Service", "roles": ["provider"]})
    assert response.status_code == 201
    body = response.get_json()
    secret = body["token"]["token"]
    assert body["participant"]["status"] == "pending"
    from sqlalchemy import text

    from common.db import get_database

    with app.app_context(), get_database().engine.connect() as connection:
        stored = connection.execute(text("SELECT token_hash FROM api_tokens")).scalars().all()
    assert secret not in stored
    assert crypto.token_hash(secret) in stored
    listed = client.get(f"/api/v1/participants/{body['participant']['id']}/tokens", headers=world.operator.headers)
    assert all("token" not in row for row in listed.get_json())


def test_pending_participant_can_only_read_its_own_status(client, world):
    pending = world.participant("consumer", admit=False)
    me = client.get("/api/v1/participants/me", headers=pending.headers)
    assert me.status_code == 200 and me.get_json()["status"] == "pending"
    assert client.get(f"/api/v1/participants/{pending.id}", headers=pending.headers).status_code == 200
    for method, path in [("get", "/api/v1/participants"), ("post", "/api/v1/participants/me/tokens"),
                         ("get", f"/api/v1/participants/{world.operator.id}")]:
        response = getattr(client, method)(path, headers=pending.headers, json={} if method == "post" else None)
        assert response.status_code == 403, path
        assert response.get_json()["participant_status"] == "pending"


def test_admission_lets_a_participant_act_and_suspension_stops_it(client, world):
    provider = world.participant("provider")
    assert client.post("/api/v1/participants/me/tokens", headers=provider.headers, json={}).status_code == 201
    suspended = client.post(f"/api/v1/participants/{provider.id}/suspend", headers=world.operator.headers,
                            json={"reason": "audit finding"})
    assert suspended.get_json()["status"] == "suspended"
    assert suspended.get_json()["status_reason"] == "audit finding"
    assert client.post("/api/v1/participants/me/tokens", headers=provider.headers, json={}).status_code == 403
    assert client.get("/api/v1/participants/me", headers=provider.headers).get_json()["status"] == "suspended"
    reinstated = client.post(f"/api/v1/participants/{provider.id}/reinstate", headers=world.operator.headers,
                             json={})
    assert reinstated.get_json()["status"] == "active"
    assert client.post("/api/v1/participants/me/tokens", headers=provider.headers, json={}).status_code == 201


def test_illegal_status_change_is_a_conflict_listing_allowed_actions(client, world):
    consumer = world.participant("consumer")
    response = client.post(f"/api/v1/participants/{consumer.id}/admit", headers=world.operator.headers, json={})
    assert response.status_code == 409
    assert response.get_json()["allowed_actions"] == ["suspend"]


def test_operator_cannot_suspend_itself(client, world):
    response = client.post(f"/api/v1/participants/{world.operator.id}/suspend", headers=world.operator.headers,
                           json={})
    assert response.status_code == 409


def test_roles_that_mix_regulation_and_trade_are_refused(client, world):
    response = client.post("/api/v1/participants", headers=world.operator.headers,
                           json={"name_zh": "x", "name_en": "x", "roles": ["regulator", "consumer"]})
    assert response.status_code == 422
    assert "roles" in response.get_json()["errors"]


def test_key_registration_requires_proof_of_possession(client, world):
    provider = world.participant("provider")
    registered = _register_key(client, provider)
    assert registered.status_code == 201
    key = registered.get_json()
    assert key["participant_id"] == provider.id and key["revoked_at"] is None
    assert key["id"] == crypto.key_fingerprint(key["public_key"])

    other = client.new_key()
    forged = _register_key(client, provider, key=other, proof=keys.registration_proof(other, world.operator.id))
    assert forged.status_code == 422 and "proof" in forged.get_json()["errors"]
    garbage = client.post("/api/v1/participants/me/keys", headers=provider.headers,
                          json={"public_key": "AAAA", "proof": "AAAA"})
    assert garbage.status_code == 422 and "public_key" in garbage.get_json()["errors"]
    listed = client.get(f"/api/v1/participants/{provider.id}/keys", headers=provider.headers).get_json()
    assert key["id"] in [k["id"] for k in listed] and len(listed) == 2  # the fixture registered one already


def test_the_same_key_cannot_be_registered_twice(client, world):
    provider = world.participant("provider")
    key = client.new_key()
    assert _register_key(client, provider, key=key).status_code == 201
    assert _register_key(client, provider, key=key).status_code == 409


def test_keys_are_revoked_by_their_owner_or_an_operator_only(client, world):
    provider = world.participant("provider")
    stranger = world.participant("consumer")
    key_id = _register_key(client, provider).get_json()["id"]
    path = f"/api/v1/participants/{provider.id}/keys/{key_id}/revoke"
    assert client.post(path, headers=stranger.headers).status_code == 403
    revoked = client.post(path, headers=provider.headers)
    assert revoked.status_code == 200 and revoked.get_json()["revoked_at"] is not None
    assert client.post(path, headers=world.operator.headers).status_code == 409


def test_several_tokens_work_and_a_revoked_one_stops(client, world):
    consumer = world.participant("consumer")
    second = client.post("/api/v1/participants/me/tokens", headers=consumer.headers, json={"label": "ci"})
    second_secret, second_id = second.get_json()["token"], second.get_json()["id"]
    second_headers = {"Authorization": f"Bearer {second_secret}"}
    assert client.get("/api/v1/participants/me", headers=second_headers).status_code == 200
    revoke = client.post(f"/api/v1/participants/{consumer.id}/tokens/{second_id}/revoke", headers=consumer.headers)
    assert revoke.status_code == 200
    refused = client.get("/api/v1/participants/me", headers=second_headers)
    assert refused.status_code == 401 and "revoked" in refused.get_json()["detail"]
    assert client.get("/api/v1/participants/me", headers=consumer.headers).status_code == 200


def test_participants_see_active_peers_but_not_pending_ones(client, world):
    consumer = world.participant("consumer")
    pending = world.participant("provider", admit=False)
    assert client.get(f"/api/v1/participants/{pending.id}", headers=consumer.headers).status_code == 404
    seen = {p["id"] for p in client.get("/api/v1/participants", headers=consumer.headers).get_json()["items"]}
    assert consumer.id in seen and pending.id not in seen
    operator_view = client.get("/api/v1/participants?status=pending", headers=world.operator.headers).get_json()
    assert [p["id"] for p in operator_view["items"]] == [pending.id]


def test_participant_list_filters_by_role_and_pages_in_creation_order(client, world):
    providers = [world.participant("provider", name=f"p{i}").id for i in range(3)]
    world.participant("consumer")
    first = client.get("/api/v1/participants?role=provider&per_page=2", headers=world.operator.headers).get_json()
    second = client.get("/api/v1/participants?role=provider&per_page=2&page=2",
                        headers=world.operator.headers).get_json()
    assert first["total"] == 3
    assert [p["id"] for p in first["items"] + second["items"]] == providers


def test_me_stands_for_the_callers_id_in_key_and_token_paths(client, world):
    consumer = world.participant("consumer")
    key_id = _register_key(client, consumer).get_json()["id"]
    listed = [k["id"] for k in client.get("/api/v1/participants/me/keys", headers=consumer.headers).get_json()]
    assert listed == [k["id"] for k in client.get(f"/api/v1/participants/{consumer.id}/keys",
                                                  headers=consumer.headers).get_json()]
    assert key_id in listed
    tokens = client.get("/api/v1/participants/me/tokens", headers=consumer.headers)
    assert tokens.status_code == 200 and len(tokens.get_json()) == 1
    revoked = client.post(f"/api/v1/participants/me/keys/{key_id}/revoke", headers=consumer.headers)
    assert revoked.status_code == 200 and revoked.get_json()["revoked_at"]
