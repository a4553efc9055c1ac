"""Compute-to-data end to end: an exchange, two provider nodes and a consumer using the SDK (the nodes' apps called
in process by an exchange served in a thread; real `pdx serve` and `pdx node serve` processes for the tests marked
``real_processes``). Statistics computed under homomorphic encryption match numpy on the pooled rows;
a node that is down fails the job cleanly (its quota stays spent: only a verified node's refusal gives it back); the
ledger records the result's hash."""

from __future__ import annotations

import base64
import hashlib

import numpy as np
import pandas as pd
import pytest
import requests
from sqlalchemy import select

from client.sdk import Consumer, JobFailed
from common import keyfiles
from common.db import get_database
from jobs.model import JobPayload, JobTicket
from ledger import service
from privacy.aggregation import GroupBy, Histogram, StatisticsPlan
from tests.inprocess import endpoint, exchange_and_nodes, wants_processes
from tests.servers import free_port, node_config
from tests.support import grant_action, node_headers, publish, register, request_grant, scenario_request

INDUSTRIES = ("manufacturing", "retail", "logistics")
# uscc is opened to filters so that a test can drive the node's minimum-group refusal with one id
FIELDS = [{"name": "uscc", "type": "identifier", "filterable": True}, {"name": "registered_capital", "type": "number"},
          {"name": "employees", "type": "integer"}, {"name": "industry", "type": "category", "filterable": True}]


def _enterprises(rng: np.random.Generator, rows: int, prefix: str) -> pd.DataFrame:
    return pd.DataFrame({
        "uscc": [f"{prefix}{i:08d}" for i in range(rows)],
        "registered_capital": rng.lognormal(mean=6.0, sigma=1.2, size=rows).round(2),
        "employees": rng.integers(1, 500, size=rows).astype(float),
        "industry": rng.choice(INDUSTRIES, size=rows),
    })


@pytest.fixture
def federation(request, app, client, world, database_url, tmp_path):
    """Two providers with nodes mounting their CSVs, an active grant for a consumer, the exchange served (nodes in
    process unless the test is marked ``real_processes``)."""
    rng = np.random.default_rng(17)
    with app.app_context():
        log_key, issuer = service.public_key_text(), service.identity().origin
    nodes, assets, frames, configs = [], [], [], {}
    for number, name in enumerate(("tax", "hr")):
        provider = world.participant("provider", name=name)
        port = free_port()
        asset = publish(client, provider, register(client, provider, fields=FIELDS, grade=2,
                                                   computation_kinds=["he-statistics", "aggregate"],
                                                   node_endpoint=endpoint(port))["id"])
        frame = _enterprises(rng, 3000 + 500 * number, f"9137{number}")
        data = tmp_path / f"{name}.csv"
        frame.to_csv(data, index=False)
        configs[port] = node_config(tmp_path, name, provider, asset["id"], port, log_key, issuer,
                                    dataset=f"{name}_enterprises")
        nodes.append(provider)
        assets.append(asset["id"])
        frames.append(frame)
    consumer = world.participant("consumer", name="bank")
    grant = request_grant(client, consumer, scenario_request(assets, max_rows=100_000, max_jobs=5))
    for provider in nodes:
        grant = grant_action(client, provider, grant["id"], "approve")
    assert grant["status"] == "active"
    with exchange_and_nodes(app, database_url, configs, real=wants_processes(request)) as served:
        yield {"url": served["url"], "consumer": consumer, "grant": grant["id"], "assets": assets,
               "pooled": pd.concat(frames, ignore_index=True), "processes": served["processes"], "client": client}


def test_statistics_under_encryption_match_numpy_on_the_pooled_rows(federation):
    consumer = Consumer(federation["url"], federation["consumer"].token, federation["consumer"].key)
    plan = StatisticsPlan(columns=("registered_capital", "employees"),
                          histogram=Histogram("employees", (0, 100, 250, 500)),
                          group_by=GroupBy("industry", INDUSTRIES), min_group_size=10)
    seen = []
    result = consumer.statistics(federation["grant"], federation["assets"], plan, rows=6500,
                                 progress=lambda status, waited: seen.append(status))
    pooled = federation["pooled"]
    assert seen[-1] == "completed" and result.count == len(pooled)
    for column in plan.columns:
        row = result.columns.loc[column]
        assert row["sum"] == pytest.approx(pooled[column].sum(), rel=1e-6)
        assert row["mean"] == pytest.approx(pooled[column].mean(), rel=1e-6)
        assert row["variance"] == pytest.approx(pooled[column].var(ddof=0), rel=1e-6)
    expected_bins, _ = np.histogram(pooled["employees"], bins=[0, 100, 250, 500])
    assert list(result.histogram["count"]) == list(expected_bins)
    for industry in INDUSTRIES:
        members = pooled[pooled["industry"] == industry]
        assert result.groups.loc[industry, "count"] == len(members)
        assert result.groups.loc[industry, "mean_registered_capital"] == pytest.approx(
            members["registered_capital"].mean(), rel=1e-6)
    job = federation["client"].get(f"/api/v1/jobs/{result.job_id}", headers=federation["consumer"].headers)
    assert job.get_json()["status"] == "completed"


