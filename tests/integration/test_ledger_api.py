"""The ledger through the API: every change is one signed entry committed with it; checkpoints, proofs, export."""

from __future__ import annotations

import base64
import json
import time

import pytest

from ledger import merkle, notes
from ledger.checkpoints import witness_name
from participants.keys import public_text
from tests.support import asset_body, publish, register

pytestmark = pytest.mark.sql  # ledger appends, checkpoints and proofs read back from the tables


def _b64(text: str) -> bytes:
    return base64.b64decode(text)


def _all_entries(client, reader):
    size = client.get("/api/v1/ledger/checkpoint", headers=reader.headers).get_json()["size"]
    body = client.get(f"/api/v1/ledger/entries?start=0&end={size}", headers=reader.headers).get_json()
    return body["entries"]


@pytest.fixture
def regulator(world):
    return world.participant("regulator")


def test_each_change_is_one_entry_signed_by_its_actor(client, world, regulator):
    provider = world.participant("provider")
    asset = register(client, provider)
    publish(client, provider, asset["id"])
    entries = _all_entries(client, regulator)
    assert [e["seq"] for e in entries] == list(range(len(entries)))
    types = [e["entry"]["type"] for e in entries]
    assert types[0] == "log.genesis"
    assert types.count("participant.enrolled") == 3 and types.count("key.registered") == 3
    assert types[-1] == "asset.published"
    published = entries[-1]["entry"]
    assert published["actor"] == provider.id and published["refs"] == {"asset": [asset["id"]]}
    assert published["request"]["path"] == f"/api/v1/assets/{asset['id']}/publish"
    assert published["body"]["grade"] == 2 and published["body"]["provider"] == provider.id
    assert published["sig"]["actor"]


def test_drafts_and_tokens_leave_no_entry_but_published_changes_do(client, world, regulator):
    provider = world.participant("provider")
    before = len(_all_entries(client, regulator))
    asset = register(client, provider)
    client.patch(f"/api/v1/assets/{asset['id']}", headers=provider.headers, json={"keywords": ["x"]})
    client.post("/api/v1/participants/me/tokens", headers=provider.headers, json={})
    assert len(_all_entries(client, regulator)) == before
    publish(client, provider, asset["id"])
    client.patch(f"/api/v1/assets/{asset['id']}", headers=provider.headers, json={"keywords": ["y"]})
    added = [e["entry"]["type"] for e in _all_entries(client, regulator)[before:]]
    assert added == ["asset.published", "asset.updated"]


def test_personal_fields_are_committed_not_disclosed(client, world, regulator):
    response = client.post("/api/v1/participants", headers=world.operator.headers, json={
        "name_zh": "某银行", "name_en": "A bank", "roles": ["consumer"], "contact_email": "cdo@bank.example"})
    assert response.status_code == 201
    entry = _all_entries(client, regulator)[-1]
    assert "cdo@bank.example" not in json.dumps(entry, ensure_ascii=False)
    assert len(entry["entry"]["commit"]["contact_email"]) == 64


def test_a_refused_change_leaves_neither_state_nor_entry(app, client, world, regulator):
    provider = world.participant("provider")
    asset = register(client, provider)
    before = len(_all_entries(client, regulator))
    state = app.extensions["pdx.ledger"]
    saved, state.identity, state.key_file = (state.identity, state.key_file), None, state.key_file.with_name("x")
    failed = client.post(f"/api/v1/assets/{asset['id']}/publish", headers=provider.headers)
    state.identity, state.key_file = saved
    assert failed.status_code == 503
    assert client.get(f"/api/v1/assets/{asset['id']}", headers=provider.headers).get_json()["status"] == "draft"
    assert len(_all_entries(client, regulator)) == before


