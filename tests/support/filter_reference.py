"""A plain-Python reading of FILTERS.md, independent of the SQL compiler.

``matches(filter, metadata)`` says whether a document with ``metadata`` (a JSON-like
dict, as stored) matches a *valid* filter. The integration tests compare the database's
answers with this function, so it is written to be obviously right rather than fast.

JSON model: a document's values are what ``json.dumps`` stores, so numbers compare as the
decimal numbers written in the JSON text (a float is its shortest ``repr``), booleans are
not numbers, and strings compare by code point.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

__all__ = ["MISSING", "json_equal", "json_type", "like", "lookup", "matches"]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    raise TypeError(f"not a JSON value: {value!r}")


def _number(value: int | float) -> Decimal:
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def json_equal(a: Any, b: Any) -> bool:
    kind = json_type(a)
    if kind != json_type(b):
        return False
    if kind == "number":
        return _number(a) == _number(b)
    if kind == "array":
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if kind == "object":
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def lookup(metadata: Mapping[str, Any], field: str) -> Any:
    """The value at a dotted field, or MISSING (absent key, or a non-object on the path)."""
    value: Any = metadata
    for key in field.split("."):
        if not isinstance(value, dict) or key not in value:
            return MISSING
        value = value[key]
    return value


def _like_regex(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            parts.append(re.escape(next(chars)))
        elif char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL)


def like(value: str, pattern: str) -> bool:
    return _like_regex(pattern).fullmatch(value) is not None


def _lower(text: str, unicode_case: bool) -> str:
    # PostgreSQL lowers character by character (simple case mapping); Python's str.lower
    # uses full, context-sensitive mappings for a few characters, so map one at a time.
    if not unicode_case:
        return "".join(c.lower() if c.isascii() else c for c in text)
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def _eq(value: Any, operand: Any) -> bool:
    return value is not MISSING and json_equal(value, operand)


def _ordered(value: Any, operand: Any) -> Any:
    """The comparable form of ``value`` if it has the operand's JSON type, else MISSING."""
    kind = json_type(operand)
    if value is MISSING or json_type(value) != kind:
        return MISSING
    return _number(value) if kind == "number" else value


def _compare(value: Any, op: str, operand: Any) -> bool:
    left = _ordered(value, operand)
    if left is MISSING:
        return False
    right = _number(operand) if json_type(operand) == "number" else operand
    if op == "$gt":
        return bool(left > right)
    if op == "$gte":
        return bool(left >= right)
    if op == "$lt":
        return bool(left < right)
    return bool(left <= right)


def _operator(value: Any, op: str, operand: Any, unicode_case: bool) -> bool:
    if op == "$eq":
        return _eq(value, operand)
    if op == "$ne":
        return not _eq(value, operand)
    if op in ("$gt", "$gte", "$lt", "$lte"):
        return _compare(value, op, operand)
    if op == "$between":
        low, high = operand
        return _compare(value, "$gte", low) and _compare(value, "$lte", high)
    if op == "$in":
        return any(_eq(value, item) for item in operand)
    if op == "$nin":
        return not any(_eq(value, item) for item in operand)
    if op == "$like":
        return isinstance(value, str) and like(value, operand)
    if op == "$ilike":
        return isinstance(value, str) and like(
            _lower(value, unicode_case), _lower(operand, unicode_case)
        )
    if op == "$exists":
        return (value is not MISSING) is operand
    if op == "$contains":
        items = operand if isinstance(operand, list | tuple) else [operand]
        return isinstance(value, list) and all(
            any(json_equal(element, item) for element in value) for item in items
        )
    raise ValueError(f"unknown operator {op}")


def matches(
    filter: Mapping[str, Any] | None, metadata: Mapping[str, Any], *, unicode_case: bool = True
) -> bool:
    """Whether ``metadata`` matches the (valid) ``filter``.

    ``unicode_case=False`` folds only ASCII letters for ``$ilike``, as PostgreSQL does when
    the database's default collation is ``C``.
    """
    if not filter:
        return True
    for key, value in filter.items():
        if key == "$and":
            ok = all(matches(part, metadata, unicode_case=unicode_case) for part in value)
        elif key == "$or":
            ok = any(matches(part, metadata, unicode_case=unicode_case) for part in value)
        elif key == "$not":
            ok = not matches(value, metadata, unicode_case=unicode_case)
        else:
            found = lookup(metadata, key)
            operators = value if isinstance(value, Mapping) else {"$eq": value}
            ok = all(
                _operator(found, op, operand, unicode_case) for op, operand in operators.items()
            )
        if not ok:
            return False
    return True
