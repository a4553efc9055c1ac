"""Federated training of linear and logistic regression over horizontally partitioned rows. Pure NumPy.

Without differential privacy, FedAvg (the orchestration — tickets, encryption, the exchange's sums — lives elsewhere):

    node      ``moments``: its rows' count, Σx, Σx² per feature (sent encrypted; only the sum is ever decrypted),
              unless the job gives feature ``bounds``, which standardize instead (``Standardizer.from_bounds``)
    consumer  ``Standardizer.from_moments``: the pooled mean and standard deviation, sent back to every node
    node      ``local_update``: a few epochs of gradient descent from the global model on its standardized rows;
              ``encode`` packs n·θ and n into one vector, so that the *sum* over nodes carries FedAvg's weights
    consumer  ``decode``: the new global model Σ nᵢθᵢ / Σ nᵢ from the decrypted sum

With differential privacy, DP-FedSGD with per-example clipping (record-level DP, noise calibrated to the sum):

    node      ``clipped_gradient_sum`` at the global θ on its rows (clipped to the bounds and scaled by them): each
              row's gradient clipped to L2 norm C, summed; ``private_encode`` appends n·C; ``gaussian_noise`` of
              σ = z·C/√q per value (``node_noise_scale``, q the job's quorum) is added before encryption, so a sum
              over any q or more nodes carries at least N(0, (z·C)²): central DP's noise, nobody's to remove
    consumer  ``private_step``: θ ← θ − lr·(G̃/ñ + l2·w) with ñ the noisy row count, decoded from the noisy sum

A model θ is the weights followed by the intercept, on standardized features; ``Model.predict`` takes raw rows.
Nothing here touches a network, a key or a database. DP noise comes only from OpenDP's exact Gaussian sampler;
the generator ``local_update`` takes serves the Flower path's model-level noise (``docs/flower.md``), not pdx's.

    FederatedError          (the whole tree is drawn in ``privacy``)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from privacy import PrivacyError

LOGISTIC, LINEAR = "logistic", "linear"
TASKS = (LOGISTIC, LINEAR)
MIN_STD = 1e-12  # a constant feature is centred, not scaled
DEFAULT_DELTA = 1e-5  # the δ a differentially private training is accounted at unless it names another


class FederatedError(PrivacyError):
    """A training configuration, a partition or an aggregate the federated core cannot use."""


@dataclass(frozen=True)
class TrainingConfig:
    """How a federated training runs (the same on every node)."""

    task: str = LOGISTIC
    rounds: int = 20
    local_epochs: int = 5
    learning_rate: float = 0.5
    l2: float = 1e-3  # applied to the weights, not the intercept
    clip: float | None = None  # DP: L2 bound of one row's gradient (Flower: of a node's model change per round)
    noise_multiplier: float = 0.0  # DP: σ = noise_multiplier × clip on each round's sum over the nodes

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise FederatedError(f"task must be one of {', '.join(TASKS)}, got {self.task!r}")
        if not 1 <= self.rounds <= 10_000 or not 1 <= self.local_epochs <= 1_000:
            raise FederatedError("rounds must be 1–10000 and local_epochs 1–1000")
        if not 0 < self.learning_rate <= 100 or not 0 <= self.l2 <= 100:
            raise FederatedError("learning_rate must be in (0, 100] and l2 in [0, 100]")
        if self.noise_multiplier < 0 or (self.noise_multiplier > 0 and not self.clip):
            raise FederatedError("noise needs a positive clip bound (noise_multiplier × clip is the noise's σ)")
        if self.clip is not None and self.clip <= 0:
            raise FederatedError("clip must be positive")

    @property
    def private(self) -> bool:
        """Whether the training is differentially private (clipped per row, noised before it leaves a node)."""
        return self.noise_multiplier > 0

    def to_json(self) -> dict[str, object]:
        return {"task": self.task, "rounds": self.rounds, "local_epochs": self.local_epochs,
                "learning_rate": self.learning_rate, "l2": self.l2, "clip": self.clip,
                "noise_multiplier": self.noise_multiplier}

    @classmethod
    def from_json(cls, data: dict) -> TrainingConfig:
        try:
            return cls(task=str(data["task"]), rounds=int(data["rounds"]), local_epochs=int(data["local_epochs"]),
                       learning_rate=float(data["learning_rate"]), l2=float(data["l2"]),
                       clip=None if data.get("clip") is None else float(data["clip"]),
                       noise_multiplier=float(data.get("noise_multiplier", 0.0)))
        except (KeyError, TypeError, ValueError) as exc:
            raise FederatedError(f"not a training configuration: {exc!r}") from exc


@dataclass(frozen=True)
class Standardizer:
    """The pooled per-feature mean and standard deviation, from every node's moments."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def from_moments(cls, summed: np.ndarray) -> Standardizer:
        """Return the standardizer from the summed ``moments`` vectors of all nodes."""
        summed = np.asarray(summed, dtype=np.float64)
        if summed.ndim != 1 or summed.size < 3 or (summed.size - 1) % 2:
            raise FederatedError(f"moments are [n, Σx…, Σx²…], got {summed.size} values")
        n, k = summed[0], (summed.size - 1) // 2
        if not n >= 2:
            raise FederatedError(f"standardizing needs at least 2 rows in all, got {n:g}")
        mean = summed[1:1 + k] / n
        variance = np.maximum(summed[1 + k:] / n - mean ** 2, 0.0)
        return cls(mean, np.sqrt(variance))

    @classmethod
    def from_bounds(cls, bounds: Sequence[tuple[float, float]]) -> Standardizer:
        """Return the standardizer that maps each feature's [low, high] onto [−1, 1]: what a differentially private
        training uses, since it releases nothing about the rows (the nodes clip features to the bounds)."""
        pairs = np.asarray(bounds, dtype=np.float64)
        if pairs.ndim != 2 or pairs.shape[1] != 2 or not np.all(np.isfinite(pairs)) or np.any(pairs[:, 0] >= pairs[:, 1]):
            raise FederatedError("bounds are one finite [low, high] pair with low < high per feature")
        return cls((pairs[:, 0] + pairs[:, 1]) / 2, (pairs[:, 1] - pairs[:, 0]) / 2)

    def apply(self, features: np.ndarray) -> np.ndarray:
        """Return the features centred and scaled (a constant feature is only centred)."""
        return (np.asarray(features, dtype=np.float64) - self.mean) / np.where(self.std > MIN_STD, self.std, 1.0)

    def to_json(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_json(cls, data: dict) -> Standardizer:
        try:
            mean, std = np.asarray(data["mean"], dtype=np.float64), np.asarray(data["std"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise FederatedError(f"not a standardizer: {exc!r}") from exc
        if mean.shape != std.shape or mean.ndim != 1 or not np.all(np.isfinite(mean)) or np.any(std < 0):
            raise FederatedError("a standardizer is two equal-length lists: finite means, non-negative stds")
        return cls(mean, std)


@dataclass(frozen=True)
class Model:
    """A trained linear or logistic model: θ on standardized features, and the standardizer."""

    task: str
    theta: np.ndarray
    standardizer: Standardizer

    def decision(self, features: np.ndarray) -> np.ndarray:
        """Return Xθ + b on raw rows (the logit for logistic regression)."""
        return self.standardizer.apply(features) @ self.theta[:-1] + self.theta[-1]

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Return class labels (logistic) or values (linear) for raw rows."""
        score = self.decision(features)
        return (score >= 0).astype(np.int64) if self.task == LOGISTIC else score

    def probability(self, features: np.ndarray) -> np.ndarray:
        """Return P(y = 1) for raw rows (logistic only)."""
        return _sigmoid(self.decision(features))


@dataclass
class RoundLog:
    """What the consumer learns each round: who contributed, how many rows, and the metrics it computes."""

    round: int
    providers: list[str]
    rows: int
    metrics: dict[str, float] = field(default_factory=dict)


def moments(features: np.ndarray) -> np.ndarray:
    """Return a node's [n, Σx per feature, Σx² per feature] (what ``Standardizer.from_moments`` sums)."""
    x = _features(features)
    return np.concatenate([[float(x.shape[0])], x.sum(axis=0), (x * x).sum(axis=0)])


def initial_theta(n_features: int) -> np.ndarray:
    """Return the starting model: zeros (the optimum of a convex loss is reached from anywhere)."""
    return np.zeros(n_features + 1)


def local_update(theta: np.ndarray, features: np.ndarray, labels: np.ndarray, config: TrainingConfig) -> np.ndarray:
    """Return the node's model after ``local_epochs`` of full-batch gradient descent from the global ``theta``.

    ``features`` are already standardized. With ``clip`` the change from ``theta`` is clipped to that L2 norm, and
    with a noise multiplier Gaussian noise of σ = noise_multiplier × clip is added (OpenDP's sampler): the Flower path's
    model-level noise. pdx's own DP training is DP-FedSGD (``clipped_gradient_sum``), never this.
    """
    design, y, theta = _design(theta, features, labels, config.task)
    current = theta.copy()
    penalty = _penalty(current, config.l2)
    for _ in range(config.local_epochs):
        gradient = design.T @ _residual(design @ current, y, config.task) / design.shape[0] + penalty * current
        current = current - config.learning_rate * gradient
    if config.clip is not None:
        current = theta + clip_delta(current - theta, config.clip)
    if config.private:
        current = current + gaussian_noise(current.size, config.noise_multiplier * config.clip)
    return current


def clipped_gradient_sum(theta: np.ndarray, features: np.ndarray, labels: np.ndarray,
                         config: TrainingConfig) -> np.ndarray:
    """Return the sum over rows of each row's loss gradient at ``theta``, clipped to L2 norm ``config.clip``.

    ``features`` are already standardized. One row moves the sum by at most ``clip`` (its clipped gradient): what
    the accountant's sensitivity rests on. The L2 penalty is the consumer's (``private_step``), not in the sum.
    """
    if config.clip is None:
        raise FederatedError("per-row clipping needs a clip bound")
    design, y, theta = _design(theta, features, labels, config.task)
    residual = _residual(design @ theta, y, config.task)
    norms = np.abs(residual) * np.linalg.norm(design, axis=1)
    scale = np.minimum(1.0, config.clip / np.maximum(norms, np.finfo(np.float64).tiny))
    return design.T @ (residual * scale)


def private_encode(gradient_sum: np.ndarray, rows: int, clip: float) -> np.ndarray:
    """Return the vector a node noises and encrypts: its clipped gradient sum followed by n·C (a row moves the
    count by C, as it moves the gradient sum by at most C: one record changes the whole vector by ≤ √2·C in L2)."""
    if rows < 1:
        raise FederatedError("a node with no rows has nothing to contribute")
    return np.concatenate([np.asarray(gradient_sum, dtype=np.float64), [float(rows) * clip]])


def node_noise_scale(config: TrainingConfig, quorum: int) -> float:
    """Return the σ each node adds per value: z·C/√q, so that the sum over any q or more nodes has σ ≥ z·C."""
    if not config.private:
        raise FederatedError("only a differentially private training adds noise")
    if quorum < 2:
        raise FederatedError(f"the quorum a round releases at is at least 2 providers, got {quorum}")
    return config.noise_multiplier * config.clip / math.sqrt(quorum)


def gaussian_noise(size: int, scale: float) -> np.ndarray:
    """Return ``size`` draws of N(0, scale²) from OpenDP's exact Gaussian sampler (OS entropy, nobody's seed)."""
    if not math.isfinite(scale) or scale <= 0:
        raise FederatedError(f"the noise scale must be a positive number, got {scale}")
    from privacy import dp  # OpenDP takes ~1 s to import: only where noise is drawn

    return dp.gaussian_noise(float(scale), size)


def private_step(theta: np.ndarray, summed: np.ndarray, config: TrainingConfig) -> tuple[np.ndarray, float]:
    """Return the next global model θ − lr·(G̃/ñ + l2·w) and the noisy row count ñ (≥ 1) from a round's noisy sum
    of ``private_encode`` vectors."""
    theta, summed = np.asarray(theta, dtype=np.float64), np.asarray(summed, dtype=np.float64)
    if summed.shape != (theta.size + 1,) or not np.all(np.isfinite(summed)):
        raise FederatedError(f"a private round's sum has {theta.size + 1} finite values, got shape {summed.shape}")
    rows = max(1.0, float(summed[-1]) / config.clip)
    gradient = summed[:-1] / rows + _penalty(theta, config.l2) * theta
    return theta - config.learning_rate * gradient, rows


def bounded(features: np.ndarray, bounds: Sequence[tuple[float, float]]) -> np.ndarray:
    """Return the features clipped to their [low, high] bounds and mapped onto [−1, 1] (what nodes train on)."""
    low, high = np.asarray(bounds, dtype=np.float64).T
    return Standardizer.from_bounds(bounds).apply(np.clip(_features(features), low, high))


def clip_delta(delta: np.ndarray, bound: float) -> np.ndarray:
    """Return ``delta`` scaled down to L2 norm ``bound`` if it is longer."""
    norm = float(np.linalg.norm(delta))
    return delta if norm <= bound else delta * (bound / norm)


def encode(theta: np.ndarray, rows: int) -> np.ndarray:
    """Return the vector a node encrypts: n·θ followed by n, so the sum over nodes is FedAvg's numerator and
    denominator."""
    if rows < 1:
        raise FederatedError("a node with no rows has nothing to contribute")
    return np.concatenate([np.asarray(theta, dtype=np.float64) * rows, [float(rows)]])


def decode(summed: np.ndarray) -> tuple[np.ndarray, int]:
    """Return the global model Σ nᵢθᵢ / Σ nᵢ and Σ nᵢ from the decrypted sum of ``encode`` vectors."""
    summed = np.asarray(summed, dtype=np.float64)
    rows = float(summed[-1])
    if not rows >= 0.5:
        raise FederatedError(f"the aggregate counts {rows:g} rows: no node contributed")
    return summed[:-1] / rows, int(round(rows))


def fedavg(updates: Sequence[tuple[np.ndarray, int]]) -> np.ndarray:
    """Return the row-weighted average of (θ, n) pairs: the plain FedAvg step, as ``decode`` of summed ``encode``."""
    if not updates:
        raise FederatedError("no update to average")
    return decode(np.sum([encode(theta, rows) for theta, rows in updates], axis=0))[0]


def train(partitions: Sequence[tuple[np.ndarray, np.ndarray]], config: TrainingConfig, *, bounds: Sequence[tuple[float, float]] | None = None,
          quorum: int | None = None) -> Model:
    """Train in one process over partitions (features, labels), exactly as the nodes and the consumer would with
    plain sums: for tests, benchmarks and as the reference of the encrypted path.

    Standardized by ``bounds`` when given, else by the pooled moments. A private ``config`` runs DP-FedSGD with the
    nodes' noise (bounds required; ``quorum`` defaults to every partition), otherwise FedAvg.
    """
    if bounds is not None:
        standardizer = Standardizer.from_bounds(bounds)
        local = [(bounded(x, bounds), y) for x, y in partitions]
    elif config.private:
        raise FederatedError("a differentially private training standardizes by bounds")
    else:
        standardizer = Standardizer.from_moments(np.sum([moments(x) for x, _ in partitions], axis=0))
        local = [(standardizer.apply(x), y) for x, y in partitions]
    theta = initial_theta(standardizer.mean.size)
    for _ in range(config.rounds):
        if config.private:
            sigma = node_noise_scale(config, quorum or len(local))
            summed = np.sum([private_encode(clipped_gradient_sum(theta, x, y, config), len(y), config.clip)
                             + gaussian_noise(theta.size + 1, sigma) for x, y in local], axis=0)
            theta, _ = private_step(theta, summed, config)
        else:
            theta = fedavg([(local_update(theta, x, y, config), len(y)) for x, y in local])
    return Model(config.task, theta, standardizer)


def accuracy(model: Model, features: np.ndarray, labels: np.ndarray) -> float:
    """Return the share of rows a logistic model classifies right."""
    return float(np.mean(model.predict(features) == np.asarray(labels)))


def r2(model: Model, features: np.ndarray, targets: np.ndarray) -> float:
    """Return the coefficient of determination of a linear model."""
    y = np.asarray(targets, dtype=np.float64)
    residual = float(np.sum((y - model.predict(features)) ** 2))
    total = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - residual / total if total > 0 else 0.0


def log_loss(model: Model, features: np.ndarray, labels: np.ndarray) -> float:
    """Return the mean cross-entropy of a logistic model."""
    p = np.clip(model.probability(features), 1e-12, 1 - 1e-12)
    y = np.asarray(labels, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _features(features: np.ndarray) -> np.ndarray:
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise FederatedError(f"features must be a non-empty 2-D table, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise FederatedError("features must be finite numbers")
    return x


def _design(theta: np.ndarray, features: np.ndarray, labels: np.ndarray,
            task: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the rows with a column of ones, the labels and θ, checked against each other."""
    x, y = _features(features), np.asarray(labels, dtype=np.float64)
    if y.shape != (x.shape[0],):
        raise FederatedError(f"labels must be one per row: {y.shape} for {x.shape[0]} rows")
    if task == LOGISTIC and not np.all((y == 0) | (y == 1)):
        raise FederatedError("logistic regression needs labels 0 or 1")
    theta = np.asarray(theta, dtype=np.float64)
    if theta.shape != (x.shape[1] + 1,):
        raise FederatedError(f"the model has {theta.size} values, the rows {x.shape[1]} features (+ intercept)")
    return np.hstack([x, np.ones((x.shape[0], 1))]), y, theta


def _residual(scores: np.ndarray, y: np.ndarray, task: str) -> np.ndarray:
    return (_sigmoid(scores) if task == LOGISTIC else scores) - y


def _penalty(theta: np.ndarray, l2: float) -> np.ndarray:
    penalty = np.full(np.shape(theta), l2)
    penalty[-1] = 0.0  # the intercept is not penalized
    return penalty


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z)))
