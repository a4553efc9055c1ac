"""Differential-privacy noise for released sums and counts: the Laplace and Gaussian mechanisms. Pure NumPy.

Randomness comes only from the ``numpy.random.Generator`` the caller passes (seeded in tests, from
``np.random.default_rng()`` -- OS entropy -- in production); there is no global RNG.

Laplace: ε-DP with scale b = Δ₁/ε, where Δ₁ is the L1 sensitivity of the released vector.

Gaussian: (ε, δ)-DP with Δ₂ the L2 sensitivity. Two calibrations of σ:
  * ``analytic`` (default; Balle & Wang, ICML 2018, Theorem 8): the smallest σ with
    Φ(Δ/(2σ) − εσ/Δ) − e^ε·Φ(−Δ/(2σ) − εσ/Δ) ≤ δ, found by bisection. Exact, valid for every ε > 0, and
    never larger than the classic σ. Rounding in the tails can only overstate the left side, i.e. add noise.
  * ``classic`` (Dwork & Roth 2014, Theorem A.1): σ = Δ·√(2 ln(1.25/δ))/ε, proven only for ε < 1.

These are the mechanisms only; composing them over jobs (the ε budget) is the accountant's business.

    DPError                (the whole tree is drawn in ``privacy``)
"""

from __future__ import annotations

import math

import numpy as np

from privacy import PrivacyError

ANALYTIC, CLASSIC = "analytic", "classic"
BISECTION_STEPS = 200  # far more than float64 needs to close the bracket


class DPError(PrivacyError):
    """A sensitivity, epsilon, delta, size or generator the mechanisms cannot use."""


def laplace_scale(sensitivity: float, epsilon: float) -> float:
    """Return the Laplace scale b = Δ₁/ε for ε-DP."""
    return _positive(sensitivity, "sensitivity") / _positive(epsilon, "epsilon")


def laplace_noise(
    sensitivity: float, epsilon: float, size: int | tuple[int, ...], rng: np.random.Generator
) -> np.ndarray:
    """Return Laplace noise of scale Δ₁/ε (ε-DP for a release of L1 sensitivity Δ₁)."""
    scale = laplace_scale(sensitivity, epsilon)
    return _generator(rng).laplace(0.0, scale, _size(size))


def gaussian_sigma(sensitivity: float, epsilon: float, delta: float, *, calibration: str = ANALYTIC) -> float:
    """Return σ for (ε, δ)-DP Gaussian noise on a release of L2 sensitivity Δ₂."""
    sensitivity = _positive(sensitivity, "sensitivity")
    epsilon = _positive(epsilon, "epsilon")
    delta = _probability(delta)
    if calibration == CLASSIC:
        if epsilon >= 1:
            raise DPError(f"the classic Gaussian calibration holds only for epsilon < 1, got {epsilon}")
        return sensitivity * math.sqrt(2.0 * math.log(1.25 / delta)) / epsilon
    if calibration != ANALYTIC:
        raise DPError(f"unknown calibration {calibration!r}; expected {ANALYTIC!r} or {CLASSIC!r}")
    return _analytic_sigma(sensitivity, epsilon, delta)


def gaussian_noise(
    sensitivity: float,
    epsilon: float,
    delta: float,
    size: int | tuple[int, ...],
    rng: np.random.Generator,
    *,
    calibration: str = ANALYTIC,
) -> np.ndarray:
    """Return Gaussian noise calibrated for (ε, δ)-DP on a release of L2 sensitivity Δ₂."""
    sigma = gaussian_sigma(sensitivity, epsilon, delta, calibration=calibration)
    return _generator(rng).normal(0.0, sigma, _size(size))


def gaussian_delta(sensitivity: float, epsilon: float, sigma: float) -> float:
    """Return the exact δ at which Gaussian noise of σ is (ε, δ)-DP (Balle & Wang, Theorem 8)."""
    ratio = _positive(sensitivity, "sensitivity") / _positive(sigma, "sigma")
    epsilon = _positive(epsilon, "epsilon")
    a, b = ratio / 2.0, epsilon / ratio
    tail = _phi(-a - b)
    try:
        weighted = math.exp(epsilon + math.log(tail)) if tail > 0.0 else 0.0
    except OverflowError:
        return 0.0  # e^ε·Φ(..) exceeds Φ(a − b) ≤ 1 by far: the condition holds trivially
    return _phi(a - b) - weighted


def _analytic_sigma(sensitivity: float, epsilon: float, delta: float) -> float:
    low, high = sensitivity * 1e-6, sensitivity
    while gaussian_delta(sensitivity, epsilon, high) > delta:  # δ(σ) falls as σ grows
        low, high = high, high * 2.0
    for _ in range(BISECTION_STEPS):
        middle = (low + high) / 2.0
        if middle in (low, high):
            break
        if gaussian_delta(sensitivity, epsilon, middle) > delta:
            low = middle
        else:
            high = middle
    return high  # the upper end always satisfies the condition


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _positive(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise DPError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value <= 0.0:
        raise DPError(f"{name} must be a finite number > 0, got {value}")
    return value


def _probability(delta: float) -> float:
    if isinstance(delta, bool) or not isinstance(delta, (int, float, np.integer, np.floating)):
        raise DPError(f"delta must be a number, got {delta!r}")
    if not 0.0 < float(delta) < 1.0:
        raise DPError(f"delta must lie strictly between 0 and 1, got {delta}")
    return float(delta)


def _size(size: int | tuple[int, ...]) -> tuple[int, ...]:
    dims = (size,) if isinstance(size, (int, np.integer)) else size
    if not isinstance(dims, tuple) or any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 0
                                          for d in dims):
        raise DPError(f"size must be a non-negative integer or a tuple of them, got {size!r}")
    return tuple(int(d) for d in dims)


def _generator(rng: np.random.Generator) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise DPError("pass a numpy.random.Generator; the mechanisms never use a global RNG")
    return rng
