"""The federated-training API without nodes: what a submission must carry, who may drive a job's rounds, in which
order, what each party sees, and that the exchange — not the consumer — computes the ε a training spends."""

from __future__ import annotations

import base64

import pytest

from ledger.audit import AuditFailure
from ledger.entries import Draft, sign_request
from privacy import accountant
from privacy.federated import TrainingConfig
from tests.integration.test_audit_grants import Story, _append, _export, _verify
from tests.support import grant_action, publish, register, request_grant, scenario_request

pytestmark = pytest.mark.sql  # federated admission and round state in the database

FEATURES = ["registered_capital", "employees"]
FIELDS = [{"name": "uscc", "type": "identifier"}, {"name": "registered_capital", "type": "number"},
          {"name": "employees", "type": "integer", "minimum": 0, "maximum": 10_000},
          {"name": "defaulted", "type": "integer", "minimum": 0, "maximum": 1},
          {"name": "sector", "type": "category"}, {"name": "rating", "type": "integer", "minimum": 1, "maximum": 5}]


@pytest.fixture
def market(client, world):
    providers, assets = [], []
    for name in ("jinan", "qingdao", "yantai"):
        provider = world.participant("provider", name=name)
        asset = publish(client, provider, register(client, provider, grade=2, fields=FIELDS,
                                                   computation_kinds=["federated-learning"])["id"])
        providers.append(provider)
        assets.append(asset["id"])
    consumer = world.participant("consumer", name="bank")
    grants = {}
    for name, extra in (("plain", {}), ("private", {"epsilon": 2.0})):
        grant = request_grant(client, consumer, scenario_request(assets, computation_kinds=["federated-learning"],
                                                                 **extra))
        for provider in providers:
            grant = grant_action(client, provider, grant["id"], "approve")
        grants[name] = grant["id"]
    return {"providers": providers, "assets": assets, "consumer": consumer, "grants": grants,
            "regulator": world.participant("regulator")}


def _submit(client, market, public_context, grant="plain", expect=201, **params):
    body = {"grant": market["grants"][grant], "assets": market["assets"], "computation_kind": "federated-learning",
            "params": {"features": FEATURES, "label": "defaulted", "training": TrainingConfig(rounds=3).to_json(),
                       **params},
            "context": base64.b64encode(public_context).decode(), "rows": 1000, "group_size": 10,
            "result_cells": 3}
    response = client.post("/api/v1/jobs", headers=market["consumer"].headers, json=body)
    assert response.status_code == expect, response.get_json()
    return response.get_json()


def _round(client, actor, job_id, expect=202, **body):
    response = client.post(f"/api/v1/jobs/{job_id}/rounds", headers=actor.headers,
                           json={"phase": "moments", **body})
    assert response.status_code == expect, response.get_json()
    return response.get_json()


@pytest.mark.parametrize(("params", "field"), [
    ({"features": []}, "params.features"),
    ({"features": ["defaulted"]}, "params.label"),
    ({"training": {"task": "forest"}}, "params.training"),
    ({"min_quorum": 1}, "params.min_quorum"),
    ({"bounds": [[1, 0], [0, 1]]}, "params.bounds"),
    ({"training": TrainingConfig(rounds=3, clip=1.0, noise_multiplier=2.0).to_json()}, "params.bounds"),
    ({"contribution": True}, "params.contribution"),  # leave-one-out sums without noise difference to one update
    ({"min_quorum": 2}, "params.min_quorum"),  # without noise a round with and one without a node difference too
    ({"training": TrainingConfig(rounds=3, local_epochs=3, clip=1.0, noise_multiplier=9.0).to_json(),
      "bounds": [[0, 1], [0, 1]]}, "params.training"),  # DP-FedSGD: one gradient step per round
    ({"training": TrainingConfig(rounds=3, local_epochs=1, clip=1.0, noise_multiplier=9.0).to_json(),
      "bounds": [[0, 1], [0, 1]], "contribution": True, "min_quorum": 3}, "params.min_quorum"),  # a subset of 2 must reach the quorum
])
def test_a_submission_names_the_parameter_it_cannot_use(client, market, public_context, params, field):
    problem = _submit(client, market, public_context, expect=422, **params)
    assert field in problem["errors"]


