"""A differentially private release of HE statistics: what each statistic costs, its noise, and how to read it.

Under a grant with a privacy budget, a statistics job spends its ε on the statistics its plan releases, split
equally; each gets Laplace noise calibrated by OpenDP to its own L1 sensitivity to adding or removing one row:

    count                          1        (discrete Laplace)
    sum[c]      Σ(x − K)           a = max(|low − K|, |high − K|), values clipped to the column's bounds
    sumsq[c]    Σ(x − K)²          a²
    histogram[c]  every bin        1        (a row lies in one bin; discrete)
    group_count   every group      1        (a row lies in one group; discrete)
    group_sum[c]  every group      a

Counts never inherit value bounds. Filters, bins and group keys see raw values; only aggregated columns are
clipped. The nodes add no noise: the exchange adds one draw of the whole noise vector to the encrypted sum (it never
sees the values it noises), so the consumer's view is exactly the central mechanism whatever the number of nodes.

``finish`` post-processes (counts rounded and ≥ 0, means within the bounds, variances within [0, ((high−low)/2)²])
and gives every figure a confidence interval: the count, bins and group counts from the discrete Laplace's exact
tail (the smallest integer interval covering at least the level: its coverage is reported); sums and means from
the two-Laplace tail of the sum's and the count's noise (the mean's is a first-order approximation in the count's
noise, exact as the count grows); variances by a union bound (coverage at least the level).

    ReleaseError           (the whole tree is drawn in ``privacy``)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Mapping

import numpy as np

from privacy import PrivacyError, dp, fixedpoint
from privacy.aggregation import (
    BIN,
    COUNT,
    GROUP_COUNT,
    GROUP_SUM,
    SUM,
    SUMSQ,
    ColumnStatistics,
    GroupStatistics,
    Slot,
    Statistics,
    StatisticsPlan,
    layout,
)

MECHANISM = "opendp.laplace"
LEVEL = 0.95


class ReleaseError(PrivacyError):
    """A differentially private plan that cannot be released: missing or bad bounds, ε, or a range overflow."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Statistic:
    """One released statistic: its slots in the plan's vector, sensitivity, share of ε and noise scale."""

    name: str
    slots: tuple[int, ...]
    sensitivity: float
    integer: bool
    epsilon: float
    scale: float

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "slots": list(self.slots), "sensitivity": self.sensitivity,
                "integer": self.integer, "epsilon": self.epsilon, "scale": self.scale}


