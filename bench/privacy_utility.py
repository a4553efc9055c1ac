"""privacy-utility: what differential privacy costs in accuracy, at the privacy issue's bars.

Statistics (``privacy.release``, the mechanism the exchange applies): 1,000 trials each of
  * a DP count at ε = 1 (a counts-only plan, the whole ε on the count): share within ±4 of the truth (bar ≥ 95 %);
  * a DP mean of 50,000 rows on bounds [20, 80] at ε = 1 (count, sum and sum of squares released, ε/3 each):
    share within 0.1 % of U − L of the true mean (bar ≥ 95 %), and the share of trials whose reported 95 %
    interval covers the true mean (bar 94–96 %);
  * the count's reported interval: the share covering the truth against the coverage it states.
Each trial draws the whole noise vector from OpenDP exactly as the exchange does and finishes it as the SDK does;
the noiseless sums are computed once (the encrypted path adds them exactly: ``privacy.fixedpoint``). The baseline is
the exact answer (share 1.0).

Federated learning (``bench.privacy_utility_fl``): DP logistic regression over 3 nodes against the same training
without DP, test accuracy at ε = 1 and ε = 3 (δ = 1e-5).
"""

from __future__ import annotations

import numpy as np

from bench.harness import Comparison, Report, Target
from privacy import release
from privacy.aggregation import StatisticsPlan, layout, partials

SEED = 20261202
LOW, HIGH = 20.0, 80.0
MEAN_ROWS = 50_000


def _share(hits: int, trials: int) -> float:
    return float(hits) / trials


def statistics_rows(trials: int) -> list[Comparison]:
    """Return the statistics figures over ``trials`` trials each."""
    count_plan = StatisticsPlan()
    count_release = release.calibrate(count_plan, {}, 1.0)
    truth = 4_321
    count_hits = 0
    for _ in range(trials):
        noised = np.array([truth]) + count_release.noise(1)
        count_hits += abs(release.finish(count_plan, noised, count_release).statistics.count - truth) <= 4

    rng = np.random.default_rng(SEED)
    x = np.clip(rng.normal(61.0, 9.0, MEAN_ROWS), LOW, HIGH)
    plan = StatisticsPlan(columns=("x",), shifts={"x": (LOW + HIGH) / 2})
    calibration = release.calibrate(plan, {"x": [LOW, HIGH]}, 1.0)
    exact = partials(plan, {"x": x}, clip={"x": (LOW, HIGH)})
    close = covered = count_covered = 0
    stated = 0.0
    for _ in range(trials):
        result = release.finish(plan, exact + calibration.noise(layout(plan).size), calibration)
        intervals = {i.statistic: i for i in result.intervals}
        mean = intervals["mean[x]"]
        close += abs(result.statistics.columns["x"].mean - x.mean()) <= 1e-3 * (HIGH - LOW)
        covered += mean.low <= x.mean() <= mean.high
        count_covered += intervals["count"].low <= MEAN_ROWS <= intervals["count"].high
        stated = intervals["count"].coverage
    coverage = _share(covered, trials)
    return [
        Comparison("DP count within ±4 of the truth, ε=1", "share of trials", _share(count_hits, trials), 1.0,
                   "exact count", _share(count_hits, trials), Target(">=", 0.95)),
        Comparison(f"DP mean of {MEAN_ROWS:,} rows within 0.1 % of U−L, ε=1", "share of trials",
                   _share(close, trials), 1.0, "exact mean", _share(close, trials), Target(">=", 0.95)),
        Comparison("reported 95 % interval of the mean covers the truth (≥ 0.94)", "share of trials", coverage, 1.0,
                   "always", coverage, Target(">=", 0.94)),
        Comparison("reported 95 % interval of the mean covers the truth (≤ 0.96)", "share of trials", coverage, 1.0,
                   "always", coverage, Target("<=", 0.96)),
        Comparison(f"count interval coverage against the {stated:.3f} it states", "share of trials",
                   _share(count_covered, trials), float(stated), "stated coverage",
                   _share(count_covered, trials) / float(stated),
                   Target(">=", 0.98)),
    ]


def federated_rows(quick: bool) -> list[Comparison]:
    """Return the federated figures from ``bench.privacy_utility_fl``."""
    from bench import privacy_utility_fl

    rows = []
    for row in privacy_utility_fl.rows(quick):
        # "at most P points below" the baseline accuracy, as a ratio: DP / baseline ≥ (baseline − P/100) / baseline
        points = float(row["target"].removeprefix("at most ").split(" ")[0]) / 100
        target = Target(">=", (float(row["baseline"]) - points) / float(row["baseline"]), row["target"])
        rows.append(Comparison(row["figure"], "test accuracy", float(row["value"]), float(row["baseline"]),
                               "the same training without DP", float(row["ratio"]), target))
    return rows


def run(quick: bool = False, profile: bool = False) -> Report:
    """Run the statistics trials and the federated trainings; return the report."""
    trials = 200 if quick else 1000
    report = Report("privacy-utility", "accuracy under differential privacy against the exact answer",
                    {"trials": trials, "seed": SEED, "mean_rows": MEAN_ROWS, "bounds": [LOW, HIGH]})
    report.comparisons += statistics_rows(trials)
    report.comparisons += federated_rows(quick)
    report.notes += [
        "statistics: noise drawn by OpenDP (discrete Laplace for counts, Laplace for sums) with scales calibrated by "
        "OpenDP's privacy maps; ε split equally over the released statistics (privacy.release)",
        "the count's interval is the smallest integer interval with coverage ≥ 95 %: discrete noise cannot hit 95 % "
        "exactly, so it states the coverage it has (e.g. 97.3 % at scale 1)",
    ]
    return report
