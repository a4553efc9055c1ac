"""What the exchange checks of a job before admitting it, from what it knows itself — before anything is charged.

* The kind: only kinds that something at the exchange runs are admitted (a job of another kind would be charged
  and then stay ``admitted`` for ever); `POST /decisions` still answers questions about any kind.
* The fields: every column the parameters aggregate, filter, group, bin, score or train on is a declared field of
  every asset of the job, and one that is summed, multiplied or trained on is numeric; scoring looks rows up by an
  identifier field. A federated training's label is numeric or boolean, and 0 or 1 for a logistic training when an
  asset declares its range; its feature bounds lie within the ranges the assets declare (a value beyond a declared
  range does not exist, so a wider bound only dilutes the feature). The rest of a training's plan is checked in
  ``jobs.federated``.
* Filtering: a statistics plan filters rows (``row_filter``) and groups them (``group_by``, which is a filter per
  declared category) only on fields every asset declares ``filterable``: the provider opts in per field, so no
  filter singles out one record by its identifier, and no two allowed filters difference out a row on a field
  the provider kept closed. (Histogram bins and aggregated columns need no opt-in: they choose no rows.)
* The sizes: the declared ``result_cells`` and ``rows`` are at least what the parameters imply (statistics: the
  plan's layout; scoring: one cell per id and one row per id at every part; federated: features + 1 cells).
  They bind afterwards: the tickets carry them as limits the nodes enforce.
* Privacy: a statistics job that spends ε has bounds for every aggregated column that make a calibrated release
  (``privacy.release.calibrate``: finite, ordered, and narrow enough for exact sums over the declared rows).

Pure: the caller passes each asset's declared fields and ranges; every refusal is an ``InvalidInput`` naming the
parameter.
"""

from __future__ import annotations

from typing import Any, Mapping

from common.errors import InvalidInput
from common.vocab import EXECUTED_KINDS, ComputationKind
from privacy import aggregation, release
from privacy.federated import LOGISTIC

NUMERIC_TYPES = frozenset({"integer", "number"})
IDENTIFIER_TYPE = "identifier"
LABEL_TYPES = NUMERIC_TYPES | {"boolean"}
BINARY = (0.0, 1.0)

Fields = Mapping[str, Mapping[str, str]]  # asset id -> declared field name -> its type
Ranges = Mapping[str, Mapping[str, tuple[float, float]]]  # asset id -> field name -> its declared (minimum, maximum)
Filterable = Mapping[str, frozenset[str]]  # asset id -> the fields it declares filterable


def check(kind: str, params: Mapping[str, Any], rows: int, result_cells: int, fields: Fields,
          epsilon: float = 0.0, ranges: Ranges | None = None, filterable: Filterable | None = None) -> None:
    """Raise ``InvalidInput`` naming each parameter that is not runnable, not declared or understated."""
    if kind not in EXECUTED_KINDS:
        raise InvalidInput(f"no runner executes {kind} jobs", errors={"computation_kind": [
            f"the exchange runs {', '.join(EXECUTED_KINDS)} jobs; ask about {kind} with POST /decisions"]})
    errors: dict[str, list[str]] = {}
    if kind == ComputationKind.HE_STATISTICS:
        _statistics(params, rows, result_cells, epsilon, fields, errors, filterable or {})
    elif kind == ComputationKind.HE_SCORING:
        _scoring(params, rows, result_cells, fields, errors)
    else:
        _federated(params, result_cells, fields, ranges or {}, errors)
    if errors:
        raise InvalidInput("the job's parameters or declared sizes do not fit its assets", errors=errors)


def _require(errors: dict[str, list[str]], path: str, fields: Fields, column: Any, *, numeric: bool = False,
             assets: list[str] | None = None) -> None:
    for asset in assets if assets is not None else sorted(fields):
        kind = fields[asset].get(column) if isinstance(column, str) else None
        if kind is None:
            errors.setdefault(path, []).append(f"asset {asset} declares no field {column!r}")
        elif numeric and kind not in NUMERIC_TYPES:
            errors.setdefault(path, []).append(f"field {column!r} of asset {asset} is {kind}, not a number")


def _filterable(errors: dict[str, list[str]], path: str, fields: Fields, filterable: Filterable, column: str) -> None:
    for asset in sorted(fields):
        if column in fields[asset] and column not in filterable.get(asset, frozenset()):
            errors.setdefault(path, []).append(
                f"field {column!r} of asset {asset} is not filterable: its provider did not declare it filterable; "
                f"filter or group on a field the asset declares filterable")


