"""The filter compiler without a database: SQL shape, parameters and every error case."""

from __future__ import annotations

import copy
import json
import math
import re
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.schema import CreateIndex

from langchain_pgvec._errors import FilterError, PGVecError
from langchain_pgvec._filters import (
    FIELD_OPERATORS,
    INDEXED_IN,
    LOGICAL_OPERATORS,
    MAX_DEPTH,
    compile_filter,
    metadata_index_expression,
    validate_filter,
)

TABLE = sa.Table("docs", sa.MetaData(), sa.Column("metadata", JSONB, nullable=False))
METADATA = TABLE.c.metadata
DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]


def compiled(expr: sa.ColumnElement[Any]) -> tuple[str, dict[str, Any]]:
    result = expr.compile(dialect=DIALECT, compile_kwargs={"render_postcompile": True})
    return result.string, dict(result.params)


def sql(filter: dict[str, Any] | None) -> str:
    """The compiled SQL with each bound value shown inline as <value>, for readable asserts."""
    text, params = compiled(compile_filter(filter, METADATA))

    def show(match: re.Match[str]) -> str:
        value = params[match.group(1)]
        shown = json.dumps(value) if isinstance(value, dict | list) else repr(value)
        return f"<{shown}>"

    return re.sub(r"%\((\w+)\)s", show, text)


def index_sql(field: str, kind: Any) -> str:
    text, params = compiled(metadata_index_expression(METADATA, field, kind))
    assert params == {}, "index expressions must not depend on bound parameters"
    return text


NUMBER_A = (
    "(CASE WHEN (jsonb_typeof(docs.metadata -> 'a') = 'number') "
    "THEN CAST(docs.metadata -> 'a' AS NUMERIC) END)"
)
TEXT_A = (
    "(CASE WHEN (jsonb_typeof(docs.metadata -> 'a') = 'string') "
    "THEN docs.metadata ->> 'a' END COLLATE \"C\")"
)


# --------------------------------------------------------------------------- SQL shape

