"""Who may vouch for a new key of a participant, as one pure rule the exchange and the offline replay share.

A key registration carries, besides the new key's proof of possession, an ``endorsement`` by an unrevoked key the
participant already has, or an active operator's ``approval`` (a first or recovery key; 7 days, never the
operator's own key). The caller looks up what the rule needs — the endorsing key, whether the approver is an
active operator, its key — in its own state (the database, or the log replayed so far) and passes it in; the
signed bytes are ``common.crypto.key_endorsement_message`` and ``key_approval_message``.

    ValueError
     └── VouchRefused     ``vouch`` (endorsement or approval) and ``reason``: unknown-key, bad-signature,
                          expired, not-an-operator or self-approval
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Mapping

from common import crypto

ENDORSEMENT, APPROVAL = "endorsement", "approval"
APPROVAL_LIFETIME = timedelta(days=7)  # how long an operator's approval of a key may wait to be used
APPROVAL_CLOCK_SKEW = timedelta(minutes=5)  # an approval dated this far ahead of the registration still counts
UNKNOWN_KEY, BAD_SIGNATURE, EXPIRED = "unknown-key", "bad-signature", "expired"
NOT_AN_OPERATOR, SELF_APPROVAL = "not-an-operator", "self-approval"


class VouchRefused(ValueError):
    """An endorsement or approval that does not vouch for the key it comes with."""

    def __init__(self, vouch: str, reason: str, message: str) -> None:
        super().__init__(message)
        self.vouch = vouch
        self.reason = reason


def check_endorsement(participant_id: str, public_key: str, endorsement: Mapping[str, str],
                      endorser: str | None) -> None:
    """Raise ``VouchRefused`` unless ``endorsement`` is a signature of the new key by ``endorser``.

    ``endorser`` is the base64 public key ``endorsement["key"]`` names if it is a registered, unrevoked key of
    ``participant_id`` at the moment of the registration, else None.
    """
    if endorser is None:
        raise VouchRefused(ENDORSEMENT, UNKNOWN_KEY, f"the endorsing key {endorsement['key']} is not a registered, "
                                                     f"unrevoked key of {participant_id}")
    try:
        crypto.verify(endorser, endorsement["signature"], crypto.key_endorsement_message(participant_id, public_key))
    except (crypto.BadKey, ValueError) as exc:
        raise VouchRefused(ENDORSEMENT, BAD_SIGNATURE, f"the endorsement is not a signature of the new key by key "
                                                       f"{endorsement['key']}") from exc


def check_approval(participant_id: str, public_key: str, approval: Mapping[str, str], *, operator_active: bool,
                   operator_key: str | None, approved_at: datetime, now: datetime,
                   slack: timedelta = timedelta(0)) -> None:
    """Raise ``VouchRefused`` unless ``approval`` is a live approval of the new key by another, active operator.

    ``operator_active`` tells whether ``approval["operator"]`` is an active operator, ``operator_key`` is the
    base64 public key ``approval["key"]`` names if it is a registered, unrevoked key of that operator (else None),
    ``approved_at`` is ``approval["approved_at"]`` parsed and ``now`` the moment of the registration, known to
    within ``slack`` (the replay reads it from the entry, stamped a moment after the exchange checked).
    """
    operator = approval["operator"]
    if not operator_active:
        raise VouchRefused(APPROVAL, NOT_AN_OPERATOR, f"{operator} is not an active operator")
    if operator == participant_id:
        raise VouchRefused(APPROVAL, SELF_APPROVAL, "an operator cannot approve its own key; another operator must")
    if operator_key is None:
        raise VouchRefused(APPROVAL, UNKNOWN_KEY, f"key {approval['key']} is not a registered, unrevoked key of "
                                                  f"operator {operator}")
    if not now - APPROVAL_LIFETIME - slack <= approved_at <= now + APPROVAL_CLOCK_SKEW + slack:
        raise VouchRefused(APPROVAL, EXPIRED, f"the approval dated {approval['approved_at']} is not within the "
                                              f"{APPROVAL_LIFETIME.days} days before the registration; ask the "
                                              f"operator for a new one")
    message = crypto.key_approval_message(participant_id, public_key, operator, approval["approved_at"])
    try:
        crypto.verify(operator_key, approval["signature"], message)
    except (crypto.BadKey, ValueError) as exc:
        raise VouchRefused(APPROVAL, BAD_SIGNATURE, f"the approval is not operator {operator}'s signature of this "
                                                    f"participant's new key") from exc
