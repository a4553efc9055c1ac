"""Several server processes appending at once: no gaps, no duplicates, one consistent tree.

A real gunicorn with four worker processes serves the test database (SQLite and PostgreSQL); sixteen client
threads enrol participants concurrently, each request signed by the operator. Every enrolment must become exactly
one entry, the sequence numbers must run without gaps, and the stored tree must verify.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from client.signing import signature_headers
from common.db import get_database
from ledger import check, log, service

PDX = str(Path(sys.executable).parent / "pdx")
REQUESTS = 48
THREADS = 16


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _serve(app, database_url: str, port: int) -> subprocess.Popen:
    env = {**os.environ, "PDX_DATABASE_URL": database_url, "PDX_LOG_KEY_FILE": app.config["PDX_LOG_KEY_FILE"],
           "PDX_LEDGER_ORIGIN": "test.pdx/ledger", "PDX_INSTANCE_DIR": app.config["PDX_INSTANCE_DIR"]}
    server = subprocess.Popen([PDX, "serve", "--port", str(port), "--workers", "4", "--skip-ledger-check"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2)
            return server
        except requests.ConnectionError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise AssertionError(f"gunicorn did not start: {server.stderr.read()}")
            time.sleep(0.2)


def test_concurrent_server_processes_append_without_gaps(app, world, database_url):
    with app.app_context(), get_database().sessionmaker() as session:
        before = log.size(session)
    port = _free_port()
    server = _serve(app, database_url, port)
    operator = world.operator

    def enrol(number: int) -> int:
        body = {"name_zh": f"并发机构{number}", "name_en": f"Concurrent {number}", "roles": ["consumer"]}
        headers = {**operator.headers, **signature_headers(operator.key, actor=operator.id, method="POST",
                                                           path="/api/v1/participants", body=body)}
        return requests.post(f"http://127.0.0.1:{port}/api/v1/participants", json=body, headers=headers,
                             timeout=60).status_code

    try:
        with ThreadPoolExecutor(THREADS) as pool:
            statuses = list(pool.map(enrol, range(REQUESTS)))
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert statuses == [201] * REQUESTS
    with app.app_context(), get_database().sessionmaker() as session:
        rows = log.entry_rows(session, 0, log.size(session))
        assert [row.seq for row in rows] == list(range(before + REQUESTS))
        assert sum(row.type == "participant.enrolled" for row in rows[before:]) == REQUESTS
        identity = service.identity()
        result = check.check(session, identity.origin, identity.key.public_key(), full=True)
    assert result.size == before + REQUESTS and result.signatures_verified == before + REQUESTS
