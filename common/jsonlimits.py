"""Bounded JSON parsing: every request body is read through ``loads`` before any other work. Pure.

Python's ``json`` raises ``RecursionError`` on deep nesting, ``ValueError`` on integers beyond 4,300 digits, and
accepts ``NaN``, ``Infinity`` and lone surrogates that later fail in places that answer 500. ``loads`` refuses all
of these up front with a ``JSONLimitError`` naming the limit, which the HTTP layers turn into a 400 problem.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 64  # arrays and objects nested in one another; pdx's deepest schema needs 5
MAX_NUMBER_CHARACTERS = 100  # digits of one number literal; RFC 8785 signs nothing beyond ±2^53 anyway


class JSONLimitError(ValueError):
    """A body is not UTF-8 JSON within pdx's limits; ``limit`` names which one (``syntax`` for plain errors)."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit


def _number(kind: str, convert):
    def parse(text: str):
        if len(text) > MAX_NUMBER_CHARACTERS:
            raise JSONLimitError("number-size", f"a JSON {kind} has {len(text)} characters; at most "
                                                f"{MAX_NUMBER_CHARACTERS} are accepted")
        value = convert(text)
        if isinstance(value, float) and not math.isfinite(value):
            raise JSONLimitError("number-size", f"the JSON number {text} overflows a 64-bit float")
        return value

    return parse


def _constant(name: str):
    raise JSONLimitError("number-size", f"{name} is not JSON (RFC 8259 has no NaN or Infinity)")


def _check_shape(value: Any) -> None:
    """Refuse nesting beyond MAX_DEPTH and strings that are not Unicode scalar values, without recursion."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item)
            continue
        if not isinstance(item, (dict, list)):
            continue
        if depth > MAX_DEPTH:
            raise JSONLimitError("depth", f"the JSON body nests arrays and objects more than {MAX_DEPTH} deep")
        if isinstance(item, dict):
            for key, member in item.items():
                _check_text(key)
                stack.append((member, depth + 1))
        else:
            stack.extend((member, depth + 1) for member in item)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise JSONLimitError("unicode", "the JSON body contains a lone surrogate escape (\\ud800-\\udfff), "
                                        "which is no Unicode character") from exc


def loads(data: bytes | str) -> Any:
    """Parse a JSON text within pdx's limits, or raise ``JSONLimitError`` naming the limit it breaks."""
    if isinstance(data, (bytes, bytearray)):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONLimitError("encoding", f"the body is not UTF-8 (byte {exc.start})") from exc
    try:
        value = json.loads(data, parse_int=_number("integer", int), parse_float=_number("number", float),
                           parse_constant=_constant)
    except JSONLimitError:
        raise
    except RecursionError as exc:
        raise JSONLimitError("depth", f"the JSON body nests arrays and objects more than {MAX_DEPTH} deep") from exc
    except json.JSONDecodeError as exc:
        raise JSONLimitError("syntax", f"the body is not JSON ({exc.msg} at character {exc.pos})") from exc
    except ValueError as exc:  # int() beyond sys.get_int_max_str_digits(), should the limits above ever exceed it
        raise JSONLimitError("number-size", "a JSON number is too large to read") from exc
    _check_shape(value)
    return value
