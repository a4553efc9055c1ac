"""Differential-privacy mechanisms from OpenDP: calibrated scales, exact noise, and the accuracy of what they release.

Every noise value pdx releases is drawn by an OpenDP measurement (``opendp.measurements.make_laplace`` or
``make_gaussian``) invoked on a vector of zeros: OpenDP samples them exactly (no floating-point inverse-CDF
sampler, whose gaps leak; Mironov 2012), integers from the discrete Laplace or Gaussian, floats on a fine grid
whose rounding OpenDP's privacy map accounts for. Scales are calibrated by OpenDP's own privacy maps
(``binary_search_param``), so a released vector of L1 sensitivity Δ at scale ``laplace_scale(Δ, ε)`` is ε-DP as
OpenDP proves it, not as a formula here says.

Accuracy (for confidence intervals, post-processing only — nothing here draws noise):
  * continuous Laplace of scale b: P(|X| > t) = e^(−t/b);
  * discrete Laplace of scale b (P(x) ∝ e^(−|x|/b) on the integers): P(|X| > k) = 2·e^(−(k+1)/b) / (1 + e^(−1/b));
  * the sum of two independent Laplaces of scales b₁ ≠ b₂: P(|X| > t) = (b₁²e^(−t/b₁) − b₂²e^(−t/b₂)) / (b₁² − b₂²).

    DPError                (the whole tree is drawn in ``privacy``)
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from privacy import PrivacyError

BISECTION_STEPS = 200


class DPError(PrivacyError):
    """A sensitivity, epsilon, scale, size or level the mechanisms cannot use."""


@lru_cache(maxsize=1)
def _opendp():  # noqa: ANN202 -- the opendp.prelude module
    # OpenDP takes ~1.5 s to import: only where noise is calibrated or drawn, not at every app start.
    import opendp.prelude as dp_lib

    dp_lib.enable_features("contrib")
    return dp_lib


def _laplace(scale: float, integer: bool):  # noqa: ANN202 -- an OpenDP Measurement
    dp_lib = _opendp()
    atom = dp_lib.atom_domain(T=int) if integer else dp_lib.atom_domain(T=float, nan=False)
    metric = dp_lib.l1_distance(T=int) if integer else dp_lib.l1_distance(T=float)
    return dp_lib.m.make_laplace(dp_lib.vector_domain(atom), metric, scale=scale)


def _gaussian(scale: float):  # noqa: ANN202 -- an OpenDP Measurement
    dp_lib = _opendp()
    atom = dp_lib.atom_domain(T=float, nan=False)
    return dp_lib.m.make_gaussian(dp_lib.vector_domain(atom), dp_lib.l2_distance(T=float), scale=scale)


@lru_cache(maxsize=1024)
def laplace_scale(sensitivity: float, epsilon: float, *, integer: bool = False) -> float:
    """Return the smallest Laplace scale OpenDP proves ε-DP for a vector of L1 ``sensitivity`` (integer or float)."""
    sensitivity, epsilon = _positive(sensitivity, "sensitivity"), _positive(epsilon, "epsilon")
    if integer and sensitivity != int(sensitivity):
        raise DPError(f"an integer release needs an integer sensitivity, got {sensitivity}")
    d_in = int(sensitivity) if integer else sensitivity
    dp_lib = _opendp()
    try:
        return float(dp_lib.binary_search_param(lambda s: _laplace(s, integer), d_in=d_in, d_out=epsilon))
    except dp_lib.OpenDPException as exc:
        raise DPError(f"OpenDP cannot calibrate a Laplace scale for sensitivity {sensitivity} at ε={epsilon}") from exc


def laplace_epsilon(sensitivity: float, scale: float, *, integer: bool = False) -> float:
    """Return the ε OpenDP's privacy map gives Laplace noise of ``scale`` on a release of L1 ``sensitivity``."""
    d_in = int(sensitivity) if integer else float(sensitivity)
    return float(_laplace(_positive(scale, "scale"), integer).map(d_in))


def laplace_noise(scale: float, size: int, *, integer: bool = False) -> np.ndarray:
    """Return ``size`` exact draws of (discrete, if ``integer``) Laplace noise of ``scale`` from OpenDP."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise DPError(f"size must be a non-negative integer, got {size!r}")
    measurement = _laplace(_positive(scale, "scale"), integer)
    zeros = [0] * size if integer else [0.0] * size
    return np.asarray(measurement(zeros), dtype=np.float64)


def gaussian_noise(scale: float, size: int) -> np.ndarray:
    """Return ``size`` draws of Gaussian noise of standard deviation ``scale`` from OpenDP's exact sampler."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise DPError(f"size must be a non-negative integer, got {size!r}")
    return np.asarray(_gaussian(_positive(scale, "scale"))([0.0] * size), dtype=np.float64)


# --- accuracy: the half-widths of confidence intervals --------------------------------------------------------


def laplace_halfwidth(scale: float, level: float = 0.95) -> float:
    """Return t with P(|X| ≤ t) = ``level`` for continuous Laplace noise of ``scale``."""
    return _positive(scale, "scale") * math.log(1.0 / (1.0 - _level(level)))


def discrete_laplace_halfwidth(scale: float, level: float = 0.95) -> tuple[int, float]:
    """Return the smallest integer k with P(|X| ≤ k) ≥ ``level`` for discrete Laplace noise, and that coverage."""
    b, level = _positive(scale, "scale"), _level(level)
    tail = 1.0 - level
    # P(|X| > k) = 2 e^{-(k+1)/b} / (1 + e^{-1/b}) ≤ tail  ⇔  k ≥ b·ln(2 / (tail·(1 + e^{-1/b}))) − 1
    k = max(0, math.ceil(b * math.log(2.0 / (tail * (1.0 + math.exp(-1.0 / b)))) - 1.0 - 1e-12))
    return k, 1.0 - _discrete_tail(b, k)


def _discrete_tail(b: float, k: int) -> float:
    return 2.0 * math.exp(-(k + 1) / b) / (1.0 + math.exp(-1.0 / b))


def two_laplace_halfwidth(first: float, second: float, level: float = 0.95) -> float:
    """Return t with P(|X₁ + X₂| ≤ t) = ``level`` for independent Laplaces of scales ``first``, ``second`` ≥ 0."""
    level = _level(level)
    b1, b2 = sorted((abs(float(first)), abs(float(second))), reverse=True)
    if b1 == 0.0:
        return 0.0
    if b2 <= 1e-9 * b1:
        return laplace_halfwidth(b1, level)

    def tail(t: float) -> float:
        if abs(b1 - b2) <= 1e-6 * b1:  # the limit b₁ → b₂: (2b + t)·e^{−t/b} / (2b)
            b = (b1 + b2) / 2.0
            return (2.0 * b + t) * math.exp(-t / b) / (2.0 * b)
        return (b1 * b1 * math.exp(-t / b1) - b2 * b2 * math.exp(-t / b2)) / (b1 * b1 - b2 * b2)

    low, high = 0.0, b1
    while tail(high) > 1.0 - level:
        low, high = high, high * 2.0
    for _ in range(BISECTION_STEPS):
        middle = (low + high) / 2.0
        if middle in (low, high):
            break
        if tail(middle) > 1.0 - level:
            low = middle
        else:
            high = middle
    return high


def _level(level: float) -> float:
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0.0 < float(level) < 1.0:
        raise DPError(f"a confidence level lies strictly between 0 and 1, got {level!r}")
    return float(level)


def _positive(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise DPError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value <= 0.0:
        raise DPError(f"{name} must be a finite number > 0, got {value}")
    return value
