"""Differential-privacy mechanisms: noise scales, the analytic Gaussian calibration, and parameter rejection."""

from __future__ import annotations

import math

import numpy as np
import pytest

from privacy.dp import (
    DPError,
    gaussian_delta,
    gaussian_noise,
    gaussian_sigma,
    laplace_noise,
    laplace_scale,
)

DRAWS = 200_000
SEED = 20261128


def test_laplace_noise_has_the_theoretical_standard_deviation_and_zero_mean():
    noise = laplace_noise(2.0, 0.5, DRAWS, np.random.default_rng(SEED))
    theoretical = math.sqrt(2.0) * 2.0 / 0.5  # std of Laplace(b) is b·√2, b = Δ/ε
    assert noise.shape == (DRAWS,)
    assert noise.std() == pytest.approx(theoretical, rel=0.05)
    assert abs(noise.mean()) < 5 * theoretical / math.sqrt(DRAWS)


@pytest.mark.parametrize("calibration,epsilon", [("analytic", 1.0), ("analytic", 4.0), ("classic", 0.5)])
def test_gaussian_noise_has_the_calibrated_standard_deviation(calibration, epsilon):
    sigma = gaussian_sigma(3.0, epsilon, 1e-6, calibration=calibration)
    noise = gaussian_noise(3.0, epsilon, 1e-6, (400, 500), np.random.default_rng(SEED), calibration=calibration)
    assert noise.shape == (400, 500)
    assert noise.std() == pytest.approx(sigma, rel=0.05)
    assert abs(noise.mean()) < 5 * sigma / math.sqrt(noise.size)


@pytest.mark.parametrize("epsilon,delta", [(0.1, 1e-5), (1.0, 1e-5), (1.0, 1e-9), (5.0, 1e-6), (20.0, 1e-12)])
def test_the_analytic_sigma_is_the_smallest_that_meets_the_privacy_condition(epsilon, delta):
    sigma = gaussian_sigma(1.0, epsilon, delta)
    assert gaussian_delta(1.0, epsilon, sigma) <= delta
    assert gaussian_delta(1.0, epsilon, sigma * (1 - 1e-6)) > delta


def test_the_analytic_sigma_scales_with_sensitivity():
    assert gaussian_sigma(7.0, 0.8, 1e-5) == pytest.approx(7.0 * gaussian_sigma(1.0, 0.8, 1e-5), rel=1e-9)


@pytest.mark.parametrize("epsilon", [0.05, 0.3, 0.9])
def test_the_analytic_sigma_never_exceeds_the_classic_sigma(epsilon):
    assert gaussian_sigma(1.0, epsilon, 1e-5) < gaussian_sigma(1.0, epsilon, 1e-5, calibration="classic")


def test_the_classic_sigma_follows_dwork_and_roth():
    assert gaussian_sigma(2.0, 0.5, 1e-5, calibration="classic") == pytest.approx(
        2.0 * math.sqrt(2 * math.log(1.25 / 1e-5)) / 0.5
    )


def test_the_laplace_scale_is_sensitivity_over_epsilon():
    assert laplace_scale(3.0, 0.25) == 12.0


def test_the_same_seed_gives_the_same_noise_and_no_global_rng_is_touched():
    np.random.seed(0)
    before = np.random.get_state()[1].copy()
    first = laplace_noise(1.0, 1.0, 5, np.random.default_rng(1))
    second = laplace_noise(1.0, 1.0, 5, np.random.default_rng(1))
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(np.random.get_state()[1], before)


@pytest.mark.parametrize("sensitivity", [0, -1.0, math.nan, math.inf, True, "1"])
def test_a_bad_sensitivity_is_rejected(sensitivity):
    with pytest.raises(DPError, match="sensitivity"):
        laplace_noise(sensitivity, 1.0, 3, np.random.default_rng(0))
    with pytest.raises(DPError, match="sensitivity"):
        gaussian_noise(sensitivity, 1.0, 1e-5, 3, np.random.default_rng(0))


@pytest.mark.parametrize("epsilon", [0, -0.5, math.nan, math.inf, None])
def test_a_bad_epsilon_is_rejected(epsilon):
    with pytest.raises(DPError, match="epsilon"):
        laplace_noise(1.0, epsilon, 3, np.random.default_rng(0))
    with pytest.raises(DPError, match="epsilon"):
        gaussian_noise(1.0, epsilon, 1e-5, 3, np.random.default_rng(0))


@pytest.mark.parametrize("delta", [0, 0.0, 1.0, 1.5, -1e-5, math.nan, None])
def test_a_bad_delta_is_rejected(delta):
    with pytest.raises(DPError, match="delta"):
        gaussian_noise(1.0, 1.0, delta, 3, np.random.default_rng(0))


@pytest.mark.parametrize("size", [-1, 2.5, (2, -1), [2, 2], True])
def test_a_bad_size_is_rejected(size):
    with pytest.raises(DPError, match="size"):
        laplace_noise(1.0, 1.0, size, np.random.default_rng(0))


@pytest.mark.parametrize("rng", [None, np.random.RandomState(0), 42])
def test_only_a_numpy_generator_is_accepted(rng):
    with pytest.raises(DPError, match="Generator"):
        laplace_noise(1.0, 1.0, 3, rng)


def test_the_classic_calibration_refuses_epsilon_of_one_or_more():
    with pytest.raises(DPError, match="epsilon < 1"):
        gaussian_sigma(1.0, 1.0, 1e-5, calibration="classic")


def test_an_unknown_calibration_is_rejected():
    with pytest.raises(DPError, match="calibration"):
        gaussian_sigma(1.0, 1.0, 1e-5, calibration="renyi")
