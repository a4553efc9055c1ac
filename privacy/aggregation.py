"""Additive partial aggregates for HE statistics: the plan, the vector layout, a node's partials, the finish.

The consumer states a ``StatisticsPlan``; each provider node runs ``partials(plan, table)`` over its own rows; the
exchange adds the nodes' vectors under encryption; the consumer decrypts the sum and calls ``finish``. Every slot
is a plain sum over rows, so the sum of the vectors is exactly the pooled rows' vector. Pure NumPy, no I/O.

Minimum group size. Every released count cell (the filtered set, each histogram bin, each group) must hold 0 or
at least ``min_group_size`` rows on the node; otherwise the node refuses the whole job with ``GroupTooSmall``
naming the cell, never its count. Refusing rather than suppressing keeps every released number exact: zeroing a
small cell on one node while others report makes pooled sums silently wrong, and a "suppressed" mark would tell
the consumer the cell is small. The consumer asks again with coarser groups or wider bins. Zero is allowed (a
node lacking a group adds exact zeros); as every non-zero contribution is >= the minimum, so is every non-zero
pooled count. Under differential privacy (``partials(..., clip=bounds)``) nothing is refused for its size: the
noise ``privacy.release`` adds protects small cells, and a refusal would itself depend on exact data.

Numerics. float64 slots (counts exact below 2**53), pairwise sums. With K a column's shift (default 0),
S1 = Σ(x−K), S2 = Σ(x−K)², M2 = S2 − S1²/n (clamped at 0). The subtraction cancels: relative error about
1e-16·(1 + (mean−K)²/variance), so set K near the mean when |mean| ≫ std. Nodes encrypt their vectors through
``privacy.fixedpoint``, which makes the encrypted sums exact (to ~1e-34) for every slot below ~1e43 whatever else
shares the ciphertext, and refuses beyond. ``variance`` is the population variance (M2/n, NumPy's default),
``sample_variance`` is M2/(n−1). Counts are integers in every partial.

    AggregationError       (the whole tree is drawn in ``privacy``)
     ├── BadPlan           a malformed plan, or a vector that does not fit the plan's layout
     ├── UnknownColumn     the plan names a column the table lacks
     ├── BadTable          columns of unequal length, non-numeric or non-finite values
     └── GroupTooSmall     a released cell holds 1 .. min_group_size-1 rows
"""

from __future__ import annotations

import math
import operator
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from privacy import PrivacyError

Label = str | int
Scalar = str | int | float | bool

COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge
}
MEMBERSHIP = "in"
OPERATORS = frozenset(COMPARISONS) | {MEMBERSHIP}
DEFAULT_MIN_GROUP_SIZE = 10
NUMERIC_KINDS = "biuf"  # bool, signed, unsigned, float
COUNT, SUM, SUMSQ, BIN, GROUP_COUNT, GROUP_SUM = "count", "sum", "sumsq", "bin", "group_count", "group_sum"


class AggregationError(PrivacyError):
    """Root of every error this module raises."""


class BadPlan(AggregationError):
    """A plan is malformed, or a vector does not fit the plan's layout."""


class UnknownColumn(AggregationError):
    """The plan names a column the table lacks."""


class BadTable(AggregationError):
    """Columns of unequal length, or non-numeric or non-finite values where numbers are needed."""


class GroupTooSmall(AggregationError):
    """A released cell holds 1 .. min_group_size-1 rows; the node refuses the whole job."""

    def __init__(self, cell: str, min_group_size: int) -> None:
        super().__init__(
            f"{cell} holds fewer than {min_group_size} rows on this node; ask for coarser groups or wider bins"
        )
        self.cell = cell
        self.min_group_size = min_group_size


# --- the plan ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """One row-filter term ``column op value``; ``in`` takes a non-empty tuple of values."""

    column: str
    op: str
    value: Scalar | tuple[Scalar, ...]

    def __post_init__(self) -> None:
        _require_name(self.column, "a filter column")
        if self.op not in OPERATORS:
            raise BadPlan(f"unknown filter operator {self.op!r}; expected one of {sorted(OPERATORS)}")
        if self.op == MEMBERSHIP:
            if isinstance(self.value, (str, bytes)) or not isinstance(self.value, Sequence) or not self.value:
                raise BadPlan(f"'in' on {self.column!r} takes a non-empty list of values")
            object.__setattr__(self, "value", tuple(_scalar(v) for v in self.value))
        else:
            object.__setattr__(self, "value", _scalar(self.value))


