"""Additive partial aggregates: split tables add up to the pooled statistics; filters, bins, groups, refusals."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privacy.aggregation import (
    AggregationError,
    BadPlan,
    BadTable,
    Condition,
    GroupBy,
    GroupTooSmall,
    Histogram,
    Slot,
    Statistics,
    StatisticsPlan,
    UnknownColumn,
    finish,
    layout,
    partials,
)

REGIONS = ("north", "south", "east", "west")
RELATIVE = 1e-9


def synthetic_table(rng: np.random.Generator, rows: int) -> dict[str, np.ndarray]:
    """Return a seeded table: two continuous columns, an integer, a flag and a region label."""
    return {
        "age": rng.normal(45.0, 12.0, rows),
        "income": rng.lognormal(10.0, 0.6, rows),
        "children": rng.integers(0, 5, rows),
        "employed": rng.random(rows) < 0.7,
        "region": rng.choice(np.array(REGIONS), rows),
    }


def split_rows(table: dict[str, np.ndarray], cuts: list[int]) -> list[dict[str, np.ndarray]]:
    """Return the table cut into consecutive parts at the given row indices (one part per node)."""
    pieces = {name: np.split(column, cuts) for name, column in table.items()}
    return [{name: pieces[name][i] for name in table} for i in range(len(cuts) + 1)]


def pooled_vector(plan: StatisticsPlan, nodes: list[dict[str, np.ndarray]]) -> np.ndarray:
    """Return the plaintext sum of every node's partial vector (what the exchange computes under encryption)."""
    return np.sum([partials(plan, node) for node in nodes], axis=0)


def expected_statistics(plan: StatisticsPlan, table: dict[str, np.ndarray]) -> dict:
    """Return the plan's statistics computed directly by NumPy on the pooled table."""
    mask = np.ones(len(next(iter(table.values()))), dtype=bool)
    for term in plan.row_filter:
        column = table[term.column]
        ops = {"==": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal, ">": np.greater,
               ">=": np.greater_equal}
        mask &= np.isin(column, term.value) if term.op == "in" else ops[term.op](column, term.value)
    result = {"count": int(mask.sum()), "columns": {}, "groups": {}}
    for name in plan.columns:
        x = table[name][mask].astype(float)
        mean, var = (x.mean(), x.var()) if x.size else (math.nan, math.nan)
        result["columns"][name] = (x.sum(), mean, var, x.var(ddof=1) if x.size > 1 else math.nan)
    if plan.histogram is not None:
        counts, _ = np.histogram(table[plan.histogram.column][mask], bins=plan.histogram.edges)
        result["histogram"] = tuple(int(c) for c in counts)
    if plan.group_by is not None:
        labels = table[plan.group_by.column][mask]
        for label in plan.group_by.labels:
            members = labels == label
            result["groups"][label] = (int(members.sum()),
                                       {c: table[c][mask][members].astype(float).sum() for c in plan.columns})
    return result


def assert_matches(stats: Statistics, expected: dict, relative: float) -> None:
    """Assert the finished statistics equal NumPy's within ``relative`` error (counts exactly)."""
    assert stats.count == expected["count"]
    for name, (total, mean, var, sample_var) in expected["columns"].items():
        got = stats.columns[name]
        assert got.sum == pytest.approx(total, rel=relative)
        assert got.mean == pytest.approx(mean, rel=relative)
        assert got.variance == pytest.approx(var, rel=relative)
        assert got.sample_variance == pytest.approx(sample_var, rel=relative)
    assert stats.histogram == expected.get("histogram")
    for label, (count, sums) in expected["groups"].items():
        group = stats.groups[label]
        assert group.count == count
        for name, total in sums.items():
            assert group.sums[name] == pytest.approx(total, rel=relative)
            assert group.means[name] == pytest.approx(total / count, rel=relative)


@pytest.fixture
def table() -> dict[str, np.ndarray]:
    return synthetic_table(np.random.default_rng(20261128), 3000)


@pytest.fixture
def nodes(table) -> list[dict[str, np.ndarray]]:
    return split_rows(table, [900, 2100])


