"""Several server processes appending at once: no gaps, no duplicates, one consistent tree.

A real gunicorn with four worker processes serves the test database (SQLite and PostgreSQL); sixteen client
threads enrol participants concurrently, each request signed by the operator. Every enrolment must become exactly
one entry, the sequence numbers must run without gaps, and the stored tree must verify.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from client.signing import signature_headers
from common.db import get_database
from ledger import check, log, service
from tests.servers import app_env, serving

pytestmark = pytest.mark.sql  # concurrent appends rely on the database's locking

REQUESTS = 48
THREADS = 16


def test_concurrent_server_processes_append_without_gaps(app, world, database_url):
    with app.app_context(), get_database().sessionmaker() as session:
        before = log.size(session)
    operator = world.operator

    def enrol(url: str, number: int) -> int:
        body = {"name_zh": f"并发机构{number}", "name_en": f"Concurrent {number}", "roles": ["consumer"]}
        headers = {**operator.headers, **signature_headers(operator.key, actor=operator.id, method="POST",
                                                           path="/api/v1/participants", body=body)}
        return requests.post(f"{url}/api/v1/participants", json=body, headers=headers, timeout=60).status_code

    with serving(app_env(app, database_url)) as url, ThreadPoolExecutor(THREADS) as pool:
        statuses = list(pool.map(lambda number: enrol(url, number), range(REQUESTS)))
    assert statuses == [201] * REQUESTS
    with app.app_context(), get_database().sessionmaker() as session:
        rows = log.entry_rows(session, 0, log.size(session))
        assert [row.seq for row in rows] == list(range(before + REQUESTS))
        assert sum(row.type == "participant.enrolled" for row in rows[before:]) == REQUESTS
        identity = service.identity()
        result = check.check(session, identity.origin, identity.key.public_key(), full=True)
    assert result.size == before + REQUESTS and result.signatures_verified == before + REQUESTS