def test_a_replayed_signed_request_is_refused_and_changes_nothing(client, world, regulator):
    from client.signing import signature_headers

    body = {"name_zh": "重放", "name_en": "Replay", "roles": ["consumer"]}
    headers = {**world.operator.headers, **signature_headers(world.operator.key, actor=world.operator.id,
                                                             method="POST", path="/api/v1/participants", body=body)}
    assert client.post("/api/v1/participants", headers=headers, json=body).status_code == 201
    count = client.get("/api/v1/participants?per_page=100", headers=world.operator.headers).get_json()["total"]
    replay = client.post("/api/v1/participants", headers=headers, json=body)
    assert replay.status_code == 409 and replay.get_json()["type"] == "urn:pdx:problem:replayed-request"
    assert client.get("/api/v1/participants?per_page=100",
                      headers=world.operator.headers).get_json()["total"] == count


def test_a_signature_over_another_body_is_refused(client, world):
    from client.signing import signature_headers

    signed_for = {"name_zh": "甲", "name_en": "A", "roles": ["consumer"]}
    sent = {"name_zh": "乙", "name_en": "B", "roles": ["provider"]}
    headers = {**world.operator.headers, **signature_headers(world.operator.key, actor=world.operator.id,
                                                             method="POST", path="/api/v1/participants",
                                                             body=signed_for)}
    response = client.post("/api/v1/participants", headers=headers, json=sent)
    assert response.status_code == 401 and response.get_json()["type"] == "urn:pdx:problem:invalid-signature"


def test_stale_signatures_are_refused(client, world):
    from datetime import datetime, timedelta, timezone

    from ledger.entries import sign_request

    body = {"name_zh": "旧", "name_en": "Old", "roles": ["consumer"]}
    signed = sign_request(world.operator.key, actor=world.operator.id, method="POST", path="/api/v1/participants",
                          body=body, signed_at=datetime.now(timezone.utc) - timedelta(minutes=10))
    headers = {**world.operator.headers, "PDX-Key": signed.key, "PDX-Signed-At": signed.statement["signed_at"],
               "PDX-Nonce": signed.nonce, "PDX-Signature": signed.signature}
    response = client.post("/api/v1/participants", headers=headers, json=body)
    assert response.status_code == 401 and "more than" in response.get_json()["detail"]


def test_a_revoked_key_no_longer_signs(client, world):
    provider = world.participant("provider")
    old_key = provider.key
    world.register_key(provider)
    new_key = [k for k in client.keyring.values() if k is not old_key][-1]
    revoke = client.post(f"/api/v1/participants/me/keys/{public_key_id(old_key)}/revoke", headers=provider.headers)
    assert revoke.status_code == 200
    refused = client.post("/api/v1/assets", headers=provider.headers, json=asset_body())
    assert refused.status_code == 401
    provider.key = new_key
    assert client.post("/api/v1/assets", headers=provider.headers, json=asset_body()).status_code == 201


def public_key_id(key) -> str:
    from common.crypto import key_fingerprint

    return key_fingerprint(public_text(key))


def test_participants_read_only_the_entries_that_concern_them(client, world, regulator):
    provider = world.participant("provider")
    other = world.participant("provider")
    publish(client, other, register(client, other)["id"])
    size = client.get("/api/v1/ledger/checkpoint", headers=provider.headers).get_json()["size"]
    mine = client.get(f"/api/v1/ledger/entries?start=0&end={size}", headers=provider.headers).get_json()["entries"]
    assert mine and all(provider.id in json.dumps(e["entry"]) for e in mine)
    assert not any(e["entry"]["actor"] == other.id for e in mine)
    everything = client.get(f"/api/v1/ledger/entries?start=0&end={size}", headers=regulator.headers).get_json()
    assert len(everything["entries"]) == size


def test_checkpoint_is_signed_by_the_log_and_covers_every_entry(client, world, regulator):
    body = client.get("/api/v1/ledger/checkpoint", headers=regulator.headers).get_json()
    checkpoint, signatures = notes.parse_note(body["note"])
    from common.crypto import load_public_key

    notes.verify_log_signature(checkpoint, signatures, "test.pdx/ledger", load_public_key(body["log_public_key"]))
    entries = _all_entries(client, regulator)
    leaves = [merkle.leaf_hash(json.dumps(e["entry"], sort_keys=True, separators=(",", ":"),
                                          ensure_ascii=False).encode()) for e in entries]
    assert checkpoint.size == len(entries) and checkpoint.root == merkle.root(leaves)
    assert [bytes.fromhex(e["leaf_hash"]) for e in entries] == leaves


