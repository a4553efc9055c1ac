"""The exchange's application factory: settings, database, guards, rate limits, API, error handlers; nothing else."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Mapping

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from common import config as pdx_config
from common import db

if TYPE_CHECKING:
    from jobs.nodes import NodeClient


def create_app(config: Mapping[str, Any] | None = None, *, background: bool = False,
               nodes: NodeClient | None = None) -> Flask:
    """Create the exchange app; ``config`` overrides PDX_* environment settings (keys with or without prefix).

    ``background`` starts the chain sender's thread when a chain is configured and the thread that recovers stranded
    jobs (`pdx serve` does, CLI commands don't). ``nodes`` is how the job runner calls provider nodes (over HTTP
    unless given; tests give one that calls node apps in process).
    """
    app = Flask(__name__)
    settings = pdx_config.load_settings(config)
    instance_dir = settings["INSTANCE_DIR"] or app.instance_path
    settings["INSTANCE_DIR"] = instance_dir
    os.makedirs(instance_dir, exist_ok=True)
    if settings["DATABASE_URL"] is None:
        settings["DATABASE_URL"] = pdx_config.sqlite_url(instance_dir)
    app.config.update({f"PDX_{name}": value for name, value in settings.items()})
    app.config["MAX_CONTENT_LENGTH"] = settings["MAX_BODY_BYTES"]

    if settings["TRUSTED_PROXIES"]:
        hops = settings["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops, x_prefix=hops)

    db.init_app(app, settings["DATABASE_URL"], echo=settings["SQL_ECHO"])

    from ledger import service as ledger_service

    settings["LOG_KEY_FILE"] = settings["LOG_KEY_FILE"] or os.path.join(instance_dir, "log.key")
    app.config["PDX_LOG_KEY_FILE"] = settings["LOG_KEY_FILE"]
    ledger_service.init_app(app, settings["LOG_KEY_FILE"], settings["LEDGER_ORIGIN"])

    from exchange import api, guards, ratelimit
    from jobs import runner as jobs
    from web import problems

    jobs.init_app(app, workers=settings["JOB_WORKERS"], timeout=settings["NODE_TIMEOUT_SECONDS"],
                  recovery_interval=settings["JOB_RECOVERY_SECONDS"] if background else None, nodes=nodes)

    from ledger.anchor import worker as chain_worker

    chain_worker.init_app(app, background=background)

    from exchange import state_check

    state_check.init_app(app, background=background)

    problems.register(app)
    ratelimit.init_app(app, storage=settings["RATE_LIMIT_STORAGE"], limit=settings["RATE_LIMIT"],
                       bad_credentials=settings["RATE_LIMIT_BAD_CREDENTIALS"],
                       key_prefix=settings["RATE_LIMIT_KEY_PREFIX"])
    guards.init_app(app)  # after the limiter: a locked-out address is refused before its body is parsed
    api.init_app(app)
    app.json.ensure_ascii = False  # the bounded JSON provider is installed by guards
    app.json.sort_keys = False
    return app
