"""Prices (pure): what a job costs, from metered usage, under the national rule for public data.

A grant's ``PriceTerms`` price four things: each job, the rows used (per ``rows_unit`` rows, e.g. per 1,000), the
privacy budget spent (per ε) and a flat fee per billing period. The purpose decides whether they apply: use for
public governance or public welfare (公益) is free; industry use pays the 公共数据运营服务费 under the
government-guided price ceiling (政府指导价) the regulator sets per product (``check_ceiling``). The operator
keeps a fee (``FeeRate``, a platform setting) and its fees over a period are held to its maximum allowed revenue
(最高准许收入, ``RevenueAllowance``). A consumer's counter-offer below the asking price is flagged
(``offer_flags``).

A job's charge is computed from ``Metered`` usage — what the nodes' signed receipts say (rows, result cells, ε,
ciphertext bytes, CPU and wall time) — never from what the consumer declared. Each line is rounded half up to the
fen once; the total is the sum of the lines (``charge_job``). ``settlement.statement`` computes the same figures
vectorized, and a test holds the two to agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Sequence

from settlement.errors import InexactAmount, PriceRefused, RevenueCapExceeded
from settlement.money import Money, Rounding, exact_fraction, round_fraction
from settlement.sharing import SplitRule

EPSILON_PLACES = 6  # ε is metered to 10⁻⁶
PPM = 1_000_000


class Purpose(StrEnum):
    """What a grant's data is used for; it decides whether the price applies."""

    PUBLIC_GOVERNANCE = "public-governance"  # 公共治理
    PUBLIC_WELFARE = "public-welfare"  # 公益事业
    INDUSTRY = "industry"  # 产业发展、行业发展


FREE_PURPOSES = frozenset({Purpose.PUBLIC_GOVERNANCE, Purpose.PUBLIC_WELFARE})
COMPONENTS = ("per_job", "per_rows", "per_epsilon", "per_period")


@dataclass(frozen=True)
class PriceTerms:
    """A grant's price: per job, per ``rows_unit`` rows, per ε, a flat fee per period, and the revenue split."""

    per_job: Money = field(default_factory=Money.zero)
    per_rows: Money = field(default_factory=Money.zero)
    rows_unit: int = 1000
    per_epsilon: Money = field(default_factory=Money.zero)
    per_period: Money = field(default_factory=Money.zero)
    split: SplitRule = SplitRule.ROWS

    def __post_init__(self) -> None:
        currencies = {getattr(self, name).currency for name in COMPONENTS}
        if len(currencies) != 1:
            raise PriceRefused(f"price terms mix currencies {sorted(currencies)}",
                               errors={"currency": ["one currency per price"]})
        for name in COMPONENTS:
            if getattr(self, name).fen < 0:
                raise PriceRefused(f"{name} is negative ({getattr(self, name)})", errors={name: ["negative"]})
        if isinstance(self.rows_unit, bool) or not isinstance(self.rows_unit, int) or self.rows_unit < 1:
            raise PriceRefused(f"rows_unit must be a positive whole number, found {self.rows_unit!r}",
                               errors={"rows_unit": ["not a positive int"]})
        object.__setattr__(self, "split", SplitRule(self.split))

    @property
    def currency(self) -> str:
        """Return the terms' one currency."""
        return self.per_job.currency

    def unit_price(self, name: str) -> Fraction:
        """Return component ``name`` in fen per unit (per job, per row, per ε, per period), exactly."""
        fen = Fraction(getattr(self, name).fen)
        return fen / self.rows_unit if name == "per_rows" else fen


@dataclass(frozen=True)
class Metered:
    """One provider's share of a job, as its node's signed receipt reports it (not as the consumer declared)."""

    rows: int
    result_cells: int = 0
    epsilon: Decimal = Decimal(0)
    ciphertext_bytes: int = 0
    cpu_seconds: Decimal = Decimal(0)
    wall_seconds: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        for name in ("rows", "result_cells", "ciphertext_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InexactAmount(f"{name} must be a non-negative whole number, found {value!r}",
                                    errors={name: ["not a non-negative int"]})
        for name in ("epsilon", "cpu_seconds", "wall_seconds"):
            value = exact_fraction(getattr(self, name), name)
            if value < 0:
                raise InexactAmount(f"{name} must not be negative, found {value}", errors={name: ["negative"]})
        if (exact_fraction(self.epsilon, "epsilon") * 10**EPSILON_PLACES).denominator != 1:
            raise InexactAmount(f"epsilon is metered to 10⁻{EPSILON_PLACES}, found {self.epsilon}",
                                errors={"epsilon": ["finer than 10⁻6"]})

    @property
    def epsilon_micro(self) -> int:
        """Return ε in millionths, exactly."""
        return int(Fraction(self.epsilon) * 10**EPSILON_PLACES)


@dataclass(frozen=True)
class ChargeLine:
    """One priced item of a job: what, how much of it, and its amount rounded half up to the fen."""

    item: str
    quantity: Fraction
    amount: Money


@dataclass(frozen=True)
class JobCharge:
    """What a job costs its consumer: the lines and their sum; free purposes cost nothing."""

    purpose: Purpose
    lines: tuple[ChargeLine, ...]
    total: Money
    reason: str


