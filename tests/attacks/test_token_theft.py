"""A stolen bearer token: it reads, but it registers no key, signs nothing and mints no token.

The attacks go through a served exchange (`pdx serve`) over the test's database; the thief holds the victim's
token and nothing else, then also a signing key, which the documented recovery takes back. Last, the thief is the
exchange host itself: it writes a key for the victim straight into the database and the ledger, re-signed with
the log key, and `pdx audit verify` on the exported log names the missing or forged vouch.
"""

from __future__ import annotations

import subprocess
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.db import utcnow
from ledger import service
from ledger.entries import Draft, sign_request
from participants.keys import approval, endorsement, key_id, public_text, registration_body
from participants.models import ParticipantKey
from tests.attacks.served_scene import send, served_env
from tests.servers import PDX, serving
from tests.support import publish, register, scenario_request

KEYS = "/api/v1/participants/me/keys"


@pytest.fixture
def scene(app, client, world, database_url):
    """A consumer (the victim) with one key, a published asset to ask for, and the exchange served."""
    provider = world.participant("provider")
    asset = publish(client, provider, register(client, provider)["id"])["id"]
    victim = world.participant("consumer", name="bank")
    env = served_env(app, database_url)
    with serving(env, workers=2) as url:
        yield {"url": url, "victim": victim, "asset": asset, "operator": world.operator, "app": app, "env": env,
               "regulator": world.participant("regulator")}


def _ledger_size(url: str, token: str) -> int:
    return send(url, "GET", "/api/v1/ledger/checkpoint", token=token).json()["size"]


def _key_ids(url: str, token: str) -> list[str]:
    return [key["id"] for key in send(url, "GET", KEYS, token=token).json()]


def _register(url: str, victim, key: Ed25519PrivateKey, **vouch):
    body = {**registration_body(key, victim.id), **vouch}
    return send(url, "POST", KEYS, token=victim.token, body=body, key=key, actor=victim.id)


def test_a_stolen_token_alone_registers_no_key_and_signs_no_grant_request(scene):
    url, victim = scene["url"], scene["victim"]
    before_size, before_keys = _ledger_size(url, victim.token), _key_ids(url, victim.token)
    thief_key = Ed25519PrivateKey.generate()
    fake_operator_key = Ed25519PrivateKey.generate()
    attempts = {
        "no endorsement": {},
        "endorsed by the thief's own key": {"endorsement": endorsement(thief_key, victim.id, public_text(thief_key))},
        "endorsement naming the victim's key": {"endorsement": {
            **endorsement(thief_key, victim.id, public_text(thief_key)), "key": key_id(victim.key)}},
        "approval forged in the operator's name": {"approval": approval(
            fake_operator_key, scene["operator"].id, victim.id, public_text(thief_key), datetime.now(timezone.utc))},
        "approval by the victim itself": {"approval": {
            **approval(thief_key, victim.id, victim.id, public_text(thief_key), datetime.now(timezone.utc)),
            "key": key_id(victim.key)}},
    }
    for name, vouch in attempts.items():
        refused = _register(url, victim, thief_key, **vouch)
        assert refused.status_code == 403, (name, refused.json())
        assert refused.headers["Content-Type"] == "application/problem+json"
    grant = scenario_request([scene["asset"]])
    signed_by_thief = send(url, "POST", "/api/v1/grants", token=victim.token, body=grant, key=thief_key,
                           actor=victim.id)
    assert signed_by_thief.status_code == 401 and "not a registered" in signed_by_thief.json()["detail"]
    minted = send(url, "POST", "/api/v1/participants/me/tokens", token=victim.token, body={})
    assert minted.status_code == 401
    assert _key_ids(url, victim.token) == before_keys
    assert _ledger_size(url, victim.token) == before_size


def test_an_operator_approval_serves_one_participant_one_key_for_seven_days(scene):
    url, victim, operator = scene["url"], scene["victim"], scene["operator"]
    new_key, other_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    now = datetime.now(timezone.utc)
    approved = approval(operator.key, operator.id, victim.id, public_text(new_key), now)
    assert _register(url, victim, other_key, approval=approved).status_code == 403  # not the approved key
    stale = approval(operator.key, operator.id, victim.id, public_text(new_key), now - timedelta(days=8))
    assert _register(url, victim, new_key, approval=stale).status_code == 403
    assert _register(url, victim, new_key, approval=approved).status_code == 201
    assert _register(url, victim, new_key, approval=approved).status_code == 409  # and only once


