"""The ``pdx`` command: server administration (init, db, serve, demo) plus the API commands in ``commands``."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from client import chain_cli, commands, demo_chain, grant_cli, training_cli
from client.audit_cli import audit
from client.ledger_cli import ledger_group, witness
from common import processes
from common.vocab import Role
from participants import keys
from provider.cli import node_group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """pdx — privacy-preserving public data exchange (公共数据授权运营)."""


def _app(*, background: bool = False):
    from app import create_app

    return create_app(background=background)


def _upgrade(app) -> str:
    import migrations
    from common.db import get_database

    with app.app_context():
        engine = get_database().engine
        migrations.upgrade(engine)
        return engine.url.render_as_string(hide_password=True)


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration to the configured database (PDX_DATABASE_URL or the SQLite default)."""
    click.echo(f"database at head: {_upgrade(_app())}")


@db.command("current")
def db_current() -> None:
    """Print the migration revision the database is at."""
    import migrations
    from common.db import get_database

    app = _app()
    with app.app_context():
        click.echo(migrations.current(get_database().engine) or "empty (run `pdx db upgrade`)")


@main.command()
@click.option("--name-zh", default="公共数据授权运营方", show_default=True, help="Chinese name of the operator")
@click.option("--name-en", default="pdx exchange operator", show_default=True, help="English name of the operator")
@click.option("--key", "key_path", type=click.Path(path_type=Path), default=Path(".pdx/operator.key"),
              show_default=True, help="where to create the operator's Ed25519 private key")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON for scripts")
def init(name_zh: str, name_en: str, key_path: Path, as_json: bool) -> None:
    """Migrate the database, create the first operator and its signing key, and print its token once."""
    from common.errors import PdxError
    from common.keyfiles import generate
    from exchange.bootstrap import bootstrap_operator

    if key_path.exists():
        raise click.ClickException(f"{key_path} already exists; refusing to overwrite a private key")
    app = _app()
    url = _upgrade(app)
    log_key_file = Path(app.config["PDX_LOG_KEY_FILE"])
    private_key = Ed25519PrivateKey.generate()
    try:
        with app.app_context():
            _refuse_second_operator()
            if not log_key_file.exists():
                generate(log_key_file)
            operator, token, key = bootstrap_operator(name_zh, name_en, private_key,
                                                      before_commit=lambda: keys.save(private_key, key_path))
    except (PdxError, keys.KeyFileError) as exc:
        raise click.ClickException(str(exc)) from exc
    with app.app_context():
        from ledger import service

        log_public_key = service.public_key_text()
    result = {"database": url, "operator": operator.id, "token": token.secret, "key_id": key.id,
              "private_key": str(key_path), "log_key_file": str(log_key_file), "log_public_key": log_public_key}
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(f"database: {url}\noperator: {operator.id}\nsigning key: {key.id} (private key in {key_path})")
    click.echo(f"log public key (publish it for regulators): {log_public_key}")
    click.echo(f"API token (shown once; keep it secret):\n  {token.secret}")


def _audit_in_process(anchor: str | None = None):
    """Sign a checkpoint, export the ledger and verify it with the offline auditor (inside an app context); with
    ``anchor``, also against the chain at PDX_CHAIN_URL."""
    from flask import current_app

    from common.db import get_database
    from ledger import checkpoints, export, log, service
    from ledger.audit import verify_export

    identity = service.identity()
    with get_database().transaction() as session:
        checkpoints.sign_current(session, identity)
        lines = list(export.lines(session, identity.origin, service.public_key_text(), log.size(session)))
    view = None
    if anchor is not None:
        from ledger.anchor.chain import Chain

        view = Chain.connect(current_app.config["PDX_CHAIN_URL"]).view(anchor)
    return verify_export(lines, identity.key.public_key(), chain=view)


def _gunicorn() -> str | None:
    beside_python = Path(sys.executable).parent / "gunicorn"
    return str(beside_python) if beside_python.exists() else shutil.which("gunicorn")


def _refuse_second_operator() -> None:
    """Stop `pdx init` before it creates anything when the exchange already has its operator."""
    from sqlalchemy import select

    from common.db import get_database
    from participants.models import ParticipantRole

    with get_database().sessionmaker() as session:
        existing = session.scalar(select(ParticipantRole.participant_id).where(ParticipantRole.role == Role.OPERATOR))
    if existing is not None:
        raise click.ClickException(f"the exchange already has an operator ({existing}); nothing was created")


