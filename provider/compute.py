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

from privacy import aggregation, fixedpoint, he, release, scoring
from provider.datasets import Dataset, DatasetError


class ComputeError(ValueError):
    """The parameters of a job are not something this node can compute."""


class BeyondExactRange(ComputeError):
    """A sum of the plan would leave the exact range of encrypted sums (its own problem code: the fix is known)."""


def _plan(params: Mapping[str, Any], obligations: Mapping[str, Any]) -> aggregation.StatisticsPlan:
    try:
        plan = aggregation.StatisticsPlan.from_dict(params["plan"])
    except (KeyError, TypeError, aggregation.AggregationError) as exc:
        raise ComputeError(f"params.plan is not a statistics plan: {exc}") from exc
    # The grant's minimum group size binds even if the consumer asked for less.
    required = int(obligations.get("min-group-size", 0))
    return replace(plan, min_group_size=max(plan.min_group_size, required))


def statistics(datasets: list[Dataset], params: Mapping[str, Any], obligations: Mapping[str, Any],
               context: bytes) -> tuple[bytes, int]:
    """Return the encrypted partial aggregates of the node's datasets (exact fixed-point digits) and rows read.

    When the grant obliges differential privacy (``dp-noise``: the job's ε), the aggregated columns are clipped to
    the plan's bounds after filtering and no cell is refused for its size; the node adds no noise: the exchange
    adds the whole calibrated noise to the encrypted sum (``privacy.release``).
    """
    plan = _plan(params, obligations)
    private = float(obligations.get("dp-noise") or 0.0) > 0
    try:
        bounds = release.checked_bounds(plan, params.get("bounds")) if private else None
    except release.ReleaseError as exc:
        raise ComputeError(str(exc)) from exc
    total, rows = np.zeros(aggregation.layout(plan).size), 0
    for dataset in datasets:
        try:
            total = total + aggregation.partials(plan, dict(dataset.columns), clip=bounds)
        except aggregation.AggregationError as exc:
            raise ComputeError(f"dataset {dataset.mount.name}: {exc}") from exc
        rows += dataset.rows
    try:
        digits = fixedpoint.encode(total)
    except fixedpoint.OutOfRange as exc:
        slot = aggregation.layout(plan).names()[exc.index]
        raise BeyondExactRange(f"{slot} is beyond the exact range of encrypted sums (about 1e43): use coarser units "
                               f"for that column (e.g. thousands) or a shift near its mean") from exc
    return he.encrypt_vector(context, digits), rows


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