SHAPES: list[tuple[dict[str, Any] | None, str]] = [
    (None, "true"),
    ({}, "true"),
    ({"a": 1}, 'docs.metadata @> <{"a": 1}>::JSONB'),
    ({"a": {"$eq": "x"}}, 'docs.metadata @> <{"a": "x"}>::JSONB'),
    ({"a": None}, 'docs.metadata @> <{"a": null}>::JSONB'),
    ({"a": True}, 'docs.metadata @> <{"a": true}>::JSONB'),
    ({"a.b.c": 1.5}, 'docs.metadata @> <{"a": {"b": {"c": 1.5}}}>::JSONB'),
    ({"a": {"$ne": 1}}, '(docs.metadata @> <{"a": 1}>::JSONB) IS NOT true'),
    (
        {"a": {"$in": [1, "x", None]}},
        '(docs.metadata @> <{"a": 1}>::JSONB) OR (docs.metadata @> <{"a": "x"}>::JSONB) '
        'OR (docs.metadata @> <{"a": null}>::JSONB)',
    ),
    ({"a": {"$in": []}}, "false"),
    (
        {"a": {"$nin": [1, 2]}},
        '((docs.metadata @> <{"a": 1}>::JSONB) OR (docs.metadata @> <{"a": 2}>::JSONB)) '
        "IS NOT true",
    ),
    ({"a": {"$nin": []}}, "true"),
    ({"a": {"$contains": "red"}}, 'docs.metadata @> <{"a": ["red"]}>::JSONB'),
    ({"a.b": {"$contains": ["x", 1]}}, 'docs.metadata @> <{"a": {"b": ["x", 1]}}>::JSONB'),
    ({"a": {"$exists": True}}, "(docs.metadata -> 'a') IS NOT NULL"),
    ({"a.b": {"$exists": False}}, "((docs.metadata -> 'a') -> 'b') IS NULL"),
    ({"a": {"$gt": 5}}, f"{NUMBER_A} > <Decimal('5')> AND {NUMBER_A} IS NOT NULL"),
    ({"a": {"$gte": 0.1}}, f"{NUMBER_A} >= <Decimal('0.1')> AND {NUMBER_A} IS NOT NULL"),
    ({"a": {"$lt": "m"}}, f"{TEXT_A} < <'m'>::VARCHAR AND {TEXT_A} IS NOT NULL"),
    ({"a": {"$lte": "é"}}, f"{TEXT_A} <= <'é'>::VARCHAR AND {TEXT_A} IS NOT NULL"),
    (
        {"a": {"$between": [1, 2.5]}},
        f"{NUMBER_A} BETWEEN <Decimal('1')> AND <Decimal('2.5')> AND {NUMBER_A} IS NOT NULL",
    ),
    (
        {"a": {"$between": ["a", "b"]}},
        f"{TEXT_A} BETWEEN <'a'>::VARCHAR AND <'b'>::VARCHAR AND {TEXT_A} IS NOT NULL",
    ),
    (
        {"a": {"$like": "x%"}},
        f"{TEXT_A} LIKE <'x%'>::VARCHAR AND {TEXT_A} IS NOT NULL",
    ),
    (
        {"a": {"$ilike": "x%"}},
        "CASE WHEN (jsonb_typeof(docs.metadata -> 'a') = 'string') THEN docs.metadata ->> 'a' "
        "END ILIKE <'x%'>::VARCHAR AND CASE WHEN (jsonb_typeof(docs.metadata -> 'a') = "
        "'string') THEN docs.metadata ->> 'a' END IS NOT NULL",
    ),
    (
        {"a": 1, "b": {"$exists": True}},
        "(docs.metadata @> <{\"a\": 1}>::JSONB) AND (docs.metadata -> 'b') IS NOT NULL",
    ),
    (
        {"$or": [{"a": 1}, {"b": 2}]},
        '(docs.metadata @> <{"a": 1}>::JSONB) OR (docs.metadata @> <{"b": 2}>::JSONB)',
    ),
    (
        {"$and": [{"a": 1}, {"$not": {"b": 2}}]},
        '(docs.metadata @> <{"a": 1}>::JSONB) AND (docs.metadata @> <{"b": 2}>::JSONB) IS NOT true',
    ),
    ({"$not": {}}, "false"),
    ({"$or": [{}, {"a": 1}]}, "true"),
    (
        {"$not": {"a": {"$exists": False}}},
        "((docs.metadata -> 'a') IS NULL) IS NOT true",
    ),
]


@pytest.mark.parametrize(("filter", "expected"), SHAPES, ids=[repr(f) for f, _ in SHAPES])
def test_sql_shape(filter: dict[str, Any] | None, expected: str) -> None:
    assert sql(filter) == expected


@pytest.mark.parametrize("op", ["$gt", "$gte", "$lt", "$lte"])
@pytest.mark.parametrize(("operand", "kind"), [(3, "number"), (2.5, "number"), ("k", "text")])
def test_ranges_compare_exactly_the_index_expression(op: str, operand: Any, kind: str) -> None:
    text = sql({"x.y": {op: operand}})
    expression = index_sql("x.y", kind)
    assert text.startswith(expression + " ")
    assert text.endswith(f" AND {expression} IS NOT NULL")


def test_like_compares_the_text_index_expression() -> None:
    assert sql({"x": {"$like": "a%"}}).startswith(index_sql("x", "text") + " LIKE ")


def test_index_expressions() -> None:
    assert index_sql("a", "number") == NUMBER_A
    assert index_sql("a", "text") == TEXT_A
    assert index_sql("a.b", "number") == (
        "(CASE WHEN (jsonb_typeof((docs.metadata -> 'a') -> 'b') = 'number') "
        "THEN CAST((docs.metadata -> 'a') -> 'b' AS NUMERIC) END)"
    )
    assert index_sql("a.b", "text") == (
        "(CASE WHEN (jsonb_typeof((docs.metadata -> 'a') -> 'b') = 'string') "
        "THEN (docs.metadata -> 'a') ->> 'b' END COLLATE \"C\")"
    )


