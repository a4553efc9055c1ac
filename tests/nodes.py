"""Two providers' nodes and a served exchange, for tests that run jobs end to end.

``exchange_with_nodes`` runs them as real processes (`pdx node serve`, `pdx serve`); ``exchange_in_process`` calls
the nodes' apps in process from an exchange served in a thread (tests/inprocess.py), for tests of the exchange's
job logic rather than of the processes; ``shared_exchange_with_nodes`` is the real one shared by a module. Each
yields a dict: ``url`` (the served exchange), ``app`` and ``client`` (the in-process app and test client on the
same database), ``consumer``, ``providers``, ``assets`` (tax's, hr's), ``frames`` (each node's rows), ``configs``
(each node's config file), ``ports``, ``processes`` (none in process) and ``grant(**terms)``, which makes an
active grant over both assets. Each asset declares ``uscc`` (identifier), ``revenue``, ``employees`` (numbers)
and ``industry`` (category), allows he-statistics and he-scoring, and holds ``ROWS`` rows.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np
import pandas as pd
import pytest

from ledger import service
from tests.inprocess import endpoint, exchange_and_nodes
from tests.servers import free_port, node_config
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


@contextlib.contextmanager
def _exchange(app, client, world, database_url, tmp_path, *, real: bool) -> Iterator[dict]:
    rng = np.random.default_rng(41)
    with app.app_context():
        log_key, issuer = service.public_key_text(), service.identity().origin
    providers, assets, frames, configs, ports = [], [], [], [], []
    for number, name in enumerate(("tax", "hr")):
        provider = world.participant("provider", name=name)
        port = free_port()
        asset = publish(client, provider, register(client, provider, fields=FIELDS, grade=2, computation_kinds=KINDS,
                                                   node_endpoint=endpoint(port))["id"])["id"]
        frame = _frame(rng, f"9137{number}")
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        providers.append(provider)
        assets.append(asset)
        frames.append(frame)
        configs.append(node_config(tmp_path, name, provider, asset, port, log_key, issuer))
        ports.append(port)
    consumer = world.participant("consumer", name="bank")

    def grant(**terms) -> str:
        body = request_grant(client, consumer, scenario_request(assets, **{"computation_kinds": KINDS,
                                                                          "max_rows": 100_000, **terms}))
        for provider in providers:
            body = grant_action(client, provider, body["id"], "approve")
        assert body["status"] == "active"
        return body["id"]

    with exchange_and_nodes(app, database_url, dict(zip(ports, configs)), real=real) as served:
        yield {"url": served["url"], "app": app, "client": client, "consumer": consumer, "providers": providers,
               "assets": assets, "frames": frames, "configs": configs, "ports": ports,
               "processes": served["processes"], "grant": grant}


@pytest.fixture
def exchange_with_nodes(app, client, world, database_url, tmp_path):
    """The scene with real `pdx node serve` processes and a `pdx serve` exchange."""
    with _exchange(app, client, world, database_url, tmp_path, real=True) as net:
        yield net


@pytest.fixture(scope="module")
def shared_exchange_with_nodes(module_app, module_client, module_world, tmp_path_factory):
    """The real-process scene once per module, for tests that each make grants of their own and change nothing
    another test reads (none stops a node or counts the whole ledger)."""
    with _exchange(module_app, module_client, module_world, module_app.config["PDX_DATABASE_URL"],
                   tmp_path_factory.mktemp("nodes"), real=True) as net:
        yield net


@pytest.fixture
def exchange_in_process(app, client, world, database_url, tmp_path):
    """The same scene with the nodes' apps called in process by an exchange served from a thread (no processes)."""
    with _exchange(app, client, world, database_url, tmp_path, real=False) as net:
        yield net
