"""State tampering: rows that decide authorizations edited directly in the database, behind the ledger's back.

Each edit is one the exchange would otherwise act on (a larger quota, another consumer, a never-approved grant
made active, a lower grade, an operator role, a silent suspension, a reset counter, a key or node endpoint nobody
registered). `pdx ledger check --state` replays the log and names every such row; a served exchange that finds
one at start, or on its schedule, stops admitting jobs and changing grants until the check passes again.
"""

from __future__ import annotations

import base64
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import update

from authorization.model import Grant
from catalog.models import Asset
from client.signing import signature_headers
from common import crypto
from common.db import build_engine
from participants.keys import public_text
from participants.models import Participant, ParticipantKey, ParticipantRole
from tests.servers import PDX, app_env, serving
from tests.support import grant_action, publish, register, request_grant, scenario_request

pytestmark = pytest.mark.sql  # the state reconciliation reads every authorization table

DEADLINE_SECONDS = 60


@dataclass
class Scene:
    """An exchange with one active grant of the bank (one job used of two), a pending grant of the insurer."""

    database_url: str
    env: dict[str, str]
    provider: object
    bank: object
    insurer: object
    asset: str
    grant: str
    pending: str
    context: str  # the bank's public HE context, base64


def _job(scene) -> dict:
    return {"grant": scene.grant, "assets": [scene.asset], "computation_kind": "he-statistics",
            "params": {"plan": {"columns": ["registered_capital"]}}, "context": scene.context, "rows": 1000,
            "epsilon": 0.0, "group_size": 10, "result_cells": 3}


@pytest.fixture
def scene(app, client, world, database_url, public_context) -> Scene:
    provider = world.participant("provider", name="税务局")
    asset = publish(client, provider, register(client, provider)["id"])["id"]
    bank, insurer = world.participant("consumer", name="银行"), world.participant("consumer", name="保险")
    grant = request_grant(client, bank, scenario_request([asset], max_jobs=2, max_rows=50_000))
    assert grant_action(client, provider, grant["id"], "approve")["status"] == "active"
    pending = request_grant(client, insurer, scenario_request([asset]))
    env = {**app_env(app, database_url), "PDX_JOB_WORKERS": "0"}  # jobs stay admitted: no node is called
    scene = Scene(database_url, env, provider, bank, insurer, asset, grant["id"], pending["id"],
                  base64.b64encode(public_context).decode())
    admitted = client.post("/api/v1/jobs", headers=bank.headers, json=_job(scene))
    assert admitted.status_code == 201, admitted.get_json()
    return scene


def _edit(scene: Scene, *statements) -> None:
    """Run statements straight against the database, as someone with access to its files or server would."""
    engine = build_engine(scene.database_url)
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(statement)
    engine.dispose()


def _terms_with(scene: Scene, **changes) -> dict:
    engine = build_engine(scene.database_url)
    with engine.connect() as connection:
        terms = connection.execute(Grant.__table__.select().where(Grant.id == scene.grant)).one().terms
    engine.dispose()
    return {**terms, **changes}


def _new_key(scene: Scene):
    text = public_text(Ed25519PrivateKey.generate())
    return ParticipantKey.__table__.insert().values(id=crypto.key_fingerprint(text), participant_id=scene.bank.id,
                                                    public_key=text, label="slipped in",
                                                    created_at=datetime.now(timezone.utc), revoked_at=None)


