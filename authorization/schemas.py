"""Request and response schemas of the authorization API."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from authorization import lifecycle
from authorization.terms import KIND_NAMES, KINDS, Terms
from catalog.schemas import DOMAIN_CODE
from catalog.vocab import COMPUTATION_KINDS, CURRENCIES
from common.vocab import Action
from web.schemas import Amount, PageArgs, RequestSchema, page_schema

ID = validate.Length(min=1, max=40)
UTC = timezone.utc
HEX_HASH = validate.Regexp(r"^[0-9a-f]{64}$", error="a hex SHA-256 hash")


class PriceTerms(RequestSchema):
    amount = Amount(load_default=Decimal("0"), validate=validate.Range(min=0, max=10**9))
    currency = fields.String(load_default="CNY", validate=validate.OneOf(CURRENCIES))


class TermsSchema(RequestSchema):
    computation_kinds = fields.List(fields.String(validate=validate.OneOf(COMPUTATION_KINDS)), required=True,
                                    validate=validate.Length(min=1, max=len(COMPUTATION_KINDS)))
    valid_from = fields.AwareDateTime(load_default=None, default_timezone=UTC, allow_none=True,
                                      metadata={"description": "default: now"})
    valid_until = fields.AwareDateTime(required=True, default_timezone=UTC)
    max_jobs = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=1_000_000))
    max_rows = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=10**12))
    min_group_size = fields.Integer(load_default=10, strict=True, validate=validate.Range(min=1, max=1_000_000))
    max_result_cells = fields.Integer(load_default=1000, strict=True, validate=validate.Range(min=1, max=10**6))
    epsilon = fields.Float(load_default=None, allow_none=True, allow_nan=False,
                           validate=validate.Range(min=0, min_inclusive=False, max=100),
                           metadata={"description": "differential-privacy budget ε for the whole grant"})
    price = fields.Nested(PriceTerms, load_default=lambda: {"amount": Decimal("0"), "currency": "CNY"})

    @post_load
    def _to_terms(self, data, **_kwargs) -> Terms:
        return Terms(computation_kinds=frozenset(data["computation_kinds"]),
                     valid_from=(data["valid_from"] or datetime.now(UTC)).astimezone(UTC),
                     valid_until=data["valid_until"].astimezone(UTC), max_jobs=data["max_jobs"],
                     max_rows=data["max_rows"], min_group_size=data["min_group_size"],
                     max_result_cells=data["max_result_cells"], epsilon=data["epsilon"],
                     price_amount=Decimal(data["price"]["amount"]), currency=data["price"]["currency"])


class GrantRequest(RequestSchema):
    kind = fields.String(required=True, validate=validate.OneOf(KINDS),
                         metadata={"description": "comprehensive 综合授权 · domain 分领域授权 · scenario 依场景授权"})
    providers = fields.List(fields.String(validate=ID), load_default=list, validate=validate.Length(max=100))
    domain = fields.String(load_default=None, allow_none=True, validate=DOMAIN_CODE)
    max_grade = fields.Integer(load_default=None, allow_none=True, strict=True, validate=validate.Range(min=1, max=4))
    assets = fields.List(fields.String(validate=ID), load_default=list, validate=validate.Length(max=100))
    scenario = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=200))
    purpose = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=2000))
    terms = fields.Nested(TermsSchema, required=True)


class GrantAction(RequestSchema):
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))
    terms = fields.Nested(TermsSchema, load_default=None, allow_none=True,
                          metadata={"description": "counter: the narrowed terms offered"})
    core_exception = fields.Boolean(load_default=False, metadata={
        "description": "co-approve: allow grade-4 (core) assets for this scenario"})
    dp_exception = fields.Boolean(load_default=False, metadata={
        "description": "co-approve: allow statistics without differential privacy (no ε) on grade ≥ 3 assets "
                       "under this grant; recorded with the reason, which it requires"})


class Renewal(RequestSchema):
    valid_from = fields.AwareDateTime(load_default=None, default_timezone=UTC, allow_none=True)
    valid_until = fields.AwareDateTime(required=True, default_timezone=UTC)


class Party(Schema):
    provider_id = fields.String()
    decision = fields.String()
    reason = fields.String(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)


class Grant(Schema):
    id = fields.String()
    kind = fields.String()
    kind_zh = fields.Function(lambda g: KIND_NAMES[g.kind])
    status = fields.String()
    consumer_id = fields.String()
    providers = fields.List(fields.Nested(Party), attribute="parties")
    assets = fields.List(fields.String())
    domain = fields.String(allow_none=True)
    max_grade = fields.Integer(allow_none=True)
    scenario = fields.String(allow_none=True)
    purpose = fields.String(allow_none=True)
    terms = fields.Dict()
    requested_terms = fields.Dict()
    counter_terms = fields.Dict(allow_none=True)
    countered_by = fields.String(allow_none=True)
    needs_regulator = fields.Boolean()
    core_exception = fields.Boolean()
    dp_exception = fields.Boolean()
    regulator_id = fields.String(allow_none=True)
    renewal_of = fields.String(allow_none=True)
    usage = fields.Function(lambda g: {"jobs_used": g.jobs_used, "rows_used": g.rows_used,
                                       "epsilon_used": g.epsilon_used})
    end_reason = fields.String(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    activated_at = fields.DateTime(allow_none=True)
    ended_at = fields.DateTime(allow_none=True)
    allowed_actions = fields.List(fields.String(), metadata={"description": "what the caller may do next"})


class GrantQuery(PageArgs):
    status = fields.String(load_default=None, validate=validate.OneOf(lifecycle.STATUSES))
    kind = fields.String(load_default=None, validate=validate.OneOf(KINDS))


class AlertQuery(PageArgs):
    grant = fields.String(load_default=None, validate=ID, metadata={"description": "only this grant's alerts"})


class Alert(Schema):
    """A run of refused probes on one grant (`grant.alert` in the ledger)."""

    id = fields.String()
    grant_id = fields.String()
    refusals = fields.Integer(metadata={"description": "refusals counted (at least the threshold)"})
    threshold = fields.Integer()
    window_seconds = fields.Integer()
    causes = fields.Dict(metadata={"description": "what each refusal named (parameters or forbid codes) → count"})
    jobs = fields.List(fields.String(), metadata={"description": "jobs refused by a node, by data-dependent rule"})
    first_at = fields.DateTime()
    raised_at = fields.DateTime()
    ledger_seq = fields.Integer(metadata={"description": "the `grant.alert` entry"})


class JobBody(RequestSchema):
    """A job as the decision point and admission see it; `POST /decisions` takes the same body."""

    grant = fields.String(required=True, validate=ID)
    assets = fields.List(fields.String(validate=ID), required=True, validate=validate.Length(min=1, max=100))
    computation_kind = fields.String(required=True, validate=validate.OneOf(COMPUTATION_KINDS))
    params = fields.Dict(keys=fields.String(), load_default=dict, metadata={"description": "operation parameters"})
    context_sha256 = fields.String(load_default=None, allow_none=True, validate=HEX_HASH,
                                   metadata={"description": "hex SHA-256 of the consumer's public HE context"})
    context = fields.String(load_default=None, allow_none=True, metadata={
        "description": "base64 of the consumer's public CKKS context (never with its secret key)"})
    weights = fields.String(load_default=None, allow_none=True, metadata={
        "description": "he-scoring: base64 of the model weights encrypted under that context"})
    rows = fields.Integer(load_default=0, strict=True, validate=validate.Range(min=0, max=10**12))
    epsilon = fields.Float(load_default=0.0, allow_nan=False, validate=validate.Range(min=0, max=100))
    group_size = fields.Integer(load_default=0, strict=True, validate=validate.Range(min=0, max=10**9),
                                metadata={"description": "the smallest group the job will release"})
    result_cells = fields.Integer(load_default=1, strict=True, validate=validate.Range(min=0, max=10**9))


class DecisionBody(JobBody):
    action = fields.String(load_default=Action.COMPUTE, validate=validate.OneOf(list(Action)))
    grant = fields.String(load_default=None, allow_none=True, validate=ID)

    @validates_schema
    def _grant_unless_open_download(self, data, **_kwargs):
        if data.get("grant") is None and data.get("action") != Action.DOWNLOAD:
            raise ValidationError("a computation is decided under a grant", field_name="grant")


class Reason(Schema):
    effect = fields.String()
    code = fields.String()
    message = fields.String()


class Decision(Schema):
    allow = fields.Boolean()
    reasons = fields.List(fields.Nested(Reason))
    obligations = fields.Dict()


GrantPage = page_schema(Grant, "GrantPage")
AlertPage = page_schema(Alert, "AlertPage")