@pytest.mark.parametrize("kind", ["number", "text"])
def test_index_ddl_is_parenthesized_and_literal(kind: str) -> None:
    index = sa.Index("ix", metadata_index_expression(METADATA, "it's a.b", kind))  # type: ignore[arg-type]
    ddl = str(CreateIndex(index).compile(dialect=DIALECT))
    assert ddl.startswith("CREATE INDEX ix ON docs ((CASE WHEN")
    assert "'it''s a'" in ddl
    assert "%(" not in ddl


def test_keys_are_quoted_literals_and_values_are_parameters() -> None:
    key = 'it\'s "odd" %(x)s $k\\'
    text, params = compiled(compile_filter({f"{key}.inner": {"$gt": 1}}, METADATA))
    assert "'it''s \"odd\" %%(x)s $k\\'" in text  # % doubled for the pyformat paramstyle
    assert "'inner'" in text
    assert list(params.values()) == [Decimal(1)]
    text, params = compiled(compile_filter({key: "v"}, METADATA))
    assert list(params.values()) == [{key: "v"}]


def test_numbers_are_bound_as_decimal_from_their_repr() -> None:
    _, params = compiled(compile_filter({"a": {"$gt": 0.1 + 0.2}}, METADATA))
    assert list(params.values()) == [Decimal("0.30000000000000004")]
    _, params = compiled(compile_filter({"a": {"$lt": 10**30}}, METADATA))
    assert list(params.values()) == [Decimal(10**30)]


@pytest.mark.parametrize(
    "filter",
    [
        {"a.0": 1},
        {"a.0": {"$exists": True}},
        {"a.0.b": {"$gt": 1}},
        {"a.1": {"$like": "x"}},
        {"a.b": {"$ilike": "x"}},
    ],
)
def test_paths_never_index_arrays(filter: dict[str, Any]) -> None:
    text = sql(filter)
    assert "#>" not in text  # #> and #>> read "0" as an array index
    assert "[" not in text.replace("<", "").replace('["', "")  # no jsonb subscripting
    assert "@?" not in text and "jsonpath" not in text.lower()


def test_input_is_not_mutated_and_tuples_are_lists() -> None:
    filter = {"$or": [{"a": {"$in": (1, 2)}}, {"b": {"$between": (1, 2)}}], "c": {"$ne": None}}
    before = copy.deepcopy(filter)
    assert sql(filter) == sql(
        {"$or": [{"a": {"$in": [1, 2]}}, {"b": {"$between": [1, 2]}}], "c": {"$ne": None}}
    )
    assert filter == before


def test_valid_filters_pass_validation() -> None:
    validate_filter(None)
    validate_filter({})
    validate_filter({"a": {"$between": [1, 2.5]}, "b": {"$in": []}, "c": {"$contains": 1}})
    validate_filter({"a": {"$gt": 1, "$lt": 2}, "$and": [{}], "$or": [{"b": None}]})
    validate_filter({"a..b": 1, "a$": 1, "é": {"$like": "\\\\"}})


def test_filter_error_is_a_value_error() -> None:
    assert issubclass(FilterError, ValueError)
    assert issubclass(FilterError, PGVecError)


# --------------------------------------------------------------------------- error cases

NAN = float("nan")
INF = float("inf")

