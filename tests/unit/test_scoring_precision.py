"""Encrypted scoring is never silently wrong: with the real CKKS facade (the consumer's keys, the nodes'
``encrypted_dot`` on scaled columns, the exchange's addition), every score is within 1e-6 relative of numpy and
within its stated error, whatever the magnitudes of the features, or it is refused naming the feature and the fix.
"Relative" is to Σ|w_j·x_j| + |b|, which stays meaningful when the score itself cancels towards 0."""

from __future__ import annotations

import base64
import hashlib
import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from privacy import he, scoring
from provider import compute
from provider.datasets import Dataset, Mount

MAGNITUDES = [10.0**e for e in range(-9, 14)]


@pytest.fixture(scope="module")
def keys() -> he.ConsumerKeys:
    return he.ConsumerKeys()


def _encrypted_scores(keys, tables: dict[str, np.ndarray], weights: dict[str, np.ndarray], bias: float,
                      ranges: dict[str, list[tuple[float, float]]]) -> tuple[np.ndarray, scoring.ScoringPlan]:
    """Score as the SDK, the nodes and the exchange do: plan, encrypt, scale and multiply, add, decrypt, finish."""
    parts = {asset: [f"{asset}{j}" for j in range(table.shape[1])] for asset, table in tables.items()}
    named = {asset: dict(zip(parts[asset], ranges[asset])) for asset in parts}
    plan = scoring.plan(parts, weights, bias, named)
    context = keys.public_context()
    partials = []
    for asset, part in plan.parts.items():
        encrypted = keys.encrypt_weights(part.weights, part.bias)  # consumer
        scaled = np.column_stack([scoring.scaled_column(name, column, s)  # node
                                  for name, column, s in zip(part.features, tables[asset].T, part.exponents)])
        partials.append(he.encrypted_dot(context, encrypted, scaled))
    total = he.add_ciphertexts(context, partials)  # exchange
    rows = next(iter(tables.values())).shape[0]
    return plan.scores(keys.decrypt_scores(total)[:rows]), plan


def _assert_accurate(scores, plan, tables, weights, bias):
    expected = sum(tables[a] @ weights[a] for a in tables) + bias
    scale = sum(np.abs(tables[a]) @ np.abs(weights[a]) for a in tables) + abs(bias)
    error = np.abs(scores - expected)
    assert np.all(error <= plan.error), f"worst error {error.max():.3g} beyond the stated {plan.error:.3g}"
    assert np.all(error <= 1e-6 * scale), f"worst relative error {np.max(error / scale):.3g}"


def _column(rng, magnitude: float, rows: int) -> np.ndarray:
    return rng.choice([-1.0, 1.0], rows) * rng.uniform(0.1, 1.0, rows) * magnitude


def test_a_huge_feature_at_weight_zero_does_not_blur_tiny_scores(keys):
    rng = np.random.default_rng(1)
    rows = 50
    tables = {"a": np.column_stack([rng.uniform(-1, 1, rows) * 1e12, rng.uniform(0, 1e-3, rows),
                                    rng.uniform(0, 1e-3, rows)])}
    weights, bias = {"a": np.array([0.0, 1e-3, -5e-4])}, 0.0  # scores around 1e-6
    ranges = {"a": [(-1e12, 1e12), (0.0, 1e-3), (0.0, 1e-3)]}
    scores, plan = _encrypted_scores(keys, tables, weights, bias, ranges)
    _assert_accurate(scores, plan, tables, weights, bias)


@pytest.mark.parametrize("magnitude", MAGNITUDES, ids=[f"1e{e}" for e in range(-9, 14)])
def test_scores_of_features_of_any_magnitude_match_numpy(keys, magnitude):
    rng = np.random.default_rng(int(-math.log10(magnitude) * 10) + 200)
    rows = 300
    tables = {"a": np.column_stack([_column(rng, magnitude, rows) for _ in range(3)])}
    weights = {"a": rng.normal(0, 1, 3)}
    bias = float(rng.normal(0, 1)) * magnitude
    scores, plan = _encrypted_scores(keys, tables, weights, bias, {"a": [(-magnitude, magnitude)] * 3})
    _assert_accurate(scores, plan, tables, weights, bias)


