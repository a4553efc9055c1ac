"""The exchange's grant workflow and the offline replay apply one lifecycle and one scope rule
(common.grant_rules): on every (status, action) pair and every scope case, both allow exactly the same."""

from __future__ import annotations

import itertools

import pytest

from authorization import lifecycle
from authorization.terms import Scope
from common.errors import Conflict
from common.grant_rules import SYSTEM, TRANSITIONS
from common.vocab import GrantKind, GrantStatus
from ledger.replay import ReplayError, State
from ledger.replay import grants as replay_grants
from ledger.replay.base import Participant

PARTIES = {"consumer": "prt_bank", "provider": "prt_tax", "regulator": "prt_reg"}
ACTIONS = [name for name, transition in TRANSITIONS.items() if transition.party != SYSTEM]


def _exchange_allows(status: str, action: str, party: str) -> bool:
    try:
        lifecycle.check(action, status, party)
        return True
    except Conflict:
        return False


def _replay_allows(status: str, action: str, party: str) -> bool:
    """Replay the action's entry by the actor playing ``party`` on a grant in ``status``."""
    state = State()
    state.participants["prt_reg"] = Participant(frozenset({"regulator"}), "active")
    state.grants["grt_1"] = replay_grants.Grant("prt_bank", GrantKind.SCENARIO, frozenset({"prt_tax"}), None, None,
                                                frozenset({"ast_1"}), True, {}, status=status,
                                                countered_by="prt_tax")
    transition = TRANSITIONS[action]
    entry = {"type": transition.entry, "actor": PARTIES[party], "time": "2026-12-03T08:00:00.000000Z",
             "refs": {"grant": ["grt_1"]}, "body": {"status": transition.target or status, "terms": {}}}
    try:
        replay_grants._acted(state, entry)
        return True
    except ReplayError as exc:
        assert exc.kind in ("grant-transition", "grant-party"), exc
        return False


@pytest.mark.parametrize("status, action, party", list(itertools.product(GrantStatus, ACTIONS, PARTIES)))
def test_the_workflow_and_the_replay_allow_the_same_actions(status, action, party):
    assert _exchange_allows(status, action, party) == _replay_allows(status, action, party)


def test_every_action_the_workflow_records_is_one_the_replay_knows_by_its_entry():
    assert {TRANSITIONS[a].entry: a for a in ACTIONS} == {t: segment for t, (_, _, segment)
                                                           in replay_grants.ACTIONS.items()}


SCOPES = [
    Scope(GrantKind.SCENARIO, frozenset({"prt_tax"}), assets=frozenset({"ast_1"})),
    Scope(GrantKind.COMPREHENSIVE, frozenset({"prt_tax", "prt_hr"}), max_grade=2),
    Scope(GrantKind.DOMAIN, frozenset({"prt_tax"}), domain="tax", max_grade=3),
    Scope(GrantKind.DOMAIN, frozenset({"prt_tax"}), domain="tax", max_grade=None),
]
ASSETS = [(asset, provider, domain, grade) for asset in ("ast_1", "ast_2") for provider in ("prt_tax", "prt_hr",
          "prt_x") for domain in ("tax", "health") for grade in (1, 2, 3, 4)]


@pytest.mark.parametrize("scope", SCOPES, ids=lambda s: f"{s.kind}-{s.max_grade}")
def test_the_decision_point_and_the_replay_draw_a_scope_alike(scope):
    grant = replay_grants.Grant("prt_bank", scope.kind, scope.providers, scope.domain, scope.max_grade, scope.assets,
                                False, {})
    inside = [facts for facts in ASSETS if scope.covers(*facts)]
    assert inside == [facts for facts in ASSETS if replay_grants._in_scope(grant, *facts)]
    assert 0 < len(inside) < len(ASSETS) or scope.max_grade is None
