"""A period's statement (pure): each consumer's charges, each provider's payout and the operator's fee.

The input is one usage record per job per provider (``UsageRecord``, or a frame of ``COLUMNS``): job, consumer,
provider, grant, purpose, price terms (a reference into ``terms``), status and the metered quantities from the
node's signed receipt. The rules, the same as ``settlement.pricing.charge_job`` and ``settlement.sharing`` (a test
holds the two to agree on random histories):

- a job is billed at most once: two records of one job for one provider, or a job billed in an earlier statement
  (``billed_before``), are refused naming the job;
- **the refund rule**: a job is billed only if every one of its records is ``completed``; a failed or refused
  record makes the whole job unbilled — no charge, no payout, no fee — and it is listed with its reason;
- a billed job's charge is priced from the summed rows and ε of its records (free for public governance and
  public welfare), the operator's fee is the fee rate of it rounded half up, and the rest (the pool) is split among
  the job's providers by the terms' rule, exactly to the fen;
- a flat fee per period is charged once per grant that has a billed, priced job in the period, and split equally
  among the providers that served those jobs;
- Σ charges = Σ payouts + fee, to the fen (checked; a difference raises ``StatementImbalance``).

Everything is computed vectorized over integer fen (NumPy), so a period of a million records takes under a
second; products that would not fit exactly in 62 bits are refused rather than rounded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Collection, Iterable, Mapping

import numpy as np
import pandas as pd

from settlement.errors import CurrencyMismatch, DuplicateBilling, InvalidRecords, StatementImbalance
from settlement.money import DEFAULT_CURRENCY, Money
from settlement.pricing import FREE_PURPOSES, PPM, FeeRate, Metered, PriceTerms, Purpose, RevenueAllowance
from settlement.sharing import SplitRule

LABELS = ("job", "consumer", "provider", "grant", "purpose", "terms", "status")
QUANTITIES = ("rows", "epsilon_micro", "result_cells", "ciphertext_bytes", "cpu_ms", "wall_ms", "score")
COLUMNS = LABELS + QUANTITIES
REQUIRED = LABELS + ("rows", "epsilon_micro")
EXACT_LIMIT = 2**62
SPLITS = tuple(SplitRule)


class RecordStatus(StrEnum):
    """What became of a provider's part of a job."""

    COMPLETED = "completed"
    FAILED = "failed"
    REFUSED = "refused"


@dataclass(frozen=True)
class UsageRecord:
    """One provider's part of one job, as metered from its node's signed receipt."""

    job: str
    consumer: str
    provider: str
    grant: str
    purpose: Purpose | str
    terms: str
    metered: Metered
    status: RecordStatus | str = RecordStatus.COMPLETED
    score: int = 0  # the provider's contribution weight, for a contribution split


def records_frame(records: Iterable[UsageRecord]) -> pd.DataFrame:
    """Return usage records as the frame ``issue_statement`` reads (``COLUMNS``)."""
    rows = [(r.job, r.consumer, r.provider, r.grant, str(r.purpose), r.terms, str(r.status), r.metered.rows,
             r.metered.epsilon_micro, r.metered.result_cells, r.metered.ciphertext_bytes,
             int(r.metered.cpu_seconds * 1000), int(r.metered.wall_seconds * 1000), r.score) for r in records]
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    return frame.astype({name: "int64" for name in QUANTITIES})


@dataclass(frozen=True, eq=False)
class Statement:
    """What each consumer pays, each provider earns and the operator keeps for a period, with the details."""

    period: str
    currency: str
    charges: Mapping[str, Money]
    payouts: Mapping[str, Money]
    operator_fee: Money
    billed_jobs: int
    unbilled: Mapping[str, str]  # job → why it is not billed (the refund rule)
    over_cap: Money  # how far the fees pass the operator's maximum allowed revenue; zero if they do not
    jobs: pd.DataFrame = field(repr=False)  # per job: job, consumer, grant, billed, charge_fen, fee_fen
    lines: pd.DataFrame = field(repr=False)  # per job and provider: job, provider, payout_fen
    period_fees: pd.DataFrame = field(repr=False)  # per grant and provider: grant, consumer, provider, payout_fen

    @property
    def total_charges(self) -> Money:
        """Return Σ charges."""
        return Money(sum(m.fen for m in self.charges.values()), self.currency)

    @property
    def total_payouts(self) -> Money:
        """Return Σ payouts."""
        return Money(sum(m.fen for m in self.payouts.values()), self.currency)


def _half_up_div(numerator: np.ndarray, denominator: np.ndarray | int) -> np.ndarray:
    """Return numerator / denominator rounded half up, for non-negative integer arrays."""
    return (2 * numerator + denominator) // (2 * np.asarray(denominator, dtype=np.int64))


