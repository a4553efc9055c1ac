"""`pdx chain …`: deploy the contracts, see the anchoring backlog, send a round now, flag an anchor, make a key.

deploy, status and sync run on the exchange's server (they use its database and PDX_CHAIN_* settings); flag and
key are the regulator's, with only the chain's URL and the regulator's own chain key.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

PRIVATE_KEY_MODE = 0o600


@click.group("chain")
def chain_group() -> None:
    """Anchoring on the permissioned chain (许可链锚定): checkpoints and grant statuses."""


def _server_app():
    from app import create_app

    app = create_app()
    from ledger.anchor import worker

    if worker.sender_of(app) is None:
        raise click.ClickException("no chain is configured: set PDX_CHAIN_URL (and PDX_CHAIN_KEY_FILE outside "
                                   "development)")
    return app


@chain_group.command("deploy")
@click.option("--regulator", help="the regulator's chain address (may flag anchors)")
@click.option("--admin", help="the address that administers the roles (default: the exchange's sender)")
def deploy(regulator: str | None, admin: str | None) -> None:
    """Deploy CheckpointAnchor and GrantRegistry, record their addresses in the ledger, queue every grant's status."""
    from dataclasses import asdict

    from exchange import anchoring
    from ledger.anchor import ChainError, worker
    from ledger.log import LedgerError

    app = _server_app()
    with app.app_context():
        try:
            deployed = anchoring.deploy(worker.sender_of(app), regulator=regulator, admin=admin)
        except (ChainError, LedgerError) as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(asdict(deployed), indent=2))


@chain_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="print the backlog as JSON")
def status(as_json: bool) -> None:
    """Show how far the chain is behind the ledger: pending anchors and grant mirrors, failures, next retry."""
    from app import create_app
    from common.db import get_database
    from ledger.anchor import outbox

    app = create_app()
    with app.app_context(), get_database().sessionmaker() as session:
        backlog = outbox.backlog(session)
    if as_json:
        click.echo(json.dumps(backlog.to_json(), indent=2))
        return
    if not backlog.deployed:
        click.echo("no chain deployment recorded (run `pdx chain deploy` with PDX_CHAIN_URL set)")
        return
    click.echo(f"chain {backlog.chain_id}: anchor {backlog.anchor_address}, registry {backlog.registry_address}\n"
               f"  ledger size      {backlog.ledger_size}\n"
               f"  anchored size    {backlog.anchored_size}"
               f"{f' at {backlog.anchored_at:%Y-%m-%d %H:%M:%S}Z' if backlog.anchored_at else ''}\n"
               f"  pending          {backlog.pending_anchors} anchor(s), {backlog.pending_mirrors} grant change(s)"
               f"{f', oldest queued {backlog.oldest_pending_at:%Y-%m-%d %H:%M:%S}Z' if backlog.oldest_pending_at else ''}"
               f"\n  mirrored         {backlog.confirmed_mirrors} grant change(s)\n"
               f"  sender           {backlog.lease_owner or 'none yet'}")
    if backlog.failures:
        click.echo(f"  failing          {backlog.failures} round(s) in a row, next try "
                   f"{backlog.next_attempt_at:%Y-%m-%d %H:%M:%S}Z\n  last error       {backlog.last_error}")


@chain_group.command("sync")
def sync() -> None:
    """Run one sender round now (ignoring backoff): anchor the newest checkpoint and mirror queued grant changes."""
    from ledger.anchor import worker

    app = _server_app()
    with app.app_context():
        tick = worker.sender_of(app).tick(force=True)
    if not tick.sent:
        raise click.ClickException("another process holds the sender's lease; it sends at its next interval")
    if tick.error:
        raise click.ClickException(tick.error)
    click.echo(f"anchored size {tick.anchored_size if tick.anchored_size is not None else '(nothing new)'}, "
               f"{tick.mirrored} grant change(s) mirrored")


@chain_group.command("flag")
@click.argument("index", type=click.IntRange(min=0))
@click.option("--reason", required=True, help="why the anchor is disputed (public)")
@click.option("--chain", "url", required=True, envvar="PDX_CHAIN_URL", help="the chain's JSON-RPC URL")
@click.option("--anchor", "address", required=True, help="the CheckpointAnchor's address")
@click.option("--key-file", required=True, type=click.Path(exists=True, dir_okay=False),
              help="the regulator's chain key (hex)")
def flag(index: int, reason: str, url: str, address: str, key_file: str) -> None:
    """Flag anchor INDEX as disputed, as the regulator."""
    from ledger.anchor import ChainError
    from ledger.anchor.chain import Chain

    try:
        sent = Chain.connect(url, key_file).flag(address, index, reason)
    except (ChainError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"flagged anchor {index} in block {sent.block_number} (transaction {sent.tx_hash})")


@chain_group.command("key")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="where to write the new private key (hex, readable by its owner only)")
def key(out: Path) -> None:
    """Create a chain account key; print its address (to allowlist on the chain, or give to `deploy --regulator`)."""
    from eth_account import Account

    if out.exists():
        raise click.ClickException(f"{out} already exists; refusing to overwrite a private key")
    account = Account.create()
    out.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_KEY_MODE)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(account.key.hex().removeprefix("0x") + "\n")
    click.echo(account.address)


def register(main: click.Group) -> None:
    """Add `pdx chain` to ``pdx``."""
    main.add_command(chain_group)
