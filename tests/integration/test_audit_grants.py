"""The offline auditor replays authorizations and jobs: a real history verifies, and entries the exchange's
rules forbid are caught even when the operator's own log key signs them (a rewritten or dishonest log)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import pytest

from common.db import get_database
from ledger import checkpoints, entries, export, log, service
from ledger.audit import AuditFailure, verify_export
from ledger.entries import Draft, sign_request
from ledger.receipts import sign_receipt
from tests.support import grant_action, publish, register, request_grant, scenario_request

pytestmark = pytest.mark.sql  # grant history replayed from the ledger tables


@dataclass
class Story:
    lines: list[str]
    consumer: object
    grants: dict[str, str]
    assets: dict[str, str]
    tax: object = None

    def entry(self, seq: int) -> dict:
        return entries.parse(json.loads(self.lines[1 + seq])["entry"].encode())

    @property
    def size(self) -> int:
        return json.loads(self.lines[0])["size"]


def _export(app) -> list[str]:
    with app.app_context(), get_database().transaction() as session:
        checkpoints.sign_current(session, service.identity())
        identity = service.identity()
        return list(export.lines(session, identity.origin, service.public_key_text(), log.size(session)))


def _job(client, consumer, grant_id, assets, context, **extra):
    body = {"grant": grant_id, "assets": assets, "computation_kind": "he-statistics", "rows": 100,
            "epsilon": 0.1, "group_size": 10, "result_cells": 4, "params": {"plan": {"columns": ["registered_capital"]},
                                                                 "bounds": {"registered_capital": [0, 1e6]}},
            "context": base64.b64encode(context).decode(), **extra}
    response = client.post("/api/v1/jobs", headers=consumer.headers, json=body)
    assert response.status_code == 201, response.get_json()


@pytest.fixture
def story(app, client, world, public_context) -> Story:
    """Grade-3 and grade-2 scenario grants with jobs, a counter-offer, a revocation and a pending co-approval."""
    tax, hr = world.participant("provider", name="税务局"), world.participant("provider", name="人社厅")
    consumer, regulator = world.participant("consumer", name="银行"), world.participant("regulator")
    assets = {"tax3": publish(client, tax, register(client, tax, grade=3, computation_kinds=["he-statistics"])["id"]),
              "hr2": publish(client, hr, register(client, hr, grade=2)["id"]),
              "hr2b": publish(client, hr, register(client, hr, grade=2)["id"])}
    assets = {name: asset["id"] for name, asset in assets.items()}
    sensitive = request_grant(client, consumer, scenario_request([assets["tax3"], assets["hr2"]], max_jobs=2,
                                                                 epsilon=1.0))
    grant_action(client, tax, sensitive["id"], "approve")
    grant_action(client, hr, sensitive["id"], "approve")
    grant_action(client, regulator, sensitive["id"], "co-approve")
    _job(client, consumer, sensitive["id"], [assets["tax3"], assets["hr2"]], public_context)
    plain = request_grant(client, consumer, scenario_request([assets["hr2"]]))
    grant_action(client, hr, plain["id"], "counter", {"terms": {**plain["terms"], "max_jobs": 3}})
    grant_action(client, consumer, plain["id"], "accept")
    _job(client, consumer, plain["id"], [assets["hr2"]], public_context, epsilon=0.0)
    grant_action(client, hr, plain["id"], "revoke", {"reason": "incident"})
    waiting = request_grant(client, consumer, scenario_request([assets["tax3"]]))
    grant_action(client, tax, waiting["id"], "approve")
    return Story(_export(app), consumer, {"sensitive": sensitive["id"], "plain": plain["id"],
                                          "waiting": waiting["id"]}, assets, tax)


def _append(app, story: Story, forged: list[tuple[Draft, object]]) -> list[str]:
    """Append entries signed with the real log key, as a dishonest operator could."""
    with app.app_context():
        key = service.identity().key
    time_text = story.entry(story.size - 1)["time"]
    lines = list(story.lines)
    for offset, (draft, request) in enumerate(forged):
        seq = story.size + offset
        data, signature = entries.build(draft, seq=seq, time=time_text, request=request, commit={},
                                        operator_key=key)
        lines.insert(1 + seq, json.dumps({"seq": seq, "entry": data.decode(), "operator_sig": signature}) + "\n")
    return lines


def _verify(app, lines):
    with app.app_context():
        return verify_export(lines, service.identity().key.public_key())


def test_a_history_of_grants_and_jobs_verifies(app, story):
    report = _verify(app, story.lines)
    for entry_type, count in {"grant.requested": 3, "grant.provider_approved": 3, "grant.regulator_approved": 1,
                              "grant.activated": 2, "grant.countered": 1, "grant.counter_accepted": 1,
                              "grant.revoked": 1, "job.admitted": 2}.items():
        assert report.entry_types[entry_type] == count, entry_type


def _forged_job(story: Story, grant: str, assets: list[str], jobs: int, rows: int, epsilon: float = 0.1):
    body = {"computation_kind": "he-statistics", "rows": 100, "epsilon": 0.1, "group_size": 10, "result_cells": 4,
            "params_sha256": "0" * 64, "context_sha256": None, "obligations": {},
            "usage": {"jobs": jobs, "rows": rows, "epsilon": epsilon}, "assets": []}
    request = sign_request(story.consumer.key, actor=story.consumer.id, method="POST", path="/api/v1/jobs",
                           body={"grant": grant})
    draft = Draft("job.admitted", story.consumer.id, refs={"job": ["job_forged"], "grant": [grant], "asset": assets},
                  body=body)
    return draft, request


@pytest.mark.parametrize("case, kind", [
    ("job after revocation", "grant-not-active"),
    ("job beyond max_jobs", "quota"),
    ("job on an asset outside the scope", "grant-scope"),
    ("job claiming less usage than the log adds up", "quota"),
    ("activation without the regulator", "regulator-approval"),
    ("noise spending more ε than the job was charged", "dp-release"),
    ("completion whose receipt was altered after the node signed it", "receipt-signature"),
    ("completion with a receipt for another job", "receipt"),
])
def test_entries_the_rules_forbid_are_caught_even_when_the_log_key_signs_them(app, story, case, kind):
    grants, assets = story.grants, story.assets
    forged = {
        "job after revocation": lambda: [_forged_job(story, grants["plain"], [assets["hr2"]], 2, 200, 0.0)],
        # the grant allows 2 jobs and has used 1: the first forged job is still within its terms
        "job beyond max_jobs": lambda: [_forged_job(story, grants["sensitive"], [assets["hr2"]], 2, 200, 0.2),
                                        _forged_job(story, grants["sensitive"], [assets["hr2"]], 3, 300, 0.3)],
        "job on an asset outside the scope": lambda: [
            _forged_job(story, grants["sensitive"], [assets["hr2b"]], 2, 200, 0.2)],
        "job claiming less usage than the log adds up": lambda: [
            _forged_job(story, grants["sensitive"], [assets["hr2"]], 1, 100, 0.1)],
        "activation without the regulator": lambda: [(Draft(
            "grant.activated", "system", refs={"grant": [grants["waiting"]]},
            body={"status": "active", "terms": _requested_terms(story, grants["waiting"])}), None)],
        "noise spending more ε than the job was charged": lambda: [_forged_completion(story, grants["sensitive"])],
        "completion whose receipt was altered after the node signed it": lambda: [
            _receipted_completion(story, grants["sensitive"], rows_billed=1)],
        "completion with a receipt for another job": lambda: [
            _receipted_completion(story, grants["sensitive"], receipt_job="job_elsewhere")],
    }[case]()
    with pytest.raises(AuditFailure) as caught:
        _verify(app, _append(app, story, forged))
    assert (caught.value.seq, caught.value.kind) == (story.size + len(forged) - 1, kind), caught.value


def _forged_completion(story: Story, grant: str):
    """Complete the grant's running job (charged ε 0.1) with noise of a tenth of the scale ε 0.1 needs."""
    job = next(e["refs"]["job"][0] for e in map(story.entry, range(story.size))
               if e["type"] == "job.admitted" and e["refs"]["grant"] == [grant])
    release = {"mechanism": "opendp.laplace", "epsilon": 0.1, "bounds": {},
               "statistics": [{"name": "count", "slots": [0], "sensitivity": 1.0, "integer": True, "epsilon": 0.1,
                               "scale": 1.0}]}
    return Draft("job.completed", "system", refs={"job": [job], "grant": [grant]},
                 body={"result_sha256": "0" * 64, "usage": [], "rows": {"declared": 100, "used": 0, "released": 100},
                       "release": release}), None


