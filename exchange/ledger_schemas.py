"""Schemas of the ledger API."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from web.schemas import RequestSchema

MAX_ENTRIES_PER_CALL = 1000
HEX_HASH = validate.Regexp(r"^[0-9a-f]{64}$", error="a hex SHA-256 hash (64 lower-case hex digits)")


class Checkpoint(Schema):
    origin = fields.String()
    size = fields.Integer()
    root = fields.String(metadata={"description": "base64 root hash"})
    note = fields.String(metadata={"description": "C2SP signed note: body, blank line, log signature and "
                                                  "cosignature lines"})
    cosigners = fields.List(fields.String(), metadata={"description": "participants whose cosignature is on it"})
    log_public_key = fields.String(metadata={"description": "base64 raw Ed25519 public key of the log"})


class CosignatureBody(RequestSchema):
    line = fields.String(required=True, validate=validate.Length(min=10, max=500),
                         metadata={"description": "one signed-note line: '— <name> <base64 key id ‖ timestamp ‖ "
                                                  "signature>'"})


class EntryRange(RequestSchema):
    start = fields.Integer(required=True, validate=validate.Range(min=0))
    end = fields.Integer(required=True, validate=validate.Range(min=1))

    @validates_schema
    def _ordered_and_bounded(self, data, **_kwargs):
        if data["end"] <= data["start"]:
            raise ValidationError("end must be greater than start", field_name="end")
        if data["end"] - data["start"] > MAX_ENTRIES_PER_CALL:
            raise ValidationError(f"at most {MAX_ENTRIES_PER_CALL} entries per call", field_name="end")


class Entry(Schema):
    seq = fields.Integer()
    leaf_hash = fields.String(metadata={"description": "hex RFC 9162 leaf hash of the entry bytes"})
    entry = fields.Raw(metadata={"description": "the entry (its canonical JSON is what was hashed)"})
    operator_sig = fields.String()


class Entries(Schema):
    size = fields.Integer(metadata={"description": "the log's size when read"})
    entries = fields.List(fields.Nested(Entry))


class InclusionArgs(RequestSchema):
    index = fields.Integer(load_default=None, validate=validate.Range(min=0))
    leaf_hash = fields.String(load_default=None, validate=HEX_HASH)
    size = fields.Integer(required=True, validate=validate.Range(min=1))

    @validates_schema
    def _one_way_to_name_the_leaf(self, data, **_kwargs):
        if (data["index"] is None) == (data["leaf_hash"] is None):
            raise ValidationError("give exactly one of index and leaf_hash", field_name="index")


class InclusionProof(Schema):
    index = fields.Integer()
    size = fields.Integer()
    leaf_hash = fields.String()
    root = fields.String(metadata={"description": "base64 root of the tree of that size"})
    proof = fields.List(fields.String(), metadata={"description": "base64 hashes, RFC 9162 §2.1.3"})


class ConsistencyArgs(RequestSchema):
    first = fields.Integer(required=True, validate=validate.Range(min=1))
    second = fields.Integer(required=True, validate=validate.Range(min=1))

    @validates_schema
    def _ordered(self, data, **_kwargs):
        if data["first"] > data["second"]:
            raise ValidationError("first must not exceed second", field_name="first")


class ConsistencyProof(Schema):
    first = fields.Integer()
    second = fields.Integer()
    first_root = fields.String()
    second_root = fields.String()
    proof = fields.List(fields.String(), metadata={"description": "base64 hashes, RFC 9162 §2.1.4"})