def _check_ledger_before_serving() -> None:
    from client.ledger_cli import run_check
    from ledger.check import TamperedLedger

    try:
        result = run_check(_app())
    except TamperedLedger as exc:
        raise click.ClickException(f"not serving: LEDGER TAMPERED: {exc}") from exc
    if result is None:
        raise click.ClickException("not serving: no log key (PDX_LOG_KEY_FILE); run `pdx init` first, or restore "
                                   "the key from its backup")
    click.echo(f"ledger intact: {result.size} entries, root {result.root[:16]}…", err=True)
    from client.ledger_cli import report_state, run_state_check

    outcome = run_state_check(_app())
    report_state(outcome, err=True)
    if not outcome.ok:  # serve anyway, for reads and audits; the gate refuses admissions and grant changes
        click.echo("serving with job admissions and grant changes stopped until `pdx ledger check --state` "
                   "passes", err=True)
    from common.db import utcnow
    from jobs.runner import recover_stranded

    with _app().app_context():
        stranded = recover_stranded(utcnow())
    if stranded:
        click.echo(f"failed {len(stranded)} job(s) admitted before the last stop and never run: "
                   f"{', '.join(stranded)}", err=True)


def _serve(host: str, port: int, dev: bool, workers: int, check_ledger: bool = True) -> None:
    if check_ledger:
        _check_ledger_before_serving()
    gunicorn = _gunicorn()
    if dev or gunicorn is None:
        if not dev:
            click.echo("gunicorn not found; falling back to Flask's development server", err=True)
        _app(background=True).run(host=host, port=port, debug=False)
        return
    os.execv(gunicorn, [gunicorn, "--workers", str(workers), "--bind", f"{host}:{port}", "--access-logfile", "-",
                        "app:create_app(background=True)"])


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64), help="gunicorn workers")
@click.option("--dev", is_flag=True, help="use Flask's development server instead of gunicorn")
@click.option("--skip-ledger-check", is_flag=True, help="start without first checking the ledger tables")
def serve(host: str, port: int, workers: int, dev: bool, skip_ledger_check: bool) -> None:
    """Check the ledger, then serve the exchange API (gunicorn; Flask's server only with --dev)."""
    _serve(host, port, dev, workers, check_ledger=not skip_ledger_check)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--dev", is_flag=True, help="use Flask's development server instead of gunicorn")
@click.option("--no-serve", is_flag=True, help="walk the story, then stop the nodes and the exchange and exit")
@click.option("--seed-only", is_flag=True, help="only create the demo exchange's database and keys, then exit")
@click.option("--node-port", default=8701, show_default=True, type=click.IntRange(1, 65528),
              help="the first of the provider nodes' ports (the demo uses eight from there)")
