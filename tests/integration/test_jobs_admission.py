"""Job admission through the API: what a job declares checked before anything is charged (its kind, the fields
its parameters name, its sizes), the decision, quotas consumed atomically (also under a real concurrent rush on
both databases), tickets per provider carrying the declared sizes, the dry-run decision endpoint, the recovery of
stranded jobs, and results that outlive the call that submitted them."""

from __future__ import annotations

import base64
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
import requests
from sqlalchemy import select

from client.signing import signature_headers
from common.db import get_database
from jobs.model import Job, JobTicket
from ledger import service
from privacy.federated import TrainingConfig
from protocol.tickets import MemoryNonceStore, SignedTicket, TicketVerifier
from tests.servers import app_env, serving
from tests.support import grant_action, publish, register, request_grant, scenario_request

pytestmark = pytest.mark.sql  # admission's quota accounting and its concurrency


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


PLAN = {"columns": ["registered_capital"]}
BOUNDS = {"registered_capital": [0, 1e6]}  # a private plan's columns need bounds (privacy.release)


@pytest.fixture(scope="module")
def context(public_context):
    return base64.b64encode(public_context).decode()


def _job(grant, context, **overrides):
    body = {"grant": grant["id"], "assets": grant["assets"], "computation_kind": "he-statistics",
            "params": {"plan": PLAN, "bounds": BOUNDS}, "context": context, "rows": 1000, "epsilon": 0.1, "group_size": 10,
            "result_cells": 3}
    body.update(overrides)
    return body


def _usage(client, grant):
    return client.get(f"/api/v1/grants/{grant['id']}", headers=grant["consumer"].headers).get_json()["usage"]


def test_an_admitted_job_consumes_quota_and_tickets_each_provider_with_its_limits(app, client, grant, context):
    response = client.post("/api/v1/jobs", headers=grant["consumer"].headers, json=_job(grant, context))
    assert response.status_code == 201, response.get_json()
    job = response.get_json()
    assert job["status"] == "admitted" and job["rows_reserved"] == 1000
    assert _usage(client, grant) == {"jobs_used": 1, "rows_used": 1000, "epsilon_used": pytest.approx(0.1)}
    with app.app_context(), get_database().sessionmaker() as session:
        rows = list(session.scalars(select(JobTicket).where(JobTicket.job_id == job["id"])))
        identity = service.identity()
    assert sorted(r.provider_id for r in rows) == sorted(p.id for p in grant["providers"])
    for row in rows:
        verifier = TicketVerifier(identity.key.public_key(), identity.origin, row.provider_id, MemoryNonceStore())
        claims = verifier.verify(SignedTicket(row.ticket, row.signature), params=_job(grant, context)["params"],
                                 context=base64.b64decode(context), now=datetime.now(timezone.utc))
        assert claims["obligations"]["min-group-size"] == 10 and claims["obligations"]["dp-noise"] == 0.1
        assert claims["limits"] == {"rows": 1000, "result_cells": 3}
    for provider in grant["providers"]:
        assert client.get(f"/api/v1/jobs/{job['id']}", headers=provider.headers).status_code == 200


def test_a_denied_job_explains_why_and_consumes_nothing(client, grant, context):
    response = client.post("/api/v1/jobs", headers=grant["consumer"].headers,
                           json=_job(grant, context, group_size=3, epsilon=5.0))
    assert response.status_code == 403
    codes = {r["code"] for r in response.get_json()["reasons"]}
    assert {"group-too-small", "epsilon-exhausted"} <= codes
    assert _usage(client, grant)["jobs_used"] == 0


@pytest.mark.parametrize("kind", ["aggregate", "download"])
def test_a_kind_that_nothing_runs_is_refused_at_submission_before_anything_is_charged(client, grant, context, kind):
    response = client.post("/api/v1/jobs", headers=grant["consumer"].headers,
                           json=_job(grant, context, computation_kind=kind))
    assert response.status_code == 422
    assert "computation_kind" in response.get_json()["errors"]
    assert _usage(client, grant)["jobs_used"] == 0


