"""The exchange's controlled vocabularies, each one ``StrEnum`` spelled once here. Pure.

Every layer may import this module (it sits in ``common``), including the offline replay and the provider node.
A member is a ``str`` equal to its value, so stored rows, ledger entries and JSON keep the plain strings; code
names the member instead of repeating the spelling (tests/unit/test_vocab.py holds product code to that).
"""

from __future__ import annotations

from enum import StrEnum


class ComputationKind(StrEnum):
    """What a consumer may run on an asset (a grant's ``computation_kinds``, a job's ``computation_kind``, the
    ticket's ``operation``)."""

    DOWNLOAD = "download"
    AGGREGATE = "aggregate"
    HE_STATISTICS = "he-statistics"
    HE_SCORING = "he-scoring"
    FEDERATED_LEARNING = "federated-learning"


# Kinds that keep every value encrypted or on the node: the only ones a grade ≥ 3 asset may allow.
PRIVACY_PRESERVING_KINDS = frozenset({ComputationKind.HE_STATISTICS, ComputationKind.HE_SCORING,
                                      ComputationKind.FEDERATED_LEARNING})
# The kinds whose nodes apply the `dp-noise` obligation; any other kind would release exact values under an ε grant.
DP_NOISED_KINDS = frozenset({ComputationKind.HE_STATISTICS, ComputationKind.FEDERATED_LEARNING})
# The kinds that release aggregates over a filtered or grouped set of rows: differencing two sets, or a binary
# search of refused and answered filters, recovers one row's value. On grade ≥ 3 they need ε or the regulator's
# recorded no-DP exception (docs/decisions.md: a federated model names no row filter; scoring is per record).
DP_REQUIRED_KINDS = frozenset({ComputationKind.HE_STATISTICS})
# Kinds the exchange runs through provider nodes (a job of another kind is admitted and recorded only).
EXECUTED_KINDS = (ComputationKind.HE_STATISTICS, ComputationKind.HE_SCORING, ComputationKind.FEDERATED_LEARNING)


class Action(StrEnum):
    """What a consumer asks the decision point for: to compute on an asset, or to download it."""

    COMPUTE = "compute"
    DOWNLOAD = "download"


class Role(StrEnum):
    """A participant's role; regulator and operator are never combined with another (separation of duties)."""

    PROVIDER = "provider"
    CONSUMER = "consumer"
    REGULATOR = "regulator"
    OPERATOR = "operator"


class ParticipantStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    SUSPENDED = "suspended"


class AssetStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    RETIRED = "retired"


class GrantKind(StrEnum):
    """The three kinds of authorization: 综合授权, 分领域授权, 依场景授权."""

    COMPREHENSIVE = "comprehensive"
    DOMAIN = "domain"
    SCENARIO = "scenario"


class GrantStatus(StrEnum):
    """Where a grant stands in its lifecycle (``authorization.lifecycle`` draws the transitions)."""

    REQUESTED = "requested"
    COUNTERED = "countered"
    PROVIDER_APPROVED = "provider-approved"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REJECTED = "rejected"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"
    REVOKED = "revoked"
    TERMINATED = "terminated"
    EXPIRED = "expired"


class ProviderDecision(StrEnum):
    """One provider's decision on a grant request."""

    PENDING = "pending"
    APPROVED = "approved"
    COUNTERED = "countered"
    REJECTED = "rejected"


class JobStatus(StrEnum):
    """A job: admitted, running (a federated training between its rounds), then completed or failed."""

    ADMITTED = "admitted"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class RoundStatus(StrEnum):
    """A federated training round."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class Phase(StrEnum):
    """What a federated round computes: the features' moments (round 0, when no bounds standardize) or updates."""

    MOMENTS = "moments"
    TRAIN = "train"
