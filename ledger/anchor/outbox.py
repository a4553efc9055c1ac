"""The persisted queue between the ledger and the chain, and the backlog `pdx chain status` shows.

Grant marks are queued by the service that changes the grant, in its transaction; checkpoints are signed and
queued by the sender. Nothing here talks to the chain, so a chain that is down never blocks a ledger append.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from common.db import utcnow
from ledger import checkpoints, log
from ledger.anchor import ChainConflict, records
from ledger.anchor.models import (
    CONFIRMED,
    PENDING,
    STATE_ID,
    SUPERSEDED,
    ChainAnchor,
    ChainDeployment,
    ChainMirror,
    ChainState,
)
from ledger.entries import SYSTEM_ACTOR, Draft
from ledger.log import LogIdentity

DEPLOYED_ENTRY = "chain.deployed"


def deployment(session: Session) -> ChainDeployment | None:
    """Return where the exchange's contracts are, or None if it anchors on no chain."""
    return session.get(ChainDeployment, 1)


def state(session: Session, *, lock: bool = False) -> ChainState:
    """Return the sender's state row, creating it on first use."""
    row = session.get(ChainState, STATE_ID, with_for_update=lock)
    if row is None:
        row = ChainState(id=STATE_ID, failures=0)
        session.add(row)
        session.flush()
    return row


def mark_grant(session: Session, grant: Any, seq: int) -> bool:
    """Record that ledger entry ``seq`` left ``grant`` in its current status; queue a mirror if it is a mark.

    ``grant`` is an ``authorization.model.Grant`` (status, terms, mark_status, mark_seq). Returns whether it was a
    mark. The mirror is queued only once the contracts are deployed (`pdx chain deploy` queues the marks before).
    """
    if not records.is_mark(grant.mark_status, grant.status):
        return False
    grant.mark_status, grant.mark_seq = grant.status, seq
    if deployment(session) is not None:
        session.add(_mirror(grant.id, grant.status, grant.terms, seq))
    return True


def queue_marks(session: Session, grants: list[Any]) -> int:
    """Queue the last mark of each grant that has one (at deployment); return how many were queued."""
    marked = [g for g in grants if g.mark_status is not None]
    session.add_all([_mirror(g.id, g.mark_status, g.terms, g.mark_seq) for g in marked])
    return len(marked)


def _mirror(grant_id: str, status: str, terms: dict[str, Any], seq: int) -> ChainMirror:
    valid_from, valid_until = records.window(terms)
    return ChainMirror(seq=seq, grant_id=grant_id, status=status, terms_hash=records.terms_hash(terms),
                       valid_from=valid_from, valid_until=valid_until, state=PENDING, enqueued_at=utcnow())


def queue_checkpoint(session: Session, identity: LogIdentity) -> ChainAnchor | None:
    """Sign a checkpoint of the whole log if it grew, and queue it unless a checkpoint of that size is queued."""
    signed = checkpoints.sign_current(session, identity)
    if session.get(ChainAnchor, signed.size) is not None:
        return None
    newest = session.scalar(select(func.max(ChainAnchor.size)))
    if newest is not None and newest > signed.size:
        return None
    # the stored note carries only the log's own signature; cosignatures are kept beside it
    row = ChainAnchor(size=signed.size, root=signed.root, state=PENDING, enqueued_at=utcnow(),
                      checkpoint_hash=records.checkpoint_hash(signed.note))
    session.add(row)
    session.flush()
    return row


def next_anchor(session: Session) -> ChainAnchor | None:
    """Return the newest pending anchor, marking the older pending ones superseded (it covers them)."""
    pending = list(session.scalars(select(ChainAnchor).where(ChainAnchor.state == PENDING)
                                   .order_by(ChainAnchor.size.desc())))
    for older in pending[1:]:
        older.state = SUPERSEDED
    return pending[0] if pending else None


