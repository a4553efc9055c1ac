"""Replay rules for authorizations and jobs (the lifecycle and scope rule are ``common.grant_rules``, which the
exchange's workflow applies too; the rest as the decision point states them). Pure.

What the auditor proves from these: every job cites a grant that was active at its sequence number, within its
window, for assets inside the grant's scope and of a kind the grant allows; nothing uses a grant after its
revocation, termination or expiry; the jobs, rows and ε consumed never exceed the grant's terms (and match what
the entry claims); every grant that touches a grade ≥ 3 asset, and every comprehensive grant, carries the
regulator's approval entry before it is active; grade-4 assets are used only under the regulator's exception;
statistics on a grade ≥ 3 asset spend ε under a budget, or run under the regulator's recorded no-DP exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from common import grant_rules
from common.grant_rules import (
    ACTIVATES_FROM,
    ACTIVE,
    CORE_GRADE,
    EXPIRED,
    LIVE,
    OPEN,
    REGULATOR_GRADE,
    REQUESTED,
    SYSTEM,
    TRANSITIONS,
)
from common.vocab import DP_REQUIRED_KINDS, ComputationKind, GrantKind
from ledger.entries import SYSTEM_ACTOR, parse_time
from ledger.replay.base import (
    API,
    CONSUMER,
    PROVIDER,
    PUBLISHED,
    REGULATOR,
    ReplayError,
    Route,
    Rule,
    State,
    expect,
    ref,
    require_role,
    roles_of,
)
from ledger.replay.receipts import check_usage

COMPREHENSIVE, DOMAIN, SCENARIO = GrantKind.COMPREHENSIVE, GrantKind.DOMAIN, GrantKind.SCENARIO
EPSILON_SLACK = 1e-9

# entry type -> (party who takes it, statuses it may start from, action path segment): the exchange's own table
ACTIONS: dict[str, tuple[str, frozenset[str], str]] = {
    t.entry: (t.party, t.sources, action) for action, t in TRANSITIONS.items() if t.party != SYSTEM}
SYSTEM_TYPES = frozenset({"grant.activated", "grant.expired", "grant.alert", "job.completed", "job.failed"})


@dataclass(slots=True)
class Grant:
    """A grant as the log has made it so far."""

    consumer: str
    kind: str
    providers: frozenset[str]
    domain: str | None
    max_grade: int | None
    assets: frozenset[str]
    needs_regulator: bool
    terms: dict[str, Any]
    status: str = REQUESTED
    approved_by: set[str] = field(default_factory=set)
    countered_by: str | None = None
    regulator_approved: bool = False
    core_exception: bool = False
    dp_exception: bool = False
    jobs: int = 0
    rows: int = 0
    epsilon: float = 0.0
    running: dict[str, tuple[int, float]] = field(default_factory=dict)  # job id -> rows and ε it reserved
    federated: dict[str, int] = field(default_factory=dict)  # federated training job id -> rounds recorded
    job_providers: dict[str, frozenset[str]] = field(default_factory=dict)  # running job id -> its assets' owners
    refused_jobs: set[str] = field(default_factory=set)  # jobs a node refused with the quota kept spent
    last_alerted: datetime | None = None  # the latest refusal the grant's last alert counted


def grant_of(state: State, entry: dict) -> tuple[str, Grant]:
    grant_id = ref(entry, "grant")
    grant = state.grants.get(grant_id)
    if grant is None:
        raise ReplayError("unknown-grant", f"grant {grant_id} was never requested")
    return grant_id, grant


def _asset_facts(state: State, asset_id: str) -> tuple[str, str, int]:
    asset = state.assets.get(asset_id)
    if asset is None or asset.status != PUBLISHED:
        raise ReplayError("asset-status", f"asset {asset_id} is not published here")
    return asset.provider, asset.scope[1], asset.grade


def _requested(state: State, entry: dict) -> None:
    require_role(state, entry, CONSUMER)
    grant_id, body = ref(entry, "grant"), entry["body"]
    if grant_id in state.grants:
        raise ReplayError("duplicate-grant", f"grant {grant_id} was already requested")
    kind, providers = body["kind"], frozenset(body["providers"])
    if kind not in (COMPREHENSIVE, DOMAIN, SCENARIO) or not providers or entry["actor"] in providers:
        raise ReplayError("grant-scope", f"a {kind!r} request by {entry['actor']} names providers {sorted(providers)}")
    for provider in providers:
        if PROVIDER not in roles_of(state, provider):
            raise ReplayError("grant-scope", f"{provider} is not a provider")
    grades = [_asset_facts(state, a)[2] for a in body["assets"]] if kind == SCENARIO else [body["max_grade"]]
    if kind == SCENARIO and {_asset_facts(state, a)[0] for a in body["assets"]} != providers:
        raise ReplayError("grant-scope", "a per-scenario grant is decided by exactly the owners of its assets")
    if kind != SCENARIO and not 1 <= body["max_grade"] < CORE_GRADE:
        raise ReplayError("grant-scope", f"a {kind} grant reaches at most grade 3, found {body['max_grade']}")
    needed = grant_rules.needs_regulator(kind, grades)
    if needed and not body["needs_regulator"]:
        raise ReplayError("regulator-approval", f"grant {grant_id} touches grade ≥ 3 or is comprehensive, but "
                                                f"does not ask for the regulator's co-approval")
    state.grants[grant_id] = Grant(entry["actor"], kind, providers, body.get("domain"), body.get("max_grade"),
                                   frozenset(body["assets"]), bool(body["needs_regulator"]), body["terms"])


def _acted(state: State, entry: dict) -> None:
    party, sources, _ = ACTIONS[entry["type"]]
    grant_id, grant = grant_of(state, entry)
    actor = entry["actor"]
    allowed = {CONSUMER: actor == grant.consumer, PROVIDER: actor in grant.providers,
               REGULATOR: REGULATOR in roles_of(state, actor)}[party]
    if not allowed:
        raise ReplayError("grant-party", f"{entry['type']} is taken by the grant's {party}; {actor} is not")
    if grant.status not in sources:
        raise ReplayError("grant-transition", f"{entry['type']} needs grant {grant_id} to be "
                                              f"{' or '.join(sorted(sources))}; it is {grant.status}")
    if entry["type"] == "grant.provider_approved":
        grant.approved_by.add(actor)
    elif entry["type"] == "grant.countered":
        grant.countered_by = actor
    elif entry["type"] == "grant.counter_accepted":
        grant.terms = entry["body"]["terms"]
        grant.approved_by.add(grant.countered_by)  # accepting a counter-offer is that provider's approval
    elif entry["type"] == "grant.regulator_approved":
        grant.regulator_approved = True
        grant.core_exception = bool(entry["body"].get("core_exception"))
        grant.dp_exception = bool(entry["body"].get("dp_exception"))
        if grant.dp_exception and not (entry["body"].get("reason") or "").strip():
            raise ReplayError("dp-exception", f"grant {grant_id}'s no-DP exception is recorded without a reason")
    grant.status = entry["body"]["status"]


def _activated(state: State, entry: dict) -> None:
    grant_id, grant = grant_of(state, entry)
    if entry["actor"] != SYSTEM_ACTOR or grant.status not in ACTIVATES_FROM:
        raise ReplayError("grant-transition", f"grant {grant_id} cannot become active from {grant.status}")
    if grant.approved_by != set(grant.providers):
        missing = sorted(set(grant.providers) - grant.approved_by)
        raise ReplayError("provider-approval", f"grant {grant_id} became active without the approval of "
                                               f"{', '.join(missing)}")
    if grant.needs_regulator and not grant.regulator_approved:
        raise ReplayError("regulator-approval", f"grant {grant_id} became active without the regulator's approval")
    grant.terms = entry["body"]["terms"]
    grant.status = ACTIVE


def _expired(state: State, entry: dict) -> None:
    grant_id, grant = grant_of(state, entry)
    if grant.status not in OPEN | LIVE:
        raise ReplayError("grant-transition", f"grant {grant_id} is {grant.status} and cannot expire")
    if parse_time(entry["time"]) < datetime.fromisoformat(grant.terms["valid_until"]):
        raise ReplayError("grant-expiry", f"grant {grant_id} expired before its window closed")
    grant.status = EXPIRED


def _in_scope(grant: Grant, asset_id: str, provider: str, domain: str, grade: int) -> bool:
    return grant_rules.covers(grant.kind, grant.providers, grant.domain, grant.max_grade, grant.assets, asset_id,
                              provider, domain, grade)


def _job_admitted(state: State, entry: dict) -> None:
    grant_id, grant = grant_of(state, entry)
    body, terms = entry["body"], grant.terms
    if entry["actor"] != grant.consumer:
        raise ReplayError("grant-party", f"job by {entry['actor']} under grant {grant_id} of {grant.consumer}")
    if grant.status != ACTIVE:
        raise ReplayError("grant-not-active", f"job under grant {grant_id}, which is {grant.status}")
    moment = parse_time(entry["time"])
    if not datetime.fromisoformat(terms["valid_from"]) <= moment < datetime.fromisoformat(terms["valid_until"]):
        raise ReplayError("grant-window", f"job at {entry['time']} outside the window of grant {grant_id}")
    if body["computation_kind"] not in terms["computation_kinds"]:
        raise ReplayError("grant-kind", f"grant {grant_id} does not allow {body['computation_kind']}")
    owners = set()
    for asset_id in entry["refs"]["asset"]:
        provider, domain, grade = _asset_facts(state, asset_id)
        owners.add(provider)
        if not _in_scope(grant, asset_id, provider, domain, grade):
            raise ReplayError("grant-scope", f"asset {asset_id} is outside the scope of grant {grant_id}")
        if grade >= REGULATOR_GRADE and not grant.regulator_approved:
            raise ReplayError("regulator-approval", f"asset {asset_id} is grade {grade} but grant {grant_id} has no "
                                                    f"regulator approval")
        if grade >= CORE_GRADE and not grant.core_exception:
            raise ReplayError("core-data", f"grade-4 asset {asset_id} used without the regulator's exception")
        private = terms.get("epsilon") is not None and body["epsilon"] > 0 and "dp-noise" in body["obligations"]
        if (body["computation_kind"] in DP_REQUIRED_KINDS and grade >= REGULATOR_GRADE and not private
                and not grant.dp_exception):
            raise ReplayError("dp-required", f"{body['computation_kind']} on grade-{grade} asset {asset_id} under "
                                             f"grant {grant_id} spent no ε and has no recorded no-DP exception")
    grant.jobs, grant.rows = grant.jobs + 1, grant.rows + body["rows"]
    grant.epsilon += body["epsilon"]
    budget = terms.get("epsilon")
    if grant.jobs > terms["max_jobs"] or grant.rows > terms["max_rows"] or (
            budget is not None and grant.epsilon > budget + EPSILON_SLACK):
        raise ReplayError("quota", f"grant {grant_id} used {grant.jobs} jobs, {grant.rows} rows, ε {grant.epsilon}; "
                                   f"its terms allow {terms['max_jobs']}, {terms['max_rows']}, {budget}")
    usage = body["usage"]
    if (usage["jobs"], usage["rows"]) != (grant.jobs, grant.rows) or abs(usage["epsilon"] - grant.epsilon) > 1e-6:
        raise ReplayError("quota", f"job entry claims usage {usage}, the log adds up to {grant.jobs} jobs, "
                                   f"{grant.rows} rows, ε {grant.epsilon}")
    grant.running[ref(entry, "job")] = (body["rows"], body["epsilon"])
    grant.job_providers[ref(entry, "job")] = frozenset(owners)
    if body["computation_kind"] == ComputationKind.FEDERATED_LEARNING:
        grant.federated[ref(entry, "job")] = 0


def _job_finished(state: State, entry: dict) -> None:
    """A job ends once: completed with its result hash (charged the rows its receipts report, at most those it
    reserved), or failed with its reserved quota given back."""
    grant_id, grant = grant_of(state, entry)
    job_id = ref(entry, "job")
    if job_id not in grant.running:
        raise ReplayError("job-status", f"{entry['type']} for job {job_id}, which is not running under {grant_id}")
    rows, epsilon = grant.running.pop(job_id)
    grant.federated.pop(job_id, None)
    providers = grant.job_providers.pop(job_id, frozenset())
    if entry["type"] == "job.completed":
        check_usage(state, entry, job_id, providers)
    if entry["type"] == "job.failed":
        released = entry["body"]["released"]
        given_back = (released["jobs"], released["rows"], released["epsilon"])
        if given_back != (0, 0, 0.0) and ((given_back[0], given_back[1]) != (1, rows)
                                          or abs(given_back[2] - epsilon) > 1e-9):
            raise ReplayError("quota", f"failed job {job_id} gives back {released}; it reserved 1 job, {rows} rows, "
                                       f"ε {epsilon} (a failed job gives back all of it or, if refused, nothing)")
        grant.jobs, grant.rows, grant.epsilon = (grant.jobs - given_back[0], grant.rows - given_back[1],
                                                 grant.epsilon - given_back[2])
        if given_back == (0, 0, 0.0):
            grant.refused_jobs.add(job_id)
    elif "rows" in entry["body"]:  # a completed job is charged the rows its receipts report, the rest given back
        charged = entry["body"]["rows"]
        used = sum(u["rows_used"] for u in entry["body"]["usage"])
        if (charged["declared"], charged["used"]) != (rows, used) or not 0 <= charged["released"] == rows - used:
            raise ReplayError("quota", f"completed job {job_id} reserved {rows} rows and its receipts report {used}; "
                                       f"the entry charges {charged}")
        grant.rows -= charged["released"]
    if entry["type"] == "job.completed" and "release" in entry["body"]:
        _check_release(job_id, epsilon, entry["body"]["release"])


def _check_release(job_id: str, epsilon: float, release: dict) -> None:
    """The noise a private job's result carries spends no more than the ε the job was charged: the statistics'
    shares add up to at most that ε, and each Laplace scale is at least its sensitivity over its share."""
    try:
        shares = [(float(s["epsilon"]), float(s["sensitivity"]), float(s["scale"])) for s in release["statistics"]]
        total = float(release["epsilon"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ReplayError("dp-release", f"job {job_id}'s release is not a noise calibration: {exc!r}") from exc
    if abs(total - epsilon) > 1e-9 or sum(share for share, _, _ in shares) > epsilon * (1 + 1e-9):
        raise ReplayError("dp-release", f"job {job_id} was charged ε {epsilon} but its noise spends "
                                        f"{sum(share for share, _, _ in shares)} (release ε {total})")
    for share, sensitivity, scale in shares:
        if not share > 0 or scale < sensitivity / share * (1 - 1e-9):
            raise ReplayError("dp-release", f"job {job_id}'s noise of scale {scale} on a statistic of sensitivity "
                                            f"{sensitivity} spends more than its share ε {share}")


def _alerted(state: State, entry: dict) -> None:
    """A refusal alert is the exchange's, reaches exactly the grant's providers, counts at least its threshold of
    refusals within its window and after the grant's last alert, and names only jobs a node refused."""
    grant_id, grant = grant_of(state, entry)
    body = entry["body"]
    if entry["actor"] != SYSTEM_ACTOR:
        raise ReplayError("grant-alert", f"alert on grant {grant_id} by {entry['actor']}, not the exchange")
    try:
        refusals, threshold, window = int(body["refusals"]), int(body["threshold"]), int(body["window_seconds"])
        causes, jobs = {str(k): int(v) for k, v in body["causes"].items()}, [str(j) for j in body["jobs"]]
        first, last = parse_time(body["first"]), parse_time(body["last"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ReplayError("grant-alert", f"alert on grant {grant_id} is not a refusal count: {exc!r}") from exc
    if not 1 <= threshold <= refusals or sum(causes.values()) != refusals or len(jobs) > refusals:
        raise ReplayError("grant-alert", f"alert on grant {grant_id} counts {refusals} refusals ({causes}) against "
                                         f"threshold {threshold}")
    if set(entry["refs"].get("participant", [])) != set(grant.providers):
        raise ReplayError("grant-alert", f"alert on grant {grant_id} is not addressed to exactly its providers")
    unknown = sorted(set(jobs) - grant.refused_jobs)
    if unknown:
        raise ReplayError("grant-alert", f"alert on grant {grant_id} names jobs no node refused: {unknown}")
    if not first <= last <= parse_time(entry["time"]) or (last - first).total_seconds() > window or (
            grant.last_alerted is not None and first <= grant.last_alerted):
        raise ReplayError("grant-alert", f"alert on grant {grant_id} counts refusals from {body['first']} to "
                                         f"{body['last']}: outside its {window} s window, or counted before")
    grant.last_alerted = last


def _action_route(entry_type: str) -> Route:
    segment = ACTIONS[entry_type][2]

    def check(entry: dict, request: dict) -> None:
        expect(request, "POST", f"{API}/grants/{ref(entry, 'grant')}/{segment}")

    return check


def _request_route(entry: dict, request: dict) -> None:
    renewal_of = entry["body"].get("renewal_of")
    expect(request, "POST", f"{API}/grants/{renewal_of}/renew" if renewal_of else f"{API}/grants")


RULES: dict[str, Rule] = {"grant.requested": _requested, **{t: _acted for t in ACTIONS},
                          "grant.activated": _activated, "grant.expired": _expired, "grant.alert": _alerted,
                          "job.admitted": _job_admitted,
                          "job.completed": _job_finished, "job.failed": _job_finished}
ROUTES: dict[str, Route] = {"grant.requested": _request_route, **{t: _action_route(t) for t in ACTIONS},
                            "job.admitted": lambda entry, request: expect(request, "POST", f"{API}/jobs")}
