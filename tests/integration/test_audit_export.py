"""The offline auditor over a real export: a history made through the API verifies, and each way of tampering
with the export (or of rewriting the log with the operator's own key) is named at the entry or line it touches."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from client.audit_cli import audit
from common.db import get_database
from ledger import checkpoints, entries, export, log, merkle, notes, service
from ledger.audit import AuditFailure, AuditReport, verify_export
from ledger.entries import Draft
from ledger.log import LogIdentity
from participants.keys import key_id, public_text
from tests.support import publish, register

pytestmark = pytest.mark.sql  # the export reads the ledger tables

WITNESS = "witness.example/cosigner"


@dataclass
class History:
    """A log made through the API, its export, and what a tamperer needs: the log key and the signers' keys."""

    lines: list[str]
    identity: LogIdentity
    first_checkpoint: str
    provider_id: str
    provider_key: Ed25519PrivateKey
    revoked_key: Ed25519PrivateKey
    updated_asset: str

    @property
    def log_public_key(self):
        return self.identity.key.public_key()

    @property
    def size(self) -> int:
        return json.loads(self.lines[0])["size"]

    def entry(self, seq: int) -> dict:
        return entries.parse(json.loads(self.lines[1 + seq])["entry"].encode())

    def verify(self, lines: list[str] | None = None, **kwargs) -> AuditReport:
        return verify_export(self.lines if lines is None else lines, self.log_public_key, **kwargs)


def _sign_checkpoint(app) -> str:
    with app.app_context(), get_database().transaction() as session:
        return checkpoints.sign_current(session, service.identity()).note


@pytest.fixture
def history(app, client, world) -> History:
    """Participants, keys, assets published, updated and retired, a suspension, a key revocation and a domain."""
    provider = world.participant("provider", name="省市场监督管理局")
    consumer = world.participant("consumer", name="城市研究院")
    pending = client.post("/api/v1/participants", headers=world.operator.headers, json={
        "name_zh": "审计署", "name_en": "Audit office", "roles": ["regulator"], "contact_email": "a@audit.example"})
    assert pending.status_code == 201, pending.get_json()
    first_checkpoint = _sign_checkpoint(app)
    kept = register(client, provider, authoritative_for=["enterprise.uscc"])
    publish(client, provider, kept["id"])
    changed = client.patch(f"/api/v1/assets/{kept['id']}", headers=provider.headers,
                           json={"title_en": "Enterprise registrations, revised"})
    assert changed.status_code == 200, changed.get_json()
    dropped = register(client, provider, title_en="Old registry")
    publish(client, provider, dropped["id"])
    assert client.post(f"/api/v1/assets/{dropped['id']}/retire", headers=provider.headers).status_code == 200
    for action in ("suspend", "reinstate"):
        response = client.post(f"/api/v1/participants/{consumer.id}/{action}", headers=world.operator.headers,
                               json={"reason": "audit finding" if action == "suspend" else None})
        assert response.status_code == 200, response.get_json()
    spare = world.register_key(provider)
    revoked = client.post(f"/api/v1/participants/me/keys/{key_id(spare)}/revoke", headers=provider.headers)
    assert revoked.status_code == 200, revoked.get_json()
    domain = client.post("/api/v1/domains", headers=world.operator.headers,
                         json={"code": "audit-trail", "name_zh": "审计", "name_en": "Audit trail"})
    assert domain.status_code == 201, domain.get_json()
    _sign_checkpoint(app)
    with app.app_context(), get_database().transaction() as session:
        identity = service.identity()
        lines = list(export.lines(session, identity.origin, service.public_key_text(), log.size(session)))
    return History(lines, identity, first_checkpoint, provider.id, provider.key, spare, kept["id"])


EXPECTED_TYPES = {
    "log.genesis": 1, "participant.enrolled": 4, "participant.admitted": 2, "key.registered": 4,
    "asset.published": 2, "asset.updated": 1, "asset.retired": 1, "participant.suspended": 1,
    "participant.reinstated": 1, "key.revoked": 1, "domain.added": 1,
}


def test_a_clean_export_verifies_and_the_report_counts_what_happened(history):
    report = history.verify()
    assert dict(report.entry_types) == EXPECTED_TYPES
    assert report.entries == report.size == sum(EXPECTED_TYPES.values())
    assert (report.participants, report.keys, report.revoked_keys, report.assets, report.domains) == (4, 4, 1, 2, 1)
    assert report.checkpoints == 2
    assert report.witnesses == () and report.since_size is None
    assert report.origin == history.identity.origin
    assert report.root == merkle.root([merkle.leaf_hash(json.loads(line)["entry"].encode())
                                       for line in history.lines[1:1 + report.size]]).hex()
    assert f"root          {report.root}" in report.render()