def next_mirrors(session: Session, limit: int) -> list[ChainMirror]:
    """Return up to ``limit`` pending mirrors in ledger order."""
    return list(session.scalars(select(ChainMirror).where(ChainMirror.state == PENDING)
                                .order_by(ChainMirror.seq).limit(limit)))


def confirm(rows: list[ChainAnchor] | list[ChainMirror], tx_hash: str | None, block: int | None) -> None:
    """Mark queued rows as confirmed on the chain by transaction ``tx_hash``."""
    now = utcnow()
    for row in rows:
        row.state, row.confirmed_at, row.tx_hash = CONFIRMED, now, tx_hash
        if isinstance(row, ChainAnchor):
            row.block_number = block


@dataclass(frozen=True)
class Backlog:
    """What `pdx chain status` reports."""

    deployed: bool
    chain_id: int | None
    anchor_address: str | None
    registry_address: str | None
    ledger_size: int
    anchored_size: int
    anchored_at: datetime | None
    pending_anchors: int
    pending_mirrors: int
    confirmed_mirrors: int
    oldest_pending_at: datetime | None
    failures: int
    next_attempt_at: datetime | None
    last_error: str | None
    last_success_at: datetime | None
    lease_owner: str | None

    def to_json(self) -> dict[str, Any]:
        """Return the backlog as JSON-ready values."""
        return {name: value.isoformat() if isinstance(value, datetime) else value
                for name, value in self.__dict__.items()}


def backlog(session: Session) -> Backlog:
    """Return the anchoring backlog: how far the chain is behind the ledger and why."""
    found = deployment(session)
    sender = session.get(ChainState, STATE_ID)
    anchored = session.scalar(select(ChainAnchor).where(ChainAnchor.state == CONFIRMED)
                              .order_by(ChainAnchor.size.desc()).limit(1))

    def count(model: type, state_: str) -> int:
        return session.scalar(select(func.count()).select_from(model).where(model.state == state_))

    oldest = [session.scalar(select(func.min(m.enqueued_at)).where(m.state == PENDING))
              for m in (ChainAnchor, ChainMirror)]
    oldest = [moment for moment in oldest if moment is not None]
    return Backlog(
        deployed=found is not None, chain_id=found and found.chain_id, anchor_address=found and found.anchor_address,
        registry_address=found and found.registry_address, ledger_size=log.size(session),
        anchored_size=anchored.size if anchored else 0, anchored_at=anchored.confirmed_at if anchored else None,
        pending_anchors=count(ChainAnchor, PENDING), pending_mirrors=count(ChainMirror, PENDING),
        confirmed_mirrors=count(ChainMirror, CONFIRMED), oldest_pending_at=min(oldest) if oldest else None,
        failures=sender.failures if sender else 0, next_attempt_at=sender and sender.next_attempt_at,
        last_error=sender and sender.last_error, last_success_at=sender and sender.last_success_at,
        lease_owner=sender and sender.lease_owner)


def record_deployment(uow: Any, chain_id: int, anchor: str, registry: str, sender: str, block_number: int,
                      marked_grants: list[Any]) -> ChainDeployment:
    """Record where the contracts were deployed, as a ledger entry and a row, and queue every grant's last mark.

    ``uow`` is a ``ledger.service.UnitOfWork``; ``marked_grants`` the grants with a mark so far.
    """
    if deployment(uow.session) is not None:
        raise ChainConflict("the exchange already records a chain deployment; a second one would split the record")
    seq = uow.ledger.append(Draft(DEPLOYED_ENTRY, SYSTEM_ACTOR, body={
        "chain_id": chain_id, "anchor": anchor, "registry": registry, "sender": sender, "block": block_number}))
    row = ChainDeployment(id=1, chain_id=chain_id, anchor_address=anchor, registry_address=registry, sender=sender,
                          block_number=block_number, ledger_seq=seq, deployed_at=utcnow())
    uow.session.add(row)
    queue_marks(uow.session, sorted(marked_grants, key=lambda g: g.mark_seq))
    state(uow.session)
    return row
