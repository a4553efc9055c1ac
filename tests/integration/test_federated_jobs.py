"""Federated training end to end: three provider nodes holding parts of scikit-learn's breast-cancer rows, a served
exchange, and the consumer SDK driving the rounds (the nodes' apps called in process by an exchange served in a
thread; real `pdx node serve` and `pdx serve` processes for the test marked ``real_processes``). The model equals
the one plain FedAvg gives on the same rows, the exchange only ever holds ciphertexts, a node that drops out is
fails the rounds of a training without noise and is tolerated down to the quorum of a private one,
differential privacy is charged to the grant, and the auditor replays it all."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from client.cli import main
from client.http import ApiError
from client.sdk import Consumer, JobFailed
from client.training import train
from common import keyfiles
from ledger import service
from privacy import accountant, federated
from privacy.federated import TrainingConfig
from tests.inprocess import endpoint, exchange_and_nodes, wants_processes
from tests.servers import free_port
from tests.support import grant_action, publish, register, request_grant, scenario_request

NAMES = ("jinan", "qingdao", "yantai")
CONFIG = TrainingConfig(rounds=8, local_epochs=5, learning_rate=0.5, l2=1e-3)


@pytest.fixture(scope="module")
def cancer():
    data = load_breast_cancer()
    columns = [f"f{i}" for i in range(data.data.shape[1])]
    x_train, x_test, y_train, y_test = train_test_split(data.data, data.target, test_size=0.25, random_state=0,
                                                        stratify=data.target)
    order = np.random.default_rng(3).permutation(len(y_train))
    parts = [order[p] for p in np.array_split(np.arange(len(y_train)), len(NAMES))]
    return {"columns": columns, "parts": [(x_train[p], y_train[p]) for p in parts], "test": (x_test, y_test),
            "train": (x_train, y_train)}


@pytest.fixture
def federation(request, app, client, world, database_url, tmp_path, cancer):
    """Three providers whose nodes mount one part each of the training rows, an active grant, the exchange."""
    with app.app_context():
        log_key, issuer = service.public_key_text(), service.identity().origin
    fields = [{"name": "id", "type": "identifier"}, *({"name": c, "type": "number"} for c in cancer["columns"]),
              {"name": "malignant", "type": "integer"}]
    providers, assets, configs = [], [], {}
    for number, name in enumerate(NAMES):
        provider = world.participant("provider", name=name)
        port = free_port()
        asset = publish(client, provider, register(client, provider, fields=fields, grade=2,
                                                   computation_kinds=["federated-learning"],
                                                   node_endpoint=endpoint(port))["id"])
        x, y = cancer["parts"][number]
        frame = pd.DataFrame(x, columns=cancer["columns"]).assign(malignant=y, id=[f"{name}{i}" for i in range(len(y))])
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        keyfiles.save(provider.key, tmp_path / f"{name}.key")
        (tmp_path / f"{name}.toml").write_text(
            f'participant_id = "{provider.id}"\nkey_file = "{name}.key"\nexchange_public_key = "{log_key}"\n'
            f'issuer = "{issuer}"\nstate_dir = "{name}-state"\nport = {port}\n\n[[datasets]]\nasset = '
            f'"{asset["id"]}"\nname = "{name}_rows"\ngrade = 2\nsource = "csv"\nlocation = "{name}.csv"\n'
            f'id_column = "id"\n')
        configs[port] = tmp_path / f"{name}.toml"
        providers.append(provider)
        assets.append(asset["id"])
    consumer = world.participant("consumer", name="hospital-research")
    grants = {}
    for name, extra in (("plain", {}), ("private", {"epsilon": 3.0})):
        grant = request_grant(client, consumer, scenario_request(
            assets, max_rows=10_000_000, max_jobs=5, computation_kinds=["federated-learning"], min_group_size=10,
            **extra))
        for provider in providers:
            grant = grant_action(client, provider, grant["id"], "approve")
        assert grant["status"] == "active"
        grants[name] = grant["id"]
    with exchange_and_nodes(app, database_url, configs, real=wants_processes(request), workers=4) as served:
        yield {"url": served["url"], "consumer": consumer, "grant": grants["plain"],
               "private_grant": grants["private"], "assets": assets, "client": client,
               "processes": served["processes"], "providers": providers, "app": app}


def _without_noise(parts, bounds, config: TrainingConfig) -> np.ndarray:
    """The same per-row clipped training, standardized by the same bounds, without the Gaussian noise."""
    local = [(federated.bounded(x, bounds), y) for x, y in parts]
    theta = federated.initial_theta(len(bounds))
    for _ in range(config.rounds):
        summed = np.sum([federated.private_encode(federated.clipped_gradient_sum(theta, x, y, config), len(y),
                                                 config.clip) for x, y in local], axis=0)
        theta, _ = federated.private_step(theta, summed, config)
    return theta


def _bounds(cancer) -> list[tuple[float, float]]:
    return [(float(lo), float(hi)) for lo, hi in zip(cancer["train"][0].min(axis=0), cancer["train"][0].max(axis=0))]


def _audit(app):
    """Export the exchange's ledger and verify it with the offline auditor, which replays every round."""
    from common.db import get_database
    from ledger import checkpoints, export, log
    from ledger.audit import verify_export

    with app.app_context():
        identity = service.identity()
        with get_database().transaction() as session:
            checkpoints.sign_current(session, identity)
            lines = list(export.lines(session, identity.origin, service.public_key_text(), log.size(session)))
        return verify_export(lines, identity.key.public_key())