def _receipted_completion(story: Story, grant: str, *, rows_billed: int | None = None,
                          receipt_job: str | None = None):
    """Complete the grant's running job with a receipt the tax node really signed (40 rows), then altered: billed
    ``rows_billed`` rows instead, or made out for ``receipt_job``."""
    job = next(e["refs"]["job"][0] for e in map(story.entry, range(story.size))
               if e["type"] == "job.admitted" and e["refs"]["grant"] == [grant])
    receipt = {"job": receipt_job or job, "provider": story.tax.id, "assets": [story.assets["tax3"]],
               "operation": "he-statistics", "rows_used": 40, "result_sha256": "ab" * 32, "wall_ms": 1.0,
               "served_at": story.entry(story.size - 1)["time"]}
    signature = sign_receipt(story.tax.key, receipt)
    if rows_billed is not None:
        receipt = {**receipt, "rows_used": rows_billed}
    used = receipt["rows_used"]
    usage = [{"provider": story.tax.id, "rows_used": used, "receipt": receipt, "signature": signature}]
    return Draft("job.completed", "system", refs={"job": [job], "grant": [grant]},
                 body={"result_sha256": "cd" * 32, "usage": usage,
                       "rows": {"declared": 100, "used": used, "released": 100 - used}}), None


def _requested_terms(story: Story, grant_id: str) -> dict:
    for seq in range(story.size):
        entry = story.entry(seq)
        if entry["type"] == "grant.requested" and entry["refs"]["grant"] == [grant_id]:
            return entry["body"]["terms"]
    raise AssertionError(grant_id)
