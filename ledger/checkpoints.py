"""Signing checkpoints (never two inconsistent ones) and gathering witnesses' cosignatures."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from common import crypto
from common.db import utcnow
from ledger import log, merkle, notes
from ledger.errors import LedgerError
from ledger.log import LogIdentity
from ledger.models import LedgerCheckpoint, LedgerCosignature

WITNESS_NAME_PREFIX = "witness/"


class InconsistentLog(LedgerError):
    """The stored tree no longer agrees with a checkpoint the log signed: it was tampered with."""


class CosignatureError(LedgerError):
    """A cosignature that does not verify or does not belong to the checkpoint it is posted for."""


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint with its note text: the log's signature line and every cosignature gathered so far."""

    checkpoint: notes.Checkpoint
    note: str
    cosigners: list[str]


def witness_name(origin: str, participant_id: str) -> str:
    """Return the cosigner key name a participant witnesses the log ``origin`` under."""
    return f"{origin}/{WITNESS_NAME_PREFIX}{participant_id}"


def latest(session: Session) -> LedgerCheckpoint | None:
    """Return the newest checkpoint the log has signed."""
    return session.scalar(select(LedgerCheckpoint).order_by(LedgerCheckpoint.size.desc()).limit(1))


def checkpoint_at(session: Session, size: int) -> LedgerCheckpoint | None:
    """Return the checkpoint of tree size ``size``, if the log signed one."""
    return session.get(LedgerCheckpoint, size)


def sign_current(session: Session, identity: LogIdentity) -> LedgerCheckpoint:
    """Return a checkpoint covering the whole log, signing a new one if the log has grown.

    Before signing, the stored tree must still produce the root of the previous checkpoint and a consistency
    proof between the two must verify, so the log never signs a head inconsistent with an earlier one.
    """
    size = log.size(session)
    previous = latest(session)
    if previous is not None and previous.size == size:
        return previous
    nodes = log.DbNodes(session)
    root = nodes.run(merkle.root_from, size)
    if previous is not None:
        stored = nodes.run(merkle.root_from, previous.size)
        if stored != previous.root:
            raise InconsistentLog(f"the stored tree gives root {stored.hex()} at size {previous.size}, but the "
                                  f"signed checkpoint says {previous.root.hex()}: the ledger tables were altered")
        proof = nodes.run(merkle.consistency_proof_from, previous.size, size)
        try:
            merkle.verify_consistency(previous.size, size, previous.root, root, proof)
        except merkle.ProofError as exc:
            raise InconsistentLog(f"no consistency between sizes {previous.size} and {size}: {exc}") from exc
    checkpoint = notes.Checkpoint(identity.origin, size, root)
    signature = notes.sign_checkpoint(checkpoint, identity.key_name, identity.key)
    row = LedgerCheckpoint(size=size, root=root, note=notes.note(checkpoint, [signature]), created_at=utcnow())
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        # A concurrent request signed the same size first; its checkpoint is the same tree head.
        return session.get(LedgerCheckpoint, size, populate_existing=True)
    return row


def with_cosignatures(session: Session, row: LedgerCheckpoint) -> SignedCheckpoint:
    """Return a checkpoint's note with every cosignature line gathered for it appended."""
    cosignatures = list(session.scalars(select(LedgerCosignature).where(LedgerCosignature.size == row.size)
                                        .order_by(LedgerCosignature.created_at, LedgerCosignature.name)))
    checkpoint, _ = notes.parse_note(row.note)
    return SignedCheckpoint(checkpoint, row.note + "".join(c.line for c in cosignatures),
                            [c.witness_id for c in cosignatures])


def add_cosignature(session: Session, witness_id: str, witness_keys: dict[str, str], origin: str, size: int,
                    line: str) -> LedgerCosignature:
    """Verify a witness's cosignature line for checkpoint ``size`` against the witness's keys and keep it.

    ``witness_keys`` maps key id to base64 public key for the witness's registered, unrevoked keys.
    """
    row = checkpoint_at(session, size)
    if row is None:
        raise CosignatureError(f"the log signed no checkpoint of size {size}")
    checkpoint, _ = notes.parse_note(row.note)
    try:
        _, [signature] = notes.parse_note(checkpoint.body() + "\n" + line.rstrip("\n") + "\n")
    except (notes.NoteError, ValueError) as exc:
        raise CosignatureError(f"not one signature line: {exc}") from exc
    name = witness_name(origin, witness_id)
    for key_id, public in witness_keys.items():
        public_key: Ed25519PublicKey = crypto.load_public_key(public)
        if signature.key_id != notes.cosigner_key_id(name, public_key):
            continue
        try:
            timestamp = notes.verify_cosignature(checkpoint, signature, name, public_key)
        except notes.NoteError as exc:
            raise CosignatureError(str(exc)) from exc
        existing = session.get(LedgerCosignature, (size, name))
        if existing is not None:
            session.delete(existing)
            session.flush()
        cosignature = LedgerCosignature(size=size, name=name, witness_id=witness_id, key_id=key_id,
                                        line=signature.line(), timestamp=timestamp, created_at=utcnow())
        session.add(cosignature)
        session.flush()
        return cosignature
    raise CosignatureError(f"the cosignature is not by a registered key of {witness_id} under the name {name}")