def _bank(federation) -> Consumer:
    return Consumer(federation["url"], federation["consumer"].token, federation["consumer"].key)


@pytest.mark.real_processes  # a node process killed mid-training
def test_training_through_the_exchange_gives_plain_fedavgs_model_and_tolerates_a_dropout_down_to_the_quorum(
        federation, cancer):
    seen = []
    result = train(_bank(federation), federation["grant"], federation["assets"], features=cancer["columns"],
                   label="malignant", config=CONFIG, rows=500, validation=cancer["test"], progress=seen.append)
    reference = federated.train(cancer["parts"], CONFIG)
    np.testing.assert_allclose(result.model.theta, reference.theta, atol=1e-3)
    x_train, y_train = cancer["train"]
    scaler = StandardScaler().fit(x_train)
    central = LogisticRegression(max_iter=10_000).fit(scaler.transform(x_train), y_train)
    accuracy = federated.accuracy(result.model, *cancer["test"])
    assert accuracy >= central.score(scaler.transform(cancer["test"][0]), cancer["test"][1]) - 0.01
    assert len(seen) == CONFIG.rounds and all(entry["rows"] == len(y_train) for entry in seen)
    assert seen[-1]["metrics"]["accuracy"] == pytest.approx(accuracy)
    rounds = federation["client"].get(f"/api/v1/jobs/{result.job_id}/rounds",
                                      headers=federation["consumer"].headers).get_json()
    assert [r["phase"] for r in rounds] == ["moments"] + ["train"] * CONFIG.rounds
    assert all(sorted(r["contributors"]) == sorted(p.id for p in federation["providers"]) for r in rounds)
    # bounds standardize a training without noise too: no moments round, the same model as in-process
    bounded = train(_bank(federation), federation["grant"], federation["assets"], features=cancer["columns"],
                    label="malignant", config=TrainingConfig(rounds=3), rows=500, bounds=_bounds(cancer))
    reference = federated.train(cancer["parts"], TrainingConfig(rounds=3), bounds=_bounds(cancer))
    np.testing.assert_allclose(bounded.model.theta, reference.theta, atol=1e-3)
    # a node drops out: without noise no round releases (a sum without one node, differenced with one with it,
    # would show its update); a private training goes on with the other two down to its quorum
    federation["processes"][2].terminate()
    federation["processes"][2].wait(timeout=20)
    with pytest.raises(JobFailed, match="every one of the 3 providers"):
        train(_bank(federation), federation["grant"], federation["assets"], features=cancer["columns"],
              label="malignant", config=TrainingConfig(rounds=3), rows=500)
    private = TrainingConfig(rounds=3, local_epochs=1, learning_rate=1.0, clip=1.0, noise_multiplier=8.0)
    result = train(_bank(federation), federation["private_grant"], federation["assets"], features=cancer["columns"],
                   label="malignant", config=private, rows=500, min_quorum=2, bounds=_bounds(cancer),
                   validation=cancer["test"])
    assert all(entry["dropped"] == [federation["providers"][2].id] for entry in result.history)