def _product(a: np.ndarray, b: np.ndarray, what: str) -> np.ndarray:
    """Return a × b exactly, refusing figures whose product would not fit in 62 bits."""
    if a.size and float(a.max()) * float(b.max()) >= EXACT_LIMIT:
        raise InvalidRecords(f"{what} is too large to compute exactly", errors={what: ["beyond 2^62 fen"]})
    return a * b


def _codes(frame: pd.DataFrame, column: str, sort: bool = False) -> tuple[np.ndarray, pd.Index]:
    codes, uniques = pd.factorize(frame[column], sort=sort)
    if len(codes) and codes.min() < 0:
        raise InvalidRecords(f"usage records lack a {column}", errors={column: ["missing value"]})
    return codes, pd.Index(uniques)


def _checked(records: pd.DataFrame) -> pd.DataFrame:
    missing = [name for name in REQUIRED if name not in records.columns]
    if missing:
        raise InvalidRecords(f"usage records lack the columns {missing}", errors={n: ["missing"] for n in missing})
    for name in QUANTITIES:
        if name not in records.columns:
            continue
        values = records[name]
        if values.dtype.kind not in "iu":
            raise InvalidRecords(f"{name} must be whole numbers, found {values.dtype}", errors={name: ["not int"]})
        if len(values) and values.min() < 0:
            job = records["job"].iloc[int(np.argmax(values.to_numpy() < 0))]
            raise InvalidRecords(f"{name} is negative in job {job}", errors={name: ["negative"]})
    return records


def _job_level(codes_s: np.ndarray, starts: np.ndarray, counts: np.ndarray, job_ids: pd.Index,
               job_s: np.ndarray, column: str) -> np.ndarray:
    """Return each job's value of ``column``, refusing a job whose records disagree on it."""
    per_job = codes_s[starts]
    differs = codes_s != np.repeat(per_job, counts)
    if differs.any():
        job = job_ids[job_s[int(np.argmax(differs))]]
        raise InvalidRecords(f"job {job}'s usage records disagree on the {column}", errors={column: [str(job)]})
    return per_job


def _one_per_grant(grant_of_job: np.ndarray, values: np.ndarray, grant_ids: pd.Index, column: str) -> None:
    pairs = np.unique(grant_of_job.astype(np.int64) * (int(values.max(initial=0)) + 1) + values)
    grants = pairs // (int(values.max(initial=0)) + 1)
    repeated = grants[1:][grants[1:] == grants[:-1]]
    if repeated.size:
        raise InvalidRecords(f"grant {grant_ids[int(repeated[0])]} has jobs with different {column}",
                             errors={column: [str(grant_ids[int(repeated[0])])]})


def _ranks(groups: np.ndarray) -> np.ndarray:
    """Return each element's position within its run of equal ``groups`` values (already grouped)."""
    positions = np.arange(len(groups))
    starts = np.r_[True, groups[1:] != groups[:-1]] if len(groups) else np.zeros(0, bool)
    return positions - np.maximum.accumulate(np.where(starts, positions, 0))


def _terms_arrays(terms: Mapping[str, PriceTerms], refs: pd.Index) -> tuple[str, dict[str, np.ndarray]]:
    unknown = [ref for ref in refs if ref not in terms]
    if unknown:
        raise InvalidRecords(f"usage records name unknown price terms {unknown[:3]}", errors={"terms": unknown[:3]})
    chosen = [terms[ref] for ref in refs]
    currencies = {t.currency for t in chosen}
    if len(currencies) > 1:
        raise CurrencyMismatch(f"one statement is in one currency; the terms use {sorted(currencies)}",
                               errors={"currency": sorted(currencies)})
    arrays = {name: np.array([getattr(t, name).fen for t in chosen], dtype=np.int64)
              for name in ("per_job", "per_rows", "per_epsilon", "per_period")}
    arrays["rows_unit"] = np.array([t.rows_unit for t in chosen], dtype=np.int64)
    arrays["split"] = np.array([SPLITS.index(t.split) for t in chosen], dtype=np.int64)
    return (currencies.pop() if currencies else DEFAULT_CURRENCY), arrays