FULL_PLAN = StatisticsPlan(
    columns=("age", "income", "children"),
    row_filter=(Condition("employed", "==", True), Condition("age", ">=", 18)),
    histogram=Histogram("age", (18, 30, 45, 60, 100)),
    group_by=GroupBy("region", REGIONS),
    min_group_size=10,
)


# --- exactness across nodes ----------------------------------------------------------------------------------


def test_statistics_over_three_nodes_equal_numpy_on_the_pooled_table(table, nodes):
    stats = finish(FULL_PLAN, pooled_vector(FULL_PLAN, nodes))
    assert_matches(stats, expected_statistics(FULL_PLAN, table), RELATIVE)


def test_counts_only_plan_counts_the_filtered_rows(table, nodes):
    plan = StatisticsPlan(row_filter=(("region", "in", ["north", "east"]),))
    assert finish(plan, pooled_vector(plan, nodes)).count == int(np.isin(table["region"], ["north", "east"]).sum())


@pytest.mark.parametrize(
    "term",
    [("age", "<", 40.0), ("age", "<=", 40.0), ("age", ">", 40.0), ("age", ">=", 40.0), ("children", "==", 2),
     ("children", "!=", 2), ("region", "==", "south"), ("region", "!=", "south"), ("children", "in", [0, 4]),
     ("region", "in", ["west", "north"])],
)
def test_each_filter_operator_selects_the_rows_numpy_selects(table, nodes, term):
    plan = StatisticsPlan(columns=("income",), row_filter=(term,), min_group_size=1)
    assert_matches(finish(plan, pooled_vector(plan, nodes)), expected_statistics(plan, table), RELATIVE)


def test_histogram_bins_follow_numpy_half_open_bins_with_a_closed_last_bin():
    node = {"x": np.array([0.0, 1.0, 1.0, 2.0, 2.0, 3.0, -1.0, 3.5])}
    plan = StatisticsPlan(histogram=Histogram("x", (0, 1, 2, 3)), min_group_size=1)
    assert finish(plan, partials(plan, node)).histogram == (1, 2, 3)  # 3.0 counts, -1.0 and 3.5 do not


def test_group_by_ignores_rows_whose_label_was_not_asked_for(table, nodes):
    plan = StatisticsPlan(columns=("income",), group_by=GroupBy("region", ("north",)), min_group_size=1)
    stats = finish(plan, pooled_vector(plan, nodes))
    assert stats.count == 3000
    assert stats.groups["north"].count == int((table["region"] == "north").sum())


def test_a_shift_near_the_mean_keeps_the_variance_exact_where_raw_sums_cancel():
    rng = np.random.default_rng(7)
    x = 1e8 + rng.normal(0.0, 1.0, 10_000)
    nodes = split_rows({"x": x}, [3000, 6000])
    shifted = StatisticsPlan(columns=("x",), shifts={"x": 1e8}, min_group_size=1)
    stats = finish(shifted, pooled_vector(shifted, nodes)).columns["x"]
    assert stats.variance == pytest.approx(x.var(), rel=RELATIVE)
    assert stats.mean == pytest.approx(x.mean(), rel=1e-15)
    raw = StatisticsPlan(columns=("x",), min_group_size=1)
    raw_variance = finish(raw, pooled_vector(raw, nodes)).columns["x"].variance
    # the documented limit: relative error ≈ ε·(1 + mean²/variance) ≈ 1e-16·1e16, so raw sums lose the variance
    raw_error = abs(raw_variance - x.var()) / x.var()
    assert 1e-3 < raw_error <= 100 * 2.2e-16 * (1 + x.mean() ** 2 / x.var())


# --- minimum group size ---------------------------------------------------------------------------------------


def test_a_node_refuses_a_group_below_the_minimum_naming_the_group_but_not_its_count():
    node = {"v": np.arange(23.0), "g": np.array(["a"] * 20 + ["b"] * 3)}
    plan = StatisticsPlan(columns=("v",), group_by=GroupBy("g", ("a", "b")), min_group_size=5)
    with pytest.raises(GroupTooSmall) as refused:
        partials(plan, node)
    assert refused.value.cell == "group 'b' of 'g'" and refused.value.min_group_size == 5
    assert "3" not in str(refused.value)