def test_the_ledger_records_the_hash_of_the_result_the_consumer_downloads(federation):
    consumer = Consumer(federation["url"], federation["consumer"].token, federation["consumer"].key)
    result = consumer.statistics(federation["grant"], federation["assets"],
                                 StatisticsPlan(columns=("employees",)), rows=6500)
    downloaded = consumer.exchange.get(f"/jobs/{result.job_id}/result")
    digest = hashlib.sha256(base64.b64decode(downloaded["result"])).hexdigest()
    size = consumer.exchange.get("/ledger/checkpoint")["size"]
    entries = consumer.exchange.get("/ledger/entries", start=max(0, size - 5), end=size)["entries"]
    completed = [e["entry"] for e in entries if e["entry"]["type"] == "job.completed"]
    assert completed[-1]["body"]["result_sha256"] == digest
    usage = completed[-1]["body"]["usage"]
    assert sorted(u["rows_used"] for u in usage) == [3000, 3500]
    from protocol.receipts import verify_receipt

    for item in usage:  # the receipts in the ledger verify with the providers' keys
        keys = consumer.exchange.get(f"/participants/{item['provider']}/keys")
        verify_receipt(keys[0]["public_key"], item["receipt"], item["signature"])
        assert item["receipt"]["job"] == result.job_id
    assert len(downloaded["receipts"]) == 2


@pytest.mark.real_processes  # a node process killed: its endpoint refuses connections
def test_a_node_that_is_down_fails_the_job_and_the_quota_stays_spent(federation):
    federation["processes"][1].terminate()
    federation["processes"][1].wait(timeout=20)
    consumer = Consumer(federation["url"], federation["consumer"].token, federation["consumer"].key)
    with pytest.raises(JobFailed, match="did not answer"):
        consumer.statistics(federation["grant"], federation["assets"], StatisticsPlan(columns=("employees",)),
                            rows=6500)
    grant = consumer.exchange.get(f"/grants/{federation['grant']}")
    # An unreachable endpoint is no verified refusal: were it refunded, probing addresses would be free.
    assert grant["usage"]["jobs_used"] == 1 and grant["usage"]["rows_used"] == 6500


def test_the_minimum_group_size_is_enforced_before_anything_leaves_a_node(federation):
    consumer = Consumer(federation["url"], federation["consumer"].token, federation["consumer"].key)
    tiny = StatisticsPlan(columns=("employees",), row_filter=(("uscc", "==", "9137000000001"),), min_group_size=10)
    with pytest.raises(JobFailed, match="refused.*fewer than|refused.*minimum|refused.*group") as refused:
        consumer.statistics(federation["grant"], federation["assets"], tiny, rows=6500)
    assert "9137000000001" not in str(refused.value)  # the refusal names the cell, never a row
    grant = consumer.exchange.get(f"/grants/{federation['grant']}")
    assert grant["usage"]["jobs_used"] == 1  # a refused probe is not free: the job stays counted


@pytest.mark.real_processes  # the ticket replayed over HTTP to a real node, after a job run end to end
def test_nodes_refuse_a_replayed_ticket(federation):
    consumer = Consumer(federation["url"], federation["consumer"].token, federation["consumer"].key)
    result = consumer.statistics(federation["grant"], federation["assets"], StatisticsPlan(columns=("employees",)),
                                 rows=6500)
    assert result.count == 6500
    app = federation["client"].application
    with app.app_context(), get_database().sessionmaker() as session:
        ticket = session.scalars(select(JobTicket).where(JobTicket.job_id == result.job_id)).first()
        payload = session.get(JobPayload, result.job_id)
    body = {"params": payload.params, "context": base64.b64encode(payload.context).decode()}
    node_url = federation["client"].get(f"/api/v1/assets/{ticket.ticket['assets'][0]}").get_json()["node_endpoint"]
    replay = requests.post(f"{node_url}/v1/jobs/run", json=body, timeout=60,
                           headers=node_headers(app, ticket.ticket, ticket.signature))
    assert replay.status_code == 403 and "replay" in replay.json()["detail"]


def test_the_cli_runs_statistics_with_a_progress_display(federation, tmp_path):
    from click.testing import CliRunner

    from client.cli import main

    key_file = tmp_path / "bank.pem"
    keyfiles.save(federation["consumer"].key, key_file)
    result = CliRunner().invoke(main, [
        "job", "statistics", "--grant", federation["grant"], *sum((["--asset", a] for a in federation["assets"]), []),
        "--column", "employees", "--group-by", "industry", *sum((["--group", g] for g in INDUSTRIES), []),
        "--rows", "6500", "--url", federation["url"], "--token", federation["consumer"].token,
        "--key", str(key_file)])
    assert result.exit_code == 0, result.output
    assert "job completed" in result.stderr and "6500 rows" in result.stdout
    assert f"{federation['pooled']['employees'].mean():.4f}"[:6] in result.stdout
