"""A period's statement bills each completed job once, from its metering, and balances to the fen."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from settlement.errors import CurrencyMismatch, DuplicateBilling, InvalidRecords
from settlement.money import Money, allocate_by
from settlement.pricing import FREE_PURPOSES, FeeRate, Metered, PriceTerms, Purpose, RevenueAllowance, charge_job
from settlement.sharing import SplitRule, split_pool
from settlement.statement import RecordStatus, UsageRecord, issue_statement, records_frame

FEE = FeeRate.of("0.05")
TERMS = {
    "rows": PriceTerms(per_job=Money.of("10.00"), per_rows=Money.of("2.00"), rows_unit=1000,
                       per_epsilon=Money.of("50.00")),
    "equal": PriceTerms(per_job=Money.of("9.99"), split=SplitRule.EQUAL),
    "score": PriceTerms(per_rows=Money.of("0.07"), rows_unit=7, split=SplitRule.CONTRIBUTION),
    "monthly": PriceTerms(per_job=Money.of("1.00"), per_period=Money.of("100.00"), split=SplitRule.EQUAL),
}


def record(job, provider, rows=1000, *, consumer="prt_bank", grant="grt_1", purpose=Purpose.INDUSTRY, terms="rows",
           status=RecordStatus.COMPLETED, epsilon="0", score=0):
    return UsageRecord(job, consumer, provider, grant, purpose, terms, Metered(rows=rows, epsilon=Decimal(epsilon)),
                       status, score)


def issue(records, **options):
    return issue_statement(records_frame(records), terms=TERMS, fee_rate=FEE, period="2026-11", **options)


def test_a_joint_job_charges_its_consumer_pays_its_providers_by_rows_and_keeps_the_fee():
    statement = issue([record("job_1", "prt_b", 3000, epsilon="0.5"), record("job_1", "prt_a", 1000)])
    assert statement.charges == {"prt_bank": Money.of("43.00")}  # 10 + 4 × 2.00 + 0.5 × 50
    assert statement.operator_fee == Money.of("2.15")
    assert statement.payouts == {"prt_a": Money.of("10.21"), "prt_b": Money.of("30.64")}  # 40.85 split 1:3
    assert statement.total_charges == statement.total_payouts + statement.operator_fee
    assert statement.billed_jobs == 1 and statement.unbilled == {}


def test_a_failed_or_refused_record_leaves_the_whole_job_unbilled():
    statement = issue([record("job_1", "prt_a"), record("job_1", "prt_b", status="failed"),
                       record("job_2", "prt_a", status=RecordStatus.REFUSED), record("job_3", "prt_a")])
    assert statement.charges == {"prt_bank": Money.of("12.00")}
    assert set(statement.unbilled) == {"job_1", "job_2"}
    assert statement.unbilled["job_1"].startswith("failed record from provider prt_b")
    assert statement.payouts["prt_b"] == Money.zero() and statement.billed_jobs == 1


def test_public_welfare_jobs_are_free_and_earn_nothing():
    statement = issue([record("job_1", "prt_a", 10**6, purpose=Purpose.PUBLIC_WELFARE, grant="grt_w")])
    assert statement.total_charges == Money.zero() == statement.operator_fee
    assert statement.billed_jobs == 1


def test_a_second_record_for_the_same_job_and_provider_is_refused_naming_the_job():
    with pytest.raises(DuplicateBilling, match="job job_7 has two usage records for provider prt_a"):
        issue([record("job_7", "prt_a"), record("job_6", "prt_a"), record("job_7", "prt_a", 5)])


def test_a_job_billed_in_an_earlier_statement_is_refused():
    with pytest.raises(DuplicateBilling, match="job job_2 was billed in an earlier statement"):
        issue([record("job_1", "prt_a"), record("job_2", "prt_a")], billed_before={"job_2", "job_0"})


@pytest.mark.parametrize("change, message", [
    ({"consumer": "prt_other"}, "job job_1's usage records disagree on the consumer"),
    ({"terms": "equal"}, "disagree on the terms"),
    ({"purpose": "commerce"}, "disagree on the purpose"),
])
def test_the_records_of_one_job_must_agree_on_who_pays_and_how(change, message):
    with pytest.raises(InvalidRecords, match=message):
        issue([record("job_1", "prt_a"), record("job_1", "prt_b", **change)])


def test_unknown_terms_purposes_statuses_and_negative_figures_are_refused():
    with pytest.raises(InvalidRecords, match="unknown price terms"):
        issue([record("job_1", "prt_a", terms="nope")])
    with pytest.raises(InvalidRecords, match="unknown purpose"):
        issue([record("job_1", "prt_a", purpose="commerce")])
    with pytest.raises(InvalidRecords, match="unknown status"):
        issue([record("job_1", "prt_a", status="done")])
    frame = records_frame([record("job_1", "prt_a")])
    frame.loc[0, "rows"] = -5
    with pytest.raises(InvalidRecords, match="rows is negative in job job_1"):
        issue_statement(frame, terms=TERMS, fee_rate=FEE, period="p")
    with pytest.raises(InvalidRecords, match="lack the columns"):
        issue_statement(frame.drop(columns="status"), terms=TERMS, fee_rate=FEE, period="p")


def test_one_statement_is_in_one_currency():
    terms = dict(TERMS, usd=PriceTerms(*(Money(1, "USD") for _ in range(2)), 1, *(Money(1, "USD") for _ in range(2))))
    with pytest.raises(CurrencyMismatch, match="one currency"):
        issue_statement(records_frame([record("j1", "p", terms="usd", grant="g2"), record("j2", "p")]), terms=terms,
                        fee_rate=FEE, period="p")


def test_the_flat_period_fee_is_charged_once_per_grant_and_split_equally():
    statement = issue([record("job_1", "prt_a", terms="monthly"), record("job_2", "prt_b", terms="monthly"),
                       record("job_3", "prt_b", terms="monthly")])
    assert statement.total_charges == Money.of("103.00")
    assert statement.period_fees.to_dict("list") == {"grant": ["grt_1", "grt_1"], "consumer": ["prt_bank"] * 2,
                                                     "provider": ["prt_a", "prt_b"], "payout_fen": [4750, 4750]}


def test_the_fees_are_flagged_beyond_the_maximum_allowed_revenue():
    allowance = RevenueAllowance("2026-11", cap=Money.of("2.00"))
    assert issue([record("job_1", "prt_a", 20_000)], allowance=allowance).over_cap == Money.of("0.50")


def test_an_empty_period_is_an_empty_statement():
    statement = issue([])
    assert statement.charges == {} and statement.operator_fee == Money.zero() and statement.billed_jobs == 0


# The same rules, one job at a time with the exact scalar functions: the vectorized statement must agree.
def reference(records):
    jobs = defaultdict(list)
    for r in records:
        jobs[r.job].append(r)
    charges, payouts, fee = defaultdict(int), defaultdict(int), 0
    period = {}
    for job_records in jobs.values():
        first = job_records[0]
        for r in job_records:
            payouts[r.provider] += 0
            charges[r.consumer] += 0
        if any(r.status != RecordStatus.COMPLETED for r in job_records):
            continue
        terms = TERMS[first.terms]
        charge = charge_job(terms, [r.metered for r in job_records], first.purpose).total
        job_fee = FEE.fee(charge)
        shares = split_pool(charge - job_fee, terms.split, {r.provider: r.metered.rows for r in job_records},
                            {r.provider: r.score for r in job_records})
        charges[first.consumer] += charge.fen
        fee += job_fee.fen
        for provider, share in shares.items():
            payouts[provider] += share.fen
        if Purpose(first.purpose) not in FREE_PURPOSES and terms.per_period.fen:
            period.setdefault(first.grant, (first.consumer, terms.per_period, set()))[2].update(
                r.provider for r in job_records)
    for consumer, flat, providers in period.values():
        flat_fee = FEE.fee(flat)
        charges[consumer] += flat.fen
        fee += flat_fee.fen
        for provider, share in allocate_by(flat - flat_fee, dict.fromkeys(providers, 1)).items():
            payouts[provider] += share.fen
    return dict(charges), dict(payouts), fee


@st.composite
def histories(draw):
    grants = {f"grt_{g}": (f"prt_c{draw(st.integers(0, 2))}", draw(st.sampled_from(sorted(TERMS))),
                           draw(st.sampled_from(list(Purpose)))) for g in range(draw(st.integers(1, 4)))}
    records = []
    for number in range(draw(st.integers(0, 12))):
        grant = draw(st.sampled_from(sorted(grants)))
        consumer, terms, purpose = grants[grant]
        for provider in draw(st.sets(st.sampled_from(["prt_a", "prt_b", "prt_c", "prt_d"]), min_size=1)):
            records.append(record(f"job_{number}", provider, draw(st.integers(0, 10**7)), consumer=consumer,
                                  grant=grant, purpose=purpose, terms=terms,
                                  status=draw(st.sampled_from(["completed"] * 5 + ["failed", "refused"])),
                                  epsilon=str(draw(st.decimals(0, 10, places=6))), score=draw(st.integers(0, 99))))
    return draw(st.permutations(records))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_every_history_balances_to_the_fen_and_agrees_with_the_job_by_job_rules(records):
    statement = issue(records)
    assert statement.total_charges == statement.total_payouts + statement.operator_fee
    charges, payouts, fee = reference(records)
    assert {c: m.fen for c, m in statement.charges.items()} == charges
    assert {p: m.fen for p, m in statement.payouts.items()} == payouts
    assert statement.operator_fee.fen == fee
    failed = {r.job for r in records if r.status != RecordStatus.COMPLETED}
    assert set(statement.unbilled) == failed
    assert statement.billed_jobs == len({r.job for r in records} - failed)
    assert statement.jobs["job"].is_unique  # each job appears, and is billed, once
    assert (statement.jobs.loc[~statement.jobs["billed"], "charge_fen"] == 0).all()


@settings(max_examples=50, deadline=None)
@given(histories(), st.data())
def test_a_history_with_a_repeated_record_is_refused(records, data):
    if not records:
        return
    repeated = data.draw(st.sampled_from(records))
    with pytest.raises(DuplicateBilling, match=f"job {repeated.job} "):
        issue(records + [repeated])


def test_records_frame_reads_every_column_as_a_whole_number():
    frame = records_frame([record("job_1", "prt_a", epsilon="0.25")])
    assert frame.loc[0, "epsilon_micro"] == 250_000 and frame["rows"].dtype == "int64"
    assert isinstance(frame, pd.DataFrame)
