"""Prices follow the national rule: 公益 is free, industry pays under the ceiling, the operator under its cap."""

from __future__ import annotations

from decimal import Decimal

import pytest

from settlement.errors import InexactAmount, InvalidRecords, PriceRefused, RevenueCapExceeded
from settlement.money import Money
from settlement.pricing import (
    FeeRate,
    Metered,
    PriceTerms,
    Purpose,
    RevenueAllowance,
    charge_job,
    check_ceiling,
    offer_flags,
)
from settlement.sharing import SplitRule, split_pool, split_weights

TERMS = PriceTerms(per_job=Money.of("10.00"), per_rows=Money.of("2.00"), rows_unit=1000,
                   per_epsilon=Money.of("50.00"), per_period=Money.of("300.00"))


def test_an_industry_job_pays_each_line_from_the_metered_usage():
    charge = charge_job(TERMS, [Metered(rows=1500, epsilon=Decimal("0.5")), Metered(rows=250)], Purpose.INDUSTRY)
    assert [(line.item, line.amount) for line in charge.lines] == [
        ("job", Money.of("10.00")), ("rows", Money.of("3.50")), ("epsilon", Money.of("25.00"))]
    assert charge.total == Money.of("38.50")


@pytest.mark.parametrize("purpose", [Purpose.PUBLIC_GOVERNANCE, Purpose.PUBLIC_WELFARE, "public-welfare"])
def test_public_governance_and_welfare_use_is_free(purpose):
    charge = charge_job(TERMS, [Metered(rows=10**6, epsilon=Decimal(3))], purpose)
    assert charge.total == Money.zero() and charge.lines == () and "free" in charge.reason


def test_each_line_rounds_half_up_to_the_fen_and_the_total_is_their_sum():
    terms = PriceTerms(per_rows=Money(1), rows_unit=1000, per_epsilon=Money(1))
    charge = charge_job(terms, [Metered(rows=500, epsilon=Decimal("0.499999"))], "industry")
    assert [line.amount.fen for line in charge.lines] == [0, 1, 0]
    assert charge.total == Money(1)


def test_metered_usage_is_exact_and_non_negative():
    with pytest.raises(InexactAmount, match="rows"):
        Metered(rows=-1)
    with pytest.raises(InexactAmount, match="10⁻6"):
        Metered(rows=1, epsilon=Decimal("0.0000001"))
    with pytest.raises(InexactAmount, match="float"):
        Metered(rows=1, epsilon=0.1)
    assert Metered(rows=1, epsilon=Decimal("1.25")).epsilon_micro == 1_250_000


def test_price_terms_refuse_negative_prices_mixed_currencies_and_a_zero_unit():
    with pytest.raises(PriceRefused, match="per_job is negative"):
        PriceTerms(per_job=Money(-1))
    with pytest.raises(PriceRefused, match="mix currencies"):
        PriceTerms(per_job=Money(1, "USD"))
    with pytest.raises(PriceRefused, match="rows_unit"):
        PriceTerms(rows_unit=0)


def test_a_price_above_the_government_guided_ceiling_is_refused_naming_the_component_and_product():
    ceiling = PriceTerms(per_job=Money.of("20.00"), per_rows=Money.of("20.00"), rows_unit=10_000,
                         per_epsilon=Money.of("50.00"), per_period=Money.of("500.00"))
    check_ceiling(TERMS, ceiling, "ast_traffic")  # 2.00 per 1,000 rows = 20.00 per 10,000: at the ceiling
    with_rows_over = PriceTerms(per_rows=Money.of("2.01"), rows_unit=1000)
    with pytest.raises(PriceRefused, match=r"per_rows 2.01 CNY per 1,000 rows is above .*政府指导价.* ast_traffic") \
            as refused:
        check_ceiling(with_rows_over, ceiling, "ast_traffic")
    assert refused.value.errors == {"per_rows": ["above the government-guided ceiling"]}
    usd = PriceTerms(*(Money(1, "USD") for _ in range(2)), 1000, *(Money(1, "USD") for _ in range(2)))
    with pytest.raises(PriceRefused, match="ceiling for ast_traffic is in CNY"):
        check_ceiling(usd, ceiling, "ast_traffic")


def test_a_counter_offer_below_the_asking_price_is_flagged_per_component():
    requested = PriceTerms(per_job=Money.of("10.00"), per_rows=Money.of("15.00"), rows_unit=10_000,
                           per_epsilon=Money.of("60.00"), per_period=Money.of("299.99"))
    flags = offer_flags(TERMS, requested)
    assert [flag.component for flag in flags] == ["per_rows", "per_period"]
    assert "below the asking price 2.00 CNY" in str(flags[0])
    assert offer_flags(TERMS, TERMS) == ()


def test_the_operator_fee_is_a_ppm_rate_rounded_half_up():
    rate = FeeRate.of("0.05")
    assert rate.ppm == 50_000
    assert rate.fee(Money(1234)) == Money(62)  # 61.7 fen
    assert rate.fee(Money(10)) == Money(1)  # 0.5 fen rounds up
    with pytest.raises(PriceRefused, match="part per million"):
        FeeRate.of("0.0000001")
    with pytest.raises(PriceRefused, match="fee rate"):
        FeeRate(2_000_000)


def test_the_operator_revenue_is_held_to_its_maximum_allowed_revenue():
    allowance = RevenueAllowance("2026-11", cap=Money.of("1000.00"), earned=Money.of("990.00"))
    assert allowance.admit(Money.of("10.00")).earned == Money.of("1000.00")
    assert allowance.excess(Money.of("10.01")) == Money(1)
    with pytest.raises(RevenueCapExceeded, match="for 2026-11 .* 0.01 CNY above its maximum allowed revenue .最高准许收入."):
        allowance.admit(Money.of("10.01"))
    assert allowance.headroom == Money.of("10.00")


def test_a_joint_pool_splits_by_rows_equally_or_by_contribution():
    rows = {"prt_b": 300, "prt_a": 100, "prt_c": 0}
    assert split_pool(Money(100), SplitRule.ROWS, rows) == {"prt_a": Money(25), "prt_b": Money(75),
                                                             "prt_c": Money(0)}
    assert split_pool(Money(100), SplitRule.EQUAL, rows) == {"prt_a": Money(34), "prt_b": Money(33),
                                                              "prt_c": Money(33)}
    scores = {"prt_a": 1, "prt_b": 0, "prt_c": 3}
    assert split_pool(Money(100), "contribution", rows, scores)["prt_c"] == Money(75)


def test_a_split_with_no_weight_anywhere_falls_back_to_equal():
    assert split_weights("rows", {"prt_a": 0, "prt_b": 0}) == {"prt_a": 1, "prt_b": 1}


def test_a_contribution_split_needs_a_score_for_every_provider():
    with pytest.raises(InvalidRecords, match="score for every provider"):
        split_pool(Money(1), "contribution", {"prt_a": 1, "prt_b": 1}, {"prt_a": 1})
