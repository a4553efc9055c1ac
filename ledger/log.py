"""Appending to the log inside the caller's transaction, and reading nodes, entries and roots back.

The head row is the lock: ``SELECT … FOR UPDATE`` on PostgreSQL (SQLite's write transactions are already
exclusive, see common.db). Whoever holds it assigns the next sequence number, so numbers have no gaps; the
entry, its tree nodes and the new head commit with the caller's state change, or none of them do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import Session

from common.db import utcnow
from ledger import entries, merkle
from ledger.entries import Draft, SignedRequest
from ledger.errors import LedgerError
from ledger.models import LedgerEntry, LedgerHead, LedgerNode, LedgerOpening, LedgerParty, RequestNonce

HEAD_ID = 1
T = TypeVar("T")


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


class _Recorder:
    """A node source that answers anything and remembers what was asked (to fetch it all in one query)."""

    def __init__(self) -> None:
        self.keys: set[tuple[int, int]] = set()

    def subtree_hash(self, start: int, end: int) -> bytes:
        level = (end - start).bit_length() - 1
        self.keys.add((level, start >> level))
        return bytes(merkle.HASH_SIZE)


class DbNodes:
    """Reads stored perfect-subtree hashes (a ``merkle.NodeReader``)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.cache: dict[tuple[int, int], bytes] = {}

    def subtree_hash(self, start: int, end: int) -> bytes:
        level = (end - start).bit_length() - 1
        key = (level, start >> level)
        if key not in self.cache:
            found = self.session.get(LedgerNode, key)
            if found is None:
                raise merkle.TreeRangeError(f"no stored node for leaves [{start}, {end})")
            self.cache[key] = found.hash
        return self.cache[key]

    def run(self, function: Callable[..., T], *args: Any) -> T:
        """Run a proof or root function with every node it needs fetched in one query.

        The function is pure, so a first pass against a recorder learns which nodes it reads.
        """
        recorder = _Recorder()
        function(recorder, *args)
        wanted = recorder.keys - self.cache.keys()
        by_level: dict[int, list[int]] = {}
        for level, index in wanted:
            by_level.setdefault(level, []).append(index)
        if by_level:
            condition = or_(*(and_(LedgerNode.level == level, LedgerNode.index.in_(indexes))
                              for level, indexes in by_level.items()))
            for node in self.session.scalars(select(LedgerNode).where(condition)):
                self.cache[(node.level, node.index)] = node.hash
        return function(self, *args)


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
    """Appends entries in the transaction of one unit of work.

    The head row is locked and read once, at the first append; later appends of the same transaction work from
    it in memory and the rows go to the database in one batch when the transaction flushes (group commit).
    """

    def __init__(self, session: Session, identity: LogIdentity | None, request: SignedRequest | None = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.session = session
        self.identity = identity
        self.request = request
        self.clock = clock
        self.appended: list[int] = []
        self._head: LedgerHead | None = None
        self._frontier: merkle.Frontier | None = None

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
        if self._head is None:
            self._head = head(self.session, lock=True)
            self._frontier = merkle.Frontier.from_bytes(self._head.size, self._head.frontier)
        state = self._head
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
        self._frontier, completed = self._frontier.append(leaf)
        self.session.add_all([LedgerNode(level=node.level, index=node.index, hash=node.hash) for node in completed])
        for name, salt in salts.items():
            self.session.add(LedgerOpening(seq=seq, field=name, salt=salt))
        for participant in sorted(set(parties) | {draft.actor} - {entries.SYSTEM_ACTOR}):
            self.session.add(LedgerParty(seq=seq, participant_id=participant))
        state.size, state.last_time, state.frontier = seq + 1, time, self._frontier.to_bytes()
        self.appended.append(seq)
        return seq


def use_nonce(session: Session, request: SignedRequest, keep: timedelta) -> None:
    """Record a signed request's nonce in the caller's transaction; refuse one already used (a replay).

    Nonces older than ``keep`` (twice the signature window: their requests would be refused as stale anyway)
    are forgotten.
    """
    if session.get(RequestNonce, (request.actor, request.nonce)) is not None:
        raise ReplayedRequest(f"request nonce {request.nonce} of {request.actor} was already used")
    session.execute(delete(RequestNonce).where(RequestNonce.signed_at < utcnow() - keep))
    session.add(RequestNonce(participant_id=request.actor, nonce=request.nonce,
                             signed_at=entries.parse_time(request.statement["signed_at"])))
    session.flush()


def size(session: Session) -> int:
    """Return the number of entries in the log."""
    return head(session).size


def root(session: Session, tree_size: int) -> bytes:
    """Return the root hash of the first ``tree_size`` entries from stored nodes, in one query."""
    return DbNodes(session).run(merkle.root_from, tree_size)


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