def _ledger_size(client, market) -> int:
    return client.get("/api/v1/ledger/checkpoint", headers=market["consumer"].headers).get_json()["size"]


@pytest.mark.parametrize(("params", "field", "named"), [
    ({"features": ["registered_capital", "profit"]}, "params.features", "declares no field 'profit'"),
    ({"features": ["registered_capital", "sector"]}, "params.features", "is category, not a number"),
    ({"label": "bankrupt"}, "params.label", "declares no field 'bankrupt'"),
    ({"label": "sector"}, "params.label", "is category"),
    ({"label": "rating"}, "params.label", "0 or 1"),  # a logistic training's label, declared 1 to 5
    ({"bounds": [[0, 1e6], [0, 50_000]]}, "params.bounds", "employees"),  # beyond the declared 0 to 10000
])
def test_a_training_on_fields_the_assets_do_not_declare_fit_is_refused_before_anything_is_charged(
        client, market, public_context, params, field, named):
    before = _ledger_size(client, market)
    problem = _submit(client, market, public_context, expect=422, **params)
    assert list(problem["errors"]) == [field] and named in " ".join(problem["errors"][field]), problem
    grant = client.get(f"/api/v1/grants/{market['grants']['plain']}", headers=market["consumer"].headers).get_json()
    assert grant["usage"]["jobs_used"] == 0 and grant["usage"]["rows_used"] == 0
    assert _ledger_size(client, market) == before


def test_a_training_over_one_providers_assets_is_refused(client, market, public_context):
    body = {"grant": market["grants"]["plain"], "assets": market["assets"][:1],
            "computation_kind": "federated-learning",
            "params": {"features": FEATURES, "label": "defaulted", "training": TrainingConfig(rounds=3).to_json(),
                       "min_quorum": 2},
            "context": base64.b64encode(public_context).decode(), "rows": 1000, "group_size": 10, "result_cells": 3}
    response = client.post("/api/v1/jobs", headers=market["consumer"].headers, json=body)
    assert response.status_code == 422 and "assets" in response.get_json()["errors"]


def test_a_refused_first_round_fails_the_training_and_gives_its_quota_back(client, market, public_context):
    job = _submit(client, market, public_context)
    refused = _round(client, market["consumer"], job["id"], expect=422, phase="train", theta=[0, 0])
    assert "theta" in refused["errors"]
    assert client.get(f"/api/v1/jobs/{job['id']}", headers=market["consumer"].headers).get_json()["status"] == "failed"
    grant = client.get(f"/api/v1/grants/{market['grants']['plain']}", headers=market["consumer"].headers).get_json()
    assert grant["usage"]["jobs_used"] == 0


def test_bounds_standardize_a_training_without_noise_and_it_has_no_moments_round(client, market, public_context):
    job = _submit(client, market, public_context, bounds=[[0, 1e6], [0, 1e4]])
    started = _round(client, market["consumer"], job["id"], phase="train", theta=[0, 0, 0])
    assert (started["number"], started["phase"]) == (0, "train")


def test_a_private_leave_one_out_training_is_the_exchanges_subset_not_the_consumers(client, market, public_context):
    private = TrainingConfig(rounds=2, local_epochs=1, clip=1.0, noise_multiplier=20.0)
    job = _submit(client, market, public_context, grant="private", training=private.to_json(),
                  bounds=[[0, 1e6], [0, 1e4]], contribution=True)
    assert job["epsilon"] == pytest.approx(accountant.fedavg_epsilon(20.0, 2 * 3))  # each record: 3 of 4 trainings
    subset = sorted(p.id for p in market["providers"])[1:]
    early = _round(client, market["consumer"], job["id"], expect=422, phase="train", theta=[0, 0, 0],
                   providers=subset)  # round 0 belongs to the training over everyone
    assert "providers" in early["errors"]