# --- tampering with the export -------------------------------------------------------------------------


def _seq_of(history: History, entry_type: str) -> int:
    return next(seq for seq in range(history.size) if history.entry(seq)["type"] == entry_type)


def _edit_entry(line: str, old: str, new: str) -> str:
    record = json.loads(line)
    assert old in record["entry"]
    record["entry"] = record["entry"].replace(old, new)
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


def _failure(history: History, lines: list[str], **kwargs) -> AuditFailure:
    with pytest.raises(AuditFailure) as caught:
        history.verify(lines, **kwargs)
    return caught.value


def test_an_altered_title_fails_the_operator_signature_of_its_entry(history):
    seq = _seq_of(history, "asset.published")
    lines = list(history.lines)
    lines[1 + seq] = _edit_entry(lines[1 + seq], "Enterprise registration records", "Enterprise registration recordz")
    failure = _failure(history, lines)
    assert (failure.seq, failure.kind) == (seq, "operator-signature")
    assert f"entry {seq}" in str(failure)


def test_a_deleted_entry_line_is_named_by_the_seq_that_went_missing(history):
    lines = list(history.lines)
    del lines[1 + 7]
    failure = _failure(history, lines)
    assert (failure.seq, failure.kind) == (7, "sequence")
    assert "expected entry 7, found entry 8" in failure.message


def test_two_swapped_entries_are_named_at_the_first(history):
    lines = list(history.lines)
    lines[1 + 4], lines[1 + 9] = lines[1 + 9], lines[1 + 4]
    failure = _failure(history, lines)
    assert (failure.seq, failure.kind) == (4, "sequence")


def _forged_line(key: Ed25519PrivateKey, seq: int, time_text: str, draft: Draft,
                 request: entries.SignedRequest | None) -> str:
    data, signature = entries.build(draft, seq=seq, time=time_text, request=request, commit={}, operator_key=key)
    return json.dumps({"seq": seq, "entry": data.decode(), "operator_sig": signature}, ensure_ascii=False) + "\n"


def test_an_inserted_entry_signed_by_another_key_fails_where_it_was_inserted(history):
    seq = 6
    previous = history.entry(seq - 1)
    draft = Draft("domain.added", previous["actor"], refs={"domain": ["forged"]}, body={"code": "forged"})
    lines = list(history.lines)
    lines.insert(1 + seq, _forged_line(Ed25519PrivateKey.generate(), seq, previous["time"], draft, None))
    failure = _failure(history, lines)
    assert (failure.seq, failure.kind) == (seq, "operator-signature")


@pytest.mark.parametrize("kept_lines, seq", [(-1, None), (10, 9)], ids=["no end line", "cut among entries"])
def test_a_truncated_export_fails(history, kept_lines, seq):
    failure = _failure(history, history.lines[:kept_lines])
    assert (failure.seq, failure.kind) == (seq, "truncated")


def test_a_checkpoint_whose_root_was_replaced_fails_naming_both_roots(history):
    position = len(history.lines) - 2
    record = json.loads(history.lines[position])
    checkpoint, _ = notes.parse_note(record["checkpoint"])
    forged_root = bytes(32)
    record["checkpoint"] = record["checkpoint"].replace(base64.b64encode(checkpoint.root).decode(),
                                                        base64.b64encode(forged_root).decode())
    lines = list(history.lines)
    lines[position] = json.dumps(record) + "\n"
    failure = _failure(history, lines)
    assert (failure.seq, failure.kind) == (None, "checkpoint-root")
    assert forged_root.hex() in failure.message and checkpoint.root.hex() in failure.message


def test_an_export_of_another_log_fails_at_the_header(history):
    with pytest.raises(AuditFailure) as caught:
        verify_export(history.lines, Ed25519PrivateKey.generate().public_key())
    assert (caught.value.seq, caught.value.kind) == (None, "wrong-log")


def test_entries_resigned_by_another_log_key_fail_at_entry_zero(history):
    stranger = Ed25519PrivateKey.generate()
    lines = list(history.lines)
    record = json.loads(lines[1])
    record["operator_sig"] = base64.b64encode(stranger.sign(entries.ENTRY_CONTEXT + record["entry"].encode())).decode()
    lines[1] = json.dumps(record, ensure_ascii=False) + "\n"
    failure = _failure(history, lines)
    assert (failure.seq, failure.kind) == (0, "operator-signature")


