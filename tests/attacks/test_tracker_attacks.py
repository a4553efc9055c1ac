"""Tracker attacks on statistics without differential privacy, through a served exchange and real provider nodes.

Observed: with no ε, a consumer pinned one enterprise's amount to a 1-unit interval by a binary search of ten
filtered statistics jobs (a lone row above the cut is refused by the node's minimum group size, none is answered),
and differencing two allowed filters recovered a row exactly. Now: statistics over a grade-3 asset need an ε unless
the regulator recorded a no-DP exception on the grant; filters name only fields the provider declared filterable;
and a run of refusals on one grant raises an alert that its providers and the regulator see, not its consumer.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from client.http import ApiError
from client.sdk import Consumer, JobFailed
from privacy.aggregation import StatisticsPlan
from tests.attacks.served_scene import send
from tests.attacks.statistics_scene import statistics_scene
from tests.integration.test_audit_grants import _export, _verify

ROWS = 300  # per provider
TARGET, TARGET_AMOUNT = "9137000000007", 717.25  # the one enterprise above 500
TERMS = {"max_jobs": 40, "max_rows": 10**7, "max_result_cells": 100}
FILTERABLE = frozenset({"industry", "amount"})  # not uscc: no filter singles out one enterprise by its code
THRESHOLD = 10


def _enterprises(rng: np.random.Generator, prefix: str) -> pd.DataFrame:
    frame = pd.DataFrame({"uscc": [f"{prefix}{i:08d}" for i in range(ROWS)],
                          "amount": rng.uniform(0, 500, ROWS).round(2),
                          "industry": rng.choice(["manufacturing", "retail"], ROWS)})
    if prefix == "91370":
        frame.loc[frame["uscc"] == TARGET, ["amount", "industry"]] = [TARGET_AMOUNT, "retail"]
    return frame


@pytest.fixture(scope="module")
def scene(tmp_path_factory, sqlite_template):
    rng = np.random.default_rng(11)
    frames = {"tax": _enterprises(rng, "91370"), "hr": _enterprises(rng, "91371")}
    grants = {"plain": TERMS, "excepted": TERMS, "probed": TERMS, "private": {**TERMS, "epsilon": 5.0}}
    with statistics_scene(tmp_path_factory.mktemp("tracker"), sqlite_template, frames, grants,
                          filterable=FILTERABLE, no_dp_exception=("excepted", "probed"),
                          settings={"ALERT_REFUSALS": str(THRESHOLD), "ALERT_WINDOW_SECONDS": "3600"}) as built:
        built["sdk"] = Consumer(built["url"], built["consumer"].token, built["consumer"].key)
        yield built


def _usage(scene, grant: str) -> dict:
    return scene["sdk"].exchange.get(f"/grants/{scene['grants'][grant]}")["usage"]


def _binary_search(scene, grant: str, low: float = 0.0, high: float = 1024.0) -> tuple[float, float, int]:
    """Pin the largest amount by asking whether any row lies above a cut: refused (one lone row) or a count."""
    probes = 0
    while high - low > 1:
        cut = (low + high) / 2
        plan = StatisticsPlan(columns=("amount",), row_filter=(("amount", ">=", cut),))
        probes += 1
        try:
            above = scene["sdk"].statistics(scene["grants"][grant], scene["assets"], plan, rows=2 * ROWS).count > 0
        except JobFailed:
            above = True  # the node refused a group of one row: someone is there
        low, high = (cut, high) if above else (low, cut)
    return low, high, probes


def test_the_binary_search_tracker_on_grade_3_without_epsilon_is_refused_at_admission(scene):
    plan = StatisticsPlan(columns=("amount",), row_filter=(("amount", ">=", 512.0),))
    with pytest.raises(ApiError) as refused:
        scene["sdk"].statistics(scene["grants"]["plain"], scene["assets"], plan, rows=2 * ROWS)
    assert refused.value.status == 403
    reasons = {r["code"]: r["message"] for r in refused.value.problem["reasons"]}
    assert "dp-required-for-grade" in reasons
    assert "grade 3" in reasons["dp-required-for-grade"] and "epsilon" in reasons["dp-required-for-grade"]
    assert "exception" in reasons["dp-required-for-grade"]
    assert _usage(scene, "plain") == {"jobs_used": 0, "rows_used": 0, "epsilon_used": 0.0}


def test_the_tracker_still_works_under_the_regulators_recorded_no_dp_exception(scene):
    low, high, probes = _binary_search(scene, "excepted")
    assert probes == 10 and low <= TARGET_AMOUNT < high and high - low == 1
    lines = _export(scene["app"])
    report = _verify(scene["app"], lines)  # the auditor replays every non-DP statistics job against the exception
    assert report.entry_types["job.admitted"] >= probes
    logged = [json.loads(json.loads(line)["entry"]) for line in lines if '"entry"' in line]
    approved = [e for e in logged if e["type"] == "grant.regulator_approved"
                and e["refs"]["grant"] == [scene["grants"]["excepted"]]]
    assert len(approved) == 1 and approved[0]["body"]["dp_exception"] is True


def test_a_grade_3_grant_with_epsilon_still_runs_filtered_statistics(scene):
    plan = StatisticsPlan(columns=("amount",), row_filter=(("industry", "==", "retail"),))
    result = scene["sdk"].statistics(scene["grants"]["private"], scene["assets"], plan, rows=2 * ROWS, epsilon=0.5,
                                     bounds={"amount": (0, 1000)})
    assert result.intervals is not None and _usage(scene, "private")["epsilon_used"] == pytest.approx(0.5)


def test_differencing_two_filters_is_refused_when_the_field_is_not_filterable(scene):
    sdk, grant = scene["sdk"], scene["grants"]["excepted"]
    retail = StatisticsPlan(columns=("amount",), row_filter=(("industry", "==", "retail"),))
    assert sdk.statistics(grant, scene["assets"], retail, rows=2 * ROWS).count > 0  # the allowed filter
    before = _usage(scene, "excepted")
    all_but_one = StatisticsPlan(columns=("amount",), row_filter=(("industry", "==", "retail"),
                                                                  ("uscc", "!=", TARGET)))
    with pytest.raises(ApiError) as refused:
        sdk.statistics(grant, scene["assets"], all_but_one, rows=2 * ROWS)
    assert refused.value.status == 422
    message = " ".join(refused.value.problem["errors"]["params.plan.row_filter"])
    assert "'uscc'" in message and "not filterable" in message
    assert _usage(scene, "excepted") == before  # nothing charged


def test_ten_refused_probes_on_one_grant_alert_its_providers_and_the_regulator_not_its_consumer(scene):
    sdk, grant = scene["sdk"], scene["grants"]["probed"]
    probe = StatisticsPlan(columns=("amount",), row_filter=(("uscc", "==", TARGET),))
    for _ in range(THRESHOLD):
        with pytest.raises(ApiError) as refused:
            sdk.statistics(grant, scene["assets"], probe, rows=2 * ROWS)
        assert refused.value.status == 422
    url, regulator, provider, consumer = scene["url"], scene["regulator"], scene["providers"][0], scene["consumer"]
    seen = {}
    for who in (regulator, provider):
        response = send(url, "GET", f"/api/v1/alerts?grant={grant}", token=who.token)
        assert response.status_code == 200, response.text
        seen[who.id] = response.json()["items"]
    for items in seen.values():
        assert len(items) == 1 and items[0]["grant_id"] == grant and items[0]["refusals"] == THRESHOLD
        assert items[0]["causes"] == {"params.plan.row_filter": THRESHOLD}
    assert send(url, "GET", "/api/v1/alerts", token=consumer.token).status_code == 403
    lines = _export(scene["app"])
    assert _verify(scene["app"], lines).entry_types["grant.alert"] == 1
    spec = send(url, "GET", "/api/v1/openapi.json").json()
    assert "/api/v1/alerts" in spec["paths"]
