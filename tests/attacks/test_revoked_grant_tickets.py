"""A ticket outlives its grant: the grant is revoked after a job's ticket was issued, before a node runs it.

A ticket lives up to five minutes. The exchange re-checks the grant right before it calls the nodes (the job fails
with ``grant-not-active-at-dispatch``, its quota given back, no node called), and a real `pdx node serve` refuses
a ticket that comes without the exchange's current statement that its grant is active — so a ticket taken from the
exchange's tables or the queue and replayed to the node directly reads no row once the grant is revoked.
"""

from __future__ import annotations

import base64
import json
import time

import numpy as np
import pytest
import requests
from sqlalchemy import select

from common.db import get_database
from jobs import runner as jobs
from jobs.model import Job, JobPayload, JobResult, JobTicket
from jobs.nodes import HttpNodeClient
from ledger import service
from ledger.models import LedgerEntry
from provider.record import NodeRecord
from tests.integration.test_compute_to_data import FIELDS, _enterprises
from tests.servers import free_port, node_config, start_node
from tests.support import grant_action, node_headers, publish, register, request_grant, scenario_request

ROWS = 200


def _job_body(grant: str, asset: str, public_context: bytes) -> dict:
    return {"grant": grant, "assets": [asset], "computation_kind": "he-statistics",
            "params": {"plan": {"columns": ["employees"]}}, "context": base64.b64encode(public_context).decode(),
            "rows": ROWS, "epsilon": 0, "group_size": 10, "result_cells": 3}


@pytest.fixture
def scene(app, client, world, tmp_path):
    """A real node serving a provider's asset, and a consumer's active grant over it."""
    with app.app_context():
        log_key, issuer = service.public_key_text(), service.identity().origin
    provider = world.participant("provider", name="tax")
    port = free_port()
    asset = publish(client, provider, register(client, provider, fields=FIELDS, grade=2,
                                               computation_kinds=["he-statistics"],
                                               node_endpoint=f"http://127.0.0.1:{port}")["id"])["id"]
    _enterprises(np.random.default_rng(5), ROWS, "9137").to_csv(tmp_path / "tax.csv", index=False)
    process = start_node(str(node_config(tmp_path, "tax", provider, asset, port, log_key, issuer)), port)
    consumer = world.participant("consumer", name="bank")
    grant = request_grant(client, consumer, scenario_request([asset], computation_kinds=["he-statistics"]))["id"]
    assert grant_action(client, provider, grant, "approve")["status"] == "active"
    try:
        yield {"app": app, "client": client, "world": world, "provider": provider, "consumer": consumer,
               "grant": grant, "asset": asset, "node": f"http://127.0.0.1:{port}", "state": tmp_path / "tax-state"}
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def held_job(scene, public_context):
    """The scene with a job admitted against the grant that no worker has run yet (held in the queue)."""
    response = scene["client"].post("/api/v1/jobs", headers=scene["consumer"].headers,
                                    json=_job_body(scene["grant"], scene["asset"], public_context))
    assert response.status_code == 201, response.get_json()
    return {**scene, "job": response.get_json()["id"]}


def _revoke(scene) -> None:
    grant_action(scene["client"], scene["provider"], scene["grant"], "revoke", {"reason": "consent withdrawn"})


def _served(scene) -> list[tuple]:
    record = NodeRecord(scene["state"])
    try:
        return record.jobs()
    finally:
        record.close()


def _captured(scene) -> tuple[JobTicket, JobPayload]:
    with scene["app"].app_context(), get_database().sessionmaker() as session:
        ticket = session.scalars(select(JobTicket).where(JobTicket.job_id == scene["job"])).one()
        return ticket, session.get(JobPayload, scene["job"])


def _ledger_types(scene) -> list[str]:
    with scene["app"].app_context(), get_database().sessionmaker() as session:
        return list(session.scalars(select(LedgerEntry.type)))


def test_a_ticket_replayed_to_the_node_after_its_grant_is_revoked_reads_no_row(held_job):
    ticket, payload = _captured(held_job)
    _revoke(held_job)
    body = {"params": payload.params, "context": base64.b64encode(payload.context).decode()}
    # The attacker holds the ticket (taken from the queue) but no statement the exchange would sign any more.
    bare = requests.post(f"{held_job['node']}/v1/jobs/run", json=body, timeout=60,
                         headers=node_headers(held_job["app"], ticket.ticket, ticket.signature, statement=False))
    assert bare.status_code == 403, bare.text
    assert bare.json()["type"] == "urn:pdx:problem:node-grant-not-current"
    assert "result" not in bare.json()
    assert _served(held_job) == []
    assert "job.completed" not in _ledger_types(held_job)


def test_a_job_whose_grant_was_revoked_in_the_queue_calls_no_node_and_gets_its_quota_back(held_job):
    _revoke(held_job)
    with held_job["app"].app_context():
        jobs.run_job(held_job["job"], 30, HttpNodeClient())
        with get_database().sessionmaker() as session:
            job = session.get(Job, held_job["job"])
            result = session.get(JobResult, held_job["job"])
    assert job.status == "failed" and result.error.startswith("grant-not-active-at-dispatch")
    assert _served(held_job) == []
    types = _ledger_types(held_job)
    assert "job.failed" in types and "job.completed" not in types
    usage = held_job["client"].get(f"/api/v1/grants/{held_job['grant']}",
                                   headers=held_job["consumer"].headers).get_json()["usage"]
    assert usage["jobs_used"] == 0 and usage["rows_used"] == 0  # the consumer did nothing wrong


