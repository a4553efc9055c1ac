"""The policy decision point: one pure function, default deny, any forbid beats any permit.

``decide(principal, action, resources, context)`` looks only at the facts it is given — no database, no clock,
no I/O — and answers ``Decision(allow, reasons, obligations)``. Services gather the facts, enforce the
obligations (minimum group size, differential-privacy noise, charges) and record the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Sequence

from authorization.lifecycle import ACTIVE
from authorization.terms import CORE_GRADE, REGULATOR_GRADE, Scope, Terms
from common.vocab import DP_NOISED_KINDS, DP_REQUIRED_KINDS, PRIVACY_PRESERVING_KINDS, ComputationKind
from common.vocab import Action as ActionName

COMPUTE, DOWNLOAD = ActionName.COMPUTE, ActionName.DOWNLOAD
DOWNLOAD_KIND = ComputationKind.DOWNLOAD
FORBID, PERMIT = "forbid", "permit"


@dataclass(frozen=True)
class PrincipalFacts:
    id: str
    roles: frozenset[str]
    active: bool


@dataclass(frozen=True)
class AssetFacts:
    id: str
    provider_id: str
    provider_active: bool
    domain: str
    grade: int
    published: bool
    computation_kinds: frozenset[str]


@dataclass(frozen=True)
class GrantFacts:
    id: str
    consumer_id: str
    status: str
    scope: Scope
    terms: Terms
    jobs_used: int = 0
    rows_used: int = 0
    epsilon_used: float = 0.0
    core_exception: bool = False  # the regulator allowed grade-4 assets for this scenario
    dp_exception: bool = False  # the regulator allowed statistics without ε on grade ≥ 3 for this grant


@dataclass(frozen=True)
class Action:
    name: str  # COMPUTE or DOWNLOAD
    computation_kind: str


@dataclass(frozen=True)
class Context:
    now: datetime
    grant: GrantFacts | None
    rows: int = 0
    epsilon: float = 0.0
    group_size: int = 0
    result_cells: int = 0


@dataclass(frozen=True)
class Reason:
    effect: str
    code: str
    message: str


@dataclass(frozen=True)
class Obligation:
    code: str  # "min-group-size", "dp-noise", "charge"
    value: object


@dataclass(frozen=True)
class Decision:
    allow: bool
    reasons: tuple[Reason, ...]
    obligations: tuple[Obligation, ...]

    @property
    def forbids(self) -> list[Reason]:
        return [reason for reason in self.reasons if reason.effect == FORBID]

    def reasons_json(self) -> list[dict[str, str]]:
        """Return the reasons as the API and the ledger show them."""
        return [{"effect": r.effect, "code": r.code, "message": r.message} for r in self.reasons]

    def obligations_json(self) -> dict[str, Any]:
        """Return the obligations as the tickets carry them: code -> value."""
        return {o.code: o.value for o in self.obligations}


def _forbid(reasons: list[Reason], code: str, message: str) -> None:
    reasons.append(Reason(FORBID, code, message))


def _asset_forbids(reasons: list[Reason], action: Action, asset: AssetFacts, grant: GrantFacts | None) -> None:
    kind = action.computation_kind
    if not asset.published:
        _forbid(reasons, "asset-not-published", f"asset {asset.id} is not published (it may be retired)")
    if not asset.provider_active:
        _forbid(reasons, "provider-suspended", f"the provider of asset {asset.id} is not active")
    if asset.grade >= CORE_GRADE and not (grant is not None and grant.core_exception):
        _forbid(reasons, "core-data", f"asset {asset.id} is grade 4 (core): no external computation without the "
                                      f"regulator's exception for this scenario")
    if (action.name == DOWNLOAD or kind == DOWNLOAD_KIND) and asset.grade >= 2:
        _forbid(reasons, "download-restricted", f"asset {asset.id} is grade {asset.grade}: raw rows never leave "
                                                f"the provider node")
    if (kind in DP_REQUIRED_KINDS and asset.grade >= REGULATOR_GRADE and grant is not None
            and grant.terms.epsilon is None and not grant.dp_exception):
        _forbid(reasons, "dp-required-for-grade",
                f"asset {asset.id} is grade {asset.grade}: its {kind} results are released only with differential "
                f"privacy; ask for a grant with an epsilon budget (and give the job a positive epsilon), or for the "
                f"regulator's recorded no-DP exception on this grant (co-approve with dp_exception and a reason)")
    if kind not in asset.computation_kinds:
        _forbid(reasons, "kind-not-allowed-by-asset", f"asset {asset.id} does not allow {kind}")
    if asset.grade >= REGULATOR_GRADE and kind not in PRIVACY_PRESERVING_KINDS:
        _forbid(reasons, "privacy-computation-required",
                f"asset {asset.id} is grade {asset.grade}: only homomorphic or federated computation")
    if grant is not None and not grant.scope.covers(asset.id, asset.provider_id, asset.domain, asset.grade):
        _forbid(reasons, "asset-outside-scope", f"asset {asset.id} is outside the scope of grant {grant.id}")


def _grant_forbids(reasons: list[Reason], principal: PrincipalFacts, action: Action, context: Context,
                   grant: GrantFacts) -> None:
    terms = grant.terms
    if grant.consumer_id != principal.id:
        _forbid(reasons, "not-grant-holder", f"grant {grant.id} was given to another participant")
    if grant.status != ACTIVE:
        _forbid(reasons, "grant-not-active", f"grant {grant.id} is {grant.status}")
    if not terms.valid_from <= context.now < terms.valid_until:
        _forbid(reasons, "outside-validity-window", f"grant {grant.id} is valid from {terms.valid_from.isoformat()} "
                                                    f"until {terms.valid_until.isoformat()}")
    if action.computation_kind not in terms.computation_kinds:
        _forbid(reasons, "kind-not-allowed-by-grant", f"grant {grant.id} does not allow {action.computation_kind}")
    if grant.jobs_used + 1 > terms.max_jobs:
        _forbid(reasons, "jobs-exhausted", f"grant {grant.id} allows {terms.max_jobs} jobs, all used")
    if grant.rows_used + context.rows > terms.max_rows:
        _forbid(reasons, "rows-exhausted", f"grant {grant.id} allows {terms.max_rows} rows; {grant.rows_used} used, "
                                           f"{context.rows} more asked")
    if terms.epsilon is not None:
        if action.computation_kind not in DP_NOISED_KINDS:
            _forbid(reasons, "dp-not-applied-by-kind",
                    f"grant {grant.id} releases results only with differential privacy (ε budget "
                    f"{terms.epsilon}), and {action.computation_kind} adds no noise to what it releases: "
                    f"ask for a grant without ε for it, or use {' or '.join(sorted(DP_NOISED_KINDS))}")
        elif context.epsilon <= 0:
            _forbid(reasons, "dp-required", f"grant {grant.id} releases results only with differential privacy "
                                            f"(give a positive epsilon)")
        elif grant.epsilon_used + context.epsilon > terms.epsilon + 1e-12:
            _forbid(reasons, "epsilon-exhausted", f"grant {grant.id} has privacy budget ε={terms.epsilon}; "
                                                  f"{grant.epsilon_used} spent, {context.epsilon} more asked")
    if context.group_size < terms.min_group_size:
        _forbid(reasons, "group-too-small", f"groups must hold at least {terms.min_group_size} rows; the job asks "
                                            f"for {context.group_size}")
    if context.result_cells > terms.max_result_cells:
        _forbid(reasons, "too-many-result-cells", f"grant {grant.id} allows {terms.max_result_cells} result cells; "
                                                  f"the job would release {context.result_cells}")


def decide(principal: PrincipalFacts, action: Action, resources: Sequence[AssetFacts], context: Context) -> Decision:
    """Decide whether ``principal`` may take ``action`` on ``resources`` under ``context.grant``."""
    reasons: list[Reason] = []
    grant = context.grant
    if not principal.active:
        _forbid(reasons, "principal-inactive", f"participant {principal.id} is not active")
    if not resources:
        _forbid(reasons, "no-resources", "name at least one asset")
    open_download = action.name == DOWNLOAD and resources and all(a.grade == 1 for a in resources)
    if grant is None and not open_download:
        _forbid(reasons, "no-grant", "computing on graded data needs an active grant")
    for asset in resources:
        _asset_forbids(reasons, action, asset, grant)
    if grant is not None:
        _grant_forbids(reasons, principal, action, context, grant)
    if reasons:
        return Decision(False, tuple(reasons), ())
    if grant is None:
        return Decision(True, (Reason(PERMIT, "open-data", "grade-1 open data may be downloaded"),), ())
    terms = grant.terms
    obligations = [Obligation("min-group-size", terms.min_group_size)]
    if terms.epsilon is not None:
        obligations.append(Obligation("dp-noise", context.epsilon))
    if terms.price_amount > Decimal(0):
        obligations.append(Obligation("charge", {"amount": str(terms.price_amount), "currency": terms.currency}))
    permit = Reason(PERMIT, "grant-covers", f"grant {grant.id} covers {len(resources)} asset(s) for "
                                            f"{action.computation_kind}")
    return Decision(True, (permit,), tuple(obligations))
