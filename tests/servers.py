"""Real server processes for tests: `pdx serve` (gunicorn) on a free loopback port."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Iterator

import requests

from common import processes
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
