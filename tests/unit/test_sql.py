"""The statement builders of ``_sql`` without a database: the SQL text of each route
and statement, what is bound and what is inlined."""

from __future__ import annotations

import re
import uuid
from typing import Any

import numpy as np
import pytest
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.sql import ClauseElement

from langchain_pgvec import _sql
from langchain_pgvec._filters import compile_filter
from langchain_pgvec._schema import DistanceStrategy, TableSpec, mapped_tables

DIALECT = PGDialect_psycopg()  # type: ignore[no-untyped-call]
CID = uuid.UUID("00000000-0000-4000-8000-00000000000a")
OTHER = uuid.UUID("00000000-0000-4000-8000-00000000000b")
TABLES = mapped_tables(TableSpec(embedding_table="sq_e", collection_table="sq_c", dimension=3))
HALF = mapped_tables(
    TableSpec(
        embedding_table="sq_he",
        collection_table="sq_hc",
        dimension=3,
        vector_type="halfvec",
        text_search_config="english",
    )
)
QUOTED = mapped_tables(
    TableSpec(schema="My Schema", embedding_table="Emb", collection_table="select", dimension=3)
)
VECTOR = np.array([0.5, -1.0, 2.0], np.float32)
COSINE = DistanceStrategy.COSINE
SCOPE = f"sq_e.collection_id = '{CID}'::UUID"


def compiled(statement: ClauseElement, **kw: Any) -> tuple[str, dict[str, Any]]:
    """The SQL as run (literal-execute values rendered) and the bound parameters."""
    result = statement.compile(dialect=DIALECT, compile_kwargs={"render_postcompile": True}, **kw)
    return result.string, dict(result.params)


def sql(statement: ClauseElement, **kw: Any) -> str:
    return compiled(statement, **kw)[0]


def one_line(text: str) -> str:
    """SQLAlchemy's line breaks (before FROM, LIMIT, ...) as plain spaces."""
    return " ".join(text.split())


# ---------------------------------------------------------------------- search routes


def test_the_index_route_orders_by_the_operators_label() -> None:
    text, params = compiled(_sql.search(TABLES, CID, COSINE, VECTOR, 5))
    assert one_line(text) == (
        "SELECT sq_e.id, sq_e.content, sq_e.metadata, sq_e.embedding <=> %(query)s AS distance "
        f"FROM sq_e WHERE {SCOPE} ORDER BY distance LIMIT 5"
    )
    # the query vector is the one bound value; the collection id and LIMIT are inlined
    assert list(params) == [_sql.QUERY]
    assert params[_sql.QUERY] is VECTOR


def test_the_exact_route_ranks_by_a_function_no_index_serves() -> None:
    text = one_line(sql(_sql.search(TABLES, CID, COSINE, VECTOR, 5, exact=True)))
    assert text == (
        "SELECT sq_e.id, sq_e.content, sq_e.metadata, "
        "cosine_distance(sq_e.embedding, %(query)s) AS distance "
        f"FROM sq_e WHERE {SCOPE} ORDER BY distance LIMIT 5"
    )
    assert "<=>" not in text
    assert text.count("cosine_distance(") == 1  # computed once, ordered by its label


def test_the_exact_route_ignores_fetch_and_resort() -> None:
    plain = sql(_sql.search(TABLES, CID, COSINE, VECTOR, 5, exact=True))
    assert sql(_sql.search(TABLES, CID, COSINE, VECTOR, 5, exact=True, fetch=50)) == plain
    assert sql(_sql.search(TABLES, CID, COSINE, VECTOR, 5, exact=True, resort=True)) == plain


