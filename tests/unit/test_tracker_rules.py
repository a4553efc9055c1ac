"""The pure rules against tracker attacks: filters only on filterable fields, the refusal-alert rule, and the
auditor's replay of no-DP statistics and of `grant.alert` entries."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from authorization import alerts
from common.errors import InvalidInput
from jobs import declarations
from ledger.entries import SYSTEM_ACTOR, format_time
from ledger.replay import ReplayError, State
from ledger.replay import grants as replay_grants
from ledger.replay.base import Asset, Participant
from privacy.aggregation import GroupBy, Histogram, StatisticsPlan

FIELDS = {"ast_tax": {"uscc": "identifier", "amount": "number", "industry": "category"}}
OPEN = {"ast_tax": frozenset({"industry", "amount"})}
NOW = datetime(2026, 12, 3, 8, 0, tzinfo=timezone.utc)
POLICY = alerts.Policy(threshold=3, window=timedelta(minutes=10))


def _check(plan: StatisticsPlan, filterable=OPEN) -> None:
    declarations.check("he-statistics", {"plan": plan.to_dict()}, rows=100, result_cells=100, fields=FIELDS,
                       filterable=filterable)


def test_a_filter_on_a_field_its_provider_did_not_open_is_refused_naming_it():
    with pytest.raises(InvalidInput) as refused:
        _check(StatisticsPlan(columns=("amount",), row_filter=(("industry", "==", "retail"), ("uscc", "!=", "913700"))))
    [message] = refused.value.errors["params.plan.row_filter"]
    assert "'uscc'" in message and "ast_tax" in message and "not filterable" in message


def test_a_group_by_on_a_closed_field_is_refused_and_a_histogram_needs_no_opening():
    with pytest.raises(InvalidInput) as refused:
        _check(StatisticsPlan(columns=("amount",), group_by=GroupBy("uscc", ("1", "2"))))
    assert "params.plan.group_by.column" in refused.value.errors
    _check(StatisticsPlan(columns=("amount",), histogram=Histogram("amount", (0, 10, 20)),
                          group_by=GroupBy("industry", ("retail",)), row_filter=(("amount", ">", 3),)))


def test_without_declared_filterable_fields_no_filter_is_allowed():
    with pytest.raises(InvalidInput, match="parameters"):
        _check(StatisticsPlan(columns=("amount",), row_filter=(("industry", "==", "retail"),)), filterable=None)


def test_an_undeclared_field_is_named_once_as_undeclared_not_as_closed():
    with pytest.raises(InvalidInput) as refused:
        _check(StatisticsPlan(columns=("amount",), row_filter=(("nowhere", "==", 1),)))
    assert refused.value.errors["params.plan.row_filter"] == ["asset ast_tax declares no field 'nowhere'"]


def _refusals(*minutes_ago: float) -> list[alerts.Refusal]:
    return [alerts.Refusal(NOW - timedelta(minutes=m), "params.plan.row_filter") for m in minutes_ago]


@pytest.mark.parametrize("refusals, last_alert, counted", [
    (_refusals(1, 2), None, 0),  # below the threshold
    (_refusals(1, 2, 3), None, 3),  # the threshold within the window
    (_refusals(1, 2, 11), None, 0),  # one fell out of the window
    (_refusals(1, 2, 3, 4), NOW - timedelta(minutes=2, seconds=30), 0),  # two were counted by the last alert
    (_refusals(1, 2, 3, 4, 5, 6), NOW - timedelta(minutes=3, seconds=30), 3),  # three new ones since
])
def test_an_alert_is_due_at_the_threshold_of_uncounted_refusals_in_the_window(refusals, last_alert, counted):
    assert len(alerts.due(refusals, last_alert, NOW, POLICY)) == counted


def test_the_alert_body_counts_causes_and_names_refused_jobs():
    refusals = [*_refusals(1, 2), alerts.Refusal(NOW, "node-cannot-compute", "job_1")]
    body = alerts.alert_body(refusals, POLICY)
    assert body["causes"] == {"node-cannot-compute": 1, "params.plan.row_filter": 2} and body["jobs"] == ["job_1"]
    assert body["refusals"] == 3 and body["window_seconds"] == 600 and body["last"] == format_time(NOW)


def _state(*, dp_exception: bool, epsilon: float | None = None) -> State:
    state = State()
    state.assets["ast_tax"] = Asset("prt_tax", "published", 3, ("prt_tax", "tax", 3, (), ()))
    terms = {"valid_from": "2026-01-01T00:00:00+00:00", "valid_until": "2027-01-01T00:00:00+00:00",
             "computation_kinds": ["he-statistics"], "max_jobs": 10, "max_rows": 10_000, "epsilon": epsilon}
    grant = replay_grants.Grant("prt_bank", "scenario", frozenset({"prt_tax"}), None, None, frozenset({"ast_tax"}),
                                True, terms, status="active", regulator_approved=True, dp_exception=dp_exception)
    state.grants["grt_1"] = grant
    return state


def _admitted(epsilon: float = 0.0, obligations: dict | None = None) -> dict:
    return {"type": "job.admitted", "actor": "prt_bank", "time": format_time(NOW),
            "refs": {"grant": ["grt_1"], "job": ["job_1"], "asset": ["ast_tax"]},
            "body": {"computation_kind": "he-statistics", "rows": 10, "epsilon": epsilon,
                     "obligations": obligations or {"min-group-size": 10},
                     "usage": {"jobs": 1, "rows": 10, "epsilon": epsilon}}}


def test_the_auditor_refuses_exact_statistics_on_grade_3_without_the_regulators_exception():
    with pytest.raises(ReplayError, match="no recorded no-DP exception"):
        replay_grants._job_admitted(_state(dp_exception=False), _admitted())
    replay_grants._job_admitted(_state(dp_exception=True), _admitted())
    replay_grants._job_admitted(_state(dp_exception=False, epsilon=1.0),
                                _admitted(0.5, {"min-group-size": 10, "dp-noise": 0.5}))


def test_the_auditor_refuses_a_no_dp_exception_recorded_without_a_reason():
    state = _state(dp_exception=False)
    state.grants["grt_1"].status = "provider-approved"
    state.participants["prt_reg"] = Participant(frozenset({"regulator"}), "active")
    entry = {"type": "grant.regulator_approved", "actor": "prt_reg", "time": format_time(NOW),
             "refs": {"grant": ["grt_1"]}, "body": {"status": "provider-approved", "dp_exception": True,
                                                    "reason": " "}}
    with pytest.raises(ReplayError, match="without a reason"):
        replay_grants._acted(state, entry)


def _alert(*, jobs=(), refusals=3, first=3, actor=SYSTEM_ACTOR, providers=("prt_tax",)) -> dict:
    return {"type": "grant.alert", "actor": actor, "time": format_time(NOW),
            "refs": {"grant": ["grt_1"], "participant": list(providers)},
            "body": {"refusals": refusals, "threshold": 3, "window_seconds": 600,
                     "causes": {"params.plan.row_filter": refusals - len(jobs), "node-cannot-compute": len(jobs)},
                     "jobs": list(jobs), "first": format_time(NOW - timedelta(minutes=first)),
                     "last": format_time(NOW - timedelta(minutes=1))}}


def test_the_auditor_replays_an_alert_and_refuses_a_recount():
    state = _state(dp_exception=True)
    state.grants["grt_1"].refused_jobs.add("job_9")
    replay_grants._alerted(state, _alert(jobs=["job_9"]))
    with pytest.raises(ReplayError, match="counted before"):
        replay_grants._alerted(state, _alert())


@pytest.mark.parametrize("entry, message", [
    (_alert(refusals=2), "threshold"),
    (_alert(jobs=["job_404"]), "no node refused"),
    (_alert(first=20), "window"),
    (_alert(actor="prt_bank"), "not the exchange"),
    (_alert(providers=("prt_tax", "prt_bank")), "exactly its providers"),
])
def test_the_auditor_refuses_an_alert_that_does_not_add_up(entry, message):
    with pytest.raises(ReplayError, match=message):
        replay_grants._alerted(_state(dp_exception=True), entry)
