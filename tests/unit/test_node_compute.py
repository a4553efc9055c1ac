"""What a node computes: the grant's minimum group size binds without a budget; under a budget nothing is refused
for depending on exact data, filters see raw values and only the aggregated columns are clipped, and the node
adds no noise of its own (the exchange adds the calibrated noise to the encrypted sum)."""

from __future__ import annotations

import numpy as np
import pytest

from privacy import aggregation, fixedpoint, he
from provider.compute import ComputeError, statistics
from provider.datasets import Dataset, Mount

ROWS = 400


@pytest.fixture(scope="module")
def keys():
    return he.ConsumerKeys()


def _dataset(values: np.ndarray) -> Dataset:
    return Dataset(Mount("ast_1", "d", 2, "csv", "-"), {"income": values, "id": np.arange(len(values)),
                                                          "sector": np.array(["a", "b"] * (len(values) // 2))})


def _decrypted(keys, plan, dataset, obligations, params_extra=None):
    params = {"plan": plan.to_dict(), **(params_extra or {})}
    result, rows = statistics([dataset], params, obligations, keys.public_context())
    return aggregation.finish(plan, fixedpoint.decode(keys.decrypt(result), aggregation.layout(plan).size)), rows


def test_the_grants_minimum_group_size_binds_even_if_the_plan_asks_for_less(keys):
    plan = aggregation.StatisticsPlan(columns=("income",), group_by=aggregation.GroupBy("sector", ("a", "b")),
                                      min_group_size=2)
    dataset = _dataset(np.arange(ROWS, dtype=float))
    stats, rows = _decrypted(keys, plan, dataset, {"min-group-size": 150})
    assert rows == ROWS and stats.groups["a"].count == ROWS // 2
    with pytest.raises(ComputeError, match="group"):
        _decrypted(keys, plan, dataset, {"min-group-size": 250})


def test_under_a_budget_a_filter_on_one_id_is_answered_whether_or_not_it_exists(keys):
    plan = aggregation.StatisticsPlan(columns=("income",), row_filter=(("id", "==", 7),), min_group_size=10)
    absent = aggregation.StatisticsPlan(columns=("income",), row_filter=(("id", "==", 10**9),), min_group_size=10)
    dataset, dp = _dataset(np.full(ROWS, 5.0)), {"dp-noise": 1.0, "min-group-size": 10}
    bounds = {"bounds": {"income": [0, 10]}}
    assert _decrypted(keys, plan, dataset, dp, bounds)[0].count == 1  # exact here: the exchange adds the noise
    assert _decrypted(keys, absent, dataset, dp, bounds)[0].count == 0
    with pytest.raises(ComputeError, match="fewer than 10"):  # without a budget the refusal stays
        _decrypted(keys, plan, dataset, {"min-group-size": 10})


def test_under_a_budget_filters_see_raw_values_and_only_aggregated_columns_are_clipped(keys):
    values = np.concatenate([np.full(ROWS - 31, 50.0), np.full(31, 2e5)])
    plan = aggregation.StatisticsPlan(columns=("income",), row_filter=(("income", ">", 1e5),))
    stats, _ = _decrypted(keys, plan, _dataset(values), {"dp-noise": 1.0}, {"bounds": {"income": [0, 1e4]}})
    assert stats.count == 31 and stats.columns["income"].sum == 31 * 1e4


def test_under_a_budget_rows_with_missing_values_leave_the_set_instead_of_refusing_it(keys):
    values = np.full(ROWS, 3.0)
    values[:5] = np.nan
    plan = aggregation.StatisticsPlan(columns=("income",))
    stats, _ = _decrypted(keys, plan, _dataset(values), {"dp-noise": 1.0}, {"bounds": {"income": [0, 10]}})
    assert stats.count == ROWS - 5 and stats.columns["income"].mean == 3.0
    with pytest.raises(ComputeError, match="non-finite"):
        _decrypted(keys, plan, _dataset(values), {})


def test_a_budget_without_bounds_is_refused_naming_the_column(keys):
    plan = aggregation.StatisticsPlan(columns=("income",))
    with pytest.raises(ComputeError, match="bounds"):
        _decrypted(keys, plan, _dataset(np.ones(ROWS)), {"dp-noise": 0.5})
    with pytest.raises(ComputeError, match=r"params.bounds.income"):
        _decrypted(keys, plan, _dataset(np.ones(ROWS)), {"dp-noise": 0.5}, {"bounds": {"income": [5, 5]}})