def issue_statement(records: pd.DataFrame, *, terms: Mapping[str, PriceTerms], fee_rate: FeeRate, period: str,
                    billed_before: Collection[str] = frozenset(),
                    allowance: RevenueAllowance | None = None) -> Statement:
    """Compute a period's statement from its usage records (see the module docstring for the rules)."""
    frame = _checked(records)
    count = len(frame)
    job_codes, job_ids = _codes(frame, "job")
    provider_codes, provider_ids = _codes(frame, "provider", sort=True)  # code order = id order: the tie-break
    order = np.lexsort((provider_codes, job_codes))
    job_s, provider_s = job_codes[order], provider_codes[order]
    twice = (job_s[1:] == job_s[:-1]) & (provider_s[1:] == provider_s[:-1])
    if twice.any():
        at = int(np.argmax(twice))
        raise DuplicateBilling(f"job {job_ids[job_s[at]]} has two usage records for provider "
                               f"{provider_ids[provider_s[at]]}; a job is billed at most once",
                               errors={"job": [str(job_ids[job_s[at]])]})
    again = job_ids[job_ids.isin(list(billed_before))] if len(billed_before) else job_ids[:0]
    if len(again):
        raise DuplicateBilling(f"job {again[0]} was billed in an earlier statement; a job is billed at most once",
                               errors={"job": [str(again[0])]})
    starts = np.flatnonzero(np.r_[True, job_s[1:] != job_s[:-1]]) if count else np.zeros(0, np.int64)
    counts = np.diff(np.r_[starts, count])

    level = {}
    uniques = {}
    for column in ("consumer", "grant", "purpose", "terms", "status"):
        codes, uniques[column] = _codes(frame, column)
        if column == "status":
            level["status"] = codes[order]
        else:
            level[column] = _job_level(codes[order], starts, counts, job_ids, job_s, column)
    bad_purpose = [p for p in uniques["purpose"] if p not in set(Purpose)]
    bad_status = [s for s in uniques["status"] if s not in set(RecordStatus)]
    if bad_purpose or bad_status:
        field_name, value = ("purpose", bad_purpose) if bad_purpose else ("status", bad_status)
        raise InvalidRecords(f"unknown {field_name} {value[:3]}", errors={field_name: [str(v) for v in value[:3]]})
    currency, price = _terms_arrays(terms, uniques["terms"])
    if count:
        _one_per_grant(level["grant"], level["consumer"], uniques["grant"], "consumers")
        _one_per_grant(level["grant"], level["terms"], uniques["grant"], "price terms")

    def column(name: str) -> np.ndarray:
        return frame[name].to_numpy(np.int64)[order] if name in frame.columns else np.zeros(count, np.int64)

    rows_s, epsilon_s, score_s = column("rows"), column("epsilon_micro"), column("score")
    completed = np.array([s == RecordStatus.COMPLETED for s in uniques["status"]], dtype=bool)
    failed_s = ~completed[level["status"]] if count else np.zeros(0, bool)
    job_failed = np.logical_or.reduceat(failed_s, starts) if count else np.zeros(0, bool)
    free = np.array([Purpose(p) in FREE_PURPOSES for p in uniques["purpose"]], dtype=bool)
    job_terms = level["terms"]
    priced = ~job_failed & ~free[level["purpose"]] if count else np.zeros(0, bool)

    job_rows = np.add.reduceat(rows_s, starts) if count else np.zeros(0, np.int64)
    job_epsilon = np.add.reduceat(epsilon_s, starts) if count else np.zeros(0, np.int64)
    charge = (price["per_job"][job_terms]
              + _half_up_div(_product(price["per_rows"][job_terms], job_rows, "rows"), price["rows_unit"][job_terms])
              + _half_up_div(_product(price["per_epsilon"][job_terms], job_epsilon, "epsilon"), PPM))
    charge = np.where(priced, charge, 0)
    fee = _half_up_div(_product(charge, np.int64(fee_rate.ppm), "fee"), PPM)
    pool = charge - fee

    split_s = np.repeat(price["split"][job_terms], counts)
    weight = np.where(split_s == SPLITS.index(SplitRule.ROWS), rows_s,
                      np.where(split_s == SPLITS.index(SplitRule.EQUAL), 1, score_s))
    job_weight = np.add.reduceat(weight, starts) if count else np.zeros(0, np.int64)
    weight = np.where(np.repeat(job_weight == 0, counts), 1, weight)  # no weight anywhere: equal
    job_weight = np.where(job_weight == 0, counts, job_weight)
    quota = _product(np.repeat(pool, counts), weight, "split")
    payout = quota // np.repeat(job_weight, counts)
    remainder = quota % np.repeat(job_weight, counts)
    left = pool - (np.add.reduceat(payout, starts) if count else 0)
    waiting = np.flatnonzero(np.repeat(left > 0, counts))
    if waiting.size:  # the leftover fen, one each to the largest remainders, ties to the smaller provider id
        ranked = waiting[np.lexsort((provider_s[waiting], -remainder[waiting], job_s[waiting]))]
        payout[ranked[_ranks(job_s[ranked]) < left[job_s[ranked]]]] += 1

    period_charge, period_fee, period_lines = _period_fees(price, job_terms, priced, level, job_s, provider_s,
                                                           counts, fee_rate)
    charges = np.zeros(len(uniques["consumer"]), np.int64)
    np.add.at(charges, level["consumer"], charge)
    payouts = np.zeros(len(provider_ids), np.int64)
    np.add.at(payouts, provider_s, payout)
    grant_consumer = np.zeros(len(uniques["grant"]), np.int64)
    grant_consumer[level["grant"]] = level["consumer"]
    np.add.at(charges, grant_consumer[period_charge.index.to_numpy()], period_charge.to_numpy())
    np.add.at(payouts, period_lines["provider_code"].to_numpy(), period_lines["payout_fen"].to_numpy())
    operator_fee = int(fee.sum()) + int(period_fee.sum())
    if int(charges.sum()) != int(payouts.sum()) + operator_fee:
        raise StatementImbalance(f"Σ charges {int(charges.sum())} fen ≠ Σ payouts {int(payouts.sum())} fen + fee "
                                 f"{operator_fee} fen for {period}")

    unbilled = _unbilled(job_failed, failed_s, job_s, provider_s, level["status"], job_ids, provider_ids,
                         uniques["status"])
    fee_money = Money(operator_fee, currency)
    jobs = pd.DataFrame({"job": job_ids, "consumer": uniques["consumer"].take(level["consumer"]),
                         "grant": uniques["grant"].take(level["grant"]), "billed": ~job_failed,
                         "charge_fen": charge, "fee_fen": fee})
    lines = pd.DataFrame({"job": pd.Categorical.from_codes(job_s, categories=job_ids),
                          "provider": pd.Categorical.from_codes(provider_s, categories=provider_ids),
                          "payout_fen": payout})
    period_fees = pd.DataFrame({"grant": uniques["grant"].take(period_lines["grant_code"]),
                                "consumer": uniques["consumer"].take(grant_consumer[period_lines["grant_code"]]),
                                "provider": provider_ids.take(period_lines["provider_code"]),
                                "payout_fen": period_lines["payout_fen"].to_numpy()})
    return Statement(
        period, currency,
        {str(c): Money(int(f), currency) for c, f in zip(uniques["consumer"], charges)},
        {str(p): Money(int(f), currency) for p, f in zip(provider_ids, payouts)},
        fee_money, int((~job_failed).sum()), unbilled,
        allowance.excess(fee_money) if allowance else Money.zero(currency), jobs, lines, period_fees)


