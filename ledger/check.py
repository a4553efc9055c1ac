"""`pdx ledger check`: prove the ledger tables were not altered since they were written.

Run at server start. It recomputes every leaf hash from the stored entry bytes, rebuilds the tree from those
leaves and compares every stored node, the head's frontier and the latest signed checkpoint with it, checks that
sequence numbers run without gaps up to the head, and verifies the operator signature of entries the latest checkpoint does not
cover yet (``full`` verifies every entry's signature). Any changed, deleted, reordered or inserted row of
``ledger_entries``, ``ledger_nodes`` or ``ledger_checkpoints`` makes it fail, naming the first bad row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger import entries, log, merkle, notes
from ledger.checkpoints import latest
from ledger.errors import LedgerError
from ledger.models import LedgerEntry, LedgerNode

BATCH = 5000


class TamperedLedger(LedgerError):
    """The stored ledger disagrees with itself or with a signed checkpoint."""


@dataclass(frozen=True)
class CheckResult:
    size: int
    root: str
    checkpoint_size: int | None
    signatures_verified: int


def check(session: Session, origin: str, log_key: Ed25519PublicKey, *, full: bool = False) -> CheckResult:
    """Verify the stored ledger; raise ``TamperedLedger`` naming the first inconsistency."""
    size = log.size(session)
    count, highest = session.execute(select(func.count(), func.max(LedgerEntry.seq))).one()
    if count != size or (size and highest != size - 1):
        raise TamperedLedger(f"the head says {size} entries, the table holds {count} with highest seq {highest}")
    checkpoint = latest(session)
    signed_from = 0 if full or checkpoint is None else checkpoint.size
    tree = merkle.MemoryTree()
    verified = 0
    for start in range(0, size, BATCH):
        for expected, row in enumerate(log.entry_rows(session, start, min(start + BATCH, size)), start):
            if row.seq != expected:
                raise TamperedLedger(f"entry {expected} is missing (found seq {row.seq} in its place)")
            leaf = merkle.leaf_hash(row.data)
            if leaf != row.leaf_hash:
                raise TamperedLedger(f"entry {row.seq}: its bytes hash to {leaf.hex()}, the row says "
                                     f"{row.leaf_hash.hex()}")
            if json.loads(row.data).get("seq") != row.seq:
                raise TamperedLedger(f"entry {row.seq} names sequence number {json.loads(row.data).get('seq')}")
            if row.seq >= signed_from:
                try:
                    entries.verify_operator(row.data, row.operator_sig, log_key)
                except entries.EntryError as exc:
                    raise TamperedLedger(f"entry {row.seq}: {exc}") from exc
                verified += 1
            tree.append(leaf)
    _compare_nodes(session, tree, size)
    stored_head = log.head(session)
    if stored_head.frontier != merkle.Frontier.of(tree, size).to_bytes():
        raise TamperedLedger("the head row's frontier (the tree's right edge the next append builds on) does not "
                             "match the entries")
    if checkpoint is not None:
        _check_checkpoint(checkpoint, tree, origin, log_key)
    root = tree.root(size) if size else merkle.EMPTY_ROOT
    return CheckResult(size, root.hex(), None if checkpoint is None else checkpoint.size, verified)


def _compare_nodes(session: Session, tree: merkle.MemoryTree, size: int) -> None:
    stored = 0
    for node in session.scalars(select(LedgerNode).order_by(LedgerNode.level, LedgerNode.index)):
        start, end = node.index << node.level, (node.index + 1) << node.level
        if end > size:
            raise TamperedLedger(f"node ({node.level}, {node.index}) covers leaves beyond the log's size {size}")
        if tree.subtree_hash(start, end) != node.hash:
            raise TamperedLedger(f"node ({node.level}, {node.index}) over entries [{start}, {end}) does not match "
                                 f"the entries")
        stored += 1
    expected = sum(size >> level for level in range(size.bit_length()))
    if stored != expected:
        raise TamperedLedger(f"the log of {size} entries should have {expected} stored nodes, found {stored}")


def _check_checkpoint(row, tree: merkle.MemoryTree, origin: str, log_key: Ed25519PublicKey) -> None:
    checkpoint, signatures = notes.parse_note(row.note)
    try:
        notes.verify_log_signature(checkpoint, signatures, origin, log_key)
    except notes.NoteError as exc:
        raise TamperedLedger(f"checkpoint {row.size}: {exc}") from exc
    if checkpoint.size != row.size or checkpoint.root != row.root:
        raise TamperedLedger(f"checkpoint row {row.size} differs from the note it stores")
    if row.size > len(tree) or tree.root(row.size) != checkpoint.root:
        raise TamperedLedger(f"the entries no longer give the root the log signed at size {row.size}: entries "
                             f"before it were changed, removed, reordered or inserted")
