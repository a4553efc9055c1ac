"""Hygiene: private files from their creation on, security headers, nothing cached, rate limits and a lockout
of addresses that keep presenting bad tokens, and commits synced before they are acknowledged."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import uuid

import requests
from sqlalchemy import text

from common import keyfiles
from common.db import build_engine
from tests.attacks.served_scene import provider_node, send, served_env
from tests.servers import PDX, serving


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_pdx_init_creates_the_exchange_database_owner_only(tmp_path):
    env = {**os.environ, "PDX_INSTANCE_DIR": str(tmp_path / "instance")}
    env.pop("PDX_DATABASE_URL", None)
    done = subprocess.run([*PDX, "init", "--key", str(tmp_path / "operator.key")], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    files = [path for path in (tmp_path / "instance").iterdir() if path.name.startswith("pdx.sqlite3")]
    assert files and {path.name: _mode(path) for path in files} == {path.name: 0o600 for path in files}


def test_a_node_creates_its_record_owner_only(app, client, world, tmp_path):
    with provider_node(app, client, world, tmp_path) as (_node, state):
        modes = {path.name: _mode(path) for path in state.iterdir() if path.name.startswith("node.sqlite3")}
    assert "node.sqlite3" in modes and set(modes.values()) == {0o600}, modes


def test_a_private_file_is_never_readable_by_others_even_under_umask_zero(tmp_path):
    previous = os.umask(0)
    try:
        keyfiles.write_private(tmp_path / "tokens.json", b"{}")
        keyfiles.create_private(tmp_path / "db.sqlite3")
    finally:
        os.umask(previous)
    assert _mode(tmp_path / "tokens.json") == 0o600 and _mode(tmp_path / "db.sqlite3") == 0o600


def test_the_exchange_syncs_every_commit_before_acknowledging_it(tmp_path):
    engine = build_engine(f"sqlite:///{tmp_path / 'pdx.sqlite3'}")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
    engine.dispose()


def test_answers_carry_security_headers_and_token_answers_are_never_cached(app, world, database_url):
    with serving(served_env(app, database_url), workers=1) as url:
        operator = world.operator
        enrolled = send(url, "POST", "/api/v1/participants", token=operator.token, key=operator.key,
                        actor=operator.id, body={"name_zh": "新", "name_en": "New", "roles": ["consumer"]})
        minted = send(url, "POST", "/api/v1/participants/me/tokens", token=operator.token, key=operator.key,
                      actor=operator.id, body={})
        public = send(url, "GET", "/api/v1/assets")
        refused = send(url, "GET", "/api/v1/participants", token="pdx_wrong")
    assert enrolled.status_code == 201 and minted.status_code == 201
    for response in (enrolled, minted, public, refused):
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_the_docs_page_policy_allows_exactly_its_own_scripts_and_they_load(app, world, database_url):
    with serving(served_env(app, database_url), workers=1) as url:
        page = requests.get(f"{url}/api/docs", timeout=10)
        policy = page.headers["Content-Security-Policy"]
        sources = re.findall(r'<(?:script src|link href)="([^"]+)"', page.text)
        assets = {source: requests.get(url + source, timeout=10) for source in sources}
    script_src = re.search(r"script-src ([^;]+)", policy).group(1).split()
    from exchange.guards import script_hashes

    assert page.status_code == 200 and "frame-ancestors 'none'" in policy and "'unsafe-inline'" not in script_src
    assert script_src == ["'self'", *script_hashes(page.content)] and len(script_src) == 2
    assert len(sources) == 3 and all(source.startswith("/api/docs/assets/") for source in sources)
    for source, answer in assets.items():
        kind = "text/css" if source.endswith(".css") else "text/javascript"
        assert answer.status_code == 200 and answer.headers["Content-Type"].startswith(kind), source
        assert answer.headers["X-Content-Type-Options"] == "nosniff"


def _hammer_with_bad_tokens(url: str, times: int) -> list[requests.Response]:
    return [send(url, "GET", "/api/v1/participants/me", token=f"pdx_stolen{n}") for n in range(times)]


def test_an_address_that_keeps_presenting_bad_tokens_is_locked_out_with_retry_after(app, world, database_url):
    env = served_env(app, database_url, RATE_LIMIT_BAD_CREDENTIALS="30 per 10 minutes")
    with serving(env, workers=1) as url:
        answers = _hammer_with_bad_tokens(url, 40)
        with_the_right_token = send(url, "GET", "/api/v1/participants/me", token=world.operator.token)
    assert [answer.status_code for answer in answers] == [401] * 30 + [429] * 10
    locked = answers[-1]
    assert locked.headers["Content-Type"] == "application/problem+json"
    assert 0 < int(locked.headers["Retry-After"]) <= 600 and "locked out" in locked.json()["detail"]
    assert with_the_right_token.status_code == 429  # a lockout, not a filter on bad tokens only


def test_the_lockout_is_shared_by_every_worker_through_redis(app, world, database_url):
    env = served_env(app, database_url, RATE_LIMIT_BAD_CREDENTIALS="30 per 10 minutes",
                     RATE_LIMIT_STORAGE="redis://127.0.0.1:6379/0", RATE_LIMIT_KEY_PREFIX=f"pdx-test-{uuid.uuid4()}")
    with serving(env, workers=4) as url:
        answers = _hammer_with_bad_tokens(url, 40)
    assert [answer.status_code for answer in answers] == [401] * 30 + [429] * 10


def test_a_client_over_its_rate_is_told_when_to_come_back(app, world, database_url):
    with serving(served_env(app, database_url, RATE_LIMIT="20 per minute"), workers=1) as url:
        answers = [send(url, "GET", "/api/v1/participants/me", token=world.operator.token) for _ in range(25)]
    assert [answer.status_code for answer in answers] == [200] * 20 + [429] * 5
    assert 0 < int(answers[-1].headers["Retry-After"]) <= 60