# --- a log rewritten with the operator's own key: the actor signatures and the rules still catch it --------


def _append_entry(history: History, line: str) -> list[str]:
    lines = list(history.lines)
    lines.insert(1 + history.size, line)
    return lines


def test_a_replayed_request_is_caught_even_when_the_log_key_signs_it(history):
    seq = _seq_of(history, "asset.updated")
    original = history.entry(seq)
    request = entries.signed_request_of(original)
    draft = Draft(original["type"], original["actor"], refs=original["refs"], body=original["body"])
    last = history.entry(history.size - 1)
    forged = _forged_line(history.identity.key, history.size, last["time"], draft, request)
    failure = _failure(history, _append_entry(history, forged))
    assert (failure.seq, failure.kind) == (history.size, "replayed-request")
    assert f"already used by entry {seq}" in failure.message


def test_a_request_signed_by_a_revoked_key_is_caught_even_when_the_log_key_signs_it(history):
    last = history.entry(history.size - 1)
    body = {"title_en": "Changed with a stolen key"}
    path = f"/api/v1/assets/{history.updated_asset}"
    request = entries.sign_request(history.revoked_key, actor=history.provider_id, method="PATCH", path=path,
                                   body=body, signed_at=entries.parse_time(last["time"]))
    updated = history.entry(_seq_of(history, "asset.updated"))
    draft = Draft("asset.updated", history.provider_id, refs=updated["refs"], body=updated["body"])
    forged = _forged_line(history.identity.key, history.size, last["time"], draft, request)
    failure = _failure(history, _append_entry(history, forged))
    assert (failure.seq, failure.kind) == (history.size, "revoked-key")
    assert key_id(history.revoked_key) in failure.message


def test_the_log_key_cannot_forge_a_request_of_a_participant(history):
    last = history.entry(history.size - 1)
    stolen = entries.sign_request(Ed25519PrivateKey.generate(), actor=history.provider_id, method="POST",
                                  path="/api/v1/assets/ast_x/publish", body=None,
                                  signed_at=entries.parse_time(last["time"]))
    request = entries.SignedRequest({**stolen.statement, "key": key_id(history.provider_key)}, stolen.signature)
    body = {**history.entry(_seq_of(history, "asset.published"))["body"], "authoritative_for": []}
    draft = Draft("asset.published", history.provider_id, refs={"asset": ["ast_x"]}, body=body)
    forged = _forged_line(history.identity.key, history.size, last["time"], draft, request)
    failure = _failure(history, _append_entry(history, forged))
    assert (failure.seq, failure.kind) == (history.size, "actor-signature")


# --- since: a checkpoint saved earlier ------------------------------------------------------------------


def test_a_checkpoint_saved_earlier_is_a_prefix_of_the_log(history):
    size = notes.parse_note(history.first_checkpoint)[0].size
    report = history.verify(since=history.first_checkpoint)
    assert report.since_size == size
    assert f"saved checkpoint of size {size}" in report.render()


def test_a_saved_checkpoint_of_another_history_reveals_a_fork(history):
    size = notes.parse_note(history.first_checkpoint)[0].size
    leaves = [merkle.leaf_hash(json.loads(line)["entry"].encode()) for line in history.lines[1:1 + size]]
    rewritten = history.entry(size - 1)
    data, _ = entries.build(Draft(rewritten["type"], rewritten["actor"], refs=rewritten["refs"],
                                  body={**rewritten["body"], "name_en": "Another audit office"}),
                            seq=size - 1, time=rewritten["time"], request=entries.signed_request_of(rewritten),
                            commit=rewritten["commit"], operator_key=history.identity.key)
    leaves[-1] = merkle.leaf_hash(data)
    forked = notes.Checkpoint(history.identity.origin, size, merkle.root(leaves))
    note = notes.note(forked, [notes.sign_checkpoint(forked, history.identity.origin, history.identity.key)])
    failure = _failure(history, history.lines, since=note)
    assert (failure.seq, failure.kind) == (None, "fork")
    assert "forked" in failure.message


# --- witnesses ------------------------------------------------------------------------------------------


