"""`pdx ledger check` (is the stored ledger intact? with --state: do the tables say what it says?) and `pdx witness`
(cosign checkpoints after verifying)."""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import click

from client.http import DEFAULT_URL, ApiError, ExchangeClient
from common import crypto
from ledger import merkle, notes
from ledger.checkpoints import witness_name
from participants import keys


@click.group("ledger")
def ledger_group() -> None:
    """The exchange's ledger, seen from the server's own database."""


def run_check(app, *, full: bool = False):
    """Check the app's stored ledger; return the result, or None before `pdx init` made the log key."""
    from common.db import get_database
    from ledger import check, service

    with app.app_context():
        identity = service.identity()
        if identity is None:
            return None
        with get_database().sessionmaker() as session:
            return check.check(session, identity.origin, identity.key.public_key(), full=full)


def run_state_check(app):
    """Compare the app's authorization tables with what its ledger implies; record and return the outcome."""
    from exchange import state_check

    with app.app_context():
        return state_check.check_and_record()


def report_state(outcome, *, err: bool = False) -> None:
    """Print a state check's outcome: a summary, or every difference (table, id, field, stored, expected)."""
    if outcome.ok:
        counts = ", ".join(f"{count} {name}" for name, count in outcome.rows.items())
        click.echo(f"state agrees with the ledger: {counts} compared with {outcome.ledger_size} entries", err=err)
        return
    click.echo(f"STATE DIFFERS FROM THE LEDGER: {len(outcome.differences)} difference(s) "
               f"(table id field: stored, expected)", err=err)
    for difference in outcome.differences:
        click.echo(f"  {difference}", err=err)


@ledger_group.command("check")
@click.option("--full", is_flag=True, help="verify every entry's operator signature, not only the unsigned tail")
@click.option("--state", "state", is_flag=True,
              help="also replay the log and compare grants, quotas, assets, participants, roles, keys and jobs "
                   "with the tables; a difference stops admissions until this check passes")
def ledger_check(full: bool, state: bool) -> None:
    """Verify the ledger tables against themselves and the latest signed checkpoint (and, with --state, the
    authorization tables against the ledger)."""
    from app import create_app
    from ledger.check import TamperedLedger

    app = create_app()
    try:
        result = run_check(app, full=full)
    except TamperedLedger as exc:
        raise click.ClickException(f"LEDGER TAMPERED: {exc}") from exc
    if result is None:
        raise click.ClickException("no log key: run `pdx init` first")
    click.echo(f"ledger intact: {result.size} entries, root {result.root}, latest checkpoint "
               f"{result.checkpoint_size}, {result.signatures_verified} operator signatures verified")
    if state:
        outcome = run_state_check(app)
        report_state(outcome)
        if not outcome.ok:
            raise click.ClickException("admissions and grant changes stay stopped until the rows are restored and "
                                       "this check passes")


@dataclass(frozen=True)
class WitnessState:
    """What a witness remembers: the last checkpoint it cosigned."""

    origin: str
    size: int
    root: bytes

    @classmethod
    def load(cls, path: Path) -> WitnessState | None:
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        return cls(data["origin"], int(data["size"]), base64.b64decode(data["root"]))

    def save(self, path: Path) -> None:
        temporary = path.with_suffix(path.suffix + ".tmp")
        temporary.write_text(json.dumps({"origin": self.origin, "size": self.size,
                                         "root": base64.b64encode(self.root).decode()}))
        os.replace(temporary, path)  # atomic: a crash never leaves a half-written state


class WitnessRefusal(Exception):
    """The log showed something a witness must not cosign (a bad signature, a rollback or a fork)."""


def witness_once(client: ExchangeClient, key, log_key, state_path: Path) -> notes.Checkpoint:
    """Fetch the checkpoint, verify it and its consistency with the last one cosigned, cosign and remember it."""
    current = client.get("/ledger/checkpoint")
    checkpoint, signatures = notes.parse_note(current["note"])
    try:
        notes.verify_log_signature(checkpoint, signatures, checkpoint.origin, log_key)
    except notes.NoteError as exc:
        raise WitnessRefusal(str(exc)) from exc
    previous = WitnessState.load(state_path)
    if previous is not None:
        if previous.origin != checkpoint.origin:
            raise WitnessRefusal(f"the state is for log {previous.origin}, the checkpoint for {checkpoint.origin}")
        if checkpoint.size < previous.size:
            raise WitnessRefusal(f"the log went back from size {previous.size} to {checkpoint.size}")
        if checkpoint.size == previous.size and checkpoint.root != previous.root:
            raise WitnessRefusal(f"two different roots at size {checkpoint.size}: the log forked")
        if checkpoint.size > previous.size:
            proof = client.get("/ledger/proofs/consistency", first=previous.size, second=checkpoint.size)["proof"]
            try:
                merkle.verify_consistency(previous.size, checkpoint.size, previous.root, checkpoint.root,
                                          [base64.b64decode(h) for h in proof])
            except merkle.ProofError as exc:
                raise WitnessRefusal(f"no consistency from size {previous.size} to {checkpoint.size}: {exc}") \
                    from exc
    name = witness_name(checkpoint.origin, client.participant_id())
    line = notes.cosign(checkpoint, name, key, int(time.time())).line()
    client.post(f"/ledger/checkpoints/{checkpoint.size}/cosignatures", {"line": line})
    WitnessState(checkpoint.origin, checkpoint.size, checkpoint.root).save(state_path)
    return checkpoint


