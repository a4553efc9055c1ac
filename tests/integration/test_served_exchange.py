"""A real served exchange: ``pdx demo --no-serve`` seeds it, ``pdx serve`` runs gunicorn, the CLI talks HTTP."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from client.cli import main
from participants.keys import load, public_text
from tests.servers import PDX, serving


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Seed the demo exchange in a temp folder and serve it with gunicorn on a free loopback port."""
    workdir = tmp_path_factory.mktemp("served")
    env = {**os.environ, "PDX_INSTANCE_DIR": str(workdir / "instance")}
    env.pop("PDX_DATABASE_URL", None)
    seeded = subprocess.run([*PDX, "demo", "--seed-only"], cwd=workdir, env=env, capture_output=True, text=True,
                            timeout=120)
    assert seeded.returncode == 0, seeded.stderr
    demo_dir = workdir / "instance" / "demo"
    token_file = demo_dir / "tokens.json"
    demo = json.loads(token_file.read_text())
    env["PDX_DATABASE_URL"] = f"sqlite:///{demo_dir / 'demo.sqlite3'}"
    env["PDX_LOG_KEY_FILE"] = str(demo_dir / "log.key")
    with serving(env, workers=2, extra=(), cwd=workdir) as url:
        health = requests.get(f"{url}/api/v1/health", timeout=5)
        yield {"url": url, "tokens": demo["tokens"], "health": health, "token_file": token_file,
               "seed_output": seeded.stdout, "keys": demo_dir / "keys"}


def test_demo_prints_where_to_reach_it_and_keeps_tokens_private(served):
    assert "/api/docs" in served["seed_output"] and served["tokens"]["operator"] in served["seed_output"]
    assert stat.S_IMODE(served["token_file"].stat().st_mode) == 0o600


def test_serve_runs_gunicorn_and_answers_health(served):
    assert served["health"].status_code == 200
    assert served["health"].json()["status"] == "ok" and served["health"].json()["database"] == "sqlite"
    assert served["health"].headers["Server"].startswith("gunicorn")


def test_demo_catalog_is_public_and_bilingual(served):
    catalog = requests.get(f"{served['url']}/api/v1/assets", params={"q": "企业", "per_page": 100}, timeout=5).json()
    assert catalog["total"] >= 3
    assert all(asset["title_en"] and asset["title_zh"] for asset in catalog["items"])
    dcat = requests.get(f"{served['url']}/api/v1/catalog.jsonld", timeout=5).json()
    assert len(dcat["dcat:dataset"]) == requests.get(f"{served['url']}/api/v1/assets", timeout=5).json()["total"]


def test_docs_page_loads_its_assets_locally(served):
    page = requests.get(f"{served['url']}/api/docs", timeout=5)
    assert page.status_code == 200 and "cdn" not in page.text.lower()
    bundle = requests.get(f"{served['url']}/api/docs/assets/swagger-ui-bundle.js", timeout=5)
    assert bundle.status_code == 200 and len(bundle.content) > 100_000


def test_cli_enrols_a_participant_who_registers_a_key(served, tmp_path):
    runner = CliRunner()
    base = ["--url", served["url"]]
    operator = ["--token", served["tokens"]["operator"], "--key", str(served["keys"] / "operator.pem")]
    enrolled = runner.invoke(main, ["participant", "enrol", "--name-zh", "济南市数据局", "--name-en",
                                    "Jinan Data Bureau", "--role", "consumer", *base, *operator])
    assert enrolled.exit_code == 0, enrolled.output
    body = json.loads(enrolled.output)
    new_id, new_token = body["participant"]["id"], body["token"]["token"]
    forged = _forged_approval(tmp_path)
    refused = runner.invoke(main, ["keys", "register", "--key", str(_key(runner, tmp_path)), *base,
                                   "--token", new_token, "--approval", str(forged)])
    assert refused.exit_code != 0 and "pending" in refused.output
    admitted = runner.invoke(main, ["participant", "admit", new_id, *base, *operator])
    assert json.loads(admitted.output)["status"] == "active"
    tokens_alone = runner.invoke(main, ["keys", "register", "--key", str(tmp_path / "k.pem"), *base,
                                        "--token", new_token, "--approval", str(forged)])
    assert tokens_alone.exit_code != 0 and "403" in tokens_alone.output and "not an active operator" in tokens_alone.output
    public_key = public_text(load(tmp_path / "k.pem"))
    approved = runner.invoke(main, ["keys", "approve", new_id, public_key, *base, *operator])
    assert approved.exit_code == 0, approved.output
    (tmp_path / "approval.json").write_text(approved.output)
    registered = runner.invoke(main, ["keys", "register", "--key", str(tmp_path / "k.pem"), *base,
                                      "--token", new_token, "--approval", str(tmp_path / "approval.json")])
    assert registered.exit_code == 0, registered.output
    assert json.loads(registered.output)["participant_id"] == new_id


