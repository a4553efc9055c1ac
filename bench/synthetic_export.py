"""A realistic ledger export built in memory, without a database, that ``ledger.audit`` accepts.

Entry 0 is the genesis; then the exchange bootstraps its operator (a system ``participant.enrolled``, active,
and the operator's self-signed ``key.registered``), the operator adds domains, and then a deterministic random
mix follows: the operator enrols participants (admitted at once, each registering its own key), providers
publish, update and retire assets, participants rotate keys (register a new one, revoke the old), and the
operator suspends and reinstates participants. Every participant entry carries a request signed with
``ledger.entries.sign_request`` for the route the auditor expects, a few milliseconds before the entry's time.
The lines are written exactly as ``ledger.export`` writes them, with a checkpoint every CHECKPOINT_EVERY
entries and one over the whole log, cosigned by one witness.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from common import crypto
from ledger import checkpoints, entries, merkle, notes
from ledger.entries import Draft, SignedRequest
from participants.keys import approval, endorsement

ORIGIN = "bench.pdx/ledger"
API = "/api/v1"
CHECKPOINT_EVERY = 10_000
WITNESS_ID = "prt_witness"
START = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)
STEP = timedelta(milliseconds=10)  # between entries
SIGNING_LEAD = timedelta(milliseconds=3)  # the request is signed this long before its entry
DOMAINS = (("market", "市场监管", "Market regulation", "ECON"), ("tax", "税务", "Taxation", "GOVE"),
           ("social", "社会保障", "Social security", "SOCI"), ("transport", "交通运输", "Transport", "TRAN"),
           ("ecology", "生态环境", "Ecology and environment", "ENVI"))
KINDS = ("download", "aggregate", "he-statistics", "he-scoring", "federated-learning")
PRIVATE_KINDS = ["he-statistics", "he-scoring", "federated-learning"]
ROLE_MIX = (("provider",) * 12 + ("consumer",) * 7 + ("regulator",))


@dataclass(frozen=True)
class Check:
    """What the bare baseline verifies for one entry: its bytes and every signature it carries."""

    data: bytes
    operator_sig: bytes
    operator_message: bytes
    actor_key: Ed25519PublicKey | None = None
    actor_sig: bytes = b""
    actor_message: bytes = b""


@dataclass
class Export:
    """An export's lines and what is needed to verify it."""

    lines: list[str]
    operator_key: Ed25519PublicKey
    witness_keys: dict[str, Ed25519PublicKey]
    checks: list[Check]
    signed_checkpoints: list[tuple[notes.Checkpoint, list[notes.Signature]]]
    types: dict[str, int] = field(default_factory=dict)


def _line(value: dict) -> str:
    # exactly ledger.export._line
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n"


@dataclass
class _Member:
    """A participant of the synthetic exchange: its id, roles, current signing key and status."""

    id: str
    roles: list[str]
    key: Ed25519PrivateKey
    key_id: str
    status: str = "active"


