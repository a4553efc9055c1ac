"""HTTP routes of the ledger: checkpoints and cosignatures, entries, proofs and the export."""

from __future__ import annotations

import base64
import json

from flask import Response, stream_with_context
from flask_smorest import Blueprint

from common.db import get_database, read_session
from common.errors import InvalidInput, NotFound, Unavailable
from exchange import ledger_schemas as schemas
from ledger import checkpoints, export, log, merkle, service
from participants import services as participants
from participants.rules import OPERATOR, PROVIDER, REGULATOR
from web.auth import authenticated, current_principal

blp = Blueprint("ledger", __name__, url_prefix="/api/v1/ledger",
                description="The permissioned ledger (区块链存证): RFC 9162 Merkle log of every change, C2SP "
                            "checkpoints, proofs and the export regulators verify offline")

AUDITORS = (REGULATOR, OPERATOR)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _identity():
    identity = service.identity()
    if identity is None:
        raise Unavailable("the ledger has no signing key yet; run `pdx init`")
    return identity


def _checkpoint_body(session, row) -> dict:
    signed = checkpoints.with_cosignatures(session, row)
    return {"origin": signed.checkpoint.origin, "size": row.size, "root": _b64(row.root), "note": signed.note,
            "cosigners": signed.cosigners, "log_public_key": service.public_key_text()}


def _current_checkpoint():
    with get_database().transaction() as session:
        row = checkpoints.sign_current(session, _identity())
        return _checkpoint_body(session, row)


@blp.get("/checkpoint")
@authenticated()
@blp.response(200, schemas.Checkpoint)
def current_checkpoint():
    """Return the log's latest checkpoint, signing one first if the log has grown since the last."""
    return _current_checkpoint()


@blp.get("/checkpoints/<count:size>")
@authenticated()
@blp.response(200, schemas.Checkpoint)
def checkpoint_at(size):
    """Return the checkpoint the log signed at tree size ``size``, with its cosignatures."""
    session = read_session()
    row = checkpoints.checkpoint_at(session, size)
    if row is None:
        raise NotFound(f"the log signed no checkpoint at size {size}")
    return _checkpoint_body(session, row)


@blp.post("/checkpoints/<count:size>/cosignatures")
@authenticated(REGULATOR, PROVIDER)
@blp.arguments(schemas.CosignatureBody)
@blp.response(201, schemas.Checkpoint)
def add_cosignature(body, size):
    """Add a witness's C2SP cosignature (regulators and providers witness the log with a registered key)."""
    witness = current_principal()
    identity = _identity()
    with get_database().transaction() as session:
        keys = {key.id: key.public_key for key in participants.list_keys(session, witness.id)
                if key.revoked_at is None}
        try:
            checkpoints.add_cosignature(session, witness.id, keys, identity.origin, size, body["line"])
        except checkpoints.CosignatureError as exc:
            raise InvalidInput(str(exc), errors={"line": [str(exc)]}) from exc
        return _checkpoint_body(session, checkpoints.checkpoint_at(session, size))


@blp.get("/entries")
@authenticated()
@blp.arguments(schemas.EntryRange, location="query")
@blp.response(200, schemas.Entries)
def entries(args):
    """Read entries [start, end): regulators and operators read all, others the entries that concern them."""
    session = read_session()
    size = log.size(session)
    if args["start"] >= size:
        raise InvalidInput(f"start {args['start']} is beyond the log's size {size}",
                           errors={"start": [f"must be below {size}"]})
    viewer = current_principal()
    only = None if viewer.has_role(*AUDITORS) else viewer.id
    rows = log.entry_rows(session, args["start"], min(args["end"], size), only)
    return {"size": size, "entries": [{"seq": row.seq, "leaf_hash": row.leaf_hash.hex(),
                                       "entry": json.loads(row.data), "operator_sig": row.operator_sig}
                                      for row in rows]}


def _check_size(session, size: int, name: str) -> None:
    current = log.size(session)
    if size > current:
        raise InvalidInput(f"{name} {size} exceeds the log's size {current}", errors={name: [f"at most {current}"]})


@blp.get("/proofs/inclusion")
@authenticated()
@blp.arguments(schemas.InclusionArgs, location="query")
@blp.response(200, schemas.InclusionProof)
def inclusion_proof(args):
    """Prove that an entry (by index or by leaf hash) is in the tree of a given size (RFC 9162 §2.1.3)."""
    session = read_session()
    size = args["size"]
    _check_size(session, size, "size")
    index = args["index"]
    if index is None:
        index = log.leaf_index(session, bytes.fromhex(args["leaf_hash"]))
        if index is None:
            raise NotFound(f"no entry has leaf hash {args['leaf_hash']}")
    if index >= size:
        raise InvalidInput(f"index {index} is not inside a tree of size {size}",
                           errors={"index": [f"must be below size {size}"]})
    nodes = log.DbNodes(session)
    proof = nodes.run(merkle.inclusion_proof_from, index, size)
    return {"index": index, "size": size, "leaf_hash": nodes.subtree_hash(index, index + 1).hex(),
            "root": _b64(nodes.run(merkle.root_from, size)), "proof": [_b64(h) for h in proof]}


@blp.get("/proofs/consistency")
@authenticated()
@blp.arguments(schemas.ConsistencyArgs, location="query")
@blp.response(200, schemas.ConsistencyProof)
def consistency_proof(args):
    """Prove that the tree of size ``first`` is a prefix of the tree of size ``second`` (RFC 9162 §2.1.4)."""
    session = read_session()
    _check_size(session, args["second"], "second")
    nodes = log.DbNodes(session)
    first, second = args["first"], args["second"]
    proof = nodes.run(merkle.consistency_proof_from, first, second)
    return {"first": first, "second": second, "first_root": _b64(nodes.run(merkle.root_from, first)),
            "second_root": _b64(nodes.run(merkle.root_from, second)), "proof": [_b64(h) for h in proof]}


@blp.get("/export")
@authenticated(*AUDITORS)
@blp.response(200, content_type="application/x-ndjson",
              description="JSON lines: header, entries, checkpoints, end (see docs/audit.md)")
def export_ledger():
    """Stream the whole log for offline audit: entries, then every checkpoint with its cosignatures."""
    signed = _current_checkpoint()
    session = get_database().sessionmaker()

    def generate():
        try:
            yield from export.lines(session, signed["origin"], signed["log_public_key"], signed["size"])
        finally:
            session.close()

    return Response(stream_with_context(generate()), mimetype="application/x-ndjson",
                    headers={"Content-Disposition": "attachment; filename=pdx-ledger.jsonl"})

