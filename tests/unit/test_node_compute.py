"""What a node computes: the grant's minimum group size binds, and under a privacy budget values are clipped to
the plan's bounds and Laplace noise of the right scale is added before encryption."""

from __future__ import annotations

import numpy as np
import pytest

from privacy import aggregation, he
from provider.compute import ComputeError, sensitivity, statistics
from provider.datasets import Dataset, Mount

ROWS = 400


@pytest.fixture(scope="module")
def keys():
    return he.ConsumerKeys()


def _dataset(values: np.ndarray) -> Dataset:
    return Dataset(Mount("ast_1", "d", 2, "csv", "-"), {"income": values,
                                                          "sector": np.array(["a", "b"] * (len(values) // 2))})


def _decrypted(keys, plan, dataset, obligations, params_extra=None, seed=1):
    params = {"plan": plan.to_dict(), **(params_extra or {})}
    result, rows = statistics([dataset], params, obligations, keys.public_context(), np.random.default_rng(seed))
    return aggregation.finish(plan, keys.decrypt(result)[:aggregation.layout(plan).size]), rows


def test_the_grants_minimum_group_size_binds_even_if_the_plan_asks_for_less(keys):
    plan = aggregation.StatisticsPlan(columns=("income",), group_by=aggregation.GroupBy("sector", ("a", "b")),
                                      min_group_size=2)
    dataset = _dataset(np.arange(ROWS, dtype=float))
    stats, rows = _decrypted(keys, plan, dataset, {"min-group-size": 150})
    assert rows == ROWS and stats.groups["a"].count == ROWS // 2
    with pytest.raises(ComputeError, match="group"):
        _decrypted(keys, plan, dataset, {"min-group-size": 250})


def test_sensitivity_counts_every_slot_one_row_can_move():
    plan = aggregation.StatisticsPlan(columns=("income",), histogram=aggregation.Histogram("income", (0, 5, 10)),
                                      group_by=aggregation.GroupBy("sector", ("a", "b")))
    # count 1 + Σx 10 + Σx² 100 + one bin 1 + one group count 1 + its Σx 10
    assert sensitivity(plan, {"income": (-2.0, 10.0)}) == 123.0


def test_under_a_budget_values_are_clipped_and_noise_has_the_laplace_scale(keys):
    plan = aggregation.StatisticsPlan(columns=("income",), min_group_size=10)
    values = np.full(ROWS, 5.0)
    values[:10] = 1e6  # outliers a bound must neutralise
    dataset = _dataset(values)
    bounds = {"bounds": {"income": [0, 10]}}
    sums = [_decrypted(keys, plan, dataset, {"dp-noise": 1.0}, bounds, seed=s)[0].columns["income"].sum
            for s in range(40)]
    clipped_truth = 10 * 10 + (ROWS - 10) * 5.0
    scale = sensitivity(plan, {"income": (0.0, 10.0)}) / 1.0  # Laplace b = Δ/ε; std = b·√2
    assert abs(np.mean(sums) - clipped_truth) < 4 * scale * np.sqrt(2) / np.sqrt(len(sums))
    assert 0.5 * scale * np.sqrt(2) < np.std(sums) < 1.5 * scale * np.sqrt(2)


def test_a_budget_without_bounds_is_refused(keys):
    plan = aggregation.StatisticsPlan(columns=("income",))
    with pytest.raises(ComputeError, match="bounds"):
        _decrypted(keys, plan, _dataset(np.ones(ROWS)), {"dp-noise": 0.5})