def test_after_token_and_key_theft_the_operator_revokes_both_and_approves_a_recovery_key(scene):
    url, victim, operator = scene["url"], scene["victim"], scene["operator"]
    # The thief holds the token and the key: it can endorse a key of its own (what the procedure must undo).
    thief_key = Ed25519PrivateKey.generate()
    stolen = _register(url, victim, thief_key, endorsement=endorsement(victim.key, victim.id, public_text(thief_key)))
    assert stolen.status_code == 201
    as_operator = {"token": operator.token, "key": operator.key, "actor": operator.id}
    for key in (victim.key, thief_key):
        path = f"/api/v1/participants/{victim.id}/keys/{key_id(key)}/revoke"
        assert send(url, "POST", path, body={}, **as_operator).status_code == 200
    tokens = send(url, "GET", f"/api/v1/participants/{victim.id}/tokens", token=operator.token).json()
    for token in tokens:
        path = f"/api/v1/participants/{victim.id}/tokens/{token['id']}/revoke"
        assert send(url, "POST", path, token=operator.token, body={}).status_code == 200
    assert send(url, "GET", "/api/v1/participants/me", token=victim.token).status_code == 401
    issued = send(url, "POST", f"/api/v1/participants/{victim.id}/tokens", body={"label": "recovery"},
                  **as_operator)
    assert issued.status_code == 201 and issued.headers["Cache-Control"] == "no-store"
    victim.token = issued.json()["token"]
    recovery = Ed25519PrivateKey.generate()
    endorsed_by_stolen = _register(url, victim, recovery,
                                   endorsement=endorsement(thief_key, victim.id, public_text(recovery)))
    assert endorsed_by_stolen.status_code == 403
    approved = approval(operator.key, operator.id, victim.id, public_text(recovery), datetime.now(timezone.utc))
    assert _register(url, victim, recovery, approval=approved).status_code == 201
    grant = send(url, "POST", "/api/v1/grants", token=victim.token, body=scenario_request([scene["asset"]]),
                 key=recovery, actor=victim.id)
    assert grant.status_code == 201, grant.json()


def _host_registers_a_key(app, victim, key: Ed25519PrivateKey, vouch: dict) -> None:
    """Add a key to the victim as the exchange host can: a key row, and its entry written with the log key."""
    public = public_text(key)
    request = sign_request(key, actor=victim.id, method="POST", path=KEYS,
                           body={**registration_body(key, victim.id), **vouch})
    with app.app_context(), service.unit_of_work(request) as uow:
        uow.session.add(ParticipantKey(id=key_id(key), participant_id=victim.id, public_key=public, label=None,
                                       created_at=utcnow()))
        uow.ledger.append(Draft("key.registered", victim.id, refs={"participant": [victim.id], "key": [key_id(key)]},
                                body={"public_key": public, "algorithm": "ed25519", "label": None, **vouch}))


@pytest.mark.parametrize(("forge", "kind"), [
    ("nothing", "key-unvouched"),
    ("endorsement", "endorsement-bad-signature"),
    ("approval", "approval-bad-signature"),
])
def test_a_key_the_exchange_host_adds_for_a_participant_fails_the_offline_audit(scene, tmp_path, forge, kind):
    url, victim, operator, env = scene["url"], scene["victim"], scene["operator"], scene["env"]
    host_key = Ed25519PrivateKey.generate()
    public = public_text(host_key)
    vouch = {"nothing": {},
             "endorsement": {"endorsement": {**endorsement(host_key, victim.id, public), "key": key_id(victim.key)}},
             "approval": {"approval": {**approval(host_key, operator.id, victim.id, public, datetime.now(timezone.utc)),
                                       "key": key_id(operator.key)}}}[forge]
    _host_registers_a_key(scene["app"], victim, host_key, vouch)
    grant = send(url, "POST", "/api/v1/grants", token=victim.token, body=scenario_request([scene["asset"]]),
                 key=host_key, actor=victim.id)
    assert grant.status_code == 201, grant.json()  # online, the served exchange cannot tell
    exported = tmp_path / "ledger.jsonl"
    subprocess.run([*PDX, "ledger", "export", "--out", str(exported), "--url", url, "--token",
                    scene["regulator"].token], env=env, check=True, capture_output=True, timeout=120)
    log_key = send(url, "GET", "/api/v1/ledger/checkpoint", token=victim.token).json()["log_public_key"]
    audited = subprocess.run([*PDX, "audit", "verify", str(exported), "--operator-key", log_key], env=env,
                             capture_output=True, text=True, timeout=120)
    assert audited.returncode == 1, audited.stdout + audited.stderr
    assert f"[{kind}]" in audited.stdout and key_id(host_key) in audited.stdout, audited.stdout
