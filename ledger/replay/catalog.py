"""Replay rules for catalog assets: publication, descriptive updates, retirement, one data one source, and node
endpoint changes (requested by the owner, decided by an operator after the node proved the provider's key). Pure."""

from __future__ import annotations

from typing import Any

from ledger.replay.base import (
    API,
    GRADES,
    OPERATOR,
    PROVIDER,
    PUBLISHED,
    RETIRED,
    Asset,
    ReplayError,
    Route,
    Rule,
    State,
    ref,
    require_role,
    route,
)

# What a grant over an asset relies on: fixed from publication on (catalog.rules.DESCRIPTIVE_FIELDS may change).
ASSET_SCOPE = ("provider", "domain", "grade", "computation_kinds", "authoritative_for")
ENDPOINT_REQUESTED, ENDPOINT_APPROVED, ENDPOINT_REJECTED = (
    "asset.endpoint_requested", "asset.endpoint_approved", "asset.endpoint_rejected")
ENDPOINT_TYPES = frozenset({ENDPOINT_REQUESTED, ENDPOINT_APPROVED, ENDPOINT_REJECTED})


def _scope(body: dict) -> tuple[Any, ...]:
    return tuple(body[name] for name in ASSET_SCOPE)


def _asset_published(state: State, entry: dict) -> None:
    require_role(state, entry, PROVIDER)
    asset_id, body = ref(entry, "asset"), entry["body"]
    if body["provider"] != entry["actor"]:
        raise ReplayError("asset-owner", f"{entry['actor']} published an asset naming {body['provider']!r} as "
                                         f"provider")
    if asset_id in state.assets:
        raise ReplayError("asset-status", f"asset {asset_id} was already published")
    grade = body["grade"]
    if type(grade) is not int or grade not in GRADES:
        raise ReplayError("grade", f"expected a grade in {GRADES.start}..{GRADES.stop - 1}, found {grade!r}")
    codes = body["authoritative_for"]
    if not isinstance(codes, list) or not all(isinstance(code, str) for code in codes):
        raise ReplayError("malformed-entry", f"authoritative_for must list data-element codes, found {codes!r}")
    for code in codes:
        holder = state.sources.get(code)
        if holder is not None:
            raise ReplayError("authoritative-source", f"data element {code} already has its source in published "
                                                      f"asset {holder} (一数一源)")
    state.assets[asset_id] = Asset(entry["actor"], PUBLISHED, grade, _scope(body))
    for code in codes:
        state.sources[code] = asset_id


def _owned_published(state: State, entry: dict) -> tuple[str, Asset]:
    """Return the published asset an entry concerns, after checking the entry's actor is its provider."""
    asset_id = ref(entry, "asset")
    asset = state.assets.get(asset_id)
    if asset is None or asset.status != PUBLISHED:
        raise ReplayError("asset-status", f"{entry['type']} needs a published asset; {asset_id} is "
                                          f"{'not published' if asset is None else asset.status}")
    if entry["actor"] != asset.provider:
        raise ReplayError("asset-owner", f"asset {asset_id} belongs to {asset.provider}, not {entry['actor']}")
    return asset_id, asset


def _published_asset(state: State, entry: dict) -> tuple[str, Asset]:
    """Return the asset a retire or update concerns, after checking it is published, owned and unchanged in scope."""
    asset_id, asset = _owned_published(state, entry)
    scope = _scope(entry["body"])
    if scope != asset.scope:
        changed = [name for name, old, new in zip(ASSET_SCOPE, asset.scope, scope) if old != new]
        raise ReplayError("frozen-field", f"asset {asset_id} changed {', '.join(changed)}, which are fixed once "
                                          f"it is published")
    return asset_id, asset


def _asset_retired(state: State, entry: dict) -> None:
    asset_id, asset = _published_asset(state, entry)
    asset.status = RETIRED
    asset.pending_endpoint = None
    for code in entry["body"]["authoritative_for"]:
        state.sources.pop(code, None)


def _asset_updated(state: State, entry: dict) -> None:
    asset_id, _ = _published_asset(state, entry)
    if "node_endpoint" in entry["body"].get("changed", []):
        raise ReplayError("node-endpoint", f"asset {asset_id} changed its node endpoint without the operator's "
                                           f"approval ({ENDPOINT_REQUESTED}, then {ENDPOINT_APPROVED})")


def _endpoint_requested(state: State, entry: dict) -> None:
    asset_id, asset = _owned_published(state, entry)
    endpoint = entry["body"]["node_endpoint"]
    if not isinstance(endpoint, str) or not endpoint:
        raise ReplayError("malformed-entry", f"{entry['type']} names no node endpoint, found {endpoint!r}")
    asset.pending_endpoint = endpoint


def _endpoint_decided(state: State, entry: dict) -> None:
    """An operator approves or rejects the pending change; an approval names the provider key the node proved."""
    require_role(state, entry, OPERATOR)
    asset_id = ref(entry, "asset")
    asset = state.assets.get(asset_id)
    if asset is None or asset.pending_endpoint is None:
        raise ReplayError("node-endpoint", f"{entry['type']} for asset {asset_id}, which has no pending endpoint "
                                           f"change")
    if entry["body"]["node_endpoint"] != asset.pending_endpoint:
        raise ReplayError("node-endpoint", f"{entry['type']} decides {entry['body']['node_endpoint']!r}, the "
                                           f"provider asked for {asset.pending_endpoint!r}")
    if entry["type"] == ENDPOINT_APPROVED:
        key = state.keys.get(entry["body"]["key"])
        if key is None or key.owner != asset.provider or key.revoked is not None:
            raise ReplayError("node-identity", f"the node of asset {asset_id} was approved on key "
                                               f"{entry['body']['key']}, not a registered key of {asset.provider}")
    asset.pending_endpoint = None



RULES: dict[str, Rule] = {
    "asset.published": _asset_published,
    "asset.retired": _asset_retired,
    "asset.updated": _asset_updated,
    ENDPOINT_REQUESTED: _endpoint_requested,
    ENDPOINT_APPROVED: _endpoint_decided,
    ENDPOINT_REJECTED: _endpoint_decided,
}

ROUTES: dict[str, Route] = {
    "asset.published": route("POST", API + "/assets/{}/publish", "asset"),
    "asset.retired": route("POST", API + "/assets/{}/retire", "asset"),
    "asset.updated": route("PATCH", API + "/assets/{}", "asset"),
    ENDPOINT_REQUESTED: route("POST", API + "/assets/{}/endpoint", "asset"),
    ENDPOINT_APPROVED: route("POST", API + "/assets/{}/endpoint/approve", "asset"),
    ENDPOINT_REJECTED: route("POST", API + "/assets/{}/endpoint/reject", "asset"),
}