def load_public_key(text: str):
    """Read a base64 raw Ed25519 public key given inline or in a file."""
    path = Path(text)
    value = path.read_text().strip() if path.exists() else text.strip()
    try:
        return crypto.load_public_key(value)
    except crypto.BadKey as exc:
        raise click.BadParameter(f"not a base64 Ed25519 public key: {exc}") from exc


@click.command("witness")
@click.option("--url", envvar="PDX_URL", default=DEFAULT_URL, show_default=True)
@click.option("--token", envvar="PDX_TOKEN", required=True)
@click.option("--key", "key_path", envvar="PDX_KEY", type=click.Path(path_type=Path, exists=True), required=True,
              help="your registered Ed25519 key: it signs the cosignatures")
@click.option("--log-key", required=True, help="the log's public key (base64, or a file holding it)")
@click.option("--state", "state_path", type=click.Path(path_type=Path), default=Path(".pdx/witness-state.json"),
              show_default=True, help="where the last cosigned checkpoint is remembered")
@click.option("--interval", type=click.IntRange(min=1), default=None,
              help="keep witnessing every N seconds (default: once)")
def witness(url, token, key_path, log_key, state_path, interval) -> None:
    """Cosign the log's checkpoint (C2SP tlog-cosignature) after verifying it is consistent with the last one."""
    client = ExchangeClient(url, token, keys.load(key_path))
    key, trusted = keys.load(key_path), load_public_key(log_key)
    state_path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            checkpoint = witness_once(client, key, trusted, state_path)
        except (WitnessRefusal, ApiError, notes.NoteError) as exc:
            raise click.ClickException(f"refusing to cosign: {exc}") from exc
        click.echo(f"cosigned {checkpoint.origin} size {checkpoint.size} root "
                   f"{base64.b64encode(checkpoint.root).decode()}")
        if interval is None:
            return
        time.sleep(interval)


@ledger_group.command("key")
def ledger_key() -> None:
    """Print the log's public key (server side): publish it so regulators can verify exports offline."""
    from app import create_app
    from ledger import service

    with create_app().app_context():
        text = service.public_key_text()
    if text is None:
        raise click.ClickException("no log key: run `pdx init` first")
    click.echo(text)


@ledger_group.command("export")
@click.option("--out", "out_path", type=click.Path(path_type=Path), required=True, help="file to write")
@click.option("--url", envvar="PDX_URL", default=DEFAULT_URL, show_default=True)
@click.option("--token", envvar="PDX_TOKEN", required=True, help="a regulator's or operator's token")
def ledger_export(out_path: Path, url: str, token: str) -> None:
    """Download the whole ledger for offline audit (JSON lines; regulators and operators)."""
    client = ExchangeClient(url, token)
    try:
        count = 0
        with out_path.open("w", encoding="utf-8") as handle:
            for line in client.stream("/ledger/export"):
                handle.write(line + "\n")
                count += 1
    except ApiError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"wrote {count} lines to {out_path}")


@ledger_group.command("checkpoint")
@click.option("--out", "out_path", type=click.Path(path_type=Path), default=None,
              help="save the signed note (for a later `pdx audit verify --since`)")
@click.option("--log-key", default=None, help="verify it with the log's public key (base64 or file)")
@click.option("--url", envvar="PDX_URL", default=DEFAULT_URL, show_default=True)
@click.option("--token", envvar="PDX_TOKEN", required=True)
def ledger_checkpoint(out_path: Path | None, log_key: str | None, url: str, token: str) -> None:
    """Fetch the log's latest checkpoint, optionally verify its signature, and save it."""
    try:
        body = ExchangeClient(url, token).get("/ledger/checkpoint")
    except ApiError as exc:
        raise click.ClickException(str(exc)) from exc
    checkpoint, signatures = notes.parse_note(body["note"])
    if log_key is not None:
        try:
            notes.verify_log_signature(checkpoint, signatures, checkpoint.origin, load_public_key(log_key))
        except notes.NoteError as exc:
            raise click.ClickException(f"CHECKPOINT NOT SIGNED BY THAT KEY: {exc}") from exc
    if out_path is not None:
        out_path.write_text(body["note"], encoding="utf-8")
    verified = " (signature verified)" if log_key else ""
    click.echo(f"{checkpoint.origin} size {checkpoint.size} root {base64.b64encode(checkpoint.root).decode()}"
               f"{verified}; cosigned by {', '.join(body['cosigners']) or 'no witness yet'}")


@ledger_group.command("prove")
@click.argument("index", type=click.IntRange(min=0))
@click.option("--log-key", required=True, help="the log's public key (base64 or file)")
@click.option("--url", envvar="PDX_URL", default=DEFAULT_URL, show_default=True)
@click.option("--token", envvar="PDX_TOKEN", required=True)
def ledger_prove(index: int, log_key: str, url: str, token: str) -> None:
    """Prove that entry INDEX is in the log: verify the checkpoint's signature and the inclusion proof."""
    client = ExchangeClient(url, token)
    try:
        body = client.get("/ledger/checkpoint")
        checkpoint, signatures = notes.parse_note(body["note"])
        notes.verify_log_signature(checkpoint, signatures, checkpoint.origin, load_public_key(log_key))
        proof = client.get("/ledger/proofs/inclusion", index=index, size=checkpoint.size)
        merkle.verify_inclusion(bytes.fromhex(proof["leaf_hash"]), index, checkpoint.size,
                                [base64.b64decode(h) for h in proof["proof"]], checkpoint.root)
    except (ApiError, notes.NoteError, merkle.MerkleError) as exc:
        raise click.ClickException(f"NOT PROVEN: {exc}") from exc
    click.echo(f"entry {index} (leaf {proof['leaf_hash']}) is in {checkpoint.origin} at size {checkpoint.size}")
