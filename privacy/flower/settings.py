"""A Flower run's settings: the training configuration and how the sums are taken, as Flower run config. Pure.

Flower run config is flat TOML (``[tool.flwr.app.config]`` in ``app/pyproject.toml``, overridden by
``flwr run --run-config``); TOML has no null, so ``clip = 0.0`` means no clipping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from privacy.federated import FederatedError, TrainingConfig
from privacy.flower import FlowerError

RunConfigValue = bool | int | float | str


@dataclass(frozen=True)
class RunSettings:
    """Everything the ServerApp and the ClientApps read from the run config."""

    training: TrainingConfig = field(default_factory=TrainingConfig)
    output_path: str = ""  # where the ServerApp writes the result JSON (required to run)
    secure_aggregation: bool = True  # SecAgg+; False sends each node's vector in the clear (nodes must allow it)
    final_loss: bool = True  # one more pass for the final model's pooled training loss
    min_nodes: int = 2
    num_shares: int | float = 1.0  # SecAgg+: int = neighbours per node (odd, > 2); float = share of the nodes
    reconstruction_threshold: int | float = 0.67  # SecAgg+: int = shares needed; float = share of num_shares
    stage_timeout: float = 120.0  # seconds to wait for the nodes' replies in each message exchange

    def __post_init__(self) -> None:
        if self.min_nodes < 2 and self.secure_aggregation:
            raise FlowerError("secure aggregation needs at least 2 nodes")
        if self.min_nodes < 1 or self.stage_timeout <= 0:
            raise FlowerError("min_nodes must be ≥ 1 and stage_timeout positive")

    def to_run_config(self) -> dict[str, RunConfigValue]:
        """Return the settings as Flower run config (the keys of ``app/pyproject.toml``)."""
        t = self.training
        return {"task": t.task, "rounds": t.rounds, "local-epochs": t.local_epochs,
                "learning-rate": float(t.learning_rate), "l2": float(t.l2), "clip": float(t.clip or 0.0),
                "noise-multiplier": float(t.noise_multiplier), "output-path": self.output_path,
                "secure-aggregation": self.secure_aggregation, "final-loss": self.final_loss,
                "min-nodes": self.min_nodes, "num-shares": self.num_shares,
                "reconstruction-threshold": self.reconstruction_threshold,
                "stage-timeout": float(self.stage_timeout)}

    @classmethod
    def from_run_config(cls, run_config: Mapping[str, RunConfigValue]) -> RunSettings:
        """Return the settings from a run's config, rejecting missing or ill-typed values."""
        try:
            clip = float(run_config["clip"])
            training = TrainingConfig(
                task=str(run_config["task"]), rounds=int(run_config["rounds"]),
                local_epochs=int(run_config["local-epochs"]), learning_rate=float(run_config["learning-rate"]),
                l2=float(run_config["l2"]), clip=clip if clip > 0 else None,
                noise_multiplier=float(run_config["noise-multiplier"]))
            return cls(training=training, output_path=str(run_config["output-path"]),
                       secure_aggregation=bool(run_config["secure-aggregation"]),
                       final_loss=bool(run_config["final-loss"]), min_nodes=int(run_config["min-nodes"]),
                       num_shares=_int_or_float(run_config["num-shares"]),
                       reconstruction_threshold=_int_or_float(run_config["reconstruction-threshold"]),
                       stage_timeout=float(run_config["stage-timeout"]))
        except FederatedError as exc:
            raise FlowerError(f"the run's training configuration is invalid: {exc}") from exc
        except (KeyError, TypeError, ValueError) as exc:
            raise FlowerError(f"not a pdx Flower run config: {exc!r}") from exc


def _int_or_float(value: RunConfigValue) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FlowerError(f"expected a number, got {value!r}")
    return value
