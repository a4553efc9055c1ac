"""The ``pdx`` command against a real database: init, db upgrade/current, demo, and the API commands."""

from __future__ import annotations

import json
import stat

import pytest
from click.testing import CliRunner

import migrations
from client.cli import main


@pytest.fixture
def runner(database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("PDX_DATABASE_URL", database_url)
    monkeypatch.setenv("PDX_INSTANCE_DIR", str(tmp_path / "instance"))
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def test_init_creates_the_operator_with_a_working_token_and_a_local_key(runner, app, client, tmp_path):
    result = runner.invoke(main, ["init", "--json", "--key", "keys/op.key"])
    assert result.exit_code == 0, result.output
    created = json.loads(result.output)
    me = client.get("/api/v1/participants/me", headers={"Authorization": f"Bearer {created['token']}"})
    assert me.status_code == 200
    assert me.get_json()["id"] == created["operator"] and me.get_json()["roles"] == ["operator"]
    key_file = tmp_path / "keys" / "op.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    registered = client.get(f"/api/v1/participants/{created['operator']}/keys",
                            headers={"Authorization": f"Bearer {created['token']}"}).get_json()
    assert [k["id"] for k in registered] == [created["key_id"]]
    assert "PRIVATE KEY" in key_file.read_text() and registered[0]["public_key"] not in key_file.read_text()


def test_second_init_is_refused_and_creates_nothing(runner, app, client):
    first = json.loads(runner.invoke(main, ["init", "--json", "--key", "a.key"]).output)
    second = runner.invoke(main, ["init", "--json", "--key", "b.key"])
    assert second.exit_code != 0 and "already has an operator" in second.output
    listed = client.get("/api/v1/participants?role=operator",
                        headers={"Authorization": f"Bearer {first['token']}"}).get_json()
    assert listed["total"] == 1


def test_db_upgrade_is_idempotent_and_reports_head(runner):
    assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0
    assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0
    assert runner.invoke(main, ["db", "current"]).output.strip() == migrations.head()


def test_keys_generate_refuses_to_overwrite(runner, tmp_path):
    first = runner.invoke(main, ["keys", "generate", "--out", "k.pem"])
    assert first.exit_code == 0 and len(first.output.strip()) == 44
    before = (tmp_path / "k.pem").read_bytes()
    second = runner.invoke(main, ["keys", "generate", "--out", "k.pem"])
    assert second.exit_code != 0 and (tmp_path / "k.pem").read_bytes() == before


def test_expire_due_records_the_expiry_of_grants_whose_window_closed(runner, app, client, world):
    from datetime import datetime, timedelta, timezone

    from tests.support import publish, register, request_grant, scenario_request

    provider, consumer = world.participant("provider"), world.participant("consumer")
    asset = publish(client, provider, register(client, provider)["id"])
    soon = (datetime.now(timezone.utc) + timedelta(milliseconds=300)).isoformat()
    grant = request_grant(client, consumer, scenario_request([asset["id"]], valid_until=soon))
    later = request_grant(client, consumer, scenario_request([asset["id"]]))
    import time

    time.sleep(0.5)
    result = runner.invoke(main, ["grant", "expire-due"])
    assert result.exit_code == 0 and grant["id"] in result.output and later["id"] not in result.output
    assert client.get(f"/api/v1/grants/{grant['id']}", headers=consumer.headers).get_json()["status"] == "expired"
