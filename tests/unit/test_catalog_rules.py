"""Catalog rules: consistency of grade and computation kinds, lifecycle, frozen fields, search text."""

from __future__ import annotations

import pytest

from catalog import rules
from common.errors import Conflict, InvalidInput


def _asset(**overrides):
    asset = {"title_zh": "企业", "title_en": "Enterprises", "description_zh": "描述", "description_en": "About",
             "keywords": ["信用"], "fields": [{"name": "uscc", "type": "identifier", "description": "code"}],
             "grade": 2, "computation_kinds": ["aggregate"], "element_codes": []}
    asset.update(overrides)
    return asset


@pytest.mark.parametrize("grade, kinds", [(1, ["download", "aggregate"]), (2, ["aggregate", "he-scoring"]),
                                          (3, ["he-statistics", "federated-learning"]), (4, ["he-statistics"])])
def test_consistent_assets_pass(grade, kinds):
    rules.check_asset(_asset(grade=grade, computation_kinds=kinds))


@pytest.mark.parametrize("overrides, field", [
    ({"grade": 2, "computation_kinds": ["download"]}, "computation_kinds"),
    ({"grade": 3, "computation_kinds": ["aggregate", "he-statistics"]}, "computation_kinds"),
    ({"grade": 4, "computation_kinds": ["download"]}, "computation_kinds"),
    ({"grade": 1, "fields": [{"name": "pid", "type": "identifier", "personal": True}]}, "grade"),
    ({"fields": [{"name": "a", "type": "string"}, {"name": "a", "type": "string"}]}, "fields"),
    ({"element_codes": ["DE.1", "DE.1"]}, "authoritative_for"),
])
def test_inconsistent_assets_name_the_field(overrides, field):
    with pytest.raises(InvalidInput) as caught:
        rules.check_asset(_asset(**overrides))
    assert field in caught.value.errors


def test_lifecycle_is_draft_published_retired():
    assert rules.next_status("publish", "draft") == "published"
    assert rules.next_status("retire", "published") == "retired"
    with pytest.raises(Conflict) as caught:
        rules.next_status("retire", "draft")
    assert caught.value.extra["allowed_actions"] == ["publish"]


def test_published_assets_change_only_descriptive_fields():
    rules.check_changes("draft", {"grade", "fields"})
    rules.check_changes("published", {"title_en", "keywords"})
    with pytest.raises(Conflict) as endpoint:  # the node endpoint changes only with the operator's approval
        rules.check_changes("published", {"title_en", "node_endpoint"})
    assert set(endpoint.value.errors) == {"node_endpoint"}
    with pytest.raises(Conflict) as caught:
        rules.check_changes("published", {"title_en", "grade", "computation_kinds"})
    assert set(caught.value.errors) == {"grade", "computation_kinds"}
    with pytest.raises(Conflict):
        rules.check_changes("retired", {"title_en"})


def test_search_text_holds_both_languages_keywords_fields_and_codes_casefolded():
    text = rules.search_text(_asset(title_en="Tax RECORDS", element_codes=["DE.TAX.1"]))
    for expected in ("企业", "tax records", "信用", "uscc", "code", "de.tax.1"):
        assert expected in text


def test_query_tokens_split_on_whitespace_and_casefold():
    assert rules.query_tokens("  Tax  信用\t企业 ") == ["tax", "信用", "企业"]
    assert rules.query_tokens("") == []
