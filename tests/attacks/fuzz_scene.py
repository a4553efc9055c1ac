"""A populated exchange for fuzzing every operation of the OpenAPI document, and the signing of each fuzzed request.

The scene has a participant of every role with a token and a registered key, a published asset, an approved
grant and a queued job, so that generated requests can name real resources and reach past the 404s.
"""

from __future__ import annotations

import base64
import itertools
import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from client.signing import SIGNED_METHODS
from ledger.entries import EntryError, sign_request
from participants import keys
from tests.support import grant_action, publish, register, request_grant, scenario_request

ROLES = ("operator", "provider", "consumer", "regulator")
ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Caller:
    """Who a fuzzed request is sent as: a participant's id, bearer token and signing key."""

    role: str
    id: str
    token: str
    key: Ed25519PrivateKey


@dataclass(frozen=True)
class Scene:
    callers: dict[str, Caller]
    path_values: dict[str, list[Any]]

    def path_parameter_sets(self, names: list[str], limit: int = 6) -> list[dict[str, Any]]:
        """Combinations of real values for an operation's path parameters (at most ``limit``)."""
        if not names or any(name not in self.path_values for name in names):
            return []
        return [dict(zip(names, values)) for values in
                itertools.islice(itertools.product(*(self.path_values[name] for name in names)), limit)]


def build(client, world, public_context: bytes) -> Scene:
    """Populate the exchange through its API: every role, a published asset, an approved grant, a queued job."""
    provider = world.participant("provider", name="税务局")
    consumer = world.participant("consumer", name="银行")
    regulator = world.participant("regulator", name="监管")
    spare = world.participant("provider", name="备用")  # a victim for suspensions and revocations
    key_id = keys.key_id(world.register_key(spare))
    token_id = client.post("/api/v1/participants/me/tokens", headers=spare.headers, json={}).get_json()["id"]
    asset = register(client, provider, authoritative_for=["DE.TAX"])
    publish(client, provider, asset["id"])
    grant = request_grant(client, consumer, scenario_request([asset["id"]]))
    grant_action(client, provider, grant["id"], "approve")
    job = client.post("/api/v1/jobs", headers=consumer.headers, json={
        "grant": grant["id"], "assets": [asset["id"]], "computation_kind": "he-statistics", "group_size": 10,
        "params": {"plan": {"columns": ["registered_capital"]}}, "result_cells": 3,
        "context": base64.b64encode(public_context).decode()})
    assert job.status_code == 201, job.get_json()
    actors = {"operator": world.operator, "provider": provider, "consumer": consumer, "regulator": regulator}
    callers = {role: Caller(role, actor.id, actor.token, actor.key) for role, actor in actors.items()}
    return Scene(callers, {
        "participant_id": [spare.id, provider.id, "me"], "key_id": [key_id], "token_id": [token_id],
        "asset_id": [asset["id"]], "grant_id": [grant["id"]], "job_id": [job.get_json()["id"]],
        "code": ["market-regulation", "DE.TAX"], "size": [1, 3], "number": [0, 1],
        "action": ["approve", "suspend", "accept", "counter", "revoke"]})


def body_bytes(kwargs: dict[str, Any]) -> bytes | None:
    """The exact bytes a serialized case sends as its body (None when it sends none)."""
    if "json" in kwargs:
        return json.dumps(kwargs["json"]).encode()
    data = kwargs.get("data")
    if data is None:
        return None
    return data if isinstance(data, bytes) else str(data).encode()


def signed_body(raw: bytes | None) -> Any:
    """The body value the exchange verifies a signature over: the JSON those bytes parse to, else None."""
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return None


def credentials(caller: Caller, method: str, path: str, raw: bytes | None) -> dict[str, str]:
    """The bearer token and, for a state-changing method, the signature over ``path`` and exactly ``raw``.

    ``path`` is the decoded path the exchange reads, signed whole: it may hold a "?" that was sent as %3F, so it
    is not split at one as the SDK's ``signature_headers`` does for a path it sends with a query.
    """
    headers = {"Authorization": f"Bearer {caller.token}"}
    if method.upper() in SIGNED_METHODS:
        try:
            signed = sign_request(caller.key, actor=caller.id, method=method, path=path, body=signed_body(raw))
        except EntryError:  # a body with no RFC 8785 form (integers beyond 2^53): the exchange must refuse it
            signed = sign_request(caller.key, actor=caller.id, method=method, path=path, body=None)
        headers.update({"PDX-Key": signed.key, "PDX-Signed-At": signed.statement["signed_at"],
                        "PDX-Nonce": signed.nonce, "PDX-Signature": signed.signature})
    return headers
