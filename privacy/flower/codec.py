"""Exact sums through Flower's SecAgg+: a float vector as fixed-point integers split into limbs. Pure NumPy.

Flower 1.42's SecAgg+ (``SecAggPlusWorkflow`` with ``secaggplus_mod``) is built for averaging model weights: each
node scales its arrays by num_examples / max_weight, clips them to ±clipping_range, quantizes them stochastically
to integers below quantization_range, masks them modulo 2**32; the server unmasks the sum, dequantizes and divides
by the summed weights. Sums of row counts, Σx² of raw features or n·θ are out of its range, and its stochastic
rounding would make the model differ from ``federated.train``.

So every node reports num_examples = 1 with max_weight = 1 (weight exactly 1), and sends integers that survive
quantization unchanged: with clipping_range = quantization_range / 2 the quantizer is the identity plus a shift,
and stochastic rounding of an integer is that integer. A float v becomes q = round(v · 2**FRACTION_BITS), offset
to u = q + 2**(M−1) ≥ 0 (M = limbs × limb_bits) and cut into ``limbs`` digits of ``limb_bits`` bits; each digit d
is sent centred, d − 2**(limb_bits−1). SecAgg+ then yields Σ(centred digits) / N for N nodes; ×N, rounded, gives
each digit position's exact integer sum, and recombining the digits gives Σq exactly, so the decoded sum is the
nodes' values summed with one rounding (to 2**−FRACTION_BITS, ≈ 1e-12) instead of float additions.

Range: the modulus 2**32 must hold N digits of limb_bits bits, so limb_bits = ⌊log2((2**32 − 1) / N)⌋ (30 for 3
nodes, 22 for 1000); values must satisfy |v| < 2**(M − 1 − FRACTION_BITS) ≥ 2**63.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from privacy.flower import CodecError

MODULUS_BITS = 32  # SecAgg+ in Flower 1.42 masks modulo modulus_range = 2**32 (its default, the most its docs allow)
FRACTION_BITS = 40  # fixed-point resolution 2**-40 ≈ 9e-13; values above 2**13 are carried exactly
INTEGER_BITS = 64  # magnitude bits kept above the binary point (|v| < 2**63 at least)
MAX_WEIGHT = 1.0  # SecAgg+ weight scale; every node reports num_examples = 1, so its weight is exactly 1
REPORTED_EXAMPLES = 1


@dataclass(frozen=True)
class LimbCodec:
    """How float vectors travel through SecAgg+ as integers, and how their exact sum comes back."""

    limb_bits: int
    limbs: int
    fraction_bits: int = FRACTION_BITS

    def __post_init__(self) -> None:
        if not 2 <= self.limb_bits <= 30 or self.limbs < 1 or not 0 <= self.fraction_bits <= 64:
            raise CodecError(f"a codec needs 2–30 limb bits, at least one limb and 0–64 fraction bits, got "
                             f"{self.limb_bits}, {self.limbs}, {self.fraction_bits}")

    @classmethod
    def for_nodes(cls, nodes: int) -> LimbCodec:
        """Return the codec whose digit sums over ``nodes`` nodes stay below SecAgg+'s modulus."""
        if nodes < 1:
            raise CodecError("a sum needs at least one node")
        limb_bits = min(30, ((2 ** MODULUS_BITS - 1) // nodes).bit_length() - 1)
        if limb_bits < 2:
            raise CodecError(f"{nodes} nodes overflow SecAgg+'s 2**{MODULUS_BITS} modulus")
        return cls(limb_bits, -(-(INTEGER_BITS + FRACTION_BITS) // limb_bits))

    @property
    def quantization_range(self) -> int:
        """SecAgg+'s ``quantization_range``: one more than the largest digit."""
        return 1 << self.limb_bits

    @property
    def clipping_range(self) -> float:
        """SecAgg+'s ``clipping_range``: half the quantization range, so that quantizing is the identity."""
        return float(1 << (self.limb_bits - 1))

    @property
    def total_bits(self) -> int:
        return self.limbs * self.limb_bits

    def to_config(self) -> dict[str, int]:
        return {"limb-bits": self.limb_bits, "limbs": self.limbs, "fraction-bits": self.fraction_bits}

    @classmethod
    def from_config(cls, config: dict) -> LimbCodec:
        try:
            return cls(int(config["limb-bits"]), int(config["limbs"]), int(config["fraction-bits"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise CodecError(f"not a codec configuration: {exc!r}") from exc

    def encode(self, values: np.ndarray) -> np.ndarray:
        """Return the centred digits of ``values``: a (limbs, len(values)) float64 array of integers."""
        v = np.asarray(values, dtype=np.float64)
        if v.ndim != 1 or not np.all(np.isfinite(v)):
            raise CodecError("the codec carries a one-dimensional vector of finite numbers")
        offset = 1 << (self.total_bits - 1)
        mask, centre = (1 << self.limb_bits) - 1, 1 << (self.limb_bits - 1)
        digits = np.empty((self.limbs, v.size), dtype=np.float64)
        for column, scaled in enumerate(np.rint(np.ldexp(v, self.fraction_bits))):
            q = int(scaled)  # exact: a float64 integer converts to a Python int without rounding
            if not -offset <= q < offset:
                bound = self.total_bits - 1 - self.fraction_bits
                raise CodecError(f"{v[column]:g} exceeds the codec's range (±2**{bound})")
            u = q + offset
            for limb in range(self.limbs):
                digits[limb, column] = ((u >> (limb * self.limb_bits)) & mask) - centre
        return digits

    def decode(self, digit_sums: np.ndarray, nodes: int) -> np.ndarray:
        """Return the sum of the ``nodes`` encoded vectors from the sums of their centred digits."""
        sums = np.asarray(digit_sums, dtype=np.float64)
        if sums.ndim != 2 or sums.shape[0] != self.limbs or nodes < 1:
            raise CodecError(f"expected ({self.limbs}, k) digit sums of at least one node, got {sums.shape}")
        rounded = np.rint(sums)
        if not np.all(np.abs(sums - rounded) <= 1e-3):
            raise CodecError("digit sums are not integers: the aggregate is not a sum of this codec's encodings")
        centre, top = 1 << (self.limb_bits - 1), nodes * ((1 << self.limb_bits) - 1)
        offset = nodes * (1 << (self.total_bits - 1))
        out = np.empty(sums.shape[1], dtype=np.float64)
        for column in range(sums.shape[1]):
            total = 0
            for limb in range(self.limbs):
                digit_sum = int(rounded[limb, column]) + nodes * centre
                if not 0 <= digit_sum <= top:
                    raise CodecError(f"a digit sum of {digit_sum} is impossible for {nodes} nodes")
                total += digit_sum << (limb * self.limb_bits)
            out[column] = (total - offset) / (1 << self.fraction_bits)  # int / int: correctly rounded
        return out

    def decode_mean(self, digit_means: np.ndarray, nodes: int) -> np.ndarray:
        """Return the sum from SecAgg+'s output, the mean of the centred digits over ``nodes`` unit weights."""
        return self.decode(np.asarray(digit_means, dtype=np.float64) * nodes, nodes)
