"""The grant lifecycle: statuses, who may take which action from which status, and where it leads. Pure.

    requested ──approve/counter/reject (each provider)──▶ (all approved) provider-approved ──regulator──▶ active
        ▲  └─counter─▶ countered ──accept──┘   └─decline─▶ declined              (no regulator needed ──▶ active)
    active ⇄ suspended (regulator) · revoked (provider) · terminated (consumer) · expired (clock)
"""

from __future__ import annotations

from dataclasses import dataclass

from common.errors import Conflict

REQUESTED, COUNTERED, PROVIDER_APPROVED = "requested", "countered", "provider-approved"
ACTIVE, SUSPENDED = "active", "suspended"
REJECTED, DECLINED, WITHDRAWN, REVOKED, TERMINATED, EXPIRED = (
    "rejected", "declined", "withdrawn", "revoked", "terminated", "expired")
STATUSES = (REQUESTED, COUNTERED, PROVIDER_APPROVED, ACTIVE, SUSPENDED, REJECTED, DECLINED, WITHDRAWN, REVOKED,
            TERMINATED, EXPIRED)
OPEN = frozenset({REQUESTED, COUNTERED, PROVIDER_APPROVED})
LIVE = frozenset({ACTIVE, SUSPENDED})
ENDED = frozenset({REJECTED, DECLINED, WITHDRAWN, REVOKED, TERMINATED, EXPIRED})

PROVIDER, CONSUMER, REGULATOR, SYSTEM = "provider", "consumer", "regulator", "system"


@dataclass(frozen=True)
class Transition:
    """An action: who takes it, from which statuses, and the status it leads to (None: decided by the service)."""

    party: str
    sources: frozenset[str]
    target: str | None
    entry: str


TRANSITIONS: dict[str, Transition] = {
    "approve": Transition(PROVIDER, frozenset({REQUESTED}), None, "grant.provider_approved"),
    "counter": Transition(PROVIDER, frozenset({REQUESTED}), COUNTERED, "grant.countered"),
    "reject": Transition(PROVIDER, frozenset({REQUESTED, COUNTERED}), REJECTED, "grant.rejected"),
    "accept": Transition(CONSUMER, frozenset({COUNTERED}), None, "grant.counter_accepted"),
    "decline": Transition(CONSUMER, frozenset({COUNTERED}), DECLINED, "grant.counter_declined"),
    "withdraw": Transition(CONSUMER, OPEN, WITHDRAWN, "grant.withdrawn"),
    "co-approve": Transition(REGULATOR, frozenset({PROVIDER_APPROVED}), ACTIVE, "grant.regulator_approved"),
    "regulator-reject": Transition(REGULATOR, frozenset({PROVIDER_APPROVED}), REJECTED, "grant.regulator_rejected"),
    "revoke": Transition(PROVIDER, LIVE, REVOKED, "grant.revoked"),
    "terminate": Transition(CONSUMER, LIVE, TERMINATED, "grant.terminated"),
    "suspend": Transition(REGULATOR, frozenset({ACTIVE}), SUSPENDED, "grant.suspended"),
    "reinstate": Transition(REGULATOR, frozenset({SUSPENDED}), ACTIVE, "grant.reinstated"),
    "expire": Transition(SYSTEM, LIVE | OPEN, EXPIRED, "grant.expired"),
}
ACTIVATED_ENTRY = "grant.activated"
REQUESTED_ENTRY = "grant.requested"


def allowed_actions(status: str, party: str | None = None) -> list[str]:
    """Return the actions possible from ``status`` (for ``party`` only, when given)."""
    return sorted(name for name, t in TRANSITIONS.items()
                  if status in t.sources and t.party != SYSTEM and (party is None or t.party == party))


def check(action: str, status: str, party: str) -> Transition:
    """Return the transition for ``action``, or raise ``Conflict`` naming the actions that are allowed."""
    transition = TRANSITIONS[action]
    if status not in transition.sources or transition.party != party:
        allowed = allowed_actions(status, party)
        raise Conflict(f"a {party} cannot {action} a grant that is {status}; allowed: {', '.join(allowed) or 'none'}",
                       extra={"current_status": status, "allowed_actions": allowed})
    return transition
