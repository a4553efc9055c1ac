"""Every endpoint refuses a missing, malformed, unknown and revoked token, the wrong role and others' resources.

The table below is the access policy written down independently of the code; the first test fails when an
endpoint exists that the table does not classify, so a new endpoint cannot slip in unchecked.
"""

from __future__ import annotations

import base64

import pytest

from client.signing import signature_headers
from participants import keys
from tests.support import grant_action, publish, register, request_grant, scenario_request

GRANT_ACTION_RULE = "/api/v1/grants/<grant_id>/<any({}):action>".format(
    ",".join(f'"{a}"' for a in sorted(["accept", "approve", "co-approve", "counter", "decline", "regulator-reject",
                                       "reinstate", "reject", "revoke", "suspend", "terminate", "withdraw"])))
PUBLIC = "public"
ANY = "any active participant"
SELF = "any participant, also pending or suspended"

POLICY = {
    ("GET", "/api/v1/health"): PUBLIC,
    ("GET", "/api/v1/openapi.json"): PUBLIC,
    ("GET", "/api/v1/assets"): PUBLIC,
    ("GET", "/api/v1/assets/<asset_id>"): PUBLIC,
    ("GET", "/api/v1/domains"): PUBLIC,
    ("GET", "/api/v1/domains/<code>"): PUBLIC,
    ("GET", "/api/v1/data-elements/<path:code>"): PUBLIC,
    ("GET", "/api/v1/catalog.jsonld"): PUBLIC,
    ("GET", "/api/v1/participants/me"): SELF,
    ("GET", "/api/v1/participants/<participant_id>"): SELF,
    ("GET", "/api/v1/participants"): ANY,
    ("GET", "/api/v1/participants/<participant_id>/keys"): ANY,
    ("POST", "/api/v1/participants/me/keys"): ANY,
    ("POST", "/api/v1/participants/<participant_id>/keys/<key_id>/revoke"): ANY,
    ("POST", "/api/v1/participants/me/tokens"): ANY,
    ("GET", "/api/v1/participants/<participant_id>/tokens"): ANY,
    ("POST", "/api/v1/participants/<participant_id>/tokens/<token_id>/revoke"): ANY,
    ("POST", "/api/v1/participants"): ("operator",),
    ("POST", "/api/v1/participants/<participant_id>/tokens"): ("operator",),
    ("POST", "/api/v1/participants/<participant_id>/admit"): ("operator",),
    ("POST", "/api/v1/participants/<participant_id>/suspend"): ("operator",),
    ("POST", "/api/v1/participants/<participant_id>/reinstate"): ("operator",),
    ("POST", "/api/v1/domains"): ("operator",),
    ("POST", "/api/v1/assets"): ("provider",),
    ("PATCH", "/api/v1/assets/<asset_id>"): ("provider",),
    ("POST", "/api/v1/assets/<asset_id>/publish"): ("provider",),
    ("POST", "/api/v1/assets/<asset_id>/retire"): ("provider",),
    ("POST", "/api/v1/assets/<asset_id>/endpoint"): ("provider",),
    ("POST", "/api/v1/assets/<asset_id>/endpoint/approve"): ("operator",),
    ("POST", "/api/v1/assets/<asset_id>/endpoint/reject"): ("operator",),
    ("POST", "/api/v1/grants"): ("consumer",),
    ("GET", "/api/v1/grants"): ANY,
    ("GET", "/api/v1/grants/<grant_id>"): ANY,
    ("GET", "/api/v1/alerts"): ("provider", "regulator", "operator"),
    ("POST", GRANT_ACTION_RULE): ANY,
    ("POST", "/api/v1/grants/<grant_id>/renew"): ("consumer",),
    ("GET", "/api/v1/grants/<grant_id>/odrl"): ANY,
    ("POST", "/api/v1/decisions"): ("consumer", "regulator"),
    ("POST", "/api/v1/jobs"): ("consumer",),
    ("GET", "/api/v1/jobs/<job_id>"): ANY,
    ("GET", "/api/v1/jobs/<job_id>/result"): ("consumer",),
    ("POST", "/api/v1/jobs/<job_id>/rounds"): ("consumer",),
    ("GET", "/api/v1/jobs/<job_id>/rounds"): ANY,
    ("GET", "/api/v1/jobs/<job_id>/rounds/<count:number>"): ANY,
    ("POST", "/api/v1/jobs/<job_id>/finish"): ("consumer",),
    ("GET", "/api/v1/jobs/<job_id>/training"): ANY,
    ("GET", "/api/v1/ledger/checkpoint"): ANY,
    ("GET", "/api/v1/ledger/checkpoints/<count:size>"): ANY,
    ("GET", "/api/v1/ledger/entries"): ANY,
    ("GET", "/api/v1/ledger/proofs/inclusion"): ANY,
    ("GET", "/api/v1/ledger/proofs/consistency"): ANY,
    ("GET", "/api/v1/ledger/export"): ("regulator", "operator"),
    ("POST", "/api/v1/ledger/checkpoints/<count:size>/cosignatures"): ("regulator", "provider"),
}
# State-changing endpoints that must carry the caller's request signature (revoking a token need not: a
# participant whose token leaked must be able to kill it with that token alone).
UNSIGNED_WRITES = {("POST", "/api/v1/participants/<participant_id>/tokens/<token_id>/revoke"),
                   ("POST", "/api/v1/ledger/checkpoints/<count:size>/cosignatures"),  # a cosignature is a signature
                   ("POST", "/api/v1/decisions")}  # a dry run changes nothing
