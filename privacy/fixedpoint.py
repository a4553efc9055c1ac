"""Exact sums under CKKS: a fixed-point limb codec for the partial vectors nodes encrypt. Pure Python and NumPy.

CKKS adds approximately: a ciphertext decrypts with an absolute error of about 1e-9 plus about 2e-16 × its
largest slot. Float slots of very different sizes in one ciphertext therefore blur each other (a sum of squares of
1e23 beside a count of 1e5 turns the count into noise), and very small slots drown in the 1e-9. This codec takes
magnitude out of CKKS's hands:

    value v  →  V = round(v · 2^FRACTION_BITS), an exact integer (|V| < 2^(LIMB_BITS·LIMBS − 1))
             →  LIMBS balanced digits d_j in [−2^(LIMB_BITS−1), 2^(LIMB_BITS−1)) with V = Σ d_j · 2^(LIMB_BITS·j)

Each slot becomes ``LIMBS`` small integers. Adding the vectors of k nodes adds the digits (|Σ d_j| ≤ k·2^23, far
inside CKKS's exact integer range, so rounding after decryption recovers every digit sum exactly), and decoding
carries them back into Σ V exactly. The only error left is each node's rounding of its own value to 2^−112, i.e.
sums are exact to about 1e-34 absolute for every value between that and 2^151 ≈ 2.9e45; beyond, ``encode``
refuses with ``OutOfRange`` naming the slot, never wraps.

    FixedPointError        (the whole tree is drawn in ``privacy``)
     └── OutOfRange        a value too large (or not finite) for the codec
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from privacy import PrivacyError

LIMB_BITS = 24
LIMBS = 11
FRACTION_BITS = 112
TOTAL_BITS = LIMB_BITS * LIMBS  # 264
LARGEST = 2.0 ** (TOTAL_BITS - FRACTION_BITS - 1)  # |v| must stay below 2^151, with room for k nodes' carries
HEADROOM_BITS = 8  # encoded values stay below LARGEST / 2^8, so the sum of up to 256 vectors still decodes
LIMIT = LARGEST / 2.0**HEADROOM_BITS
MAX_DIGIT_SUM = 2.0**50  # a decrypted digit sum beyond this cannot come from honest vectors
BASE = 1 << LIMB_BITS
HALF = BASE >> 1


class FixedPointError(PrivacyError):
    """Root of every error this module raises."""


class OutOfRange(FixedPointError):
    """A value too large, or not finite, for the codec; ``index`` is its slot."""

    def __init__(self, index: int, value: float) -> None:
        super().__init__(f"slot {index} holds {value!r}, outside the exact range of encrypted sums "
                         f"(|value| < {LIMIT:.3g})")
        self.index = index
        self.value = value


def encoded_size(slots: int) -> int:
    """Return the length of the encoded vector of ``slots`` values."""
    return slots * LIMBS


def encode(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Return the balanced base-2^24 digits of each value at 2^-112, slot after slot (LIMBS digits a slot)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    out = np.zeros(encoded_size(x.size), dtype=np.float64)
    for index, value in enumerate(x.tolist()):
        if not math.isfinite(value) or abs(value) >= LIMIT:
            raise OutOfRange(index, value)
        integer = round(math.ldexp(value, FRACTION_BITS))  # exact: a power-of-two scaling, then an exact round
        for limb in range(LIMBS):
            digit = ((integer + HALF) % BASE) - HALF  # balanced digit; Python's % keeps it exact for negatives
            out[index * LIMBS + limb] = digit
            integer = (integer - digit) >> LIMB_BITS
    return out


def decode(digit_sums: Sequence[float] | np.ndarray, slots: int) -> np.ndarray:
    """Return the summed values from decrypted digit sums (each rounded to the integer it must be)."""
    d = np.asarray(digit_sums, dtype=np.float64).ravel()
    if d.size < encoded_size(slots):
        raise FixedPointError(f"{d.size} digit sums cannot hold {slots} encoded values")
    d = d[: encoded_size(slots)]
    if not np.all(np.isfinite(d)) or np.any(np.abs(d) > MAX_DIGIT_SUM):
        raise FixedPointError("the digit sums are not finite or far too large: the ciphertexts were not made by "
                              "this codec or under this key")
    digits = np.rint(d).astype(np.int64).reshape(slots, LIMBS)
    out = np.empty(slots, dtype=np.float64)
    for index, row in enumerate(digits.tolist()):
        integer = 0
        for limb in reversed(row):
            integer = (integer << LIMB_BITS) + limb
        out[index] = integer / (1 << FRACTION_BITS)  # int / int: the correctly rounded float
    return out