# (filter, words the message must contain)
ERRORS: list[tuple[Any, list[str]]] = [
    # not a filter
    ([{"a": 1}], ["expected a dict"]),
    ("a = 1", ["expected a dict"]),
    # operators in field position, unknown operators
    ({"$gt": 1}, ["'$gt'", "field position", '{"year": {"$gt": ...}}']),
    ({"$eq": 1}, ["'$eq'", "field position"]),
    ({"$nor": [{"a": 1}]}, ["unknown operator", "'$nor'", "$and, $not, $or"]),
    ({"$": 1}, ["unknown operator", "'$'"]),
    ({"a": {"$regex": "x"}}, ["field 'a'", "unknown operator '$regex'", "expected one of"]),
    ({"a": {"$EQ": 1}}, ["field 'a'", "'$EQ'"]),
    ({"a": {"$and": [{"b": 1}]}}, ["field 'a'", "'$and'", "field position"]),
    ({"a": {"$not": {"$eq": 1}}}, ["field 'a'", "'$not'", "field position"]),
    # bad field names
    ({"": 1}, ["field ''", "non-empty strings"]),
    ({1: 1}, ["field 1", "non-empty strings"]),
    ({None: 1}, ["field None", "non-empty strings"]),
    ({"a\x00b": 1}, ["field name", "NUL"]),
    # dict values that are not operator dicts
    ({"a": {"b": 1}}, ["field 'a'", "must all be operators", "{'a.b': ...}"]),
    ({"a": {"$eq": 1, "b": 2}}, ["field 'a'", "must all be operators", "{'a.b': ...}"]),
    ({"a": {1: 2}}, ["field 'a'", "must all be operators"]),
    ({"a": {}}, ["field 'a'", "empty operator dict", '"$eq"']),
    # $eq / $ne operands
    ({"a": [1, 2]}, ["field 'a'", "'$eq'", "$in", "$contains"]),
    ({"a": (1, 2)}, ["field 'a'", "'$eq'", "$in"]),
    ({"a": {"$eq": [1]}}, ["field 'a'", "operator '$eq'", "expected a scalar", "$in"]),
    ({"a": {"$eq": {"x": 1}}}, ["field 'a'", "operator '$eq'", "expected a scalar"]),
    ({"a": {"$ne": [1]}}, ["field 'a'", "operator '$ne'", "expected a scalar"]),
    ({"a": {"$eq": b"x"}}, ["field 'a'", "operator '$eq'", "(bytes)"]),
    ({"a": {"$eq": Decimal(1)}}, ["field 'a'", "operator '$eq'", "(Decimal)"]),
    ({"a": {"$eq": "x\x00"}}, ["field 'a'", "operator '$eq'", "NUL"]),
    ({"a": {"$eq": "\ud800"}}, ["field 'a'", "operator '$eq'", "surrogate"]),
    # range operands
    ({"a": {"$gt": True}}, ["field 'a'", "operator '$gt'", "int, float or str", "True (bool)"]),
    ({"a": {"$gte": False}}, ["field 'a'", "operator '$gte'", "(bool)", "$eq"]),
    ({"a": {"$lt": None}}, ["field 'a'", "operator '$lt'", "None (NoneType)"]),
    ({"a": {"$lte": [1]}}, ["field 'a'", "operator '$lte'", "(list)"]),
    ({"a": {"$gt": {"b": 1}}}, ["field 'a'", "operator '$gt'", "(dict)"]),
    # $between
    ({"a": {"$between": [1]}}, ["field 'a'", "operator '$between'", "two numbers or two"]),
    ({"a": {"$between": [1, 2, 3]}}, ["operator '$between'", "[low, high]"]),
    ({"a": {"$between": [1, "b"]}}, ["field 'a'", "operator '$between'", "[1, 'b']"]),
    ({"a": {"$between": [True, 2]}}, ["operator '$between'"]),
    ({"a": {"$between": [None, 2]}}, ["operator '$between'"]),
    ({"a": {"$between": "ab"}}, ["operator '$between'", "'ab' (str)"]),
    ({"a": {"$between": 5}}, ["operator '$between'", "5 (int)"]),
    # $in / $nin
    ({"a": {"$in": "abc"}}, ["field 'a'", "operator '$in'", "a list of scalars", "'abc' (str)"]),
    ({"a": {"$in": 5}}, ["field 'a'", "operator '$in'", "5 (int)"]),
    ({"a": {"$in": {"x": 1}}}, ["operator '$in'", "(dict)"]),
    ({"a": {"$in": [1, [2]]}}, ["operator '$in'", "element 1", "[2] (list)"]),
    ({"a": {"$nin": "abc"}}, ["field 'a'", "operator '$nin'", "a list of scalars"]),
    ({"a": {"$nin": [{"b": 1}]}}, ["operator '$nin'", "element 0"]),
    # $like / $ilike
    ({"a": {"$like": 5}}, ["field 'a'", "operator '$like'", "a str LIKE pattern", "5 (int)"]),
    ({"a": {"$like": None}}, ["operator '$like'", "None"]),
    ({"a": {"$like": ["x"]}}, ["operator '$like'", "(list)"]),
    ({"a": {"$ilike": 1.5}}, ["field 'a'", "operator '$ilike'", "a str LIKE pattern"]),
    ({"a": {"$like": "abc\\"}}, ["operator '$like'", "lone escape"]),
    ({"a": {"$ilike": "a\\\\\\"}}, ["operator '$ilike'", "lone escape"]),
    # $exists
    ({"a": {"$exists": 1}}, ["field 'a'", "operator '$exists'", "True or False", "1 (int)"]),
    ({"a": {"$exists": "yes"}}, ["operator '$exists'", "'yes' (str)"]),
    ({"a": {"$exists": None}}, ["operator '$exists'", "None"]),
    # $contains
    ({"a": {"$contains": []}}, ["field 'a'", "operator '$contains'", "non-empty list"]),
    ({"a": {"$contains": {"b": 1}}}, ["operator '$contains'", "(dict)"]),
    ({"a": {"$contains": [[1]]}}, ["operator '$contains'", "element 0"]),
    # NaN and infinity anywhere
    ({"a": NAN}, ["field 'a'", "'$eq'", "NaN"]),
    ({"a": {"$eq": INF}}, ["field 'a'", "operator '$eq'", "infinity"]),
    ({"a": {"$ne": -INF}}, ["operator '$ne'", "NaN and infinity"]),
    ({"a": {"$gt": NAN}}, ["operator '$gt'", "NaN"]),
    ({"a": {"$lte": INF}}, ["operator '$lte'", "inf"]),
    ({"a": {"$between": [0, INF]}}, ["operator '$between'", "inf"]),
    ({"a": {"$in": [1, NAN]}}, ["operator '$in'", "element 1", "nan"]),
    ({"a": {"$nin": [INF]}}, ["operator '$nin'", "inf"]),
    ({"a": {"$contains": NAN}}, ["operator '$contains'", "nan"]),
    ({"a": {"$contains": [1, INF]}}, ["operator '$contains'", "element 1"]),
    ({"$or": [{"a": {"$eq": NAN}}]}, ["at $or[0]", "operator '$eq'"]),
    # $and / $or / $not
    ({"$and": []}, ["at $and", "'$and'", "non-empty list"]),
    ({"$or": []}, ["at $or", "'$or'", "non-empty list"]),
    ({"$and": {"a": 1}}, ["'$and'", "non-empty list", "(dict)"]),
    ({"$or": "a"}, ["'$or'", "non-empty list", "'a' (str)"]),
    ({"$and": [1]}, ["at $and[0]", "expected a dict", "1 (int)"]),
    ({"$or": [{"a": 1}, None]}, ["at $or[1]", "expected a dict"]),
    ({"$not": [{"a": 1}]}, ["at $not", "'$not'", "filter dict", "(list)"]),
    ({"$not": None}, ["'$not'", "filter dict", "None"]),
    ({"$not": 1}, ["'$not'", "filter dict"]),
    # errors deep inside name where they are
    (
        {"$and": [{"a": 1}, {"$or": [{"b": 2}, {"$not": {"c": {"$gt": None}}}]}]},
        ["at $and[1].$or[1].$not", "field 'c'", "operator '$gt'"],
    ),
]