def _period_fees(price, job_terms, priced, level, job_s, provider_s, counts, fee_rate):
    """Charge each grant's flat fee once, for grants with a billed, priced job; split it equally."""
    grant_fee = price["per_period"][job_terms]
    due = priced & (grant_fee > 0)
    records = np.repeat(due, counts)
    width = int(provider_s.max(initial=0)) + 1
    pairs = np.unique(level["grant"][job_s[records]].astype(np.int64) * width + provider_s[records])
    grant_code, provider_code = pairs // width, pairs % width
    per_grant = pd.Series(grant_fee[due], index=level["grant"][due]).groupby(level=0).first()
    fee = pd.Series(_half_up_div(per_grant.to_numpy() * fee_rate.ppm, PPM), index=per_grant.index)
    pool = per_grant - fee
    providers = pd.Series(1, index=grant_code).groupby(level=0).sum()
    base = (pool // providers).reindex(grant_code).to_numpy()
    extra = (pool % providers).reindex(grant_code).to_numpy()
    payout = base + (_ranks(grant_code) < extra)
    lines = pd.DataFrame({"grant_code": grant_code, "provider_code": provider_code,
                          "payout_fen": payout.astype(np.int64)})
    return per_grant, fee, lines


def _unbilled(job_failed, failed_s, job_s, provider_s, status_s, job_ids, provider_ids, statuses) -> dict[str, str]:
    """Name each unbilled job and the first record that made it so."""
    if not job_failed.any():
        return {}
    bad = np.flatnonzero(failed_s)
    jobs, first = np.unique(job_s[bad], return_index=True)
    names = job_ids.take(jobs).tolist()
    why = [str(s) for s in statuses]
    status = status_s[bad[first]].tolist()
    provider = provider_ids.take(provider_s[bad[first]]).tolist()
    return {str(job): f"{why[s]} record from provider {p}: not billed, nothing paid (refund rule)"
            for job, s, p in zip(names, status, provider)}
