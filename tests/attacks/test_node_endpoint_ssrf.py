"""SSRF through a node endpoint: a provider points its published asset at a service inside the exchange's network.

The exchange must send nothing (no ticket, plan or HE context) to an endpoint whose node has not proved it holds
one of the provider's registered keys; a published asset's endpoint changes only with the operator's approval,
recorded in the ledger; private and link-local addresses are refused by default; and nothing a node answers is
passed on beyond a fixed problem code, so a node cannot leak what it reads into the consumer's error or the ledger,
and probing it is never free (the quota stays spent).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select, update

from catalog.models import Asset
from client.cli import _audit_in_process
from client.sdk import Consumer, JobFailed
from common import keyfiles
from common.db import build_engine
from exchange import state_check
from ledger import service
from ledger.models import LedgerEntry
from privacy.aggregation import StatisticsPlan
from protocol import identity
from tests.servers import app_env, free_port, serving
from tests.servers import start_node as _start_node
from tests.support import asset_body, grant_action, publish, register, request_grant, scenario_request

SECRET = "db_password=hunter2"
FIELDS = [{"name": "uscc", "type": "identifier"}, {"name": "employees", "type": "integer"}]


class Listener:
    """An HTTP service on loopback that records every request and answers as ``respond`` says."""

    def __init__(self, respond: Callable[[BaseHTTPRequestHandler, bytes], tuple[int, str, bytes]]) -> None:
        self.requests: list[tuple[str, str, int]] = []
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                listener.requests.append((self.command, self.path, len(body)))
                status, media_type, payload = respond(self, body)
                self.send_response(status)
                self.send_header("Content-Type", media_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def posts(self) -> list[tuple[str, str, int]]:
        return [request for request in self.requests if request[0] == "POST"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _internal_service(handler, body) -> tuple[int, str, bytes]:
    """What a service inside the network answers: an error page with a secret in it."""
    return 500, "text/plain", f"Internal Server Error: connect failed ({SECRET})".encode()


@pytest.fixture
def internal() -> Iterator[Listener]:
    listener = Listener(_internal_service)
    yield listener
    listener.close()


def _node_config(tmp_path, name: str, provider, asset: str, port: int, log_key: str, issuer: str) -> str:
    config = tmp_path / f"{name}.toml"
    config.write_text(f'participant_id = "{provider.id}"\nkey_file = "{name}.key"\n'
                      f'exchange_public_key = "{log_key}"\nissuer = "{issuer}"\nstate_dir = "{name}-state"\n'
                      f'port = {port}\n\n[[datasets]]\nasset = "{asset}"\nname = "{name}"\n'
                      f'grade = 2\nsource = "csv"\nlocation = "tax.csv"\nid_column = "uscc"\n')
    return str(config)


@pytest.fixture
def scene(app, client, world, database_url, tmp_path):
    """A provider with a published asset, its node's data, key and config ready to start, and a consumer with an
    active grant of five jobs. No node runs at first: every test points the asset elsewhere before a job runs."""
    with app.app_context():
        log_key, issuer = service.public_key_text(), service.identity().origin
    provider = world.participant("provider", name="tax")
    port = free_port()
    asset = publish(client, provider, register(client, provider, fields=FIELDS, grade=2,
                                               computation_kinds=["he-statistics"],
                                               node_endpoint=f"http://127.0.0.1:{port}")["id"])["id"]
    rng = np.random.default_rng(5)
    pd.DataFrame({"uscc": [f"91{i:08d}" for i in range(400)],
                  "employees": rng.integers(1, 500, size=400).astype(float)}).to_csv(tmp_path / "tax.csv",
                                                                                     index=False)
    keyfiles.save(provider.key, tmp_path / "tax.key")
    nodes = []
    consumer = world.participant("consumer", name="bank")
    grant = request_grant(client, consumer, scenario_request([asset], computation_kinds=["he-statistics"],
                                                             max_jobs=5))
    assert grant_action(client, provider, grant["id"], "approve")["status"] == "active"
    scene = {"app": app, "client": client, "world": world, "provider": provider, "consumer": consumer,
             "asset": asset, "grant": grant["id"], "database_url": database_url, "tmp_path": tmp_path,
             "log_key": log_key, "issuer": issuer, "nodes": nodes}
    try:
        yield scene
    finally:
        for process in nodes:
            process.terminate()
            process.wait(timeout=20)


def _run_job(scene, url: str) -> JobFailed | None:
    consumer = Consumer(url, scene["consumer"].token, scene["consumer"].key)
    try:
        consumer.statistics(scene["grant"], [scene["asset"]], StatisticsPlan(columns=("employees",)), rows=400)
    except JobFailed as exc:
        return exc
    return None


def _jobs_used(scene) -> int:
    response = scene["client"].get(f"/api/v1/grants/{scene['grant']}", headers=scene["consumer"].headers)
    return response.get_json()["usage"]["jobs_used"]


def _ledger_text(scene) -> str:
    engine = build_engine(scene["database_url"])
    with engine.connect() as connection:
        text = "\n".join(row.decode() for row in connection.execute(select(LedgerEntry.data)).scalars())
    engine.dispose()
    return text


def _repoint_in_database(scene, endpoint: str) -> None:
    engine = build_engine(scene["database_url"])
    with engine.begin() as connection:
        connection.execute(update(Asset).where(Asset.id == scene["asset"]).values(node_endpoint=endpoint))
    engine.dispose()


def test_a_published_assets_endpoint_cannot_be_repointed_by_a_patch(scene, internal):
    client, provider = scene["client"], scene["provider"]
    response = client.patch(f"/api/v1/assets/{scene['asset']}", headers=provider.headers,
                            json={"node_endpoint": internal.url})
    assert response.status_code == 409
    assert "node_endpoint" in response.get_json()["errors"]
    assert client.get(f"/api/v1/assets/{scene['asset']}").get_json()["node_endpoint"] != internal.url


@pytest.mark.parametrize("endpoint", ["http://169.254.169.254/latest/meta-data", "http://10.0.0.7:8701",
                                      "http://[fd00::7]:8701", "http://0.0.0.0:8701"])
def test_private_and_link_local_node_addresses_are_refused_by_default(scene, endpoint):
    client, provider = scene["client"], scene["provider"]
    registered = client.post("/api/v1/assets", headers=provider.headers, json=asset_body(node_endpoint=endpoint))
    assert registered.status_code == 422 and "node_endpoint" in registered.get_json()["errors"]
    change = client.post(f"/api/v1/assets/{scene['asset']}/endpoint", headers=provider.headers,
                         json={"node_endpoint": endpoint})
    assert change.status_code == 422 and "node_endpoint" in change.get_json()["errors"]


def test_an_endpoint_change_is_approved_only_once_the_new_node_proves_the_providers_key(scene, internal):
    client, provider, operator = scene["client"], scene["provider"], scene["world"].operator
    path = f"/api/v1/assets/{scene['asset']}/endpoint"
    asked = client.post(path, headers=provider.headers, json={"node_endpoint": internal.url})
    assert asked.status_code == 202 and asked.get_json()["pending_node_endpoint"] == internal.url
    assert client.post(path + "/approve", headers=provider.headers, json={}).status_code == 403
    refused = client.post(path + "/approve", headers=operator.headers, json={})
    assert refused.status_code == 409 and refused.get_json()["node_problem"] == "node-unverified"
    assert SECRET not in refused.get_data(as_text=True)
    assert internal.posts() == []  # only the identity challenge reached it: no ticket, no plan, no context
    assert client.get(f"/api/v1/assets/{scene['asset']}").get_json()["node_endpoint"] != internal.url
    assert client.post(path + "/reject", headers=operator.headers, json={"reason": "not a node"}).status_code == 200

    port = free_port()  # the provider moves its node: same key, new address
    scene["nodes"].append(_start_node(_node_config(scene["tmp_path"], "tax", provider, scene["asset"], port,
                                                   scene["log_key"], scene["issuer"]), port))
    moved = f"http://127.0.0.1:{port}"
    assert client.post(path, headers=provider.headers, json={"node_endpoint": moved}).status_code == 202
    approved = client.post(path + "/approve", headers=operator.headers, json={})
    assert approved.status_code == 200, approved.get_json()
    assert approved.get_json()["node_endpoint"] == moved and approved.get_json()["pending_node_endpoint"] is None
    ledger = _ledger_text(scene)
    for entry_type in ("asset.endpoint_requested", "asset.endpoint_rejected", "asset.endpoint_approved"):
        assert entry_type in ledger
    with scene["app"].app_context():
        report = _audit_in_process()  # the offline auditor accepts the approved change
        assert report.entries > 0
        assert state_check.check_state().ok


def test_a_job_sends_nothing_to_an_endpoint_edited_in_the_database_and_leaks_nothing(scene, internal):
    _repoint_in_database(scene, internal.url)
    env = {**app_env(scene["app"], scene["database_url"]), "PDX_JOB_WORKERS": "2"}
    with serving(env, workers=1) as url:
        failed = _run_job(scene, url)
    assert failed is not None and "node-unverified" in str(failed)
    assert SECRET not in str(failed) and "hunter2" not in _ledger_text(scene)
    assert internal.posts() == []
    assert _jobs_used(scene) == 1  # an unverified node is no verified refusal: the probe is not free


def _signing_node(scene, status: int, media_type: str, payload: bytes) -> Listener:
    """A node that holds the provider's key (it proves it) and answers every job as given."""

    def respond(handler, body):
        if handler.command == "GET" and handler.path.startswith("/v1/identity"):
            nonce = handler.path.split("nonce=", 1)[1]
            return 200, "application/json", json.dumps(identity.answer(scene["provider"].key, scene["provider"].id,
                                                                       nonce)).encode()
        return status, media_type, payload

    return Listener(respond)


@pytest.mark.parametrize("status, media_type, payload", [
    (500, "text/plain", f"Traceback … {SECRET}".encode()),
    (422, "application/problem+json", json.dumps({"type": "urn:pdx:problem:node-cannot-compute", "status": 422,
                                                  "title": "Cannot compute", "detail": SECRET}).encode()),
    (403, "application/problem+json", json.dumps({"type": "urn:pdx:problem:node-ticket-refused", "status": 403,
                                                  "title": f"Ticket refused {SECRET}", "detail": SECRET}).encode()),
])
def test_a_verified_nodes_own_words_never_reach_the_consumer_or_the_ledger(scene, status, media_type, payload):
    node = _signing_node(scene, status, media_type, payload)
    try:
        _repoint_in_database(scene, node.url)
        env = {**app_env(scene["app"], scene["database_url"]), "PDX_JOB_WORKERS": "2"}
        with serving(env, workers=1) as url:
            failed = _run_job(scene, url)
    finally:
        node.close()
    assert failed is not None and "hunter2" not in str(failed)
    assert "hunter2" not in _ledger_text(scene)
    known_refusal = status == 403  # a verified node's known problem that does not depend on the data
    assert _jobs_used(scene) == (0 if known_refusal else 1)