@pytest.mark.parametrize(("filter", "words"), ERRORS, ids=[repr(f)[:60] for f, _ in ERRORS])
def test_malformed_filters_raise(filter: Any, words: list[str]) -> None:
    with pytest.raises(FilterError) as validated:
        validate_filter(filter)
    with pytest.raises(FilterError) as compiling:
        compile_filter(filter, METADATA)
    message = str(validated.value)
    assert message == str(compiling.value)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


def test_messages_say_what_was_expected() -> None:
    with pytest.raises(FilterError, match=r"expected an int, float or str, got True \(bool\)"):
        compile_filter({"year": {"$gt": True}}, METADATA)
    with pytest.raises(FilterError, match=r"write \{'author\.name': \.\.\.\}"):
        compile_filter({"author": {"name": "Ada"}}, METADATA)


@pytest.mark.parametrize(
    ("field", "kind", "words"),
    [
        ("a", "boolean", ["'boolean'", "'number', 'text'"]),
        ("a", "string", ["'string'"]),
        ("", "number", ["field ''"]),
        ("$a", "text", ["'$a'", "cannot start with '$'"]),
    ],
)
def test_bad_index_expression_arguments(field: str, kind: str, words: list[str]) -> None:
    with pytest.raises(FilterError) as error:
        metadata_index_expression(METADATA, field, kind)  # type: ignore[arg-type]
    for word in words:
        assert word in str(error.value)


