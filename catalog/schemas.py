"""Request and response schemas of the catalog API."""

from __future__ import annotations

from decimal import Decimal

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from catalog import rules, vocab
from web.schemas import Amount, PageArgs, RequestSchema, page_schema

CODE = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$",
                       error="letters, digits and . _ : / - only, at most 64 characters")
DOMAIN_CODE = validate.Regexp(r"^[a-z][a-z0-9-]{1,63}$", error="lower-case letters, digits and - only")
TITLE = validate.Length(min=1, max=200)
DESCRIPTION = validate.Length(min=1, max=10_000)


class FieldSpec(RequestSchema):
    name = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$",
                                                                 error="an identifier of at most 64 characters"))
    type = fields.String(required=True, validate=validate.OneOf(vocab.FIELD_TYPES))
    unit = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=50))
    description = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=1000))
    personal = fields.Boolean(load_default=False, metadata={"description": "holds personal information (个人信息)"})
    filterable = fields.Boolean(load_default=False, metadata={
        "description": "statistics may filter (row_filter) and group (group_by) rows on this field; off unless the "
                       "provider opts in, since a filter on an identifying field singles out one record"})
    minimum = fields.Float(load_default=None, allow_none=True, allow_nan=False, metadata={
        "description": "number/integer fields: the least value the column holds (with maximum; encrypted scoring "
                       "scales the column by this range and refuses values outside it)"})
    maximum = fields.Float(load_default=None, allow_none=True, allow_nan=False,
                           metadata={"description": "number/integer fields: the greatest value the column holds"})


class Price(RequestSchema):
    model = fields.String(required=True, validate=validate.OneOf(vocab.PRICE_MODELS))
    amount = Amount(load_default=Decimal("0.00"), validate=validate.Range(min=0, max=10**9))
    currency = fields.String(load_default="CNY", validate=validate.OneOf(vocab.CURRENCIES))
    unit_rows = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1, max=10**9),
                               metadata={"description": "for per-row pricing: rows per charged unit"})

    @validates_schema
    def _unit_rows_only_for_per_row(self, data: dict, **_kwargs) -> None:
        per_row = data.get("model") == "per-row"
        if per_row and not data.get("unit_rows"):
            raise ValidationError("per-row pricing needs unit_rows", field_name="unit_rows")
        if not per_row and data.get("unit_rows"):
            raise ValidationError("unit_rows applies to per-row pricing only", field_name="unit_rows")
        if data.get("model") == "free" and data.get("amount") not in (None, 0):
            raise ValidationError("free assets have amount 0", field_name="amount")

    @post_load
    def _amount_as_text(self, data: dict, **_kwargs) -> dict:
        data["amount"] = str(data["amount"])  # stored as exact decimal text, never a float
        return data


class AssetBody(RequestSchema):
    """Everything a provider states about an asset."""

    title_zh = fields.String(required=True, validate=TITLE)
    title_en = fields.String(required=True, validate=TITLE)
    description_zh = fields.String(required=True, validate=DESCRIPTION)
    description_en = fields.String(required=True, validate=DESCRIPTION)
    domain = fields.String(required=True, validate=DOMAIN_CODE)
    keywords = fields.List(fields.String(validate=validate.Length(min=1, max=50)), load_default=list,
                           validate=validate.Length(max=30))
    # "fields" would shadow marshmallow's module in the class body, hence the data_key.
    field_specs = fields.List(fields.Nested(FieldSpec), required=True, data_key="fields",
                              validate=validate.Length(min=1, max=500))
    grade = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=4),
                           metadata={"description": "1 open, 2 restricted, 3 sensitive, 4 core"})
    computation_kinds = fields.List(fields.String(validate=validate.OneOf(vocab.COMPUTATION_KINDS)),
                                    required=True, validate=validate.Length(min=1))
    update_frequency = fields.String(required=True, validate=validate.OneOf(tuple(vocab.FREQUENCIES)))
    license = fields.String(required=True, validate=validate.Length(min=1, max=200))
    price = fields.Nested(Price, required=True)
    node_endpoint = fields.Url(required=True, schemes={"http", "https"}, require_tld=False,
                               validate=validate.Length(max=500),
                               metadata={"description": "the provider node where the data is mounted (数据资源挂载)"})
    dataset = fields.String(load_default=None, allow_none=True,
                            validate=validate.Regexp(r"^[A-Za-z0-9_.-]{1,100}$"),
                            metadata={"description": "name of the dataset on the node; defaults to the asset id"})
    authoritative_for = fields.List(fields.String(validate=CODE), load_default=list,
                                    validate=validate.Length(max=200),
                                    metadata={"description": "data-element codes this asset is the authoritative "
                                                             "source of (一数一源)"})


    @post_load
    def _rename_fields(self, data: dict, **_kwargs) -> dict:
        if "field_specs" in data:
            data["fields"] = data.pop("field_specs")
        return data


class AssetPatch(AssetBody):
    """A partial change: any subset of the asset's fields (nothing is required, no defaults are filled in).

    Only the top-level fields are optional: a nested value such as ``price`` is replaced whole, so it must
    be complete.
    """

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("partial", tuple(AssetBody._declared_fields))
        super().__init__(*args, **kwargs)


class Asset(Schema):
    id = fields.String()
    provider_id = fields.String()
    status = fields.String()
    title_zh = fields.String()
    title_en = fields.String()
    description_zh = fields.String()
    description_en = fields.String()
    domain = fields.String(attribute="domain_code")
    keywords = fields.List(fields.String())
    field_specs = fields.List(fields.Nested(FieldSpec), data_key="fields", attribute="fields")
    grade = fields.Integer()
    computation_kinds = fields.List(fields.String())
    update_frequency = fields.String()
    license = fields.String()
    price = fields.Nested(Price)
    node_endpoint = fields.String()
    pending_node_endpoint = fields.String(allow_none=True, metadata={
        "description": "a node endpoint change the operator has not decided yet"})
    dataset = fields.String()
    authoritative_for = fields.List(fields.String(), attribute="element_codes")
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    published_at = fields.DateTime(allow_none=True)
    retired_at = fields.DateTime(allow_none=True)


class EndpointChange(RequestSchema):
    node_endpoint = fields.Url(required=True, schemes={"http", "https"}, require_tld=False,
                               validate=validate.Length(max=500),
                               metadata={"description": "the node that will serve the asset; it must prove it "
                                                        "holds one of the provider's registered keys"})


class EndpointDecision(RequestSchema):
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))


class AssetQuery(PageArgs):
    q = fields.String(load_default=None, validate=validate.Length(min=1, max=200),
                      metadata={"description": "text; every whitespace-separated token must occur (zh or en)"})
    domain = fields.String(load_default=None, validate=DOMAIN_CODE)
    grade = fields.Integer(load_default=None, validate=validate.Range(min=1, max=4))
    max_grade = fields.Integer(load_default=None, validate=validate.Range(min=1, max=4))
    provider = fields.String(load_default=None, validate=validate.Length(min=1, max=40))
    computation_kind = fields.String(load_default=None, validate=validate.OneOf(vocab.COMPUTATION_KINDS))
    status = fields.String(load_default=rules.PUBLISHED, validate=validate.OneOf(rules.ASSET_STATUSES))


class Domain(RequestSchema):
    code = fields.String(required=True, validate=DOMAIN_CODE)
    name_zh = fields.String(required=True, validate=validate.Length(min=1, max=100))
    name_en = fields.String(required=True, validate=validate.Length(min=1, max=100))
    eu_theme = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(vocab.EU_THEMES))


AssetPage = page_schema(Asset, "AssetPage")
