"""Privacy accounting for federated training: the ε a differentially private FedAvg run spends, by the Rényi-DP
accountant of Google's ``dp-accounting`` package. Pure (no I/O).

The mechanism (``privacy.federated.local_update``): each node clips its model change per round to L2 norm C and
adds Gaussian noise of σ = z·C before encryption. Nodes hold disjoint rows, so one record only ever affects its
own node's releases. Between neighbouring datasets (one record replaced) a node's clipped change moves by at most
2C, so each release is a Gaussian mechanism with noise multiplier z/2 relative to its sensitivity; a record's
node releases once per round, so the run is that mechanism composed ``rounds`` times (no subsampling: every node
uses all its rows every round). ``dp-accounting`` converts the composed RDP curve to (ε, δ).

Under differential privacy the standardization round is skipped: nodes scale features by bounds the consumer
gives (``privacy.federated``), so the training releases nothing but the noised updates.
"""

from __future__ import annotations

import math

import dp_accounting
from dp_accounting.rdp import rdp_privacy_accountant

from privacy.dp import DPError
from privacy.federated import DEFAULT_DELTA

SENSITIVITY_FACTOR = 2.0  # a replaced record moves a clipped change by up to 2C


def fedavg_epsilon(noise_multiplier: float, rounds: int, delta: float = DEFAULT_DELTA) -> float:
    """Return the ε (at ``delta``) that ``rounds`` rounds of clipped, Gaussian-noised updates spend per record."""
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
    """Return the smallest noise multiplier (to 0.1 %) whose ``rounds`` rounds spend at most ``epsilon``."""
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
