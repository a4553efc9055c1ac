"""Federated training from the consumer's side (联邦学习): drive a federated-learning job round by round.

The SDK keeps the CKKS secret key; each round the nodes compute on their own rows from the global model and
encrypt under the consumer's public context, the exchange adds them, and only here is the sum decrypted into the
next global model: FedAvg (n·θ ‖ n) without differential privacy, DP-FedSGD (noisy clipped gradient sum ‖ noisy
n·C, ``privacy.federated.private_step``) with it. With ``contribution=True`` (differentially private trainings
only) each provider's share is measured by leave-one-out: one more training without that provider, in the order
the exchange fixes, scored on validation rows the consumer holds (log-loss for logistic regression, R² for
linear); a provider whose absence does not hurt gets no share.

    from client.training import train
    result = train(bank, grant_id, assets, features=[...], label="default", validation=(x_val, y_val))
    result.model.predict(x)      result.history      result.contributions      result.plot("curve.png")
"""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from client.sdk import Consumer, JobFailed
from common.vocab import ComputationKind, Phase, RoundStatus
from privacy import federated
from privacy.federated import LOGISTIC, Model, Standardizer, TrainingConfig
from privacy.he import ConsumerKeys

POLL_SECONDS = 0.05


@dataclass
class TrainingResult:
    """A finished federated training."""

    job_id: str
    model: Model
    history: list[dict[str, Any]]  # per training round: round, rows (noisy under DP), providers, dropped, metrics
    contributions: dict[str, float] = field(default_factory=dict)  # provider → share (sums to 1)
    loo_scores: dict[str, float] = field(default_factory=dict)  # provider → validation score without it
    epsilon: float = 0.0

    def plot(self, path: str, title: str | None = None) -> str:
        """Write the training curve (validation metric and loss per round) as a PNG; return the path."""
        from client.plots import training_curve

        return training_curve(self.history, path, title or f"federated training {self.job_id}")


def _score(model: Model, validation: tuple[np.ndarray, np.ndarray] | None) -> dict[str, float]:
    if validation is None:
        return {}
    x, y = validation
    if model.task == LOGISTIC:
        return {"accuracy": federated.accuracy(model, x, y), "loss": federated.log_loss(model, x, y)}
    residual = float(np.mean((np.asarray(y) - model.predict(x)) ** 2))
    return {"r2": federated.r2(model, x, y), "loss": residual}