@pytest.mark.parametrize("weight_scale", [1e-12, 1.0, 1e9])
def test_mixed_magnitudes_split_across_providers_match_numpy(keys, weight_scale):
    rng = np.random.default_rng(7)
    rows = 400
    magnitudes = {"tax": [1e-9, 1e13, 1.0], "hr": [1e-3, 1e6]}
    tables = {a: np.column_stack([_column(rng, m, rows) for m in ms]) for a, ms in magnitudes.items()}
    # Every term around 1e-6·weight_scale, except a huge feature at weight 0.
    weights = {"tax": np.array([1e3, 0.0, 1e-6]) * weight_scale, "hr": np.array([-1e-3, 1e-12]) * weight_scale}
    bias = 2e-6 * weight_scale
    ranges = {a: [(-m, m) for m in ms] for a, ms in magnitudes.items()}
    scores, plan = _encrypted_scores(keys, tables, weights, bias, ranges)
    _assert_accurate(scores, plan, tables, weights, bias)


def test_a_score_that_cancels_to_zero_is_accurate_relative_to_its_terms(keys):
    rng = np.random.default_rng(8)
    x = _column(rng, 1e8, 200)
    tables = {"a": np.column_stack([x, x, _column(rng, 1.0, 200)])}
    weights, bias = {"a": np.array([3.0, -3.0, 1e-9])}, 0.0  # w·x + b ≈ 1e-9, terms ≈ 3e8
    scores, plan = _encrypted_scores(keys, tables, weights, bias, {"a": [(-1e8, 1e8)] * 2 + [(-1.0, 1.0)]})
    _assert_accurate(scores, plan, tables, weights, bias)


def test_the_stated_error_holds_with_a_wide_margin_at_the_worst_inputs_and_is_small(keys):
    # |x·2^-s| = 1 in every slot and ranges filled exactly: the largest scaled scores the plan allows.
    rng = np.random.default_rng(9)
    worst = 0.0
    for trial in range(4):
        tables = {"a": rng.choice([-1.0, 1.0], (4096, 5)) * 2.0**trial}
        weights, bias = {"a": rng.normal(0, 1, 5)}, float(rng.normal())
        scores, plan = _encrypted_scores(keys, tables, weights, bias, {"a": [(-(2.0**trial), 2.0**trial)] * 5})
        expected = tables["a"] @ weights["a"] + bias
        worst = max(worst, float(np.max(np.abs(scores - expected)) / plan.error))
        assert plan.error <= 4e-9 * plan.bound
    assert worst <= 0.1, f"a measured error reached {worst:.2%} of the stated bound"


def test_a_value_beyond_its_planned_range_is_refused_naming_the_feature_and_the_fix():
    with pytest.raises(scoring.OutOfRange, match=r"feature revenue .* beyond ±2\^10 .*declare its range.*ranges="):
        scoring.scaled_column("revenue", np.array([3.0, 1024.0, 1025.0]), 10)
    assert np.array_equal(scoring.scaled_column("revenue", np.array([-1024.0, 512.0]), 10), [-1.0, 0.5])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_feature_values_are_refused_naming_the_feature(bad):
    with pytest.raises(scoring.OutOfRange, match="feature months_late holds missing or non-finite"):
        scoring.scaled_column("months_late", np.array([1.0, bad]), 4)


@pytest.mark.parametrize("bad", [(1.0, 1.0), (2.0, 1.0), (0.0, math.inf), (math.nan, 1.0), ("a", "b"), (1.0,)])
def test_a_range_that_is_empty_reversed_or_not_finite_is_refused_naming_the_feature(bad):
    with pytest.raises(scoring.BadRange, match="feature vat_paid"):
        scoring.plan({"a": ["vat_paid"]}, {"a": [1.0]}, 0.0, {"a": {"vat_paid": bad}})