@pytest.mark.parametrize(
    ("strategy", "vector_type", "operator", "function"),
    [
        (DistanceStrategy.COSINE, "vector", "<=>", "cosine_distance"),
        (DistanceStrategy.EUCLIDEAN, "vector", "<->", "l2_distance"),
        (DistanceStrategy.INNER_PRODUCT, "vector", "<#>", "vector_negative_inner_product"),
        (DistanceStrategy.COSINE, "halfvec", "<=>", "cosine_distance"),
        (DistanceStrategy.EUCLIDEAN, "halfvec", "<->", "l2_distance"),
        (DistanceStrategy.INNER_PRODUCT, "halfvec", "<#>", "halfvec_negative_inner_product"),
    ],
)
def test_each_strategy_has_its_operator_and_its_function(
    strategy: DistanceStrategy, vector_type: str, operator: str, function: str
) -> None:
    tables = TABLES if vector_type == "vector" else HALF
    name = tables.spec.embedding_table
    query = "%(query)s" if vector_type == "vector" else "CAST(%(query)s AS HALFVEC(3))"
    index = sql(_sql.search(tables, CID, strategy, VECTOR, 5))
    assert f"{name}.embedding {operator} {query} AS distance" in index
    exact = sql(_sql.search(tables, CID, strategy, VECTOR, 5, exact=True))
    assert f"{function}({name}.embedding, {query}) AS distance" in exact
    assert operator not in exact


def test_the_iterative_route_fetches_more_and_sorts_again() -> None:
    statement = _sql.search(TABLES, CID, COSINE, VECTOR, 5, fetch=20, resort=True)
    text, params = compiled(statement)
    assert one_line(text) == (
        "SELECT nearest.id, nearest.content, nearest.metadata, nearest.distance FROM ("
        "SELECT sq_e.id AS id, sq_e.content AS content, sq_e.metadata AS metadata, "
        "sq_e.embedding <=> %(query)s AS distance "
        f"FROM sq_e WHERE {SCOPE} ORDER BY distance LIMIT 20) AS nearest "
        "ORDER BY nearest.distance + 0.0 LIMIT 5"
    )
    assert list(params) == [_sql.QUERY]
    assert [c.name for c in statement.selected_columns] == ["id", "content", "metadata", "distance"]


def test_fetching_more_without_resort_still_keeps_the_k_nearest() -> None:
    text = one_line(sql(_sql.search(TABLES, CID, COSINE, VECTOR, 5, fetch=20)))
    assert "ORDER BY distance LIMIT 20) AS nearest" in text
    assert text.endswith("ORDER BY nearest.distance + 0.0 LIMIT 5")


def test_resort_alone_sorts_again_without_an_outer_limit() -> None:
    text = one_line(sql(_sql.search(TABLES, CID, COSINE, VECTOR, 5, resort=True)))
    assert "ORDER BY distance LIMIT 5) AS nearest" in text
    assert text.endswith("ORDER BY nearest.distance + 0.0")  # fetch == k: no second LIMIT


def test_a_fetch_below_k_is_k() -> None:
    plain = sql(_sql.search(TABLES, CID, COSINE, VECTOR, 5))
    assert sql(_sql.search(TABLES, CID, COSINE, VECTOR, 5, fetch=3)) == plain


def test_with_vectors_encodes_them_in_the_outer_query_only() -> None:
    statement = _sql.search(TABLES, CID, COSINE, VECTOR, 5, with_vectors=True)
    text = one_line(sql(statement))
    assert text == (
        "SELECT nearest.id, nearest.content, nearest.metadata, nearest.distance, "
        "vector_send(nearest.embedding) AS vec FROM ("
        "SELECT sq_e.id AS id, sq_e.content AS content, sq_e.metadata AS metadata, "
        "sq_e.embedding <=> %(query)s AS distance, sq_e.embedding AS embedding "
        f"FROM sq_e WHERE {SCOPE} ORDER BY distance LIMIT 5) AS nearest "
        "ORDER BY nearest.distance + 0.0"
    )
    assert text.count("vector_send(") == 1
    inner = text.split(" FROM (", 1)[1]
    assert "vector_send" not in inner  # not for every row the index scans
    assert [c.name for c in statement.selected_columns] == [
        "id",
        "content",
        "metadata",
        "distance",
        "vec",
    ]


