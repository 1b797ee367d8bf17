"""JSON from untrusted bytes, bounded before and while it is parsed.

`json.loads` alone accepts things that later blow up far from the parser: an integer of
more than 4300 digits raises a bare `ValueError`, `NaN`/`Infinity` and `1e999` become
floats no contract field can hold, a duplicated key silently keeps the last value (so a
signature could be checked over one reading and applied over another), a lone surrogate
(`"\\ud800"`, or its raw bytes, which `json.loads(bytes)` lets through) cannot be encoded
again, and deep nesting costs recursion. `loads_bounded` refuses all of those with
`JsonRejected`, whose text is the reason (safe to log), and raises nothing else.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

MAX_DEPTH = 32
"""Arrays and objects nested deeper than this are refused before parsing."""
MAX_NUMBER_CHARS = 32
"""A number literal longer than this is refused (a 64-bit integer has 20 characters)."""

_STRING = re.compile(r'"[^"]*"')
_BRACKETS = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_NOT_BRACKETS = bytes(c for c in range(128) if c not in _BRACKETS)


class JsonRejected(ValueError):
    """Bytes that are not bounded, strict JSON; the message says why."""


def loads_bounded(
    payload: bytes, *, max_depth: int = MAX_DEPTH, max_number_chars: int = MAX_NUMBER_CHARS
) -> Any:
    try:
        text = payload.decode("utf-8")  # strict: raw surrogate bytes are refused here
    except UnicodeDecodeError:
        raise JsonRejected("UnicodeDecodeError") from None
    depth = nesting_depth(text)
    if depth > max_depth:
        raise JsonRejected(f"nested {depth} deep > {max_depth}")

    def number(literal: str, convert: type[int] | type[float]) -> int | float:
        if len(literal) > max_number_chars:
            raise JsonRejected(f"number of {len(literal)} characters > {max_number_chars}")
        value = convert(literal)
        if isinstance(value, float) and not math.isfinite(value):
            raise JsonRejected(f"number out of range: {literal}")
        return value

    try:
        data = json.loads(
            text,
            object_pairs_hook=_object_without_duplicates,
            parse_int=lambda literal: number(literal, int),
            parse_float=lambda literal: number(literal, float),
            parse_constant=_no_constant,
        )
    except JsonRejected:
        raise
    except (ValueError, RecursionError) as exc:
        raise JsonRejected(type(exc).__name__) from None
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise JsonRejected("invalid UTF-16: a lone surrogate escape") from None
    return data


def nesting_depth(text: str) -> int:
    """How deep arrays and objects nest, counted without parsing (strings skipped)."""
    # Drop escaped backslashes, then escaped quotes: what remains of a string has no quote.
    bare = _STRING.sub("", text.replace("\\\\", "").replace('\\"', ""))
    brackets = bare.encode("ascii", "ignore").translate(None, _NOT_BRACKETS)
    if len(brackets) <= 1:
        return len(brackets)
    return max(0, *accumulate(_BRACKETS[c] for c in brackets))


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JsonRejected(f"duplicate key {key[:32]!a}")
            seen.add(key)
    return data


def _no_constant(name: str) -> Any:
    raise JsonRejected(f"non-finite number {name}")