@pytest.mark.parametrize("plan, path, named", [
    ({"columns": ["salary"]}, "params.plan.columns", "salary"),
    ({"columns": ["uscc"]}, "params.plan.columns", "not a number"),
    ({"columns": ["registered_capital"], "row_filter": [{"column": "city", "op": "==", "value": "济南"}]},
     "params.plan.row_filter", "city"),
    ({"group_by": {"column": "industry", "labels": ["retail"]}}, "params.plan.group_by.column", "industry"),
    ({"histogram": {"column": "uscc", "edges": [0, 1]}}, "params.plan.histogram.column", "not a number"),
])
def test_a_plan_naming_undeclared_or_non_numeric_fields_is_refused_before_anything_is_charged(
        client, grant, context, plan, path, named):
    response = client.post("/api/v1/jobs", headers=grant["consumer"].headers,
                           json=_job(grant, context, params={"plan": plan}, result_cells=100))
    assert response.status_code == 422
    errors = response.get_json()["errors"]
    assert list(errors) == [path] and named in " ".join(errors[path])
    assert _usage(client, grant)["jobs_used"] == 0


def test_scoring_features_must_be_declared_numeric_fields_of_their_asset(client, grant, context):
    tax, hr = grant["assets"]
    params = {"ids": ["1", "2"], "parts": {tax: {"features": ["registered_capital", "profit"], "weights_sha256": ""},
                                           hr: {"features": ["uscc"], "weights_sha256": ""}}}
    response = client.post("/api/v1/jobs", headers=grant["consumer"].headers,
                           json=_job(grant, context, computation_kind="he-scoring", params=params, rows=4,
                                     result_cells=2, epsilon=0.0))
    assert response.status_code == 422
    errors = response.get_json()["errors"]
    assert "profit" in " ".join(errors[f"params.parts.{tax}.features"])
    assert "not a number" in " ".join(errors[f"params.parts.{hr}.features"])


def test_a_result_size_below_what_the_plan_releases_is_refused(client, grant, context):
    plan = {"columns": ["registered_capital"], "histogram": {"column": "registered_capital", "edges": [0, 10, 100]}}
    response = client.post("/api/v1/jobs", headers=grant["consumer"].headers,
                           json=_job(grant, context, params={"plan": plan}, result_cells=3))
    assert response.status_code == 422
    assert "5 result cells" in " ".join(response.get_json()["errors"]["result_cells"])


def test_only_the_grant_holder_submits(client, world, grant, context):
    other = world.participant("consumer")
    assert client.post("/api/v1/jobs", headers=other.headers, json=_job(grant, context)).status_code == 404


def test_dry_run_explains_allow_and_deny_to_consumer_and_regulator(client, grant, context):
    allowed = client.post("/api/v1/decisions", headers=grant["consumer"].headers, json=_job(grant, context)).get_json()
    assert allowed["allow"] and allowed["obligations"]["min-group-size"] == 10
    aggregate = client.post("/api/v1/decisions", headers=grant["consumer"].headers,
                            json=_job(grant, context, computation_kind="aggregate")).get_json()
    assert "dp-not-applied-by-kind" in [r["code"] for r in aggregate["reasons"]]  # any kind may be asked about
    denied = client.post("/api/v1/decisions", headers=grant["regulator"].headers,
                         json=_job(grant, context, epsilon=5.0)).get_json()
    assert not denied["allow"] and [r["code"] for r in denied["reasons"]] == ["epsilon-exhausted"]
    assert _usage(client, grant)["jobs_used"] == 0


def test_revocation_stops_new_jobs(client, grant, context):
    grant_action(client, grant["providers"][0], grant["id"], "revoke", {"reason": "incident"})
    response = client.post("/api/v1/jobs", headers=grant["consumer"].headers, json=_job(grant, context))
    assert response.status_code == 403
    assert [r["code"] for r in response.get_json()["reasons"]] == ["grant-not-active"]


def test_fifty_concurrent_submissions_against_ten_jobs_admit_exactly_ten(app, grant, database_url, context):
    consumer = grant["consumer"]

    def submit(url: str, number: int) -> int:
        body = _job(grant, context, rows=10, epsilon=0.01, params={"plan": PLAN, "bounds": BOUNDS, "n": number})
        headers = {**consumer.headers, **signature_headers(consumer.key, actor=consumer.id, method="POST",
                                                           path="/api/v1/jobs", body=body)}
        return requests.post(f"{url}/api/v1/jobs", json=body, headers=headers, timeout=60).status_code

    with serving({**app_env(app, database_url), "PDX_JOB_WORKERS": "0"}) as url, ThreadPoolExecutor(25) as pool:
        statuses = list(pool.map(lambda number: submit(url, number), range(50)))
    assert statuses.count(201) == 10 and statuses.count(403) == 40
    with app.test_client() as reader:
        usage = reader.get(f"/api/v1/grants/{grant['id']}", headers=consumer.headers).get_json()["usage"]
    assert usage["jobs_used"] == 10 and usage["rows_used"] == 100


