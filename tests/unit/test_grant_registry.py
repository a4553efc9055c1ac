"""GrantRegistry on an in-process chain (eth-tester): batches in ledger order, stale sequence numbers, final
statuses, validity windows. Fixtures in conftest.py."""

from __future__ import annotations

import pytest
from eth_utils import keccak

from ledger.anchor.records import STATUS_CODES
from tests.unit.contract_chain import (
    FOREVER,
    TERMS,
    grant,
    refused,
)

# --- grant registry --------------------------------------------------------------------------------------------


def test_a_batch_is_recorded_in_ledger_order_with_one_event_per_update(deployed):
    sent = deployed.record(grant("g-1", "active", 3), grant("g-2", "active", 5, (100, 200)),
                           grant("g-1", "suspended", 8))
    events = deployed.events(deployed.registry.events.GrantStatusChanged, sent)
    assert [(e["grantKey"], e["grantId"], e["status"], e["ledgerSeq"]) for e in events] == [
        (keccak(text="g-1"), "g-1", 1, 3), (keccak(text="g-2"), "g-2", 1, 5), (keccak(text="g-1"), "g-1", 2, 8)]
    assert (events[1]["termsHash"], events[1]["validFrom"], events[1]["validUntil"]) == (TERMS, 100, 200)
    registry = deployed.registry.functions
    assert (registry.highestSeq().call(), registry.updateCount().call()) == (8, 3)
    assert deployed.operator.highest_mirrored_seq(deployed.registry_address) == 8
    timestamp = deployed.w3.eth.get_block(sent.block_number)["timestamp"]
    assert tuple(registry.statusOf("g-1").call()) == (TERMS, STATUS_CODES["suspended"], *FOREVER, 8, timestamp)


STALE = {
    "repeated within the batch": ([], [("g-a", 3), ("g-b", 3)], "g-b", 3, 3),
    "decreasing within the batch": ([], [("g-a", 3), ("g-b", 2)], "g-b", 3, 2),
    "equal to an earlier batch's": ([("g-0", 7)], [("g-a", 7)], "g-a", 7, 7),
    "older than an earlier batch's": ([("g-0", 7)], [("g-a", 5)], "g-a", 7, 5),
    "the log's genesis entry": ([], [("g-a", 0)], "g-a", 0, 0),
}


@pytest.mark.parametrize("case", STALE)
def test_a_stale_sequence_number_refuses_the_whole_batch(deployed, case):
    earlier, batch, stale_id, highest, seq = STALE[case]
    for grant_id, earlier_seq in earlier:
        deployed.record(grant(grant_id, "active", earlier_seq))
    before = deployed.registry_state(*(grant_id for grant_id, _ in batch))
    with refused(f"StaleUpdate(grantId={stale_id}, highestSeq={highest}, ledgerSeq={seq})"):
        deployed.record(*(grant(grant_id, "active", batch_seq) for grant_id, batch_seq in batch))
    assert deployed.registry_state(*(grant_id for grant_id, _ in batch)) == before


@pytest.mark.parametrize("final", ["revoked", "terminated", "expired"])
def test_a_final_status_cannot_be_changed(deployed, final):
    deployed.record(grant("g-1", "active", 1), grant("g-1", final, 2))
    for seq, status in enumerate(("active", "suspended", final), start=3):
        with refused(f"StatusIsFinal(grantId=g-1, status={STATUS_CODES[final]})"):
            deployed.record(grant("g-1", status, seq))
    assert deployed.registry.functions.statusOf("g-1").call()[1] == STATUS_CODES[final]
    assert not deployed.registry.functions.isActive("g-1").call()


def test_an_active_grant_can_be_suspended_and_reactivated(deployed):
    seen = []
    for seq, status in enumerate(("active", "suspended", "active"), start=1):
        deployed.record(grant("g-1", status, seq))
        seen.append((deployed.registry.functions.statusOf("g-1").call()[1],
                     deployed.registry.functions.isActive("g-1").call()))
    assert seen == [(1, True), (2, False), (1, True)]


def test_an_update_without_a_status_is_refused(deployed):
    update = ("g-1", TERMS, 0, *FOREVER, 1)  # GrantUpdate cannot even spell status None
    with refused("NoStatus(grantId=g-1)"):
        deployed.operator.transact(deployed.registry.functions.record([update]), "recording")
    assert deployed.registry_state("g-1") == (0, 0, [(bytes(32), 0, 0, 0, 0, 0)])


@pytest.mark.parametrize("valid_until", [100, 99])
def test_an_empty_validity_window_is_refused(deployed, valid_until):
    with refused(f"EmptyWindow(grantId=g-1, validFrom=100, validUntil={valid_until})"):
        deployed.record(grant("g-1", "active", 1, (100, valid_until)))


def test_an_unknown_grant_has_no_status_and_is_not_active(deployed):
    deployed.record(grant("g-1", "active", 1))
    assert tuple(deployed.registry.functions.statusOf("g-2").call()) == (bytes(32), 0, 0, 0, 0, 0)
    assert not deployed.registry.functions.isActive("g-2").call()


def test_a_grant_is_active_from_valid_from_until_just_before_valid_until(deployed, w3):
    tester = w3.provider.ethereum_tester
    now = w3.eth.get_block("latest")["timestamp"]
    start, end = now + 1000, now + 2000
    deployed.record(grant("g-1", "active", 1, (start, end)))

    def active_at(timestamp: int) -> bool:
        tester.time_travel(timestamp)
        tester.mine_blocks(1)
        assert w3.eth.get_block("latest")["timestamp"] == timestamp
        return deployed.registry.functions.isActive("g-1").call()

    assert [active_at(t) for t in (start - 1, start, end - 1, end)] == [False, True, True, False]