class _Run:
    """One job's rounds: ask, wait, decrypt."""

    def __init__(self, consumer: Consumer, keys: ConsumerKeys, job_id: str, timeout: float) -> None:
        self.consumer, self.keys, self.job_id, self.timeout = consumer, keys, job_id, timeout

    def round(self, phase: str, theta: np.ndarray | None, standardizer: Standardizer | None,
              providers: Sequence[str] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        body = {"phase": phase, "theta": None if theta is None else [float(v) for v in theta],
                "standardizer": None if standardizer is None else standardizer.to_json(),
                "providers": None if providers is None else sorted(providers)}
        started = self.consumer.exchange.post(f"/jobs/{self.job_id}/rounds", body)
        number, deadline = started["number"], time.monotonic() + self.timeout
        while True:
            row = self.consumer.exchange.get(f"/jobs/{self.job_id}/rounds/{number}")
            if row["status"] == RoundStatus.COMPLETED:
                return self.keys.decrypt(base64.b64decode(row["result"])), row
            if row["status"] == RoundStatus.FAILED:
                raise JobFailed(row["error"])
            if time.monotonic() > deadline:
                raise JobFailed(f"round {number} of job {self.job_id} is still running after {self.timeout:.0f} s")
            time.sleep(POLL_SECONDS)


def train(consumer: Consumer, grant: str, assets: Sequence[str], *, features: Sequence[str], label: str,
          config: TrainingConfig = TrainingConfig(), rows: int, validation: tuple[np.ndarray, np.ndarray] | None = None,
          bounds: Sequence[tuple[float, float]] | None = None, min_quorum: int | None = None,
          contribution: bool = False, group_size: int | None = None, timeout: float = 600,
          progress: Callable[[dict[str, Any]], None] | None = None) -> TrainingResult:
    """Train a linear or logistic model over the assets' nodes under a grant, and return it with its history.

    ``rows`` is the quota the job reserves; ``bounds`` ([low, high] per feature) standardize instead of a moments
    round, and are required when the config adds noise (differential privacy: the exchange charges the grant the ε
    the RDP accountant computes, and refuses the job before it starts if the grant's budget would be exceeded).
    ``progress`` is called after every round.
    """
    if contribution and validation is None:
        raise ValueError("contributions are measured on validation rows the consumer holds: pass validation=(x, y)")
    if contribution and not config.private:
        raise ValueError("contributions by leave-one-out need a differentially private training (clip and "
                         "noise_multiplier): without noise, two subsets' sums difference to one provider's update")
    keys = ConsumerKeys()
    if group_size is None:  # each node's update is a group: at least the grant's minimum
        group_size = consumer.exchange.get(f"/grants/{grant}")["terms"]["min_group_size"]
    params: dict[str, Any] = {"features": list(features), "label": label, "training": config.to_json(),
                              "contribution": contribution}
    if bounds is not None:
        params["bounds"] = [[float(low), float(high)] for low, high in bounds]
    if min_quorum is not None:
        params["min_quorum"] = min_quorum
    job = consumer.exchange.post("/jobs", {
        "grant": grant, "assets": list(assets), "computation_kind": ComputationKind.FEDERATED_LEARNING, "params": params,
        "context": base64.b64encode(keys.public_context()).decode(), "rows": rows, "group_size": group_size,
        "result_cells": len(features) + 1})
    run = _Run(consumer, keys, job["id"], timeout)
    if bounds is not None:
        standardizer = Standardizer.from_bounds(bounds)
    else:
        summed, _ = run.round(Phase.MOMENTS, None, None)
        standardizer = Standardizer.from_moments(summed)
    history: list[dict[str, Any]] = []
    model, providers = _training(run, config, standardizer, None, validation, history, progress)
    result = TrainingResult(job["id"], model, history, epsilon=job["epsilon"])
    if contribution:
        full = _headline(_score(model, validation))
        for left_out in providers:  # the exchange's order: sorted, one training each
            others = [p for p in providers if p != left_out]
            without, _ = _training(run, config, standardizer, others, validation, None, progress)
            result.loo_scores[left_out] = _headline(_score(without, validation))
        result.contributions = shares({p: full - s for p, s in result.loo_scores.items()})
    digest = hashlib.sha256(np.asarray(model.theta, dtype=np.float64).tobytes()).hexdigest()
    consumer.exchange.post(f"/jobs/{job['id']}/finish", {
        "model_sha256": digest, "metrics": [report_row(h) for h in history],
        "contributions": result.contributions})
    return result


def _training(run: _Run, config: TrainingConfig, standardizer: Standardizer, providers: Sequence[str] | None,
              validation, history: list | None, progress) -> tuple[Model, list[str]]:
    """Run one training's rounds; return the model and the providers its rounds summed over."""
    theta = federated.initial_theta(standardizer.mean.size)
    summed_over: list[str] = []
    for number in range(config.rounds):
        summed, row = run.round(Phase.TRAIN, theta, standardizer, providers)
        if config.private:
            theta, noisy_rows = federated.private_step(theta, summed, config)
            rows = int(round(noisy_rows))
        else:
            theta, rows = federated.decode(summed)
        model = Model(config.task, theta, standardizer)
        summed_over = sorted(set(summed_over) | set(row["providers"]))
        entry = {"round": row["number"], "training_round": number + 1, "rows": rows,
                 "providers": row["contributors"], "dropped": [d["provider"] for d in row["dropped"]],
                 "leave_one_out": providers is not None, "metrics": _score(model, validation)}
        if history is not None:
            history.append(entry)
        if progress is not None:
            progress(entry)
    return Model(config.task, theta, standardizer), summed_over


def report_row(entry: dict[str, Any]) -> dict[str, Any]:
    """Return a round of the history as the exchange keeps it (flat: numbers and flags)."""
    return {"round": entry["round"], "training_round": entry["training_round"], "rows": entry["rows"],
            "leave_one_out": entry["leave_one_out"], **entry["metrics"]}


def history_of(report: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the history form of the rounds the exchange keeps (what ``client.plots.training_curve`` draws)."""
    flat = ("round", "training_round", "rows", "leave_one_out")
    return [{**{k: row.get(k) for k in flat}, "metrics": {k: v for k, v in row.items() if k not in flat}}
            for row in report]


def _headline(scores: dict[str, float]) -> float:
    """Return the score contributions are measured by, higher is better: the negative validation log-loss
    (logistic: finer than accuracy, which moves in whole rows) or R² (linear)."""
    return scores["r2"] if "r2" in scores else -scores.get("loss", 0.0)


def shares(gains: dict[str, float]) -> dict[str, float]:
    """Return each provider's share from its leave-one-out gain: positive gains normalized to 1; equal shares when
    no provider's absence hurt the model (nobody is paid for making it worse)."""
    positive = {p: max(0.0, g) for p, g in gains.items()}
    total = sum(positive.values())
    if total <= 0:
        return {p: 1 / len(gains) for p in gains} if gains else {}
    return {p: g / total for p, g in positive.items()}