@dataclass(frozen=True)
class Release:
    """How a plan's statistics are noised: the ε, the bounds and each statistic's calibration."""

    epsilon: float
    bounds: tuple[tuple[str, float, float], ...]
    statistics: tuple[Statistic, ...]
    mechanism: str = MECHANISM

    def bound(self, column: str) -> tuple[float, float]:
        """Return the [low, high] the column was clipped to."""
        for name, low, high in self.bounds:
            if name == column:
                return low, high
        raise ReleaseError(f"no bounds for column {column!r}", "params.bounds")

    def scale_at(self, slot: int) -> tuple[float, bool]:
        """Return the noise scale of a slot and whether its noise is discrete."""
        for statistic in self.statistics:
            if slot in statistic.slots:
                return statistic.scale, statistic.integer
        raise ReleaseError(f"slot {slot} is not released", "params.plan")

    def noise(self, size: int) -> np.ndarray:
        """Return one exact draw of the whole noise vector (OpenDP), zero where nothing is released."""
        out = np.zeros(size, dtype=np.float64)
        for statistic in self.statistics:
            out[list(statistic.slots)] = dp.laplace_noise(statistic.scale, len(statistic.slots),
                                                          integer=statistic.integer)
        return out

    def to_json(self) -> dict[str, Any]:
        return {"mechanism": self.mechanism, "epsilon": self.epsilon,
                "bounds": {name: [low, high] for name, low, high in self.bounds},
                "statistics": [s.to_json() for s in self.statistics]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Release:
        try:
            return cls(float(data["epsilon"]),
                       tuple((str(c), float(b[0]), float(b[1])) for c, b in data["bounds"].items()),
                       tuple(Statistic(str(s["name"]), tuple(int(i) for i in s["slots"]), float(s["sensitivity"]),
                                       bool(s["integer"]), float(s["epsilon"]), float(s["scale"]))
                             for s in data["statistics"]), str(data.get("mechanism", MECHANISM)))
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise ReleaseError(f"not a release description: {exc!r}", "release") from exc


def checked_bounds(plan: StatisticsPlan, bounds: Any) -> dict[str, tuple[float, float]]:
    """Return ``bounds`` as {column: (low, high)} for every aggregated column, or raise naming the problem."""
    if not plan.columns:
        return {}  # counts, bins and group counts need no value bounds
    if not isinstance(bounds, Mapping):
        raise ReleaseError("differential privacy needs params.bounds: {column: [low, high]} for every planned "
                           "column", "params.bounds")
    out = {}
    for column in plan.columns:
        pair = bounds.get(column)
        try:
            low, high = (float(pair[0]), float(pair[1])) if len(pair) == 2 else (math.nan, math.nan)
        except (TypeError, ValueError, KeyError):
            low, high = math.nan, math.nan
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ReleaseError(f"params.bounds.{column} must be [low, high], finite with low < high: values are "
                               f"clipped to it and the noise is calibrated to it", f"params.bounds.{column}")
        out[column] = (low, high)
    return out


def centred(plan: StatisticsPlan, bounds: Mapping[str, tuple[float, float]] | None) -> StatisticsPlan:
    """Return the plan with each bounded column shifted to the middle of its bounds (unless it names a shift):
    the smallest reach a, so the least noise, for the same ε."""
    shifts = dict(plan.shifts)
    for column in plan.columns:
        if column not in shifts and bounds and column in bounds:
            low, high = bounds[column]
            shifts[column] = (float(low) + float(high)) / 2.0
    return replace(plan, shifts=tuple(shifts.items()))


def reach(plan: StatisticsPlan, bounds: Mapping[str, tuple[float, float]], column: str) -> float:
    """Return a = max(|low − K|, |high − K|): how far one clipped row moves Σ(x − K)."""
    low, high = bounds[column]
    return max(abs(low - plan.shift(column)), abs(high - plan.shift(column)))


def calibrate(plan: StatisticsPlan, bounds: Any, epsilon: float, rows: int | None = None) -> Release:
    """Split ``epsilon`` equally over the plan's statistics and calibrate each one's Laplace scale with OpenDP.

    With ``rows`` (the most rows the job may read) it also refuses bounds whose sums could leave the exact range of
    encrypted sums: that must be known before any data is read.
    """
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not 0 < epsilon < math.inf:
        raise ReleaseError(f"epsilon must be a finite number > 0, got {epsilon!r}", "epsilon")
    clip = checked_bounds(plan, bounds)
    shape = layout(plan)
    reaches = {c: reach(plan, clip, c) for c in plan.columns}
    if rows is not None:
        for column, a in reaches.items():
            if rows * max(a, 1.0) ** 2 * 2 >= fixedpoint.LIMIT:
                raise ReleaseError(f"the bounds of {column!r} are too wide for {rows} rows: their sum of squares "
                                   f"could exceed the exact range of encrypted sums ({fixedpoint.LIMIT:.2g}); use "
                                   f"coarser units or a shift near the middle of the bounds", f"params.bounds.{column}")
    parts: list[tuple[str, tuple[int, ...], float, bool]] = [("count", (shape.position(Slot(COUNT)),), 1.0, True)]
    for column in plan.columns:
        parts.append((f"sum[{column}]", (shape.position(Slot(SUM, column)),), reaches[column], False))
        parts.append((f"sumsq[{column}]", (shape.position(Slot(SUMSQ, column)),), reaches[column] ** 2, False))
    if plan.histogram is not None:
        h = plan.histogram
        parts.append((f"histogram[{h.column}]", tuple(shape.position(Slot(BIN, h.column, bin=i))
                                                      for i in range(h.bins)), 1.0, True))
    if plan.group_by is not None:
        labels = plan.group_by.labels
        parts.append((f"group_count[{plan.group_by.column}]",
                      tuple(shape.position(Slot(GROUP_COUNT, group=g)) for g in labels), 1.0, True))
        for column in plan.columns:
            parts.append((f"group_sum[{column}]", tuple(shape.position(Slot(GROUP_SUM, column, group=g))
                                                        for g in labels), reaches[column], False))
    share = float(epsilon) / len(parts)
    statistics = tuple(Statistic(name, slots, sensitivity, integer, share,
                                 dp.laplace_scale(sensitivity, share, integer=integer))
                       for name, slots, sensitivity, integer in parts)
    spent = sum(dp.laplace_epsilon(s.sensitivity, s.scale, integer=s.integer) for s in statistics)
    if spent > float(epsilon) * (1 + 1e-9):  # OpenDP's own maps, composed sequentially
        raise ReleaseError(f"the calibrated release spends ε={spent}, more than the job's {epsilon}", "epsilon")
    return Release(float(epsilon), tuple((c, *clip[c]) for c in plan.columns), statistics)


# --- the consumer's finish -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """A released figure with its confidence interval: [low, high] covers the truth with ``coverage`` (or more
    when ``at_least``); ``scale`` is the Laplace scale of the noise on the statistic it comes from."""

    statistic: str
    estimate: float
    low: float
    high: float
    coverage: float
    at_least: bool
    scale: float


@dataclass(frozen=True)
class PrivateStatistics:
    """Post-processed statistics with an interval for every figure, and the release they came from."""

    statistics: Statistics
    intervals: tuple[Interval, ...]
    release: Release


def finish(plan: StatisticsPlan, total: np.ndarray, release: Release, level: float = LEVEL) -> PrivateStatistics:
    """Return the post-processed statistics of a noised total, each figure with its confidence interval."""
    shape = layout(plan)
    vector = np.asarray(total, dtype=np.float64)
    if vector.shape != (shape.size,) or not np.all(np.isfinite(vector)):
        raise ReleaseError(f"a vector of shape {vector.shape} does not fit the plan's {shape.size} slots", "result")
    intervals: list[Interval] = []

    def at(slot: Slot) -> tuple[float, float, bool]:
        index = shape.position(slot)
        return float(vector[index]), *release.scale_at(index)

    def count(name: str, slot: Slot) -> tuple[int, float]:
        value, scale, _ = at(slot)
        k, coverage = dp.discrete_laplace_halfwidth(scale, level)
        estimate = max(0, int(round(value)))
        intervals.append(Interval(name, estimate, max(0, round(value) - k), max(0, round(value) + k), coverage,
                                  True, scale))
        return estimate, value

    n, raw_n = count("count", Slot(COUNT))
    n_scale = release.scale_at(shape.position(Slot(COUNT)))[0]
    columns = {c: _column(plan, release, c, raw_n, n_scale, at(Slot(SUM, c)), at(Slot(SUMSQ, c)), level,
                          intervals, "") for c in plan.columns}
    histogram = None
    if plan.histogram is not None:
        h = plan.histogram
        histogram = tuple(count(f"histogram[{h.column}][{i}]", Slot(BIN, h.column, bin=i))[0] for i in range(h.bins))
    groups: dict[Any, GroupStatistics] = {}
    if plan.group_by is not None:
        for label in plan.group_by.labels:
            size, raw_size = count(f"group[{label!r}].count", Slot(GROUP_COUNT, group=label))
            g_scale = release.scale_at(shape.position(Slot(GROUP_COUNT, group=label)))[0]
            sums, means = {}, {}
            for c in plan.columns:
                figure = _mean_and_sum(plan, release, c, raw_size, g_scale, at(Slot(GROUP_SUM, c, group=label)),
                                       level, intervals, f"group[{label!r}].")
                sums[c], means[c] = figure
            groups[label] = GroupStatistics(size, sums, means)
    return PrivateStatistics(Statistics(n, columns, histogram, groups), tuple(intervals), release)


def _mean_and_sum(plan: StatisticsPlan, release: Release, column: str, raw_n: float, n_scale: float,
                  s1: tuple[float, float, bool], level: float, intervals: list[Interval], prefix: str
                  ) -> tuple[float, float]:
    low, high = release.bound(column)
    shift = plan.shift(column)
    value, scale, _ = s1
    n = max(raw_n, 1.0)
    total = value + shift * raw_n
    width = dp.two_laplace_halfwidth(scale, abs(shift) * n_scale, level)
    total_low, total_high = _clamp(total - width, n * low, n * high), _clamp(total + width, n * low, n * high)
    intervals.append(Interval(f"{prefix}sum[{column}]", _clamp(total, n * low, n * high), total_low, total_high,
                              level, False, scale))
    centred = _clamp(value / n, low - shift, high - shift)
    mean = shift + centred
    width = dp.two_laplace_halfwidth(scale / n, abs(centred) * n_scale / n, level)
    intervals.append(Interval(f"{prefix}mean[{column}]", mean, _clamp(mean - width, low, high),
                              _clamp(mean + width, low, high), level, False, scale))
    return _clamp(total, n * low, n * high), mean


def _column(plan: StatisticsPlan, release: Release, column: str, raw_n: float, n_scale: float,
            s1: tuple[float, float, bool], s2: tuple[float, float, bool], level: float, intervals: list[Interval],
            prefix: str) -> ColumnStatistics:
    total, mean = _mean_and_sum(plan, release, column, raw_n, n_scale, s1, level, intervals, prefix)
    low, high = release.bound(column)
    ceiling = ((high - low) / 2.0) ** 2  # the largest variance of a variable within [low, high]
    n = max(raw_n, 1.0)
    variance = _clamp(_variance(s2[0], s1[0], n), 0.0, ceiling)
    # union bound: each of the three noises inside its (1 − (1 − level)/3) interval
    part = 1.0 - (1.0 - level) / 3.0
    h1, h2 = dp.laplace_halfwidth(s1[1], part), dp.laplace_halfwidth(s2[1], part)
    hn = dp.discrete_laplace_halfwidth(n_scale, part)[0]
    corners = [_variance(a, b, max(c, 1.0)) for a in (s2[0] - h2, s2[0] + h2) for b in (s1[0] - h1, s1[0] + h1)
               for c in (raw_n - hn, raw_n + hn)]
    if s1[0] - h1 <= 0.0 <= s1[0] + h1:
        corners += [_variance(a, 0.0, max(c, 1.0)) for a in (s2[0] - h2, s2[0] + h2) for c in (raw_n - hn, raw_n + hn)]
    intervals.append(Interval(f"{prefix}variance[{column}]", variance, _clamp(min(corners), 0.0, ceiling),
                              _clamp(max(corners), 0.0, ceiling), level, True, s2[1]))
    sample = variance * n / (n - 1) if n > 1 else math.nan
    return ColumnStatistics(total, mean, variance, sample)


def _variance(s2: float, s1: float, n: float) -> float:
    return s2 / n - (s1 / n) ** 2


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)
