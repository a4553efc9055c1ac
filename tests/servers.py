"""Real server processes for tests: `pdx serve` (gunicorn) on a free loopback port."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import requests

PDX = str(Path(sys.executable).parent / "pdx")
START_TIMEOUT_SECONDS = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def app_env(app, database_url: str) -> dict[str, str]:
    """The environment that makes a served exchange use the same database, log key and origin as ``app``."""
    return {**os.environ, "PDX_DATABASE_URL": database_url, "PDX_LOG_KEY_FILE": app.config["PDX_LOG_KEY_FILE"],
            "PDX_LEDGER_ORIGIN": "test.pdx/ledger", "PDX_INSTANCE_DIR": app.config["PDX_INSTANCE_DIR"]}


@contextlib.contextmanager
def serving(env: dict[str, str], *, workers: int = 4, extra: tuple[str, ...] = ("--skip-ledger-check",),
            cwd: Path | None = None) -> Iterator[str]:
    """Run `pdx serve` with gunicorn until the block ends; yield its base URL once /health answers."""
    port = free_port()
    server = subprocess.Popen([PDX, "serve", "--port", str(port), "--workers", str(workers), *extra], env=env,
                              cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            try:
                requests.get(f"{url}/api/v1/health", timeout=10)
                break
            except requests.RequestException:
                if server.poll() is not None or time.monotonic() > deadline:
                    server.kill()
                    raise AssertionError(f"pdx serve did not start: {server.stderr.read()}") from None
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