SIGNED = sorted(key for key, rule in POLICY.items() if key[0] != "GET" and key not in UNSIGNED_WRITES)
PROTECTED = sorted(key for key, rule in POLICY.items() if rule != PUBLIC)
ROLE_BOUND = sorted(key for key, rule in POLICY.items() if isinstance(rule, tuple))


def _api_routes(app) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1"):
            routes.update((method, rule.rule) for method in rule.methods - {"HEAD", "OPTIONS"})
    return routes


# One exchange for the whole module (per backend): every test below is refused before it changes anything, or
# adds participants, tokens and drafts of its own that no other test reads, so the scene is built once.
@pytest.fixture(scope="module")
def app(module_app):
    return module_app


@pytest.fixture(scope="module")
def client(module_client):
    return module_client


@pytest.fixture(scope="module")
def world(module_world):
    return module_world


def test_every_api_endpoint_is_classified(app):
    assert _api_routes(app) == set(POLICY)


@pytest.fixture(scope="module")
def scene(client, world, public_context):
    """A provider with a key, a token and an asset; a consumer; concrete values for every path parameter."""
    provider = world.participant("provider")
    key_id = keys.key_id(world.register_key(provider))
    token_id = client.post("/api/v1/participants/me/tokens", headers=provider.headers, json={}).get_json()["id"]
    asset = register(client, provider, authoritative_for=["DE.X"])
    publish(client, provider, asset["id"])
    consumer = world.participant("consumer")
    grant = request_grant(client, consumer, scenario_request([asset["id"]]))
    grant_action(client, provider, grant["id"], "approve")
    job = client.post("/api/v1/jobs", headers=consumer.headers, json={
        "grant": grant["id"], "assets": [asset["id"]], "computation_kind": "he-statistics", "group_size": 10,
        "params": {"plan": {"columns": ["registered_capital"]}}, "result_cells": 3,
        "context": base64.b64encode(public_context).decode()})
    assert job.status_code == 201, job.get_json()
    return {"provider": provider, "consumer": consumer,
            "params": {"<participant_id>": provider.id, "<key_id>": key_id, "<token_id>": token_id,
                       "<asset_id>": asset["id"], "<path:code>": "DE.X", "<code>": "tax", "<count:size>": "1",
                       "<grant_id>": grant["id"], "<job_id>": job.get_json()["id"], "<count:number>": "0",
                       GRANT_ACTION_RULE.split("/")[-1]: "approve"}}


def _call(client, method, rule, params, headers):
    path = rule
    for name, value in params.items():
        path = path.replace(name, value)
    return client.open(path, method=method, headers=headers, json={} if method != "GET" else None)


BAD_AUTHORIZATION = [None, "Bearer", "Basic dXNlcjpwYXNz", "Bearer pdx_not-a-real-token", "Bearer pdx_x y",
                     "bearer lowercase"]


@pytest.mark.parametrize("method, rule", PROTECTED)
def test_protected_endpoints_refuse_missing_or_malformed_tokens(client, scene, method, rule):
    for header in BAD_AUTHORIZATION:
        headers = {} if header is None else {"Authorization": header}
        response = _call(client, method, rule, scene["params"], headers)
        assert response.status_code == 401, header
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.get_json()["type"] == "urn:pdx:problem:unauthenticated"


@pytest.mark.parametrize("method, rule", PROTECTED)
def test_protected_endpoints_refuse_a_revoked_token(client, world, scene, method, rule):
    allowed = POLICY[(method, rule)]
    victim = world.operator if isinstance(allowed, tuple) and "operator" in allowed else world.participant("provider")
    extra = client.post("/api/v1/participants/me/tokens", headers=victim.headers, json={}).get_json()
    client.post(f"/api/v1/participants/{victim.id}/tokens/{extra['id']}/revoke", headers=victim.headers)
    response = _call(client, method, rule, scene["params"], {"Authorization": f"Bearer {extra['token']}"})
    assert response.status_code == 401
    assert "revoked" in response.get_json()["detail"]


