"""Real processes for the hardening attacks: a served exchange over the test's database, and one provider node."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from client.signing import signature_headers
from common import keyfiles
from common.processes import free_port
from ledger import service
from tests.integration.test_compute_to_data import FIELDS, _enterprises
from tests.servers import app_env
from tests.servers import start_node as _start_node
from tests.support import publish, register


def served_env(app, database_url: str, **settings: str) -> dict[str, str]:
    """The environment of `pdx serve` over the test's database, with PDX_<name> ``settings`` on top."""
    return {**app_env(app, database_url), **{f"PDX_{name}": value for name, value in settings.items()}}


def send(url: str, method: str, path: str, *, token: str | None = None, body: Any = None,
         raw: bytes | None = None, key: Ed25519PrivateKey | None = None, actor: str | None = None
         ) -> requests.Response:
    """Send one request as an outsider would, optionally signed with ``key`` as ``actor``."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if key is not None:
        headers.update(signature_headers(key, actor=actor, method=method, path=path, body=body))
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    return requests.request(method, url + path, data=data, headers=headers, timeout=60)


@contextlib.contextmanager
def provider_node(app, client, world, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Run `pdx node serve` for a provider with one published asset; yield its URL and its state folder."""
    with app.app_context():
        log_key, issuer = service.public_key_text(), service.identity().origin
    provider = world.participant("provider", name="tax")
    port = free_port()
    asset = publish(client, provider, register(client, provider, fields=FIELDS, grade=2,
                                               computation_kinds=["he-statistics", "aggregate"],
                                               node_endpoint=f"http://127.0.0.1:{port}")["id"])
    _enterprises(np.random.default_rng(5), 200, "9137").to_csv(tmp_path / "tax.csv", index=False)
    keyfiles.save(provider.key, tmp_path / "tax.key")
    config = tmp_path / "tax.toml"
    config.write_text(f'participant_id = "{provider.id}"\nkey_file = "tax.key"\nexchange_public_key = "{log_key}"\n'
                      f'issuer = "{issuer}"\nstate_dir = "tax-state"\nport = {port}\n\n[[datasets]]\n'
                      f'asset = "{asset["id"]}"\nname = "tax_enterprises"\ngrade = 2\nsource = "csv"\n'
                      f'location = "tax.csv"\nid_column = "uscc"\n')
    process = _start_node(str(config), port)
    try:
        yield f"http://127.0.0.1:{port}", tmp_path / "tax-state"
    finally:
        process.terminate()
        process.wait(timeout=30)
