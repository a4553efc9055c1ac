"""The offline auditor names each business rule an otherwise valid log breaks at its last entry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common import crypto
from ledger import entries
from ledger.audit import AuditFailure
from ledger.entries import Draft
from tests.unit.audit_log_builder import (
    API,
    ORIGIN,
    LogBuilder,
    Member,
    public,
    seeded_key,
    verify,
)


@dataclass
class Scene:
    log: LogBuilder
    provider: Member
    consumer: Member
    asset: str


def scene() -> Scene:
    log = LogBuilder()
    provider, consumer = log.enrol("provider"), log.enrol("consumer")
    log.publish(provider)
    return Scene(log, provider, consumer, next(iter(log.assets)))


def update_draft(s: Scene, actor: Member, **changes: Any) -> Draft:
    body = {**s.log.asset_body(s.provider, s.asset, "Registrations"), "changed": ["title_en"], **changes}
    return Draft("asset.updated", actor.id, refs={"asset": [s.asset]}, body=body)


def update(s: Scene, actor: Member, key: Ed25519PrivateKey | None = None, signed_at: datetime | None = None,
           path: str | None = None, **changes: Any) -> None:
    s.log.act(actor, "PATCH", path or f"{API}/assets/{s.asset}", {"title_en": "x"}, update_draft(s, actor, **changes),
              key=key, signed_at=signed_at)


def suspended_provider_publishes(s: Scene) -> None:
    s.log.change_status(s.provider, "suspend", "suspended")
    s.log.publish(s.provider)


def operator_suspends_itself(s: Scene) -> None:
    s.log.change_status(s.log.operator, "suspend", "suspended")


def active_participant_reinstated(s: Scene) -> None:
    s.log.change_status(s.consumer, "reinstate", "active")


def provider_enrols_a_participant(s: Scene) -> None:
    body = {"name_zh": "机构", "name_en": "Agency", "roles": ["consumer"]}
    s.log.act(s.provider, "POST", f"{API}/participants", body, Draft(
        "participant.enrolled", s.provider.id, refs={"participant": ["prt_new"]}, body={**body, "status": "pending"}))


def exchange_enrols_a_second_operator(s: Scene) -> None:
    s.log.append(Draft("participant.enrolled", entries.SYSTEM_ACTOR, refs={"participant": ["prt_second"]},
                       body={"name_zh": "运营方", "name_en": "Operator", "roles": ["operator"], "status": "active"}))


def another_provider_updates_the_asset(s: Scene) -> None:
    update(s, s.log.enrol("provider"))


def published_grade_changes(s: Scene) -> None:
    update(s, s.provider, grade=3)


def retired_asset_updated(s: Scene) -> None:
    s.log.retire(s.asset)
    update(s, s.provider)


def two_assets_claim_one_data_element(s: Scene) -> None:
    body = s.log.asset_body(s.provider, "ast_two", "Copy")
    s.log.act(s.provider, "POST", f"{API}/assets/ast_two/publish", None, Draft(
        "asset.published", s.provider.id, refs={"asset": ["ast_two"]},
        body={**body, "authoritative_for": [f"code-{s.asset}"]}))


def grade_out_of_range(s: Scene) -> None:
    s.log.act(s.provider, "POST", f"{API}/assets/ast_five/publish", None, Draft(
        "asset.published", s.provider.id, refs={"asset": ["ast_five"]},
        body={**s.log.asset_body(s.provider, "ast_five", "Five"), "grade": 5}))


def request_for_another_asset(s: Scene) -> None:
    update(s, s.provider, path=f"{API}/assets/ast_other")


def request_signed_long_before(s: Scene) -> None:
    update(s, s.provider, signed_at=s.log.clock - timedelta(seconds=400))


def unknown_entry_type(s: Scene) -> None:
    s.log.act(s.provider, "DELETE", f"{API}/assets/{s.asset}", None,
              Draft("asset.deleted", s.provider.id, refs={"asset": [s.asset]}))


def participant_entry_without_request(s: Scene) -> None:
    s.log.append(update_draft(s, s.provider))


def time_goes_backwards(s: Scene) -> None:
    s.log.clock -= timedelta(seconds=10)
    update(s, s.provider)


def second_genesis(s: Scene) -> None:
    s.log.append(Draft("log.genesis", entries.SYSTEM_ACTOR,
                       body={"origin": ORIGIN, "log_public_key": public(s.log.log_key)}))


def domain_added_twice(s: Scene) -> None:
    body = {"code": "twice", "name_zh": "领域", "name_en": "Domain", "eu_theme": None}
    for _ in range(2):
        s.log.act(s.log.operator, "POST", f"{API}/domains", body,
                  Draft("domain.added", s.log.operator.id, refs={"domain": ["twice"]}, body=body))


def signed_with_another_participants_key(s: Scene) -> None:
    update(s, s.provider, key=s.consumer.keys[-1])


def key_registration_signed_by_an_older_key(s: Scene) -> None:
    new = public(seeded_key("new"))
    s.log.act(s.provider, "POST", f"{API}/participants/me/keys", {"public_key": new}, Draft(
        "key.registered", s.provider.id, refs={"participant": [s.provider.id], "key": [crypto.key_fingerprint(new)]},
        body={"public_key": new, "algorithm": "ed25519", "label": None}))


def key_revoked_by_another_participant(s: Scene) -> None:
    key_id = crypto.key_fingerprint(public(s.provider.keys[-1]))
    s.log.act(s.consumer, "POST", f"{API}/participants/{s.provider.id}/keys/{key_id}/revoke", None, Draft(
        "key.revoked", s.consumer.id, refs={"participant": [s.provider.id], "key": [key_id]}))


def domain_recorded_other_than_requested(s: Scene) -> None:
    body = {"code": "asked", "name_zh": "领域", "name_en": "Domain", "eu_theme": None}
    s.log.act(s.log.operator, "POST", f"{API}/domains", body, Draft(
        "domain.added", s.log.operator.id, refs={"domain": ["recorded"]}, body={**body, "code": "recorded"}))


def _endpoint(s: Scene, actor: Member, step: str, body: dict[str, Any]) -> None:
    path = f"{API}/assets/{s.asset}/endpoint" + {"requested": "", "approved": "/approve", "rejected": "/reject"}[step]
    s.log.act(actor, "POST", path, body, Draft(f"asset.endpoint_{step}", actor.id, refs={"asset": [s.asset]},
                                                 body=body))


def endpoint_repointed_by_an_update(s: Scene) -> None:
    update(s, s.provider, changed=["node_endpoint"])


def endpoint_approved_without_a_request(s: Scene) -> None:
    _endpoint(s, s.log.operator, "approved", {"node_endpoint": "http://node.example", "key": "k"})


def endpoint_approved_by_its_provider(s: Scene) -> None:
    _endpoint(s, s.provider, "requested", {"node_endpoint": "http://node.example"})
    _endpoint(s, s.provider, "approved", {"node_endpoint": "http://node.example", "key": "k"})


def endpoint_approved_on_another_participants_key(s: Scene) -> None:
    _endpoint(s, s.provider, "requested", {"node_endpoint": "http://node.example"})
    _endpoint(s, s.log.operator, "approved", {"node_endpoint": "http://node.example",
                                              "key": crypto.key_fingerprint(public(s.consumer.keys[-1]))})


def endpoint_approved_other_than_requested(s: Scene) -> None:
    _endpoint(s, s.provider, "requested", {"node_endpoint": "http://node.example"})
    _endpoint(s, s.log.operator, "rejected", {"node_endpoint": "http://169.254.169.254", "reason": None})


BROKEN_RULES = [
    (endpoint_repointed_by_an_update, "node-endpoint"),
    (endpoint_approved_without_a_request, "node-endpoint"),
    (endpoint_approved_by_its_provider, "forbidden"),
    (endpoint_approved_on_another_participants_key, "node-identity"),
    (endpoint_approved_other_than_requested, "node-endpoint"),
    (suspended_provider_publishes, "inactive-actor"),
    (operator_suspends_itself, "self-status"),
    (active_participant_reinstated, "transition"),
    (provider_enrols_a_participant, "forbidden"),
    (exchange_enrols_a_second_operator, "bootstrap"),
    (another_provider_updates_the_asset, "asset-owner"),
    (published_grade_changes, "frozen-field"),
    (retired_asset_updated, "asset-status"),
    (two_assets_claim_one_data_element, "authoritative-source"),
    (grade_out_of_range, "grade"),
    (request_for_another_asset, "request-route"),
    (request_signed_long_before, "signature-window"),
    (unknown_entry_type, "unknown-type"),
    (participant_entry_without_request, "unsigned-entry"),
    (time_goes_backwards, "time-order"),
    (second_genesis, "genesis"),
    (domain_added_twice, "duplicate-domain"),
    (signed_with_another_participants_key, "unknown-key"),
    (key_registration_signed_by_an_older_key, "request-key"),
    (key_revoked_by_another_participant, "forbidden"),
    (domain_recorded_other_than_requested, "request-body"),
]


@pytest.mark.parametrize("break_rule, kind", BROKEN_RULES, ids=[f.__name__ for f, _ in BROKEN_RULES])
def test_an_entry_the_rules_forbid_is_named_with_its_rule(break_rule, kind):
    s = scene()
    break_rule(s)
    with pytest.raises(AuditFailure) as failure:
        verify(s.log.export())
    assert (failure.value.seq, failure.value.kind) == (len(s.log.records) - 1, kind)