def charge_job(terms: PriceTerms, usage: Sequence[Metered], purpose: Purpose | str) -> JobCharge:
    """Price one job from the metered usage of every provider it ran on."""
    purpose = Purpose(purpose)
    zero = Money.zero(terms.currency)
    if purpose in FREE_PURPOSES:
        return JobCharge(purpose, (), zero, f"{purpose.value} use is free (公益/公共治理免费)")
    rows = sum(metered.rows for metered in usage)
    epsilon_micro = sum(metered.epsilon_micro for metered in usage)
    quantities = (("job", Fraction(1), terms.per_job.fen),
                  ("rows", Fraction(rows), Fraction(terms.per_rows.fen * rows, terms.rows_unit)),
                  ("epsilon", Fraction(epsilon_micro, PPM), Fraction(terms.per_epsilon.fen * epsilon_micro, PPM)))
    lines = tuple(ChargeLine(item, quantity, Money(round_fraction(Fraction(fen), Rounding.HALF_UP), terms.currency))
                  for item, quantity, fen in quantities)
    amount = zero
    for line in lines:
        amount = amount + line.amount
    return JobCharge(purpose, lines, amount, "industry use: 公共数据运营服务费 at the agreed price")


def check_ceiling(terms: PriceTerms, ceiling: PriceTerms, product: str) -> None:
    """Refuse ``terms`` if any component's unit price is above the government-guided ceiling for ``product``."""
    if terms.currency != ceiling.currency:
        raise PriceRefused(f"price in {terms.currency} but the ceiling for {product} is in {ceiling.currency}",
                           errors={"currency": [f"expected {ceiling.currency}"]})
    for name in COMPONENTS:
        if terms.unit_price(name) > ceiling.unit_price(name):
            unit = f" per {terms.rows_unit:,} rows" if name == "per_rows" else ""
            limit = f" per {ceiling.rows_unit:,} rows" if name == "per_rows" else ""
            raise PriceRefused(f"{name} {getattr(terms, name)}{unit} is above the government-guided price ceiling "
                               f"(政府指导价) of {getattr(ceiling, name)}{limit} for product {product}",
                               errors={name: ["above the government-guided ceiling"]},
                               extra={"product": product, "component": name})


@dataclass(frozen=True)
class OfferFlag:
    """A component a counter-offer asks below the asking price, for the provider to see."""

    component: str
    asking: Money
    requested: Money

    def __str__(self) -> str:
        return f"{self.component}: requested {self.requested}, below the asking price {self.asking}"


def offer_flags(asking: PriceTerms, requested: PriceTerms) -> tuple[OfferFlag, ...]:
    """Return a flag for each component ``requested`` prices below ``asking`` (per unit), in component order."""
    if asking.currency != requested.currency:
        raise PriceRefused(f"the offer is in {requested.currency}, the asking price in {asking.currency}",
                           errors={"currency": [f"expected {asking.currency}"]})
    return tuple(OfferFlag(name, getattr(asking, name), getattr(requested, name)) for name in COMPONENTS
                 if requested.unit_price(name) < asking.unit_price(name))


@dataclass(frozen=True)
class FeeRate:
    """The operator's share of each charge, in parts per million (a platform setting recorded on the ledger)."""

    ppm: int

    def __post_init__(self) -> None:
        if isinstance(self.ppm, bool) or not isinstance(self.ppm, int) or not 0 <= self.ppm <= PPM:
            raise PriceRefused(f"fee rate must be 0–{PPM:,} ppm, found {self.ppm!r}",
                               errors={"fee_rate": ["out of range"]})

    @classmethod
    def of(cls, rate: str | Decimal) -> FeeRate:
        """Return a rate such as ``"0.05"`` (5 %), refusing precision finer than one ppm."""
        ppm = exact_fraction(Decimal(rate), "fee_rate") * PPM
        if ppm.denominator != 1:
            raise PriceRefused(f"fee rate {rate} is finer than one part per million",
                               errors={"fee_rate": ["finer than 1 ppm"]})
        return cls(int(ppm))

    def fee(self, charge: Money) -> Money:
        """Return the operator's fee on ``charge``, rounded half up to the fen."""
        return charge.times(Fraction(self.ppm, PPM), rounding=Rounding.HALF_UP)


@dataclass(frozen=True)
class RevenueAllowance:
    """The operator's maximum allowed revenue (最高准许收入) for a period, and what it has earned so far."""

    period: str
    cap: Money
    earned: Money = field(default_factory=Money.zero)

    @property
    def headroom(self) -> Money:
        """Return what the operator may still earn this period (never below zero)."""
        left = self.cap - self.earned
        return left if left.fen > 0 else Money.zero(self.cap.currency)

    def excess(self, fee: Money) -> Money:
        """Return how far earning ``fee`` more would pass the cap (zero if it would not)."""
        over = self.earned + fee - self.cap
        return over if over.fen > 0 else Money.zero(self.cap.currency)

    def admit(self, fee: Money) -> RevenueAllowance:
        """Return the allowance after earning ``fee``, refusing a fee that would pass the cap."""
        over = self.excess(fee)
        if over.fen:
            raise RevenueCapExceeded(f"a fee of {fee} would bring the operator's revenue for {self.period} to "
                                     f"{self.earned + fee}, {over} above its maximum allowed revenue (最高准许收入) "
                                     f"of {self.cap}", errors={"fee": ["above the maximum allowed revenue"]},
                                     extra={"period": self.period, "cap": self.cap.to_json()})
        return RevenueAllowance(self.period, self.cap, self.earned + fee)