def test_inclusion_and_consistency_proofs_verify(client, world, regulator):
    first = client.get("/api/v1/ledger/checkpoint", headers=regulator.headers).get_json()
    provider = world.participant("provider")
    publish(client, provider, register(client, provider)["id"])
    second = client.get("/api/v1/ledger/checkpoint", headers=regulator.headers).get_json()
    assert second["size"] > first["size"]
    entries = _all_entries(client, regulator)
    for entry in entries:
        proof = client.get(f"/api/v1/ledger/proofs/inclusion?index={entry['seq']}&size={second['size']}",
                           headers=provider.headers).get_json()
        merkle.verify_inclusion(bytes.fromhex(entry["leaf_hash"]), entry["seq"], second["size"],
                                [_b64(h) for h in proof["proof"]], _b64(second["root"]))
    by_hash = client.get(f"/api/v1/ledger/proofs/inclusion?leaf_hash={entries[3]['leaf_hash']}"
                         f"&size={second['size']}", headers=provider.headers).get_json()
    assert by_hash["index"] == 3
    consistency = client.get(f"/api/v1/ledger/proofs/consistency?first={first['size']}&second={second['size']}",
                             headers=provider.headers).get_json()
    merkle.verify_consistency(first["size"], second["size"], _b64(first["root"]), _b64(second["root"]),
                              [_b64(h) for h in consistency["proof"]])
    assert client.get(f"/api/v1/ledger/checkpoints/{first['size']}",
                      headers=provider.headers).get_json()["root"] == first["root"]


@pytest.mark.parametrize("query, field", [
    ("entries?start=5&end=5", "end"), ("entries?start=0&end=5000", "end"), ("entries?start=-1&end=2", "start"),
    ("entries?start=9999&end=10000", "start"), ("entries?end=3", "start"),
    ("proofs/inclusion?index=0", "size"), ("proofs/inclusion?index=0&leaf_hash=" + "0" * 64 + "&size=2", "index"),
    ("proofs/inclusion?index=50&size=3", "index"), ("proofs/inclusion?index=0&size=100000", "size"),
    ("proofs/inclusion?leaf_hash=xyz&size=2", "leaf_hash"),
    ("proofs/consistency?first=3&second=2", "first"), ("proofs/consistency?first=0&second=2", "first"),
    ("proofs/consistency?first=1&second=100000", "second"),
])
def test_bad_ranges_are_refused_naming_the_argument(client, world, query, field):
    response = client.get(f"/api/v1/ledger/{query}", headers=world.operator.headers)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]


def test_unknown_leaf_hash_and_checkpoint_are_not_found(client, world):
    assert client.get("/api/v1/ledger/proofs/inclusion?leaf_hash=" + "a" * 64 + "&size=1",
                      headers=world.operator.headers).status_code == 404
    assert client.get("/api/v1/ledger/checkpoints/99999", headers=world.operator.headers).status_code == 404


@pytest.mark.parametrize("size", [2**63, 10**30])
def test_a_checkpoint_size_beyond_64_bits_is_not_found_and_changes_nothing(client, world, regulator, size):
    before = client.get("/api/v1/ledger/checkpoint", headers=regulator.headers).get_json()
    read = client.get(f"/api/v1/ledger/checkpoints/{size}", headers=regulator.headers)
    cosigned = client.post(f"/api/v1/ledger/checkpoints/{size}/cosignatures", headers=regulator.headers,
                           json={"line": "— witness AAAA"})
    for response in (read, cosigned):
        assert response.status_code == 404 and response.mimetype == "application/problem+json"
    assert client.get("/api/v1/ledger/checkpoint", headers=regulator.headers).get_json() == before


