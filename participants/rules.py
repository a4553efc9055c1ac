"""Participant rules in plain Python: roles, statuses and the transitions between them."""

from __future__ import annotations

from dataclasses import dataclass

from common.errors import Conflict, InvalidInput
from common.vocab import ParticipantStatus, Role

PROVIDER, CONSUMER, REGULATOR, OPERATOR = Role.PROVIDER, Role.CONSUMER, Role.REGULATOR, Role.OPERATOR
ROLES = (PROVIDER, CONSUMER, REGULATOR, OPERATOR)
# Separation of duties: who runs or polices the exchange does not also trade on it.
NEUTRAL_ROLES = frozenset({REGULATOR, OPERATOR})

PENDING, ACTIVE, SUSPENDED = ParticipantStatus.PENDING, ParticipantStatus.ACTIVE, ParticipantStatus.SUSPENDED
STATUSES = (PENDING, ACTIVE, SUSPENDED)

# action -> (statuses it may start from, status it leads to)
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "admit": (frozenset({PENDING}), ACTIVE),
    "suspend": (frozenset({PENDING, ACTIVE}), SUSPENDED),
    "reinstate": (frozenset({SUSPENDED}), ACTIVE),
}


@dataclass(frozen=True)
class Principal:
    """Who is calling: the participant behind an API token."""

    id: str
    roles: frozenset[str]
    status: str
    token_id: str

    def has_role(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))

    @property
    def is_active(self) -> bool:
        return self.status == ACTIVE


def check_roles(roles: list[str]) -> list[str]:
    """Return ``roles`` sorted and de-duplicated, or raise ``InvalidInput`` naming the ``roles`` field."""
    unique = sorted(set(roles))
    problems = []
    if not unique:
        problems.append("at least one role is required")
    unknown = [r for r in unique if r not in ROLES]
    if unknown:
        problems.append(f"unknown role(s) {', '.join(unknown)}; roles are {', '.join(ROLES)}")
    neutral = NEUTRAL_ROLES.intersection(unique)
    if neutral and len(unique) > 1:
        problems.append(f"{' and '.join(sorted(neutral))} cannot be combined with other roles (separation of duties)")
    if problems:
        raise InvalidInput("; ".join(problems), errors={"roles": problems})
    return unique


def allowed_actions(status: str) -> list[str]:
    """Return the status actions that may be taken from ``status``."""
    return sorted(action for action, (sources, _) in TRANSITIONS.items() if status in sources)


def next_status(action: str, status: str) -> str:
    """Return the status ``action`` leads to from ``status``, or raise ``Conflict`` listing the allowed actions."""
    sources, target = TRANSITIONS[action]
    if status not in sources:
        allowed = allowed_actions(status)
        raise Conflict(
            f"cannot {action} a participant that is {status}; allowed: {', '.join(allowed) or 'none'}",
            extra={"current_status": status, "allowed_actions": allowed},
        )
    return target
