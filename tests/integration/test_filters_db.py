"""The filter compiler against a real PostgreSQL: meaning (vs. the reference) and indexes.

Every filter runs in the database and through ``tests/support/filter_reference.py``; the sets of
matching ids must be equal. The EXPLAIN tests check that the GIN ``jsonb_path_ops`` index
serves equality-style operators and that expression indexes built from
``metadata_index_expression`` serve range operators.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql.asyncpg import dialect as numbered_dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable
from support.filter_reference import MISSING, lookup, matches

from langchain_pgvec._filters import compile_filter, metadata_index_expression, validate_filter

Filter = dict[str, Any]


class Explain(Executable, ClauseElement):
    """``EXPLAIN <select>``, executed with the select's own bound parameters."""

    inherit_cache = False

    def __init__(self, statement: sa.Select[Any]) -> None:
        self.statement = statement


@compiles(Explain)
def _compile_explain(element: Explain, compiler: SQLCompiler, **kw: Any) -> str:
    return "EXPLAIN " + compiler.process(element.statement, **kw)


def probe_table(prefix: str) -> sa.Table:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    table = sa.Table(
        name,
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("metadata", JSONB, nullable=False),
    )
    sa.Index(
        f"{name}_gin",
        table.c.metadata,
        postgresql_using="gin",
        postgresql_ops={"metadata": "jsonb_path_ops"},
    )
    return table


