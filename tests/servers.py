"""Real server processes for tests: `pdx serve` (gunicorn) and `pdx node serve` on free loopback ports.

Every process runs this checkout's CLI (``PDX``: this interpreter with ``-m client.cli``), and tests/conftest.py
puts the checkout first on PYTHONPATH, so a `pdx` installed from another checkout never answers for this one.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

import requests

from common import keyfiles, processes
from common.processes import free_port, pdx_command

PDX = pdx_command()  # spread it: subprocess.run([*PDX, "ledger", "check"], ...)
HEALTH_TIMEOUT_SECONDS = 10


def app_env(app, database_url: str) -> dict[str, str]:
    """The environment that makes a served exchange use the same database, log key and origin as ``app``."""
    return {**os.environ, "PDX_DATABASE_URL": database_url, "PDX_LOG_KEY_FILE": app.config["PDX_LOG_KEY_FILE"],
            "PDX_LEDGER_ORIGIN": "test.pdx/ledger", "PDX_INSTANCE_DIR": app.config["PDX_INSTANCE_DIR"]}


@contextlib.contextmanager
def serving(env: dict[str, str], *, workers: int = 4, extra: tuple[str, ...] = ("--skip-ledger-check",),
            cwd: Path | None = None) -> Iterator[str]:
    """Run `pdx serve` with gunicorn until the block ends; yield its base URL once /health answers."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            requests.get(f"{url}/api/v1/health", timeout=HEALTH_TIMEOUT_SECONDS)
            return True
        except requests.RequestException:
            return False

    with processes.running([*PDX, "serve", "--port", str(port), "--workers", str(workers), *extra], answers,
                           what=f"pdx serve on port {port}", env=env, cwd=cwd):
        yield url


def start_node(config: str, port: int) -> subprocess.Popen:
    """Start `pdx node serve` with ``config``; return the process once its health endpoint answers."""
    errors = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")
    process = subprocess.Popen([*PDX, "node", "serve", "--config", config], stdout=subprocess.DEVNULL,
                               stderr=errors, text=True)

    def answers() -> bool:
        try:
            requests.get(f"http://127.0.0.1:{port}/v1/health", timeout=HEALTH_TIMEOUT_SECONDS)
            return True
        except requests.RequestException:
            return False

    try:
        processes.wait_ready(process, answers, what=f"the node of {config} on port {port}", errors=errors)
    finally:
        errors.close()
    return process


def node_config(tmp_path, name: str, provider, asset: str, port: int, log_key: str, issuer: str, *,
                dataset: str | None = None, grade: int = 2, id_column: str = "uscc"):
    """Write a node's key and config for one CSV dataset (``<name>.csv``); return the config's path."""
    keyfiles.save(provider.key, tmp_path / f"{name}.key")
    config = tmp_path / f"{name}.toml"
    config.write_text(f'participant_id = "{provider.id}"\nkey_file = "{name}.key"\nexchange_public_key = "{log_key}"\n'
                      f'issuer = "{issuer}"\nstate_dir = "{name}-state"\nport = {port}\n\n[[datasets]]\n'
                      f'asset = "{asset}"\nname = "{dataset or name}"\ngrade = {grade}\nsource = "csv"\n'
                      f'location = "{name}.csv"\nid_column = "{id_column}"\n')
    return config