def _cosigned(history: History, witness: Ed25519PrivateKey, name: str = WITNESS) -> list[str]:
    """Return the export with a cosignature of the last checkpoint appended to its note."""
    position = len(history.lines) - 2
    record = json.loads(history.lines[position])
    checkpoint, _ = notes.parse_note(record["checkpoint"])
    record["checkpoint"] += notes.cosign(checkpoint, name, witness, int(time.time())).line()
    return history.lines[:position] + [json.dumps(record, ensure_ascii=False) + "\n", history.lines[-1]]


def test_a_required_witness_cosignature_verifies(history):
    witness = Ed25519PrivateKey.generate()
    report = history.verify(_cosigned(history, witness), witness_keys={WITNESS: witness.public_key()})
    assert report.witnesses == (WITNESS,)
    assert report.cosignatures_ignored == 0


def test_a_cosignature_checked_with_the_wrong_witness_key_fails(history):
    lines = _cosigned(history, Ed25519PrivateKey.generate())
    failure = _failure(history, lines, witness_keys={WITNESS: Ed25519PrivateKey.generate().public_key()})
    assert (failure.seq, failure.kind) == (None, "witness")


def test_a_missing_witness_cosignature_fails(history):
    failure = _failure(history, history.lines, witness_keys={WITNESS: Ed25519PrivateKey.generate().public_key()})
    assert (failure.seq, failure.kind) == (None, "witness")
    assert f"no cosignature by witness {WITNESS}" in failure.message


def test_cosignatures_of_unknown_witnesses_are_ignored_but_counted(history):
    report = history.verify(_cosigned(history, Ed25519PrivateKey.generate(), "someone.else/witness"))
    assert report.cosignatures_ignored == 1
    assert "1 cosignature(s) by unknown witnesses ignored" in report.render()


# --- the command line -----------------------------------------------------------------------------------


def _write(tmp_path, lines: list[str]) -> str:
    path = tmp_path / "ledger.jsonl"
    path.write_text("".join(lines), encoding="utf-8")
    return str(path)


def test_the_cli_prints_the_report_of_a_clean_export(history, tmp_path):
    key_file = tmp_path / "log.pub"
    key_file.write_text(public_text(history.identity.key) + "\n")
    since = tmp_path / "checkpoint.txt"
    since.write_text(history.first_checkpoint)
    result = CliRunner().invoke(audit, ["verify", _write(tmp_path, history.lines), "--operator-key", str(key_file),
                                        "--since", str(since)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK: ledger export of test.pdx/ledger verified")
    assert f"entries       {sum(EXPECTED_TYPES.values())}" in result.output


def test_the_cli_prints_fail_with_the_entry_and_exits_1(history, tmp_path):
    lines = list(history.lines)
    del lines[1 + 3]
    result = CliRunner().invoke(audit, ["verify", _write(tmp_path, lines),
                                        "--operator-key", public_text(history.identity.key)])
    assert result.exit_code == 1
    assert result.output.startswith("FAIL entry 3 [sequence]: ")


def test_the_cli_requires_a_cosignature_for_each_witness_key(history, tmp_path):
    witness = Ed25519PrivateKey.generate()
    path = _write(tmp_path, _cosigned(history, witness))
    good = CliRunner().invoke(audit, ["verify", path, "--operator-key", public_text(history.identity.key),
                                      "--witness-key", f"{WITNESS}={public_text(witness)}"])
    assert good.exit_code == 0, good.output
    other = Ed25519PrivateKey.generate()
    bad = CliRunner().invoke(audit, ["verify", path, "--operator-key", public_text(history.identity.key),
                                     "--witness-key", f"{WITNESS}={public_text(witness)}",
                                     "--witness-key", f"other.example/w={public_text(other)}"])
    assert bad.exit_code == 1 and "FAIL export [witness]" in bad.output


@pytest.mark.parametrize("arguments", [
    ["--operator-key", "not-a-key"],
    ["--operator-key", base64.b64encode(bytes(31)).decode()],
    ["--operator-key", public_text(Ed25519PrivateKey.generate()), "--witness-key", "no-equals-sign"],
    [],
], ids=["not base64", "31 bytes", "witness without a name", "no operator key"])
def test_the_cli_refuses_bad_arguments_with_exit_2(history, tmp_path, arguments):
    result = CliRunner().invoke(audit, ["verify", _write(tmp_path, history.lines), *arguments])
    assert result.exit_code == 2, result.output


def test_the_cli_reads_the_export_from_standard_input(history):
    result = CliRunner().invoke(audit, ["verify", "-", "--operator-key", public_text(history.identity.key)],
                                input="".join(history.lines))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK: ledger export of test.pdx/ledger verified")
