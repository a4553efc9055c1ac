"""Bounded JSON parsing: every request body is read through ``loads`` before any other work. Pure.

Python's ``json`` raises ``RecursionError`` on deep nesting, ``ValueError`` on integers beyond 4,300 digits, and
accepts ``NaN``, ``Infinity``, ``1e400``, lone surrogates and millions of values, which later fail (or burn the CPU)
in places that answer 500. ``loads`` refuses all
of these up front with a ``JSONLimitError`` naming the limit, which the HTTP layers turn into a 400 problem.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 64  # arrays and objects nested in one another; pdx's deepest schema needs 5
MAX_INTEGER_DIGITS = 100  # RFC 8785 signs nothing beyond ±2^53 anyway
INTEGER_BOUND = 10 ** MAX_INTEGER_DIGITS
MAX_VALUES = 100_000  # values in one body; a job's bulk travels as base64 strings, so 100,000 is ample


class JSONLimitError(ValueError):
    """A body is not UTF-8 JSON within pdx's limits; ``limit`` names which one (``syntax`` for plain errors)."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit


def _constant(name: str):
    raise JSONLimitError("number-size", f"{name} is not JSON (RFC 8259 has no NaN or Infinity)")


def _check_shape(value: Any) -> None:
    """Refuse nesting beyond MAX_DEPTH, more than MAX_VALUES values and strings that are not Unicode scalar
    values, without recursion."""
    stack, seen = [(value, 1)], 0
    while stack:
        item, depth = stack.pop()
        seen += 1
        if seen > MAX_VALUES:
            raise JSONLimitError("values", f"the JSON body holds more than {MAX_VALUES:,} values")
        if isinstance(item, str):
            _check_text(item)
            continue
        if isinstance(item, float) and not math.isfinite(item):
            raise JSONLimitError("number-size", "a JSON number overflows a 64-bit float")
        if isinstance(item, int) and not -INTEGER_BOUND < item < INTEGER_BOUND:
            raise JSONLimitError("number-size", f"a JSON integer has more than {MAX_INTEGER_DIGITS} digits")
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
        # No parse_int/parse_float hooks: a Python call per number would make a body of zeros a CPU bomb.
        value = json.loads(data, parse_constant=_constant)
    except JSONLimitError:
        raise
    except RecursionError as exc:
        raise JSONLimitError("depth", f"the JSON body nests arrays and objects more than {MAX_DEPTH} deep") from exc
    except json.JSONDecodeError as exc:
        raise JSONLimitError("syntax", f"the body is not JSON ({exc.msg} at character {exc.pos})") from exc
    except ValueError as exc:  # int() refuses more than sys.get_int_max_str_digits() (4,300) digits
        raise JSONLimitError("number-size", f"a JSON integer has more than {MAX_INTEGER_DIGITS} digits") from exc
    _check_shape(value)
    return value
