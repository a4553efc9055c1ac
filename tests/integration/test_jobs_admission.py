"""Job admission through the API: the decision, quotas consumed atomically (also under a real concurrent
rush on both databases), tickets per provider, and the dry-run decision endpoint."""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest
import requests
from sqlalchemy import select

from authorization.model import JobTicket
from authorization.tickets import MemoryNonceStore, SignedTicket, TicketVerifier
from client.signing import signature_headers
from common.db import get_database
from ledger import service
from tests.servers import app_env, serving
from tests.support import grant_action, publish, register, request_grant, scenario_request


@pytest.fixture
def grant(client, world):
    """An active per-scenario grant over two providers' grade-2 assets, allowing 10 jobs."""
    tax, hr = world.participant("provider", name="税务局"), world.participant("provider", name="人社厅")
    assets = [publish(client, p, register(client, p)["id"])["id"] for p in (tax, hr)]
    consumer = world.participant("consumer", name="银行")
    body = request_grant(client, consumer, scenario_request(assets, max_rows=50_000, epsilon=1.0))
    for provider in (tax, hr):
        body = grant_action(client, provider, body["id"], "approve")
    assert body["status"] == "active"
    return {"id": body["id"], "consumer": consumer, "assets": assets, "providers": [tax, hr],
            "regulator": world.participant("regulator")}


def _job(grant, **overrides):
    body = {"grant": grant["id"], "assets": grant["assets"], "computation_kind": "aggregate",
            "params": {"statistics": ["count", "sum"], "column": "registered_capital"}, "rows": 1000,
            "epsilon": 0.1, "group_size": 10, "result_cells": 4}
    body.update(overrides)
    return body


def test_an_admitted_job_consumes_quota_and_tickets_each_provider(app, client, grant):
    response = client.post("/api/v1/jobs", headers=grant["consumer"].headers, json=_job(grant))
    assert response.status_code == 201, response.get_json()
    job = response.get_json()
    assert job["status"] == "admitted" and job["rows_reserved"] == 1000
    usage = client.get(f"/api/v1/grants/{grant['id']}", headers=grant["consumer"].headers).get_json()["usage"]
    assert usage == {"jobs_used": 1, "rows_used": 1000, "epsilon_used": pytest.approx(0.1)}
    with app.app_context(), get_database().sessionmaker() as session:
        rows = list(session.scalars(select(JobTicket).where(JobTicket.job_id == job["id"])))
        identity = service.identity()
    assert sorted(r.provider_id for r in rows) == sorted(p.id for p in grant["providers"])
    for row in rows:
        verifier = TicketVerifier(identity.key.public_key(), identity.origin, row.provider_id, MemoryNonceStore())
        claims = verifier.verify(SignedTicket(row.ticket, row.signature), params=_job(grant)["params"],
                                 context=None, now=datetime.now(timezone.utc))
        assert claims["obligations"]["min-group-size"] == 10 and claims["obligations"]["dp-noise"] == 0.1
    for provider in grant["providers"]:
        assert client.get(f"/api/v1/jobs/{job['id']}", headers=provider.headers).status_code == 200


def test_a_denied_job_explains_why_and_consumes_nothing(client, grant, public_context):
    context = base64.b64encode(public_context).decode()
    response = client.post("/api/v1/jobs", headers=grant["consumer"].headers,
                           json=_job(grant, group_size=3, computation_kind="he-scoring", context=context))
    assert response.status_code == 403
    codes = {r["code"] for r in response.get_json()["reasons"]}
    assert {"group-too-small", "kind-not-allowed-by-grant"} <= codes
    usage = client.get(f"/api/v1/grants/{grant['id']}", headers=grant["consumer"].headers).get_json()["usage"]
    assert usage["jobs_used"] == 0


def test_only_the_grant_holder_submits(client, world, grant):
    other = world.participant("consumer")
    assert client.post("/api/v1/jobs", headers=other.headers, json=_job(grant)).status_code == 404


def test_dry_run_explains_allow_and_deny_to_consumer_and_regulator(client, grant):
    allowed = client.post("/api/v1/decisions", headers=grant["consumer"].headers, json=_job(grant)).get_json()
    assert allowed["allow"] and allowed["obligations"]["min-group-size"] == 10
    denied = client.post("/api/v1/decisions", headers=grant["regulator"].headers,
                         json=_job(grant, epsilon=5.0)).get_json()
    assert not denied["allow"] and [r["code"] for r in denied["reasons"]] == ["epsilon-exhausted"]
    usage = client.get(f"/api/v1/grants/{grant['id']}", headers=grant["consumer"].headers).get_json()["usage"]
    assert usage["jobs_used"] == 0


def test_revocation_stops_new_jobs(client, grant):
    grant_action(client, grant["providers"][0], grant["id"], "revoke", {"reason": "incident"})
    response = client.post("/api/v1/jobs", headers=grant["consumer"].headers, json=_job(grant))
    assert response.status_code == 403
    assert [r["code"] for r in response.get_json()["reasons"]] == ["grant-not-active"]


def test_fifty_concurrent_submissions_against_ten_jobs_admit_exactly_ten(app, grant, database_url):
    consumer = grant["consumer"]

    def submit(url: str, number: int) -> int:
        body = _job(grant, rows=10, epsilon=0.01, params={"n": number})
        headers = {**consumer.headers, **signature_headers(consumer.key, actor=consumer.id, method="POST",
                                                           path="/api/v1/jobs", body=body)}
        return requests.post(f"{url}/api/v1/jobs", json=body, headers=headers, timeout=60).status_code

    with serving(app_env(app, database_url)) as url, ThreadPoolExecutor(25) as pool:
        statuses = list(pool.map(lambda number: submit(url, number), range(50)))
    assert statuses.count(201) == 10 and statuses.count(403) == 40
    with app.test_client() as reader:
        usage = reader.get(f"/api/v1/grants/{grant['id']}", headers=consumer.headers).get_json()["usage"]
    assert usage["jobs_used"] == 10 and usage["rows_used"] == 100


def test_jobs_stranded_by_a_stop_are_failed_with_their_quota_given_back(app, client, grant, public_context):
    from datetime import timedelta

    from exchange.jobs import recover_stranded

    body = _job(grant, computation_kind="he-statistics", context=base64.b64encode(public_context).decode())
    job = client.post("/api/v1/jobs", headers=grant["consumer"].headers, json=body).get_json()
    assert job["status"] == "admitted"  # no workers in tests: nothing ran it
    with app.app_context():
        assert recover_stranded(datetime.now(timezone.utc)) == []  # its tickets are still valid
        assert recover_stranded(datetime.now(timezone.utc) + timedelta(minutes=6)) == [job["id"]]
    assert client.get(f"/api/v1/jobs/{job['id']}", headers=grant["consumer"].headers).get_json()["status"] == "failed"
    usage = client.get(f"/api/v1/grants/{grant['id']}", headers=grant["consumer"].headers).get_json()["usage"]
    assert usage["jobs_used"] == 0 and usage["rows_used"] == 0
