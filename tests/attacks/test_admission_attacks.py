"""Attacks on job admission and on the sizes a job declares, against a served exchange and real provider nodes:
exact scores under a differential-privacy grant, understated sizes, tickets asking less than the work, and a node
that serves beyond its ticket."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from datetime import datetime, timezone

import pytest
import requests
from werkzeug.serving import make_server

from client.http import ApiError
from client.sdk import Consumer, JobFailed
from ledger import service
from privacy.aggregation import StatisticsPlan
from privacy.he import ConsumerKeys
from protocol import tickets
from tests.integration.test_audit_grants import _export, _verify
from tests.nodes import ROWS
from tests.support import node_headers

FEATURES = ["revenue", "employees"]


def _bank(net, tmp_path) -> Consumer:
    return Consumer(net["url"], net["consumer"].token, net["consumer"].key, store=tmp_path / "jobs")


def _usage(net, grant: str) -> dict:
    return net["client"].get(f"/api/v1/grants/{grant}", headers=net["consumer"].headers).get_json()["usage"]


def _scoring_body(grant: str, asset: str, ids: list[str], **overrides) -> dict:
    """A scoring job's body, made the way the SDK makes it, with the consumer's declarations overridden."""
    keys = ConsumerKeys()
    weights = keys.encrypt_weights([0.5, -0.25], 0.1)
    params = {"ids": ids, "parts": {asset: {"features": FEATURES,
                                            "weights_sha256": hashlib.sha256(weights).hexdigest()}}}
    payload = json.dumps({asset: base64.b64encode(weights).decode()}).encode()
    body = {"grant": grant, "assets": [asset], "computation_kind": "he-scoring", "params": params,
            "context": base64.b64encode(keys.public_context()).decode(),
            "weights": base64.b64encode(payload).decode(), "rows": len(ids), "group_size": 1,
            "result_cells": len(ids)}
    body.update(overrides)
    return body


def test_exact_scores_under_a_grant_with_a_privacy_budget_are_refused_before_anything_is_charged(
        shared_exchange_with_nodes, tmp_path):
    net = shared_exchange_with_nodes
    grant = net["grant"](epsilon=1.0, min_group_size=1, max_result_cells=5000)
    ids = list(net["frames"][0]["uscc"][:50])
    with pytest.raises(ApiError) as refused:
        _bank(net, tmp_path).exchange.post("/jobs", _scoring_body(grant, net["assets"][0], ids, epsilon=0.01))
    assert refused.value.status == 403
    assert "dp-not-applied-by-kind" in {r["code"] for r in refused.value.problem["reasons"]}
    assert _usage(net, grant) == {"jobs_used": 0, "rows_used": 0, "epsilon_used": 0.0}


def test_two_thousand_ids_declared_as_one_row_and_one_cell_are_refused_before_anything_is_charged(
        shared_exchange_with_nodes, tmp_path):
    net = shared_exchange_with_nodes
    grant = net["grant"](min_group_size=1, max_result_cells=5000)
    ids = list(net["frames"][0]["uscc"][:2000])
    with pytest.raises(ApiError) as refused:
        _bank(net, tmp_path).exchange.post("/jobs", _scoring_body(grant, net["assets"][0], ids, rows=1,
                                                                  result_cells=1))
    assert refused.value.status == 422
    assert {"rows", "result_cells"} <= set(refused.value.problem["errors"])
    assert "2000" in " ".join(refused.value.problem["errors"]["result_cells"])
    assert _usage(net, grant)["jobs_used"] == 0


def test_statistics_declaring_fewer_rows_than_the_nodes_hold_are_refused_by_the_nodes(shared_exchange_with_nodes,
                                                                                       tmp_path):
    net = shared_exchange_with_nodes
    grant = net["grant"]()
    with pytest.raises(JobFailed, match="refused.*rows") as failed:
        _bank(net, tmp_path).statistics(grant, net["assets"], StatisticsPlan(columns=("revenue",)), rows=100)
    assert "limit" in str(failed.value)


@pytest.mark.parametrize("limits, exceeded", [({"rows": 10, "result_cells": 3}, "rows"),
                                              ({"rows": 10_000, "result_cells": 2}, "result cells")])
def test_a_node_refuses_a_ticket_whose_limits_are_below_the_work(shared_exchange_with_nodes, public_context, limits,
                                                                  exceeded):
    net = shared_exchange_with_nodes
    app = net["app"]
    params = {"plan": StatisticsPlan(columns=("revenue",)).to_dict()}
    with app.app_context():
        identity = service.identity()
    signed = tickets.issue(identity.key, issuer=identity.origin, job="job_probe", grant="grt_probe",
                           provider=net["providers"][0].id, assets=[net["assets"][0]], operation="he-statistics",
                           params_sha256=tickets.digest(params), context_sha256=tickets.digest(public_context),
                           obligations={"min-group-size": 10}, now=datetime.now(timezone.utc), limits=limits)
    answer = requests.post(f"http://127.0.0.1:{net['ports'][0]}/v1/jobs/run", timeout=60,
                           headers=node_headers(app, signed.claims, signed.signature),
                           json={"params": params, "context": base64.b64encode(public_context).decode()})
    assert answer.status_code == 403, answer.text
    problem = answer.json()
    assert problem["type"] == "urn:pdx:problem:node-limit-exceeded" and exceeded in problem["detail"]
    assert "result" not in problem


@pytest.fixture
def dishonest_hr_node(exchange_with_nodes, monkeypatch):
    """The hr provider's node replaced by one that serves beyond its tickets' limits (and says so in its receipts)."""
    from provider import limits
    from provider.app import create_node_app
    from provider.config import load as load_config

    net = exchange_with_nodes
    net["processes"][1].terminate()
    net["processes"][1].wait(timeout=20)
    monkeypatch.setattr(limits, "enforce", lambda claims, rows, cells: None)
    monkeypatch.chdir(net["configs"][1].parent)
    server = make_server("127.0.0.1", net["ports"][1], create_node_app(load_config(net["configs"][1])), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield net
    server.shutdown()


def test_receipts_reporting_more_rows_than_declared_fail_the_job_and_charge_nothing(dishonest_hr_node, tmp_path):
    net = dishonest_hr_node
    grant = net["grant"]()
    with pytest.raises(JobFailed, match="rows") as failed:
        _bank(net, tmp_path).statistics(grant, net["assets"], StatisticsPlan(columns=("revenue",)), rows=ROWS + 10)
    assert "declared" in str(failed.value)
    assert _usage(net, grant) == {"jobs_used": 0, "rows_used": 0, "epsilon_used": 0.0}


def test_a_completed_job_charges_the_rows_the_nodes_used_and_gives_back_the_rest(exchange_with_nodes, app, tmp_path):
    net = exchange_with_nodes
    grant = net["grant"]()
    bank = _bank(net, tmp_path)
    result = bank.statistics(grant, net["assets"], StatisticsPlan(columns=("revenue",)), rows=10_000)
    assert result.count == 2 * ROWS
    assert _usage(net, grant) == {"jobs_used": 1, "rows_used": 2 * ROWS, "epsilon_used": 0.0}
    size = bank.exchange.get("/ledger/checkpoint")["size"]
    entries = bank.exchange.get("/ledger/entries", start=max(0, size - 3), end=size)["entries"]
    completed = [e["entry"] for e in entries if e["entry"]["type"] == "job.completed"][-1]
    assert completed["body"]["rows"] == {"declared": 10_000, "used": 2 * ROWS, "released": 10_000 - 2 * ROWS}
    second = bank.statistics(grant, net["assets"], StatisticsPlan(columns=("employees",)), rows=2 * ROWS)
    assert second.count == 2 * ROWS and _usage(net, grant)["rows_used"] == 4 * ROWS
    report = _verify(app, _export(app))  # the offline auditor replays the charge and its give-back
    assert report.entry_types["job.completed"] == 2
