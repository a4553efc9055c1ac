"""The grant rules the exchange applies and the offline replay checks again, stated once. Pure.

``authorization`` (the workflow, the decision point) and ``ledger.replay`` (the auditor, which may import nothing
above the ledger) both read the lifecycle table and the scope rule from here, so the two cannot drift apart;
tests/unit/test_grant_rules_agree.py replays every (status, action) pair and every scope case through both.

    requested ──approve/counter/reject (each provider)──▶ (all approved) provider-approved ──regulator──▶ active
        ▲  └─counter─▶ countered ──accept──┘   └─decline─▶ declined              (no regulator needed ──▶ active)
    active ⇄ suspended (regulator) · revoked (provider) · terminated (consumer) · expired (clock)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import AbstractSet

from common.vocab import GrantKind, GrantStatus, Role

REQUESTED, COUNTERED, PROVIDER_APPROVED = GrantStatus.REQUESTED, GrantStatus.COUNTERED, GrantStatus.PROVIDER_APPROVED
ACTIVE, SUSPENDED = GrantStatus.ACTIVE, GrantStatus.SUSPENDED
REJECTED, DECLINED, WITHDRAWN = GrantStatus.REJECTED, GrantStatus.DECLINED, GrantStatus.WITHDRAWN
REVOKED, TERMINATED, EXPIRED = GrantStatus.REVOKED, GrantStatus.TERMINATED, GrantStatus.EXPIRED
STATUSES = tuple(GrantStatus)
OPEN = frozenset({REQUESTED, COUNTERED, PROVIDER_APPROVED})
LIVE = frozenset({ACTIVE, SUSPENDED})
ENDED = frozenset({REJECTED, DECLINED, WITHDRAWN, REVOKED, TERMINATED, EXPIRED})

PROVIDER, CONSUMER, REGULATOR = Role.PROVIDER, Role.CONSUMER, Role.REGULATOR
SYSTEM = "system"  # the exchange itself (its clock), as ledger.entries.SYSTEM_ACTOR

REGULATOR_GRADE = 3  # grants touching this grade or above need the regulator's co-approval
CORE_GRADE = 4  # core data: per scenario only, with the regulator's exception


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
# A grant becomes active (grant.activated) from these: its last approval, or the regulator's co-approval.
ACTIVATES_FROM = frozenset({REQUESTED, PROVIDER_APPROVED, ACTIVE})


def covers(kind: str, providers: AbstractSet[str], domain: str | None, max_grade: int | None,
           assets: AbstractSet[str], asset_id: str, provider_id: str, asset_domain: str, grade: int) -> bool:
    """Tell whether an asset (id, provider, domain, grade) lies inside a grant's scope.

    comprehensive: every published asset of ``providers`` up to ``max_grade``; domain: those of ``domain``;
    scenario: exactly ``assets``.
    """
    if kind == GrantKind.SCENARIO:
        return asset_id in assets
    if provider_id not in providers or max_grade is None or grade > max_grade:
        return False
    return kind == GrantKind.COMPREHENSIVE or asset_domain == domain


def needs_regulator(kind: str, grades: list[int]) -> bool:
    """Comprehensive grants always need the regulator; others when any asset in scope is grade ≥ 3."""
    return kind == GrantKind.COMPREHENSIVE or any(grade >= REGULATOR_GRADE for grade in grades)
