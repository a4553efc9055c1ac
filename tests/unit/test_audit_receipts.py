"""The auditor checks every node receipt a job's entries record (decision 24): signed by the provider's key as the
log registered it, naming that job and provider, and reporting the rows the entry charges."""

from __future__ import annotations

import copy

import pytest

from common import crypto
from ledger import replay
from ledger.entries import SYSTEM_ACTOR
from ledger.receipts import sign_receipt
from ledger.replay import ReplayError, State
from ledger.replay import grants as replay_grants
from ledger.replay.base import Asset, Key, Participant
from tests.unit.audit_log_builder import seeded_key

TAX_KEY, HR_KEY, OLD_TAX_KEY = seeded_key("tax"), seeded_key("hr"), seeded_key("tax/old")


def _state(kind: str = "he-statistics", *, revoked_old: bool = True) -> State:
    """A running job of ``kind`` under an active grant over one asset of each of two providers."""
    state = State()
    for provider, key in (("prt_tax", TAX_KEY), ("prt_hr", HR_KEY), ("prt_tax", OLD_TAX_KEY)):
        state.participants[provider] = Participant(frozenset({"provider"}), "active")
        public_text = crypto.public_key_text(key.public_key())
        revoked = 9 if key is OLD_TAX_KEY and revoked_old else None
        state.keys[crypto.key_fingerprint(public_text)] = Key(provider, key.public_key(), 1, revoked)
    state.participants["prt_outsider"] = Participant(frozenset({"provider"}), "active")
    state.participants["prt_bank"] = Participant(frozenset({"consumer"}), "active")
    state.assets["ast_tax"] = Asset("prt_tax", "published", 2, ("prt_tax", "tax", 2, (), ()))
    state.assets["ast_hr"] = Asset("prt_hr", "published", 2, ("prt_hr", "tax", 2, (), ()))
    terms = {"valid_from": "2026-01-01T00:00:00+00:00", "valid_until": "2027-01-01T00:00:00+00:00",
             "computation_kinds": [kind], "max_jobs": 10, "max_rows": 10_000, "epsilon": None}
    state.grants["grt_1"] = replay_grants.Grant("prt_bank", "scenario", frozenset({"prt_tax", "prt_hr"}), None,
                                                None, frozenset({"ast_tax", "ast_hr"}), False, terms, status="active")
    replay.apply(state, {"type": "job.admitted", "actor": "prt_bank", "time": "2026-12-03T08:00:00.000000Z",
                         "refs": {"grant": ["grt_1"], "job": ["job_1"], "asset": ["ast_tax", "ast_hr"]},
                         "body": {"computation_kind": kind, "rows": 100, "epsilon": 0.0, "obligations": {},
                                  "usage": {"jobs": 1, "rows": 100, "epsilon": 0.0}}})
    return state


def _usage(provider: str, key, rows: int, job: str = "job_1") -> dict:
    receipt = {"job": job, "provider": provider, "assets": [f"ast_{provider[4:]}"], "operation": "he-statistics",
               "rows_used": rows, "result_sha256": "ab" * 32, "wall_ms": 1.0, "served_at": "2026-12-03T08:00:01Z"}
    return {"provider": provider, "rows_used": rows, "receipt": receipt, "signature": sign_receipt(key, receipt)}


def _completed(usage: list[dict]) -> dict:
    used = sum(u["rows_used"] for u in usage)
    return {"type": "job.completed", "actor": SYSTEM_ACTOR, "time": "2026-12-03T08:00:02.000000Z",
            "refs": {"job": ["job_1"], "grant": ["grt_1"]},
            "body": {"result_sha256": "cd" * 32, "usage": usage,
                     "rows": {"declared": 100, "used": used, "released": 100 - used}}}


def _round(usage: list[dict]) -> dict:
    return {"type": "job.round", "actor": SYSTEM_ACTOR, "time": "2026-12-03T08:00:02.000000Z",
            "refs": {"job": ["job_1"], "grant": ["grt_1"]},
            "body": {"round": 0, "phase": "train", "status": "completed", "params_sha256": "0" * 64,
                     "result_sha256": "ef" * 32, "usage": usage, "dropped": []}}


GOOD = [_usage("prt_tax", TAX_KEY, 40), _usage("prt_hr", HR_KEY, 30)]


def test_a_completed_job_whose_receipts_its_providers_signed_replays():
    state = _state()
    replay.apply(state, _completed(GOOD))
    assert state.grants["grt_1"].rows == 70 and "job_1" not in state.grants["grt_1"].running


def test_a_receipt_signed_with_a_key_the_log_revoked_is_refused_and_one_still_registered_is_not():
    with pytest.raises(ReplayError) as refused:
        replay.apply(_state(), _completed([_usage("prt_tax", OLD_TAX_KEY, 40)]))
    assert refused.value.kind == "receipt-signature"
    replay.apply(_state(revoked_old=False), _completed([_usage("prt_tax", OLD_TAX_KEY, 40)]))


def _altered_rows(usage: list[dict]) -> list[dict]:
    usage = copy.deepcopy(usage)
    usage[0]["rows_used"] = usage[0]["receipt"]["rows_used"] = 1  # bill one row, keep the node's signature
    return usage


def _field(usage: list[dict], name: str, value) -> list[dict]:
    usage = copy.deepcopy(usage)
    usage[0][name] = value
    return usage


@pytest.mark.parametrize("usage, kind, says", [
    (_altered_rows(GOOD), "receipt-signature", "altered or forged"),
    ([_usage("prt_tax", HR_KEY, 40)], "receipt-signature", "not signed by any key"),
    ([_usage("prt_tax", TAX_KEY, 40, job="job_other")], "receipt", "job_other"),
    (_field(GOOD, "provider", "prt_hr"), "receipt", "a receipt for (job, provider)"),
    (_field(GOOD, "rows_used", 5), "receipt", "reports 40"),
    (_field(GOOD, "signature", None), "receipt-signature", "not signed"),
    ([_usage("prt_outsider", TAX_KEY, 1)], "receipt", "holds no asset of job job_1"),
    ([GOOD[0], GOOD[0]], "receipt", "two receipts of prt_tax"),
])
def test_a_receipt_that_is_not_what_its_provider_signed_for_this_job_fails_the_replay(usage, kind, says):
    for entry in (_completed(usage), _round(usage)):
        state = _state("federated-learning" if entry["type"] == "job.round" else "he-statistics")
        with pytest.raises(ReplayError) as refused:
            replay.apply(state, entry)
        assert refused.value.kind == kind and says in str(refused.value), refused.value


def test_a_training_round_whose_receipts_its_providers_signed_replays():
    state = _state("federated-learning")
    replay.apply(state, _round(GOOD))
    assert state.grants["grt_1"].federated["job_1"] == 1
