"""Request and response schemas of the participants API."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from participants.rules import ROLES, STATUSES
from web.schemas import PageArgs, RequestSchema, page_schema

NAME = validate.Length(min=1, max=200)
LABEL = validate.Length(min=1, max=100)


class ParticipantCreate(RequestSchema):
    name_zh = fields.String(required=True, validate=NAME, metadata={"description": "Chinese name of the organisation"})
    name_en = fields.String(required=True, validate=NAME, metadata={"description": "English name"})
    roles = fields.List(fields.String(validate=validate.OneOf(ROLES)), required=True,
                        validate=validate.Length(min=1, max=len(ROLES)))
    contact_email = fields.Email(load_default=None, allow_none=True)


class Participant(Schema):
    id = fields.String()
    name_zh = fields.String()
    name_en = fields.String()
    roles = fields.List(fields.String())
    status = fields.String(metadata={"description": "pending, active or suspended"})
    status_reason = fields.String(allow_none=True)
    contact_email = fields.String(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class Token(Schema):
    id = fields.String()
    label = fields.String(allow_none=True)
    created_at = fields.DateTime()
    revoked_at = fields.DateTime(allow_none=True)


class IssuedToken(Schema):
    token = fields.String(metadata={"description": "the secret, shown only in this response"})
    id = fields.String()
    label = fields.String(allow_none=True)


class Enrolment(Schema):
    participant = fields.Nested(Participant)
    token = fields.Nested(IssuedToken)


class StatusChange(RequestSchema):
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))


class ParticipantQuery(PageArgs):
    role = fields.String(load_default=None, validate=validate.OneOf(ROLES))
    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES))


HEX_KEY_ID = validate.Regexp(r"^[0-9a-f]{64}$", error="must be a key id: hex SHA-256 of the raw public key")


class Endorsement(RequestSchema):
    key = fields.String(required=True, validate=HEX_KEY_ID,
                        metadata={"description": "id of an unrevoked key the participant already has"})
    signature = fields.String(required=True, validate=validate.Length(min=1, max=200),
                              metadata={"description": "base64 Ed25519 signature by that key of "
                                                       "'pdx-key-endorsement/v1\\n<participant id>\\n"
                                                       "<new public key>\\n'"})


class Approval(RequestSchema):
    operator = fields.String(required=True, validate=validate.Length(min=1, max=40),
                             metadata={"description": "id of the approving operator"})
    key = fields.String(required=True, validate=HEX_KEY_ID, metadata={"description": "the operator's key id"})
    approved_at = fields.String(required=True, validate=validate.Length(min=1, max=40),
                                metadata={"description": "UTC, YYYY-MM-DDTHH:MM:SS.ffffffZ; valid for 7 days"})
    signature = fields.String(required=True, validate=validate.Length(min=1, max=200),
                              metadata={"description": "base64 Ed25519 signature by the operator's key of "
                                                       "'pdx-key-approval/v1\\n<participant id>\\n<new public "
                                                       "key>\\n<operator id>\\n<approved_at>\\n'"})


class KeyRegistration(RequestSchema):
    public_key = fields.String(required=True, validate=validate.Length(min=1, max=100),
                               metadata={"description": "base64 of the raw 32-byte Ed25519 public key"})
    proof = fields.String(required=True, validate=validate.Length(min=1, max=200),
                          metadata={"description": "base64 Ed25519 signature of 'pdx-key-registration/v1\\n"
                                                   "<participant id>\\n<public key>\\n'"})
    label = fields.String(load_default=None, allow_none=True, validate=LABEL)
    endorsement = fields.Nested(Endorsement, load_default=None, allow_none=True,
                                metadata={"description": "a further key: vouched for by an existing key"})
    approval = fields.Nested(Approval, load_default=None, allow_none=True,
                             metadata={"description": "a first or recovery key: approved by an operator"})


class Key(Schema):
    id = fields.String(metadata={"description": "hex SHA-256 of the raw public key"})
    participant_id = fields.String()
    public_key = fields.String()
    label = fields.String(allow_none=True)
    created_at = fields.DateTime()
    revoked_at = fields.DateTime(allow_none=True)


class TokenRequest(RequestSchema):
    label = fields.String(load_default=None, allow_none=True, validate=LABEL)


ParticipantPage = page_schema(Participant, "ParticipantPage")