def test_weights_that_do_not_fit_their_features_or_are_not_finite_are_refused():
    for weights in ([1.0], [1.0, math.nan]):
        with pytest.raises(scoring.BadRange, match="asset a: expected 2 finite weights"):
            scoring.plan({"a": ["x", "y"]}, {"a": weights}, 0.0, {"a": {"x": (0, 1), "y": (0, 1)}})


def test_the_consumers_ranges_beat_the_declared_ones_which_beat_the_default():
    declared = scoring.declared_ranges([{"name": "x", "minimum": 0, "maximum": 5},
                                        {"name": "y", "minimum": -1, "maximum": 1}, {"name": "z"}])
    resolved = scoring.resolve_ranges({"a": ["x", "y", "z"]}, {"a": declared}, {"y": (-8.0, 8.0)})
    assert resolved == {"a": {"x": (0.0, 5.0), "y": (-8.0, 8.0), "z": scoring.DEFAULT_RANGE}}


def test_the_plan_scales_by_exact_powers_of_two_and_keeps_the_scaled_score_within_the_target():
    weights, bias = [0.3, -7.5, 1e-5], 0.125
    plan = scoring.plan({"a": ["x", "y", "z"]}, {"a": weights}, bias,
                        {"a": {"x": (0.0, 100.0), "y": (-1e-9, 1e-9), "z": (-3e12, 1e12)}})
    part = plan.parts["a"]
    assert part.exponents == (7, -29, 42)
    assert [math.ldexp(w, -(s + plan.shift)) for w, s in zip(part.weights, part.exponents)] == weights
    assert math.ldexp(part.bias, -plan.shift) == bias
    assert 2.0 ** (scoring.TARGET_BITS - 1) < sum(map(abs, part.weights)) + abs(part.bias) <= 2.0**scoring.TARGET_BITS


def test_the_bias_rides_with_the_first_part_only():
    ranges = {"a": {"x": (0, 1)}, "b": {"y": (0, 1)}}
    plan = scoring.plan({"a": ["x"], "b": ["y"]}, {"a": [1.0], "b": [2.0]}, 3.0, ranges)
    assert plan.parts["a"].bias != 0.0 and plan.parts["b"].bias == 0.0


@given(st.floats(min_value=1e-300, max_value=1e300))
def test_the_exponent_is_the_least_power_of_two_that_covers_the_range(reach):
    s = scoring.exponent(-reach, reach / 2)
    assert reach <= 2.0**s and reach > 2.0 ** (s - 1)


# --- the node -------------------------------------------------------------------------------------------------


def _node_job(keys, exponents, ids=("a", "b")):
    dataset = Dataset(Mount("ast_1", "tax", 3, "csv", "-", id_column="uscc"),
                      {"uscc": np.array(["a", "b", "c"]), "revenue": np.array([5.0, 1e12, np.nan])})
    weights = keys.encrypt_weights([1.0], 0.0)
    part = {"features": ["revenue"], "weights_sha256": hashlib.sha256(weights).hexdigest(), "exponents": exponents}
    payload = json.dumps({"ast_1": base64.b64encode(weights).decode()}).encode()
    return compute.scores([dataset], {"ids": list(ids), "parts": {"ast_1": part}}, payload, keys.public_context())


@pytest.mark.parametrize("exponents", [None, [], [40, 1], [2.5], ["40"], [True], [5000]])
def test_a_node_refuses_parameters_without_one_integer_exponent_per_feature(keys, exponents):
    with pytest.raises(compute.ComputeError, match=r"params.parts\[ast_1\].exponents must be one integer"):
        _node_job(keys, exponents)


def test_a_node_refuses_rows_beyond_the_planned_range_or_not_finite_naming_the_asset_and_feature(keys):
    with pytest.raises(compute.ComputeError, match=r"asset ast_1: feature revenue holds values beyond ±2\^39"):
        _node_job(keys, [39])
    with pytest.raises(compute.ComputeError, match="asset ast_1: feature revenue holds missing or non-finite"):
        _node_job(keys, [40], ids=("a", "c"))
    result, rows = _node_job(keys, [40])
    assert rows == 2
    np.testing.assert_allclose(keys.decrypt_scores(result)[:2], np.ldexp([5.0, 1e12], -40), rtol=0, atol=1e-6)
