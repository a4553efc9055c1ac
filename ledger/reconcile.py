"""Reconciliation: the authorization-relevant rows the ledger implies, and every field where the tables differ. Pure.

The exchange decides from its tables (a grant's status, terms and counters; an asset's grade; a participant's
roles and status; the keys that sign), and the ledger records every change it made to them. Someone with write
access to the database can change a row without an entry; nothing in the tables would show it. ``expected``
replays the stored entries (``ledger.replay``, the auditor's rules) into the state they imply, plus what the
replay does not keep (each asset's last recorded metadata hash and node endpoint, each job's outcome);
``compare`` lines that up with the rows as read (``Stored``, built by ``exchange.state_check``) and returns one
``Difference`` per table, row and field that disagree. An empty list means the tables say what the log says.

Drafts (assets not yet published) write no entry and are not compared; API tokens are not in the log.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from cryptography.hazmat.primitives import serialization

from common.vocab import GrantKind, JobStatus
from ledger import replay
from ledger.replay.base import PUBLISHED
from ledger.replay.catalog import ENDPOINT_APPROVED
from ledger.replay.grants import Grant as LoggedGrant

EPSILON_TOLERANCE = 1e-9
OPEN_JOB, COMPLETED_JOB, FAILED_JOB = "open", JobStatus.COMPLETED, JobStatus.FAILED  # open: admitted or running
JOB_OUTCOMES = {"job.completed": COMPLETED_JOB, "job.trained": COMPLETED_JOB, "job.failed": FAILED_JOB}
ABSENT = "(no row)"


@dataclass(frozen=True)
class Difference:
    """One field of one row that is not what the ledger implies."""

    table: str
    id: str
    field: str
    stored: Any
    expected: Any

    def __str__(self) -> str:
        return f"{self.table} {self.id} {self.field}: stored {self.stored!r}, the ledger says {self.expected!r}"


@dataclass(frozen=True)
class ParticipantRow:
    id: str
    roles: frozenset[str]
    status: str


@dataclass(frozen=True)
class KeyRow:
    id: str
    owner: str
    public_key: str
    revoked: bool


@dataclass(frozen=True)
class AssetRow:
    id: str
    provider: str
    status: str
    domain: str
    grade: int
    computation_kinds: tuple[str, ...]
    authoritative_for: tuple[str, ...]
    node_endpoint: str
    metadata_sha256: str


@dataclass(frozen=True)
class GrantRow:
    id: str
    consumer: str
    kind: str
    status: str
    providers: frozenset[str]
    assets: frozenset[str]
    domain: str | None
    max_grade: int | None
    needs_regulator: bool
    core_exception: bool
    dp_exception: bool
    terms: Mapping[str, Any]
    jobs_used: int
    rows_used: int
    epsilon_used: float


@dataclass(frozen=True)
class JobRow:
    id: str
    grant: str
    consumer: str
    outcome: str  # OPEN_JOB, COMPLETED_JOB or FAILED_JOB


@dataclass(frozen=True)
class Stored:
    """The rows the exchange decides from, read in one snapshot."""

    participants: tuple[ParticipantRow, ...]
    keys: tuple[KeyRow, ...]
    assets: tuple[AssetRow, ...]  # published and retired ones (drafts are not in the log)
    grants: tuple[GrantRow, ...]
    jobs: tuple[JobRow, ...]
    sources: Mapping[str, str]  # data-element code -> the published or retired asset claiming it


@dataclass
class Expected:
    """The state the stored entries imply."""

    state: replay.State = field(default_factory=replay.State)
    metadata: dict[str, str] = field(default_factory=dict)  # asset id -> last recorded metadata hash
    endpoints: dict[str, str] = field(default_factory=dict)  # asset id -> its registered node endpoint
    jobs: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # job id -> grant, consumer, outcome
    size: int = 0


def expected(entries: Iterable[dict]) -> Expected:
    """Replay parsed entries in order into the state they imply; raise ``replay.ReplayError`` at a broken rule."""
    result = Expected()
    for entry in entries:
        replay.apply(result.state, entry)
        _note(result, entry)
        result.size += 1
    return result


def _note(result: Expected, entry: dict) -> None:
    kind, body, refs = entry["type"], entry["body"], entry["refs"]
    if kind.startswith("asset."):
        asset_id = refs["asset"][0]
        if "metadata_sha256" in body:
            result.metadata[asset_id] = body["metadata_sha256"]
        if kind in ("asset.published", ENDPOINT_APPROVED) and "node_endpoint" in body:
            result.endpoints[asset_id] = body["node_endpoint"]
    elif kind == "job.admitted":
        result.jobs[refs["job"][0]] = (refs["grant"][0], entry["actor"], OPEN_JOB)
    elif kind in JOB_OUTCOMES:
        grant, consumer, _ = result.jobs[refs["job"][0]]
        result.jobs[refs["job"][0]] = (grant, consumer, JOB_OUTCOMES[kind])


def compare(expected_state: Expected, stored: Stored) -> list[Difference]:
    """Return every difference between the stored rows and what the log implies (empty: they agree)."""
    differences: list[Difference] = []
    differences += _participants(expected_state, stored)
    differences += _keys(expected_state, stored)
    differences += _assets(expected_state, stored)
    differences += _grants(expected_state, stored)
    differences += _jobs(expected_state, stored)
    return differences


def _fields(table: str, row_id: str, pairs: Iterable[tuple[str, Any, Any]]) -> list[Difference]:
    return [Difference(table, row_id, name, stored, wanted) for name, stored, wanted in pairs if stored != wanted]


def _missing_and_extra(table: str, logged: Iterable[str], rows: Iterable[str]) -> list[Difference]:
    logged, rows = set(logged), set(rows)
    return ([Difference(table, i, "row", ABSENT, "recorded") for i in sorted(logged - rows)]
            + [Difference(table, i, "row", "present", "never recorded") for i in sorted(rows - logged)])


def _participants(expected_state: Expected, stored: Stored) -> list[Difference]:
    logged = expected_state.state.participants
    differences = _missing_and_extra("participants", logged, (row.id for row in stored.participants))
    for row in stored.participants:
        if row.id in logged:
            want = logged[row.id]
            differences += _fields("participants", row.id, [("roles", sorted(row.roles), sorted(want.roles)),
                                                            ("status", row.status, want.status)])
    return differences


def _keys(expected_state: Expected, stored: Stored) -> list[Difference]:
    logged = expected_state.state.keys
    differences = []
    for row in stored.keys:
        want = logged.get(row.id)
        if want is None:
            differences.append(Difference("participant_keys", row.id, "owner", row.owner, "never registered"))
            continue
        differences += _fields("participant_keys", row.id, [
            ("owner", row.owner, want.owner), ("public_key", row.public_key, replay_key_text(want.public_key)),
            ("revoked", row.revoked, want.revoked is not None)])
    for key_id in sorted(set(logged) - {row.id for row in stored.keys}):
        differences.append(Difference("participant_keys", key_id, "row", ABSENT, "recorded"))
    return differences


def replay_key_text(public_key) -> str:
    """Return a replayed public key in the exchange's text form (raw bytes in base64)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def _assets(expected_state: Expected, stored: Stored) -> list[Difference]:
    logged = expected_state.state.assets
    differences = _missing_and_extra("assets", logged, (row.id for row in stored.assets))
    for row in stored.assets:
        want = logged.get(row.id)
        if want is None:
            continue
        provider, domain, grade, kinds, codes = want.scope
        differences += _fields("assets", row.id, [
            ("provider", row.provider, provider), ("status", row.status, want.status),
            ("domain", row.domain, domain), ("grade", row.grade, grade),
            ("computation_kinds", sorted(row.computation_kinds), sorted(kinds)),
            ("authoritative_for", sorted(row.authoritative_for), sorted(codes))])
        if row.id in expected_state.endpoints:
            differences += _fields("assets", row.id, [("node_endpoint", row.node_endpoint,
                                                       expected_state.endpoints[row.id])])
        if row.id in expected_state.metadata:
            differences += _fields("assets", row.id, [("metadata_sha256", row.metadata_sha256,
                                                       expected_state.metadata[row.id])])
    claimed = {code: asset for code, asset in stored.sources.items()}
    for code, asset_id in sorted(expected_state.state.sources.items()):
        if claimed.get(code) != asset_id:
            differences.append(Difference("authoritative_sources", code, "asset", claimed.get(code, ABSENT),
                                          asset_id))
    for code, asset_id in sorted(claimed.items()):
        logged_asset = logged.get(asset_id)
        if code not in expected_state.state.sources and logged_asset is not None \
                and logged_asset.status == PUBLISHED:
            differences.append(Difference("authoritative_sources", code, "asset", asset_id, "unclaimed"))
    return differences


