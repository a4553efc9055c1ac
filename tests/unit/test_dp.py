"""Differential-privacy mechanisms come from OpenDP: scales calibrated by its privacy maps, noise from its exact
samplers, intervals from the exact tails; and no floating-point NumPy Laplace or Gaussian path remains."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest

from privacy import dp
from privacy.dp import DPError

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("app.py", "common", "exchange", "ledger", "privacy", "authorization", "provider", "client")
SYNTHETIC_DATA = {"provider/synthetic.py"}  # makes the demo's fake enterprises: data, not released noise
NOISE_CALLS = {"laplace", "normal", "gauss", "gaussian", "standard_normal", "exponential", "lognormal", "gumbel"}


def test_laplace_scales_are_calibrated_by_opendps_privacy_map():
    scale = dp.laplace_scale(2.0, 0.5)
    assert scale == pytest.approx(4.0, rel=1e-6)
    assert dp.laplace_epsilon(2.0, scale) <= 0.5
    assert dp.laplace_scale(1, 0.25, integer=True) == pytest.approx(4.0, rel=1e-6)


def test_opendp_noise_has_the_laplace_spread_and_discrete_noise_is_integral():
    draws = dp.laplace_noise(3.0, 20_000)
    assert draws.std() == pytest.approx(3.0 * math.sqrt(2), rel=0.05) and abs(draws.mean()) < 0.15
    counts = dp.laplace_noise(2.0, 5_000, integer=True)
    assert np.all(counts == np.round(counts)) and counts.std() == pytest.approx(2.0 * math.sqrt(2), rel=0.08)
    assert dp.gaussian_noise(1.5, 20_000).std() == pytest.approx(1.5, rel=0.05)


def test_interval_half_widths_match_the_exact_tails():
    assert dp.laplace_halfwidth(1.0) == pytest.approx(math.log(20))
    k, coverage = dp.discrete_laplace_halfwidth(1.0)
    assert k == 3 and coverage == pytest.approx(1 - 2 * math.exp(-4) / (1 + math.exp(-1)))
    wide = dp.two_laplace_halfwidth(2.0, 1.0)
    assert dp.laplace_halfwidth(2.0) < wide < dp.laplace_halfwidth(2.0) + dp.laplace_halfwidth(1.0)
    assert dp.two_laplace_halfwidth(1.0, 1.0) == pytest.approx(dp.two_laplace_halfwidth(1.0, 1.0 + 1e-9), rel=1e-6)


def test_empirical_coverage_of_the_two_laplace_interval_is_the_level():
    t = dp.two_laplace_halfwidth(3.0, 1.0, 0.9)
    sums = dp.laplace_noise(3.0, 20_000) + dp.laplace_noise(1.0, 20_000)
    assert np.mean(np.abs(sums) <= t) == pytest.approx(0.9, abs=0.01)


@pytest.mark.parametrize("bad", [0, -1, math.inf, math.nan, "1", True])
def test_unusable_parameters_are_refused(bad):
    with pytest.raises(DPError):
        dp.laplace_scale(bad, 1.0)
    with pytest.raises(DPError):
        dp.laplace_noise(bad, 3)


def test_no_product_code_draws_noise_from_numpy():
    offenders = []
    for top in PRODUCT:
        for path in sorted((ROOT / top).rglob("*.py")) if (ROOT / top).is_dir() else [ROOT / top]:
            relative = path.relative_to(ROOT).as_posix()
            if relative in SYNTHETIC_DATA:
                continue
            for node in ast.walk(ast.parse(path.read_text(), relative)):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                        node.func.attr in NOISE_CALLS:
                    offenders.append(f"{relative}:{node.lineno} .{node.func.attr}(")
    assert offenders == [], "noise must come from OpenDP (privacy.dp): " + ", ".join(offenders)
