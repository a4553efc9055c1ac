"""Flask glue for bounded JSON (``common.jsonlimits``), shared by the exchange and the provider node."""

from __future__ import annotations

from typing import Any, Callable

from flask import Flask, Response, request
from flask.json.provider import DefaultJSONProvider

from common.jsonlimits import JSONLimitError, loads

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider with ``loads`` bounded in depth, number size and encoding."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s)


def parse_bodies_first(app: Flask, refuse: Callable[[JSONLimitError], Response | None]) -> None:
    """Make ``app`` parse every request body within the limits before any view, auth check or schema runs.

    ``refuse`` turns a broken limit into the app's error answer (return a response, or raise). The body is read
    against ``MAX_CONTENT_LENGTH`` first, so an oversized body is a 413 before a byte of it is parsed.
    """
    app.json = BoundedJSONProvider(app)

    @app.before_request
    def _parse_body_within_limits():
        if request.method not in BODY_METHODS:
            return None
        data = request.get_data(cache=True)
        if not data:
            return None
        try:
            loads(data)
        except JSONLimitError as exc:
            return refuse(exc)
        return None
