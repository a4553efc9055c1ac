"""The offline auditor checks who vouched for every key: an endorsement by a live key of the same participant, or
an approval by another participant that was an active operator then, signed with one of its live keys, not
expired when the key was registered. A log re-signed by the exchange's own log key cannot hide a key it made up."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ledger.audit import AuditFailure
from participants.keys import approval, endorsement, key_id
from tests.unit.audit_log_builder import LogBuilder, Member, public, seeded_key, verify

FORGER = seeded_key("forger")  # a key the exchange host made: registered to nobody


def _fails(log: LogBuilder, kind: str) -> AuditFailure:
    with pytest.raises(AuditFailure) as failure:
        verify(log.export())
    assert failure.value.kind == kind, failure.value
    assert failure.value.seq == len(log.records) - 1, failure.value  # the forged registration, the last entry
    return failure.value


def _approval(log: LogBuilder, member: Member, by: Member, *, key=None, ago: timedelta = timedelta(0),
              for_key: str | None = None) -> dict:
    operator_key = key or by.keys[-1]
    new = for_key or public(seeded_key(f"{member.id}/{len(log.records)}"))
    return {"approval": approval(operator_key, by.id, member.id, new, log.clock - ago)}


def test_a_history_of_endorsed_and_approved_keys_verifies():
    log = LogBuilder()
    consumer = log.enrol("consumer")  # first key: the operator's approval
    log.add_key(consumer)  # second: endorsed by the first
    second_operator = log.enrol("operator")
    log.add_key(log.operator)
    recovering = log.enrol("provider")
    log.add_key(recovering, _approval(log, recovering, second_operator))  # a recovery key, another operator's
    report = verify(log.export())
    assert report.keys == 7


def test_a_key_registered_with_neither_endorsement_nor_approval_fails_the_audit():
    log = LogBuilder()
    consumer = log.enrol("consumer")
    log.add_key(consumer, {})
    failure = _fails(log, "key-unvouched")
    assert consumer.id in failure.message


def test_the_operator_registers_only_the_first_key_of_the_exchange_without_a_vouch():
    log = LogBuilder()
    log.add_key(log.operator, {})
    _fails(log, "key-unvouched")


def test_an_endorsement_forged_in_the_name_of_the_participants_key_fails_the_audit():
    log = LogBuilder()
    consumer = log.enrol("consumer")
    new = public(seeded_key(f"{consumer.id}/{len(log.records)}"))
    forged = {**endorsement(FORGER, consumer.id, new), "key": key_id(consumer.keys[-1])}
    log.add_key(consumer, {"endorsement": forged})
    _fails(log, "endorsement-bad-signature")


def test_an_endorsement_signed_for_another_key_fails_the_audit():
    log = LogBuilder()
    consumer = log.enrol("consumer")
    log.add_key(consumer, {"endorsement": endorsement(consumer.keys[-1], consumer.id, public(FORGER))})
    _fails(log, "endorsement-bad-signature")


def test_an_endorsement_by_a_key_of_another_participant_fails_the_audit():
    log = LogBuilder()
    consumer, other = log.enrol("consumer"), log.enrol("consumer")
    new = public(seeded_key(f"{consumer.id}/{len(log.records)}"))
    log.add_key(consumer, {"endorsement": endorsement(other.keys[-1], consumer.id, new)})
    _fails(log, "endorsement-unknown-key")


def test_an_endorsement_by_a_key_revoked_earlier_in_the_log_fails_the_audit():
    log = LogBuilder()
    consumer = log.enrol("consumer")
    revoked = consumer.keys[0]
    log.add_key(consumer)
    log.revoke_key(consumer)
    new = public(seeded_key(f"{consumer.id}/{len(log.records)}"))
    log.add_key(consumer, {"endorsement": endorsement(revoked, consumer.id, new)})
    _fails(log, "endorsement-unknown-key")


def test_an_approval_by_a_participant_that_is_not_an_operator_fails_the_audit():
    log = LogBuilder()
    provider, consumer = log.enrol("provider"), log.enrol("consumer")
    log.add_key(consumer, _approval(log, consumer, provider))
    _fails(log, "approval-not-an-operator")


def test_an_approval_by_an_operator_suspended_since_fails_the_audit():
    log = LogBuilder()
    second_operator, consumer = log.enrol("operator"), log.enrol("consumer")
    log.change_status(second_operator, "suspend", "suspended")
    log.add_key(consumer, _approval(log, consumer, second_operator))
    _fails(log, "approval-not-an-operator")


def test_an_operator_approving_its_own_key_fails_the_audit():
    log = LogBuilder()
    log.add_key(log.operator, _approval(log, log.operator, log.operator))
    _fails(log, "approval-self-approval")


def test_an_approval_signed_with_a_key_the_operator_does_not_hold_fails_the_audit():
    log = LogBuilder()
    consumer = log.enrol("consumer")
    forged = {"approval": {**_approval(log, consumer, log.operator, key=FORGER)["approval"]}}
    log.add_key(consumer, forged)
    _fails(log, "approval-unknown-key")


def test_an_approval_with_a_forged_signature_under_the_operators_key_id_fails_the_audit():
    log = LogBuilder()
    consumer = log.enrol("consumer")
    forged = _approval(log, consumer, log.operator, key=FORGER)
    forged["approval"]["key"] = key_id(log.operator.keys[-1])
    log.add_key(consumer, forged)
    _fails(log, "approval-bad-signature")


def test_an_approval_signed_with_a_revoked_operator_key_fails_the_audit():
    log = LogBuilder()
    consumer = log.enrol("consumer")
    old = log.operator.keys[0]
    log.add_key(log.operator)
    log.revoke_key(log.operator)
    log.add_key(consumer, _approval(log, consumer, log.operator, key=old))
    _fails(log, "approval-unknown-key")


@pytest.mark.parametrize("ago", [timedelta(days=7, minutes=1), -timedelta(minutes=6)])
def test_an_approval_used_after_seven_days_or_dated_ahead_fails_the_audit(ago):
    log = LogBuilder()
    consumer = log.enrol("consumer")
    log.add_key(consumer, _approval(log, consumer, log.operator, ago=ago))
    _fails(log, "approval-expired")


def test_an_approval_used_on_its_last_day_verifies():
    log = LogBuilder()
    consumer = log.enrol("consumer")
    log.add_key(consumer, _approval(log, consumer, log.operator, ago=timedelta(days=6, hours=23)))
    assert verify(log.export()).keys == 3


def test_an_approval_reused_for_another_key_fails_the_audit():
    log = LogBuilder()
    consumer = log.enrol("consumer")
    new = public(seeded_key(f"{consumer.id}/{len(log.records)}"))
    log.add_key(consumer, _approval(log, consumer, log.operator, for_key=new))
    log.add_key(consumer, _approval(log, consumer, log.operator, for_key=new))  # the same approval, another key
    _fails(log, "approval-bad-signature")


def test_a_malformed_endorsement_is_the_entrys_fault():
    log = LogBuilder()
    consumer = log.enrol("consumer")
    log.add_key(consumer, {"endorsement": {"key": ["not", "an", "id"], "signature": "x"}})
    _fails(log, "malformed-entry")
