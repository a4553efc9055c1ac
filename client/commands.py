"""API commands of ``pdx``: keys, participants, tokens and the catalog, spoken over HTTP."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from client.http import DEFAULT_URL, ApiError, ExchangeClient
from common.vocab import Role
from participants import keys

url_option = click.option("--url", envvar="PDX_URL", default=DEFAULT_URL, show_default=True,
                          help="exchange base URL (env PDX_URL)")
token_option = click.option("--token", envvar="PDX_TOKEN", required=True, help="API token (env PDX_TOKEN)")
key_option = click.option("--key", "key_path", envvar="PDX_KEY", type=click.Path(path_type=Path, exists=True),
                          default=None, help="your Ed25519 private key file; signs the request (env PDX_KEY)")


def client_for(url: str, token: str | None, key_path: Path | None = None) -> ExchangeClient:
    try:
        signing_key = keys.load(key_path) if key_path is not None else None
    except keys.KeyFileError as exc:
        raise click.ClickException(str(exc)) from exc
    return ExchangeClient(url, token, signing_key)


def show(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def call(fn, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except ApiError as exc:
        raise click.ClickException(str(exc)) from exc


def _revoke_own(url: str, token: str, collection: str, item_id: str, key_path: Path | None = None) -> None:
    client = client_for(url, token, key_path)
    me = call(client.get, "/participants/me")
    show(call(client.post, f"/participants/{me['id']}/{collection}/{item_id}/revoke"))


@click.group("keys")
def keys_group() -> None:
    """Ed25519 signing keys (generated locally; the private key never leaves this machine)."""


@keys_group.command("generate")
@click.option("--out", "path", type=click.Path(path_type=Path), required=True, help="private key file to create")
def keys_generate(path: Path) -> None:
    """Create a key pair; print the public key."""
    try:
        key = keys.generate(path)
    except keys.KeyFileError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(keys.public_text(key))


@keys_group.command("register")
@click.option("--key", "path", type=click.Path(path_type=Path, exists=True), required=True)
@click.option("--label", default=None)
@click.option("--endorse-with", "endorser_path", type=click.Path(path_type=Path, exists=True), default=None,
              help="a key you already have registered, which vouches for the new one")
@click.option("--approval", "approval_path", type=click.Path(path_type=Path, exists=True), default=None,
              help="an operator's approval (JSON from `pdx keys approve`), for a first or recovery key")
@url_option
@token_option
def keys_register(path: Path, label: str | None, endorser_path: Path | None, approval_path: Path | None, url: str,
                  token: str) -> None:
    """Register the public half of a local key, proving possession and vouched for by a registered key or an
    operator's approval (a token alone registers no key)."""
    if (endorser_path is None) == (approval_path is None):
        raise click.UsageError("give --endorse-with <your registered key> or, for a first or recovery key, "
                               "--approval <file from the operator>")
    client = client_for(url, token)
    me = call(client.get, "/participants/me")
    try:
        key = keys.load(path)
        endorsement = None if endorser_path is None else keys.endorsement(keys.load(endorser_path), me["id"],
                                                                          keys.public_text(key))
    except keys.KeyFileError as exc:
        raise click.ClickException(str(exc)) from exc
    approval = None if approval_path is None else json.loads(approval_path.read_text())
    body = keys.registration_body(key, me["id"], label=label, endorsement=endorsement, approval=approval)
    show(call(client.post, "/participants/me/keys", body, signing_key=key))


@keys_group.command("approve")
@click.argument("participant_id")
@click.argument("public_key")
@url_option
@token_option
@key_option
def keys_approve(participant_id: str, public_key: str, url: str, token: str, key_path: Path | None) -> None:
    """Approve a participant's first or recovery key as an operator; print the approval to hand over.

    Check the key out of band first (read its id, the SHA-256 of the key, back to the organisation).
    """
    if key_path is None:
        raise click.UsageError("an approval is signed with the operator's --key")
    me = call(client_for(url, token).get, "/participants/me")
    try:
        operator_key = keys.load(key_path)
    except keys.KeyFileError as exc:
        raise click.ClickException(str(exc)) from exc
    show(keys.approval(operator_key, me["id"], participant_id, public_key, datetime.now(timezone.utc)))


@keys_group.command("revoke")
@click.argument("key_id")
@url_option
@token_option
@key_option
def keys_revoke(key_id: str, url: str, token: str, key_path: Path | None) -> None:
    """Revoke one of your keys (signed with --key, which may be the key being revoked)."""
    _revoke_own(url, token, "keys", key_id, key_path)


@click.group("participant")
def participant_group() -> None:
    """Participants: enrol, admit, suspend, reinstate, inspect."""


