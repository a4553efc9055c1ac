"""The scaling plan of encrypted scoring: every CKKS slot stays in its precise range, every score has a stated error.

Why. A node multiplies its plain column x_j by the ciphertext of the weight w_j. CKKS's error in that product is
absolute: about (the weight ciphertext's error)·|x_j| + |w_j|·(the encoding error of x_j). Unscaled, a feature of
1e12 adds ~1e3 to every score even at weight 0, and the error bears no relation to the size of the score.

The plan (pure, exact). From each feature's range [lo_j, hi_j] (declared on the asset's field, passed by the
consumer, or ``DEFAULT_RANGE``):

    s_j = the least integer with max(|lo_j|, |hi_j|) <= 2^s_j   the node scores x_j·2^-s_j, which lies in [-1, 1],
                                                                 and refuses a value beyond ±2^s_j (``scaled_column``)
    B   = Σ_j |w_j|·2^s_j + |b|                                  the largest |score| the ranges allow
    t   = TARGET_BITS − ⌈log2 B⌉                                 so the scaled score stays within ±2^TARGET_BITS
    W_j = w_j·2^(s_j+t),  b' = b·2^t                             what the consumer encrypts
    score = decrypted·2^-t                                       what the consumer reports, with ``error``

Powers of two are exact in float64, so the plan adds no error of its own. The scaled score fits the CKKS modulus
with room to spare: after the one rescaling of scoring the primes left are 60 + 40 bits at scale 2^40, room for
|values| up to ~2^59; TARGET_BITS = 30 keeps the fresh-encryption error (absolute, ~1e-9 measured) negligible
against the score, while the encoding error grows with |W_j| and so is relative to B whatever t is.

Error bound (``error_bound``; per score, absolute). In the scaled domain, with N the ring degree, Δ = 2^scale_bits
and η = 21 the largest coefficient SEAL's error sampler draws (centred binomial; a clipped Gaussian stops at
6σ = 19.2), for each ciphertext c the node multiplies (every weight, and the bias, which it multiplies by a
plaintext of ones so the whole score shares one rescaling), worst cases, not typical values:

    fresh encryption   N·(2N+1)·η/Δ       v·e + e0 + e1·s with v, s ternary; a slot sums N coefficients
    rescaling          N·(N+1)/(2Δ)       rounding after division by the dropped prime (τ0 + τ1·s, |τ| <= 1/2)
    encoding W_c       1/(2Δ)             its one coefficient rounded by <= 1/2 (a constant vector)
    encoding x_j       |W_c|·N/(2Δ)       every coefficient of the plain column rounded by <= 1/2
    floating point     |W_c|·2^-34        SEAL's encoder and decoder FFTs in float64 (~N·log2 N·2^-53 ≈ 1.2e-11
                                          for N = 8192) and the correction by Δ/q in ``decrypt_scores``

The stated error is the sum times 2^-t. As Σ|W_c| = B·2^t and B·2^t > 2^(TARGET_BITS−1), for N = 8192, Δ = 2^40
and k features that is at most ~3.8e-9·B + (k+1)·4.8e-12·B. Measured over feature magnitudes 1e-9 … 1e13
(tests/unit/test_scoring_precision.py): at most ~2% of the stated error, 2.5e-10 relative to Σ|w_j·x_j| + |b|. A score is accurate relative to B, so to the ranges: declare ranges close
to the data.

    ScoringError            (privacy.PrivacyError)
     ├── BadRange           a range that is not finite, empty or reversed; weights that do not fit their features
     └── OutOfRange         a feature value beyond its planned range, or not finite, among the rows to score
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from privacy import PrivacyError

TARGET_BITS = 30
DEFAULT_RANGE = (-1e6, 1e6)  # a feature with no declared range: the node accepts |x| <= 2^20
NOISE_MAX = 21  # the largest |coefficient| SEAL samples for an error polynomial
FLOATING = 2.0**-34  # float64 rounding in encoding, decoding and the rescaling correction, per unit of |W_c|
MAX_EXPONENT = 1100  # beyond float64's range either way: |s| <= 1100 covers every finite range
FIX = "declare its range (minimum and maximum on the asset's field) or pass ranges= to score()"


class ScoringError(PrivacyError):
    """Root of every error this module raises."""


class BadRange(ScoringError):
    """A range that is not finite, empty or reversed; weights that do not fit their features."""


class OutOfRange(ScoringError):
    """A feature value beyond its planned range, or not finite, among the rows to score."""


@dataclass(frozen=True)
class Part:
    """One provider's share of a model: its features, their exponents s_j and the weights to encrypt."""

    features: tuple[str, ...]
    exponents: tuple[int, ...]
    weights: tuple[float, ...]
    bias: float


@dataclass(frozen=True)
class ScoringPlan:
    """Per-part scalings, the global shift t, the score bound B and the stated absolute error of every score."""

    parts: Mapping[str, Part]
    shift: int
    bound: float
    error: float

    def scores(self, decrypted: np.ndarray) -> np.ndarray:
        """Return the model's scores from decrypted scaled scores (a division by 2^t, exact)."""
        return np.ldexp(np.asarray(decrypted, dtype=np.float64), -self.shift)


