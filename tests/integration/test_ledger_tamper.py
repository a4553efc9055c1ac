"""`pdx ledger check` catches any change, deletion, reordering or insertion of ledger rows (Hypothesis).

Each example tampers inside a savepoint of one session, runs the check in that session, and rolls back, so the
same signed log serves every example on both databases.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select, update

from common.db import get_database
from ledger import check, checkpoints, entries, merkle, service
from ledger.models import LedgerCheckpoint, LedgerEntry, LedgerHead, LedgerNode, LedgerOpening, LedgerParty
from tests.support import publish, register

pytestmark = pytest.mark.sql  # edits of the ledger tables

TAMPER_SETTINGS = settings(max_examples=8, deadline=None,
                           suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def signed_log(app, client, world):
    """A log of a few dozen entries with a signed checkpoint, and a session to tamper in."""
    for number in range(3):
        provider = world.participant("provider", name=f"p{number}")
        asset = register(client, provider)
        publish(client, provider, asset["id"])
    client.post("/api/v1/participants", headers=world.operator.headers, json={
        "name_zh": "有邮箱", "name_en": "Has email", "roles": ["consumer"], "contact_email": "a@b.example"})
    with app.app_context():
        with get_database().transaction() as session:
            checkpoints.sign_current(session, service.identity())
        identity = service.identity()
        session = get_database().sessionmaker()
        size = session.get(LedgerHead, 1).size
        yield session, identity, size
        session.close()


def _run_check(session, identity):
    return check.check(session, identity.origin, identity.key.public_key(), full=True)


def test_an_untouched_log_passes(signed_log):
    session, identity, size = signed_log
    result = _run_check(session, identity)
    assert result.size == size and result.checkpoint_size == size and result.signatures_verified == size


def _drop_entry_rows(session, seq):
    session.execute(delete(LedgerParty).where(LedgerParty.seq == seq))
    session.execute(delete(LedgerOpening).where(LedgerOpening.seq == seq))
    session.execute(delete(LedgerEntry).where(LedgerEntry.seq == seq))


def _tamper(session, identity, size, kind, i, j, position):
    row = session.get(LedgerEntry, i)
    if kind == "change-byte":
        data = bytearray(row.data)
        data[position % len(data)] ^= 0x01
        session.execute(update(LedgerEntry).where(LedgerEntry.seq == i).values(data=bytes(data)))
    elif kind == "change-and-rehash":  # a careful attacker also fixes the stored leaf hash
        data = row.data.replace(b'"v":1', b'"v":1 ', 1) if position % 2 else row.data + b" "
        session.execute(update(LedgerEntry).where(LedgerEntry.seq == i)
                        .values(data=data, leaf_hash=merkle.leaf_hash(data)))
    elif kind == "delete":
        _drop_entry_rows(session, i)
    elif kind == "delete-and-shrink-head":
        last = size - 1
        _drop_entry_rows(session, last)
        session.execute(update(LedgerHead).values(size=last))
    elif kind == "swap":
        other = session.get(LedgerEntry, j if j != i else (i + 1) % size)
        first = (row.data, row.leaf_hash, row.operator_sig)
        second = (other.data, other.leaf_hash, other.operator_sig)
        session.execute(update(LedgerEntry).where(LedgerEntry.seq == row.seq)
                        .values(data=second[0], leaf_hash=second[1], operator_sig=second[2]))
        session.execute(update(LedgerEntry).where(LedgerEntry.seq == other.seq)
                        .values(data=first[0], leaf_hash=first[1], operator_sig=first[2]))
    elif kind == "insert-forged":  # a new last entry signed with some other key
        forged_key = Ed25519PrivateKey.generate()
        data, sig = entries.build(entries.Draft("participant.suspended", "system"), seq=size,
                                  time="2099-01-01T00:00:00.000000Z", request=None, commit={},
                                  operator_key=forged_key)
        session.add(LedgerEntry(seq=size, data=data, operator_sig=sig, leaf_hash=merkle.leaf_hash(data),
                                type="participant.suspended", actor="system", nonce=None))
        session.execute(update(LedgerHead).values(size=size + 1))
    elif kind == "change-node":
        node = session.scalars(select(LedgerNode).order_by(LedgerNode.level.desc(), LedgerNode.index)
                               .offset(position % 5)).first()
        session.execute(update(LedgerNode).where(LedgerNode.level == node.level, LedgerNode.index == node.index)
                        .values(hash=bytes(32)))
    elif kind == "change-frontier":
        session.execute(update(LedgerHead).values(frontier=bytes(32) + session.get(LedgerHead, 1).frontier[32:]))
    elif kind == "change-checkpoint-root":
        session.execute(update(LedgerCheckpoint).values(root=bytes(32)))
    session.flush()
    session.expire_all()


KINDS = ["change-byte", "change-and-rehash", "delete", "delete-and-shrink-head", "swap", "insert-forged",
         "change-node", "change-frontier", "change-checkpoint-root"]


@pytest.mark.parametrize("kind", KINDS)
@TAMPER_SETTINGS
@given(i=st.integers(min_value=0, max_value=10_000),
       j=st.integers(min_value=0, max_value=10_000), position=st.integers(min_value=0, max_value=10_000))
def test_any_tampering_of_the_ledger_tables_is_caught(signed_log, kind, i, j, position):
    session, identity, size = signed_log
    i, j = i % size, j % size
    savepoint = session.begin_nested()
    try:
        _tamper(session, identity, size, kind, i, j, position)
        with pytest.raises(check.TamperedLedger):
            _run_check(session, identity)
    finally:
        savepoint.rollback()
        session.expire_all()
    assert _run_check(session, identity).size == size
