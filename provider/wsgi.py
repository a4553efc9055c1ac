"""The WSGI entry point gunicorn loads for `pdx node serve` (the config path comes from PDX_NODE_CONFIG)."""

from __future__ import annotations

import os
from pathlib import Path

from provider import config
from provider.app import create_node_app

app = create_node_app(config.load(Path(os.environ["PDX_NODE_CONFIG"])))
