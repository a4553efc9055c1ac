"""Privacy accounting for federated training: the ε a differentially private training spends, by the Rényi-DP
accountant of Google's ``dp-accounting`` package. Pure (no I/O).

The mechanism (DP-FedSGD, ``privacy.federated``): each round every node sums its rows' gradients, each clipped to
L2 norm C, appends n·C, and adds Gaussian noise of σ = z·C/√q per value (q: the job's quorum); the consumer
decrypts only sums over at least q nodes, which carry noise of σ ≥ z·C per value. Neighbouring datasets differ by
one record added or removed (as for the statistics' DP); it moves its node's gradient sum by at most C and the
count by exactly C, so the released sum by at most √2·C in L2: each round is a Gaussian mechanism with noise
multiplier z/√2 relative to its sensitivity. A record is in every round of every training its provider takes part
in (no subsampling), so a job is that mechanism composed over those releases (``Plan.releases``), and
``dp-accounting`` converts the composed RDP curve to (ε, δ).

Under differential privacy the standardization round is skipped: nodes scale features by bounds the consumer
gives, so the training releases nothing but the noised sums.
"""

from __future__ import annotations

import math

import dp_accounting
from dp_accounting.rdp import rdp_privacy_accountant

from privacy.dp import DPError
from privacy.federated import DEFAULT_DELTA

SENSITIVITY_FACTOR = math.sqrt(2.0)  # one record added or removed moves [ΣG, n·C] by at most √2·C


def fedavg_epsilon(noise_multiplier: float, rounds: int, delta: float = DEFAULT_DELTA) -> float:
    """Return the ε (at ``delta``) that ``rounds`` noised releases of per-row clipped sums spend per record."""
    if not math.isfinite(noise_multiplier) or noise_multiplier <= 0:
        raise DPError(f"the noise multiplier must be > 0, got {noise_multiplier}")
    if not isinstance(rounds, int) or isinstance(rounds, bool) or rounds < 1:
        raise DPError(f"rounds must be a positive integer, got {rounds!r}")
    if not 0 < delta < 1:
        raise DPError(f"delta must lie strictly between 0 and 1, got {delta}")
    accountant = rdp_privacy_accountant.RdpAccountant()
    accountant.compose(dp_accounting.SelfComposedDpEvent(
        dp_accounting.GaussianDpEvent(noise_multiplier / SENSITIVITY_FACTOR), rounds))
    return float(accountant.get_epsilon(delta))


def noise_for_budget(epsilon: float, rounds: int, delta: float = DEFAULT_DELTA) -> float:
    """Return the smallest noise multiplier (to 0.1 %) whose ``rounds`` releases spend at most ``epsilon``."""
    if not math.isfinite(epsilon) or epsilon <= 0:
        raise DPError(f"epsilon must be > 0, got {epsilon}")
    low, high = 1e-3, 1.0
    while fedavg_epsilon(high, rounds, delta) > epsilon:
        low, high = high, high * 2
        if high > 1e6:
            raise DPError(f"no noise multiplier reaches epsilon {epsilon} in {rounds} rounds")
    while (high - low) / high > 1e-3:
        middle = (low + high) / 2
        if fedavg_epsilon(middle, rounds, delta) > epsilon:
            low = middle
        else:
            high = middle
    return high
