"""Reconciliation names every authorization-relevant field that differs from what the log implies, and nothing else."""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import pytest

from ledger import entries, reconcile
from tests.unit.audit_log_builder import LogBuilder


def _implied() -> reconcile.Expected:
    log = LogBuilder()
    provider = log.enrol("provider")
    log.enrol("consumer")
    log.publish(provider)
    log.update(next(iter(log.assets)))
    log.add_key(provider)
    log.revoke_key(provider)
    return reconcile.expected(entries.parse(data) for data, _ in log.records)


def _mirror(implied: reconcile.Expected) -> reconcile.Stored:
    """The rows an exchange that only ever wrote what it recorded would hold."""
    state = implied.state
    return reconcile.Stored(
        participants=tuple(reconcile.ParticipantRow(i, p.roles, p.status) for i, p in state.participants.items()),
        keys=tuple(reconcile.KeyRow(i, k.owner, reconcile.replay_key_text(k.public_key), k.revoked is not None)
                   for i, k in state.keys.items()),
        assets=tuple(reconcile.AssetRow(i, a.scope[0], a.status, a.scope[1], a.scope[2], tuple(a.scope[3]),
                                        tuple(a.scope[4]), implied.endpoints.get(i, "http://node"),
                                        implied.metadata[i]) for i, a in state.assets.items()),
        grants=(), jobs=(), sources=dict(state.sources))


def _edit(table: str, change: Callable) -> Callable[[reconcile.Stored], reconcile.Stored]:
    def edit(stored: reconcile.Stored) -> reconcile.Stored:
        rows = getattr(stored, table)
        return replace(stored, **{table: (change(rows[-1]), *rows[:-1])})

    return edit


EDITS = {
    "a role added": (_edit("participants", lambda p: replace(p, roles=p.roles | {"operator"})), "roles"),
    "a silent suspension": (_edit("participants", lambda p: replace(p, status="suspended")), "status"),
    "a lower grade": (_edit("assets", lambda a: replace(a, grade=1)), "grade"),
    "other metadata": (_edit("assets", lambda a: replace(a, metadata_sha256="0" * 64)), "metadata_sha256"),
    "a key un-revoked": (lambda s: replace(s, keys=tuple(replace(k, revoked=False) for k in s.keys)), "revoked"),
    "a key slipped in": (lambda s: replace(s, keys=(*s.keys, reconcile.KeyRow("k" * 64, "prt_x", "AAAA", False))),
                         "owner"),
    "a participant dropped": (lambda s: replace(s, participants=s.participants[1:]), "row"),
}


def test_rows_written_only_as_recorded_agree_with_the_log():
    implied = _implied()
    assert reconcile.compare(implied, _mirror(implied)) == []


@pytest.mark.parametrize("name", list(EDITS))
def test_each_edit_is_named_by_its_field(name):
    implied = _implied()
    edit, field = EDITS[name]
    differences = reconcile.compare(implied, edit(_mirror(implied)))
    assert [d.field for d in differences] == [field], differences
