"""The offline auditor over synthetic logs: any valid history verifies, any tampering fails (Hypothesis)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import entries
from ledger.audit import AuditFailure
from ledger.entries import Draft
from ledger.merkle import MemoryTree, leaf_hash
from tests.unit.audit_log_builder import (
    build,
    entry_line,
    fast,
    histories,
    verify,
)


@fast
@given(histories)
def test_any_valid_history_verifies_and_the_report_counts_it(actions):
    log = build(actions)
    report = verify(log.export())
    assert report.entries == report.size == len(log.records)
    assert report.root == log.tree.root().hex()
    assert report.checkpoints == len(log.checkpoints)
    assert report.participants == len(log.members)
    assert report.revoked_keys == len(log.revoked)
    assert sum(report.entry_types.values()) == len(log.records)
    assert report.entry_types["log.genesis"] == 1


@fast
@given(histories, st.data())
def test_changing_any_byte_of_any_entry_is_caught_at_that_entry(actions, data):
    log = build(actions)
    seq = data.draw(st.integers(0, len(log.records) - 1), label="seq")
    entry, signature = log.records[seq]
    position = data.draw(st.integers(0, len(entry) - 1), label="position")
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != entry[position]), label="byte")
    lines = log.export()
    lines[1 + seq] = entry_line(seq, entry[:position] + bytes([byte]) + entry[position + 1:], signature)
    with pytest.raises(AuditFailure) as failure:
        verify(lines)
    assert failure.value.seq == seq


@fast
@given(histories, st.data())
def test_deleting_any_line_is_caught(actions, data):
    lines = build(actions).export()
    del lines[data.draw(st.integers(0, len(lines) - 1), label="line")]
    with pytest.raises(AuditFailure):
        verify(lines)


@fast
@given(histories, st.data())
def test_swapping_any_two_entries_is_caught_at_the_first(actions, data):
    log = build(actions)
    first, second = sorted(data.draw(st.lists(st.integers(0, len(log.records) - 1), min_size=2, max_size=2,
                                              unique=True), label="entries"))
    lines = log.export()
    lines[1 + first], lines[1 + second] = lines[1 + second], lines[1 + first]
    with pytest.raises(AuditFailure) as failure:
        verify(lines)
    assert (failure.value.seq, failure.value.kind) == (first, "sequence")


@fast
@given(histories, st.data())
def test_inserting_a_copy_of_any_entry_anywhere_is_caught(actions, data):
    log = build(actions)
    copied = data.draw(st.integers(0, len(log.records) - 1), label="copied")
    position = data.draw(st.integers(0, len(log.records)), label="position")
    lines = log.export()
    lines.insert(1 + position, lines[1 + copied])
    with pytest.raises(AuditFailure) as failure:
        verify(lines)
    # the copy is caught where it lands, unless it lands just before its original, which is then one too many
    assert failure.value.seq == (position + 1 if copied == position else position)


REQUEST_FIELDS = ("actor", "key", "method", "path", "body_sha256", "signed_at", "nonce")


@fast
@given(histories, st.data())
def test_the_log_key_cannot_alter_any_field_of_a_signed_request(actions, data):
    log = build(actions)
    signed = [seq for seq, (entry, _) in enumerate(log.records) if json.loads(entry)["request"] is not None]
    seq = data.draw(st.sampled_from(signed), label="seq")
    entry = json.loads(log.records[seq][0])
    name = data.draw(st.sampled_from(REQUEST_FIELDS), label="field")
    value = data.draw(st.text(min_size=1).filter(lambda text: text != entry["request"][name]), label="value")
    request = entries.SignedRequest({**entry["request"], name: value}, entry["sig"]["actor"])
    draft = Draft(entry["type"], request.actor, refs=entry["refs"], body=entry["body"])  # the entry follows suit
    forged, signature = entries.build(draft, seq=seq, time=entry["time"], request=request, commit=entry["commit"],
                                      operator_key=log.log_key)
    log.records[seq] = (forged, signature)
    log.tree = MemoryTree(leaf_hash(record) for record, _ in log.records)
    with pytest.raises(AuditFailure) as failure:
        verify(log.export())
    assert failure.value.seq == seq
