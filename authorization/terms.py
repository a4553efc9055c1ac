"""Grant terms and scopes as plain values, and the rules that relate them. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Mapping

from common import grant_rules
from common.grant_rules import CORE_GRADE as CORE_GRADE  # re-exported with the rules over terms
from common.grant_rules import REGULATOR_GRADE as REGULATOR_GRADE
from common.vocab import GrantKind

COMPREHENSIVE, DOMAIN, SCENARIO = GrantKind.COMPREHENSIVE, GrantKind.DOMAIN, GrantKind.SCENARIO
KINDS = (COMPREHENSIVE, DOMAIN, SCENARIO)
KIND_NAMES = {COMPREHENSIVE: "综合授权", DOMAIN: "分领域授权", SCENARIO: "依场景授权"}


@dataclass(frozen=True)
class Terms:
    """What a grant allows: computation kinds, window, quotas, privacy budget, disclosure limits, price."""

    computation_kinds: frozenset[str]
    valid_from: datetime
    valid_until: datetime
    max_jobs: int
    max_rows: int
    min_group_size: int
    max_result_cells: int
    epsilon: float | None = None
    price_amount: Decimal = Decimal("0")
    currency: str = "CNY"

    def to_json(self) -> dict[str, Any]:
        """Return the terms as JSON values (times ISO 8601 UTC, price as exact decimal text)."""
        return {"computation_kinds": sorted(self.computation_kinds), "valid_from": self.valid_from.isoformat(),
                "valid_until": self.valid_until.isoformat(), "max_jobs": self.max_jobs, "max_rows": self.max_rows,
                "min_group_size": self.min_group_size, "max_result_cells": self.max_result_cells,
                "epsilon": self.epsilon, "price": {"amount": str(self.price_amount), "currency": self.currency}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Terms:
        """Rebuild terms from ``to_json`` output."""
        return cls(computation_kinds=frozenset(data["computation_kinds"]),
                   valid_from=datetime.fromisoformat(data["valid_from"]),
                   valid_until=datetime.fromisoformat(data["valid_until"]), max_jobs=data["max_jobs"],
                   max_rows=data["max_rows"], min_group_size=data["min_group_size"],
                   max_result_cells=data["max_result_cells"], epsilon=data.get("epsilon"),
                   price_amount=Decimal(data["price"]["amount"]), currency=data["price"]["currency"])

    def with_window(self, valid_from: datetime, valid_until: datetime) -> Terms:
        return replace(self, valid_from=valid_from, valid_until=valid_until)


@dataclass(frozen=True)
class Scope:
    """Which assets a grant covers.

    comprehensive: every published asset of ``providers`` up to ``max_grade``;
    domain: every published asset of ``domain`` (of ``providers``) up to ``max_grade``;
    scenario: exactly ``assets``, for ``scenario`` and ``purpose``.
    """

    kind: str
    providers: frozenset[str] = frozenset()
    domain: str | None = None
    max_grade: int | None = None
    assets: frozenset[str] = field(default_factory=frozenset)
    scenario: str | None = None
    purpose: str | None = None

    def covers(self, asset_id: str, provider_id: str, domain: str, grade: int) -> bool:
        """Tell whether an asset with these facts lies inside the scope."""
        return grant_rules.covers(self.kind, self.providers, self.domain, self.max_grade, self.assets, asset_id,
                                  provider_id, domain, grade)


def check_terms(terms: Terms) -> dict[str, list[str]]:
    """Return per-field problems of a set of terms (empty when they are coherent)."""
    problems: dict[str, list[str]] = {}
    if terms.valid_until <= terms.valid_from:
        problems["valid_until"] = ["must be after valid_from"]
    if not terms.computation_kinds:
        problems["computation_kinds"] = ["at least one computation kind"]
    if terms.epsilon is not None and terms.epsilon <= 0:
        problems["epsilon"] = ["must be positive when given"]
    return problems


def narrowing_problems(offered: Terms, counter: Terms) -> dict[str, list[str]]:
    """Return how a counter-offer fails to narrow the offered terms (empty when it only narrows).

    A provider may grant less than asked — fewer kinds, a shorter window, smaller quotas and budget, a larger
    minimum group, fewer result cells — and may ask another price; it may never grant more.
    """
    problems: dict[str, list[str]] = {}

    def refuse(name: str, message: str) -> None:
        problems.setdefault(name, []).append(message)

    if not counter.computation_kinds <= offered.computation_kinds:
        refuse("computation_kinds", f"adds {', '.join(sorted(counter.computation_kinds - offered.computation_kinds))}")
    if counter.valid_from < offered.valid_from:
        refuse("valid_from", "starts before the requested window")
    if counter.valid_until > offered.valid_until:
        refuse("valid_until", "ends after the requested window")
    for name in ("max_jobs", "max_rows", "max_result_cells"):
        if getattr(counter, name) > getattr(offered, name):
            refuse(name, f"exceeds the requested {getattr(offered, name)}")
    if counter.min_group_size < offered.min_group_size:
        refuse("min_group_size", f"is below the requested {offered.min_group_size}")
    if offered.epsilon is not None and (counter.epsilon is None or counter.epsilon > offered.epsilon):
        refuse("epsilon", f"must stay at or below the requested {offered.epsilon}")
    problems.update(check_terms(counter))
    return problems


def needs_regulator(kind: str, grades: list[int]) -> bool:
    """Comprehensive grants always need the regulator; others when any asset in scope is grade ≥ 3."""
    return grant_rules.needs_regulator(kind, grades)