def test_export_streams_entries_then_checkpoints_for_auditors_only(client, world, regulator):
    consumer = world.participant("consumer")
    assert client.get("/api/v1/ledger/export", headers=consumer.headers).status_code == 403
    response = client.get("/api/v1/ledger/export", headers=regulator.headers)
    assert response.status_code == 200 and response.mimetype == "application/x-ndjson"
    lines = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    header, end = lines[0], lines[-1]
    entry_lines = [line for line in lines if "entry" in line]
    checkpoint_lines = [line for line in lines if "checkpoint" in line]
    assert header["pdx_ledger_export"] == 1 and header["size"] == len(entry_lines)
    assert end == {"end": {"entries": len(entry_lines), "checkpoints": len(checkpoint_lines)}}
    assert notes.parse_note(checkpoint_lines[-1]["checkpoint"])[0].size == len(entry_lines)


def test_a_witness_cosignature_is_verified_and_then_returned(client, world, regulator):
    key = regulator.key
    body = client.get("/api/v1/ledger/checkpoint", headers=regulator.headers).get_json()
    checkpoint, _ = notes.parse_note(body["note"])
    name = witness_name(checkpoint.origin, regulator.id)
    line = notes.cosign(checkpoint, name, key, int(time.time())).line()
    path = f"/api/v1/ledger/checkpoints/{checkpoint.size}/cosignatures"
    consumer = world.participant("consumer")
    assert client.post(path, headers=consumer.headers, json={"line": line}).status_code == 403
    stored = client.post(path, headers=regulator.headers, json={"line": line})
    assert stored.status_code == 201 and stored.get_json()["cosigners"] == [regulator.id]
    assert line in client.get(f"/api/v1/ledger/checkpoints/{checkpoint.size}",
                              headers=consumer.headers).get_json()["note"]
    forged = notes.cosign(checkpoint, name, world.operator.key, int(time.time())).line()
    refused = client.post(path, headers=regulator.headers, json={"line": forged})
    assert refused.status_code == 422 and "line" in refused.get_json()["errors"]


def test_a_replayed_draft_registration_is_refused_although_drafts_write_no_entry(client, world):
    from client.signing import signature_headers

    provider = world.participant("provider")
    body = asset_body()
    headers = {**provider.headers, **signature_headers(provider.key, actor=provider.id, method="POST",
                                                       path="/api/v1/assets", body=body)}
    assert client.post("/api/v1/assets", headers=headers, json=body).status_code == 201
    replay = client.post("/api/v1/assets", headers=headers, json=body)
    assert replay.status_code == 409 and replay.get_json()["type"] == "urn:pdx:problem:replayed-request"
    drafts = client.get("/api/v1/assets?status=draft", headers=provider.headers).get_json()
    assert drafts["total"] == 1


def test_a_signing_time_in_another_format_is_refused(client, world):
    from client.signing import signature_headers

    body = {"name_zh": "格式", "name_en": "Format", "roles": ["consumer"]}
    headers = {**world.operator.headers, **signature_headers(world.operator.key, actor=world.operator.id,
                                                             method="POST", path="/api/v1/participants", body=body)}
    headers["PDX-Signed-At"] = headers["PDX-Signed-At"][:21] + "Z"  # one fractional digit instead of six
    response = client.post("/api/v1/participants", headers=headers, json=body)
    assert response.status_code == 401 and "six fractional digits" in response.get_json()["detail"]


def test_a_body_that_has_no_canonical_form_is_a_422_not_a_500(client, world):
    from datetime import datetime, timezone

    from ledger.entries import format_time

    # No client can sign this body (RFC 8785 has no form for 2**60), so the headers are well-formed but unsigned.
    headers = {**world.operator.headers, "PDX-Key": public_key_id(world.operator.key), "PDX-Nonce": "n" * 32,
               "PDX-Signed-At": format_time(datetime.now(timezone.utc)), "PDX-Signature": "AAAA"}
    response = client.post("/api/v1/participants", headers=headers, sign=False, data=json.dumps(
        {"name_zh": "大", "name_en": "Big", "roles": ["consumer"], "extra": 2**60}), content_type="application/json")
    assert response.status_code == 422 and "_body" in response.get_json()["errors"]
