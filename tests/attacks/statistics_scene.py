"""A real scene for attacks on statistics: a served exchange (gunicorn) on its own SQLite database, one
`pdx node serve` process per provider mounting a CSV, and a consumer holding grants over every asset."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from app import create_app
from common import keyfiles
from ledger import service
from tests.conftest import SigningClient, World
from tests.servers import app_env, free_port, node_config, serving
from tests.servers import start_node as _start_node
from tests.support import grant_action, publish, register, request_grant, scenario_request


def _fields(frame: pd.DataFrame, id_column: str, filterable: frozenset[str] | None) -> list[dict[str, Any]]:
    def kind(name: str) -> str:
        if name == id_column:
            return "identifier"
        return "number" if pd.api.types.is_numeric_dtype(frame[name]) else "category"

    return [{"name": name, "type": kind(name), "filterable": filterable is None or name in filterable}
            for name in frame.columns]


@contextlib.contextmanager
def statistics_scene(root: Path, template: Path, frames: dict[str, pd.DataFrame], grants: dict[str, dict[str, Any]],
                     *, id_column: str = "uscc", kinds: tuple[str, ...] = ("he-statistics",),
                     filterable: frozenset[str] | None = None, no_dp_exception: tuple[str, ...] = (),
                     settings: dict[str, str] | None = None) -> Iterator[dict]:
    """Serve an exchange and one node per frame; ``grants`` maps a name to term overrides for a grant over all.

    The assets are grade 3; the fields in ``filterable`` (None: every field) are declared filterable; the grants
    named in ``no_dp_exception`` are co-approved with the regulator's exception to differential privacy, which
    statistics without ε on grade ≥ 3 need. ``settings`` are PDX_<name> values of the served exchange."""
    database = root / "pdx.sqlite3"
    shutil.copy(template, database)
    instance = root / "instance"
    keyfiles.generate(instance / "log.key")
    app = create_app({"DATABASE_URL": f"sqlite:///{database}", "INSTANCE_DIR": str(instance),
                      "LEDGER_ORIGIN": "test.pdx/ledger", "JOB_WORKERS": 0})
    app.test_client_class = SigningClient
    client = app.test_client()
    world = World(app, client)
    with app.app_context():
        log_key, issuer = service.public_key_text(), service.identity().origin
    assets, processes = [], []
    try:
        for name, frame in frames.items():
            provider = world.participant("provider", name=name)
            port = free_port()
            asset = publish(client, provider, register(client, provider, fields=_fields(frame, id_column, filterable), grade=3,
                                                       computation_kinds=list(kinds),
                                                       node_endpoint=f"http://127.0.0.1:{port}")["id"])
            frame.to_csv(root / f"{name}.csv", index=False)
            config = node_config(root, name, provider, asset["id"], port, log_key, issuer, grade=3,
                                 id_column=id_column)
            processes.append(_start_node(str(config), port))
            assets.append((asset["id"], provider))
        consumer = world.participant("consumer", name="bank")
        regulator = world.participant("regulator", name="regulator")
        ids, providers = {}, [provider for _, provider in assets]
        for label, overrides in grants.items():
            grant = request_grant(client, consumer, scenario_request([a for a, _ in assets], **{
                "computation_kinds": list(kinds), **overrides}))
            for _, provider in assets:
                grant = grant_action(client, provider, grant["id"], "approve")
            if grant["status"] != "active":
                exception = {"dp_exception": True, "reason": "statistics office's exact tables, reviewed"} \
                    if label in no_dp_exception else {}
                grant = grant_action(client, regulator, grant["id"], "co-approve", exception)
            assert grant["status"] == "active", grant
            ids[label] = grant["id"]
        env = {**app_env(app, f"sqlite:///{database}"), "PDX_JOB_WORKERS": "2",
               **{f"PDX_{name}": value for name, value in (settings or {}).items()}}
        with serving(env, workers=1) as url:
            yield {"url": url, "consumer": consumer, "regulator": regulator, "providers": providers, "grants": ids, "assets": [a for a, _ in assets],
                   "pooled": pd.concat(frames.values(), ignore_index=True), "client": client, "app": app}
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=20)
        from common.db import EXTENSION_KEY

        app.extensions[EXTENSION_KEY].engine.dispose()
