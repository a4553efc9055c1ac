"""Real server processes for tests: `pdx serve` (gunicorn) and `pdx node serve` on free loopback ports."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import requests

from common import keyfiles, processes
from common.processes import free_port

PDX = str(Path(sys.executable).parent / "pdx")
START_TIMEOUT_SECONDS = 60


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
            requests.get(f"{url}/api/v1/health", timeout=10)
            return True
        except requests.RequestException:
            return False

    with processes.running([PDX, "serve", "--port", str(port), "--workers", str(workers), *extra], answers,
                           what="pdx serve", timeout=START_TIMEOUT_SECONDS, env=env, cwd=cwd):
        yield url


def start_node(config: str, port: int) -> subprocess.Popen:
    """Start `pdx node serve` with ``config``; return the process once its health endpoint answers."""
    process = subprocess.Popen([PDX, "node", "serve", "--config", config], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(f"http://127.0.0.1:{port}/v1/health", timeout=5)
            return process
        except requests.RequestException:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise AssertionError(f"node did not start: {process.stderr.read()}") from None
            time.sleep(0.2)


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
