"""Exact money: integer fen with an explicit currency; rounding happens only where a caller names it.

``Money`` adds, subtracts and multiplies by whole numbers exactly. Anything that could leave a fraction of a fen —
a price per 1,000 rows, a fee rate — goes through ``Money.times`` with a named ``Rounding``. Splitting an amount
into shares goes through ``allocate``: the largest-remainder method, so the shares always sum to the amount to the
fen, with ties broken by position (``allocate_by`` sorts keys first, so by key). See docs/decisions.md, 42.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from fractions import Fraction
from typing import Mapping, Sequence

from settlement.errors import CurrencyMismatch, InexactAmount

DEFAULT_CURRENCY = "CNY"
FEN_PER_YUAN = 100
_CURRENCY = re.compile(r"[A-Z]{3}")

Number = int | Fraction | Decimal


class Rounding(StrEnum):
    """How a fraction of a fen becomes a whole fen."""

    HALF_UP = "half-up"  # halves away from zero: 0.5 fen → 1 fen, −0.5 fen → −1 fen
    HALF_EVEN = "half-even"  # banker's rounding
    DOWN = "down"  # toward zero


def round_fraction(value: Fraction, rounding: Rounding) -> int:
    """Return ``value`` rounded to a whole number as ``rounding`` says."""
    sign = -1 if value < 0 else 1
    magnitude = abs(value)
    whole, rest = divmod(magnitude.numerator, magnitude.denominator)
    twice = 2 * rest
    if rounding is Rounding.DOWN or rest == 0:
        bump = 0
    elif rounding is Rounding.HALF_UP:
        bump = 1 if twice >= magnitude.denominator else 0
    else:
        bump = 1 if twice > magnitude.denominator or (twice == magnitude.denominator and whole % 2) else 0
    return sign * (whole + bump)


def exact_fraction(value: Number, what: str) -> Fraction:
    """Return ``value`` as an exact fraction; floats are refused, since they are not exact."""
    if isinstance(value, bool) or not isinstance(value, (int, Fraction, Decimal)):
        raise InexactAmount(f"{what} must be an int, Fraction or Decimal, not {type(value).__name__}",
                            errors={what: ["not an exact number"]})
    if isinstance(value, Decimal) and not value.is_finite():
        raise InexactAmount(f"{what} must be finite, found {value}", errors={what: ["not finite"]})
    return Fraction(value)


@dataclass(frozen=True)
class Money:
    """An exact amount: a whole number of fen (0.01 of the unit) in one currency."""

    fen: int
    currency: str = DEFAULT_CURRENCY

    def __post_init__(self) -> None:
        if isinstance(self.fen, bool) or not isinstance(self.fen, int):
            raise InexactAmount(f"money is a whole number of fen, found {self.fen!r}", errors={"fen": ["not an int"]})
        if not isinstance(self.currency, str) or not _CURRENCY.fullmatch(self.currency):
            raise CurrencyMismatch(f"currency must be an ISO 4217 code such as CNY, found {self.currency!r}",
                                   errors={"currency": ["not an ISO 4217 code"]})

    @classmethod
    def of(cls, amount: str | int | Decimal, currency: str = DEFAULT_CURRENCY) -> Money:
        """Return ``amount`` units (e.g. ``"12.34"`` yuan) as money, refusing anything finer than a fen."""
        if isinstance(amount, float):
            raise InexactAmount(f"amount {amount!r} is a float; give it as text or Decimal",
                                errors={"amount": ["float"]})
        try:
            value = Decimal(amount)
        except (InvalidOperation, TypeError, ValueError) as exc:
            raise InexactAmount(f"amount {amount!r} is not a number", errors={"amount": ["not a number"]}) from exc
        fen = exact_fraction(value, "amount") * FEN_PER_YUAN
        if fen.denominator != 1:
            raise InexactAmount(f"amount {amount} is not a whole number of fen (0.01 {currency})",
                                errors={"amount": ["finer than a fen"]})
        return cls(int(fen), currency)

    @classmethod
    def zero(cls, currency: str = DEFAULT_CURRENCY) -> Money:
        """Return nothing, in ``currency``."""
        return cls(0, currency)

    @property
    def amount(self) -> Decimal:
        """Return the amount in units (yuan), exact to the fen."""
        return (Decimal(self.fen) / FEN_PER_YUAN).quantize(Decimal("0.01"))

    def to_json(self) -> dict[str, str]:
        """Return the amount as exact decimal text and its currency."""
        return {"amount": str(self.amount), "currency": self.currency}

    def _same(self, other: object) -> Money:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatch(f"cannot combine {self} with {other}: currencies differ",
                                   errors={"currency": [f"{self.currency} ≠ {other.currency}"]})
        return other

    def __add__(self, other: Money) -> Money:
        return Money(self.fen + self._same(other).fen, self.currency)

    def __sub__(self, other: Money) -> Money:
        return Money(self.fen - self._same(other).fen, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.fen, self.currency)

    def __mul__(self, factor: int) -> Money:
        if isinstance(factor, bool) or not isinstance(factor, int):
            raise InexactAmount(f"{self} × {factor!r} may leave a fraction of a fen; use times(…, rounding=…)",
                                errors={"factor": ["not an int"]})
        return Money(self.fen * factor, self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        return self.fen < self._same(other).fen

    def __le__(self, other: Money) -> bool:
        return self.fen <= self._same(other).fen

    def __gt__(self, other: Money) -> bool:
        return self.fen > self._same(other).fen

    def __ge__(self, other: Money) -> bool:
        return self.fen >= self._same(other).fen

    def times(self, factor: Number, *, rounding: Rounding) -> Money:
        """Return this amount × ``factor``, rounded to the fen as ``rounding`` says (it must be named)."""
        return Money(round_fraction(self.fen * exact_fraction(factor, "factor"), Rounding(rounding)), self.currency)

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


def total(amounts: Sequence[Money], currency: str = DEFAULT_CURRENCY) -> Money:
    """Return the sum of ``amounts`` (all in one currency); the sum of nothing is zero in ``currency``."""
    result = Money.zero(amounts[0].currency if amounts else currency)
    for amount in amounts:
        result = result + amount
    return result


def allocate(amount: Money, weights: Sequence[Number]) -> tuple[Money, ...]:
    """Split ``amount`` in proportion to ``weights`` so the shares sum to it to the fen (largest remainder).

    Each share first gets the whole fen of its exact quota; the fen left over go one each to the largest
    remainders, ties to the earlier position. Weights are non-negative with a positive sum.
    """
    exact = [exact_fraction(weight, f"weights[{index}]") for index, weight in enumerate(weights)]
    if not exact or any(weight < 0 for weight in exact) or sum(exact) == 0:
        raise InexactAmount("weights must be non-negative with a positive sum", errors={"weights": [str(weights)]})
    sign, fen = (-1 if amount.fen < 0 else 1), abs(amount.fen)
    whole_sum = sum(exact)
    quotas = [fen * weight / whole_sum for weight in exact]
    shares = [quota.numerator // quota.denominator for quota in quotas]
    left = fen - sum(shares)
    order = sorted(range(len(quotas)), key=lambda i: (-(quotas[i] - shares[i]), i))
    for index in order[:left]:
        shares[index] += 1
    return tuple(Money(sign * share, amount.currency) for share in shares)


def allocate_by(amount: Money, weights: Mapping[str, Number]) -> dict[str, Money]:
    """Split ``amount`` over the keys of ``weights`` (largest remainder, ties to the smaller key)."""
    keys = sorted(weights)
    return dict(zip(keys, allocate(amount, [weights[key] for key in keys])))
