"""Two providers with real `pdx node serve` processes and a served exchange, for tests that run jobs end to end.

``exchange_with_nodes`` yields a dict: ``url`` (the served exchange), ``client`` (the in-process test client on
the same database), ``consumer``, ``providers``, ``assets`` (tax's, hr's), ``frames`` (each node's rows),
``configs`` (each node's config file), ``processes`` and ``grant(**terms)``, which makes an active grant over both
assets. Each asset declares ``uscc`` (identifier), ``revenue``, ``employees`` (numbers) and ``industry``
(category), allows he-statistics and he-scoring, and holds ``ROWS`` rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ledger import service
from tests.servers import app_env, free_port, node_config, serving
from tests.servers import start_node as _start_node
from tests.support import grant_action, publish, register, request_grant, scenario_request

ROWS = 2400
INDUSTRIES = ("manufacturing", "retail", "logistics")
# The providers open uscc to filters too: these tests drive the nodes' own refusals with a filter on one id
# (tests/attacks/test_tracker_attacks.py shows why a real provider keeps identifiers closed).
FIELDS = [{"name": "uscc", "type": "identifier", "filterable": True}, {"name": "revenue", "type": "number"},
          {"name": "employees", "type": "integer"}, {"name": "industry", "type": "category", "filterable": True}]
KINDS = ["he-statistics", "he-scoring"]


def _frame(rng: np.random.Generator, prefix: str) -> pd.DataFrame:
    return pd.DataFrame({"uscc": [f"{prefix}{i:06d}" for i in range(ROWS)],
                         "revenue": rng.lognormal(5.0, 1.0, ROWS).round(2),
                         "employees": rng.integers(1, 400, ROWS).astype(float),
                         "industry": rng.choice(INDUSTRIES, ROWS)})


@pytest.fixture
def exchange_with_nodes(app, client, world, database_url, tmp_path):
    rng = np.random.default_rng(41)
    with app.app_context():
        log_key, issuer = service.public_key_text(), service.identity().origin
    providers, assets, frames, configs, processes, ports = [], [], [], [], [], []
    for number, name in enumerate(("tax", "hr")):
        provider = world.participant("provider", name=name)
        port = free_port()
        asset = publish(client, provider, register(client, provider, fields=FIELDS, grade=2, computation_kinds=KINDS,
                                                   node_endpoint=f"http://127.0.0.1:{port}")["id"])["id"]
        frame = _frame(rng, f"9137{number}")
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        config = node_config(tmp_path, name, provider, asset, port, log_key, issuer)
        processes.append(_start_node(str(config), port))
        providers.append(provider)
        assets.append(asset)
        frames.append(frame)
        configs.append(config)
        ports.append(port)
    consumer = world.participant("consumer", name="bank")

    def grant(**terms) -> str:
        body = request_grant(client, consumer, scenario_request(assets, **{"computation_kinds": KINDS,
                                                                          "max_rows": 100_000, **terms}))
        for provider in providers:
            body = grant_action(client, provider, body["id"], "approve")
        assert body["status"] == "active"
        return body["id"]

    env = {**app_env(app, database_url), "PDX_JOB_WORKERS": "2"}
    try:
        with serving(env, workers=1) as url:
            yield {"url": url, "client": client, "consumer": consumer, "providers": providers, "assets": assets,
                   "frames": frames, "configs": configs, "ports": ports, "processes": processes, "grant": grant}
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=20)