# --------------------------------------------------------------------------- fuzzing

_CHARS = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
_TEXT = st.text(_CHARS, max_size=8)
_FINITE = st.floats(allow_nan=False, allow_infinity=False)
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(10**20), 10**20), _FINITE, _TEXT)
_FIELDS = st.text(_CHARS, min_size=1, max_size=6).filter(lambda s: not s.startswith("$"))
_PATTERNS = st.text(alphabet="ab%_\\é", max_size=6).filter(
    lambda p: (len(p) - len(p.rstrip("\\"))) % 2 == 0
)


def _operand(op: str) -> st.SearchStrategy[Any]:
    orderable = st.one_of(st.integers(-100, 100), _FINITE, _TEXT)
    return {
        "$eq": _SCALARS,
        "$ne": _SCALARS,
        "$gt": orderable,
        "$gte": orderable,
        "$lt": orderable,
        "$lte": orderable,
        "$between": st.one_of(
            st.tuples(st.integers(), _FINITE).map(list),
            st.tuples(_TEXT, _TEXT).map(list),
        ),
        "$in": st.lists(_SCALARS, max_size=3),
        "$nin": st.lists(_SCALARS, max_size=3),
        "$like": _PATTERNS,
        "$ilike": _PATTERNS,
        "$exists": st.booleans(),
        "$contains": st.one_of(_SCALARS, st.lists(_SCALARS, min_size=1, max_size=3)),
    }[op]


_CLAUSE = st.sampled_from(sorted(FIELD_OPERATORS)).flatmap(
    lambda op: _operand(op).map(lambda operand: {op: operand})
)
_LEAF = st.dictionaries(_FIELDS, st.one_of(_SCALARS, _CLAUSE), max_size=3)
_FILTERS = st.recursive(
    _LEAF,
    lambda inner: st.one_of(
        st.builds(lambda parts: {"$and": parts}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda parts: {"$or": parts}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda part: {"$not": part}, inner),
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(_FILTERS)
def test_every_valid_filter_compiles(filter: dict[str, Any]) -> None:
    text, _ = compiled(compile_filter(filter, METADATA))
    operators = re.sub(r"'(?:[^']|'')*'", "''", text)  # drop quoted keys
    assert "#>" not in operators
    assert "@?" not in operators


_JUNK = st.recursive(
    st.one_of(
        _SCALARS,
        st.floats(),
        st.sampled_from([*sorted(FIELD_OPERATORS), *sorted(LOGICAL_OPERATORS), "$x", "a.b"]),
        st.binary(max_size=2),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.one_of(
                st.sampled_from([*FIELD_OPERATORS, *LOGICAL_OPERATORS, "a", "b.c", "", "$y"]),
                st.integers(0, 2),
            ),
            inner,
            max_size=3,
        ),
    ),
    max_leaves=10,
)


@settings(max_examples=500, deadline=None)
@given(_JUNK)
def test_anything_either_compiles_or_raises_filter_error(filter: Any) -> None:
    try:
        compile_filter(filter, METADATA)
    except FilterError:
        return


def test_nan_is_never_accepted_even_when_nested() -> None:
    deep = {"$or": [{"$and": [{"$not": {"a": {"$in": [1, 2, math.nan]}}}]}]}
    with pytest.raises(FilterError, match=r"at \$or\[0\]\.\$and\[0\]\.\$not"):
        validate_filter(deep)


class Base(DeclarativeBase):
    pass


class Doc(Base):
    __tablename__ = "docs"
    id: Mapped[int] = mapped_column(primary_key=True)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB)


