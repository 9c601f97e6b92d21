"""Compile metadata filters (the language in FILTERS.md) to SQLAlchemy expressions.

The compiler is pure: ``compile_filter(filter, metadata)`` first parses and validates the
whole filter into a small tree (raising ``FilterError`` for anything FILTERS.md rejects),
then builds one boolean ``ColumnElement`` over the JSONB ``metadata`` column. Nothing is
executed here.

SQL shape, and why:

* Equality-style operators (``$eq``, ``$in``, ``$contains``; ``$ne``/``$nin`` as their
  negations) are JSONB containment, ``metadata @> '{"a": {"b": 1}}'``, with the document
  bound as a parameter. Containment is exactly the ``$eq`` of FILTERS.md: numbers compare
  numerically, ``true`` is not ``1``, ``"1"`` is not ``1``, ``null`` matches only ``null``,
  below the top level an array never contains a scalar (``{"a": [1]} @> {"a": 1}`` is
  false), and nested objects never descend into arrays. The GIN ``jsonb_path_ops`` index
  on ``metadata`` serves it (``$in`` becomes a ``BitmapOr`` of containments).
* ``$exists`` is ``(metadata -> 'a' -> 'b') IS [NOT] NULL``. Chained ``->`` with text keys
  yields SQL NULL when a key is absent or a value on the path is not an object (arrays
  included: ``#>`` would read ``"0"`` as an array index, so it is never used), and a JSON
  ``null`` value is a non-NULL jsonb, so it counts as present. ``jsonb_path_ops`` cannot
  serve key existence at all (neither ``?`` nor a jsonpath ``@?`` without a value test:
  both plan as sequential scans), so ``$exists`` is correct but not index-served.
* Range operators (``$gt``, ``$gte``, ``$lt``, ``$lte``, ``$between``) compare the typed
  expression ``metadata_index_expression(metadata, field, kind)``:
  ``CASE WHEN jsonb_typeof(v) = 'number' THEN CAST(v AS NUMERIC) END`` for numbers and
  ``CASE WHEN jsonb_typeof(v) = 'string' THEN parent ->> 'key' END COLLATE "C"`` for
  strings. The ``CASE`` gives NULL (never a cast error) for values of another type, and
  ``COLLATE "C"`` orders UTF-8 text bytewise, which is Unicode code point order. An
  expression index built from the same function therefore matches. We rejected plain
  jsonb comparisons bounded by jsonb's type order (``null < string < number < boolean``):
  jsonb compares strings with the database's default collation, not by code point.
* ``$like`` uses the same ``COLLATE "C"`` string expression (so a prefix pattern can use
  a text expression index); ``$ilike`` uses the string value in the database's default
  collation, since PostgreSQL folds case through the collation's ``lower()`` and under
  ``"C"`` that folds ASCII only. The pattern is bound; ``\\`` is PostgreSQL's default
  LIKE escape, so no ESCAPE clause is needed (a pattern ending in a lone ``\\`` is a
  run-time error in PostgreSQL, so validation rejects it).

Paths are built with explicit ``->`` / ``->>`` operators, not SQLAlchemy's JSONB ``[...]``:
SQLAlchemy 2.1 renders that as PostgreSQL 14 subscripting (``metadata['a']``), which reads
``'0'`` as an array index and would not match indexes made under SQLAlchemy 2.0.

Keys and the type names inside these expressions are rendered as SQL literals (quoted by
SQLAlchemy's ``literal_execute``), never bound parameters: a prepared statement that
PostgreSQL plans generically would otherwise see ``metadata -> $1``, which can never match
an index on ``metadata -> 'a'``. Operand values are always bound parameters; numbers are
bound as ``numeric`` (floats through their shortest ``repr``, which is exactly the JSON
text they are stored as), never ``float8``.

NULL safety: every leaf is TRUE or FALSE whenever ``metadata`` is not NULL (range and LIKE
leaves add ``AND <value> IS NOT NULL``), and negations (``$ne``, ``$nin``, ``$not``) are
written ``<positive> IS NOT TRUE``, which is never NULL. So a complement can never drop
a row through three-valued logic, not even one whose metadata is NULL.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Literal, NamedTuple, TypeGuard, get_args

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql.elements import ColumnElement, False_, Grouping, True_

from ._errors import FilterError
from ._validate import brief, unstorable

__all__ = [
    "FIELD_OPERATORS",
    "INDEX_KINDS",
    "LOGICAL_OPERATORS",
    "IndexKind",
    "compile_filter",
    "metadata_index_expression",
    "validate_filter",
]

IndexKind = Literal["number", "text"]
"""The operand types range operators compare: JSON numbers (as ``numeric``) or JSON
strings (as ``text COLLATE "C"``). Equality-style operators need no expression index:
the GIN index on ``metadata`` serves them for every type, booleans included."""

INDEX_KINDS: Final[tuple[str, ...]] = get_args(IndexKind)

Path = tuple[str, ...]
MetadataColumn = ColumnElement[Any] | QueryableAttribute[Any]
"""The metadata column as a Core ``Column`` (``table.c.metadata``) or an ORM attribute."""


# --------------------------------------------------------------------------- the parsed tree


@dataclass(frozen=True)
class _Leaf:
    path: Path  # the field split on "."
    op: str
    operand: Any


@dataclass(frozen=True)
class _And:
    parts: tuple[_Node, ...]


@dataclass(frozen=True)
class _Or:
    parts: tuple[_Node, ...]


@dataclass(frozen=True)
class _Not:
    part: _Node


_Node = _Leaf | _And | _Or | _Not


# --------------------------------------------------------------------------- operand checks
# Each returns None when the operand is acceptable, or a description of the problem.


def _describe(value: object) -> str:
    return f"{brief(value)} ({type(value).__name__})"


def _string_problem(value: str) -> str | None:
    problem = unstorable(value)
    return None if problem is None else f"{_describe(value)}, which holds {problem}"


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number_problem(value: float) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return f"{_describe(value)}; NaN and infinity cannot be compared or stored in JSON"
    return None


def _scalar_problem(value: object) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return _string_problem(value)
    if _is_number(value):
        return _number_problem(value)
    return _describe(value)


def _orderable_problem(value: object) -> str | None:
    if isinstance(value, str):
        return _string_problem(value)
    if _is_number(value):
        return _number_problem(value)
    return _describe(value)


def _is_list(value: object) -> TypeGuard[list[Any] | tuple[Any, ...]]:
    return isinstance(value, list | tuple)


def _scalar_list_problem(value: object) -> str | None:
    if not _is_list(value):
        return _describe(value)
    for i, item in enumerate(value):
        problem = _scalar_problem(item)
        if problem is not None:
            return f"element {i}: {problem}"
    return None


def _contains_problem(value: object) -> str | None:
    if _is_list(value):
        if not value:
            return "an empty list"
        return _scalar_list_problem(value)
    return _scalar_problem(value)


def _between_problem(value: object) -> str | None:
    if not _is_list(value) or len(value) != 2:
        return _describe(value)
    low, high = value
    same_kind = (_is_number(low) and _is_number(high)) or (
        isinstance(low, str) and isinstance(high, str)
    )
    if not same_kind:
        return _describe(value)
    return _orderable_problem(low) or _orderable_problem(high)


def _pattern_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return _describe(value)
    problem = _string_problem(value)
    if problem is None and (len(value) - len(value.rstrip("\\"))) % 2 == 1:
        return f"{_describe(value)}, which ends with a lone escape character '\\'"
    return problem


def _exists_problem(value: object) -> str | None:
    return None if isinstance(value, bool) else _describe(value)


# --------------------------------------------------------------------------- SQL building


def _inline(text: str) -> ColumnElement[str]:
    """A string rendered as a quoted SQL literal, so index expressions match generic plans."""
    return sa.literal(text, sa.Text(), literal_execute=True)


def _json_at(metadata: ColumnElement[Any], path: Path) -> ColumnElement[Any]:
    """``metadata -> 'a' -> 'b'``: the jsonb value at ``path``, SQL NULL when missing."""
    value = metadata
    for key in path:
        value = value.op("->", return_type=JSONB)(_inline(key))
    return value


def _text_at(metadata: ColumnElement[Any], path: Path) -> ColumnElement[Any]:
    """``metadata -> 'a' ->> 'b'``: the value at ``path`` as text, SQL NULL when missing."""
    return _json_at(metadata, path[:-1]).op("->>", return_type=sa.Text())(_inline(path[-1]))


def _typed(metadata: ColumnElement[Any], path: Path, json_type: str) -> ColumnElement[bool]:
    return sa.func.jsonb_typeof(_json_at(metadata, path)) == _inline(json_type)


def _number_value(metadata: ColumnElement[Any], path: Path) -> ColumnElement[Any]:
    return sa.case(
        (_typed(metadata, path, "number"), sa.cast(_json_at(metadata, path), sa.Numeric()))
    )


def _string_value(metadata: ColumnElement[Any], path: Path) -> ColumnElement[Any]:
    return sa.case((_typed(metadata, path, "string"), _text_at(metadata, path)))


def _jsonb(metadata: MetadataColumn) -> ColumnElement[Any]:
    # type_coerce renders nothing; it accepts ORM attributes and makes the operand JSONB.
    return sa.type_coerce(metadata, JSONB())


def _split(field: str) -> Path:
    return tuple(field.split("."))


def metadata_index_expression(
    metadata: MetadataColumn, field: str, kind: IndexKind
) -> ColumnElement[Any]:
    """Return the expression range filters on ``field`` compare, for an expression index.

    ``kind="number"`` gives ``CASE WHEN jsonb_typeof(v) = 'number' THEN CAST(v AS NUMERIC)
    END`` and ``kind="text"`` gives ``CASE WHEN jsonb_typeof(v) = 'string' THEN <text of v>
    END COLLATE "C"``, where ``v`` is ``metadata -> 'a' -> 'b'`` for ``field="a.b"``.
    ``$gt``/``$gte``/``$lt``/``$lte``/``$between`` (and, for text, ``$like``) with an
    operand of that type compile to comparisons of exactly this expression, so
    ``sqlalchemy.Index(name, metadata_index_expression(...))`` serves them.
    """
    _check_field(field, "")
    column = _jsonb(metadata)
    # Parenthesized, because CREATE INDEX needs parentheses around a bare CASE.
    if kind == "number":
        return Grouping(_number_value(column, _split(field)))
    if kind == "text":
        return Grouping(_string_value(column, _split(field)).collate("C"))
    raise FilterError(
        f"Invalid metadata index kind {kind!r} for field {field!r}: expected one of "
        f"{', '.join(map(repr, INDEX_KINDS))} (the operand type of the range filters it "
        "should serve: 'number' for {'$gt': 1}, 'text' for {'$gt': 'a'})."
    )


def _never_null(predicate: ColumnElement[bool], value: ColumnElement[Any]) -> ColumnElement[bool]:
    # NULL AND FALSE is FALSE: a value of another type (or none) gives FALSE, not NULL,
    # while the bare comparison stays visible to the planner as an index condition.
    return sa.and_(predicate, value.is_not(None))


def _negate(predicate: ColumnElement[bool]) -> ColumnElement[bool]:
    if isinstance(predicate, True_):
        return sa.false()
    if isinstance(predicate, False_):
        return sa.true()
    return predicate.is_not(sa.true())


def _bind(value: str | float) -> ColumnElement[Any]:
    """A range or pattern operand as a parameter: text, or numeric (never float8)."""
    if isinstance(value, str):
        return sa.literal(value, sa.Text())
    # A float is bound through its shortest repr, the JSON text it is stored as; a float8
    # parameter would compare in binary floating point instead.
    number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    return sa.literal(number, sa.Numeric())


def _nest(path: Path, value: object) -> dict[str, Any]:
    """``("a", "b"), 1`` -> ``{"a": {"b": 1}}``: the document that containment looks for."""
    document: dict[str, Any] = {path[-1]: value}
    for key in reversed(path[:-1]):
        document = {key: document}
    return document


def _contains(metadata: ColumnElement[Any], path: Path, value: object) -> ColumnElement[bool]:
    return metadata.op("@>", is_comparison=True)(sa.literal(_nest(path, value), JSONB()))


def _eq(metadata: ColumnElement[Any], path: Path, operand: Any) -> ColumnElement[bool]:
    return _contains(metadata, path, operand)


def _ne(metadata: ColumnElement[Any], path: Path, operand: Any) -> ColumnElement[bool]:
    return _negate(_eq(metadata, path, operand))


#: a ``$in`` of up to this many values is one containment per value (each served by the
#: GIN index, one parameter each); a longer one compares the value at the field with
#: all of them at once (one array parameter, hashed: no parameter limit, no index)
INDEXED_IN = 100


def _in(metadata: ColumnElement[Any], path: Path, operand: Any) -> ColumnElement[bool]:
    if not operand:
        return sa.false()
    if len(operand) <= INDEXED_IN:
        return sa.or_(*(_contains(metadata, path, item) for item in operand))
    # jsonb equality is $eq's: numbers numerically, no type mixing, arrays never equal
    # scalars; a missing value is SQL NULL, made FALSE
    values = sa.literal(list(operand), ARRAY(JSONB()))
    return sa.func.coalesce(_json_at(metadata, path) == sa.any_(values), sa.false())


def _nin(metadata: ColumnElement[Any], path: Path, operand: Any) -> ColumnElement[bool]:
    return _negate(_in(metadata, path, operand))


def _array_contains(metadata: ColumnElement[Any], path: Path, operand: Any) -> ColumnElement[bool]:
    items = list(operand) if _is_list(operand) else [operand]
    return _contains(metadata, path, items)


def _ordered(metadata: ColumnElement[Any], path: Path, operand: Any) -> ColumnElement[Any]:
    """The typed value that a range operand of this Python type compares against."""
    kind: IndexKind = "text" if isinstance(operand, str) else "number"
    return metadata_index_expression(metadata, ".".join(path), kind)


def _comparison(
    compare: Callable[[ColumnElement[Any], ColumnElement[Any]], ColumnElement[bool]],
) -> Callable[[ColumnElement[Any], Path, Any], ColumnElement[bool]]:
    def build(metadata: ColumnElement[Any], path: Path, operand: Any) -> ColumnElement[bool]:
        value = _ordered(metadata, path, operand)
        return _never_null(compare(value, _bind(operand)), value)

    return build


def _between(metadata: ColumnElement[Any], path: Path, operand: Any) -> ColumnElement[bool]:
    low, high = operand
    value = _ordered(metadata, path, low)
    return _never_null(value.between(_bind(low), _bind(high)), value)


def _like(metadata: ColumnElement[Any], path: Path, operand: Any) -> ColumnElement[bool]:
    value = metadata_index_expression(metadata, ".".join(path), "text")
    return _never_null(value.like(_bind(operand)), value)


def _ilike(metadata: ColumnElement[Any], path: Path, operand: Any) -> ColumnElement[bool]:
    value = _string_value(metadata, path)
    return _never_null(value.ilike(_bind(operand)), value)


def _exists(metadata: ColumnElement[Any], path: Path, operand: Any) -> ColumnElement[bool]:
    value = _json_at(metadata, path)
    return value.is_not(None) if operand else value.is_(None)


# --------------------------------------------------------------------------- operator tables


class _Operator(NamedTuple):
    expected: str  # what the operand must be, for messages
    problem: Callable[[object], str | None]
    build: Callable[[ColumnElement[Any], Path, Any], ColumnElement[bool]]
    hint: str = ""


_SCALAR: Final = "a scalar (str, int, float, bool or None)"
_ORDERABLE: Final = "an int, float or str"
_EQ_HINT: Final = (
    'To match any of several values use {"$in": [...]}; to match an element of an '
    'array use {"$contains": value}; to match a nested key write {"a.b": value}.'
)
_RANGE_HINT: Final = (
    "Range operators compare numbers with numbers and strings with strings; for booleans "
    'and null use {"$eq": value}.'
)

FIELD_OPERATORS: Final[Mapping[str, _Operator]] = {
    "$eq": _Operator(_SCALAR, _scalar_problem, _eq, _EQ_HINT),
    "$ne": _Operator(_SCALAR, _scalar_problem, _ne, _EQ_HINT),
    "$gt": _Operator(_ORDERABLE, _orderable_problem, _comparison(operator.gt), _RANGE_HINT),
    "$gte": _Operator(_ORDERABLE, _orderable_problem, _comparison(operator.ge), _RANGE_HINT),
    "$lt": _Operator(_ORDERABLE, _orderable_problem, _comparison(operator.lt), _RANGE_HINT),
    "$lte": _Operator(_ORDERABLE, _orderable_problem, _comparison(operator.le), _RANGE_HINT),
    "$between": _Operator(
        "a list [low, high] of two numbers or two strings",
        _between_problem,
        _between,
        'For example {"$between": [2000, 2010]} or {"$between": ["a", "m"]}.',
    ),
    "$in": _Operator(
        "a list of scalars (str, int, float, bool or None), possibly empty",
        _scalar_list_problem,
        _in,
        'For example {"$in": ["draft", "final"]}.',
    ),
    "$nin": _Operator(
        "a list of scalars (str, int, float, bool or None), possibly empty",
        _scalar_list_problem,
        _nin,
        'For example {"$nin": ["draft", "final"]}.',
    ),
    "$like": _Operator(
        "a str LIKE pattern", _pattern_problem, _like, "Escape a literal %, _ or \\ with \\."
    ),
    "$ilike": _Operator(
        "a str LIKE pattern", _pattern_problem, _ilike, "Escape a literal %, _ or \\ with \\."
    ),
    "$exists": _Operator(
        "True or False", _exists_problem, _exists, 'For example {"$exists": True}.'
    ),
    "$contains": _Operator(
        "a scalar, or a non-empty list of scalars (str, int, float, bool or None)",
        _contains_problem,
        _array_contains,
        'For example {"$contains": "red"} or {"$contains": ["red", "blue"]}.',
    ),
}
"""Every operator allowed under a field: operand check, expectation and SQL builder."""

LOGICAL_OPERATORS: Final[frozenset[str]] = frozenset({"$and", "$or", "$not"})
"""The operators allowed in field position (the keys of a filter)."""


# --------------------------------------------------------------------------- parsing


def _where(location: str) -> str:
    return f" at {location}" if location else ""


def _check_field(field: object, location: str) -> None:
    if not isinstance(field, str) or not field:
        raise FilterError(
            f"Invalid filter{_where(location)}: field {field!r} is not a field name; field "
            'names are non-empty strings, such as {"year": 2020} or {"author.name": "Ada"}.'
        )
    if field.startswith("$"):
        raise FilterError(
            f"Invalid filter{_where(location)}: field {field!r} starts with '$'; field names "
            "cannot start with '$', and the only operators allowed at this level are "
            f"{_names(LOGICAL_OPERATORS)}."
        )
    problem = _string_problem(field)
    if problem is not None:
        raise FilterError(f"Invalid filter{_where(location)}: field name {problem}.")


def _names(operators: frozenset[str] | Mapping[str, object]) -> str:
    return ", ".join(sorted(operators))


def _join(location: str, step: str) -> str:
    return f"{location}.{step}" if location else step


#: how deeply ``$and``, ``$or`` and ``$not`` may nest
MAX_DEPTH = 32


def _parse(filter: object, location: str, depth: int = 0) -> _Node:
    if depth > MAX_DEPTH:
        raise FilterError(
            f"Invalid filter at {location}: $and, $or and $not nest more than {MAX_DEPTH} "
            "levels deep here; flatten the filter (a list of clauses under one $and or $or)"
        )
    if not isinstance(filter, Mapping):
        raise FilterError(
            f"Invalid filter{_where(location)}: expected a dict such as "
            f'{{"year": {{"$gte": 2020}}}}, got {_describe(filter)}.'
        )
    parts: list[_Node] = []
    for key, value in filter.items():
        if key in LOGICAL_OPERATORS:
            parts.append(_parse_logical(key, value, _join(location, key), depth + 1))
        elif key in FIELD_OPERATORS:
            raise FilterError(
                f"Invalid filter{_where(location)}: operator {key!r} is in field position; "
                f'put it under a field, as in {{"year": {{"{key}": ...}}}}.'
            )
        elif isinstance(key, str) and key.startswith("$"):
            raise FilterError(
                f"Invalid filter{_where(location)}: unknown operator {key!r}; field names "
                f"cannot start with '$', and the operators allowed here are "
                f"{_names(LOGICAL_OPERATORS)}."
            )
        else:
            _check_field(key, location)
            parts.extend(_parse_clause(key, value, location))
    return parts[0] if len(parts) == 1 else _And(tuple(parts))


def _parse_logical(op: str, value: object, location: str, depth: int) -> _Node:
    if op == "$not":
        if not isinstance(value, Mapping):
            raise FilterError(
                f"Invalid filter at {location}: operator '$not' expects a filter dict, as in "
                f'{{"$not": {{"year": 2020}}}}, got {_describe(value)}.'
            )
        return _Not(_parse(value, location, depth))
    if not isinstance(value, list | tuple) or not value:
        raise FilterError(
            f"Invalid filter at {location}: operator {op!r} expects a non-empty list of "
            f'filter dicts, as in {{"{op}": [{{"a": 1}}, {{"b": 2}}]}}, got '
            f"{_describe(value)}."
        )
    parts = tuple(_parse(item, f"{location}[{i}]", depth) for i, item in enumerate(value))
    return _And(parts) if op == "$and" else _Or(parts)


def _parse_clause(field: str, value: object, location: str) -> list[_Node]:
    path = _split(field)
    if not isinstance(value, Mapping):
        if _is_list(value):
            raise FilterError(
                f"Invalid filter{_where(location)}: field {field!r} (operator '$eq') has "
                f"the list {_describe(value)} as its value; write "
                f'{{"{field}": {{"$in": [...]}}}} to match any of these values, or '
                f'{{"{field}": {{"$contains": [...]}}}} to match an array holding them all.'
            )
        return [_leaf(field, path, "$eq", value, location)]
    if not value:
        raise FilterError(
            f"Invalid filter{_where(location)}: field {field!r} has an empty operator dict; "
            f'expected at least one operator, as in {{"{field}": {{"$eq": value}}}}.'
        )
    if not all(isinstance(key, str) and key.startswith("$") for key in value):
        nested = next(k for k in value if not (isinstance(k, str) and k.startswith("$")))
        raise FilterError(
            f"Invalid filter{_where(location)}: field {field!r} has the dict "
            f"{_describe(dict(value))} as its value, but its keys must all be operators "
            f"({_names(FIELD_OPERATORS)}). To match key {nested!r} inside {field!r}, "
            f"write {{{f'{field}.{nested}'!r}: ...}}."
        )
    return [_leaf(field, path, op, operand, location) for op, operand in value.items()]


def _leaf(field: str, path: Path, op: str, operand: object, location: str) -> _Leaf:
    spec = FIELD_OPERATORS.get(op)
    if spec is None:
        usage = (
            f"; {op!r} combines filters and goes in field position, as in "
            f'{{"{op}": ...}} beside the fields'
            if op in LOGICAL_OPERATORS
            else ""
        )
        raise FilterError(
            f"Invalid filter{_where(location)}: field {field!r} uses unknown operator "
            f"{op!r}{usage}; expected one of {_names(FIELD_OPERATORS)}."
        )
    problem = spec.problem(operand)
    if problem is not None:
        hint = f" {spec.hint}" if spec.hint else ""
        raise FilterError(
            f"Invalid filter{_where(location)}: field {field!r}, operator {op!r}: expected "
            f"{spec.expected}, got {problem}.{hint}"
        )
    return _Leaf(path, op, operand)


# --------------------------------------------------------------------------- public API


def validate_filter(filter: Mapping[str, Any] | None) -> None:
    """Raise ``FilterError`` when ``filter`` breaks the filter language (FILTERS.md).

    Args:
        filter: The filter dict, or None (which matches every document).

    Raises:
        FilterError: Naming the offending field, operator and the expected operand.
    """
    if filter is not None:
        _parse(filter, "")


def _compile(node: _Node, metadata: ColumnElement[Any]) -> ColumnElement[bool]:
    if isinstance(node, _Leaf):
        return FIELD_OPERATORS[node.op].build(metadata, node.path, node.operand)
    if isinstance(node, _Not):
        return _negate(_compile(node.part, metadata))
    if not node.parts:
        return sa.true()
    parts = [_compile(part, metadata) for part in node.parts]
    return sa.and_(*parts) if isinstance(node, _And) else sa.or_(*parts)


def compile_filter(
    filter: Mapping[str, Any] | None, metadata: MetadataColumn
) -> ColumnElement[bool]:
    """Compile a metadata filter to a boolean SQL expression over ``metadata``.

    The whole filter is validated before any SQL is built.

    Args:
        filter: A filter in the language of FILTERS.md; None or ``{}`` match everything.
        metadata: The JSONB metadata column: a ``Column``, a mapped attribute, or any
            JSONB expression.

    Returns:
        An expression that is TRUE exactly for the matching documents, and never NULL
        when ``metadata`` is not NULL.

    Raises:
        FilterError: When the filter is malformed.
    """
    if filter is None:
        return sa.true()
    return _compile(_parse(filter, ""), _jsonb(metadata))
