"""What a node computes for a federated-learning ticket: one phase of one round, on its own rows only.

    moments  the node's [n, Σx, Σx²] per feature (the consumer learns only the sum over nodes: the pooled mean
             and standard deviation); not run when the job gives bounds (they standardize instead)
    train    without differential privacy, a local update from the global model the round's parameters carry,
             packed as n·θ ‖ n (``privacy.federated.encode``); with it, DP-FedSGD: the sum of its rows' gradients
             at that model, each clipped to C, ‖ n·C, plus OpenDP Gaussian noise of σ = z·C/√q (q: the quorum the
             exchange puts in the round's parameters), so every sum the consumer may decrypt carries σ ≥ z·C

Both are encrypted under the consumer's public CKKS context before they leave the node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from common.vocab import Phase
from privacy import federated, he
from privacy.federated import FederatedError, Standardizer, TrainingConfig
from provider.datasets import Dataset, DatasetError

MOMENTS, TRAIN = Phase.MOMENTS, Phase.TRAIN
PHASES = (MOMENTS, TRAIN)


class FederatedComputeError(ValueError):
    """The round's parameters are not something this node can train on."""


@dataclass(frozen=True)
class RoundSpec:
    """The parameters of one round, as the ticket binds them."""

    features: list[str]
    label: str
    config: TrainingConfig
    bounds: list[tuple[float, float]] | None
    quorum: int | None
    phase: str
    theta: np.ndarray | None
    standardizer: Standardizer | None

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> RoundSpec:
        """Read and check a round's parameters."""
        try:
            features = [str(name) for name in params["features"]]
            label = str(params["label"])
            config = TrainingConfig.from_json(params["training"])
            bounds = params.get("bounds")
            bounds = None if bounds is None else [(float(low), float(high)) for low, high in bounds]
            quorum = None if params.get("min_quorum") is None else int(params["min_quorum"])
            phase = str(params["phase"])
            theta = None if params.get("theta") is None else np.asarray(params["theta"], dtype=np.float64)
            standardizer = (None if params.get("standardizer") is None
                            else Standardizer.from_json(params["standardizer"]))
        except (KeyError, TypeError, ValueError, FederatedError) as exc:
            raise FederatedComputeError(f"params are not a federated round: {exc}") from exc
        if phase not in PHASES:
            raise FederatedComputeError(f"params.phase must be one of {', '.join(PHASES)}")
        if not features or len(set(features)) != len(features) or label in features:
            raise FederatedComputeError("params.features must be distinct columns, without the label")
        if bounds is not None and len(bounds) != len(features):
            raise FederatedComputeError("params.bounds needs one [low, high] per feature")
        return cls(features, label, config, bounds, quorum, phase, theta, standardizer)


def run(datasets: list[Dataset], params: Mapping[str, Any], obligations: Mapping[str, Any],
        context: bytes) -> tuple[bytes, int]:
    """Return this node's encrypted contribution to the round and the number of rows it used."""
    spec = RoundSpec.from_params(params)
    private = float(obligations.get("dp-noise") or 0.0) > 0
    if private and not spec.config.private:
        raise FederatedComputeError("the grant obliges differential privacy: the training needs clip and "
                                    "noise_multiplier")
    if spec.config.private and spec.bounds is None:
        raise FederatedComputeError("a differentially private training standardizes by params.bounds")
    features, labels = _rows(datasets, spec)
    minimum = int(obligations.get("min-group-size", 0))
    if len(labels) < max(minimum, 1):
        raise FederatedComputeError(f"this node holds {len(labels)} rows, fewer than the grant's minimum group "
                                    f"size {minimum}: its update would say too much about them")
    try:
        if spec.phase == MOMENTS:
            if spec.bounds is not None:
                raise FederatedComputeError("a training standardized by bounds has no moments phase")
            vector = federated.moments(features)
        elif spec.config.private:
            vector = _private(spec, features, labels)
        else:
            vector = _train(spec, features, labels)
    except FederatedError as exc:
        raise FederatedComputeError(str(exc)) from exc
    return he.encrypt_vector(context, vector), len(labels)


def _train(spec: RoundSpec, features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    theta = federated.local_update(_global(spec), _standardized(spec, features), labels, spec.config)
    return federated.encode(theta, len(labels))


def _private(spec: RoundSpec, features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    if spec.bounds is None:
        raise FederatedComputeError("a differentially private training standardizes by params.bounds")
    if spec.config.local_epochs != 1:
        raise FederatedComputeError("a differentially private training takes one gradient step per round")
    if spec.quorum is None or spec.quorum < 2:
        raise FederatedComputeError("a differentially private round needs params.min_quorum ≥ 2: the noise is "
                                    "scaled to the fewest providers a released sum may hold")
    theta = _global(spec)
    gradient = federated.clipped_gradient_sum(theta, _standardized(spec, features), labels, spec.config)
    vector = federated.private_encode(gradient, len(labels), spec.config.clip)
    return vector + federated.gaussian_noise(vector.size, federated.node_noise_scale(spec.config, spec.quorum))


def _global(spec: RoundSpec) -> np.ndarray:
    if spec.theta is None:
        raise FederatedComputeError("a training round needs params.theta, the global model")
    return spec.theta


def _standardized(spec: RoundSpec, features: np.ndarray) -> np.ndarray:
    if spec.bounds is not None:
        return federated.bounded(features, spec.bounds)
    if spec.standardizer is None:
        raise FederatedComputeError("a training round needs params.standardizer (or bounds)")
    if spec.standardizer.mean.size != len(spec.features):
        raise FederatedComputeError("the standardizer does not fit the features")
    return spec.standardizer.apply(features)


def _rows(datasets: list[Dataset], spec: RoundSpec) -> tuple[np.ndarray, np.ndarray]:
    tables = []
    for dataset in datasets:
        try:
            columns = dataset.select([*spec.features, spec.label])
        except DatasetError as exc:
            raise FederatedComputeError(str(exc)) from exc
        try:
            matrix = np.column_stack([np.asarray(columns[name], dtype=np.float64)
                                      for name in [*spec.features, spec.label]])
        except ValueError as exc:
            raise FederatedComputeError(f"dataset {dataset.mount.name}: the columns are not numeric") from exc
        tables.append(matrix)
    stacked = np.vstack(tables)
    if not np.all(np.isfinite(stacked)):
        raise FederatedComputeError("the training columns hold missing or non-finite values")
    return stacked[:, :-1], stacked[:, -1]
