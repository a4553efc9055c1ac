"""A period's statement over 1,000,000 usage records against a bare pandas group-by of the same records.

The records: 400,000 jobs over 1 to 4 providers each (about a million records), 1,000 consumers, 200 providers,
5,000 grants, each grant under one of 24 price terms (split by rows, equally or by contribution score) and one
purpose (a fifth of them public welfare or public governance, so free); 3 % of the records are failed or refused.

pdx arm: ``settlement.statement.issue_statement`` — checks the columns, refuses duplicates and jobs billed before,
checks that each job's records agree, applies the refund rule, prices each job from its summed rows and ε, takes
the operator's fee, splits each pool exactly to the fen by the agreed rule, charges the flat period fees, sums
per consumer and provider, and checks Σ charges = Σ payouts + fee.

Baseline, same run, same frame: what a bare pandas statement would do — look up each record's per-row price,
compute its amount in fen, and group-by-sum it per consumer and per provider. It applies none of the rules. The
issue's target: pdx / pandas ≤ 3.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.harness import Comparison, Report, Target, interleave, median, round_ratios, timed
from settlement.money import Money
from settlement.pricing import FeeRate, PriceTerms, Purpose
from settlement.sharing import SplitRule
from settlement.statement import issue_statement

SEED = 2026
TARGET = Target("<=", 3.0, "issue 13: a period's statement vs a pandas group-by")


def price_terms() -> dict[str, PriceTerms]:
    """Return 24 price terms: per job, per 1,000 rows, per ε, some with a flat period fee; every split rule."""
    rng = np.random.default_rng(SEED)
    terms = {}
    for number in range(24):
        terms[f"trm_{number:02d}"] = PriceTerms(
            per_job=Money(int(rng.integers(0, 5000))), per_rows=Money(int(rng.integers(1, 500))), rows_unit=1000,
            per_epsilon=Money(int(rng.integers(0, 10_000))),
            per_period=Money(int(rng.integers(1, 50_000)) if number % 4 == 0 else 0),
            split=tuple(SplitRule)[number % 3])
    return terms


def records(jobs: int, terms: dict[str, PriceTerms]) -> pd.DataFrame:
    """Return about 2.5 × ``jobs`` usage records, one per job per provider."""
    rng = np.random.default_rng(SEED)
    grants = 5000
    grant_consumer = rng.integers(0, 1000, grants)
    grant_terms = rng.integers(0, len(terms), grants)
    purposes = np.array([p.value for p in Purpose], dtype=object)
    grant_purpose = rng.choice([0, 1, 2, 2, 2, 2, 2, 2, 2, 2], grants)  # a fifth free
    width = rng.integers(1, 5, jobs)
    job = np.repeat(np.arange(jobs), width)
    first_provider = rng.integers(0, 200, jobs)
    provider = (np.repeat(first_provider, width) + (np.arange(len(job)) - np.repeat(np.cumsum(width) - width,
                                                                                     width)) * 7) % 200
    grant = np.repeat(rng.integers(0, grants, jobs), width)
    count = len(job)
    status = np.where(rng.random(count) < 0.03, np.where(rng.random(count) < 0.5, "failed", "refused"), "completed")
    refs = np.array(list(terms), dtype=object)
    return pd.DataFrame({
        "job": np.char.add("job_", job.astype(str)).astype(object),
        "consumer": np.char.add("prt_c", grant_consumer[grant].astype(str)).astype(object),
        "provider": np.char.add("prt_p", provider.astype(str)).astype(object),
        "grant": np.char.add("grt_", grant.astype(str)).astype(object),
        "purpose": purposes[grant_purpose[grant]],
        "terms": refs[grant_terms[grant]],
        "status": status.astype(object),
        "rows": rng.integers(0, 200_000, count),
        "epsilon_micro": rng.integers(0, 2_000_000, count),
        "score": rng.integers(0, 1_000_000, count),
    })


def bare_pandas(frame: pd.DataFrame, per_row_fen: pd.Series) -> tuple[pd.Series, pd.Series]:
    """The baseline: each record's amount from its per-row price, summed per consumer and per provider."""
    amount = frame["rows"] * frame["terms"].map(per_row_fen) // 1000
    return amount.groupby(frame["consumer"]).sum(), amount.groupby(frame["provider"]).sum()


def run(quick: bool = False, profile: bool = False) -> Report:
    """Run the benchmark and return its report."""
    jobs = 40_000 if quick else 400_000
    rounds = 3 if quick else 7
    terms = price_terms()
    frame = records(jobs, terms)
    fee_rate = FeeRate.of("0.05")
    per_row_fen = pd.Series({ref: t.per_rows.fen for ref, t in terms.items()})
    report = Report("settlement-statement", f"a period's statement over {len(frame):,} usage records",
                    {"records": len(frame), "jobs": jobs, "rounds": rounds, "seed": SEED})
    statement = issue_statement(frame, terms=terms, fee_rate=fee_rate, period="bench")
    samples = interleave({
        "pdx": lambda: timed(lambda: issue_statement(frame, terms=terms, fee_rate=fee_rate, period="bench")),
        "pandas": lambda: timed(lambda: bare_pandas(frame, per_row_fen)),
    }, rounds=rounds)
    ratios = round_ratios(samples["pdx"], samples["pandas"])
    report.comparisons.append(Comparison(
        "issue_statement vs pandas group-by", "ms", median(samples["pdx"]) * 1000,
        median(samples["pandas"]) * 1000, "bare pandas group-by (no rules)", median(ratios), TARGET,
        extra={"ratio_min": min(ratios), "ratio_max": max(ratios),
               "records_per_second": len(frame) / median(samples["pdx"])}))
    report.notes.append(f"{statement.billed_jobs:,} jobs billed, {len(statement.unbilled):,} unbilled; "
                        f"Σ charges {statement.total_charges} = Σ payouts {statement.total_payouts} + fee "
                        f"{statement.operator_fee}")
    report.notes.append(f"per-round ratios {', '.join(f'{r:.2f}' for r in ratios)}")
    if profile:
        from bench.harness import profile_call

        report.profile = profile_call(lambda: issue_statement(frame, terms=terms, fee_rate=fee_rate, period="b"),
                                      len(frame), "record", lambda file, function: True)
    return report
