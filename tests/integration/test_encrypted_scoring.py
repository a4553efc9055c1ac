"""Encrypted scoring with real node processes: an SME credit model whose features live at two providers (tax and
social insurance) scores the bank's applicants; the logits match plaintext within 1e-3, and nodes refuse
weights other than those the ticket's parameters name."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from client.sdk import Consumer, JobFailed
from common import keyfiles
from ledger import service
from tests.integration.test_compute_to_data import _start_node
from tests.servers import app_env, free_port, serving
from tests.support import grant_action, publish, register, request_grant, scenario_request

COLUMNS = {"tax": ["vat_paid", "cit_paid", "months_late"], "hr": ["insured_employees", "contribution_base"]}


@pytest.fixture
def scoring(app, client, world, database_url, tmp_path):
    rng = np.random.default_rng(23)
    ids = [f"91370000{i:06d}" for i in range(1200)]
    with app.app_context():
        log_key, issuer = service.public_key_text(), service.identity().origin
    assets, frames, processes, providers = {}, {}, [], []
    for name, columns in COLUMNS.items():
        provider = world.participant("provider", name=name)
        port = free_port()
        fields = [{"name": "uscc", "type": "identifier"}] + [{"name": c, "type": "number"} for c in columns]
        asset = publish(client, provider, register(client, provider, fields=fields, grade=3,
                                                   computation_kinds=["he-scoring", "he-statistics"],
                                                   node_endpoint=f"http://127.0.0.1:{port}")["id"])["id"]
        frame = pd.DataFrame({"uscc": ids, **{c: rng.normal(0, 1, len(ids)) * (10 ** (i % 3)) for i, c in
                                             enumerate(columns)}})
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        keyfiles.save(provider.key, tmp_path / f"{name}.key")
        (tmp_path / f"{name}.toml").write_text(
            f'participant_id = "{provider.id}"\nkey_file = "{name}.key"\nexchange_public_key = "{log_key}"\n'
            f'issuer = "{issuer}"\nstate_dir = "{name}-state"\nport = {port}\n\n[[datasets]]\nasset = "{asset}"\n'
            f'name = "{name}"\ngrade = 3\nsource = "csv"\nlocation = "{name}.csv"\nid_column = "uscc"\n')
        processes.append(_start_node(str(tmp_path / f"{name}.toml"), port))
        assets[name], frames[name] = asset, frame
        providers.append(provider)
    consumer = world.participant("consumer", name="bank")
    regulator = world.participant("regulator")
    grant = request_grant(client, consumer, scenario_request(list(assets.values()), computation_kinds=["he-scoring"],
                                                            min_group_size=1, max_result_cells=5000,
                                                            max_rows=100_000))
    for provider in providers:
        grant_action(client, provider, grant["id"], "approve")
    assert grant_action(client, regulator, grant["id"], "co-approve")["status"] == "active"
    try:
        with serving({**app_env(app, database_url), "PDX_JOB_WORKERS": "2"}, workers=1) as url:
            yield {"url": url, "consumer": consumer, "grant": grant["id"], "assets": assets, "frames": frames,
                   "ids": ids}
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=20)


def test_encrypted_logits_match_plaintext_for_features_split_across_providers(scoring):
    rng = np.random.default_rng(5)
    weights = {name: rng.normal(0, 0.5, len(columns)) for name, columns in COLUMNS.items()}
    bias = -0.7
    applicants = scoring["ids"][100:700]
    bank = Consumer(scoring["url"], scoring["consumer"].token, scoring["consumer"].key)
    result = bank.score(scoring["grant"], {scoring["assets"][n]: COLUMNS[n] for n in COLUMNS},
                        {scoring["assets"][n]: weights[n] for n in COLUMNS}, bias, applicants)
    expected = bias + sum(scoring["frames"][n].set_index("uscc").loc[applicants, COLUMNS[n]].to_numpy() @ weights[n]
                          for n in COLUMNS)
    assert np.max(np.abs(result["score"].to_numpy() - expected)) < 1e-3
    probabilities = bank.score(scoring["grant"], {scoring["assets"][n]: COLUMNS[n] for n in COLUMNS},
                               {scoring["assets"][n]: weights[n] for n in COLUMNS}, bias, applicants[:50],
                               logistic=True)
    assert np.max(np.abs(probabilities["score"].to_numpy() - 1 / (1 + np.exp(-expected[:50])))) < 1e-3


def test_unknown_applicants_fail_the_job_with_the_reason(scoring):
    bank = Consumer(scoring["url"], scoring["consumer"].token, scoring["consumer"].key)
    with pytest.raises(JobFailed, match="not in dataset"):
        bank.score(scoring["grant"], {scoring["assets"]["tax"]: COLUMNS["tax"]},
                   {scoring["assets"]["tax"]: [0.1, 0.2, 0.3]}, 0.0, ["nobody"])
