"""Provider nodes and a served exchange inside the test process, for tests of the exchange's job logic.

``InProcessNodes`` is a ``jobs.nodes.NodeClient`` that sends each node's own Flask app (``create_node_app``, from
the node's config file) exactly the headers and body ``HttpNodeClient`` sends, and reads its answer the same way
(``answer_of``); it skips only what is about the TCP connection: the address policy, the pinned connection and the
node's proof of identity, which tests/attacks/ and the end-to-end tests check against real `pdx node serve`
processes. ``exchange_and_nodes`` gives a job test either kind: real processes (a `pdx serve` and one `pdx node
serve` per config) or the exchange served from a thread of this process over ``InProcessNodes``, which spares a
test the seconds each process takes to import the scientific stack.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any, Iterator, Mapping

from flask import Flask
from werkzeug.serving import make_server

from app import create_app
from common.db import EXTENSION_KEY as DATABASE_KEY
from jobs import runner
from jobs.nodes import NodeCall, NodeFailure, answer_of
from provider.app import create_node_app
from provider.config import load as load_node_config
from tests.conftest import GENEROUS_RATE_LIMITS
from tests.servers import app_env, serving, start_node

JOB_WORKERS = 2
STOP_SECONDS = 60
REAL_PROCESSES = "real_processes"  # the marker of a job test that needs real node processes (it kills one, say)


def wants_processes(request) -> bool:
    """Whether the requesting test is marked to run with real `pdx node serve` and `pdx serve` processes."""
    return request.node.get_closest_marker(REAL_PROCESSES) is not None


def endpoint(port: int) -> str:
    """The node endpoint a test's asset declares for a node on ``port``."""
    return f"http://127.0.0.1:{port}"


class InProcessNodes:
    """Calls each provider's node app in this process, as ``HttpNodeClient`` calls it over HTTP."""

    def __init__(self, apps: Mapping[str, Flask]) -> None:
        self.apps = {url.rstrip("/"): app for url, app in apps.items()}

    def run(self, call: NodeCall, timeout: float) -> dict[str, Any]:
        """Send the node its call; a node that is not there did not answer, as an unreachable one."""
        app = self.apps.get(call.endpoint.rstrip("/"))
        if app is None:
            raise NodeFailure(f"provider node {call.endpoint} of {call.provider_id} did not answer: ConnectionError",
                              refused=True)
        response = app.test_client().post("/v1/jobs/run", json=call.body(), headers=call.headers())
        return answer_of(call.provider_id, response.status_code, response.get_json(silent=True))


@contextlib.contextmanager
def serving_in_process(app: Flask, database_url: str, nodes: InProcessNodes, *,
                       workers: int = JOB_WORKERS) -> Iterator[str]:
    """Serve the exchange from a thread on ``app``'s database, log key and origin, its job runner calling ``nodes``;
    yield its base URL, and stop the server and the runner (waiting for the jobs it runs) when the block ends."""
    served = create_app({"DATABASE_URL": database_url, "INSTANCE_DIR": app.config["PDX_INSTANCE_DIR"],
                         "LOG_KEY_FILE": app.config["PDX_LOG_KEY_FILE"],
                         "LEDGER_ORIGIN": app.config["PDX_LEDGER_ORIGIN"], "JOB_WORKERS": workers,
                         **GENEROUS_RATE_LIMITS}, nodes=nodes)
    server = make_server("127.0.0.1", 0, served, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="pdx-test-exchange", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=STOP_SECONDS)
        pool = served.extensions[runner.EXTENSION_KEY].pool
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        served.extensions[DATABASE_KEY].engine.dispose()


@contextlib.contextmanager
def exchange_and_nodes(app: Flask, database_url: str, configs: Mapping[int, Path], *, real: bool,
                       workers: int = JOB_WORKERS) -> Iterator[dict[str, Any]]:
    """Run one node per ``configs`` item (port → config file) and serve the exchange; yield ``url`` and
    ``processes`` (the node processes, in the order of ``configs``; none in process).

    ``real`` starts `pdx node serve` and `pdx serve` processes; otherwise the nodes are Flask apps in this process,
    called through ``InProcessNodes`` by an exchange served from a thread.
    """
    if not real:
        nodes = InProcessNodes({endpoint(port): create_node_app(load_node_config(config))
                                for port, config in configs.items()})
        with serving_in_process(app, database_url, nodes, workers=workers) as url:
            yield {"url": url, "processes": [], "nodes": nodes}
        return
    processes = []
    try:
        for port, config in configs.items():
            processes.append(start_node(str(config), port))
        with serving({**app_env(app, database_url), "PDX_JOB_WORKERS": str(workers)}, workers=1) as url:
            yield {"url": url, "processes": processes, "nodes": None}
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
            process.wait(timeout=STOP_SECONDS)