def _statistics(params: Mapping[str, Any], rows: int, result_cells: int, epsilon: float, fields: Fields,
                errors: dict[str, list[str]], filterable: Filterable) -> None:
    try:
        plan = aggregation.StatisticsPlan.from_dict(params["plan"])
    except (KeyError, TypeError, AttributeError, aggregation.AggregationError) as exc:
        errors["params.plan"] = [f"not a statistics plan: {exc}"]
        return
    for column in plan.columns:
        _require(errors, "params.plan.columns", fields, column, numeric=True)
    for condition in plan.row_filter:
        _require(errors, "params.plan.row_filter", fields, condition.column)
        _filterable(errors, "params.plan.row_filter", fields, filterable, condition.column)
    if plan.histogram is not None:
        _require(errors, "params.plan.histogram.column", fields, plan.histogram.column, numeric=True)
    if plan.group_by is not None:
        _require(errors, "params.plan.group_by.column", fields, plan.group_by.column)
        _filterable(errors, "params.plan.group_by.column", fields, filterable, plan.group_by.column)
    cells = aggregation.layout(plan).size
    if result_cells < cells:
        errors["result_cells"] = [f"the plan releases {cells} result cells; the job declares {result_cells}"]
    if epsilon > 0 and not errors:  # bounds and ε must make a calibrated release before anything is charged
        try:
            release.calibrate(plan, params.get("bounds"), epsilon, rows=rows)
        except release.ReleaseError as exc:
            errors[exc.field] = [str(exc)]


def _scoring(params: Mapping[str, Any], rows: int, result_cells: int, fields: Fields,
             errors: dict[str, list[str]]) -> None:
    ids, parts = params.get("ids"), params.get("parts")
    if not isinstance(ids, list) or not ids:
        errors["params.ids"] = ["a non-empty list of the ids of the rows to score"]
    if not isinstance(parts, dict) or set(parts) != set(fields):
        errors["params.parts"] = [f"one part per asset of the job: {', '.join(sorted(fields))}"]
        return
    for asset, part in sorted(parts.items()):
        features = part.get("features") if isinstance(part, dict) else None
        path = f"params.parts.{asset}.features"
        if not isinstance(features, list) or not features:
            errors[path] = ["a non-empty list of the asset's numeric columns"]
            continue
        for feature in features:
            _require(errors, path, fields, feature, numeric=True, assets=[asset])
        if IDENTIFIER_TYPE not in fields[asset].values():
            errors.setdefault("params.ids", []).append(f"asset {asset} declares no identifier field to look rows "
                                                       f"up by")
    if isinstance(ids, list) and ids:
        if result_cells < len(ids):
            errors["result_cells"] = [f"scoring {len(ids)} ids releases {len(ids)} result cells; the job declares "
                                      f"{result_cells}"]
        if rows < len(ids) * len(parts):
            errors["rows"] = [f"each of the {len(parts)} part(s) reads {len(ids)} rows, {len(ids) * len(parts)} in "
                              f"all; the job declares {rows}"]


def _federated(params: Mapping[str, Any], result_cells: int, fields: Fields, ranges: Ranges,
               errors: dict[str, list[str]]) -> None:
    # The shapes (distinct names, the label not a feature, bounds as pairs) are the plan's (jobs.federated).
    features, label, bounds = params.get("features"), params.get("label"), params.get("bounds")
    if isinstance(features, list):
        if result_cells < len(features) + 1:
            errors["result_cells"] = [f"a model of {len(features)} features releases {len(features) + 1} result "
                                      f"cells; the job declares {result_cells}"]
        for feature in features:
            _require(errors, "params.features", fields, feature, numeric=True)
    if isinstance(label, str):
        training = params.get("training")
        logistic = isinstance(training, Mapping) and training.get("task") == LOGISTIC
        _label(errors, fields, ranges, label, logistic)
    if isinstance(features, list) and isinstance(bounds, list) and len(bounds) == len(features):
        for feature, pair in zip(features, bounds):
            if isinstance(feature, str) and _numbers(pair):
                _within(errors, ranges, feature, pair)


def _label(errors: dict[str, list[str]], fields: Fields, ranges: Ranges, label: str, logistic: bool) -> None:
    for asset in sorted(fields):
        kind = fields[asset].get(label)
        declared = ranges.get(asset, {}).get(label)
        if kind is None:
            errors.setdefault("params.label", []).append(f"asset {asset} declares no field {label!r}")
        elif kind not in LABEL_TYPES:
            errors.setdefault("params.label", []).append(f"field {label!r} of asset {asset} is {kind}, not a number "
                                                         f"or a boolean")
        elif logistic and declared is not None and tuple(declared) != BINARY:
            errors.setdefault("params.label", []).append(
                f"field {label!r} of asset {asset} declares values from {declared[0]:g} to {declared[1]:g}; a "
                f"logistic training's label is 0 or 1")


def _numbers(pair: Any) -> bool:
    return (isinstance(pair, list) and len(pair) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in pair))


def _within(errors: dict[str, list[str]], ranges: Ranges, feature: str, pair: list[float]) -> None:
    for asset in sorted(ranges):
        declared = ranges[asset].get(feature)
        if declared is not None and (pair[0] < declared[0] or pair[1] > declared[1]):
            errors.setdefault("params.bounds", []).append(
                f"bounds [{pair[0]:g}, {pair[1]:g}] of feature {feature!r} reach beyond the range asset {asset} "
                f"declares, [{declared[0]:g}, {declared[1]:g}]: no value lies there, and a wider bound only "
                f"shrinks the feature (under differential privacy, against the same noise)")
