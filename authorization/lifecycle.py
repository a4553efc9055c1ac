"""The grant lifecycle as the exchange enforces it: who may take which action from which status. Pure.

The table itself (statuses, transitions, the entries they write) is ``common.grant_rules``, shared with the
offline replay; this module adds the checks the workflow raises on.
"""

from __future__ import annotations

from common.errors import Conflict
from common.grant_rules import (
    ACTIVATED_ENTRY,
    ACTIVE,
    CONSUMER,
    COUNTERED,
    DECLINED,
    ENDED,
    EXPIRED,
    LIVE,
    OPEN,
    PROVIDER,
    PROVIDER_APPROVED,
    REGULATOR,
    REJECTED,
    REQUESTED,
    REQUESTED_ENTRY,
    REVOKED,
    STATUSES,
    SUSPENDED,
    SYSTEM,
    TERMINATED,
    TRANSITIONS,
    WITHDRAWN,
    Transition,
)

__all__ = ["ACTIVATED_ENTRY", "ACTIVE", "CONSUMER", "COUNTERED", "DECLINED", "ENDED", "EXPIRED", "LIVE", "OPEN",
           "PROVIDER", "PROVIDER_APPROVED", "REGULATOR", "REJECTED", "REQUESTED", "REQUESTED_ENTRY", "REVOKED",
           "STATUSES", "SUSPENDED", "SYSTEM", "TERMINATED", "TRANSITIONS", "WITHDRAWN", "Transition",
           "allowed_actions", "check"]


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