def test_with_vectors_on_the_exact_and_iterative_routes() -> None:
    exact = one_line(
        sql(_sql.search(TABLES, CID, COSINE, VECTOR, 5, with_vectors=True, exact=True))
    )
    ranked = "cosine_distance(sq_e.embedding, %(query)s) AS distance, sq_e.embedding AS embedding"
    assert ranked in exact
    assert exact.endswith("LIMIT 5) AS nearest ORDER BY nearest.distance + 0.0")
    iterative = one_line(
        sql(_sql.search(TABLES, CID, COSINE, VECTOR, 5, with_vectors=True, fetch=10, resort=True))
    )
    assert iterative.startswith(
        "SELECT nearest.id, nearest.content, nearest.metadata, nearest.distance, "
        "vector_send(nearest.embedding) AS vec FROM ("
    )
    assert iterative.endswith("LIMIT 10) AS nearest ORDER BY nearest.distance + 0.0 LIMIT 5")


def test_halfvec_casts_the_query_and_sends_halfvecs() -> None:
    text, params = compiled(_sql.search(HALF, CID, COSINE, VECTOR, 5, with_vectors=True))
    assert "sq_he.embedding <=> CAST(%(query)s AS HALFVEC(3)) AS distance" in text
    assert "halfvec_send(nearest.embedding) AS vec" in text
    assert "vector_send" not in text.replace("halfvec_send", "")
    assert list(params) == [_sql.QUERY]


def test_the_query_vector_parameter_has_the_columns_type() -> None:
    assert sql(_sql.query_vector(TABLES, VECTOR)) == "%(query)s"
    assert sql(_sql.query_vector(HALF, VECTOR)) == "CAST(%(query)s AS HALFVEC(3))"


def test_without_documents_only_ids_and_distances() -> None:
    statement = _sql.search(TABLES, CID, COSINE, VECTOR, 5, documents=False)
    assert one_line(sql(statement)) == (
        "SELECT sq_e.id, sq_e.embedding <=> %(query)s AS distance "
        f"FROM sq_e WHERE {SCOPE} ORDER BY distance LIMIT 5"
    )
    resorted = _sql.search(TABLES, CID, COSINE, VECTOR, 5, documents=False, fetch=9, resort=True)
    assert [c.name for c in resorted.selected_columns] == ["id", "distance"]


def test_a_filter_is_anded_with_the_collection() -> None:
    where = compile_filter({"genre": "sf"}, TABLES.embedding.c.metadata)
    text, params = compiled(_sql.search(TABLES, CID, COSINE, VECTOR, 5, where))
    match = re.search(
        rf"WHERE {re.escape(SCOPE)} AND \(sq_e\.metadata @> %\((\w+)\)s::JSONB\) ORDER BY distance",
        text,
    )
    assert match is not None, text
    assert params == {_sql.QUERY: VECTOR, match.group(1): {"genre": "sf"}}


def test_the_collection_and_limit_are_inlined_yet_cached_once() -> None:
    first = _sql.search(TABLES, CID, COSINE, VECTOR, 5)
    second = _sql.search(TABLES, OTHER, COSINE, VECTOR, 7)
    # one cache entry for every collection and k (SQLAlchemy's cache key ignores values)
    first_key, second_key = first._generate_cache_key(), second._generate_cache_key()
    assert first_key is not None and second_key is not None
    assert first_key.key == second_key.key
    # ... yet each runs with its own values in the SQL text, never as server parameters
    assert f"'{OTHER}'::UUID" in sql(second) and sql(second).endswith("LIMIT 7")
    generic = str(first.compile(dialect=DIALECT))
    assert "__[POSTCOMPILE_" in generic and str(CID) not in generic


def test_scope_inlines_the_collection_id_as_a_literal() -> None:
    text, params = compiled(_sql.scope(TABLES, CID, None))
    assert text == SCOPE
    assert params == {}
    where = TABLES.embedding.c.content == "x"
    text, params = compiled(_sql.scope(TABLES, CID, where))
    assert text == f"{SCOPE} AND sq_e.content = %(content_1)s::VARCHAR"
    assert params == {"content_1": "x"}