def _grants(expected_state: Expected, stored: Stored) -> list[Difference]:
    logged: dict[str, LoggedGrant] = expected_state.state.grants
    differences = _missing_and_extra("grants", logged, (row.id for row in stored.grants))
    for row in stored.grants:
        want = logged.get(row.id)
        if want is None:
            continue
        differences += _fields("grants", row.id, [
            ("consumer", row.consumer, want.consumer), ("kind", row.kind, want.kind),
            ("status", row.status, want.status), ("providers", sorted(row.providers), sorted(want.providers)),
            ("assets", sorted(row.assets), sorted(want.assets)), ("domain", row.domain, want.domain),
            ("max_grade", row.max_grade, want.max_grade if want.kind != GrantKind.SCENARIO else None),
            ("needs_regulator", row.needs_regulator, want.needs_regulator),
            ("core_exception", row.core_exception, want.core_exception),
            ("dp_exception", row.dp_exception, want.dp_exception),
            ("jobs_used", row.jobs_used, want.jobs), ("rows_used", row.rows_used, want.rows)])
        if abs(row.epsilon_used - want.epsilon) > EPSILON_TOLERANCE:
            differences.append(Difference("grants", row.id, "epsilon_used", row.epsilon_used, want.epsilon))
        for name in sorted(set(row.terms) | set(want.terms)):
            if row.terms.get(name) != want.terms.get(name):
                differences.append(Difference("grants", row.id, f"terms.{name}", row.terms.get(name, ABSENT),
                                              want.terms.get(name, ABSENT)))
    return differences


def _jobs(expected_state: Expected, stored: Stored) -> list[Difference]:
    logged = expected_state.jobs
    differences = _missing_and_extra("jobs", logged, (row.id for row in stored.jobs))
    for row in stored.jobs:
        if row.id in logged:
            grant, consumer, outcome = logged[row.id]
            differences += _fields("jobs", row.id, [("grant", row.grant, grant), ("consumer", row.consumer, consumer),
                                                    ("outcome", row.outcome, outcome)])
    return differences
