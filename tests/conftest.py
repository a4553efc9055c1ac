"""Fixtures: an app per test on SQLite (always) and on PostgreSQL (when PDX_TEST_DATABASE_URL is set).

The PostgreSQL run uses a schema of its own (``pdx_test_<pid>``) so it never touches other tables of the
database it is pointed at; it fails loudly when the server cannot be reached, so it is never skipped silently.
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timezone
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

import migrations
from app import create_app
from common.db import Base, build_engine
from exchange.catalog.models import Domain
from exchange.catalog.vocab import SEED_DOMAINS

PG_ENV = "PDX_TEST_DATABASE_URL"
BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get(PG_ENV) else [])


def pytest_report_header(config) -> str:
    return f"pdx database backends: {', '.join(BACKENDS)}"


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
    engine = build_engine(url)
    tables = [table.name for table in Base.metadata.sorted_tables]
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        connection.execute(Domain.__table__.insert(), [
            {"code": d.code, "name_zh": d.name_zh, "name_en": d.name_en, "eu_theme": d.eu_theme,
             "created_at": datetime.now(timezone.utc)}
            for d in SEED_DOMAINS])
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path) -> str:
    """The URL of an empty, migrated database for one test."""
    if request.param == "sqlite":
        path = tmp_path / "pdx.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_url")
    _reset_postgres(url)
    return url


@pytest.fixture
def app(database_url, tmp_path):
    app = create_app({"DATABASE_URL": database_url, "INSTANCE_DIR": str(tmp_path / "instance"),
                      "MAX_BODY_BYTES": 64 * 1024})
    app.config["TESTING"] = True
    yield app
    from common.db import EXTENSION_KEY

    app.extensions[EXTENSION_KEY].engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@dataclass
class Actor:
    """A participant in a test, with its token."""

    id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class World:
    """Creates participants through the real API, starting from a bootstrapped operator."""

    def __init__(self, app, client) -> None:
        from common.db import get_database
        from exchange.participants import services

        self.client = client
        with app.app_context(), get_database().transaction() as session:
            operator, token = services.bootstrap_operator(session, name_zh="运营方", name_en="Operator")
        self.operator = Actor(operator.id, token.secret)

    def participant(self, *roles: str, admit: bool = True, name: str = "机构") -> Actor:
        response = self.client.post("/api/v1/participants", headers=self.operator.headers,
                                    json={"name_zh": name, "name_en": name, "roles": list(roles)})
        assert response.status_code == 201, response.get_json()
        body = response.get_json()
        actor = Actor(body["participant"]["id"], body["token"]["token"])
        if admit:
            admitted = self.client.post(f"/api/v1/participants/{actor.id}/admit", headers=self.operator.headers,
                                        json={})
            assert admitted.status_code == 200, admitted.get_json()
        return actor


@pytest.fixture
def world(app, client) -> World:
    return World(app, client)