def test_inline_renders_its_value() -> None:
    assert sql(_sql.inline(42)) == "42"
    assert "POSTCOMPILE" in str(_sql.inline(42).compile(dialect=DIALECT))


# ---------------------------------------------------------------------- probes and counts


def test_probe_is_explain_json_of_a_union_all() -> None:
    where = compile_filter({"g": 1}, TABLES.embedding.c.metadata)
    text, params = compiled(_sql.probe(TABLES, CID, where))
    assert one_line(text) == (
        "EXPLAIN (FORMAT JSON) SELECT %(param_1)s::INTEGER AS anon_1 FROM sq_e "
        f"WHERE {SCOPE} AND (sq_e.metadata @> %(param_3)s::JSONB) "
        "UNION ALL SELECT %(param_4)s::INTEGER AS anon_2 FROM sq_e"
    )
    assert params == {"param_1": 1, "param_3": {"g": 1}, "param_4": 1}


def test_probe_without_a_filter() -> None:
    text = one_line(sql(_sql.probe(TABLES, CID, None)))
    assert text.startswith("EXPLAIN (FORMAT JSON) SELECT ")
    first, second = text.split(" UNION ALL ")
    assert first.endswith(f"FROM sq_e WHERE {SCOPE}")
    assert second.endswith("FROM sq_e") and "WHERE" not in second  # the whole table


def test_count() -> None:
    text, params = compiled(_sql.count(TABLES, CID))
    assert one_line(text) == f"SELECT count(*) AS count_1 FROM sq_e WHERE {SCOPE}"
    assert params == {}


def test_a_capped_count_counts_a_limited_subquery() -> None:
    where = TABLES.embedding.c.content == "x"
    text, params = compiled(_sql.count(TABLES, CID, where, cap=5_001))
    assert one_line(text) == (
        "SELECT count(*) AS count_1 FROM (SELECT %(param_1)s::INTEGER AS anon_1 FROM sq_e "
        f"WHERE {SCOPE} AND sq_e.content = %(content_1)s::VARCHAR LIMIT 5001) AS matching"
    )
    assert params == {"param_1": 1, "content_1": "x"}


# ---------------------------------------------------------------------- gets and deletes


def test_get_by_ids_binds_the_ids_as_one_array() -> None:
    text, params = compiled(_sql.get_by_ids(TABLES, CID, ("a", "b", "c")))
    assert one_line(text) == (
        "SELECT sq_e.id, sq_e.content, sq_e.metadata FROM sq_e "
        f"WHERE {SCOPE} AND sq_e.id = ANY (%(ids)s::TEXT[])"
    )
    assert params == {"ids": ["a", "b", "c"]}
    # any number of ids: the same statement text
    many = [str(i) for i in range(70_000)]
    text_many, params_many = compiled(_sql.get_by_ids(TABLES, CID, many))
    assert text_many == text and params_many == {"ids": many}


def test_existing_ids_and_delete_ids_bind_one_array() -> None:
    text, params = compiled(_sql.existing_ids(TABLES, CID, ["x", "y"]))
    assert one_line(text) == (
        f"SELECT sq_e.id FROM sq_e WHERE {SCOPE} AND sq_e.id = ANY (%(ids)s::TEXT[])"
    )
    assert params == {"ids": ["x", "y"]}
    text, params = compiled(_sql.delete_ids(TABLES, CID, ["x", "y"]))
    assert text == f"DELETE FROM sq_e WHERE {SCOPE} AND sq_e.id = ANY (%(ids)s::TEXT[])"
    assert params == {"ids": ["x", "y"]}