def test_the_exchange_computes_the_epsilon_a_private_training_spends(client, market, public_context):
    private = TrainingConfig(rounds=4, local_epochs=1, clip=1.0, noise_multiplier=10.0)
    job = _submit(client, market, public_context, grant="private", training=private.to_json(),
                  bounds=[[0, 1e6], [0, 1e4]])
    assert job["epsilon"] == pytest.approx(accountant.fedavg_epsilon(10.0, 4))
    greedy = TrainingConfig(rounds=40, local_epochs=1, clip=1.0, noise_multiplier=2.0)
    refused = _submit(client, market, public_context, grant="private", training=greedy.to_json(),
                      bounds=[[0, 1e6], [0, 1e4]], expect=403)
    assert "privacy budget" in refused["detail"]


def test_only_the_jobs_consumer_drives_its_rounds_in_order(client, world, market, public_context):
    job = _submit(client, market, public_context)
    stranger = world.participant("consumer", name="other bank")
    _round(client, stranger, job["id"], expect=404)
    started = _round(client, market["consumer"], job["id"])
    assert (started["number"], started["status"], started["phase"]) == (0, "running", "moments")
    busy = _round(client, market["consumer"], job["id"], phase="train", theta=[0, 0, 0],
                  standardizer={"mean": [0, 0], "std": [1, 1]}, expect=409)
    assert "still running" in busy["detail"]
    unfinished = client.post(f"/api/v1/jobs/{job['id']}/finish", headers=market["consumer"].headers,
                             json={"model_sha256": "0" * 64})
    assert unfinished.status_code == 409
    first = _round(client, market["consumer"], _submit(client, market, public_context)["id"], phase="train",
                   theta=[0, 0, 0], expect=422)
    assert "phase" in first["errors"]  # round 0 of a training without noise or bounds computes the moments
    lopsided = _round(client, market["consumer"], _submit(client, market, public_context)["id"], phase="train",
                      theta=[0, 0, 0], standardizer={"mean": [0], "std": [1]}, expect=422)
    assert "standardizer" in lopsided["errors"]


def test_a_round_number_beyond_64_bits_is_not_found(client, market, public_context):
    job = _submit(client, market, public_context)
    _round(client, market["consumer"], job["id"])
    response = client.get(f"/api/v1/jobs/{job['id']}/rounds/{2**63}", headers=market["consumer"].headers)
    assert response.status_code == 404 and response.mimetype == "application/problem+json"


def test_providers_and_regulators_see_rounds_but_only_the_consumer_gets_the_sum(client, market, public_context):
    job = _submit(client, market, public_context)
    _round(client, market["consumer"], job["id"])
    for viewer in (market["providers"][0], market["regulator"]):
        listed = client.get(f"/api/v1/jobs/{job['id']}/rounds", headers=viewer.headers)
        assert listed.status_code == 200 and [r["number"] for r in listed.get_json()] == [0]
        one = client.get(f"/api/v1/jobs/{job['id']}/rounds/0", headers=viewer.headers).get_json()
        assert "result" not in one
    mine = client.get(f"/api/v1/jobs/{job['id']}/rounds/0", headers=market["consumer"].headers).get_json()
    assert "result" in mine


def test_a_revoked_grant_stops_the_training(client, market, public_context):
    job = _submit(client, market, public_context)
    grant_action(client, market["providers"][0], market["grants"]["plain"], "revoke", {"reason": "incident"})
    refused = _round(client, market["consumer"], job["id"], expect=403)
    assert "revoked" in refused["detail"]


def test_a_leave_one_out_subset_needs_a_job_that_asked_for_contributions(client, market, public_context):
    job = _submit(client, market, public_context, bounds=[[0, 1e6], [0, 1e4]])
    providers = sorted(p.id for p in market["providers"])
    refused = _round(client, market["consumer"], job["id"], expect=422, phase="train", theta=[0, 0, 0],
                     providers=providers[1:])
    assert "providers" in refused["errors"]


def _forged_round(job_id: str, grant_id: str, number: int) -> tuple[Draft, None]:
    return Draft("job.round", "system", refs={"job": [job_id], "grant": [grant_id]}, body={
        "round": number, "phase": "moments", "status": "completed", "params_sha256": "0" * 64,
        "result_sha256": "1" * 64, "usage": [], "dropped": []}), None


