"""The settlement package's exceptions; each is a ``PdxError``, so the HTTP layer maps it to a problem.

SettlementError         422  a figure breaks a settlement rule (the message names the field or job)
 ├── CurrencyMismatch   422  two amounts of different currencies meet
 ├── InexactAmount      422  an amount is not a whole number of fen, or would need a rounding nobody named
 ├── PriceRefused       422  a price breaks the rules: negative, or above the government-guided ceiling
 ├── InvalidGame        422  a contribution game cannot be evaluated (no players, a missing subset)
 ├── InvalidRecords     422  usage records miss a column, carry a bad value or disagree within one job
 ├── RevenueCapExceeded 409  the operator's fees would pass its maximum allowed revenue for the period
 ├── DuplicateBilling   409  a job would be billed twice (twice in one period, or again after an earlier one)
 └── StatementImbalance 500  Σ charges ≠ Σ payouts + fee: a bug, never a user error
"""

from __future__ import annotations

from common.errors import PdxError


class SettlementError(PdxError):
    """Root of every settlement error."""

    status = 422
    slug = "settlement-refused"
    title = "Settlement rule broken"


class CurrencyMismatch(SettlementError):
    slug = "currency-mismatch"
    title = "Amounts in different currencies"


class InexactAmount(SettlementError):
    slug = "inexact-amount"
    title = "Amount is not exact to the fen"


class PriceRefused(SettlementError):
    slug = "price-refused"
    title = "Price refused"


class InvalidGame(SettlementError):
    slug = "invalid-contribution-game"
    title = "Contribution game cannot be evaluated"


class InvalidRecords(SettlementError):
    slug = "invalid-usage-records"
    title = "Invalid usage records"


class RevenueCapExceeded(SettlementError):
    status = 409
    slug = "revenue-cap-exceeded"
    title = "Maximum allowed revenue exceeded"


class DuplicateBilling(SettlementError):
    status = 409
    slug = "duplicate-billing"
    title = "Job already billed"


class StatementImbalance(SettlementError):
    status = 500
    slug = "statement-imbalance"
    title = "Statement does not balance"
