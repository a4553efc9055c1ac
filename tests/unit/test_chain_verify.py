"""The auditor's comparison of an export with the chain (ledger.anchor.verify), on facts and views made by hand."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ledger import merkle
from ledger.anchor import records
from ledger.anchor.verify import AnchoredHead, ChainMismatch, ChainView, Flag, LedgerFacts, MirroredStatus, compare

ORIGIN = "test.pdx/ledger"
ANCHOR, REGISTRY = "0x" + "aa" * 20, "0x" + "bb" * 20
TERMS = {"valid_from": "2026-11-01T00:00:00+00:00", "valid_until": "2026-12-01T00:00:00+00:00", "max_jobs": 3}
DEPLOYED_AT = 20


def _tree(size: int) -> merkle.MemoryTree:
    return merkle.MemoryTree(merkle.leaf_hash(f"entry {i}".encode()) for i in range(size))


def _facts(size: int = 40, **overrides) -> LedgerFacts:
    tree = _tree(size)
    facts = LedgerFacts(origin=ORIGIN, size=size, root_at=tree.root,
                        checkpoint_notes={10: "note of ten\n", size: "note of all\n"},
                        deployments=[(DEPLOYED_AT, {"anchor": ANCHOR, "registry": REGISTRY, "chain_id": 7,
                                                    "sender": "0x" + "cc" * 20, "block": 1})],
                        marks={"grt_a": [(5, "active"), (12, "suspended"), (25, "active")],
                               "grt_b": [(30, "active"), (33, "revoked")]},
                        terms={"grt_a": TERMS, "grt_b": TERMS})
    return replace(facts, **overrides)


def _status(grant_id: str, seq: int, status: str, terms=TERMS) -> MirroredStatus:
    return MirroredStatus(grant_id, status, records.terms_hash(terms), *records.window(terms), ledger_seq=seq,
                          block_number=100 + seq)


def _head(index: int, size: int, root: bytes | None = None, note: str | None = None) -> AnchoredHead:
    return AnchoredHead(index=index, size=size, root=root or _tree(40).root(size),
                        checkpoint_hash=records.checkpoint_hash(note) if note else b"\x00" * 32,
                        block_number=50 + index, flagged=False)


def _view(anchors=(), statuses=(), flags=(), **overrides) -> ChainView:
    view = ChainView(chain_id=7, anchor_address=ANCHOR, registry_address=REGISTRY, origin=ORIGIN,
                     anchors=tuple(anchors), flags=tuple(flags), statuses=tuple(statuses), block_number=999)
    return replace(view, **overrides)


# what the exchange queues: grt_a's last mark before the deployment (12), then every later one
ALL_MIRRORED = (_status("grt_a", 12, "suspended"), _status("grt_a", 25, "active"), _status("grt_b", 30, "active"),
                _status("grt_b", 33, "revoked"))


def test_a_chain_that_agrees_is_reported_with_what_it_does_not_cover_yet():
    report = compare(_facts(), _view([_head(0, 10, note="note of ten\n"), _head(1, 36)], ALL_MIRRORED[:3]))
    assert (report.anchors_checked, report.newest_anchored_size, report.unanchored_entries) == (2, 36, 4)
    assert (report.statuses_checked, report.grants_on_chain, report.pending_marks) == (3, 2, 1)
    assert "2 agree with the export" in report.render() and "1 change(s) not mirrored yet" in report.render()


def test_an_anchored_root_the_entries_do_not_give_is_a_split_view():
    forged = _head(0, 30, root=_tree(31).root(31))
    with pytest.raises(ChainMismatch) as mismatch:
        compare(_facts(), _view([forged]))
    assert mismatch.value.kind == "chain-root" and "split view" in str(mismatch.value)


def test_an_anchored_checkpoint_hash_that_is_not_the_logs_checkpoint_is_refused():
    with pytest.raises(ChainMismatch) as mismatch:
        compare(_facts(), _view([_head(0, 10, note="another note\n")]))
    assert mismatch.value.kind == "chain-checkpoint"


def test_anchors_and_statuses_beyond_the_export_are_counted_not_judged():
    report = compare(_facts(size=20), _view([_head(0, 10, note="note of ten\n"), _head(1, 36)], [_status("grt_a", 12, "suspended"),
                                                                          _status("grt_x", 35, "active")]))
    assert (report.anchors_checked, report.anchors_ahead, report.statuses_ahead) == (1, 1, 1)


def test_a_contract_the_log_never_recorded_deploying_is_refused():
    with pytest.raises(ChainMismatch) as mismatch:
        compare(_facts(), _view(anchor_address="0x" + "dd" * 20))
    assert mismatch.value.kind == "chain-address" and ANCHOR in str(mismatch.value)
    with pytest.raises(ChainMismatch):
        compare(_facts(), _view(chain_id=8))
    with pytest.raises(ChainMismatch) as registry:
        compare(_facts(), _view(registry_address="0x" + "ee" * 20))
    assert "registry" in str(registry.value)


def test_an_anchor_of_another_log_is_refused():
    with pytest.raises(ChainMismatch) as mismatch:
        compare(_facts(), _view(origin="other.pdx/ledger"))
    assert mismatch.value.kind == "chain-origin"


@pytest.mark.parametrize("status", [
    _status("grt_a", 12, "active"),  # the entry made it suspended
    _status("grt_b", 12, "suspended"),  # the entry is grt_a's
    _status("grt_a", 13, "suspended"),  # no grant change at 13
    _status("grt_a", 12, "suspended", terms={**TERMS, "max_jobs": 4}),  # other terms
    replace(_status("grt_a", 12, "suspended"), valid_until=1),  # another window
])
def test_a_registry_status_its_ledger_entry_does_not_back_is_refused(status):
    with pytest.raises(ChainMismatch) as mismatch:
        compare(_facts(), _view(statuses=[status]))
    assert mismatch.value.kind == "chain-registry"


def test_a_grant_change_missing_below_the_registrys_highest_is_refused():
    skipped = [ALL_MIRRORED[0], ALL_MIRRORED[2], ALL_MIRRORED[3]]  # grt_a's reactivation at 25 never arrived
    with pytest.raises(ChainMismatch) as mismatch:
        compare(_facts(), _view(statuses=skipped))
    assert mismatch.value.kind == "chain-registry-missing" and "entry 25" in str(mismatch.value)


def test_marks_before_the_deployment_other_than_each_grants_last_are_not_expected():
    report = compare(_facts(), _view(statuses=ALL_MIRRORED))
    assert report.pending_marks == 0 and report.statuses_checked == 4


def test_flags_are_reported_with_their_anchors_size():
    flag = Flag(index=1, regulator="0x" + "99" * 20, reason="shown another checkpoint", block_number=70)
    report = compare(_facts(), _view([_head(0, 10, note="note of ten\n"), _head(1, 36)], flags=[flag]))
    assert report.flags == ((flag, 36),)
    assert "FLAGGED       anchor 1 (size 36)" in report.render() and "shown another checkpoint" in report.render()


@pytest.mark.parametrize(("previous", "status", "expected"), [
    (None, "active", True), (None, "expired", False), (None, "requested", False), ("active", "active", False),
    ("active", "suspended", True), ("suspended", "active", True), ("active", "provider-approved", False),
    ("suspended", "revoked", True),
])
def test_a_mark_is_a_move_into_another_mirrored_status_after_the_first_activation(previous, status, expected):
    assert records.is_mark(previous, status) is expected
