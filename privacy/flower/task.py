"""What each pass of a Flower run asks of a node and what the server makes of the sum. Pure NumPy, no Flower.

A run is the passes of ``federated.train``, each one sum over the nodes:

    pass        the node contributes                                  the server gets from the sum
    moments     ``moments(X)``: [n, Σx, Σx²]                          the ``Standardizer``, rows
    train r     ``encode(local_update(θ), n)`` ++ [n · loss(θ)]       θ_r = Σnθᵢ/Σn, rows, loss of θ_{r−1}
    loss        [n · loss(θ), n]                                      the loss of the final θ (optional)

The loss is the pooled training loss of the model the server sent (mean cross-entropy for logistic, mean squared
error for linear regression), so round r's sum also reports θ_{r−1}'s loss at no extra pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from privacy.federated import (
    LOGISTIC,
    Model,
    Standardizer,
    TrainingConfig,
    decode,
    encode,
    local_update,
    log_loss,
    moments,
)
from privacy.flower import FlowerError

MOMENTS, TRAIN, LOSS = "moments", "train", "loss"
PASSES = (MOMENTS, TRAIN, LOSS)


@dataclass(frozen=True)
class Instruction:
    """What the server asks every node for in one pass (the same for all of them)."""

    kind: str
    round: int = 0
    theta: np.ndarray | None = None
    standardizer: Standardizer | None = None

    def __post_init__(self) -> None:
        if self.kind not in PASSES:
            raise FlowerError(f"a pass is one of {', '.join(PASSES)}, got {self.kind!r}")
        if self.kind != MOMENTS and (self.theta is None or self.standardizer is None):
            raise FlowerError(f"a {self.kind} pass needs the global model and the standardizer")

    def arrays(self) -> list[np.ndarray]:
        """Return the arrays sent with the instruction: θ, mean, std (none for the moments pass)."""
        if self.kind == MOMENTS:
            return []
        return [np.asarray(self.theta, dtype=np.float64), self.standardizer.mean, self.standardizer.std]

    @classmethod
    def from_parts(cls, kind: str, round: int, arrays: list[np.ndarray]) -> Instruction:
        """Return the instruction rebuilt from its kind, round and arrays (what a node receives)."""
        if kind == MOMENTS:
            return cls(kind, round)
        if len(arrays) != 3:
            raise FlowerError(f"a {kind} pass carries θ, mean and std, got {len(arrays)} arrays")
        theta, mean, std = (np.asarray(a, dtype=np.float64) for a in arrays)
        return cls(kind, round, theta, Standardizer.from_json({"mean": mean, "std": std}))


def contribution(instruction: Instruction, features: np.ndarray, labels: np.ndarray, config: TrainingConfig
                 ) -> np.ndarray:
    """Return the vector this node adds to the pass's sum, computed over its own rows only."""
    rows = len(labels)
    if instruction.kind == MOMENTS:
        return moments(features)
    model = Model(config.task, instruction.theta, instruction.standardizer)
    weighted_loss = rows * training_loss(model, features, labels)
    if instruction.kind == LOSS:
        return np.array([weighted_loss, float(rows)])
    standardized = instruction.standardizer.apply(features)
    updated = local_update(instruction.theta, standardized, labels, config)
    return np.append(encode(updated, rows), weighted_loss)


def training_loss(model: Model, features: np.ndarray, labels: np.ndarray) -> float:
    """Return the mean cross-entropy (logistic) or mean squared error (linear) of a model on raw rows."""
    if model.task == LOGISTIC:
        return log_loss(model, features, labels)
    return float(np.mean((np.asarray(labels, dtype=np.float64) - model.predict(features)) ** 2))


@dataclass(frozen=True)
class TrainSum:
    """What the server learns from one training round's sum."""

    theta: np.ndarray
    rows: int
    previous_loss: float  # pooled training loss of the model the round started from


def finish_moments(summed: np.ndarray) -> tuple[Standardizer, int]:
    """Return the pooled standardizer and the row count from the summed moments."""
    return Standardizer.from_moments(summed), int(round(float(summed[0])))


def finish_train(summed: np.ndarray) -> TrainSum:
    """Return the new global model, the rows behind it and the previous model's loss from a round's sum."""
    summed = np.asarray(summed, dtype=np.float64)
    theta, rows = decode(summed[:-1])
    return TrainSum(theta, rows, float(summed[-1]) / rows)


def finish_loss(summed: np.ndarray) -> tuple[float, int]:
    """Return the pooled loss and the row count from a loss pass's sum."""
    weighted, rows = (float(v) for v in np.asarray(summed, dtype=np.float64))
    if not rows >= 0.5:
        raise FlowerError("the loss pass counts no rows")
    return weighted / rows, int(round(rows))
