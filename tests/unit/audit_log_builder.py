"""A synthetic log built in-process for the auditor tests: participants, keys, assets, signed requests."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import settings
from hypothesis import strategies as st

from common import crypto
from ledger import entries, notes
from ledger.audit import verify_export
from ledger.entries import Draft
from ledger.merkle import MemoryTree, leaf_hash
from participants.keys import approval, endorsement

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

    def add_key(self, member: Member, vouch: dict[str, Any] | None = None) -> Ed25519PrivateKey:
        """Register a new key: endorsed by the member's last key, else approved by the operator (the operator's
        first key, the exchange's first, needs neither); ``vouch`` replaces what would be recorded."""
        key = seeded_key(f"{member.id}/{len(self.records)}")
        public_text = public(key)
        key_id = crypto.key_fingerprint(public_text)
        if vouch is None:
            vouch = self.vouch(member, public_text)
        body = {"public_key": public_text, "label": None,
                "proof": crypto.sign(key, crypto.key_registration_message(member.id, public_text)), **vouch}
        self.act(member, "POST", f"{API}/participants/me/keys", body, Draft(
            "key.registered", member.id, refs={"participant": [member.id], "key": [key_id]},
            body={"public_key": public_text, "algorithm": "ed25519", "label": None, **vouch}), key=key)
        member.keys.append(key)
        return key

    def vouch(self, member: Member, public_text: str) -> dict[str, Any]:
        """Return what the exchange requires with a new key of ``member``: an endorsement or an approval."""
        if member.keys:
            return {"endorsement": endorsement(member.keys[-1], member.id, public_text)}
        if member is self.operator:
            return {}
        return {"approval": approval(self.operator.keys[-1], self.operator.id, member.id, public_text, self.clock)}

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