def test_a_node_refuses_a_filtered_set_below_the_minimum():
    node = {"v": np.arange(100.0)}
    with pytest.raises(GroupTooSmall, match="the filtered set"):
        partials(StatisticsPlan(columns=("v",), row_filter=(("v", ">", 95),), min_group_size=10), node)


def test_a_node_refuses_a_histogram_bin_below_the_minimum():
    node = {"v": np.concatenate([np.full(50, 1.0), np.full(2, 7.0)])}
    with pytest.raises(GroupTooSmall, match="histogram bin 1"):
        partials(StatisticsPlan(histogram=Histogram("v", (0, 5, 10)), min_group_size=10), node)


def test_an_empty_group_on_one_node_is_released_as_zeros_and_keeps_the_pooled_result_exact():
    a = {"v": np.arange(30.0), "g": np.array(["x"] * 15 + ["y"] * 15)}
    b = {"v": np.arange(20.0), "g": np.array(["x"] * 20)}
    plan = StatisticsPlan(columns=("v",), group_by=GroupBy("g", ("x", "y")), min_group_size=10)
    stats = finish(plan, partials(plan, a) + partials(plan, b))
    assert stats.groups["y"].count == 15 and stats.groups["y"].sums["v"] == sum(range(15, 30))
    assert stats.groups["x"].count == 35


def test_a_node_with_no_matching_rows_contributes_zeros():
    plan = StatisticsPlan(columns=("v",), row_filter=(("v", "<", 0),), min_group_size=10)
    assert not partials(plan, {"v": np.arange(5.0)}).any()


# --- rejections ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "plan",
    [StatisticsPlan(columns=("salary",)), StatisticsPlan(row_filter=(("salary", ">", 1),)),
     StatisticsPlan(histogram=Histogram("salary", (0, 1))), StatisticsPlan(group_by=GroupBy("county", ("a",)))],
)
def test_a_plan_naming_a_column_the_table_lacks_is_refused(table, plan):
    with pytest.raises(UnknownColumn, match="salary|county"):
        partials(plan, table)


@pytest.mark.parametrize(
    "build",
    [lambda: StatisticsPlan(columns=("a", "a")), lambda: StatisticsPlan(columns=("",)),
     lambda: StatisticsPlan(min_group_size=0), lambda: StatisticsPlan(min_group_size=2.5),
     lambda: StatisticsPlan(columns=("a",), shifts={"b": 1.0}), lambda: Condition("a", "~=", 1),
     lambda: Condition("a", "in", []), lambda: Condition("a", "in", "abc"), lambda: Condition("a", "<", math.nan),
     lambda: Condition("a", "==", None), lambda: Histogram("a", (1.0,)), lambda: Histogram("a", (0, 2, 1)),
     lambda: Histogram("a", (0, math.inf)), lambda: GroupBy("g", ()), lambda: GroupBy("g", ("a", "a")),
     lambda: GroupBy("g", (1.5,)), lambda: StatisticsPlan.from_dict({"columns": ["a"], "eval": "os.system"}),
     lambda: StatisticsPlan.from_dict({"row_filter": [{"column": "a", "op": "==="}]})],
)
def test_malformed_plans_are_rejected_with_bad_plan(build):
    with pytest.raises(BadPlan):
        build()


@pytest.mark.parametrize(
    "node",
    [{"v": np.arange(3.0), "w": np.arange(4.0)}, {"v": np.array([1.0, np.nan]), "w": np.ones(2)},
     {"v": np.array(["a", "b"]), "w": np.ones(2)}, {"v": np.ones((2, 2)), "w": np.ones(2)}],
)
def test_tables_with_ragged_text_or_non_finite_columns_are_rejected(node):
    with pytest.raises(BadTable):
        partials(StatisticsPlan(columns=("v", "w"), min_group_size=1), node)


@pytest.mark.parametrize(
    "plan",
    [StatisticsPlan(group_by=GroupBy("region", (1, 2))), StatisticsPlan(row_filter=(("region", "==", 3),)),
     StatisticsPlan(row_filter=(("age", ">", "40"),))],
)
def test_a_value_of_the_wrong_type_is_refused_rather_than_silently_matching_nothing(table, plan):
    with pytest.raises(BadPlan, match="does not match the column's type"):
        partials(plan, table)