def test_delete_where() -> None:
    assert sql(_sql.delete_where(TABLES, CID, None)) == f"DELETE FROM sq_e WHERE {SCOPE}"
    where = compile_filter({"a": {"$exists": True}}, TABLES.embedding.c.metadata)
    assert sql(_sql.delete_where(TABLES, CID, where)) == (
        f"DELETE FROM sq_e WHERE {SCOPE} AND (sq_e.metadata -> 'a') IS NOT NULL"
    )


def test_get_where_orders_by_id_and_pages() -> None:
    text, params = compiled(_sql.get_where(TABLES, CID, None, limit=10, offset=20))
    assert one_line(text) == (
        f"SELECT sq_e.id, sq_e.content, sq_e.metadata FROM sq_e WHERE {SCOPE} "
        "ORDER BY sq_e.id LIMIT %(param_2)s::INTEGER OFFSET %(param_3)s::INTEGER"
    )
    assert params == {"param_2": 10, "param_3": 20}
    unlimited = one_line(sql(_sql.get_where(TABLES, CID, None)))
    assert unlimited.endswith("ORDER BY sq_e.id LIMIT ALL OFFSET %(param_2)s::INTEGER")


def test_any_row_reads_one_row() -> None:
    text, params = compiled(_sql.any_row(TABLES, CID))
    assert one_line(text) == f"SELECT sq_e.id FROM sq_e WHERE {SCOPE} LIMIT %(param_2)s::INTEGER"
    assert params == {"param_2": 1}


# ---------------------------------------------------------------------- collections


def test_collection_statements() -> None:
    text, params = compiled(_sql.collection_id(TABLES, "docs"))
    assert one_line(text) == "SELECT sq_c.id FROM sq_c WHERE sq_c.name = %(name_1)s::VARCHAR"
    assert params == {"name_1": "docs"}
    assert one_line(sql(_sql.lock_collection(TABLES, "docs"))) == (
        "SELECT sq_c.id FROM sq_c WHERE sq_c.name = %(name_1)s::VARCHAR FOR KEY SHARE"
    )
    text, params = compiled(_sql.delete_collection(TABLES, "docs"))
    assert text == "DELETE FROM sq_c WHERE sq_c.name = %(name_1)s::VARCHAR"
    assert params == {"name_1": "docs"}


def test_create_collection_does_nothing_on_conflict() -> None:
    # the id comes back only when the row was inserted: rowcount says nothing for an
    # INSERT through SQLAlchemy (-1), so the creator that won is known by RETURNING
    text, params = compiled(_sql.create_collection(TABLES, "docs", {"k": 1}))
    assert text == (
        "INSERT INTO sq_c (id, name, metadata) "
        "VALUES (%(id)s::UUID, %(name)s::VARCHAR, %(metadata)s::JSONB) "
        "ON CONFLICT (name) DO NOTHING RETURNING sq_c.id"
    )
    assert isinstance(params["id"], uuid.UUID) and params["id"].version == 4
    assert params["name"] == "docs" and params["metadata"] == {"k": 1}
    assert compiled(_sql.create_collection(TABLES, "docs"))[1]["metadata"] == {}
    again = compiled(_sql.create_collection(TABLES, "docs"))[1]["id"]
    assert again != params["id"]


# ---------------------------------------------------------------------- upserts

CHANGED = (
    "WHERE sq_e.content IS DISTINCT FROM excluded.content "
    "OR sq_e.embedding IS DISTINCT FROM excluded.embedding "
    "OR sq_e.metadata IS DISTINCT FROM excluded.metadata "
    "OR CAST(sq_e.metadata AS TEXT) IS DISTINCT FROM CAST(excluded.metadata AS TEXT) "
    "OR vector_send(sq_e.embedding) IS DISTINCT FROM vector_send(excluded.embedding)"
)
COLUMNS = ["collection_id", "id", "content", "metadata", "embedding"]


