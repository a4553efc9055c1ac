"""Money is exact: whole fen, an explicit currency, rounding only where named, allocations that sum to the fen."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settlement.errors import CurrencyMismatch, InexactAmount
from settlement.money import Money, Rounding, allocate, allocate_by, round_fraction, total


def test_an_amount_is_read_exactly_in_fen():
    assert Money.of("12.34") == Money(1234, "CNY")
    assert Money.of(Decimal("0.10"), "USD") == Money(10, "USD")
    assert str(Money(-5)) == "-0.05 CNY"
    assert Money(1234).to_json() == {"amount": "12.34", "currency": "CNY"}


@pytest.mark.parametrize("amount", ["0.001", "1.005", Decimal("3.14159")])
def test_an_amount_finer_than_a_fen_is_refused(amount):
    with pytest.raises(InexactAmount, match="whole number of fen"):
        Money.of(amount)


def test_floats_and_fractional_fen_are_refused():
    with pytest.raises(InexactAmount, match="float"):
        Money.of(0.1)
    with pytest.raises(InexactAmount):
        Money(1.5)
    with pytest.raises(InexactAmount, match="rounding"):
        Money(10) * Fraction(1, 3)


def test_currencies_never_mix():
    with pytest.raises(CurrencyMismatch, match="currencies differ"):
        Money(1, "CNY") + Money(1, "USD")
    with pytest.raises(CurrencyMismatch):
        Money(1, "yuan")


def test_times_rounds_only_as_named():
    third = Money(100).times(Fraction(1, 3), rounding=Rounding.HALF_UP)
    assert third == Money(33)
    assert Money(5).times(Decimal("0.5"), rounding=Rounding.HALF_UP) == Money(3)
    assert Money(5).times(Decimal("0.5"), rounding=Rounding.HALF_EVEN) == Money(2)
    assert Money(5).times(Decimal("0.5"), rounding=Rounding.DOWN) == Money(2)
    assert Money(-5).times(Decimal("0.5"), rounding=Rounding.HALF_UP) == Money(-3)


@pytest.mark.parametrize("value, half_up, half_even, down", [
    (Fraction(5, 2), 3, 2, 2), (Fraction(7, 2), 4, 4, 3), (Fraction(-5, 2), -3, -2, -2), (Fraction(9, 4), 2, 2, 2),
])
def test_round_fraction_follows_each_rule(value, half_up, half_even, down):
    assert round_fraction(value, Rounding.HALF_UP) == half_up
    assert round_fraction(value, Rounding.HALF_EVEN) == half_even
    assert round_fraction(value, Rounding.DOWN) == down


def test_largest_remainder_gives_the_leftover_fen_to_the_largest_remainders():
    assert allocate(Money(100), [1, 1, 1]) == (Money(34), Money(33), Money(33))
    assert allocate(Money(10), [3, 3, 4]) == (Money(3), Money(3), Money(4))
    assert allocate(Money(7), [0, 1]) == (Money(0), Money(7))
    assert allocate(Money(-100), [1, 1, 1]) == (Money(-34), Money(-33), Money(-33))


def test_allocate_by_breaks_ties_by_key():
    assert allocate_by(Money(1), {"prt_b": 1, "prt_a": 1}) == {"prt_a": Money(1), "prt_b": Money(0)}


@pytest.mark.parametrize("weights", [[], [0, 0], [1, -1]])
def test_weights_must_be_non_negative_with_a_positive_sum(weights):
    with pytest.raises(InexactAmount, match="weights"):
        allocate(Money(10), weights)


def test_total_sums_in_one_currency():
    assert total([Money(1), Money(2)]) == Money(3)
    assert total([], "USD") == Money(0, "USD")


@given(st.integers(-10**12, 10**12), st.lists(st.integers(0, 10**9), min_size=1, max_size=30).filter(any))
def test_allocated_shares_always_sum_to_the_amount(fen, weights):
    shares = allocate(Money(fen), weights)
    assert sum(share.fen for share in shares) == fen
    for share, weight in zip(shares, weights):
        quota = Fraction(abs(fen) * weight, sum(weights))
        assert abs(abs(share.fen) - quota) < 1  # every share is within a fen of its exact quota


@given(st.integers(0, 10**6), st.lists(st.integers(1, 100), min_size=2, max_size=10))
def test_allocation_is_deterministic_and_order_preserving_for_equal_weights(fen, weights):
    assert allocate(Money(fen), weights) == allocate(Money(fen), list(weights))
    equal = allocate(Money(fen), [1] * len(weights))
    assert [s.fen for s in equal] == sorted((s.fen for s in equal), reverse=True)