@pytest.mark.parametrize("method, rule", ROLE_BOUND)
def test_role_bound_endpoints_refuse_the_wrong_role(client, world, scene, method, rule):
    required = POLICY[(method, rule)]
    candidates = {"consumer": scene["consumer"], "provider": scene["provider"], "operator": world.operator,
                  "regulator": world.participant("regulator")}
    wrong = [actor for role, actor in candidates.items() if role not in required]
    assert wrong
    for actor in wrong:
        response = _call(client, method, rule, scene["params"], actor.headers)
        assert response.status_code == 403, (actor, response.get_json())
        assert response.get_json()["required_roles"] == list(required)


@pytest.mark.parametrize("method, rule", sorted(k for k, v in POLICY.items() if v not in (PUBLIC, SELF)
                                                and k != ("GET", "/api/v1/participants")))
def test_pending_and_suspended_participants_are_refused(client, world, scene, method, rule):
    pending = world.participant("provider", "consumer", admit=False)
    suspended = world.participant("provider", "consumer")
    client.post(f"/api/v1/participants/{suspended.id}/suspend", headers=world.operator.headers, json={})
    for actor in (pending, suspended):
        response = _call(client, method, rule, scene["params"], actor.headers)
        assert response.status_code == 403
        assert response.get_json()["participant_status"] in ("pending", "suspended")


@pytest.mark.parametrize("method, path_template, body, status", [
    ("POST", "/api/v1/participants/{provider}/keys/{key}/revoke", None, 403),
    ("GET", "/api/v1/participants/{provider}/tokens", None, 403),
    ("POST", "/api/v1/participants/{provider}/tokens/{token}/revoke", None, 403),
    ("PATCH", "/api/v1/assets/{asset}", {"keywords": ["hijacked"]}, 403),
    ("POST", "/api/v1/assets/{asset}/retire", None, 403),
])
def test_nobody_acts_on_someone_elses_resource(client, world, scene, method, path_template, body, status):
    intruder = world.participant("provider", "consumer")
    params = scene["params"]
    path = path_template.format(provider=params["<participant_id>"], key=params["<key_id>"],
                                token=params["<token_id>"], asset=params["<asset_id>"])
    response = client.open(path, method=method, headers=intruder.headers, json=body if body else {})
    assert response.status_code == status
    asset = client.get(f"/api/v1/assets/{params['<asset_id>']}").get_json()
    assert asset["status"] == "published" and "hijacked" not in asset["keywords"]
    keys_now = client.get(f"/api/v1/participants/{params['<participant_id>']}/keys",
                          headers=scene["provider"].headers).get_json()
    assert all(k["revoked_at"] is None for k in keys_now)


def test_someone_elses_draft_is_invisible_even_to_other_providers(client, world, scene):
    draft = register(client, scene["provider"], title_en="secret draft")
    intruder = world.participant("provider")
    for method, path in [("GET", f"/api/v1/assets/{draft['id']}"), ("PATCH", f"/api/v1/assets/{draft['id']}"),
                         ("POST", f"/api/v1/assets/{draft['id']}/publish")]:
        response = client.open(path, method=method, headers=intruder.headers, json={} if method != "GET" else None)
        assert response.status_code == 404


def test_public_endpoints_answer_without_a_token(client, scene):
    for method, rule in (key for key, rule in POLICY.items() if rule == PUBLIC):
        assert _call(client, method, rule, scene["params"], {}).status_code == 200, rule


def _allowed_actor(world, scene, method, rule):
    policy = POLICY[(method, rule)]
    if isinstance(policy, tuple) and "operator" in policy:
        return world.operator
    return scene["consumer"] if isinstance(policy, tuple) and "consumer" in policy else scene["provider"]


@pytest.mark.parametrize("method, rule", SIGNED)
def test_state_changing_endpoints_refuse_unsigned_requests(client, world, scene, method, rule):
    actor = _allowed_actor(world, scene, method, rule)
    path = rule
    for name, value in scene["params"].items():
        path = path.replace(name, value)
    response = client.open(path, method=method, headers=actor.headers, json={}, sign=False)
    assert response.status_code == 401
    assert response.get_json()["type"] == "urn:pdx:problem:invalid-signature"


@pytest.mark.parametrize("method, rule", SIGNED)
def test_state_changing_endpoints_refuse_a_signature_by_someone_elses_key(client, world, scene, method, rule):
    actor = _allowed_actor(world, scene, method, rule)
    path = rule
    for name, value in scene["params"].items():
        path = path.replace(name, value)
    stranger_key = (scene["provider"] if actor is scene["consumer"] else scene["consumer"]).key
    headers = {**actor.headers, **signature_headers(stranger_key, actor=actor.id, method=method, path=path,
                                                     body={})}
    response = client.open(path, method=method, headers=headers, json={})
    assert response.status_code == 401
    assert response.get_json()["type"] == "urn:pdx:problem:invalid-signature"
