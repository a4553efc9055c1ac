"""Catalog rules in plain Python: what a consistent asset is, its lifecycle, and how search text is built."""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

from catalog import vocab
from common.errors import Conflict, InvalidInput
from common.vocab import AssetStatus, ComputationKind

DRAFT, PUBLISHED, RETIRED = AssetStatus.DRAFT, AssetStatus.PUBLISHED, AssetStatus.RETIRED
ASSET_STATUSES = (DRAFT, PUBLISHED, RETIRED)
LIFECYCLE: dict[str, tuple[str, str]] = {"publish": (DRAFT, PUBLISHED), "retire": (PUBLISHED, RETIRED)}

# Fields that may still change once an asset is published: they describe it but do not change what a grant
# over it covers. Everything else is frozen at publication; the node endpoint changes only with the operator's
# approval (catalog.endpoints).
DESCRIPTIVE_FIELDS = frozenset({"title_zh", "title_en", "description_zh", "description_en", "keywords",
                                "update_frequency"})
ENDPOINT_FIELD = "node_endpoint"

NUMERIC_FIELD_TYPES = ("integer", "number")  # the field types that may declare a range (minimum, maximum)


def check_asset(asset: Mapping[str, Any]) -> None:
    """Raise ``InvalidInput`` naming every field whose value contradicts the grade or another field."""
    errors: dict[str, list[str]] = {}
    grade = asset["grade"]
    kinds = set(asset["computation_kinds"])
    if ComputationKind.DOWNLOAD in kinds and grade != 1:
        errors.setdefault("computation_kinds", []).append(
            f"download is allowed only for grade 1 (open) assets; this asset is grade {grade}")
    if grade >= 3 and not kinds <= vocab.PRIVACY_PRESERVING_KINDS:
        plain = sorted(kinds - vocab.PRIVACY_PRESERVING_KINDS)
        errors.setdefault("computation_kinds", []).append(
            f"grade {grade} assets allow only {', '.join(sorted(vocab.PRIVACY_PRESERVING_KINDS))}; "
            f"not {', '.join(plain)}")
    names = [field["name"] for field in asset["fields"]]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        errors.setdefault("fields", []).append(f"duplicate field name(s): {', '.join(duplicates)}")
    for field in asset["fields"]:
        problem = range_problem(field)
        if problem:
            errors.setdefault("fields", []).append(f"field {field['name']}: {problem}")
    personal = [field["name"] for field in asset["fields"] if field.get("personal")]
    if grade == 1 and personal:
        errors.setdefault("grade", []).append(
            f"open (grade 1) assets cannot hold personal information; personal field(s): {', '.join(personal)}")
    codes = asset.get("element_codes", [])
    if len(set(codes)) != len(codes):
        errors.setdefault("authoritative_for", []).append("a data-element code is listed twice")
    if errors:
        raise InvalidInput("the asset is inconsistent: " + "; ".join(m for ms in errors.values() for m in ms),
                           errors=errors)


def range_problem(field: Mapping[str, Any]) -> str | None:
    """Return what is wrong with a field's declared range (``minimum``, ``maximum``), or None if nothing is."""
    low, high = field.get("minimum"), field.get("maximum")
    if low is None and high is None:
        return None
    if field["type"] not in NUMERIC_FIELD_TYPES:
        return f"a range (minimum, maximum) applies to {' and '.join(NUMERIC_FIELD_TYPES)} fields only"
    if low is None or high is None:
        return "declare both minimum and maximum, or neither"
    if not (math.isfinite(low) and math.isfinite(high)) or not low < high:
        return f"the range needs finite minimum < maximum, got {low} and {high}"
    return None


def next_status(action: str, status: str) -> str:
    """Return the status ``action`` leads to, or raise ``Conflict`` naming the allowed actions."""
    source, target = LIFECYCLE[action]
    if status != source:
        allowed = [name for name, (src, _) in LIFECYCLE.items() if src == status]
        raise Conflict(f"cannot {action} an asset that is {status}; allowed: {', '.join(allowed) or 'none'}",
                       extra={"current_status": status, "allowed_actions": allowed})
    return target


def check_changes(status: str, changed: Iterable[str]) -> None:
    """Raise ``Conflict`` if a change touches fields that are frozen in ``status``."""
    changed = set(changed)
    if status == RETIRED:
        raise Conflict("a retired asset cannot be changed", extra={"current_status": status, "allowed_actions": []})
    if status == PUBLISHED and ENDPOINT_FIELD in changed:
        raise Conflict("a published asset's node endpoint changes only with the operator's approval: request it "
                       "with POST /api/v1/assets/<id>/endpoint", errors={ENDPOINT_FIELD: ["needs the operator's "
                                                                                         "approval"]},
                       extra={"changeable_fields": sorted(DESCRIPTIVE_FIELDS)})
    if status == PUBLISHED:
        frozen = sorted(changed - DESCRIPTIVE_FIELDS)
        if frozen:
            raise Conflict(
                f"published assets keep {', '.join(frozen)} fixed (grants rely on them); retire the asset and "
                f"register a new one to change them",
                errors={name: ["fixed once the asset is published"] for name in frozen},
                extra={"changeable_fields": sorted(DESCRIPTIVE_FIELDS)},
            )


def search_text(asset: Mapping[str, Any]) -> str:
    """Return the lower-cased text that search matches against (titles, descriptions, keywords, fields, codes)."""
    parts = [asset["title_zh"], asset["title_en"], asset["description_zh"], asset["description_en"],
             *asset["keywords"], *asset.get("element_codes", [])]
    for field in asset["fields"]:
        parts.extend([field["name"], field.get("description") or ""])
    return "\n".join(part for part in parts if part).casefold()


def query_tokens(text: str) -> list[str]:
    """Split a search query into tokens; every token must occur (as a substring) in a matching asset."""
    return [token for token in text.casefold().split() if token][:10]
