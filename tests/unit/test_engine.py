"""The decision point: default deny, every forbid, forbid beats permit, obligations."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from authorization.engine import COMPUTE, DOWNLOAD, Action, AssetFacts, Context, GrantFacts, PrincipalFacts, decide
from authorization.terms import COMPREHENSIVE, DOMAIN, SCENARIO, Scope, Terms

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
CONSUMER = PrincipalFacts("prt_bank", frozenset({"consumer"}), True)
TERMS = Terms(frozenset({"he-statistics", "aggregate"}), NOW - timedelta(days=1), NOW + timedelta(days=30),
              max_jobs=10, max_rows=1_000_000, min_group_size=10, max_result_cells=100, epsilon=None)
TAX3 = AssetFacts("ast_tax", "prt_tax", True, "tax", 3, True, frozenset({"he-statistics", "he-scoring"}))
LIC2 = AssetFacts("ast_lic", "prt_trn", True, "transport", 2, True, frozenset({"aggregate", "he-statistics"}))
OPEN1 = AssetFacts("ast_flow", "prt_trn", True, "transport", 1, True, frozenset({"download", "aggregate"}))
CORE4 = AssetFacts("ast_pid", "prt_hr", True, "social-security", 4, True, frozenset({"he-statistics"}))
GRANT = GrantFacts("grt_1", "prt_bank", "active", Scope(SCENARIO, assets=frozenset({"ast_tax", "ast_lic", "ast_pid"}),
                                                        scenario="credit", purpose="scoring"), TERMS)
EXCEPTED = replace(GRANT, dp_exception=True)  # the regulator's recorded no-DP exception: exact statistics on grade 3
HE = Action(COMPUTE, "he-statistics")


def _context(grant=GRANT, **overrides):
    values = {"now": NOW, "grant": grant, "rows": 1000, "epsilon": 0.0, "group_size": 10, "result_cells": 20}
    values.update(overrides)
    return Context(**values)


def _codes(decision):
    return {reason.code for reason in decision.forbids}


def test_a_covered_job_is_allowed_with_its_obligations():
    decision = decide(CONSUMER, HE, [TAX3, LIC2], _context(grant=EXCEPTED))
    assert decision.allow and [r.code for r in decision.reasons] == ["grant-covers"]
    assert {o.code: o.value for o in decision.obligations} == {"min-group-size": 10}


def test_default_deny_without_a_grant():
    decision = decide(CONSUMER, HE, [LIC2], _context(grant=None))
    assert not decision.allow and "no-grant" in _codes(decision)


def test_grade_1_open_data_may_be_downloaded_without_a_grant():
    decision = decide(CONSUMER, Action(DOWNLOAD, "download"), [OPEN1], _context(grant=None))
    assert decision.allow and decision.reasons[0].code == "open-data"


@pytest.mark.parametrize("principal, action, assets, context, code", [
    (replace(CONSUMER, active=False), HE, [LIC2], _context(), "principal-inactive"),
    (CONSUMER, HE, [replace(LIC2, published=False)], _context(), "asset-not-published"),
    (CONSUMER, HE, [replace(LIC2, provider_active=False)], _context(), "provider-suspended"),
    (CONSUMER, HE, [CORE4], _context(), "core-data"),
    (CONSUMER, Action(DOWNLOAD, "download"), [LIC2], _context(), "download-restricted"),
    (CONSUMER, Action(COMPUTE, "he-scoring"), [LIC2], _context(), "kind-not-allowed-by-asset"),
    (CONSUMER, Action(COMPUTE, "he-scoring"), [TAX3], _context(), "kind-not-allowed-by-grant"),
    (CONSUMER, Action(COMPUTE, "aggregate"), [replace(TAX3, computation_kinds=frozenset({"aggregate"}))],
     _context(), "privacy-computation-required"),
    (CONSUMER, HE, [replace(LIC2, id="ast_other")], _context(), "asset-outside-scope"),
    (replace(CONSUMER, id="prt_thief"), HE, [LIC2], _context(), "not-grant-holder"),
    (CONSUMER, HE, [LIC2], _context(grant=replace(GRANT, status="suspended")), "grant-not-active"),
    (CONSUMER, HE, [LIC2], _context(now=NOW + timedelta(days=31)), "outside-validity-window"),
    (CONSUMER, HE, [LIC2], _context(now=NOW - timedelta(days=2)), "outside-validity-window"),
    (CONSUMER, HE, [LIC2], _context(grant=replace(GRANT, jobs_used=10)), "jobs-exhausted"),
    (CONSUMER, HE, [LIC2], _context(grant=replace(GRANT, rows_used=999_500)), "rows-exhausted"),
    (CONSUMER, HE, [LIC2], _context(grant=replace(GRANT, terms=replace(TERMS, epsilon=1.0))), "dp-required"),
    (CONSUMER, HE, [LIC2], _context(grant=replace(GRANT, terms=replace(TERMS, epsilon=1.0), epsilon_used=0.9),
                                    epsilon=0.2), "epsilon-exhausted"),
    (CONSUMER, HE, [LIC2], _context(group_size=5), "group-too-small"),
    (CONSUMER, HE, [LIC2], _context(result_cells=101), "too-many-result-cells"),
    (CONSUMER, HE, [], _context(), "no-resources"),
])
def test_every_forbid_denies_and_names_itself(principal, action, assets, context, code):
    decision = decide(principal, action, assets, context)
    assert not decision.allow and code in _codes(decision)
    assert decision.obligations == ()


def test_any_forbid_beats_the_permit_of_the_other_assets():
    decision = decide(CONSUMER, HE, [LIC2, replace(TAX3, published=False)], _context(grant=EXCEPTED))
    assert not decision.allow and _codes(decision) == {"asset-not-published"}


def test_the_regulators_exception_opens_core_data_for_the_scenario():
    assert decide(CONSUMER, HE, [CORE4], _context(grant=replace(EXCEPTED, core_exception=True))).allow


def test_statistics_on_grade_3_without_epsilon_need_the_regulators_no_dp_exception():
    decision = decide(CONSUMER, HE, [TAX3, LIC2], _context())
    assert not decision.allow and _codes(decision) == {"dp-required-for-grade"}
    message = decision.forbids[0].message
    assert "ast_tax is grade 3" in message and "epsilon" in message and "dp_exception" in message


@pytest.mark.parametrize("grant, assets, action, epsilon", [
    (EXCEPTED, [TAX3], HE, 0.0),  # the regulator's recorded exception
    (replace(GRANT, terms=replace(TERMS, epsilon=1.0)), [TAX3], HE, 0.5),  # differential privacy
    (GRANT, [LIC2], HE, 0.0),  # grade 2
    (replace(GRANT, terms=replace(TERMS, computation_kinds=frozenset({"he-scoring"}))), [TAX3],
     Action(COMPUTE, "he-scoring"), 0.0),  # per-record scoring is not an aggregate over chosen rows
])
def test_the_no_dp_rule_spares_dp_the_exception_lower_grades_and_scoring(grant, assets, action, epsilon):
    assert "dp-required-for-grade" not in _codes(decide(CONSUMER, action, assets, _context(grant=grant,
                                                                                           epsilon=epsilon)))


def test_a_grade_3_grant_with_a_budget_still_asks_each_statistics_job_for_epsilon():
    grant = replace(GRANT, terms=replace(TERMS, epsilon=1.0))
    assert _codes(decide(CONSUMER, HE, [TAX3], _context(grant=grant))) == {"dp-required"}


def test_budget_and_price_become_obligations():
    grant = replace(GRANT, terms=replace(TERMS, epsilon=1.0, price_amount=Decimal("200.00")))
    decision = decide(CONSUMER, HE, [LIC2], _context(grant=grant, epsilon=0.25))
    assert {o.code: o.value for o in decision.obligations} == {
        "min-group-size": 10, "dp-noise": 0.25, "charge": {"amount": "200.00", "currency": "CNY"}}


@pytest.mark.parametrize("scope, asset, covered", [
    (Scope(COMPREHENSIVE, providers=frozenset({"prt_tax"}), max_grade=3), TAX3, True),
    (Scope(COMPREHENSIVE, providers=frozenset({"prt_tax"}), max_grade=2), TAX3, False),
    (Scope(COMPREHENSIVE, providers=frozenset({"prt_trn"}), max_grade=3), TAX3, False),
    (Scope(DOMAIN, providers=frozenset({"prt_trn"}), domain="transport", max_grade=2), LIC2, True),
    (Scope(DOMAIN, providers=frozenset({"prt_trn"}), domain="tax", max_grade=2), LIC2, False),
    (Scope(SCENARIO, assets=frozenset({"ast_lic"})), LIC2, True),
    (Scope(SCENARIO, assets=frozenset({"ast_lic"})), TAX3, False),
])
def test_scopes_cover_later_assets_in_scope_but_never_above_the_grade(scope, asset, covered):
    assert scope.covers(asset.id, asset.provider_id, asset.domain, asset.grade) is covered


def test_scoring_under_a_grant_with_a_privacy_budget_is_forbidden_before_anything_is_charged():
    private = replace(GRANT, terms=replace(TERMS, computation_kinds=frozenset({"he-scoring"}), epsilon=1.0))
    decision = decide(CONSUMER, Action(COMPUTE, "he-scoring"), [TAX3], _context(grant=private, epsilon=0.01,
                                                                                 group_size=10))
    assert not decision.allow and _codes(decision) == {"dp-not-applied-by-kind"}
    assert "he-scoring" in decision.forbids[0].message and "ε" in decision.forbids[0].message
    assert decision.obligations == ()


def test_statistics_under_a_grant_with_a_privacy_budget_stay_allowed_with_the_noise_obligation():
    private = replace(GRANT, terms=replace(TERMS, epsilon=1.0))
    decision = decide(CONSUMER, HE, [TAX3], _context(grant=private, epsilon=0.1))
    assert decision.allow and {o.code: o.value for o in decision.obligations}["dp-noise"] == 0.1
