"""What a node computes for a ticket: pure functions over its mounted datasets, encrypting under the consumer's
public context. Nothing here sees a secret key; nothing returned holds a raw row of a grade ≥ 2 asset."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import replace
from typing import Any, Mapping

import numpy as np

from privacy import aggregation, dp, he, scoring
from provider.datasets import Dataset, DatasetError

HE_STATISTICS, HE_SCORING = "he-statistics", "he-scoring"


class ComputeError(ValueError):
    """The parameters of a job are not something this node can compute."""


def _plan(params: Mapping[str, Any], obligations: Mapping[str, Any]) -> aggregation.StatisticsPlan:
    try:
        plan = aggregation.StatisticsPlan.from_dict(params["plan"])
    except (KeyError, TypeError, aggregation.AggregationError) as exc:
        raise ComputeError(f"params.plan is not a statistics plan: {exc}") from exc
    # The grant's minimum group size binds even if the consumer asked for less.
    required = int(obligations.get("min-group-size", 0))
    return replace(plan, min_group_size=max(plan.min_group_size, required))


def _bounds(plan: aggregation.StatisticsPlan, params: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    try:
        bounds = {c: (float(params["bounds"][c][0]), float(params["bounds"][c][1])) for c in plan.columns}
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ComputeError("differential privacy needs params.bounds: [low, high] for every planned column") from exc
    if any(not low < high for low, high in bounds.values()):
        raise ComputeError("every bound must be [low, high] with low < high")
    return bounds


def sensitivity(plan: aggregation.StatisticsPlan, bounds: Mapping[str, tuple[float, float]]) -> float:
    """Return the L1 sensitivity of the partial vector to adding or removing one row, values clipped to bounds.

    One row moves the count by 1, each column's Σ(x−K) by at most a = max|bound − K| and Σ(x−K)² by a², one
    histogram bin by 1, and one group's count by 1 and its sums by a.
    """
    reach = {c: max(abs(low - plan.shift(c)), abs(high - plan.shift(c))) for c, (low, high) in bounds.items()}
    total = 1.0 + sum(a + a * a for a in reach.values())
    if plan.histogram is not None:
        total += 1.0
    if plan.group_by is not None:
        total += 1.0 + sum(reach.values())
    return total


def statistics(datasets: list[Dataset], params: Mapping[str, Any], obligations: Mapping[str, Any],
               context: bytes, rng: np.random.Generator | None = None) -> tuple[bytes, int]:
    """Return the encrypted partial aggregates of the node's datasets and the number of rows read.

    When the grant obliges differential privacy (``dp-noise``: the job's ε), values are clipped to the plan's
    bounds and Laplace noise calibrated to the vector's L1 sensitivity is added before encryption: the node's
    release is ε-DP for its rows, and nodes hold disjoint rows, so the pooled result is too.
    """
    plan = _plan(params, obligations)
    epsilon = float(obligations.get("dp-noise") or 0.0)
    bounds = _bounds(plan, params) if epsilon > 0 else None
    total, rows = None, 0
    for dataset in datasets:
        table = dict(dataset.columns)
        if bounds is not None:
            for column, (low, high) in bounds.items():
                if column in table:
                    table[column] = np.clip(np.asarray(table[column], dtype=np.float64), low, high)
        try:
            vector = aggregation.partials(plan, table)
        except aggregation.AggregationError as exc:
            raise ComputeError(f"dataset {dataset.mount.name}: {exc}") from exc
        total = vector if total is None else total + vector
        rows += dataset.rows
    total = np.asarray(total, dtype=np.float64)
    if bounds is not None:
        generator = rng if rng is not None else np.random.default_rng()
        total = total + dp.laplace_noise(sensitivity(plan, bounds), epsilon, total.size, generator)
    return he.encrypt_vector(context, total), rows


def weights_of(params: Mapping[str, Any], weights_payload: bytes, asset: str) -> bytes:
    """Return this asset's encrypted weights from the job's payload, checked against the hash the ticket binds.

    The payload maps asset id to base64 encrypted weights (features may be split across providers: each node
    scores its own columns and the exchange adds the partial scores; the bias rides with one part only).
    """
    try:
        encoded = json.loads(weights_payload)[asset]
        expected = params["parts"][asset]["weights_sha256"]
        weights = base64.b64decode(encoded, validate=True)
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise ComputeError(f"no encrypted weights for asset {asset} in the job") from exc
    if hashlib.sha256(weights).hexdigest() != expected:
        raise ComputeError("the encrypted weights differ from the ones the ticket's parameters name")
    return weights


def _exponents(part: Mapping[str, Any], features: list[str], asset: str) -> list[int]:
    exponents = part.get("exponents") if isinstance(part, Mapping) else None
    if (not isinstance(exponents, list) or len(exponents) != len(features)
            or not all(type(s) is int and abs(s) <= scoring.MAX_EXPONENT for s in exponents)):
        raise ComputeError(f"params.parts[{asset}].exponents must be one integer per feature (|s| <= "
                           f"{scoring.MAX_EXPONENT}): the power of two each column is divided by (privacy.scoring)")
    return exponents


def scores(datasets: list[Dataset], params: Mapping[str, Any], weights_payload: bytes,
           context: bytes) -> tuple[bytes, int]:
    """Return encrypted partial scores w·x (+ b) for the rows the consumer names by id (4096 rows a ciphertext).

    Each feature column is divided by 2^s (its exponent in the parameters, chosen by the consumer from the
    feature's range) so every slot lies in [-1, 1], where CKKS's error is small against the score; a value beyond
    that, or not finite, among the requested rows refuses the job naming the feature (``privacy.scoring``).
    """
    if len(datasets) != 1:
        raise ComputeError("encrypted scoring runs over exactly one dataset per node")
    dataset = datasets[0]
    asset, id_column = dataset.mount.asset, dataset.mount.id_column
    try:
        features = [str(f) for f in params["parts"][asset]["features"]]
        ids = [str(i) for i in params["ids"]]
    except (KeyError, TypeError) as exc:
        raise ComputeError("params needs parts[asset].features (column names) and ids (row ids)") from exc
    exponents = _exponents(params["parts"][asset], features, asset)
    weights = weights_of(params, weights_payload, asset)
    if id_column is None:
        raise ComputeError(f"dataset {dataset.mount.name} has no id column to look rows up by")
    try:
        columns = dataset.select([id_column, *features])
    except DatasetError as exc:
        raise ComputeError(str(exc)) from exc
    position = {value: index for index, value in enumerate(columns[id_column])}
    missing = [i for i in ids if i not in position]
    if missing:
        raise ComputeError(f"{len(missing)} requested id(s) are not in dataset {dataset.mount.name}")
    rows = np.array([position[i] for i in ids], dtype=np.int64)
    try:
        matrix = np.column_stack([scoring.scaled_column(name, np.asarray(columns[name], dtype=np.float64)[rows], s)
                                  for name, s in zip(features, exponents)])
    except scoring.ScoringError as exc:
        raise ComputeError(f"asset {asset}: {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise ComputeError(f"asset {asset}: the features must be numeric columns") from exc
    return he.encrypted_dot(context, weights, matrix), len(ids)
