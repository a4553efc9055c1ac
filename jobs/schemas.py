"""Request and response schemas of the job API."""

from __future__ import annotations

import base64

from marshmallow import Schema, fields

from authorization.schemas import JobBody

__all__ = ["JobBody", "JobResultSchema", "JobSchema"]  # a job's body is the one the decision point reads


class JobResultSchema(Schema):
    job_id = fields.String()
    result = fields.Function(lambda r: None if r.result is None else base64.b64encode(r.result).decode(),
                             metadata={"description": "base64 of the summed ciphertext; only the consumer decrypts it"})
    result_sha256 = fields.String(allow_none=True)
    receipts = fields.List(fields.Dict(), metadata={"description": "each provider node's signed receipt"})
    error = fields.String(allow_none=True)
    finished_at = fields.DateTime()
    release = fields.Dict(allow_none=True, metadata={
        "description": "differential privacy: the ε, the bounds and each statistic's share of ε, sensitivity and "
                       "Laplace noise scale (null when the result carries no noise)"})


class JobSchema(Schema):
    id = fields.String()
    grant_id = fields.String()
    consumer_id = fields.String()
    computation_kind = fields.String()
    assets = fields.List(fields.String())
    params_sha256 = fields.String()
    context_sha256 = fields.String(allow_none=True)
    rows_reserved = fields.Integer()
    epsilon = fields.Float()
    status = fields.String()
    created_at = fields.DateTime()