# name -> (the edit, the table, the id and the field the report must name)
EDITS: dict[str, tuple[Callable[[Scene], list], Callable[[Scene], tuple[str, str, str]]]] = {
    "grant quota": (lambda s: [update(Grant).where(Grant.id == s.grant).values(terms=_terms_with(s, max_jobs=50))],
                    lambda s: ("grants", s.grant, "terms")),
    "grant consumer": (lambda s: [update(Grant).where(Grant.id == s.grant).values(consumer_id=s.insurer.id)],
                       lambda s: ("grants", s.grant, "consumer")),
    "grant status": (lambda s: [update(Grant).where(Grant.id == s.pending).values(status="active")],
                     lambda s: ("grants", s.pending, "status")),
    "asset grade": (lambda s: [update(Asset).where(Asset.id == s.asset).values(grade=1)],
                    lambda s: ("assets", s.asset, "grade")),
    "participant roles": (lambda s: [ParticipantRole.__table__.insert().values(participant_id=s.bank.id,
                                                                               role="operator")],
                          lambda s: ("participants", s.bank.id, "roles")),
    "participant status": (lambda s: [update(Participant).where(Participant.id == s.provider.id)
                                      .values(status="suspended")],
                           lambda s: ("participants", s.provider.id, "status")),
    "no-DP exception": (lambda s: [update(Grant).where(Grant.id == s.grant).values(dp_exception=True)],
                        lambda s: ("grants", s.grant, "dp_exception")),
    "jobs used": (lambda s: [update(Grant).where(Grant.id == s.grant).values(jobs_used=0)],
                  lambda s: ("grants", s.grant, "jobs_used")),
    "key": (lambda s: [_new_key(s)], lambda s: ("participant_keys", "", "owner")),
    "node endpoint": (lambda s: [update(Asset).where(Asset.id == s.asset)
                                 .values(node_endpoint="http://169.254.169.254/latest")],
                      lambda s: ("assets", s.asset, "node_endpoint")),
}


def _check_state(scene: Scene) -> subprocess.CompletedProcess:
    return subprocess.run([*PDX, "ledger", "check", "--state"], env=scene.env, capture_output=True, text=True,
                          timeout=120)


def test_an_untouched_exchange_passes_the_state_check(scene):
    checked = _check_state(scene)
    assert checked.returncode == 0, checked.stderr
    assert "state agrees with the ledger" in checked.stdout


@pytest.mark.parametrize("name", list(EDITS))
def test_a_direct_edit_of_an_authorization_row_is_named_by_the_state_check(scene, name):
    edit, where = EDITS[name]
    _edit(scene, *edit(scene))
    checked = _check_state(scene)
    assert checked.returncode != 0
    table, row, field = where(scene)
    report = checked.stdout + checked.stderr
    assert "STATE DIFFERS FROM THE LEDGER" in report
    assert any(table in line and row in line and field in line for line in report.splitlines()), report


def _post(url: str, actor, path: str, body: dict) -> requests.Response:
    headers = {**actor.headers, **signature_headers(actor.key, actor=actor.id, method="POST", path=path, body=body)}
    return requests.post(f"{url}{path}", json=body, headers=headers, timeout=60)


def test_a_served_exchange_that_finds_an_edit_at_start_refuses_admissions_until_the_check_passes(scene):
    _edit(scene, update(Grant).where(Grant.id == scene.grant).values(jobs_used=0))
    with serving(scene.env, workers=1, extra=()) as url:
        refused = _post(url, scene.bank, "/api/v1/jobs", _job(scene))
        assert refused.status_code == 503
        assert "jobs_used" in refused.json()["detail"] and "pdx ledger check --state" in refused.json()["detail"]
        transition = _post(url, scene.provider, f"/api/v1/grants/{scene.grant}/revoke", {"reason": "x"})
        assert transition.status_code == 503
        _edit(scene, update(Grant).where(Grant.id == scene.grant).values(jobs_used=1))
        assert _check_state(scene).returncode == 0
        admitted = _post(url, scene.bank, "/api/v1/jobs", _job(scene))
        assert admitted.status_code == 201, admitted.text
        assert admitted.json()["status"] == "admitted"
        over = _post(url, scene.bank, "/api/v1/jobs", _job(scene))
        assert over.status_code == 403  # two of two jobs used: the restored counter binds again


def test_the_scheduled_check_flags_a_silent_suspension_while_serving(scene):
    env = {**scene.env, "PDX_STATE_CHECK_INTERVAL_SECONDS": "1"}
    with serving(env, workers=1, extra=()) as url:
        _edit(scene, update(Participant).where(Participant.id == scene.provider.id).values(status="suspended"))
        deadline = time.monotonic() + DEADLINE_SECONDS
        while True:
            response = _post(url, scene.bank, "/api/v1/jobs", _job(scene))
            if response.status_code == 503 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert response.status_code == 503, response.text
        assert scene.provider.id in response.json()["detail"]
