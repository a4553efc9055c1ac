"""Participant rules: roles, separation of duties, status transitions."""

from __future__ import annotations

import pytest

from common.errors import Conflict, InvalidInput
from participants import rules


def test_roles_are_sorted_and_deduplicated():
    assert rules.check_roles(["provider", "consumer", "provider"]) == ["consumer", "provider"]


@pytest.mark.parametrize("roles", [[], ["king"], ["operator", "provider"], ["regulator", "consumer"],
                                   ["regulator", "operator"]])
def test_invalid_role_sets_are_refused_naming_roles(roles):
    with pytest.raises(InvalidInput) as caught:
        rules.check_roles(roles)
    assert "roles" in caught.value.errors


@pytest.mark.parametrize("action, source, target", [
    ("admit", "pending", "active"), ("suspend", "pending", "suspended"), ("suspend", "active", "suspended"),
    ("reinstate", "suspended", "active"),
])
def test_legal_transitions(action, source, target):
    assert rules.next_status(action, source) == target


@pytest.mark.parametrize("action, source", [("admit", "active"), ("admit", "suspended"), ("reinstate", "active"),
                                            ("reinstate", "pending"), ("suspend", "suspended")])
def test_illegal_transitions_name_the_allowed_actions(action, source):
    with pytest.raises(Conflict) as caught:
        rules.next_status(action, source)
    assert caught.value.extra["allowed_actions"] == rules.allowed_actions(source)
    assert action not in caught.value.extra["allowed_actions"]


def test_principal_is_active_only_when_admitted():
    active = rules.Principal("p", frozenset({"consumer"}), "active", "t")
    assert active.is_active and active.has_role("consumer", "provider") and not active.has_role("operator")
    assert not rules.Principal("p", frozenset(), "pending", "t").is_active