def _story(app, market) -> Story:
    return Story(_export(app), market["consumer"], market["grants"], {})


@pytest.mark.parametrize(("case", "kind"), [
    ("a round after the grant's revocation", "grant-not-active"),
    ("round 1 before round 0", "job-round"),
    ("the training ended by a provider", "grant-party"),
    ("the training ended before any round", "job-round"),
])
def test_the_auditor_replays_a_trainings_rounds_and_end(app, client, market, public_context, case, kind):
    job = _submit(client, market, public_context)
    grant = market["grants"]["plain"]
    if case == "a round after the grant's revocation":
        grant_action(client, market["providers"][0], grant, "revoke", {"reason": "incident"})
    story = _story(app, market)
    assert _verify(app, story.lines).entry_types["job.admitted"] == 1  # the honest log verifies
    provider = market["providers"][0]
    forged = {
        "a round after the grant's revocation": [_forged_round(job["id"], grant, 0)],
        "round 1 before round 0": [_forged_round(job["id"], grant, 1)],
        "the training ended by a provider": [_forged_round(job["id"], grant, 0), _trained(job["id"], grant, provider)],
        "the training ended before any round": [_trained(job["id"], grant, market["consumer"])],
    }[case]
    with pytest.raises(AuditFailure) as caught:
        _verify(app, _append(app, story, forged))
    assert (caught.value.seq, caught.value.kind) == (story.size + len(forged) - 1, kind), caught.value


def _trained(job_id: str, grant_id: str, actor) -> tuple[Draft, object]:
    request = sign_request(actor.key, actor=actor.id, method="POST", path=f"/api/v1/jobs/{job_id}/finish",
                           body={"model_sha256": "2" * 64})
    return Draft("job.trained", actor.id, refs={"job": [job_id], "grant": [grant_id]}, body={
        "rounds": 1, "model_sha256": "2" * 64, "final_metrics": {}, "contributions": {}}), request


def test_a_round_a_stop_interrupted_fails_its_training_once_its_tickets_expire(app, client, market, public_context):
    from datetime import datetime, timedelta, timezone

    from jobs.runner import recover_stranded

    job = _submit(client, market, public_context)
    _round(client, market["consumer"], job["id"])  # no job workers in tests: it stays running, as after a stop
    with app.app_context():
        assert recover_stranded(datetime.now(timezone.utc)) == []  # its tickets are still valid
        assert recover_stranded(datetime.now(timezone.utc) + timedelta(minutes=10)) == [job["id"]]
    rounds = client.get(f"/api/v1/jobs/{job['id']}/rounds", headers=market["consumer"].headers).get_json()
    assert rounds[0]["status"] == "failed" and "stopped" in rounds[0]["error"]
    assert client.get(f"/api/v1/jobs/{job['id']}", headers=market["consumer"].headers).get_json()["status"] == "failed"
    grant = client.get(f"/api/v1/grants/{market['grants']['plain']}", headers=market["consumer"].headers).get_json()
    assert grant["usage"]["jobs_used"] == 0  # nothing was trained: the quota is given back
    assert _verify(app, _export(app)).entry_types["job.round"] == 1


def test_a_grant_revoked_during_a_round_withholds_its_sum_and_the_log_still_verifies(app, client, market,
                                                                                   public_context):
    from jobs import federated

    job = _submit(client, market, public_context)
    _round(client, market["consumer"], job["id"])
    grant_action(client, market["providers"][0], market["grants"]["plain"], "revoke", {"reason": "incident"})
    with app.app_context():  # the nodes answer after the revocation: what the runner records then
        error = federated._record_round(job["id"], 0, b"ciphertext", [], [], None)
    assert "withheld" in error
    one = client.get(f"/api/v1/jobs/{job['id']}/rounds/0", headers=market["consumer"].headers).get_json()
    assert one["status"] == "failed" and one["result"] is None
    assert _verify(app, _export(app)).entry_types["job.round"] == 1