@dataclass(frozen=True)
class Histogram:
    """Bin counts of one numeric column; bins are [e0, e1), …, [e(k-1), ek] as in ``np.histogram``."""

    column: str
    edges: tuple[float, ...]

    def __post_init__(self) -> None:
        _require_name(self.column, "a histogram column")
        edges = tuple(_float(e, "a histogram edge") for e in self.edges)
        if len(edges) < 2 or not all(map(math.isfinite, edges)) or any(b <= a for a, b in zip(edges, edges[1:])):
            raise BadPlan("histogram edges must be at least two finite, strictly increasing numbers")
        object.__setattr__(self, "edges", edges)

    @property
    def bins(self) -> int:
        """Return the number of bins."""
        return len(self.edges) - 1


@dataclass(frozen=True)
class GroupBy:
    """Per-group counts and sums over a categorical column, for the labels the consumer names."""

    column: str
    labels: tuple[Label, ...]

    def __post_init__(self) -> None:
        _require_name(self.column, "a group-by column")
        labels = tuple(v.item() if isinstance(v, np.generic) else v for v in self.labels)
        if not labels or any(isinstance(v, bool) or not isinstance(v, (str, int)) for v in labels):
            raise BadPlan("group labels must be a non-empty list of strings or integers")
        if len(set(labels)) != len(labels):
            raise BadPlan("group labels must be unique")
        object.__setattr__(self, "labels", labels)