def test_orm_attributes_compile_like_core_columns() -> None:
    filter = {"a": {"$gt": 1}, "b": {"$in": [1, 2]}, "c.d": {"$exists": True}}
    orm_sql = compiled(compile_filter(filter, Doc.meta))[0]
    assert orm_sql == compiled(compile_filter(filter, METADATA))[0]
    index = sa.Index("ix", metadata_index_expression(Doc.meta, "a", "number"))
    assert str(CreateIndex(index).compile(dialect=DIALECT)).startswith(
        "CREATE INDEX ix ON docs ((CASE WHEN (jsonb_typeof(metadata -> 'a')"
    )


# --------------------------------------------------------------------------- long $in, depth


def test_a_long_in_is_one_array_comparison() -> None:
    values: list[Any] = [None, True, "x", 1.5, *range(INDEXED_IN)]
    text, params = compiled(compile_filter({"a.b": {"$in": values}}, METADATA))
    assert len(params) == 1
    ((name, bound),) = params.items()
    assert bound == values  # one parameter however many values: a jsonb[] of them all
    assert text == f"coalesce(((docs.metadata -> 'a') -> 'b') = ANY (%({name})s::JSONB[]), false)"


def test_an_in_of_up_to_indexed_in_values_is_or_of_containments() -> None:
    values = list(range(INDEXED_IN))
    text, params = compiled(compile_filter({"a": {"$in": values}}, METADATA))
    parts = text.split(" OR ")
    assert len(parts) == INDEXED_IN == len(params)
    assert all(re.fullmatch(r"\(docs\.metadata @> %\(\w+\)s::JSONB\)", p) for p in parts)
    assert sorted(params.values(), key=lambda d: d["a"]) == [{"a": v} for v in values]


def test_a_long_nin_is_the_negated_array_comparison() -> None:
    values = list(range(INDEXED_IN + 1))
    text, params = compiled(compile_filter({"a": {"$nin": values}}, METADATA))
    ((name, bound),) = params.items()
    assert bound == values
    assert text == (
        f"coalesce((docs.metadata -> 'a') = ANY (%({name})s::JSONB[]), false) IS NOT true"
    )
    short, short_params = compiled(compile_filter({"a": {"$nin": values[:-1]}}, METADATA))
    assert short.startswith("((docs.metadata @> ") and short.endswith(") IS NOT true")
    assert short.count(" OR ") == INDEXED_IN - 1 and len(short_params) == INDEXED_IN


def _nested(levels: int, op: str = "$and") -> dict[str, Any]:
    filter: dict[str, Any] = {"a": 1}
    for _ in range(levels):
        filter = {"$not": filter} if op == "$not" else {op: [filter]}
    return filter


@pytest.mark.parametrize("op", ["$and", "$or", "$not"])
def test_logical_operators_nest_up_to_max_depth(op: str) -> None:
    validate_filter(_nested(MAX_DEPTH, op))
    compile_filter(_nested(MAX_DEPTH, op), METADATA)
    with pytest.raises(FilterError) as error:
        validate_filter(_nested(MAX_DEPTH + 1, op))
    message = str(error.value)
    assert f"nest more than {MAX_DEPTH} levels deep" in message
    assert "flatten the filter" in message
    assert message.startswith(f"Invalid filter at {op}")  # where: the path down to it


def test_a_thousand_levels_is_a_filter_error_not_a_recursion_error() -> None:
    for op in ("$and", "$or", "$not"):
        with pytest.raises(FilterError, match=f"more than {MAX_DEPTH} levels"):
            compile_filter(_nested(1_000, op), METADATA)


def test_a_deeply_nested_operand_is_a_filter_error() -> None:
    deep: Any = 1
    for _ in range(1_000):
        deep = [deep]
    with pytest.raises(FilterError):
        compile_filter({"a": {"$in": [deep]}}, METADATA)
