"""`pdx node serve --config node.toml`: run a provider node."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from provider import config as node_config
from provider.datasets import DatasetError


@click.group("node")
def node_group() -> None:
    """The provider node (数据资源挂载): your datasets stay here; only ciphertexts leave."""


@node_group.command("serve")
@click.option("--config", "config_path", type=click.Path(path_type=Path, exists=True), required=True)
@click.option("--dev", is_flag=True, help="Flask's development server instead of gunicorn")
def node_serve(config_path: Path, dev: bool) -> None:
    """Mount the configured datasets and serve the node (gunicorn, one worker: the ticket record is local)."""
    from common.crypto import BadKey
    from common.keyfiles import KeyFileError
    from provider.app import create_node_app

    try:
        config = node_config.load(config_path)
        app = create_node_app(config)
    except (DatasetError, KeyFileError, BadKey, OSError) as exc:
        raise click.ClickException(f"cannot start the node: {exc}") from exc
    gunicorn = Path(sys.executable).parent / "gunicorn"
    if dev or not gunicorn.exists():
        app.run(host=config.host, port=config.port)
        return
    os.environ["PDX_NODE_CONFIG"] = str(config_path.resolve())
    os.execv(str(gunicorn), [str(gunicorn), "--workers", "1", "--threads", "4", "--timeout", "300",
                             "--bind", f"{config.host}:{config.port}", "provider.wsgi:app"])

