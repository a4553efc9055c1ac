"""Exact encrypted sums: the fixed-point limb codec round-trips, adds exactly, and under real CKKS every slot of a
plan keeps 1e-6 relative precision from 1e-9 to 1e13 whatever shares its ciphertext — or is refused by name."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privacy import aggregation, fixedpoint, he
from privacy.fixedpoint import OutOfRange
from provider.compute import ComputeError, statistics
from provider.datasets import Dataset, Mount

MAGNITUDES = [10.0**e for e in range(-9, 14)]
finite = st.floats(min_value=-1e40, max_value=1e40, allow_nan=False, allow_infinity=False)


@pytest.fixture(scope="module")
def keys():
    return he.ConsumerKeys()


@given(st.lists(finite, min_size=1, max_size=20), st.lists(finite, min_size=1, max_size=20))
@settings(max_examples=200, deadline=None)
def test_digit_sums_decode_to_the_exact_sum_of_the_rounded_values(first, second):
    n = min(len(first), len(second))
    a, b = np.array(first[:n]), np.array(second[:n])
    decoded = fixedpoint.decode(fixedpoint.encode(a) + fixedpoint.encode(b), n)
    exact = [(round(math.ldexp(x, 112)) + round(math.ldexp(y, 112))) / (1 << 112) for x, y in zip(a, b)]
    assert decoded.tolist() == exact


@pytest.mark.parametrize("value", [math.inf, math.nan, 1e44, -1e44])
def test_values_beyond_the_range_are_refused_naming_their_slot(value):
    with pytest.raises(OutOfRange) as refused:
        fixedpoint.encode([1.0, value])
    assert refused.value.index == 1


def test_one_huge_slot_no_longer_blurs_the_small_ones_under_ckks(keys):
    values = np.array([100_000.0, 1e23, 3.0, 1e-18, -7.5e12])
    summed = he.add_ciphertexts(keys.public_context(), [he.encrypt_vector(keys.public_context(),
                                                                           fixedpoint.encode(values))] * 3)
    decoded = fixedpoint.decode(keys.decrypt(summed), values.size)
    assert decoded.tolist() == (3 * values).tolist()


def _node_statistics(keys, table: dict[str, np.ndarray], plan: aggregation.StatisticsPlan):
    dataset = Dataset(Mount("ast_1", "d", 2, "csv", "-"), table)
    bundle, _ = statistics([dataset], {"plan": plan.to_dict()}, {}, keys.public_context())
    total = fixedpoint.decode(keys.decrypt(bundle), aggregation.layout(plan).size)
    return aggregation.finish(plan, total)


def test_a_sweep_of_magnitudes_in_one_plan_is_within_1e_6_of_numpy(keys):
    rng = np.random.default_rng(5)
    rows = 100_000
    table = {f"m{i}": m * (1.0 + rng.random(rows)) for i, m in enumerate(MAGNITUDES)}
    table["group"] = rng.choice(np.array(["a", "b"]), rows)
    plan = aggregation.StatisticsPlan(columns=tuple(table)[:-1],
                                      group_by=aggregation.GroupBy("group", ("a", "b")))
    stats = _node_statistics(keys, table, plan)
    assert stats.count == rows
    for name in plan.columns:
        x = table[name]
        column = stats.columns[name]
        assert column.sum == pytest.approx(x.sum(), rel=1e-6), name
        assert column.mean == pytest.approx(x.mean(), rel=1e-6), name
        assert column.variance == pytest.approx(x.var(), rel=1e-6), name
        for label in ("a", "b"):
            members = x[table["group"] == label]
            assert stats.groups[label].sums[name] == pytest.approx(members.sum(), rel=1e-6), (name, label)
    assert stats.groups["a"].count + stats.groups["b"].count == rows


def test_a_column_beyond_the_exact_range_is_refused_by_name_not_wrapped(keys):
    table = {"fine": np.ones(1000), "astronomic": np.full(1000, 1e22)}
    plan = aggregation.StatisticsPlan(columns=("fine", "astronomic"))
    with pytest.raises(ComputeError, match=r"sumsq\['astronomic'\].*coarser units"):
        _node_statistics(keys, table, plan)
