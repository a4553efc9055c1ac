"""What the exchange checks of a job before admitting it, from what it knows itself — before anything is charged.

* The kind: only kinds that something at the exchange runs are admitted (a job of another kind would be charged
  and then stay ``admitted`` for ever); `POST /decisions` still answers questions about any kind.
* The fields: every column the parameters aggregate, filter, group, bin or score is a declared field of every
  asset of the job, and one that is summed or multiplied is numeric; scoring looks rows up by an identifier field.
  (A federated training's features and label are checked with its plan, in ``exchange.federated``.)
* Filtering: a statistics plan filters rows (``row_filter``) and groups them (``group_by``, which is a filter per
  declared category) only on fields every asset declares ``filterable``: the provider opts in per field, so no
  filter singles out one record by its identifier, and no two allowed filters difference out a row on a field
  the provider kept closed. (Histogram bins and aggregated columns need no opt-in: they choose no rows.)
* The sizes: the declared ``result_cells`` and ``rows`` are at least what the parameters imply (statistics: the
  plan's layout; scoring: one cell per id and one row per id at every part; federated: features + 1 cells).
  They bind afterwards: the tickets carry them as limits the nodes enforce.
* Privacy: a statistics job that spends ε has bounds for every aggregated column that make a calibrated release
  (``privacy.release.calibrate``: finite, ordered, and narrow enough for exact sums over the declared rows).

Pure: the caller passes each asset's declared fields; every refusal is an ``InvalidInput`` naming the parameter.
"""

from __future__ import annotations

from typing import Any, Mapping

from common.errors import InvalidInput
from privacy import aggregation, release

HE_STATISTICS, HE_SCORING, FEDERATED = "he-statistics", "he-scoring", "federated-learning"
EXECUTED_KINDS = (HE_STATISTICS, HE_SCORING, FEDERATED)
NUMERIC_TYPES = frozenset({"integer", "number"})
IDENTIFIER_TYPE = "identifier"

Fields = Mapping[str, Mapping[str, str]]  # asset id -> declared field name -> its type
Filterable = Mapping[str, frozenset[str]]  # asset id -> the fields it declares filterable


def check(kind: str, params: Mapping[str, Any], rows: int, result_cells: int, fields: Fields,
          epsilon: float = 0.0, filterable: Filterable | None = None) -> None:
    """Raise ``InvalidInput`` naming each parameter that is not runnable, not declared or understated."""
    if kind not in EXECUTED_KINDS:
        raise InvalidInput(f"no runner executes {kind} jobs", errors={"computation_kind": [
            f"the exchange runs {', '.join(EXECUTED_KINDS)} jobs; ask about {kind} with POST /decisions"]})
    errors: dict[str, list[str]] = {}
    if kind == HE_STATISTICS:
        _statistics(params, rows, result_cells, epsilon, fields, errors, filterable or {})
    elif kind == HE_SCORING:
        _scoring(params, rows, result_cells, fields, errors)
    else:
        _federated(params, result_cells, fields, errors)
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


def _federated(params: Mapping[str, Any], result_cells: int, fields: Fields, errors: dict[str, list[str]]) -> None:
    # The features and label are checked with the training's plan (exchange.federated); the size is checked here.
    features = params.get("features")
    if isinstance(features, list) and result_cells < len(features) + 1:
        errors["result_cells"] = [f"a model of {len(features)} features releases {len(features) + 1} result cells; "
                                  f"the job declares {result_cells}"]
