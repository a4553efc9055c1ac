"""The state check: compare the rows the exchange decides from with what the ledger implies, and stop admissions
while they differ.

    check_state()        read the entries and the rows in one snapshot, replay, compare (``ledger.reconcile``)
    record(outcome)      keep the outcome in ``state_checks``: the one row every server process reads
    the gate             503 on job admissions and grant changes while the last recorded check failed
    the schedule         a daemon thread per served process re-running the check every
                         ``PDX_STATE_CHECK_INTERVAL_SECONDS`` (0: never)

`pdx ledger check --state` and `pdx serve` (before it starts) run it too. A failed check stays in force until a
check passes: an operator restores the rows (from the log, or a backup) and runs `pdx ledger check --state`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from flask import Flask, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from authorization.model import Grant
from catalog.models import Asset, AuthoritativeSource
from catalog.services import metadata_sha256
from common.db import get_database, utcnow
from common.errors import Unavailable
from common.vocab import AssetStatus, JobStatus
from jobs.model import Job
from ledger import entries, log, reconcile
from ledger.models import StateCheck
from ledger.replay import ReplayError
from participants.models import Participant, ParticipantKey

LATEST = "latest"
REPORTED = 100  # differences kept in the row (the count is always whole)
SHOWN = 5  # differences named in a refusal
BATCH = 5000
GATED_PREFIXES = ("/api/v1/jobs", "/api/v1/grants")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
OPEN_JOB_STATUSES = frozenset({JobStatus.ADMITTED, JobStatus.RUNNING})
log_ = logging.getLogger(__name__)


class StateDiffers(Unavailable):
    """Admissions are stopped because the last state check found rows the ledger does not imply."""

    slug = "state-differs-from-ledger"
    title = "State differs from the ledger"


@dataclass(frozen=True)
class Outcome:
    """What one check found: the log size it replayed and every difference (empty: the state agrees)."""

    ledger_size: int
    differences: tuple[str, ...]
    rows: dict[str, int]

    @property
    def ok(self) -> bool:
        return not self.differences


def check_state() -> Outcome:
    """Replay the stored log and compare it with the tables, all read in one snapshot (current app)."""
    with get_database().sessionmaker() as session:
        if session.get_bind().dialect.name == "postgresql":
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        size = log.size(session)
        try:
            implied = reconcile.expected(_entries(session, size))
        except ReplayError as exc:
            return Outcome(size, (f"ledger entry breaks the rule {exc.kind}: {exc}",), {})
        stored = _stored(session)
    differences = tuple(str(d) for d in reconcile.compare(implied, stored))
    rows = {"participants": len(stored.participants), "keys": len(stored.keys), "assets": len(stored.assets),
            "grants": len(stored.grants), "jobs": len(stored.jobs)}
    return Outcome(size, differences, rows)


def _entries(session: Session, size: int):
    for start in range(0, size, BATCH):
        for row in log.entry_rows(session, start, min(start + BATCH, size)):
            yield entries.parse(row.data)


def _stored(session: Session) -> reconcile.Stored:
    participants = tuple(reconcile.ParticipantRow(p.id, frozenset(p.roles), p.status)
                         for p in session.scalars(select(Participant)))
    keys = tuple(reconcile.KeyRow(k.id, k.participant_id, k.public_key, k.revoked_at is not None)
                 for k in session.scalars(select(ParticipantKey)))
    assets = tuple(reconcile.AssetRow(a.id, a.provider_id, a.status, a.domain_code, a.grade,
                                      tuple(a.computation_kinds), tuple(a.element_codes), a.node_endpoint,
                                      metadata_sha256(a))
                   for a in session.scalars(select(Asset).where(Asset.status != AssetStatus.DRAFT)))
    listed = {asset.id for asset in assets}
    grants = tuple(reconcile.GrantRow(g.id, g.consumer_id, g.kind, g.status, frozenset(g.providers),
                                      frozenset(g.assets), g.domain, g.max_grade, g.needs_regulator,
                                      g.core_exception, g.dp_exception, g.terms, g.jobs_used, g.rows_used, g.epsilon_used)
                   for g in session.scalars(select(Grant)))
    jobs = tuple(reconcile.JobRow(j.id, j.grant_id, j.consumer_id,
                                  reconcile.OPEN_JOB if j.status in OPEN_JOB_STATUSES else j.status)
                 for j in session.scalars(select(Job)))
    sources = {s.code: s.asset_id for s in session.scalars(select(AuthoritativeSource)) if s.asset_id in listed}
    return reconcile.Stored(participants, keys, assets, grants, jobs, sources)


def record(outcome: Outcome) -> None:
    """Keep the outcome where every server process's gate reads it."""
    with get_database().transaction() as session:
        session.merge(StateCheck(id=LATEST, ok=outcome.ok, checked_at=utcnow(), ledger_size=outcome.ledger_size,
                                 count=len(outcome.differences), differences=list(outcome.differences[:REPORTED])))


def check_and_record() -> Outcome:
    """Run the check and record its outcome."""
    outcome = check_state()
    record(outcome)
    return outcome


def refusal(row: StateCheck) -> str:
    """Say why admissions stopped and how they resume."""
    shown = "; ".join(row.differences[:SHOWN])
    more = f" (and {row.count - SHOWN} more)" if row.count > SHOWN else ""
    return (f"job admissions and grant changes are stopped: the state tables differ from the ledger in {row.count} "
            f"field(s) found at {row.checked_at.isoformat()}: {shown}{more}. An operator restores the rows the "
            f"ledger implies, then runs `pdx ledger check --state`; admissions resume once it passes")


def refuse_while_state_differs() -> None:
    """Before a write that admits a job or changes a grant, raise ``Unavailable`` if the last check failed."""
    if request.method not in WRITE_METHODS or not request.path.startswith(GATED_PREFIXES):
        return
    with get_database().sessionmaker() as session:
        row = session.get(StateCheck, LATEST)
    if row is not None and not row.ok:
        raise StateDiffers(refusal(row), extra={"state_differences": row.differences[:SHOWN]})


class Schedule:
    """A daemon thread re-running the state check of one server process at a fixed interval."""

    def __init__(self, app: Flask, interval: int) -> None:
        self.app, self.interval = app, interval
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="pdx-state-check", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()

    def _loop(self) -> None:
        while not self.stopped.wait(self.interval):
            with self.app.app_context():
                try:
                    outcome = check_and_record()
                except Exception:  # noqa: BLE001 - a failed run is logged; the next one tries again
                    log_.exception("the scheduled state check could not run")
                    continue
            if not outcome.ok:
                log_.error("state differs from the ledger: %s", "; ".join(outcome.differences[:SHOWN]))


def init_app(app: Flask, *, background: bool = False) -> None:
    """Install the gate; with ``background`` (a served exchange), start the schedule."""
    app.before_request(refuse_while_state_differs)
    interval = app.config["PDX_STATE_CHECK_INTERVAL_SECONDS"]
    if background and interval > 0:
        schedule = Schedule(app, interval)
        app.extensions["pdx.state_check"] = schedule
        schedule.start()