def test_the_cli_trains_with_a_progress_bar_and_writes_the_curve(federation, cancer, tmp_path):
    x_test, y_test = cancer["test"]
    pd.DataFrame(x_test, columns=cancer["columns"]).assign(malignant=y_test).to_csv(tmp_path / "mine.csv", index=False)
    keyfiles.save(federation["consumer"].key, tmp_path / "consumer.key")
    trained = CliRunner().invoke(main, [
        "job", "train", "--grant", federation["grant"], *sum((["--asset", a] for a in federation["assets"]), []),
        *sum((["--feature", c] for c in cancer["columns"]), []), "--label", "malignant", "--rounds", "4",
        "--rows", "500", "--validation", str(tmp_path / "mine.csv"), "--plot", str(tmp_path / "curve.png"),
        "--url", federation["url"], "--token", federation["consumer"].token, "--key", str(tmp_path / "consumer.key")])
    assert trained.exit_code == 0, trained.output
    assert "4 rounds" in trained.output and (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"
    weights = [float(v) for v in trained.output.split("then intercept): ")[1].splitlines()[0].split(", ")]
    reference = federated.train(cancer["parts"], TrainingConfig(rounds=4))
    np.testing.assert_allclose(weights, reference.theta, atol=1e-3)


def test_differential_privacy_is_charged_to_the_grant_and_refused_beyond_its_budget(federation, cancer):
    bounds = _bounds(cancer)
    private = TrainingConfig(rounds=5, local_epochs=1, learning_rate=1.0, clip=1.0, noise_multiplier=8.0)
    result = train(_bank(federation), federation["private_grant"], federation["assets"], features=cancer["columns"],
                   label="malignant", config=private, rows=500, bounds=bounds, validation=cancer["test"])
    assert result.epsilon == pytest.approx(accountant.fedavg_epsilon(8.0, 5))
    noisy_rows = [entry["rows"] for entry in result.history]  # the consumer decodes a noisy count, σ = z rows
    assert len(set(noisy_rows)) > 1 and all(abs(n - len(cancer["train"][1])) < 6 * 8.0 for n in noisy_rows)
    clean = _without_noise(cancer["parts"], bounds, private)  # σ of θ per round: lr·z·C/n ≈ 0.02 per value
    assert 0.05 < np.linalg.norm(result.model.theta - clean) < 2.0
    grant = federation["client"].get(f"/api/v1/grants/{federation['private_grant']}",
                                     headers=federation["consumer"].headers).get_json()
    assert grant["usage"]["epsilon_used"] == pytest.approx(result.epsilon)
    too_much = TrainingConfig(rounds=50, local_epochs=1, learning_rate=0.5, clip=1.0, noise_multiplier=2.0)
    with pytest.raises(ApiError) as refused:
        train(_bank(federation), federation["private_grant"], federation["assets"], features=cancer["columns"],
              label="malignant", config=too_much, rows=500, bounds=bounds)
    assert refused.value.status == 403 and "privacy budget" in str(refused.value)
    with pytest.raises(ApiError) as plain:  # the grant releases nothing without differential privacy
        train(_bank(federation), federation["private_grant"], federation["assets"], features=cancer["columns"],
              label="malignant", config=TrainingConfig(rounds=2), rows=500)
    assert plain.value.status == 403


def test_contributions_by_leave_one_out_sum_to_one_and_are_recorded(federation, cancer, tmp_path):
    private = TrainingConfig(rounds=5, local_epochs=1, learning_rate=1.0, clip=1.0, noise_multiplier=12.0)
    result = train(_bank(federation), federation["private_grant"], federation["assets"], features=cancer["columns"],
                   label="malignant", config=private, rows=500, validation=cancer["test"], bounds=_bounds(cancer),
                   contribution=True)
    assert set(result.contributions) == {p.id for p in federation["providers"]}
    assert sum(result.contributions.values()) == pytest.approx(1.0)
    report = federation["client"].get(f"/api/v1/jobs/{result.job_id}/training",
                                      headers=federation["consumer"].headers).get_json()
    assert report["contributions"] == pytest.approx(result.contributions)
    assert len(report["metrics"]) == len(result.history)
    plotted = CliRunner().invoke(main, ["job", "plot", result.job_id, "--out", str(tmp_path / "curve.png"),
                                        "--url", federation["url"], "--token", federation["consumer"].token])
    assert plotted.exit_code == 0, plotted.output
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "5 rounds" in plotted.output
    audited = _audit(federation["app"])  # 5 rounds, then 5 without each of the 3 providers (no moments under DP)
    assert audited.entry_types["job.round"] == 5 * 4 and audited.entry_types["job.trained"] == 1
