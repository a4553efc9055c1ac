"""The offline auditor over synthetic logs built in-process: any valid history verifies, any tampering fails."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from common import crypto
from ledger import entries, notes
from ledger.audit import AuditFailure, verify_export
from ledger.entries import Draft
from ledger.merkle import MemoryTree, leaf_hash

ORIGIN = "test.pdx/ledger"
API = "/api/v1"
START = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
ACTIONS = ("provider", "consumer", "publish", "update", "retire", "suspend", "reinstate", "add_key", "revoke_key",
           "domain", "checkpoint")


def seeded_key(label: str) -> Ed25519PrivateKey:
    """Return a deterministic key, so that Hypothesis replays the same log for the same actions."""
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(label.encode()).digest())


def public(key: Ed25519PrivateKey) -> str:
    return crypto.public_key_text(key.public_key())


@dataclass
class Member:
    id: str
    roles: list[str]
    status: str
    keys: list[Ed25519PrivateKey] = field(default_factory=list)


class LogBuilder:
    """Writes a log the way the exchange does: signed requests, operator-signed canonical entries, checkpoints."""

    def __init__(self, log_key: Ed25519PrivateKey | None = None) -> None:
        self.log_key = log_key or seeded_key("log")
        self.records: list[tuple[bytes, str]] = []
        self.tree = MemoryTree()
        self.checkpoints: list[int] = []
        self.clock = START
        self.members: list[Member] = []
        self.assets: dict[str, tuple[Member, str]] = {}
        self.revoked: list[str] = []
        self.append(Draft("log.genesis", entries.SYSTEM_ACTOR,
                          body={"origin": ORIGIN, "log_public_key": public(self.log_key)}))
        self.operator = Member("prt_operator", ["operator"], "active")
        self.append(Draft("participant.enrolled", entries.SYSTEM_ACTOR, refs={"participant": [self.operator.id]},
                          body={"name_zh": "运营方", "name_en": "Operator", "roles": ["operator"], "status": "active"}))
        self.members.append(self.operator)
        self.add_key(self.operator)

    def append(self, draft: Draft, request: entries.SignedRequest | None = None) -> int:
        seq = len(self.records)
        self.clock += timedelta(seconds=1)
        data, signature = entries.build(draft, seq=seq, time=entries.format_time(self.clock), request=request,
                                        commit={}, operator_key=self.log_key)
        self.records.append((data, signature))
        self.tree.append(leaf_hash(data))
        return seq

    def act(self, actor: Member, method: str, path: str, body: Any, draft: Draft,
            key: Ed25519PrivateKey | None = None, signed_at: datetime | None = None) -> int:
        request = entries.sign_request(key or actor.keys[-1], actor=actor.id, method=method, path=path, body=body,
                                       signed_at=signed_at or self.clock, nonce=f"nonce-{len(self.records):08d}")
        return self.append(draft, request)

    def enrol(self, role: str) -> Member:
        member = Member(f"prt_{role}_{len(self.records)}", [role], "pending")
        body = {"name_zh": "机构", "name_en": "Agency", "roles": [role]}
        self.act(self.operator, "POST", f"{API}/participants", body, Draft(
            "participant.enrolled", self.operator.id, refs={"participant": [member.id]},
            body={**body, "status": "pending"}))
        self.members.append(member)
        self.change_status(member, "admit", "active")
        self.add_key(member)
        return member

    def change_status(self, member: Member, action: str, status: str) -> None:
        entry_type = {"admit": "participant.admitted", "suspend": "participant.suspended",
                      "reinstate": "participant.reinstated"}[action]
        self.act(self.operator, "POST", f"{API}/participants/{member.id}/{action}", {"reason": None}, Draft(
            entry_type, self.operator.id, refs={"participant": [member.id]}, body={"status": status, "reason": None}))
        member.status = status

    def add_key(self, member: Member) -> None:
        key = seeded_key(f"{member.id}/{len(self.records)}")
        public_text = public(key)
        key_id = crypto.key_fingerprint(public_text)
        body = {"public_key": public_text, "label": None,
                "proof": crypto.sign(key, crypto.key_registration_message(member.id, public_text))}
        self.act(member, "POST", f"{API}/participants/me/keys", body, Draft(
            "key.registered", member.id, refs={"participant": [member.id], "key": [key_id]},
            body={"public_key": public_text, "algorithm": "ed25519", "label": None}), key=key)
        member.keys.append(key)

    def revoke_key(self, member: Member) -> None:
        old = member.keys.pop(0)
        key_id = crypto.key_fingerprint(public(old))
        self.act(member, "POST", f"{API}/participants/me/keys/{key_id}/revoke", None, Draft(
            "key.revoked", member.id, refs={"participant": [member.id], "key": [key_id]}))
        self.revoked.append(key_id)

    def asset_body(self, provider: Member, asset_id: str, title: str) -> dict[str, Any]:
        return {"provider": provider.id, "domain": "market-regulation", "grade": 2, "computation_kinds": ["aggregate"],
                "authoritative_for": [f"code-{asset_id}"], "title_zh": "企业登记", "title_en": title,
                "metadata_sha256": hashlib.sha256(title.encode()).hexdigest()}

    def publish(self, provider: Member) -> None:
        asset_id = f"ast_{len(self.records)}"
        self.act(provider, "POST", f"{API}/assets/{asset_id}/publish", None, Draft(
            "asset.published", provider.id, refs={"asset": [asset_id]},
            body=self.asset_body(provider, asset_id, "Registrations")))
        self.assets[asset_id] = (provider, "published")

    def update(self, asset_id: str) -> None:
        provider, _ = self.assets[asset_id]
        title = f"Registrations, revision {len(self.records)}"
        self.act(provider, "PATCH", f"{API}/assets/{asset_id}", {"title_en": title}, Draft(
            "asset.updated", provider.id, refs={"asset": [asset_id]},
            body={**self.asset_body(provider, asset_id, title), "changed": ["title_en"]}))

    def retire(self, asset_id: str) -> None:
        provider, _ = self.assets[asset_id]
        self.act(provider, "POST", f"{API}/assets/{asset_id}/retire", None, Draft(
            "asset.retired", provider.id, refs={"asset": [asset_id]},
            body=self.asset_body(provider, asset_id, "Registrations")))
        self.assets[asset_id] = (provider, "retired")

    def add_domain(self) -> None:
        code = f"domain-{len(self.records)}"
        body = {"code": code, "name_zh": "领域", "name_en": "Domain", "eu_theme": None}
        self.act(self.operator, "POST", f"{API}/domains", body, Draft(
            "domain.added", self.operator.id, refs={"domain": [code]}, body=body))

    def run(self, action: str) -> None:
        """Apply one action if the current state allows it (a random action list always gives a valid log)."""
        active = [m for m in self.members if m.status == "active" and m is not self.operator]
        providers = [m for m in active if "provider" in m.roles]
        published = [a for a, (p, status) in self.assets.items() if status == "published" and p.status == "active"]
        if action in ("provider", "consumer"):
            self.enrol(action)
        elif action == "publish" and providers:
            self.publish(providers[-1])
        elif action in ("update", "retire") and published:
            getattr(self, action)(published[0])
        elif action == "suspend" and active:
            self.change_status(active[0], "suspend", "suspended")
        elif action == "reinstate" and any(m.status == "suspended" for m in self.members):
            self.change_status(next(m for m in self.members if m.status == "suspended"), "reinstate", "active")
        elif action == "add_key" and active:
            self.add_key(active[-1])
        elif action == "revoke_key" and any(len(m.keys) > 1 for m in active):
            self.revoke_key(next(m for m in active if len(m.keys) > 1))
        elif action == "domain":
            self.add_domain()
        elif action == "checkpoint":
            self.checkpoint()

    def checkpoint(self) -> None:
        if not self.checkpoints or self.checkpoints[-1] < len(self.records):
            self.checkpoints.append(len(self.records))

    def note(self, size: int, root: bytes | None = None) -> str:
        checkpoint = notes.Checkpoint(ORIGIN, size, root if root is not None else self.tree.root(size))
        return notes.note(checkpoint, [notes.sign_checkpoint(checkpoint, ORIGIN, self.log_key)])

    def export(self) -> list[str]:
        """Return the export lines, with a final checkpoint covering every entry."""
        self.checkpoint()
        lines = [line({"pdx_ledger_export": 1, "origin": ORIGIN, "log_public_key": public(self.log_key),
                       "size": len(self.records)})]
        lines += [entry_line(seq, data, signature) for seq, (data, signature) in enumerate(self.records)]
        lines += [line({"checkpoint": self.note(size)}) for size in self.checkpoints]
        lines.append(line({"end": {"entries": len(self.records), "checkpoints": len(self.checkpoints)}}))
        return lines


def line(value: dict) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n"


def entry_line(seq: int, data: bytes, signature: str) -> str:
    return line({"seq": seq, "entry": data.decode("utf-8", "surrogateescape"), "operator_sig": signature})


def build(actions: list[str]) -> LogBuilder:
    log = LogBuilder()
    for action in actions:
        log.run(action)
    return log


def verify(lines: list[str], **kwargs):
    return verify_export(lines, seeded_key("log").public_key(), **kwargs)


histories = st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=14)
fast = settings(max_examples=50, deadline=None)


@fast
@given(histories)
def test_any_valid_history_verifies_and_the_report_counts_it(actions):
    log = build(actions)
    report = verify(log.export())
    assert report.entries == report.size == len(log.records)
    assert report.root == log.tree.root().hex()
    assert report.checkpoints == len(log.checkpoints)
    assert report.participants == len(log.members)
    assert report.revoked_keys == len(log.revoked)
    assert sum(report.entry_types.values()) == len(log.records)
    assert report.entry_types["log.genesis"] == 1


@fast
@given(histories, st.data())
def test_changing_any_byte_of_any_entry_is_caught_at_that_entry(actions, data):
    log = build(actions)
    seq = data.draw(st.integers(0, len(log.records) - 1), label="seq")
    entry, signature = log.records[seq]
    position = data.draw(st.integers(0, len(entry) - 1), label="position")
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != entry[position]), label="byte")
    lines = log.export()
    lines[1 + seq] = entry_line(seq, entry[:position] + bytes([byte]) + entry[position + 1:], signature)
    with pytest.raises(AuditFailure) as failure:
        verify(lines)
    assert failure.value.seq == seq


@fast
@given(histories, st.data())
def test_deleting_any_line_is_caught(actions, data):
    lines = build(actions).export()
    del lines[data.draw(st.integers(0, len(lines) - 1), label="line")]
    with pytest.raises(AuditFailure):
        verify(lines)


@fast
@given(histories, st.data())
def test_swapping_any_two_entries_is_caught_at_the_first(actions, data):
    log = build(actions)
    first, second = sorted(data.draw(st.lists(st.integers(0, len(log.records) - 1), min_size=2, max_size=2,
                                              unique=True), label="entries"))
    lines = log.export()
    lines[1 + first], lines[1 + second] = lines[1 + second], lines[1 + first]
    with pytest.raises(AuditFailure) as failure:
        verify(lines)
    assert (failure.value.seq, failure.value.kind) == (first, "sequence")


@fast
@given(histories, st.data())
def test_inserting_a_copy_of_any_entry_anywhere_is_caught(actions, data):
    log = build(actions)
    copied = data.draw(st.integers(0, len(log.records) - 1), label="copied")
    position = data.draw(st.integers(0, len(log.records)), label="position")
    lines = log.export()
    lines.insert(1 + position, lines[1 + copied])
    with pytest.raises(AuditFailure) as failure:
        verify(lines)
    # the copy is caught where it lands, unless it lands just before its original, which is then one too many
    assert failure.value.seq == (position + 1 if copied == position else position)


REQUEST_FIELDS = ("actor", "key", "method", "path", "body_sha256", "signed_at", "nonce")


@fast
@given(histories, st.data())
def test_the_log_key_cannot_alter_any_field_of_a_signed_request(actions, data):
    log = build(actions)
    signed = [seq for seq, (entry, _) in enumerate(log.records) if json.loads(entry)["request"] is not None]
    seq = data.draw(st.sampled_from(signed), label="seq")
    entry = json.loads(log.records[seq][0])
    name = data.draw(st.sampled_from(REQUEST_FIELDS), label="field")
    value = data.draw(st.text(min_size=1).filter(lambda text: text != entry["request"][name]), label="value")
    request = entries.SignedRequest({**entry["request"], name: value}, entry["sig"]["actor"])
    draft = Draft(entry["type"], request.actor, refs=entry["refs"], body=entry["body"])  # the entry follows suit
    forged, signature = entries.build(draft, seq=seq, time=entry["time"], request=request, commit=entry["commit"],
                                      operator_key=log.log_key)
    log.records[seq] = (forged, signature)
    log.tree = MemoryTree(leaf_hash(record) for record, _ in log.records)
    with pytest.raises(AuditFailure) as failure:
        verify(log.export())
    assert failure.value.seq == seq


# --- each rule, broken once at the end of an otherwise valid log ------------------------------------------


@dataclass
class Scene:
    log: LogBuilder
    provider: Member
    consumer: Member
    asset: str


def scene() -> Scene:
    log = LogBuilder()
    provider, consumer = log.enrol("provider"), log.enrol("consumer")
    log.publish(provider)
    return Scene(log, provider, consumer, next(iter(log.assets)))


def update_draft(s: Scene, actor: Member, **changes: Any) -> Draft:
    body = {**s.log.asset_body(s.provider, s.asset, "Registrations"), "changed": ["title_en"], **changes}
    return Draft("asset.updated", actor.id, refs={"asset": [s.asset]}, body=body)


def update(s: Scene, actor: Member, key: Ed25519PrivateKey | None = None, signed_at: datetime | None = None,
           path: str | None = None, **changes: Any) -> None:
    s.log.act(actor, "PATCH", path or f"{API}/assets/{s.asset}", {"title_en": "x"}, update_draft(s, actor, **changes),
              key=key, signed_at=signed_at)


def suspended_provider_publishes(s: Scene) -> None:
    s.log.change_status(s.provider, "suspend", "suspended")
    s.log.publish(s.provider)


def operator_suspends_itself(s: Scene) -> None:
    s.log.change_status(s.log.operator, "suspend", "suspended")


def active_participant_reinstated(s: Scene) -> None:
    s.log.change_status(s.consumer, "reinstate", "active")


def provider_enrols_a_participant(s: Scene) -> None:
    body = {"name_zh": "机构", "name_en": "Agency", "roles": ["consumer"]}
    s.log.act(s.provider, "POST", f"{API}/participants", body, Draft(
        "participant.enrolled", s.provider.id, refs={"participant": ["prt_new"]}, body={**body, "status": "pending"}))


def exchange_enrols_a_second_operator(s: Scene) -> None:
    s.log.append(Draft("participant.enrolled", entries.SYSTEM_ACTOR, refs={"participant": ["prt_second"]},
                       body={"name_zh": "运营方", "name_en": "Operator", "roles": ["operator"], "status": "active"}))


def another_provider_updates_the_asset(s: Scene) -> None:
    update(s, s.log.enrol("provider"))


def published_grade_changes(s: Scene) -> None:
    update(s, s.provider, grade=3)


def retired_asset_updated(s: Scene) -> None:
    s.log.retire(s.asset)
    update(s, s.provider)


def two_assets_claim_one_data_element(s: Scene) -> None:
    body = s.log.asset_body(s.provider, "ast_two", "Copy")
    s.log.act(s.provider, "POST", f"{API}/assets/ast_two/publish", None, Draft(
        "asset.published", s.provider.id, refs={"asset": ["ast_two"]},
        body={**body, "authoritative_for": [f"code-{s.asset}"]}))


def grade_out_of_range(s: Scene) -> None:
    s.log.act(s.provider, "POST", f"{API}/assets/ast_five/publish", None, Draft(
        "asset.published", s.provider.id, refs={"asset": ["ast_five"]},
        body={**s.log.asset_body(s.provider, "ast_five", "Five"), "grade": 5}))


def request_for_another_asset(s: Scene) -> None:
    update(s, s.provider, path=f"{API}/assets/ast_other")


def request_signed_long_before(s: Scene) -> None:
    update(s, s.provider, signed_at=s.log.clock - timedelta(seconds=400))


def unknown_entry_type(s: Scene) -> None:
    s.log.act(s.provider, "DELETE", f"{API}/assets/{s.asset}", None,
              Draft("asset.deleted", s.provider.id, refs={"asset": [s.asset]}))


def participant_entry_without_request(s: Scene) -> None:
    s.log.append(update_draft(s, s.provider))


def time_goes_backwards(s: Scene) -> None:
    s.log.clock -= timedelta(seconds=10)
    update(s, s.provider)


def second_genesis(s: Scene) -> None:
    s.log.append(Draft("log.genesis", entries.SYSTEM_ACTOR,
                       body={"origin": ORIGIN, "log_public_key": public(s.log.log_key)}))


def domain_added_twice(s: Scene) -> None:
    body = {"code": "twice", "name_zh": "领域", "name_en": "Domain", "eu_theme": None}
    for _ in range(2):
        s.log.act(s.log.operator, "POST", f"{API}/domains", body,
                  Draft("domain.added", s.log.operator.id, refs={"domain": ["twice"]}, body=body))


def signed_with_another_participants_key(s: Scene) -> None:
    update(s, s.provider, key=s.consumer.keys[-1])


def key_registration_signed_by_an_older_key(s: Scene) -> None:
    new = public(seeded_key("new"))
    s.log.act(s.provider, "POST", f"{API}/participants/me/keys", {"public_key": new}, Draft(
        "key.registered", s.provider.id, refs={"participant": [s.provider.id], "key": [crypto.key_fingerprint(new)]},
        body={"public_key": new, "algorithm": "ed25519", "label": None}))


def key_revoked_by_another_participant(s: Scene) -> None:
    key_id = crypto.key_fingerprint(public(s.provider.keys[-1]))
    s.log.act(s.consumer, "POST", f"{API}/participants/{s.provider.id}/keys/{key_id}/revoke", None, Draft(
        "key.revoked", s.consumer.id, refs={"participant": [s.provider.id], "key": [key_id]}))


def domain_recorded_other_than_requested(s: Scene) -> None:
    body = {"code": "asked", "name_zh": "领域", "name_en": "Domain", "eu_theme": None}
    s.log.act(s.log.operator, "POST", f"{API}/domains", body, Draft(
        "domain.added", s.log.operator.id, refs={"domain": ["recorded"]}, body={**body, "code": "recorded"}))


BROKEN_RULES = [
    (suspended_provider_publishes, "inactive-actor"),
    (operator_suspends_itself, "self-status"),
    (active_participant_reinstated, "transition"),
    (provider_enrols_a_participant, "forbidden"),
    (exchange_enrols_a_second_operator, "bootstrap"),
    (another_provider_updates_the_asset, "asset-owner"),
    (published_grade_changes, "frozen-field"),
    (retired_asset_updated, "asset-status"),
    (two_assets_claim_one_data_element, "authoritative-source"),
    (grade_out_of_range, "grade"),
    (request_for_another_asset, "request-route"),
    (request_signed_long_before, "signature-window"),
    (unknown_entry_type, "unknown-type"),
    (participant_entry_without_request, "unsigned-entry"),
    (time_goes_backwards, "time-order"),
    (second_genesis, "genesis"),
    (domain_added_twice, "duplicate-domain"),
    (signed_with_another_participants_key, "unknown-key"),
    (key_registration_signed_by_an_older_key, "request-key"),
    (key_revoked_by_another_participant, "forbidden"),
    (domain_recorded_other_than_requested, "request-body"),
]


@pytest.mark.parametrize("break_rule, kind", BROKEN_RULES, ids=[f.__name__ for f, _ in BROKEN_RULES])
def test_an_entry_the_rules_forbid_is_named_with_its_rule(break_rule, kind):
    s = scene()
    break_rule(s)
    with pytest.raises(AuditFailure) as failure:
        verify(s.log.export())
    assert (failure.value.seq, failure.value.kind) == (len(s.log.records) - 1, kind)