def test_cli_search_lists_matching_assets(served):
    result = CliRunner().invoke(main, ["asset", "search", "traffic", "--url", served["url"]])
    assert result.exit_code == 0, result.output
    assert "高速公路收费站断面流量" in result.output and "of 1" in result.output


def _forged_approval(tmp_path) -> Path:
    """An 'approval' signed by a key no operator registered."""
    from datetime import datetime, timezone

    from participants.keys import approval, generate

    forger = generate(tmp_path / "forger.pem")
    path = tmp_path / "forged.json"
    path.write_text(json.dumps(approval(forger, "prt_" + "0" * 32, "prt_x", "AAAA", datetime.now(timezone.utc))))
    return path


def _key(runner, tmp_path) -> Path:
    path = tmp_path / "k.pem"
    assert runner.invoke(main, ["keys", "generate", "--out", str(path)]).exit_code == 0
    return path


def test_witness_cosigns_only_consistent_checkpoints(served, tmp_path):
    runner = CliRunner()
    regulator = ["--url", served["url"], "--token", served["tokens"]["regulator"],
                 "--key", str(served["keys"] / "regulator.pem")]
    log_key = requests.get(f"{served['url']}/api/v1/ledger/checkpoint", timeout=5,
                           headers={"Authorization": f"Bearer {served['tokens']['regulator']}"}).json()
    state = tmp_path / "witness.json"
    first = runner.invoke(main, ["witness", *regulator, "--log-key", log_key["log_public_key"], "--state", str(state)])
    assert first.exit_code == 0, first.output
    assert f"size {log_key['size']}" in first.output
    CliRunner().invoke(main, ["participant", "enrol", "--name-zh", "见证后", "--name-en", "After", "--role",
                              "consumer", "--url", served["url"], "--token", served["tokens"]["operator"],
                              "--key", str(served["keys"] / "operator.pem")])
    second = runner.invoke(main, ["witness", *regulator, "--log-key", log_key["log_public_key"],
                                  "--state", str(state)])
    assert second.exit_code == 0, second.output
    grown = json.loads(state.read_text())
    assert grown["size"] > log_key["size"]
    checkpoint = requests.get(f"{served['url']}/api/v1/ledger/checkpoints/{grown['size']}", timeout=5,
                              headers={"Authorization": f"Bearer {served['tokens']['regulator']}"}).json()
    assert checkpoint["cosigners"] and "/witness/" in checkpoint["note"]
    state.write_text(json.dumps({**grown, "root": "A" * 43 + "="}))  # a remembered root the log never had
    forked = runner.invoke(main, ["witness", *regulator, "--log-key", log_key["log_public_key"],
                                  "--state", str(state)])
    assert forked.exit_code != 0 and "refusing to cosign" in forked.output