@participant_group.command("me")
@url_option
@token_option
def participant_me(url: str, token: str) -> None:
    """Show your own participant record and status."""
    show(call(client_for(url, token).get, "/participants/me"))


@participant_group.command("enrol")
@click.option("--name-zh", required=True)
@click.option("--name-en", required=True)
@click.option("--role", "roles", multiple=True, required=True,
              type=click.Choice([role.value for role in Role]))
@click.option("--email", default=None)
@url_option
@token_option
@key_option
def participant_enrol(name_zh: str, name_en: str, roles: tuple[str, ...], email: str | None, url: str,
                      token: str, key_path: Path | None) -> None:
    """Enrol an organisation (operators); prints its first token once."""
    show(call(client_for(url, token, key_path).post, "/participants", {
        "name_zh": name_zh, "name_en": name_en, "roles": list(roles), "contact_email": email}))


def _status_command(action: str) -> None:
    @participant_group.command(action)
    @click.argument("participant_id")
    @click.option("--reason", default=None)
    @url_option
    @token_option
    @key_option
    def command(participant_id: str, reason: str | None, url: str, token: str, key_path: Path | None) -> None:
        show(call(client_for(url, token, key_path).post, f"/participants/{participant_id}/{action}",
                    {"reason": reason}))

    command.help = f"{action.capitalize()} a participant (operators)."


for _action in ("admit", "suspend", "reinstate"):
    _status_command(_action)


@participant_group.command("list")
@click.option("--role", default=None)
@click.option("--status", default=None)
@url_option
@token_option
def participant_list(role: str | None, status: str | None, url: str, token: str) -> None:
    """List participants."""
    show(call(client_for(url, token).get, "/participants", role=role, status=status, per_page=100))


@click.group("token")
def token_group() -> None:
    """API tokens: issue and revoke."""


@token_group.command("issue")
@click.option("--label", default=None)
@url_option
@token_option
@key_option
def token_issue(label: str | None, url: str, token: str, key_path: Path | None) -> None:
    """Issue another token for yourself (shown once; signed with --key: a token alone mints no token)."""
    show(call(client_for(url, token, key_path).post, "/participants/me/tokens", {"label": label}))


@token_group.command("revoke")
@click.argument("token_id")
@url_option
@token_option
def token_revoke(token_id: str, url: str, token: str) -> None:
    """Revoke one of your tokens."""
    _revoke_own(url, token, "tokens", token_id)


@click.group("asset")
def asset_group() -> None:
    """Catalog assets: register, publish, retire, search."""


@asset_group.command("register")
@click.argument("metadata", type=click.File("r", encoding="utf-8"))
@url_option
@token_option
@key_option
def asset_register(metadata, url: str, token: str, key_path: Path | None) -> None:
    """Register an asset from a JSON metadata file (providers)."""
    try:
        body = json.load(metadata)
    except json.JSONDecodeError as exc:
        raise click.ClickException(f"{metadata.name} is not JSON: {exc}") from exc
    show(call(client_for(url, token, key_path).post, "/assets", body))


def _lifecycle_command(action: str) -> None:
    @asset_group.command(action)
    @click.argument("asset_id")
    @url_option
    @token_option
    @key_option
    def command(asset_id: str, url: str, token: str, key_path: Path | None) -> None:
        show(call(client_for(url, token, key_path).post, f"/assets/{asset_id}/{action}"))

    command.help = f"{action.capitalize()} one of your assets (providers)."


for _action in ("publish", "retire"):
    _lifecycle_command(_action)


@asset_group.command("search")
@click.argument("text", required=False)
@click.option("--domain", default=None)
@click.option("--grade", type=int, default=None)
@click.option("--provider", default=None)
@click.option("--kind", "computation_kind", default=None)
@click.option("--page", type=int, default=1)
@url_option
@click.option("--token", envvar="PDX_TOKEN", default=None, help="optional: to see your own drafts")
def asset_search(text, domain, grade, provider, computation_kind, page, url, token) -> None:
    """Search the public catalog."""
    result = call(client_for(url, token).get, "/assets", q=text, domain=domain, grade=grade, provider=provider,
                   computation_kind=computation_kind, page=page)
    for asset in result["items"]:
        click.echo(f"{asset['id']}  G{asset['grade']}  {asset['domain']:<18} {asset['title_zh']} / "
                   f"{asset['title_en']}")
    click.echo(f"page {result['page']}, {len(result['items'])} of {result['total']}")


def register(main: click.Group) -> None:
    """Add the API command groups to the ``pdx`` command."""
    for group in (keys_group, participant_group, token_group, asset_group):
        main.add_command(group)