def test_finish_refuses_a_vector_that_does_not_fit_the_plan():
    with pytest.raises(BadPlan, match="does not fit"):
        finish(FULL_PLAN, np.zeros(3))


def test_every_error_descends_from_aggregation_error():
    assert all(issubclass(e, AggregationError) for e in (BadPlan, UnknownColumn, BadTable, GroupTooSmall))


# --- layout and plan -----------------------------------------------------------------------------------------


def test_layout_lists_count_column_sums_bins_then_groups_each_slot_once():
    plan = StatisticsPlan(columns=("a", "b"), histogram=Histogram("a", (0, 1, 2)), group_by=GroupBy("g", ("x", 7)))
    shape = layout(plan)
    assert shape.names() == (
        "count", "sum['a']", "sumsq['a']", "sum['b']", "sumsq['b']", "bin['a'][0]", "bin['a'][1]",
        "group_count['x']", "group_sum['x']['a']", "group_sum['x']['b']",
        "group_count[7]", "group_sum[7]['a']", "group_sum[7]['b']",
    )
    assert [shape.position(slot) for slot in shape.slots] == list(range(shape.size))
    assert shape.position(Slot("group_sum", "b", group=7)) == 12


def test_a_plan_survives_a_json_round_trip_unchanged():
    assert StatisticsPlan.from_dict(json.loads(json.dumps(FULL_PLAN.to_dict()))) == FULL_PLAN


# --- property: any split adds up to the pooled statistics ----------------------------------------------------

finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False)


@st.composite
def split_tables(draw):
    rows = draw(st.integers(min_value=1, max_value=60))
    table = {
        "x": np.array(draw(st.lists(finite, min_size=rows, max_size=rows))),
        "y": np.array(draw(st.lists(finite, min_size=rows, max_size=rows))),
        "g": np.array(draw(st.lists(st.sampled_from("abc"), min_size=rows, max_size=rows))),
    }
    cuts = sorted(draw(st.lists(st.integers(min_value=0, max_value=rows), max_size=4)))
    threshold = draw(st.none() | finite)
    return table, cuts, threshold


@settings(max_examples=150, deadline=None)
@given(split_tables())
def test_finishing_the_sum_of_any_split_equals_the_statistics_of_the_concatenation(case):
    table, cuts, threshold = case
    plan = StatisticsPlan(
        columns=("x", "y"),
        row_filter=() if threshold is None else (("y", ">=", threshold),),
        histogram=Histogram("x", (-1e3, -10.0, 0.0, 10.0, 1e3)),
        group_by=GroupBy("g", ("a", "b", "c")),
        min_group_size=1,
    )
    stats = finish(plan, pooled_vector(plan, split_rows(table, cuts)))
    expected = expected_statistics(plan, table)
    assert stats.count == expected["count"] and stats.histogram == expected["histogram"]
    mask = np.ones(len(table["x"]), bool) if threshold is None else table["y"] >= threshold
    for name, (total, mean, var, sample_var) in expected["columns"].items():
        got, x = stats.columns[name], table[name][mask]
        scale = float(np.abs(x).sum()) + 1e-300
        second = float((x * x).mean()) if x.size else 0.0  # mean² + variance: what cancels in M2
        assert got.sum == pytest.approx(total, abs=1e-12 * scale)
        if not x.size:
            assert math.isnan(got.mean) and math.isnan(got.variance)
        else:
            assert got.mean == pytest.approx(mean, abs=1e-12 * scale / x.size)
            assert got.variance == pytest.approx(var, abs=1e-12 * second + 1e-300)
        if x.size > 1:
            assert got.sample_variance == pytest.approx(sample_var, abs=1e-12 * second * 2 + 1e-300)
    for label, (count, sums) in expected["groups"].items():
        assert stats.groups[label].count == count
        for name, total in sums.items():
            assert stats.groups[label].sums[name] == pytest.approx(total, abs=1e-12 * (np.abs(table[name]).sum() + 1))


def test_the_pure_cores_import_neither_tenseal_nor_flask():
    code = "import sys, privacy.aggregation, privacy.dp; print(sorted({'tenseal', 'flask'} & set(sys.modules)))"
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
