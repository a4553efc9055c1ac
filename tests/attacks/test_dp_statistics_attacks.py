"""Attacks on homomorphic statistics by a consumer who probes, through a served exchange and real provider nodes.

Under a grant with a privacy budget: a filter on one identifier is answered whether the record exists or not
(no membership oracle), filters see raw values, and every figure stays in range with its noise scale and a
confidence interval. Without a budget: values from 1e-9 to 1e13 in one plan come back within 1e-6 of numpy,
and a column beyond the exact range is refused by name instead of corrupting the others.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from client.cli import main
from client.sdk import Consumer, JobFailed
from common import keyfiles
from privacy.aggregation import GroupBy, Histogram, StatisticsPlan
from tests.attacks.statistics_scene import statistics_scene

ROWS = 12_000  # per provider
MAGNITUDES = [10.0**e for e in range(-9, 14)]
BUDGET = {"epsilon": 10.0, "max_jobs": 40, "max_rows": 10**7, "max_result_cells": 2000}
EXACT = {"max_jobs": 40, "max_rows": 10**7, "max_result_cells": 2000}


def _enterprises(rng: np.random.Generator, prefix: str, big: int) -> pd.DataFrame:
    amount = rng.uniform(0, 9_000, ROWS)
    amount[:big] = rng.uniform(1.5e5, 9e5, big)  # large filers beyond the bounds a careless consumer sets
    frame = pd.DataFrame({"uscc": [f"{prefix}{i:08d}" for i in range(ROWS)], "amount": amount.round(2),
                          "employees": rng.integers(1, 60, ROWS).astype(float),
                          "industry": rng.choice(["manufacturing", "retail"], ROWS)})
    for exponent, magnitude in zip(range(-9, 14), MAGNITUDES):
        frame[f"m{exponent + 9:02d}"] = magnitude * (1.0 + rng.random(ROWS))
    frame["xl"] = 1e20 * (1.0 + rng.random(ROWS))  # its sum of squares (~1e44) is beyond exact encrypted sums
    return frame


@pytest.fixture(scope="module")
def scene(tmp_path_factory, sqlite_template):
    rng = np.random.default_rng(2026)
    frames = {"tax": _enterprises(rng, "91370", 400), "hr": _enterprises(rng, "91371", 231)}
    with statistics_scene(tmp_path_factory.mktemp("dp-scene"), sqlite_template, frames,
                          {"private": BUDGET, "exact": EXACT},
                          no_dp_exception=("exact",)) as built:
        built["sdk"] = Consumer(built["url"], built["consumer"].token, built["consumer"].key)
        yield built


def _epsilon_used(scene) -> float:
    return scene["sdk"].exchange.get(f"/grants/{scene['grants']['private']}")["usage"]["epsilon_used"]


def test_a_filter_on_one_enterprise_is_answered_whether_it_exists_or_not(scene):
    sdk, grant = scene["sdk"], scene["grants"]["private"]
    answers = []
    for uscc in ("9137000000042", "9137099999999"):  # the first is a real enterprise, the second no one
        plan = StatisticsPlan(columns=("amount",), row_filter=(("uscc", "==", uscc),))
        before = _epsilon_used(scene)
        answers.append(sdk.statistics(grant, scene["assets"], plan, rows=2 * ROWS, epsilon=0.5,
                                      bounds={"amount": (0, 10_000)}))
        assert _epsilon_used(scene) == pytest.approx(before + 0.5)  # charged alike, answered alike
    for answer, truth in zip(answers, (1, 0)):
        scale = answer.noise.loc["count", "noise_scale"]
        assert scale == pytest.approx(6.0, rel=1e-6)  # Δ/ε = 1 / (0.5 / 3 statistics: count, sum, sum of squares)
        assert answer.count >= 0 and abs(answer.count - truth) <= 12 * scale  # fails with probability < 1e-5
        count = answer.intervals.loc["count"]
        assert count["high"] - max(count["low"], answer.count - (count["high"] - answer.count)) > 0


def test_dp_figures_stay_in_range_and_carry_their_noise_scale_and_interval(scene):
    sdk, pooled = scene["sdk"], scene["pooled"]
    plan = StatisticsPlan(columns=("employees",), row_filter=(("amount", "<", 1_000.0),))
    result = sdk.statistics(scene["grants"]["private"], scene["assets"], plan, rows=2 * ROWS, epsilon=0.5,
                            bounds={"employees": (0, 20_000)})
    truth = pooled[pooled["amount"] < 1_000.0]
    count, mean = result.intervals.loc["count"], result.intervals.loc["mean[employees]"]
    scale = result.noise.loc["count", "noise_scale"]
    assert abs(result.count - len(truth)) <= 12 * scale and count["high"] - count["low"] < 40
    assert 0 <= result.columns.loc["employees", "mean"] <= 20_000 and np.isfinite(result.columns.values).all()
    assert mean["low"] <= result.columns.loc["employees", "mean"] <= mean["high"]
    assert set(result.noise.index) == {"count", "sum[employees]", "sumsq[employees]"}
    assert result.noise.loc["count", "sensitivity"] == 1  # the count never inherits the value bounds


def test_under_dp_a_filter_sees_raw_values_even_beyond_the_bounds(scene):
    sdk, pooled = scene["sdk"], scene["pooled"]
    plan = StatisticsPlan(columns=("amount",), row_filter=(("amount", ">", 1e5),))
    result = sdk.statistics(scene["grants"]["private"], scene["assets"], plan, rows=2 * ROWS, epsilon=0.5,
                            bounds={"amount": (0, 1e4)})
    assert int((pooled["amount"] > 1e5).sum()) == 631
    assert abs(result.count - 631) <= 12 * result.noise.loc["count", "noise_scale"]  # 0 before: filters were clipped


def test_the_cli_prints_non_negative_dp_counts_with_their_interval(scene, tmp_path):
    key_file = tmp_path / "bank.pem"
    keyfiles.save(scene["consumer"].key, key_file)
    output = CliRunner().invoke(main, [
        "job", "statistics", "--grant", scene["grants"]["private"], *sum((["--asset", a] for a in scene["assets"]), []),
        "--column", "employees", "--rows", str(2 * ROWS), "--epsilon", "0.25", "--bound", "employees=0:50",
        "--url", scene["url"], "--token", scene["consumer"].token, "--key", str(key_file)])
    assert output.exit_code == 0, output.output
    rows = int(output.stdout.split(": ", 1)[1].split(" rows")[0])
    assert abs(rows - 2 * ROWS) < 200 and "95 % interval" in output.stdout and "noise_scale" in output.stdout


def test_counts_only_plans_under_dp_come_back_in_full(scene):
    plan = StatisticsPlan(histogram=Histogram("employees", (0, 20, 40, 60)),
                          group_by=GroupBy("industry", ("manufacturing", "retail")))
    result = scene["sdk"].statistics(scene["grants"]["private"], scene["assets"], plan, rows=2 * ROWS,
                                     epsilon=0.3)
    assert len(result.columns) == 0 and result.histogram["count"].sum() > 0
    assert (result.groups["count"] >= 0).all()


def test_values_from_1e_9_to_1e13_in_one_plan_are_within_1e_6_of_numpy(scene):
    pooled = scene["pooled"]
    columns = tuple(c for c in pooled.columns if c.startswith("m"))
    plan = StatisticsPlan(columns=columns, group_by=GroupBy("industry", ("manufacturing", "retail")))
    result = scene["sdk"].statistics(scene["grants"]["exact"], scene["assets"], plan, rows=2 * ROWS)
    assert result.count == 2 * ROWS and result.intervals is None
    for column in columns:
        row = result.columns.loc[column]
        assert row["sum"] == pytest.approx(pooled[column].sum(), rel=1e-6), column
        assert row["mean"] == pytest.approx(pooled[column].mean(), rel=1e-6), column
        assert row["variance"] == pytest.approx(pooled[column].var(ddof=0), rel=1e-6), column
        retail = pooled[pooled["industry"] == "retail"][column]
        assert result.groups.loc["retail", f"sum_{column}"] == pytest.approx(retail.sum(), rel=1e-6), column


def test_a_column_beyond_the_exact_range_is_refused_with_the_cause_and_the_fix(scene):
    # the node names the column in its own record; the consumer gets a fixed problem code, never the node's words
    with pytest.raises(JobFailed, match=r"node-beyond-exact-range.*coarser units"):
        scene["sdk"].statistics(scene["grants"]["exact"], scene["assets"], StatisticsPlan(columns=("employees", "xl")),
                                rows=2 * ROWS)