@dataclass(frozen=True)
class StatisticsPlan:
    """What a consumer asks the nodes to aggregate; every sum slot holds Σ(x − shift of x's column)."""

    columns: tuple[str, ...] = ()
    row_filter: tuple[Condition, ...] = ()
    histogram: Histogram | None = None
    group_by: GroupBy | None = None
    min_group_size: int = DEFAULT_MIN_GROUP_SIZE
    shifts: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        columns = tuple(self.columns) if not isinstance(self.columns, str) else (self.columns,)
        for name in columns:
            _require_name(name, "a column")
        if len(set(columns)) != len(columns):
            raise BadPlan("columns must be unique")
        terms = tuple(t if isinstance(t, Condition) else Condition(*t) for t in self.row_filter)
        k = self.min_group_size
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise BadPlan("min_group_size must be an integer >= 1")
        pairs = self.shifts.items() if isinstance(self.shifts, Mapping) else self.shifts
        shifts = tuple(sorted((c, _float(s, f"the shift of {c!r}")) for c, s in pairs))
        for name, value in shifts:
            if name not in columns or not math.isfinite(value):
                raise BadPlan(f"a shift needs a planned column and a finite value, got {name!r}: {value}")
        for attr, value in [("columns", columns), ("row_filter", terms), ("shifts", shifts)]:
            object.__setattr__(self, attr, value)

    def shift(self, column: str) -> float:
        """Return the shift subtracted from ``column`` before summing (0 unless the plan sets one)."""
        return dict(self.shifts).get(column, 0.0)

    def to_dict(self) -> dict[str, Any]:
        """Return the plan as JSON-ready data (the form job parameters carry; tuples dump as lists)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StatisticsPlan:
        """Build a plan from ``to_dict`` data, raising ``BadPlan`` on anything malformed."""
        try:
            h, g = data.get("histogram"), data.get("group_by")
            return cls(**{
                **data,
                "row_filter": tuple(Condition(**term) for term in data.get("row_filter", ())),
                "histogram": Histogram(**h) if h is not None else None,
                "group_by": GroupBy(**g) if g is not None else None,
            })
        except (TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, AggregationError):
                raise
            raise BadPlan(f"malformed plan: {exc}") from exc


# --- the layout ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Slot:
    """One position of the partial vector: what it sums, for which column, group or bin."""

    kind: str
    column: str | None = None
    group: Label | None = None
    bin: int | None = None

    def __str__(self) -> str:
        return self.kind + "".join(f"[{part!r}]" for part in (self.group, self.column, self.bin) if part is not None)


@dataclass(frozen=True)
class Layout:
    """The slots of a plan's vector, in order."""

    slots: tuple[Slot, ...]
    _positions: dict[Slot, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_positions", {slot: i for i, slot in enumerate(self.slots)})

    @property
    def size(self) -> int:
        """Return the length of the vector."""
        return len(self.slots)

    def position(self, slot: Slot) -> int:
        """Return the index of ``slot``, raising ``BadPlan`` if the plan has no such slot."""
        try:
            return self._positions[slot]
        except KeyError:
            raise BadPlan(f"the plan has no slot {slot}") from None

    def names(self) -> tuple[str, ...]:
        """Return a readable name per slot, in order."""
        return tuple(str(slot) for slot in self.slots)


def layout(plan: StatisticsPlan) -> Layout:
    """Return the layout: count; per column sum, sumsq; histogram bins; per group count and per-column sums."""
    slots = [Slot(COUNT)]
    for column in plan.columns:
        slots += [Slot(SUM, column), Slot(SUMSQ, column)]
    if plan.histogram is not None:
        slots += [Slot(BIN, plan.histogram.column, bin=i) for i in range(plan.histogram.bins)]
    if plan.group_by is not None:
        for label in plan.group_by.labels:
            slots.append(Slot(GROUP_COUNT, group=label))
            slots += [Slot(GROUP_SUM, column, group=label) for column in plan.columns]
    return Layout(tuple(slots))


# --- a node's partial vector ---------------------------------------------------------------------------------


def partials(plan: StatisticsPlan, table: Mapping[str, Any],
             clip: Mapping[str, tuple[float, float]] | None = None) -> np.ndarray:
    """Return this node's additive vector for ``plan``, refusing with ``GroupTooSmall`` before anything leaves.

    With ``clip`` (differential privacy: [low, high] per aggregated column) nothing depends on exact data for being
    answered: filters, bins and group keys see raw values, rows whose aggregated values are not finite leave the
    filtered set, the aggregated values are clipped, and no cell is refused for being small (noise protects it).
    """
    rows = _row_count(plan, table)
    mask = _select(plan.row_filter, table, rows)
    private = clip is not None
    k = 1 if private else plan.min_group_size
    if private:
        for column in plan.columns:
            mask &= np.isfinite(_numeric(table, column, np.ones(rows, dtype=bool), finite=False))
    values = {c: _numeric(table, c, mask) for c in plan.columns}
    if private:
        values = {c: np.clip(x, *clip[c]) for c, x in values.items()}
    values = {c: x - plan.shift(c) for c, x in values.items()}
    shape = layout(plan)
    out = np.zeros(shape.size, dtype=np.float64)

    count = int(np.count_nonzero(mask))
    _require_releasable("the filtered set", count, k)
    out[shape.position(Slot(COUNT))] = count
    for column, x in values.items():
        out[shape.position(Slot(SUM, column))] = np.sum(x)
        out[shape.position(Slot(SUMSQ, column))] = np.sum(x * x)

    if plan.histogram is not None:
        h = plan.histogram
        binned = _numeric(table, h.column, mask, finite=not private)
        counts, _ = np.histogram(binned[np.isfinite(binned)], bins=np.asarray(h.edges))
        for i, n in enumerate(counts):
            _require_releasable(f"histogram bin {i} ({h.edges[i]} to {h.edges[i + 1]}) of {h.column!r}", int(n), k)
            out[shape.position(Slot(BIN, h.column, bin=i))] = n

    if plan.group_by is not None:
        g = plan.group_by
        labels = np.asarray(table[g.column])[mask]
        for label in g.labels:
            _require_comparable(labels, label, f"group label of {g.column!r}")
            members = np.asarray(labels == label, dtype=bool)
            size = int(np.count_nonzero(members))
            _require_releasable(f"group {label!r} of {g.column!r}", size, k)
            out[shape.position(Slot(GROUP_COUNT, group=label))] = size
            for column, x in values.items():
                out[shape.position(Slot(GROUP_SUM, column, group=label))] = np.sum(x[members])
    return out


def _row_count(plan: StatisticsPlan, table: Mapping[str, Any]) -> int:
    needed = list(plan.columns) + [t.column for t in plan.row_filter]
    needed += [x.column for x in (plan.histogram, plan.group_by) if x is not None]
    for name in needed:
        if name not in table:
            raise UnknownColumn(f"the table has no column {name!r}")
    names = needed or list(table)
    if not names:
        raise BadTable("the table has no columns")
    shapes = {name: np.shape(table[name]) for name in names}
    if any(len(s) != 1 for s in shapes.values()) or len({s[0] for s in shapes.values()}) != 1:
        raise BadTable(f"columns must be 1-D and of equal length, got shapes {shapes}")
    return next(iter(shapes.values()))[0]


def _select(terms: Sequence[Condition], table: Mapping[str, Any], rows: int) -> np.ndarray:
    mask = np.ones(rows, dtype=bool)
    for term in terms:
        column = np.asarray(table[term.column])
        for value in term.value if term.op == MEMBERSHIP else (term.value,):
            _require_comparable(column, value, f"filter value for {term.column!r}")
        try:
            if term.op == MEMBERSHIP:
                hit = np.isin(column, list(term.value))
            else:
                hit = COMPARISONS[term.op](column, term.value)
        except TypeError as exc:
            raise BadPlan(f"cannot apply {term.column!r} {term.op} {term.value!r}") from exc
        mask &= np.asarray(hit, dtype=bool)
    return mask


def _numeric(table: Mapping[str, Any], name: str, mask: np.ndarray, *, finite: bool = True) -> np.ndarray:
    column = np.asarray(table[name])
    if column.dtype.kind not in NUMERIC_KINDS:
        raise BadTable(f"column {name!r} is not numeric (dtype {column.dtype})")
    values = column[mask].astype(np.float64)
    if finite and not np.all(np.isfinite(values)):
        raise BadTable(f"column {name!r} holds non-finite values in the selected rows")
    return values


def _require_comparable(column: np.ndarray, value: Scalar, what: str) -> None:
    # NumPy answers a str-vs-number `==` with all False; a typo would silently empty a group or filter.
    textual, numeric = column.dtype.kind in "US", column.dtype.kind in NUMERIC_KINDS
    if (textual and not isinstance(value, str)) or (numeric and isinstance(value, str)):
        raise BadPlan(f"{what} {value!r} does not match the column's type ({column.dtype})")


def _require_releasable(cell: str, count: int, k: int) -> None:
    if 0 < count < k:
        raise GroupTooSmall(cell, k)


# --- the consumer's finish -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnStatistics:
    """Sum, mean, population variance (÷n) and sample variance (÷(n−1)) of one column; NaN where undefined."""

    sum: float
    mean: float
    variance: float
    sample_variance: float


@dataclass(frozen=True)
class GroupStatistics:
    """Pooled count, per-column sums and means of one group."""

    count: int
    sums: Mapping[str, float]
    means: Mapping[str, float]


@dataclass(frozen=True)
class Statistics:
    """The finished statistics of the pooled, filtered rows; ``histogram`` holds bin counts (edges: the plan's)."""

    count: int
    columns: Mapping[str, ColumnStatistics]
    histogram: tuple[int, ...] | None
    groups: Mapping[Label, GroupStatistics]


def finish(plan: StatisticsPlan, total: np.ndarray) -> Statistics:
    """Return the statistics of the pooled rows from the sum of all nodes' partial vectors."""
    shape = layout(plan)
    vector = np.asarray(total, dtype=np.float64)
    if vector.shape != (shape.size,):
        raise BadPlan(f"a vector of shape {vector.shape} does not fit the plan's {shape.size} slots")
    if not np.all(np.isfinite(vector)):
        raise BadPlan("the vector holds non-finite values")

    def at(slot: Slot) -> float:
        return float(vector[shape.position(slot)])

    n = _count(at(Slot(COUNT)))
    columns = {c: _column(n, at(Slot(SUM, c)), at(Slot(SUMSQ, c)), plan.shift(c)) for c in plan.columns}
    h = plan.histogram
    histogram = tuple(_count(at(Slot(BIN, h.column, bin=i))) for i in range(h.bins)) if h is not None else None
    groups: dict[Label, GroupStatistics] = {}
    for label in plan.group_by.labels if plan.group_by is not None else ():
        size = _count(at(Slot(GROUP_COUNT, group=label)))
        sums = {c: at(Slot(GROUP_SUM, c, group=label)) + size * plan.shift(c) for c in plan.columns}
        means = {c: s / size if size > 0 else math.nan for c, s in sums.items()}
        groups[label] = GroupStatistics(size, sums, means)
    return Statistics(n, columns, histogram, groups)


def _count(value: float) -> int:
    return int(round(value))


def _column(n: int, s1: float, s2: float, shift: float) -> ColumnStatistics:
    if n <= 0:
        return ColumnStatistics(s1 + n * shift, math.nan, math.nan, math.nan)
    m2 = max(s2 - s1 * s1 / n, 0.0)
    sample = m2 / (n - 1) if n > 1 else math.nan
    return ColumnStatistics(s1 + n * shift, shift + s1 / n, m2 / n, sample)


def _require_name(name: object, what: str) -> None:
    if not isinstance(name, str) or not name:
        raise BadPlan(f"{what} must be a non-empty string, got {name!r}")


def _float(value: object, what: str) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise BadPlan(f"{what} must be a number, got {value!r}") from exc


def _scalar(value: object) -> Scalar:
    if isinstance(value, np.generic):
        value = value.item()
    if not isinstance(value, (str, int, float)) or (isinstance(value, float) and not math.isfinite(value)):
        raise BadPlan(f"a filter value must be a string or a finite number, got {value!r}")
    return value
