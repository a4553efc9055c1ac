"""`pdx audit verify`: check a ledger export offline, with only the log's public key (and witnesses' keys)."""

from __future__ import annotations

from pathlib import Path
from typing import IO

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from common import crypto
from ledger.audit import AuditFailure, verify_export

FAILED = 1


def load_key(text: str) -> Ed25519PublicKey:
    """Return the Ed25519 public key given as base64 of its 32 raw bytes, or as a file holding that text."""
    try:
        return crypto.load_public_key(text.strip())
    except (crypto.BadKey, ValueError):
        pass
    path = Path(text)
    if not path.is_file():
        raise click.BadParameter(f"{text!r} is neither a base64 Ed25519 public key nor a file holding one")
    try:
        return crypto.load_public_key(path.read_text(encoding="utf-8").strip())
    except (crypto.BadKey, ValueError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"{path} does not hold a base64 Ed25519 public key: {exc}") from exc


def _operator_key(_ctx: click.Context, _param: click.Parameter, value: str) -> Ed25519PublicKey:
    return load_key(value)


def _witness_keys(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
                  ) -> dict[str, Ed25519PublicKey]:
    witnesses: dict[str, Ed25519PublicKey] = {}
    for value in values:
        name, separator, key = value.partition("=")
        if not separator or not name or not key:
            raise click.BadParameter(f"expected NAME=KEY, found {value!r}")
        if name in witnesses:
            raise click.BadParameter(f"witness {name} is given twice")
        witnesses[name] = load_key(key)
    return witnesses


def _chain_view(url: str, address: str):
    """Read what the chain holds before the export is read, so anchors newer than the export count as ahead."""
    from ledger.anchor import ChainError
    from ledger.anchor.chain import Chain

    try:
        return Chain.connect(url).view(address)
    except (ChainError, ValueError) as exc:
        raise click.ClickException(f"cannot read the chain at {url}: {exc}") from exc


@click.group("audit")
def audit() -> None:
    """Verify the ledger offline, from an export, without the exchange's database or server."""


@audit.command("verify")
@click.argument("export", type=click.File("r", encoding="utf-8"))
@click.option("--operator-key", required=True, callback=_operator_key,
              help="the log's public key: base64 of the raw 32 bytes, or a file holding it")
@click.option("--witness-key", "witness_keys", multiple=True, callback=_witness_keys, metavar="NAME=KEY",
              help="require a cosignature of the last checkpoint by this witness (repeatable)")
@click.option("--since", type=click.File("r", encoding="utf-8"),
              help="a checkpoint note saved earlier, which must still be a prefix of the log")
@click.option("--chain", "chain_url", metavar="URL", help="also compare with the anchors and grant registry on the "
              "chain behind this JSON-RPC URL (needs --anchor)")
@click.option("--anchor", "anchor_address", metavar="ADDRESS", help="the CheckpointAnchor's address (with --chain)")
@click.option("--window", "signature_window_s", type=click.IntRange(min=1), default=300, show_default=True,
              help="seconds a request's signing time may be from its entry's time (PDX_SIGNATURE_WINDOW_SECONDS)")
@click.pass_context
def verify(ctx: click.Context, export: IO[str], operator_key: Ed25519PublicKey,
           witness_keys: dict[str, Ed25519PublicKey], since: IO[str] | None, chain_url: str | None,
           anchor_address: str | None, signature_window_s: int) -> None:
    """Verify the ledger export EXPORT ('-' reads standard input) and print what it establishes."""
    if (chain_url is None) != (anchor_address is None):
        raise click.UsageError("--chain and --anchor go together")
    since_text = None if since is None else since.read()
    view = None if chain_url is None else _chain_view(chain_url, anchor_address)
    try:
        report = verify_export(export, operator_key, witness_keys, since=since_text,
                               signature_window_s=signature_window_s, chain=view)
    except AuditFailure as failure:
        where = "export" if failure.seq is None else f"entry {failure.seq}"
        click.echo(f"FAIL {where} [{failure.kind}]: {failure.message}")
        ctx.exit(FAILED)
    click.echo(report.render(), nl=False)