def test_upsert_updates_only_rows_that_changed() -> None:
    text = sql(_sql.upsert(TABLES), column_keys=COLUMNS)
    assert text == (
        "INSERT INTO sq_e (collection_id, id, content, metadata, embedding) "
        "VALUES (%(collection_id)s::UUID, %(id)s::VARCHAR, %(content)s::VARCHAR, "
        "%(metadata)s::JSONB, %(embedding)s) "
        "ON CONFLICT (collection_id, id) DO UPDATE SET content = excluded.content, "
        "metadata = excluded.metadata, embedding = excluded.embedding " + CHANGED
    )


def test_the_unchanged_test_compares_cheap_columns_first() -> None:
    where = sql(_sql.upsert(TABLES), column_keys=COLUMNS).split(" WHERE ", 1)[1]
    comparisons = where.split(" OR ")
    assert len(comparisons) == 5
    assert all(" IS DISTINCT FROM " in c for c in comparisons)
    # text and binary forms last: jsonb = takes 1 and 1.0 as equal, vector = takes -0.0
    # and 0.0 as equal
    assert comparisons[-2].startswith("CAST(sq_e.metadata AS TEXT)")
    assert comparisons[-1].startswith("vector_send(sq_e.embedding)")


def test_a_halfvec_upsert_compares_halfvec_send() -> None:
    text = sql(_sql.upsert(HALF), column_keys=COLUMNS)
    binary = "halfvec_send(sq_he.embedding) IS DISTINCT FROM halfvec_send(excluded.embedding)"
    assert binary in text
    # the generated full-text column is never written
    assert "SET content = excluded.content, metadata = excluded.metadata, " in text
    assert "content_tsv" not in text


# ---------------------------------------------------------------------- ANALYZE and GRANT


def test_analyze() -> None:
    assert sql(_sql.analyze(TABLES)) == "ANALYZE sq_e"
    # the planner's columns: the full-text column only where it exists
    assert sql(_sql.analyze(TABLES, "planner")) == "ANALYZE sq_e (collection_id, metadata)"
    assert sql(_sql.analyze(HALF, "planner")) == (
        "ANALYZE sq_he (collection_id, metadata, content_tsv)"
    )


def test_analyze_quotes_identifiers() -> None:
    assert sql(_sql.analyze(QUOTED)) == 'ANALYZE "My Schema"."Emb"'
    analyze = _sql.Analyze(QUOTED.embedding, ["id", "My Col", "select", 'a"b'])
    assert sql(analyze) == 'ANALYZE "My Schema"."Emb" (id, "My Col", "select", "a""b")'


def test_grants_for_writers_and_readers() -> None:
    assert [sql(g) for g in _sql.grants(TABLES, "app", "write")] == [
        "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE sq_e, sq_c TO app"
    ]
    assert [sql(g) for g in _sql.grants(TABLES, "reader", "read")] == [
        "GRANT SELECT ON TABLE sq_e, sq_c TO reader"
    ]


def test_grants_quote_the_role_schema_and_tables() -> None:
    assert [sql(g) for g in _sql.grants(QUOTED, 'Web "App"', "read")] == [
        'GRANT USAGE ON SCHEMA "My Schema" TO "Web ""App"""',
        'GRANT SELECT ON TABLE "My Schema"."Emb", "My Schema"."select" TO "Web ""App"""',
    ]
    assert sql(_sql.Grant(("SELECT",), [TABLES.embedding], "user")) == (
        'GRANT SELECT ON TABLE sq_e TO "user"'  # a reserved word
    )


def test_an_unknown_access_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        _sql.grants(TABLES, "app", "admin")


# ---------------------------------------------------------------------- EXPLAIN


def test_explain_options() -> None:
    statement = _sql.search(TABLES, CID, COSINE, VECTOR, 5)
    plain = sql(statement)
    assert sql(_sql.Explain(statement)) == "EXPLAIN " + plain
    assert sql(_sql.Explain(statement, analyze=True)) == "EXPLAIN (ANALYZE, BUFFERS) " + plain
    assert sql(_sql.Explain(statement, analyze=True, json=True)) == (
        "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + plain
    )
    assert compiled(_sql.Explain(statement))[1] == {_sql.QUERY: VECTOR}
