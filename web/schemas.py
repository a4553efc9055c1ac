"""The base of every request schema (no control characters) and the envelope of every paginated list."""

from __future__ import annotations

import re
from typing import Any

from flask import request
from marshmallow import Schema, ValidationError, fields, pre_load, validate
from werkzeug.routing import IntegerConverter

from common.errors import InvalidInput

MAX_PER_PAGE = 100
MAX_INT64 = 2**63 - 1


class Count(IntegerConverter):
    """A URL part that is a non-negative integer a 64-bit column can hold (``<count:size>``).

    Werkzeug's ``int`` takes any number of digits, and a larger one reached the database as an overflow (a 500);
    beyond the bound no route matches, so the answer is 404, and the OpenAPI document states the maximum.
    """

    def __init__(self, url_map, *args, **kwargs) -> None:
        super().__init__(url_map, min=0, max=MAX_INT64)


class Amount(fields.Decimal):
    """A money amount: exact decimal text with at most two places, documented as a string ("200.00").

    The OpenAPI type of a decimal is otherwise ``number`` with string bounds, which is no valid OpenAPI.
    """

    OPENAPI = ("string", None)  # (type, format), registered on the API object by exchange.api

    def __init__(self, **kwargs: Any) -> None:
        metadata = {"pattern": r"^[0-9]{1,10}(\.[0-9]{1,2})?$", "example": "200.00", **kwargs.pop("metadata", {})}
        super().__init__(places=2, as_string=True, metadata=metadata, **kwargs)
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _control_character_paths(value, path: str = "") -> dict[str, list[str]]:
    if isinstance(value, str):
        return {path or "_body": ["contains a NUL or control character"]} if CONTROL_CHARACTERS.search(value) else {}
    found: dict[str, list[str]] = {}
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if isinstance(key, str) and CONTROL_CHARACTERS.search(key):
            found["_body"] = ["a field name contains a NUL or control character"]
        found.update(_control_character_paths(item, f"{path}.{key}" if path else str(key)))
    return found


class RequestSchema(Schema):
    """Base of every request schema: refuses NUL and other control characters anywhere in the input.

    PostgreSQL cannot store NUL in text, and no field of pdx has a use for control characters.
    """

    @pre_load
    def _refuse_control_characters(self, data, **_kwargs):
        found = _control_character_paths(data)
        if found:
            raise ValidationError(found)
        return data


def refuse_control_characters_in_url() -> None:
    """Refuse a request whose path or query holds control characters (a ``before_request`` hook)."""
    if CONTROL_CHARACTERS.search(request.path) or any(
            CONTROL_CHARACTERS.search(value) for value in request.args.values()):
        raise InvalidInput("the URL contains a NUL or control character", errors={"_url": ["control character"]})


class PageArgs(RequestSchema):
    """Query arguments of every paginated list."""

    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=MAX_PER_PAGE))


def page_window(args: dict) -> tuple[int, int]:
    """Return (offset, limit) for the page the arguments name."""
    return (args["page"] - 1) * args["per_page"], args["per_page"]


def page_body(items: list, args: dict, total: int) -> dict:
    """Return the envelope of one page of results."""
    return {"items": items, "page": args["page"], "per_page": args["per_page"], "total": total}


def page_schema(item_schema: type[Schema], name: str) -> type[Schema]:
    """Return the schema of a page of ``item_schema`` items."""
    return Schema.from_dict(
        {"items": fields.List(fields.Nested(item_schema)), "page": fields.Integer(),
         "per_page": fields.Integer(), "total": fields.Integer()},
        name=name,
    )