def test_jobs_stranded_by_a_stop_are_failed_with_their_quota_given_back(app, client, grant, context):
    from jobs.runner import recover_stranded

    job = client.post("/api/v1/jobs", headers=grant["consumer"].headers, json=_job(grant, context)).get_json()
    assert job["status"] == "admitted"  # no workers in tests: nothing ran it
    with app.app_context():
        assert recover_stranded(datetime.now(timezone.utc)) == []  # its tickets are still valid
        assert recover_stranded(datetime.now(timezone.utc) + timedelta(minutes=6)) == [job["id"]]
    assert client.get(f"/api/v1/jobs/{job['id']}", headers=grant["consumer"].headers).get_json()["status"] == "failed"
    assert _usage(client, grant) == {"jobs_used": 0, "rows_used": 0, "epsilon_used": 0.0}


@pytest.fixture
def training(client, world):
    """An active grant for federated training over two providers' assets."""
    fields = [{"name": "uscc", "type": "identifier"}, {"name": "registered_capital", "type": "number"},
              {"name": "employees", "type": "integer"}, {"name": "defaulted", "type": "integer"}]
    providers = [world.participant("provider", name=name) for name in ("jinan", "qingdao")]
    assets = [publish(client, p, register(client, p, fields=fields, computation_kinds=["federated-learning"])["id"])
              ["id"] for p in providers]
    consumer = world.participant("consumer", name="bank")
    body = request_grant(client, consumer, scenario_request(assets, computation_kinds=["federated-learning"]))
    for provider in providers:
        body = grant_action(client, provider, body["id"], "approve")
    return {"id": body["id"], "consumer": consumer, "assets": assets}


def test_a_training_whose_first_round_never_starts_is_failed_once_its_tickets_expire(app, client, training, context):
    from jobs.runner import recover_stranded

    body = {"grant": training["id"], "assets": training["assets"], "computation_kind": "federated-learning",
            "params": {"features": ["registered_capital", "employees"], "label": "defaulted",
                       "training": TrainingConfig(rounds=2).to_json()},
            "context": context, "rows": 1000, "group_size": 10, "result_cells": 3}
    job = client.post("/api/v1/jobs", headers=training["consumer"].headers, json=body).get_json()
    with app.app_context():
        assert recover_stranded(datetime.now(timezone.utc)) == []
        assert recover_stranded(datetime.now(timezone.utc) + timedelta(minutes=6)) == [job["id"]]
    assert _usage(client, training) == {"jobs_used": 0, "rows_used": 0, "epsilon_used": 0.0}


def test_a_served_exchange_recovers_stranded_jobs_periodically(app, client, grant, context, database_url):
    job = client.post("/api/v1/jobs", headers=grant["consumer"].headers, json=_job(grant, context)).get_json()
    with app.app_context(), get_database().sessionmaker() as session:  # five minutes pass: the tickets expire
        for row in session.scalars(select(JobTicket).where(JobTicket.job_id == job["id"])):
            row.ticket = {**row.ticket, "expires_at": "2020-01-01T00:00:00.000000Z"}
        session.commit()
    env = {**app_env(app, database_url), "PDX_JOB_WORKERS": "0", "PDX_JOB_RECOVERY_SECONDS": "1",
           "PDX_NODE_TIMEOUT_SECONDS": "1"}
    with serving(env, workers=1):
        status = "admitted"
        for _ in range(600):
            with app.app_context(), get_database().sessionmaker() as session:
                status = session.get(Job, job["id"]).status
            if status != "admitted":
                break
            time.sleep(0.1)
    assert status == "failed"
    assert _usage(client, grant)["jobs_used"] == 0


@pytest.mark.parametrize("bounds, path", [(None, "params.bounds"), ({"registered_capital": [5, 5]},
                                                                   "params.bounds.registered_capital"),
                                          ({"registered_capital": [0, 1e20]}, "params.bounds.registered_capital")])
def test_a_private_plan_without_usable_bounds_is_refused_before_anything_is_charged(client, grant, context, bounds,
                                                                                    path):
    params = {"plan": PLAN, **({"bounds": bounds} if bounds is not None else {})}
    response = client.post("/api/v1/jobs", headers=grant["consumer"].headers, json=_job(grant, context, params=params))
    assert response.status_code == 422 and path in response.get_json()["errors"], response.get_json()
    assert _usage(client, grant) == {"jobs_used": 0, "rows_used": 0, "epsilon_used": 0.0}
