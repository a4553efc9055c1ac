"""Appending to the log inside the caller's transaction, and reading nodes, entries and roots back.

The head row is the lock: ``SELECT … FOR UPDATE`` on PostgreSQL (SQLite's write transactions are already
exclusive, see common.db). Whoever holds it assigns the next sequence number, so numbers have no gaps; the
entry, its tree nodes and the new head commit with the caller's state change, or none of them do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Iterable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from common.db import utcnow
from ledger import entries, merkle
from ledger.entries import Draft, SignedRequest
from ledger.models import LedgerEntry, LedgerHead, LedgerNode, LedgerOpening, LedgerParty

HEAD_ID = 1


class LedgerError(Exception):
    """The ledger cannot append or read what was asked (not initialised, replayed request …)."""


class ReplayedRequest(LedgerError):
    """A signed request whose nonce the log has already recorded for this actor."""


@dataclass(frozen=True)
class LogIdentity:
    """Who the log is: its checkpoint origin and the operator's log signing key."""

    origin: str
    key: Ed25519PrivateKey

    @property
    def key_name(self) -> str:
        return self.origin


class DbNodes:
    """Reads stored perfect-subtree hashes (a ``merkle.NodeReader``), seeing this transaction's writes."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.pending: dict[tuple[int, int], bytes] = {}

    def subtree_hash(self, start: int, end: int) -> bytes:
        level = (end - start).bit_length() - 1
        key = (level, start >> level)
        if key in self.pending:
            return self.pending[key]
        found = self.session.get(LedgerNode, key)
        if found is None:
            raise merkle.TreeRangeError(f"no stored node for leaves [{start}, {end})")
        return found.hash


def head(session: Session, *, lock: bool = False) -> LedgerHead:
    """Return the head row (locked for the rest of the transaction when ``lock``)."""
    query = select(LedgerHead).where(LedgerHead.id == HEAD_ID)
    if lock:
        query = query.with_for_update()
    row = session.scalar(query)
    if row is None:
        raise LedgerError("the ledger has no head row; run `pdx db upgrade`")
    return row


class LedgerWriter:
    """Appends entries in the transaction of one unit of work."""

    def __init__(self, session: Session, identity: LogIdentity | None, request: SignedRequest | None = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.session = session
        self.identity = identity
        self.request = request
        self.clock = clock
        self.nodes = DbNodes(session)
        self.appended: list[int] = []

    def append(self, draft: Draft, parties: Iterable[str] = ()) -> int:
        """Append one entry and return its sequence number.

        The first entry by the request's signer carries the signed request; entries the exchange records
        on its own (actor ``system``) carry none.
        """
        if self.identity is None:
            raise LedgerError("no log signing key is configured; run `pdx init` or set PDX_LOG_KEY_FILE")
        request = None
        if self.request is not None and draft.actor == self.request.actor:
            request, self.request = self.request, None
            replayed = self.session.scalar(select(LedgerEntry.seq).where(
                LedgerEntry.actor == request.actor, LedgerEntry.nonce == request.nonce))
            if replayed is not None:
                raise ReplayedRequest(f"request nonce {request.nonce} of {request.actor} was already recorded "
                                      f"at entry {replayed}")
        elif draft.actor != entries.SYSTEM_ACTOR:
            raise LedgerError(f"an entry by {draft.actor} needs a request signed by {draft.actor}")
        state = head(self.session, lock=True)
        seq = state.size
        time = max(entries.format_time(self.clock()), state.last_time)  # never earlier than the entry before
        commit, salts = {}, {}
        for name, value in draft.confidential.items():
            commit[name], salts[name] = entries.commitment(value)
        data, operator_sig = entries.build(draft, seq=seq, time=time, request=request, commit=commit,
                                           operator_key=self.identity.key)
        leaf = merkle.leaf_hash(data)
        self.session.add(LedgerEntry(seq=seq, data=data, operator_sig=operator_sig, leaf_hash=leaf,
                                     type=draft.type, actor=draft.actor,
                                     nonce=None if request is None else request.nonce))
        for node in merkle.completed_nodes(self.nodes, seq, leaf):
            self.nodes.pending[(node.level, node.index)] = node.hash
            self.session.add(LedgerNode(level=node.level, index=node.index, hash=node.hash))
        for name, salt in salts.items():
            self.session.add(LedgerOpening(seq=seq, field=name, salt=salt))
        for participant in sorted(set(parties) | {draft.actor} - {entries.SYSTEM_ACTOR}):
            self.session.add(LedgerParty(seq=seq, participant_id=participant))
        state.size = seq + 1
        state.last_time = time
        self.session.flush()
        self.appended.append(seq)
        return seq


def size(session: Session) -> int:
    """Return the number of entries in the log."""
    return head(session).size


def root(session: Session, tree_size: int) -> bytes:
    """Return the root hash of the first ``tree_size`` entries from stored nodes, in O(log n) reads."""
    return merkle.root_from(DbNodes(session), tree_size)


def entry_rows(session: Session, start: int, end: int, viewer_parties: str | None = None) -> list[LedgerEntry]:
    """Return entries [start, end), all or only those that concern ``viewer_parties``."""
    query = select(LedgerEntry).where(LedgerEntry.seq >= start, LedgerEntry.seq < end).order_by(LedgerEntry.seq)
    if viewer_parties is not None:
        query = query.where(LedgerEntry.seq.in_(select(LedgerParty.seq).where(
            LedgerParty.participant_id == viewer_parties)))
    return list(session.scalars(query))


def leaf_index(session: Session, leaf_hash: bytes) -> int | None:
    """Return the sequence number of the entry with ``leaf_hash``, if any."""
    return session.scalar(select(LedgerEntry.seq).where(LedgerEntry.leaf_hash == leaf_hash).limit(1))