def test_cli_walks_a_scenario_grant_from_request_to_an_admitted_job(served, tmp_path, public_context):
    runner, url = CliRunner(), served["url"]

    def as_(who: str) -> list[str]:
        return ["--url", url, "--token", served["tokens"][who], "--key", str(served["keys"] / f"{who}.pem")]

    catalog = requests.get(f"{url}/api/v1/assets", params={"q": "enterprise", "max_grade": 3}, timeout=5).json()
    assets = {a["provider_id"]: a["id"] for a in catalog["items"] if a["grade"] == 3}
    assert len(assets) == 2
    requested = runner.invoke(main, ["grant", "request", "--kind", "scenario", "--scenario", "SME credit scoring",
                                     "--purpose", "inclusive-finance loans", *sum((["--asset", a] for a in
                                                                                   assets.values()), []),
                                     "--computation", "he-statistics", "--epsilon", "1.0", *as_("bank")])
    assert requested.exit_code == 0, requested.output
    grant_id = json.loads(requested.output)["id"]
    for provider in ("tax", "hrss"):
        approved = runner.invoke(main, ["grant", "act", grant_id, "approve", *as_(provider)])
        assert approved.exit_code == 0, approved.output
    assert json.loads(approved.output)["status"] == "provider-approved"
    active = runner.invoke(main, ["grant", "act", grant_id, "co-approve", *as_("regulator")])
    assert json.loads(active.output)["status"] == "active"
    job_args = ["--grant", grant_id, *sum((["--asset", a] for a in assets.values()), []), "--computation",
                "he-statistics", "--rows", "5000", "--epsilon", "0.2", "--result-cells", "4",
                "--params", '{"plan": {}}']  # a count: the two assets share no numeric field
    decided = runner.invoke(main, ["decide", *job_args, "--url", url, "--token", served["tokens"]["bank"]])
    assert decided.output.startswith("ALLOW") and "dp-noise" in decided.output
    too_small = runner.invoke(main, ["decide", *job_args, "--group-size", "2", "--url", url,
                                     "--token", served["tokens"]["bank"]])
    assert too_small.output.startswith("DENY") and "group-too-small" in too_small.output
    context = tmp_path / "bank.context"
    context.write_bytes(public_context)
    submitted = runner.invoke(main, ["job", "submit", *job_args, "--context", str(context), *as_("bank")])
    assert submitted.exit_code == 0, submitted.output
    job = json.loads(submitted.output)
    assert job["status"] == "admitted"
    # ``--seed-only`` starts no provider node, so the runner cannot reach one: the job fails and, as an unreachable
    # node is no verified refusal, its quota stays spent.
    finished = _wait_for_job(url, job["id"], served["tokens"]["bank"])
    assert finished["status"] == "failed", finished
    result = requests.get(f"{url}/api/v1/jobs/{job['id']}/result", timeout=5,
                          headers={"Authorization": f"Bearer {served['tokens']['bank']}"}).json()
    assert "did not answer" in result["error"], result
    listed = runner.invoke(main, ["grant", "list", "--url", url, "--token", served["tokens"]["bank"]])
    assert grant_id in listed.output and "jobs 1/10" in listed.output


def _wait_for_job(url: str, job_id: str, token: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = requests.get(f"{url}/api/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {token}"},
                           timeout=5).json()
        if job["status"] not in ("admitted", "running") or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def test_a_regulator_verifies_the_ledger_offline_with_only_the_cli(served, tmp_path):
    runner, url = CliRunner(), served["url"]
    regulator = ["--url", url, "--token", served["tokens"]["regulator"]]
    log_key = requests.get(f"{url}/api/v1/ledger/checkpoint", timeout=5,
                           headers={"Authorization": f"Bearer {served['tokens']['regulator']}"}).json()["log_public_key"]
    key_file = tmp_path / "log.pub"
    key_file.write_text(log_key)
    saved = runner.invoke(main, ["ledger", "checkpoint", "--out", str(tmp_path / "cp.txt"), "--log-key",
                                 str(key_file), *regulator])
    assert saved.exit_code == 0 and "signature verified" in saved.output, saved.output
    runner.invoke(main, ["participant", "enrol", "--name-zh", "新机构", "--name-en", "Newcomer", "--role", "consumer",
                         "--url", url, "--token", served["tokens"]["operator"],
                         "--key", str(served["keys"] / "operator.pem")])
    witnessed = runner.invoke(main, ["witness", *regulator, "--key", str(served["keys"] / "regulator.pem"),
                                     "--log-key", log_key, "--state", str(tmp_path / "w.json")])
    assert witnessed.exit_code == 0, witnessed.output
    participants = json.loads(served["token_file"].read_text())["participants"]
    witness_name = f"pdx.local/ledger/witness/{participants['regulator']}"
    witness_key = public_text(load(served["keys"] / "regulator.pem"))
    exported = runner.invoke(main, ["ledger", "export", "--out", str(tmp_path / "ledger.jsonl"), *regulator])
    assert exported.exit_code == 0, exported.output
    verified = runner.invoke(main, ["audit", "verify", str(tmp_path / "ledger.jsonl"), "--operator-key",
                                    str(key_file), "--since", str(tmp_path / "cp.txt"), "--witness-key",
                                    f"{witness_name}={witness_key}"])
    assert verified.exit_code == 0, verified.output
    assert "verified" in verified.output and witness_name in verified.output
    proved = runner.invoke(main, ["ledger", "prove", "3", "--log-key", log_key, *regulator])
    assert proved.exit_code == 0 and "entry 3" in proved.output, proved.output
    tampered = (tmp_path / "ledger.jsonl").read_text().replace("Newcomer", "Newcomes", 1)
    (tmp_path / "bad.jsonl").write_text(tampered)
    refused = runner.invoke(main, ["audit", "verify", str(tmp_path / "bad.jsonl"), "--operator-key", str(key_file)])
    assert refused.exit_code == 1 and "FAIL" in refused.output