def test_a_job_dispatched_while_its_grant_is_active_runs(held_job):
    with held_job["app"].app_context():
        jobs.run_job(held_job["job"], 60, HttpNodeClient())
        with get_database().sessionmaker() as session:
            job = session.get(Job, held_job["job"])
    assert job.status == "completed"
    assert [row[0] for row in _served(held_job)] == [held_job["job"]]


@pytest.fixture
def listener():
    """Where the federated job's nodes are: a service that records any request (none may come)."""
    from tests.attacks.test_node_endpoint_ssrf import Listener

    recorder = Listener(lambda handler, body: (500, "text/plain", b"no"))
    yield recorder
    recorder.close()


def test_each_federated_round_rechecks_the_grant_before_calling_a_node(app, client, world, public_context, listener):
    from jobs import federated
    from tests.integration.test_federated_api import FIELDS as TRAINING_FIELDS
    from tests.integration.test_federated_api import _round, _submit

    providers, assets = [], []
    for name in ("jinan", "qingdao"):
        provider = world.participant("provider", name=name)
        assets.append(publish(client, provider, register(client, provider, grade=2, node_endpoint=listener.url,
                                                         fields=TRAINING_FIELDS,
                                                         computation_kinds=["federated-learning"])["id"])["id"])
        providers.append(provider)
    consumer = world.participant("consumer", name="bank")
    grant = request_grant(client, consumer, scenario_request(assets, computation_kinds=["federated-learning"]))
    for provider in providers:
        grant = grant_action(client, provider, grant["id"], "approve")
    market = {"grants": {"plain": grant["id"]}, "assets": assets, "consumer": consumer}
    job = _submit(client, market, public_context)
    _round(client, consumer, job["id"])  # round 0 is ticketed; no worker runs it yet
    grant_action(client, providers[0], grant["id"], "revoke", {"reason": "consent withdrawn"})
    with app.app_context():
        federated.run_round(job["id"], 0, 30, HttpNodeClient())
        with get_database().sessionmaker() as session:
            status = session.get(Job, job["id"]).status
            result = session.get(JobResult, job["id"])
    assert listener.requests == []  # not even the identity challenge: no node was called
    assert status == "failed" and "grant-not-active-at-dispatch" in result.error
    usage = client.get(f"/api/v1/grants/{grant['id']}", headers=consumer.headers).get_json()["usage"]
    assert usage["jobs_used"] == 0  # the first round failed before anything ran: the quota is given back


def test_a_served_exchange_rechecks_the_grant_of_a_job_that_waited_in_its_queue(scene, database_url, public_context):
    """`pdx serve` with one job worker, held by a slow node; the next job waits in the queue while its grant is
    revoked, then is dispatched: no node is called, the job fails with the fixed code and its quota comes back."""
    import threading

    from protocol import identity
    from tests.attacks.served_scene import send, served_env
    from tests.attacks.test_node_endpoint_ssrf import Listener
    from tests.servers import serving

    client, world, consumer = scene["client"], scene["world"], scene["consumer"]
    slow_provider = world.participant("provider", name="hr")
    release, called = threading.Event(), threading.Event()

    def slow(handler, body):
        if handler.path.startswith("/v1/identity"):
            nonce = handler.path.split("nonce=", 1)[1]
            return 200, "application/json", json.dumps(identity.answer(slow_provider.key, slow_provider.id,
                                                                       nonce)).encode()
        called.set()
        release.wait(60)
        return 503, "text/plain", b"busy"

    node = Listener(slow)
    try:
        slow_asset = publish(client, slow_provider, register(client, slow_provider, fields=FIELDS, grade=2,
                                                             computation_kinds=["he-statistics"],
                                                             node_endpoint=node.url)["id"])["id"]
        slow_grant = request_grant(client, consumer, scenario_request([slow_asset],
                                                                      computation_kinds=["he-statistics"]))["id"]
        grant_action(client, slow_provider, slow_grant, "approve")
        env = served_env(scene["app"], database_url, JOB_WORKERS="1")
        with serving(env, workers=1) as url:
            def submit(grant: str, asset: str) -> str:
                body = _job_body(grant, asset, public_context)
                answer = send(url, "POST", "/api/v1/jobs", token=consumer.token, body=body, key=consumer.key,
                              actor=consumer.id)
                assert answer.status_code == 201, answer.text
                return answer.json()["id"]

            submit(slow_grant, slow_asset)
            assert called.wait(60)  # the only worker is now busy at the slow node
            waiting = submit(scene["grant"], scene["asset"])
            _revoke(scene)
            release.set()
            for _ in range(600):
                status = send(url, "GET", f"/api/v1/jobs/{waiting}", token=consumer.token).json()["status"]
                if status != "admitted":
                    break
                time.sleep(0.1)
            result = send(url, "GET", f"/api/v1/jobs/{waiting}/result", token=consumer.token).json()
    finally:
        release.set()
        node.close()
    assert status == "failed" and result["error"].startswith("grant-not-active-at-dispatch"), result
    assert _served(scene) == []
    usage = client.get(f"/api/v1/grants/{scene['grant']}", headers=consumer.headers).get_json()["usage"]
    assert usage["jobs_used"] == 0 and usage["rows_used"] == 0