class _Builder:
    """Writes the export's entries one event at a time, keeping the state the next event depends on."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.log_key = Ed25519PrivateKey.generate()
        self.log_public = crypto.public_key_text(self.log_key.public_key())
        self.tree = merkle.MemoryTree()
        self.entry_lines: list[str] = []
        self.checks: list[Check] = []
        self.keys: dict[str, Ed25519PublicKey] = {}
        self.operator: _Member | None = None  # set by bootstrap
        self.members: list[_Member] = []
        self.providers: list[_Member] = []
        self.suspended: list[_Member] = []
        self.published: list[tuple[str, dict, _Member]] = []  # (asset id, ledger body, provider), any order
        self.serial = 0

    @property
    def seq(self) -> int:
        return len(self.entry_lines)

    def _id(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}_{hashlib.sha256(f'{prefix}{self.serial}'.encode()).hexdigest()[:32]}"

    def append(self, draft: Draft, request: SignedRequest | None = None, commit: dict | None = None) -> None:
        seq, moment = self.seq, START + STEP * self.seq
        data, operator_sig = entries.build(draft, seq=seq, time=entries.format_time(moment), request=request,
                                           commit=commit or {}, operator_key=self.log_key)
        self.tree.append(merkle.leaf_hash(data))
        self.entry_lines.append(_line({"seq": seq, "entry": data.decode("utf-8"), "operator_sig": operator_sig}))
        check = Check(data, crypto.b64decode(operator_sig), entries.ENTRY_CONTEXT + data)
        if request is not None:
            check = Check(check.data, check.operator_sig, check.operator_message, self.keys[request.key],
                          crypto.b64decode(request.signature), entries.request_message(request.statement))
        self.checks.append(check)

    def sign(self, key: Ed25519PrivateKey, actor: str, method: str, path: str, body: object) -> SignedRequest:
        signed_at = START + STEP * self.seq - SIGNING_LEAD
        return entries.sign_request(key, actor=actor, method=method, path=path, body=body, signed_at=signed_at,
                                    nonce=f"{self.rng.getrandbits(128):032x}")

    # --- what happens on the exchange ------------------------------------------------------------------

    def bootstrap(self) -> _Member:
        self.append(Draft("log.genesis", entries.SYSTEM_ACTOR, body={"origin": ORIGIN,
                                                                     "log_public_key": self.log_public}))
        key = Ed25519PrivateKey.generate()
        operator = self.operator = _Member(self._id("prt"), ["operator"], key, "")
        self.append(Draft("participant.enrolled", entries.SYSTEM_ACTOR, refs={"participant": [operator.id]},
                          body={"name_zh": "运营方", "name_en": "Operator", "roles": ["operator"],
                                "status": "active"}))
        self.register_key(operator, key, "operator")
        for code, name_zh, name_en, theme in DOMAINS:
            body = {"code": code, "name_zh": name_zh, "name_en": name_en, "eu_theme": theme}
            self.append(Draft("domain.added", operator.id, refs={"domain": [code]}, body=body),
                        self.sign(operator.key, operator.id, "POST", f"{API}/domains", body))
        return operator

    def register_key(self, member: _Member, key: Ed25519PrivateKey, label: str | None) -> None:
        public = crypto.public_key_text(key.public_key())
        key_id = crypto.key_fingerprint(public)
        vouch = self._vouch(member, public)
        self.keys[key_id] = key.public_key()
        body = {"public_key": public, "proof": crypto.sign(key, crypto.key_registration_message(member.id, public)),
                "label": label, **vouch}
        request = self.sign(key, member.id, "POST", f"{API}/participants/me/keys", body)
        self.append(Draft("key.registered", member.id, refs={"participant": [member.id], "key": [key_id]},
                          body={"public_key": public, "algorithm": "ed25519", "label": label, **vouch}), request)
        member.key, member.key_id = key, key_id

    def _vouch(self, member: _Member, public: str) -> dict:
        """An endorsement by the member's key, the operator's approval of a first key, nothing for the very first."""
        if member.key_id:
            return {"endorsement": endorsement(member.key, member.id, public)}
        if not self.keys:
            return {}
        return {"approval": approval(self.operator.key, self.operator.id, member.id, public,
                                     START + STEP * self.seq - SIGNING_LEAD)}

    def enrol(self, operator: _Member) -> None:
        role = self.rng.choice(ROLE_MIX)
        member = _Member(self._id("prt"), [role], operator.key, "", "pending")
        number = len(self.members) + 1
        request_body = {"name_zh": f"机构{number}", "name_en": f"Organisation {number}", "roles": [role],
                        "contact_email": f"data-office-{number}@example.gov.cn"}
        digest, _ = entries.commitment(request_body["contact_email"])
        self.append(Draft("participant.enrolled", operator.id, refs={"participant": [member.id]},
                          body={"name_zh": request_body["name_zh"], "name_en": request_body["name_en"],
                                "roles": [role], "status": "pending"}),
                    self.sign(operator.key, operator.id, "POST", f"{API}/participants", request_body),
                    commit={"contact_email": digest})
        self.status(operator, member, "admit", "participant.admitted", "active", None)
        self.register_key(member, Ed25519PrivateKey.generate(), None)
        self.members.append(member)
        if role == "provider":
            self.providers.append(member)

    def status(self, operator: _Member, member: _Member, action: str, entry_type: str, status: str,
               reason: str | None) -> None:
        request = self.sign(operator.key, operator.id, "POST", f"{API}/participants/{member.id}/{action}",
                            {"reason": reason} if reason else {})
        self.append(Draft(entry_type, operator.id, refs={"participant": [member.id]},
                          body={"status": status, "reason": reason}), request)
        member.status = status

    def rotate_key(self, member: _Member) -> None:
        old = member.key_id
        self.register_key(member, Ed25519PrivateKey.generate(), "rotated")
        self.append(Draft("key.revoked", member.id, refs={"participant": [member.id], "key": [old]}),
                    self.sign(member.key, member.id, "POST", f"{API}/participants/me/keys/{old}/revoke", {}))

    def publish(self, provider: _Member) -> None:
        asset_id, number = self._id("ast"), self.serial
        grade = self.rng.randint(1, 4)
        kinds = PRIVATE_KINDS if grade >= 3 else sorted(self.rng.sample(KINDS, 2))
        body = {"provider": provider.id, "domain": self.rng.choice(DOMAINS)[0], "grade": grade,
                "computation_kinds": kinds,
                "authoritative_for": [f"EL.{number:08d}"] if self.rng.random() < 0.3 else [],
                "title_zh": f"公共数据资源{number}", "title_en": f"Public data resource {number}",
                "metadata_sha256": hashlib.sha256(f"asset {number}".encode()).hexdigest()}
        self.append(Draft("asset.published", provider.id, refs={"asset": [asset_id]}, body=body),
                    self.sign(provider.key, provider.id, "POST", f"{API}/assets/{asset_id}/publish", {}))
        self.published.append((asset_id, body, provider))

    def update(self, index: int) -> None:
        asset_id, body, provider = self.published[index]
        title = f"{body['title_en']} (revised {self.serial})"
        self.serial += 1
        new = {**body, "title_en": title, "metadata_sha256": hashlib.sha256(title.encode()).hexdigest()}
        self.append(Draft("asset.updated", provider.id, refs={"asset": [asset_id]},
                          body={**new, "changed": ["title_en"]}),
                    self.sign(provider.key, provider.id, "PATCH", f"{API}/assets/{asset_id}", {"title_en": title}))
        self.published[index] = (asset_id, new, provider)

    def retire(self, index: int) -> None:
        asset_id, body, provider = self.published[index]
        self.published[index] = self.published[-1]  # order does not matter: swap-remove in O(1)
        self.published.pop()
        self.append(Draft("asset.retired", provider.id, refs={"asset": [asset_id]}, body=body),
                    self.sign(provider.key, provider.id, "POST", f"{API}/assets/{asset_id}/retire", {}))

    def _active(self, members: list[_Member]) -> _Member | None:
        """Return a random active member of ``members`` (most are active: a few draws find one), or None."""
        for _ in range(20):
            member = self.rng.choice(members) if members else None
            if member is None or member.status == "active":
                return member
        return None

    def _owned_asset(self) -> int | None:
        """Return the index of a random published asset whose provider is active, or None."""
        for _ in range(20):
            index = self.rng.randrange(len(self.published)) if self.published else None
            if index is None or self.published[index][2].status == "active":
                return index
        return None

    def step(self, operator: _Member) -> None:
        """Append one more event of the mix (one to three entries)."""
        roll = self.rng.random()
        provider = self._active(self.providers)
        if roll < 0.08 or len(self.providers) < 3 or provider is None:
            self.enrol(operator)
            return
        index = self._owned_asset()
        if roll < 0.55 or index is None:
            self.publish(provider)
        elif roll < 0.88:
            self.update(index)
        elif roll < 0.93:
            self.retire(index)
        elif roll < 0.96:
            self.rotate_key(self._active(self.members) or provider)
        elif self.suspended and roll >= 0.98:
            member = self.suspended.pop(self.rng.randrange(len(self.suspended)))
            self.status(operator, member, "reinstate", "participant.reinstated", "active", None)
        else:
            member = self._active(self.members) or provider
            self.status(operator, member, "suspend", "participant.suspended", "suspended", "annual review pending")
            self.suspended.append(member)

    def checkpoint(self, size: int, witness: tuple[str, Ed25519PrivateKey] | None = None
                   ) -> tuple[notes.Checkpoint, list[notes.Signature]]:
        point = notes.Checkpoint(ORIGIN, size, self.tree.root(size))
        signatures = [notes.sign_checkpoint(point, ORIGIN, self.log_key)]
        if witness is not None:
            name, key = witness
            signatures.append(notes.cosign(point, name, key, int((START + STEP * size).timestamp())))
        return point, signatures


def build_export(size: int, seed: int = 2026) -> Export:
    """Return a ``size``-entry export the auditor accepts, with what the bare baseline verifies."""
    builder = _Builder(seed)
    operator = builder.bootstrap()
    while builder.seq < size:
        builder.step(operator)
    del builder.entry_lines[size:], builder.checks[size:]  # the last event may have run past size
    witness = (checkpoints.witness_name(ORIGIN, WITNESS_ID), Ed25519PrivateKey.generate())
    sizes = list(range(CHECKPOINT_EVERY, size, CHECKPOINT_EVERY)) + [size]
    points = [builder.checkpoint(n, witness if n == size else None) for n in sizes]
    lines = [_line({"pdx_ledger_export": 1, "origin": ORIGIN, "log_public_key": builder.log_public, "size": size}),
             *builder.entry_lines,
             *(_line({"checkpoint": notes.note(point, signatures)}) for point, signatures in points),
             _line({"end": {"entries": size, "checkpoints": len(points)}})]
    types = {}
    for check in builder.checks:
        kind = json.loads(check.data)["type"]
        types[kind] = types.get(kind, 0) + 1
    return Export(lines, builder.log_key.public_key(), {witness[0]: witness[1].public_key()}, builder.checks,
                  points, types)
