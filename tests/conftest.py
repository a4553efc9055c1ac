"""Fixtures: an app per test on SQLite (always) and, for tests marked ``sql``, on PostgreSQL too (when
PDX_TEST_DATABASE_URL is set). docs/testing.md says which tests are marked and why.

The PostgreSQL run uses a schema of its own (``pdx_test_<pid>``) so it never touches other tables of the
database it is pointed at; it fails loudly when the server cannot be reached, so it is never skipped silently.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

import migrations
from app import create_app
from catalog.models import Domain
from catalog.vocab import SEED_DOMAINS
from client.signing import SIGNED_METHODS, signature_headers
from common import keyfiles, processes
from common.db import EXTENSION_KEY, Base, build_engine
from exchange import bootstrap
from ledger.log import HEAD_ID
from ledger.models import LedgerHead
from participants.keys import approval, endorsement, public_text, registration_body

pytest_plugins = ("tests.nodes",)  # exchange_with_nodes, exchange_in_process: provider nodes for job tests

PG_ENV = "PDX_TEST_DATABASE_URL"
# In-process tests send thousands of requests, many deliberately unauthenticated, all from 127.0.0.1; the
# limits themselves are tested through a served exchange in tests/attacks/test_hygiene.py.
GENEROUS_RATE_LIMITS = {"RATE_LIMIT": "1000000 per minute", "RATE_LIMIT_BAD_CREDENTIALS": "1000000 per minute"}
# Every process a test starts (`pdx serve`, `pdx node serve`, the CLI, gunicorn's workers) imports this checkout.
os.environ["PYTHONPATH"] = processes.checkout_env()["PYTHONPATH"]
BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get(PG_ENV) else [])
# Tests whose behaviour depends on the database run on every backend; the rest on SQLite only.
SQL_MARKER = "sql"
RESET_LOCK_TIMEOUT = "60s"


def pytest_report_header(config) -> str:
    if len(BACKENDS) == 1:
        return f"pdx database backends: {BACKENDS[0]}"
    return f"pdx database backends: {', '.join(BACKENDS)} for tests marked {SQL_MARKER}; {BACKENDS[0]} for the rest"


def pytest_generate_tests(metafunc) -> None:
    """Run a test that needs a database on every backend when it is marked ``sql``, else on SQLite alone."""
    if "backend" in metafunc.fixturenames:
        backends = BACKENDS if metafunc.definition.get_closest_marker(SQL_MARKER) else BACKENDS[:1]
        metafunc.parametrize("backend", backends, indirect=True, scope="module")


@pytest.fixture(autouse=True)
def pdx_home(tmp_path, monkeypatch) -> Path:
    """Every test's SDK job store (keys of the jobs it submits) in its own folder, never under ~/.pdx."""
    home = tmp_path / "pdx-home"
    monkeypatch.setenv("PDX_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A migrated SQLite file that each test copies (faster than migrating per test)."""
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    engine = build_engine(f"sqlite:///{path}")
    migrations.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A migrated schema of its own on the PostgreSQL server named by PDX_TEST_DATABASE_URL."""
    base_url = os.environ[PG_ENV]
    schema = f"pdx_test_{os.getpid()}"
    admin = create_engine(base_url)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # noqa: BLE001 - any failure here must stop the run, with the reason
        pytest.exit(f"{PG_ENV} is set but PostgreSQL is unreachable: {exc}", returncode=3)
    url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    url_text = url.render_as_string(hide_password=False)
    engine = build_engine(url_text)
    migrations.upgrade(engine)
    engine.dispose()
    yield url_text
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def _reset_postgres(url: str) -> None:
    """Empty every table and put back what the migrations seed (domains, the ledger head row).

    A connection an earlier test left open in a transaction would make the TRUNCATE wait for ever: the lock
    timeout turns that into an error naming the cause.
    """
    engine = build_engine(url)
    tables = [table.name for table in Base.metadata.sorted_tables]
    with engine.begin() as connection:
        connection.execute(text(f"SET LOCAL lock_timeout = '{RESET_LOCK_TIMEOUT}'"))
        try:
            connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        except OperationalError as exc:
            raise RuntimeError("emptying the PostgreSQL test schema waited over "
                               f"{RESET_LOCK_TIMEOUT} for a lock: an earlier test left a connection open in a "
                               "transaction (use `with engine.connect() as connection:`)") from exc
        connection.execute(Domain.__table__.insert(), [
            {"code": d.code, "name_zh": d.name_zh, "name_en": d.name_en, "eu_theme": d.eu_theme,
             "created_at": datetime.now(timezone.utc)}
            for d in SEED_DOMAINS])
        connection.execute(LedgerHead.__table__.insert(), [{"id": HEAD_ID, "size": 0, "last_time": "", "frontier": b""}])
    engine.dispose()


@pytest.fixture(scope="module")
def backend(request) -> str:
    """The database backend of a test (parametrized by ``pytest_generate_tests``)."""
    return request.param


def fresh_database(request, backend: str, folder: Path) -> str:
    """Return the URL of an empty, migrated database on ``backend`` (a SQLite file in ``folder``)."""
    if backend == "sqlite":
        path = folder / "pdx.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_url")
    _reset_postgres(url)
    return url


@pytest.fixture
def database_url(request, backend, tmp_path) -> str:
    """The URL of an empty, migrated database for one test."""
    return fresh_database(request, backend, tmp_path)


@contextlib.contextmanager
def built_app(database_url: str, folder: Path) -> Iterator[Flask]:
    """An exchange app on ``database_url`` with its instance folder (log key) under ``folder``."""
    instance = folder / "instance"
    keyfiles.generate(instance / "log.key")
    app = create_app({"DATABASE_URL": database_url, "INSTANCE_DIR": str(instance), "MAX_BODY_BYTES": 2 * 1024 * 1024,
                      "LEDGER_ORIGIN": "test.pdx/ledger", "JOB_WORKERS": 0,
                      **GENEROUS_RATE_LIMITS})
    app.config["TESTING"] = True
    app.test_client_class = SigningClient
    try:
        yield app
    finally:
        app.extensions[EXTENSION_KEY].engine.dispose()


@pytest.fixture
def app(database_url, tmp_path):
    with built_app(database_url, tmp_path) as app:
        yield app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def module_app(request, backend, tmp_path_factory):
    """One app per module and backend, for modules whose tests only read the scene they share, or add to it
    without touching what another test reads (tests/integration/test_auth_matrix.py)."""
    folder = tmp_path_factory.mktemp("module-app")
    with built_app(fresh_database(request, backend, folder), folder) as app:
        yield app


@pytest.fixture(scope="module")
def module_client(module_app):
    return module_app.test_client()


@pytest.fixture(scope="module")
def module_world(module_app, module_client) -> World:
    return World(module_app, module_client)


@dataclass
class Actor:
    """A participant in a test, with its token and (once it has registered one) its signing key."""

    id: str
    token: str
    key: Ed25519PrivateKey | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class SigningClient(FlaskClient):
    """The Flask test client, signing state-changing requests as the SDK does.

    A request whose bearer token belongs to a known actor is signed with that actor's key; a key
    registration is signed with the key it registers when the test generated it through ``new_key``.
    A request that already carries PDX-Signature, or is sent with ``sign=False``, goes out as it is.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.actors: dict[str, Actor] = {}
        self.keyring: dict[str, Ed25519PrivateKey] = {}

    def new_key(self) -> Ed25519PrivateKey:
        key = Ed25519PrivateKey.generate()
        self.keyring[public_text(key)] = key
        return key

    def open(self, *args, sign: bool = True, **kwargs):
        method = (kwargs.get("method") or "GET").upper()
        headers = dict(kwargs.get("headers") or {})
        token = headers.get("Authorization", "").removeprefix("Bearer ")
        actor = self.actors.get(token)
        if sign and actor is not None and method in SIGNED_METHODS and "PDX-Signature" not in headers:
            path = args[0] if args else kwargs["path"]
            body = kwargs["json"] if "json" in kwargs else _json_or_none(kwargs.get("data"))
            key = actor.key
            if path.split("?")[0].endswith("/me/keys") and isinstance(body, dict):
                key = self.keyring.get(body.get("public_key"), key)
            if key is not None:
                headers.update(signature_headers(key, actor=actor.id, method=method, path=path, body=body))
                kwargs["headers"] = headers
        return super().open(*args, **kwargs)


def _json_or_none(data) -> object:
    if not data:
        return None
    try:
        return json.loads(data)
    except (UnicodeDecodeError, ValueError):
        return None


class World:
    """Creates participants through the real API, starting from a bootstrapped operator with a key."""

    def __init__(self, app, client: SigningClient) -> None:
        self.client = client
        key = client.new_key()
        with app.app_context():
            operator, token, _ = bootstrap.bootstrap_operator("运营方", "Operator", key)
        self.operator = self.actor(Actor(operator.id, token.secret, key))

    def actor(self, actor: Actor) -> Actor:
        self.client.actors[actor.token] = actor
        return actor

    def register_key(self, actor: Actor) -> Ed25519PrivateKey:
        """Register a new key for ``actor``: endorsed by its first key, or approved by the operator if it has none."""
        key = self.client.new_key()
        public = public_text(key)
        if actor.key is not None:
            vouch = {"endorsement": endorsement(actor.key, actor.id, public)}
        else:
            vouch = {"approval": approval(self.operator.key, self.operator.id, actor.id, public,
                                          datetime.now(timezone.utc))}
        response = self.client.post("/api/v1/participants/me/keys", headers=actor.headers,
                                    json={**registration_body(key, actor.id), **vouch})
        assert response.status_code == 201, response.get_json()
        actor.key = actor.key or key
        return key

    def participant(self, *roles: str, admit: bool = True, name: str = "机构") -> Actor:
        response = self.client.post("/api/v1/participants", headers=self.operator.headers,
                                    json={"name_zh": name, "name_en": name, "roles": list(roles)})
        assert response.status_code == 201, response.get_json()
        body = response.get_json()
        actor = self.actor(Actor(body["participant"]["id"], body["token"]["token"]))
        if admit:
            admitted = self.client.post(f"/api/v1/participants/{actor.id}/admit", headers=self.operator.headers,
                                        json={})
            assert admitted.status_code == 200, admitted.get_json()
            self.register_key(actor)
        return actor


@pytest.fixture
def world(app, client) -> World:
    return World(app, client)


@pytest.fixture(scope="session")
def public_context() -> bytes:
    """A consumer's public CKKS context (no secret key), made once: HE jobs carry one."""
    from privacy.he import ConsumerKeys

    return ConsumerKeys().public_context()