@pytest.fixture(scope="module")
def engine(pg_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def unicode_case(engine: sa.Engine) -> bool:
    """Whether the database's default collation folds case beyond ASCII (for $ilike)."""
    with engine.connect() as connection:
        return bool(connection.scalar(sa.select(sa.func.lower("É") == "é")))


def ids_matching(connection: sa.Connection, table: sa.Table, filter: Filter | None) -> set[int]:
    statement = sa.select(table.c.id).where(compile_filter(filter, table.c.metadata))
    return set(connection.scalars(statement))


# --------------------------------------------------------------------------- spec examples

SPEC_DOCS: dict[int, dict[str, Any]] = {
    1: {"a": 1},
    2: {"a": 1.0},
    3: {"a": [1, 2]},
    4: {"a": None},
    5: {},
    6: {"a": True},
    7: {"a": "1"},
    8: {"a": {"b": 1}},
    9: {"a": [{"b": 1}]},
    10: {"a": "B"},
    11: {"a": "a"},
    12: {"a": 3},
    13: {"a": {"b": None}},
    14: {"a": "a_b"},
    15: {"a": "a%b"},
    16: {"a": "axb"},
    17: {"a": "A_B"},
    18: {"a.b": 1},
    19: {"a": [5, 6]},
    20: {"a": {"0": 5}},
    21: {"a": "é"},
    22: {"a": "É"},
    23: {"a": 2.5},
    24: {"a": [[1]]},
}
ALL = set(SPEC_DOCS)
STRINGS = {7, 10, 11, 14, 15, 16, 17, 21, 22}

SPEC_CASES: list[tuple[Filter, set[int]]] = [
    ({"a": 1}, {1, 2}),  # numbers compare numerically; an array never equals a scalar
    ({"a": 1.0}, {1, 2}),
    ({"a": None}, {4}),  # null matches JSON null only
    ({"a": True}, {6}),  # true is not 1
    ({"a": "1"}, {7}),  # "1" is not 1
    ({"a": {"$ne": 1}}, ALL - {1, 2}),  # missing values match $ne
    ({"a": {"$ne": None}}, ALL - {4}),
    ({"a": {"$contains": 1}}, {3}),  # not [[1]]
    ({"a": {"$contains": [1, 2]}}, {3}),
    ({"a": {"$contains": [1, 5]}}, set()),
    ({"a.b": 1}, {8}),  # never through an array, never the literal key "a.b"
    ({"a.b": None}, {13}),
    ({"a.b": {"$exists": True}}, {8, 13}),  # a null value is present
    ({"a.b": {"$exists": False}}, ALL - {8, 13}),
    ({"a": {"$exists": True}}, ALL - {5, 18}),
    ({"a.0": 5}, {20}),  # "0" is a key, never an array index
    ({"a.0": {"$exists": True}}, {20}),
    ({"a": {"$lt": "a"}}, {7, 10, 17}),  # code point order: "1" < "A_B" < "B" < "a"
    ({"a": {"$gte": "a"}}, {11, 14, 15, 16, 21, 22}),
    ({"a": {"$gt": "z"}}, {21, 22}),
    ({"a": {"$gt": 1}}, {12, 23}),  # numbers only
    ({"a": {"$lte": 1}}, {1, 2}),
    ({"a": {"$between": [1, 3]}}, {1, 2, 12, 23}),
    ({"a": {"$between": ["A", "a"]}}, {10, 11, 17}),
    ({"a": {"$like": "a\\_b"}}, {14}),  # \ escapes
    ({"a": {"$like": "a_b"}}, {14, 15, 16}),
    ({"a": {"$like": "a%"}}, {11, 14, 15, 16}),
    ({"a": {"$like": "%"}}, STRINGS),  # strings only
    ({"a": {"$ilike": "a\\_b"}}, {14, 17}),
    ({"a": {"$ilike": "A"}}, {11}),
    ({"a": {"$in": []}}, set()),
    ({"a": {"$nin": []}}, ALL),
    ({"a": {"$in": [1, "B", None]}}, {1, 2, 4, 10}),
    ({"a": {"$nin": [1, "B", None]}}, ALL - {1, 2, 4, 10}),
    ({"$not": {"a": 1}}, ALL - {1, 2}),
    ({"$not": {"a": {"$gt": 1}}}, ALL - {12, 23}),
    ({"$not": {}}, set()),
    ({"$or": [{"a": 1}, {"a.b": 1}]}, {1, 2, 8}),
    ({"$and": [{"a": {"$gte": 1}}, {"a": {"$lt": 3}}]}, {1, 2, 23}),
    ({"a": {"$gte": 1, "$lt": 3}}, {1, 2, 23}),
    ({}, ALL),
]


@pytest.fixture(scope="module")
def spec_table(engine: sa.Engine) -> Iterator[sa.Table]:
    table = probe_table("filter_spec")
    with engine.begin() as connection:
        table.create(connection)
        connection.execute(table.insert(), [{"id": i, "metadata": m} for i, m in SPEC_DOCS.items()])
    yield table
    with engine.begin() as connection:
        table.drop(connection)


@pytest.mark.parametrize(("filter", "expected"), SPEC_CASES, ids=[repr(f) for f, _ in SPEC_CASES])
def test_spec_examples(
    engine: sa.Engine, spec_table: sa.Table, filter: Filter, expected: set[int]
) -> None:
    assert {i for i, m in SPEC_DOCS.items() if matches(filter, m)} == expected, "reference"
    with engine.connect() as connection:
        assert ids_matching(connection, spec_table, filter) == expected


def test_ilike_folds_non_ascii_case_with_a_unicode_collation(
    engine: sa.Engine, spec_table: sa.Table, unicode_case: bool
) -> None:
    if not unicode_case:
        pytest.skip("the database's default collation folds ASCII case only")
    with engine.connect() as connection:
        assert ids_matching(connection, spec_table, {"a": {"$ilike": "é"}}) == {21, 22}


# --------------------------------------------------------------------------- random filters

NUMBERS: list[Any] = [0, 1, -1, 1.0, 1.5, 2, 2.5, 3, 10, 100, -0.5, 0.1, 1e16, 10**17 + 1]
STRING_VALUES: list[Any] = [
    *["", " ", "a", "A", "b", "B", "apple", "Apple", "APPLE", "banana", "zebra", "Zebra"],
    *["éclair", "Éclair", "ÉCLAIR", "straße", "STRASSE", "ÿ", "~", "日本", "日本語", "😀"],
    *["a_b", "axb", "a%b", "a\\b", "1", "10", "2", "true", "null", "x y", "Ωmega", "ωmega"],
]
SCALARS: list[Any] = [*NUMBERS, *STRING_VALUES, True, False, None]
WEIRD_KEY = 'it\'s "odd" %s $k'
DOC_KEYS = ["n", "s", "tags", "flag", "nested", "arr", "a", "a.b", WEIRD_KEY, "ünï", "0"]
COMMON_FIELDS = [*DOC_KEYS, "nested.x", "nested.y", "nested.y.z", "a.b"]
RARE_FIELDS = ["nested.0", "arr.0", "a.0", "tags.0", "s.x", "missing", f"{WEIRD_KEY}.x"]
RARE_FIELDS += ["nested.y.z.w"]
FIELDS = COMMON_FIELDS + RARE_FIELDS
PATTERNS = [
    *["%", "_", "", "a%", "A%", "%a%", "%e", "a_b", "a\\_b", "a\\%b", "a\\\\b", "_p%"],
    *["é%", "É%", "%ÉCLAIR", "日%", "%😀", "__", "%b%", "STRA%", "straße", "z%", "ω%"],
]


def random_scalar(rng: random.Random) -> Any:
    return rng.choice(SCALARS)


def random_value(rng: random.Random, bias: str, depth: int = 0) -> Any:
    roll = rng.random()
    if bias == "number" and roll < 0.7:
        return rng.choice(NUMBERS)
    if bias == "string" and roll < 0.7:
        return rng.choice(STRING_VALUES)
    if (bias == "array" and roll < 0.7) or (depth < 2 and roll > 0.93):
        items = [random_scalar(rng) for _ in range(rng.randint(0, 4))]
        if depth < 2 and rng.random() < 0.15:
            items.append(random_value(rng, "object", depth + 1))
        if rng.random() < 0.1:
            items.append([rng.choice(NUMBERS)])
        return items
    if (bias == "object" and roll < 0.7) or (depth < 2 and roll > 0.88):
        keys = rng.sample(["x", "y", "b", "0", "w"], rng.randint(0, 3))
        obj = {key: random_value(rng, "any", depth + 1) for key in keys}
        if depth < 2 and rng.random() < 0.5:
            obj["y"] = {"z": random_value(rng, "any", depth + 2)}
        return obj
    return random_scalar(rng)


BIAS = {"n": "number", "s": "string", "tags": "array", "nested": "object", "a": "object"}


def random_document(rng: random.Random) -> dict[str, Any]:
    return {key: random_value(rng, BIAS.get(key, "any")) for key in DOC_KEYS if rng.random() < 0.7}


Pools = dict[str, list[Any]]


def value_pools(documents: dict[int, dict[str, Any]]) -> tuple[Pools, Pools]:
    """Per field: the scalars stored there, and the scalars inside arrays stored there."""
    scalars: Pools = {field: [] for field in FIELDS}
    elements: Pools = {field: [] for field in FIELDS}
    for metadata in documents.values():
        for field in FIELDS:
            value = lookup(metadata, field)
            if isinstance(value, list):
                elements[field] += [v for v in value if not isinstance(v, list | dict)]
            elif value is not MISSING and not isinstance(value, dict):
                scalars[field].append(value)
    return scalars, elements


class FilterMaker:
    """Random valid filters; operands are often values that the documents really hold."""

    def __init__(self, seed: int, documents: dict[int, dict[str, Any]]) -> None:
        self.rng = random.Random(seed)
        self.scalars, self.elements = value_pools(documents)

    def scalar(self, field: str, pool: Pools | None = None) -> Any:
        present = (pool or self.scalars)[field]
        if present and self.rng.random() < 0.6:
            return self.rng.choice(present)
        return random_scalar(self.rng)

    def operand(self, field: str, op: str) -> Any:
        rng = self.rng
        if op in ("$eq", "$ne"):
            return self.scalar(field)
        if op in ("$gt", "$gte", "$lt", "$lte"):
            return rng.choice(NUMBERS if rng.random() < 0.5 else STRING_VALUES)
        if op == "$between":
            pool = NUMBERS if rng.random() < 0.5 else STRING_VALUES
            pair = rng.sample(pool, 2)
            return sorted(pair) if rng.random() < 0.85 else pair
        if op in ("$in", "$nin"):
            return [self.scalar(field) for _ in range(rng.choice([0, 1, 2, 3, 4]))]
        if op in ("$like", "$ilike"):
            return rng.choice(PATTERNS)
        if op == "$exists":
            return rng.random() < 0.5
        if rng.random() < 0.5:  # $contains
            return self.scalar(field, self.elements)
        return [self.scalar(field, self.elements) for _ in range(rng.randint(1, 2))]

    def field(self) -> str:
        return self.rng.choice(COMMON_FIELDS if self.rng.random() < 0.8 else RARE_FIELDS)

    def filter(self, depth: int = 0) -> Filter:
        rng = self.rng
        filter: Filter = {}
        for _ in range(rng.choice([1, 1, 1, 1, 1, 2, 2, 3])):
            roll = rng.random()
            if depth < 3 and roll < 0.12:
                filter["$and"] = [self.filter(depth + 1) for _ in range(rng.randint(1, 2))]
            elif depth < 3 and roll < 0.24:
                filter["$or"] = [self.filter(depth + 1) for _ in range(rng.randint(1, 3))]
            elif depth < 3 and roll < 0.34:
                filter["$not"] = self.filter(depth + 1)
            elif roll < 0.45:
                field = self.field()
                filter[field] = self.scalar(field)
            else:
                field = self.field()
                ops = rng.sample(OPERATORS, rng.choice([1, 1, 1, 1, 2]))
                filter[field] = {op: self.operand(field, op) for op in ops}
        return filter


OPERATORS = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$between", "$in", "$nin"]
OPERATORS += ["$like", "$ilike", "$exists", "$contains"]


RANDOM_FILTERS = 800


@pytest.fixture(scope="module")
def random_table(engine: sa.Engine) -> Iterator[tuple[sa.Table, dict[int, dict[str, Any]]]]:
    rng = random.Random(20240601)
    documents = {i: random_document(rng) for i in range(1, 401)}
    table = probe_table("filter_probe")
    with engine.begin() as connection:
        table.create(connection)
        connection.execute(table.insert(), [{"id": i, "metadata": m} for i, m in documents.items()])
    yield table, documents
    with engine.begin() as connection:
        table.drop(connection)


def test_random_filters_match_the_reference(
    engine: sa.Engine,
    random_table: tuple[sa.Table, dict[int, dict[str, Any]]],
    unicode_case: bool,
) -> None:
    table, documents = random_table
    maker = FilterMaker(7, documents)
    informative = 0
    with engine.connect() as connection:
        for _ in range(RANDOM_FILTERS):
            filter = maker.filter()
            validate_filter(filter)
            expected = {
                i for i, m in documents.items() if matches(filter, m, unicode_case=unicode_case)
            }
            got = ids_matching(connection, table, filter)
            if got != expected:
                detail = {i: documents[i] for i in sorted(got ^ expected)[:5]}
                pytest.fail(
                    f"filter {filter!r}: database returned {len(got)} ids, reference "
                    f"{len(expected)}; they disagree on (id: metadata) {detail!r}"
                )
            informative += 0 < len(expected) < len(documents)
    # the generator must produce filters that separate documents, or the test proves little
    assert informative >= 0.4 * RANDOM_FILTERS


def test_every_operator_and_field_is_exercised(
    random_table: tuple[sa.Table, dict[int, dict[str, Any]]],
) -> None:
    maker = FilterMaker(7, random_table[1])
    seen_ops: set[str] = set()
    seen_fields: set[str] = set()

    def walk(filter: Filter) -> None:
        for key, value in filter.items():
            if key in ("$and", "$or"):
                for part in value:
                    walk(part)
            elif key == "$not":
                walk(value)
            else:
                seen_fields.add(key)
                seen_ops.update(value if isinstance(value, dict) else ["$eq"])

    for _ in range(RANDOM_FILTERS):
        walk(maker.filter())
    assert seen_ops == set(OPERATORS)
    assert seen_fields == set(FIELDS)


# --------------------------------------------------------------------------- indexes


@pytest.fixture(scope="module")
def large_table(engine: sa.Engine) -> Iterator[sa.Table]:
    """20k rows with selective values, the GIN index and two expression indexes."""
    table = probe_table("filter_explain")
    metadata = table.c.metadata
    sa.Index(f"{table.name}_n", metadata_index_expression(metadata, "n", "number"))
    sa.Index(f"{table.name}_s", metadata_index_expression(metadata, "info.s", "text"))
    g = sa.column("g", sa.Integer)
    rows = sa.select(
        g,
        sa.func.jsonb_build_object(
            "cat",
            sa.func.concat("c", g % 1000),
            "n",
            g,
            "info",
            sa.func.jsonb_build_object("s", sa.func.md5(sa.cast(g, sa.Text))),
            "tags",
            sa.func.jsonb_build_array(g % 1000, sa.func.concat("t", g % 700)),
            "flag",
            g % 2 == 0,
        ),
    ).select_from(sa.func.generate_series(1, 20_000).alias("g"))
    with engine.begin() as connection:
        table.create(connection)
        connection.execute(table.insert().from_select(["id", "metadata"], rows))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        # VACUUM flushes the GIN pending list; until then the planner prices GIN scans high.
        quoted = connection.dialect.identifier_preparer.quote(table.name)
        connection.execute(sa.text("VACUUM ANALYZE " + quoted))
    yield table
    with engine.begin() as connection:
        table.drop(connection)


def plan(connection: sa.Connection, table: sa.Table, filter: Filter) -> str:
    statement = sa.select(table.c.id).where(compile_filter(filter, table.c.metadata))
    return "\n".join(connection.scalars(Explain(statement)))


@pytest.mark.parametrize(
    ("filter", "index"),
    [
        ({"cat": "c7"}, "gin"),
        ({"cat": {"$eq": "c7"}, "flag": True}, "gin"),
        ({"cat": {"$in": ["c7", "c8", "c9"]}}, "gin"),
        ({"tags": {"$contains": 7}}, "gin"),
        ({"tags": {"$contains": [7, "t7"]}}, "gin"),
        ({"$or": [{"cat": "c7"}, {"tags": {"$contains": "t8"}}]}, "gin"),
        ({"n": {"$gt": 19_990}}, "n"),
        ({"n": {"$lte": 12}}, "n"),
        ({"n": {"$between": [100, 120.5]}}, "n"),
        ({"info.s": {"$gte": "fff"}}, "s"),
        ({"info.s": {"$between": ["ab", "abc"]}}, "s"),
        ({"info.s": {"$like": "abc%"}}, "s"),
    ],
    ids=repr,
)
def test_filters_use_indexes(
    engine: sa.Engine, large_table: sa.Table, filter: Filter, index: str
) -> None:
    with engine.connect() as connection:
        text = plan(connection, large_table, filter)
        assert f"Index Scan using {large_table.name}_{index} " in text or (
            f"Bitmap Index Scan on {large_table.name}_{index} " in text
        ), text
        assert "Seq Scan" not in text, text


def test_range_filters_use_indexes_in_generic_plans(
    engine: sa.Engine, large_table: sa.Table
) -> None:
    """A prepared statement may be planned once for all parameter values."""
    statement = sa.select(large_table.c.id).where(
        compile_filter({"n": {"$gt": 19_990}}, large_table.c.metadata)
    )
    with engine.connect() as connection:
        if connection.dialect.server_version_info < (16,):  # type: ignore[operator]
            pytest.skip("EXPLAIN (GENERIC_PLAN) needs PostgreSQL 16")
        # Compile with $1-style placeholders; keys and type names are rendered inline.
        sql = statement.compile(
            dialect=numbered_dialect(),  # type: ignore[no-untyped-call]
            compile_kwargs={"render_postcompile": True},
        ).string
        assert "$1" in sql
        cursor = connection.connection.driver_connection.execute(  # type: ignore[union-attr]
            "EXPLAIN (GENERIC_PLAN) " + sql
        )
        text = "\n".join(row[0] for row in cursor.fetchall())
    assert f"Index Scan using {large_table.name}_n " in text, text


# ------------------------------------------------------------- through the store's search

STORE_FILTERS = 150


async def test_store_searches_apply_random_filters_like_the_reference(
    pg_url: str, run: Any, collection_name: str, unicode_case: bool
) -> None:
    """The same random filters through ``similarity_search`` and MMR (which run a
    statement compiled once for the driver, the keys inline) and through ``get``:
    all three agree with the reference, hostile keys and LIKE patterns included."""
    from langchain_pgvec import HashingEmbeddings, PGVecStore

    rng = random.Random(20261122)
    documents = {i: random_document(rng) for i in range(1, 121)}
    store = PGVecStore(
        HashingEmbeddings(dimension=16),
        connection=pg_url,
        collection_name=collection_name,
        embedding_table="filter_store_16",
    )
    ids = [str(i) for i in documents]
    await run(
        store, "add_texts", [f"doc {i}" for i in documents], list(documents.values()), ids=ids
    )
    maker = FilterMaker(11, documents)
    query = store.embeddings.embed_query("doc")
    try:
        for _ in range(STORE_FILTERS):
            filter = maker.filter()
            expected = {
                str(i)
                for i, m in documents.items()
                if matches(filter, m, unicode_case=unicode_case)
            }
            found = await run(store, "similarity_search_by_vector", query, k=200, filter=filter)
            assert {d.id for d in found} == expected, filter
            assert len(found) == len(expected)
            if expected:
                picked = await run(
                    store,
                    "max_marginal_relevance_search_by_vector",
                    query,
                    k=3,
                    fetch_k=200,
                    filter=filter,
                )
                assert {d.id for d in picked} <= expected and len(picked) == min(3, len(expected))
            assert {d.id for d in await run(store, "get", filter)} == expected
    finally:
        await run(store, "delete_collection")
        await store.aclose()
