"""Revenue sharing (pure): how a joint job's payout pool is split among its providers (授权使用收益分配).

The rule is agreed in the grant's price terms before any job runs — never chosen by the payer afterwards:

- ``rows``: in proportion to the rows each provider's node reports in its signed receipt;
- ``equal``: the same share to each provider;
- ``contribution``: in proportion to integer contribution weights (``settlement.shapley.Contributions.weights``).

Shares are exact to the fen (largest remainder, ties to the smaller provider id). When every weight is zero — no
rows, or no contribution above the significance floor — the pool is split equally: the money must go somewhere,
and an equal split favours no one.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Mapping

from settlement.errors import InvalidRecords
from settlement.money import Money, allocate_by


class SplitRule(StrEnum):
    """How a joint job's payout pool is split among its providers."""

    ROWS = "rows"
    EQUAL = "equal"
    CONTRIBUTION = "contribution"


def split_weights(rule: SplitRule | str, rows: Mapping[str, int],
                  scores: Mapping[str, int] | None = None) -> dict[str, int]:
    """Return each provider's integer weight under ``rule``; all zero falls back to equal weights."""
    rule = SplitRule(rule)
    if rule is SplitRule.ROWS:
        weights = dict(rows)
    elif rule is SplitRule.EQUAL:
        weights = {provider: 1 for provider in rows}
    else:
        if scores is None or set(scores) != set(rows):
            raise InvalidRecords("a contribution split needs a score for every provider of the job",
                                 errors={"score": [f"expected {sorted(rows)}"]})
        weights = dict(scores)
    if any(isinstance(w, bool) or not isinstance(w, int) or w < 0 for w in weights.values()):
        raise InvalidRecords(f"split weights must be non-negative whole numbers, found {weights}",
                             errors={"weights": ["not non-negative ints"]})
    if not any(weights.values()):
        weights = {provider: 1 for provider in weights}
    return weights


def split_pool(pool: Money, rule: SplitRule | str, rows: Mapping[str, int],
               scores: Mapping[str, int] | None = None) -> dict[str, Money]:
    """Split a job's payout pool among its providers under ``rule``, exactly to the fen."""
    if not rows:
        raise InvalidRecords("a job has at least one provider", errors={"provider": ["none"]})
    return allocate_by(pool, split_weights(rule, rows, scores))
