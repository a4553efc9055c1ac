"""Attacks on federated training through real node processes and a served exchange: a consumer that differences
leave-one-out sums to recover one provider's update and row count, or reads the row counts from the ledger and
the rounds. docs/privacy.md states what each party learns."""

from __future__ import annotations

import base64
import time

import numpy as np
import pytest

from client.http import ApiError
from client.sdk import Consumer
from privacy import federated
from privacy.federated import TrainingConfig
from privacy.he import ConsumerKeys
from tests.integration import test_federated_jobs
from tests.integration.test_federated_jobs import _bank, cancer  # noqa: F401 - the rows the nodes are started with

# the three real nodes, the served exchange and the breast-cancer split of the federated-jobs tests
nodes, split = test_federated_jobs.federation, test_federated_jobs.cancer

PRIVATE = TrainingConfig(rounds=1, local_epochs=1, learning_rate=1.0, clip=1.0, noise_multiplier=6.0)


def _submit(bank: Consumer, federation, keys: ConsumerKeys, config: TrainingConfig, grant: str, **params) -> dict:
    return bank.exchange.post("/jobs", {
        "grant": grant, "assets": federation["assets"], "computation_kind": "federated-learning",
        "params": {"features": federation["columns"], "label": "malignant", "training": config.to_json(), **params},
        "context": base64.b64encode(keys.public_context()).decode(), "rows": 500, "group_size": 10,
        "result_cells": len(federation["columns"]) + 1})


def _released_sum(bank: Consumer, keys: ConsumerKeys, job_id: str, theta: np.ndarray, providers=None) -> np.ndarray:
    """Ask for a training round at θ (over ``providers``), wait for it and decrypt its sum."""
    started = bank.exchange.post(f"/jobs/{job_id}/rounds", {"phase": "train", "theta": theta.tolist(),
                                                            "providers": providers})
    while (row := bank.exchange.get(f"/jobs/{job_id}/rounds/{started['number']}"))["status"] == "running":
        time.sleep(0.05)
    assert row["status"] == "completed", row
    return keys.decrypt(base64.b64decode(row["result"]))


def test_differencing_leave_one_out_sums_recovers_a_providers_update_and_rows_only_up_to_the_noise(nodes, split):
    federation, data = nodes, split
    bank, keys = _bank(federation), ConsumerKeys()
    federation["columns"] = data["columns"]
    bounds = [[float(lo), float(hi)] for lo, hi in zip(data["train"][0].min(axis=0), data["train"][0].max(axis=0))]
    with pytest.raises(ApiError) as plain:  # without noise, the difference of two subsets is one provider's update
        _submit(bank, federation, keys, TrainingConfig(rounds=1), federation["grant"], contribution=True)
    assert plain.value.status == 422 and "params.contribution" in plain.value.problem["errors"]

    job = _submit(bank, federation, keys, PRIVATE, federation["private_grant"], contribution=True, bounds=bounds)
    providers = sorted(p.id for p in federation["providers"])
    target = providers[0]  # the exchange leaves the providers out in sorted order, one training each
    theta = np.zeros(len(data["columns"]) + 1)
    everyone = _released_sum(bank, keys, job["id"], theta)
    with pytest.raises(ApiError) as other:  # the consumer cannot choose whom the next subset leaves out
        _released_sum(bank, keys, job["id"], theta, providers=[providers[0], providers[2]])
    assert other.value.status == 422 and "providers" in other.value.problem["errors"]
    others = _released_sum(bank, keys, job["id"], theta, providers=providers[1:])

    part = {p.id: number for number, p in enumerate(federation["providers"])}[target]
    x, y = data["parts"][part]
    truth = federated.private_encode(federated.clipped_gradient_sum(theta, federated.bounded(x, bounds), y, PRIVATE),
                                     len(y), PRIVATE.clip)
    recovered = everyone - others
    noise_scale = PRIVATE.noise_multiplier * PRIVATE.clip  # σ of every released sum, per value
    # each value of the difference (the row count ·C among them) is off by N(0, ≥ 2·(z·C)²): over 32 values the
    # error's length is about 8·z·C; falling below z·C would take a chi-square(32) draw below 1/2
    assert np.linalg.norm(recovered - truth) >= noise_scale

    # nor do the exchange's records tell the consumer the rows: no round in its ledger view, no rows in the rounds
    seen = bank.exchange.get("/ledger/entries", start=0, end=1000)["entries"]
    assert not [e for e in seen if e["entry"]["type"] == "job.round"]
    assert all(r["rows"] is None for r in bank.exchange.get(f"/jobs/{job['id']}/rounds"))
    provider = federation["providers"][part]
    theirs = federation["client"].get("/api/v1/ledger/entries?start=0&end=1000", headers=provider.headers).get_json()
    rounds = [e["entry"] for e in theirs["entries"] if e["entry"]["type"] == "job.round"]
    assert len(rounds) == 1  # the provider sees the round it took part in, with the rows it used, for its records
    assert {u["provider"]: u["rows_used"] for u in rounds[0]["body"]["usage"]}[target] == len(y)
