"""A federated training's features, label and bounds are checked against what every asset declares, before anything
is charged: a mistake the first round would otherwise find costs the consumer nothing."""

from __future__ import annotations

import pytest

from common.errors import InvalidInput
from jobs import declarations
from privacy.federated import TrainingConfig

FIELDS = {
    "ast_jinan": {"uscc": "identifier", "capital": "number", "employees": "integer", "defaulted": "integer",
                  "listed": "boolean", "city": "category", "rating": "integer"},
    "ast_qingdao": {"uscc": "identifier", "capital": "number", "employees": "integer", "defaulted": "integer",
                    "listed": "boolean", "city": "category", "rating": "integer"},
}
RANGES = {"ast_jinan": {"defaulted": (0.0, 1.0), "employees": (0.0, 500.0), "rating": (1.0, 5.0)},
          "ast_qingdao": {"employees": (0.0, 800.0)}}


def _check(result_cells: int = 3, task: str = "logistic", ranges=RANGES, **params) -> None:
    body = {"features": ["capital", "employees"], "label": "defaulted",
            "training": {**TrainingConfig(rounds=3).to_json(), "task": task}, **params}
    declarations.check(declarations.FEDERATED, body, 1000, result_cells, FIELDS, ranges=ranges)


def _errors(**kwargs) -> dict[str, list[str]]:
    with pytest.raises(InvalidInput) as refused:
        _check(**kwargs)
    return refused.value.errors


def test_a_training_over_declared_numeric_fields_passes():
    _check()
    _check(bounds=[[0, 1e6], [0, 500]])


def test_a_feature_an_asset_does_not_declare_is_named_with_that_asset():
    errors = _errors(features=["capital", "profit"])
    assert list(errors) == ["params.features"]
    assert "ast_jinan declares no field 'profit'" in " ".join(errors["params.features"])
    assert "ast_qingdao" in " ".join(errors["params.features"])


def test_a_feature_that_is_not_a_number_is_refused():
    errors = _errors(features=["capital", "city"])
    assert "field 'city' of asset ast_jinan is category, not a number" in " ".join(errors["params.features"])


def test_a_label_an_asset_does_not_declare_is_refused():
    errors = _errors(label="bankrupt")
    assert list(errors) == ["params.label"] and "declares no field 'bankrupt'" in " ".join(errors["params.label"])


def test_a_label_that_is_not_a_number_is_refused():
    errors = _errors(label="uscc")
    assert "is identifier" in " ".join(errors["params.label"])


def test_a_boolean_label_is_a_binary_one():
    _check(label="listed")


def test_a_logistic_label_declared_beyond_zero_and_one_is_refused_and_a_linear_one_is_not():
    errors = _errors(label="rating")
    assert "1" in " ".join(errors["params.label"]) and "0 or 1" in " ".join(errors["params.label"])
    _check(label="rating", task="linear")


def test_a_label_without_a_declared_range_may_be_binary():
    _check(ranges={})


@pytest.mark.parametrize("bounds", [[[0, 1e6], [0, 900]], [[0, 1e6], [-1, 500]]])
def test_bounds_beyond_an_assets_declared_range_are_refused(bounds):
    errors = _errors(bounds=bounds)
    assert list(errors) == ["params.bounds"] and "employees" in " ".join(errors["params.bounds"])


def test_bounds_narrower_than_the_declared_range_clip_on_purpose_and_pass():
    _check(bounds=[[0, 1e6], [10, 100]])


def test_malformed_features_or_bounds_are_left_to_the_plan_check():
    _check(features="capital", bounds="wide")  # the plan (jobs.federated) names these; nothing crashes here
    _check(bounds=[[0, 1e6], [True, 5]])


def test_the_result_size_still_counts_the_features_and_the_intercept():
    assert "result_cells" in _errors(result_cells=2)