def demo(host: str, port: int, dev: bool, no_serve: bool, seed_only: bool, node_port: int) -> None:
    """Create a fresh demo exchange, start six provider nodes, walk the bank's and the institute's stories, audit,
    and serve it.

    The story: the bank's grants for SME credit scoring (approved by the tax and social-insurance providers,
    co-approved by the regulator), homomorphic statistics and encrypted scoring beside the plaintext truth, and the
    ledger verified by the offline auditor.
    """
    from app import create_app
    from common.config import load_settings
    from common.keyfiles import generate, write_private
    from exchange import demo as demo_data

    instance_dir = Path(load_settings()["INSTANCE_DIR"] or create_app().instance_path).resolve()
    demo_dir = instance_dir / "demo"
    shutil.rmtree(demo_dir, ignore_errors=True)
    # The demo never touches the configured database or log key: it has its own, also for the served workers.
    os.environ["PDX_DATABASE_URL"] = f"sqlite:///{demo_dir / 'demo.sqlite3'}"
    os.environ["PDX_INSTANCE_DIR"] = str(instance_dir)
    os.environ["PDX_LOG_KEY_FILE"] = str(demo_dir / "log.key")
    if os.environ.get("PDX_CHAIN_URL"):
        os.environ.setdefault("PDX_CHAIN_INTERVAL_SECONDS", demo_chain.DEMO_INTERVAL_SECONDS)
    generate(demo_dir / "log.key")
    app = _app()
    _upgrade(app)
    with app.app_context():
        seeded = demo_data.seed(first_node_port=node_port)
        anchor = demo_chain.deploy(app, click.echo)
        audited = _audit_in_process()
        from ledger import service

        log_key, origin = service.public_key_text(), service.identity().origin
    for name, key in seeded.keys.items():
        keys.save(key, demo_dir / "keys" / f"{name}.pem")
    base = f"http://{host}:{port}"
    token_file = demo_dir / "tokens.json"
    write_private(token_file, json.dumps({"url": base, "tokens": seeded.tokens, "participants": seeded.participant_ids,
                                          "keys": str(demo_dir / "keys")}, indent=2, ensure_ascii=False).encode())
    click.echo(f"pdx demo exchange: {len(seeded.participant_ids)} participants, {len(seeded.asset_ids)} published "
               f"assets\n  API docs:  {base}/api/docs\n  catalog:   {base}/api/v1/assets\n"
               f"  DCAT-AP:   {base}/api/v1/catalog.jsonld\n  tokens:    {token_file}\n"
               f"  keys:      {demo_dir / 'keys'} (sign with --key <file>)")
    click.echo(f"  ledger:    {audited.entries} entries, root {audited.root[:16]}…, verified offline by the auditor")
    for name, token in seeded.tokens.items():
        click.echo(f"  {name:<11}{token}")
    click.echo(f"try: curl -H 'Authorization: Bearer {seeded.tokens['operator']}' {base}/api/v1/participants")
    if seed_only:
        return
    from client.demo_story import CITIES, NODES, federated_story, running, story, write_node_data
    from client.sdk import Consumer

    first = demo_data.NODE_PORTS["market"]
    ports = {name: node_port + demo_data.NODE_PORTS[name] - first for name in (*NODES, *CITIES)}
    frames = write_node_data(demo_dir / "nodes", seeded.participant_ids, seeded.asset_ids, log_key, origin, ports)
    click.echo(f"\nstarting provider nodes on ports {', '.join(map(str, ports.values()))} and the exchange …")
    try:
        with running(demo_dir / "nodes", ports, host, port, dev) as url:
            bank = Consumer(url, seeded.tokens["bank"], seeded.keys["bank"])
            story(bank, frames, seeded.asset_ids, seeded.grant_id, seeded.scoring_grant_id, click.echo)
            institute = Consumer(url, seeded.tokens["university"], seeded.keys["university"])
            federated_story(institute, frames, seeded.asset_ids[-len(CITIES):], seeded.federated_grant_id,
                            seeded.participant_ids, demo_dir / "risk-model-curve.png", click.echo)
            with app.app_context():
                if anchor is not None:
                    click.echo("\nwaiting for the exchange to anchor the ledger and mirror the grants on the chain …")
                    demo_chain.wait_until_anchored()
                audited = _audit_in_process(anchor)
            click.echo(f"\n可信 ledger: {audited.entries} entries, {audited.entry_types.get('job.completed', 0)} jobs "
                       f"completed, {audited.entry_types.get('job.trained', 0)} federated training(s) of "
                       f"{audited.entry_types.get('job.round', 0)} rounds, verified offline by the auditor "
                       f"(root {audited.root[:16]}…)")
            if audited.chain is not None:
                click.echo(f"锚定 anchored: the chain's {audited.chain.anchors_checked} anchor(s) agree with the ledger "
                           f"(the newest covers {audited.chain.newest_anchored_size} entries) and its registry's "
                           f"{audited.chain.statuses_checked} grant status change(s) each match their ledger entry — "
                           f"verified against the chain by the auditor")
            if no_serve:
                return
            click.echo(f"\nserving the demo at {url} (API docs at {url}/api/docs); Ctrl-C stops the exchange and nodes")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                click.echo("stopping …")
    except processes.NotStarted as exc:  # a node or the exchange died or never answered
        raise click.ClickException(str(exc)) from exc


commands.register(main)
grant_cli.register(main)
training_cli.register(grant_cli.job_group)
chain_cli.register(main)
main.add_command(ledger_group)
main.add_command(audit)
main.add_command(node_group)
main.add_command(witness)

if __name__ == "__main__":
    sys.exit(main())