def exponent(low: float, high: float) -> int:
    """Return the least integer s with max(|low|, |high|) <= 2^s."""
    reach = max(abs(low), abs(high))
    if reach == 0:
        return 0
    mantissa, power = math.frexp(reach)  # reach = mantissa·2^power, 0.5 <= mantissa < 1
    return power - 1 if mantissa == 0.5 else power


def check_range(feature: str, value: object) -> tuple[float, float]:
    """Return a range as (low, high), raising ``BadRange`` naming the feature unless finite with low < high."""
    try:
        low, high = (float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError) as exc:
        raise BadRange(f"the range of feature {feature} must be two numbers (low, high), got {value!r}") from exc
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise BadRange(f"the range of feature {feature} must be finite with low < high, got ({low}, {high})")
    return low, high


def declared_ranges(fields: Iterable[Mapping[str, Any]]) -> dict[str, tuple[float, float]]:
    """Return the ranges an asset's fields declare (``minimum`` and ``maximum``), by field name."""
    return {f["name"]: (float(f["minimum"]), float(f["maximum"])) for f in fields
            if f.get("minimum") is not None and f.get("maximum") is not None}


def resolve_ranges(parts: Mapping[str, Sequence[str]], declared: Mapping[str, Mapping[str, tuple[float, float]]],
                   overrides: Mapping[str, tuple[float, float]]) -> dict[str, dict[str, tuple[float, float]]]:
    """Return asset → feature → range: the consumer's override, else the asset's declaration, else the default."""
    return {asset: {f: overrides.get(f, declared.get(asset, {}).get(f, DEFAULT_RANGE)) for f in features}
            for asset, features in parts.items()}


def plan(parts: Mapping[str, Sequence[str]], weights: Mapping[str, Sequence[float]], bias: float,
         ranges: Mapping[str, Mapping[str, tuple[float, float]]], *, poly_modulus_degree: int = 8192,
         scale_bits: int = 40) -> ScoringPlan:
    """Return the scaling plan of a model split into parts (asset → features), the bias riding with the first."""
    if not parts:
        raise BadRange("a model needs at least one part with features")
    if not math.isfinite(bias):
        raise BadRange(f"the bias must be finite, got {bias}")
    exponents, raw = {}, {}
    for asset, features in parts.items():
        w = np.asarray(weights[asset], dtype=np.float64)
        if w.ndim != 1 or w.size != len(features) or w.size == 0 or not np.all(np.isfinite(w)):
            raise BadRange(f"asset {asset}: expected {len(features)} finite weights, one per feature, "
                           f"got {w.tolist()}")
        exponents[asset] = tuple(exponent(*check_range(f, ranges[asset][f])) for f in features)
        raw[asset] = w
    bound = sum(float(np.sum(np.abs(np.ldexp(raw[a], np.array(exponents[a]))))) for a in parts) + abs(bias)
    if not math.isfinite(bound):
        raise BadRange("weights times ranges exceed float64; " + FIX.replace("declare its range", "use smaller units"))
    shift = TARGET_BITS if bound == 0 else TARGET_BITS - exponent(0.0, bound)
    first = next(iter(parts))
    planned = {asset: Part(tuple(features), exponents[asset],
                           tuple(float(v) for v in np.ldexp(raw[asset], np.array(exponents[asset]) + shift)),
                           math.ldexp(bias, shift) if asset == first else 0.0)
               for asset, features in parts.items()}
    error = error_bound(planned.values(), poly_modulus_degree, scale_bits)
    return ScoringPlan(planned, shift, bound, math.ldexp(error, -shift))


def error_bound(parts: Iterable[Part], poly_modulus_degree: int = 8192, scale_bits: int = 40) -> float:
    """Return the worst-case absolute error of a scaled score (before the division by 2^t; module docstring)."""
    n, delta = poly_modulus_degree, 2.0**scale_bits
    per_ciphertext = (n * (2 * n + 1) * NOISE_MAX + n * (n + 1) / 2 + 0.5) / delta
    encoding = n / (2 * delta) + FLOATING
    total = 0.0
    for part in parts:
        magnitudes = [abs(w) for w in part.weights] + [abs(part.bias)]
        total += len(magnitudes) * per_ciphertext + encoding * sum(magnitudes)
    return total


def scaled_column(feature: str, values: np.ndarray, exponent_: int) -> np.ndarray:
    """Return values·2^-exponent, refusing (``OutOfRange``, naming the feature) non-finite or out-of-range values."""
    x = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise OutOfRange(f"feature {feature} holds missing or non-finite values (NaN, ±inf) in some of the "
                         f"requested rows; leave those ids out of the scoring")
    scaled = np.ldexp(x, -exponent_)
    if np.any(np.abs(scaled) > 1.0):
        raise OutOfRange(f"feature {feature} holds values beyond ±2^{exponent_} (≈{2.0**exponent_:.3g}) in some of "
                         f"the requested rows, outside the range the score was planned for; {FIX}")
    return scaled
