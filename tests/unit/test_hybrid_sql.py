"""Full-text and hybrid (reciprocal rank fusion) statements, without a database."""

from __future__ import annotations

import re
import uuid
from typing import Any

import numpy as np
import pytest
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.sql import ClauseElement

from langchain_pgvec import _hybrid
from langchain_pgvec._errors import InvalidInputError, SchemaError
from langchain_pgvec._filters import compile_filter
from langchain_pgvec._schema import DistanceStrategy, TableSpec, mapped_tables
from langchain_pgvec._sql import QUERY, Leg

DIALECT = PGDialect_psycopg()  # type: ignore[no-untyped-call]
CID = uuid.UUID("00000000-0000-4000-8000-0000000000c1")
FT = mapped_tables(
    TableSpec(
        embedding_table="hy_e", collection_table="hy_c", dimension=3, text_search_config="english"
    )
)
HALF = mapped_tables(
    TableSpec(
        embedding_table="hy_he",
        collection_table="hy_hc",
        dimension=3,
        vector_type="halfvec",
        text_search_config="simple",
    )
)
PLAIN = mapped_tables(TableSpec(embedding_table="hy_pe", collection_table="hy_pc", dimension=3))
VECTOR = np.array([1.0, 0.0, -1.0], np.float32)
COSINE = DistanceStrategy.COSINE
SCOPE = f"hy_e.collection_id = '{CID}'::UUID"


def compiled(statement: ClauseElement) -> tuple[str, dict[str, Any]]:
    result = statement.compile(dialect=DIALECT, compile_kwargs={"render_postcompile": True})
    return " ".join(result.string.split()), dict(result.params)


def hybrid(leg: Leg | None = None, **kw: Any) -> tuple[str, dict[str, Any]]:
    arguments: dict[str, Any] = {
        "k": 4,
        "fetch_k": 20,
        "rrf_k": 60,
        "weights": (1.0, 0.5),
        "where": None,
    }
    arguments.update(kw)
    tables = arguments.pop("tables", FT)
    return compiled(_hybrid.hybrid(tables, CID, COSINE, VECTOR, "cats -dogs", leg=leg, **arguments))


def vector_leg(text: str) -> str:
    """The text of the vector_leg CTE."""
    return text.split("WITH vector_leg AS (", 1)[1].split("), text_leg AS (", 1)[0]


def config_param(text: str) -> str:
    """The name of the parameter the text search configuration is bound as."""
    match = re.search(r"websearch_to_tsquery\(CAST\(%\((\w+)\)s::VARCHAR AS REGCONFIG\)", text)
    assert match is not None, text
    return match.group(1)


# ---------------------------------------------------------------------- hybrid


def test_the_default_vector_leg_reads_the_index_as_it_is() -> None:
    text, params = hybrid()
    assert vector_leg(text) == (
        "SELECT nearest.id AS id, row_number() OVER (ORDER BY nearest.distance, nearest.id) "
        "AS rank FROM (SELECT hy_e.id AS id, hy_e.embedding <=> %(query)s AS distance "
        f"FROM hy_e WHERE {SCOPE} ORDER BY distance LIMIT 20) AS nearest"
    )
    assert "+ 0.0" not in text  # not sorted again
    assert params[QUERY] is VECTOR


def test_a_resorted_vector_leg_fetches_more_and_keeps_fetch_k() -> None:
    text, _ = hybrid(Leg(fetch=40, resort=True))
    leg = vector_leg(text)
    assert "hy_e.embedding <=> %(query)s AS distance" in leg
    assert f"WHERE {SCOPE} ORDER BY distance LIMIT 40) AS nearest" in leg
    assert "ORDER BY nearest.distance + 0.0 LIMIT 20) AS nearest" in leg
    assert "cosine_distance" not in leg


def test_an_exact_vector_leg_ranks_by_the_function() -> None:
    text, _ = hybrid(Leg(fetch=20, exact=True))
    leg = vector_leg(text)
    assert "cosine_distance(hy_e.embedding, %(query)s) AS distance" in leg
    assert "<=>" not in leg
    assert "ORDER BY distance LIMIT 20) AS nearest" in leg
    assert "+ 0.0" not in leg


def test_the_vector_leg_carries_no_documents() -> None:
    leg = vector_leg(hybrid()[0])
    assert "content" not in leg and "metadata" not in leg and "vector_send" not in leg


def test_the_text_leg_and_the_fusion() -> None:
    text, params = hybrid()
    config = config_param(text)
    tsquery = f"websearch_to_tsquery(CAST(%({config})s::VARCHAR AS REGCONFIG), %(text)s::VARCHAR)"
    assert (
        "text_leg AS (SELECT matched.id AS id, row_number() OVER (ORDER BY matched.score DESC, "
        "matched.id) AS rank FROM (SELECT hy_e.id AS id, "
        f"ts_rank_cd(hy_e.content_tsv, {tsquery}) AS score FROM hy_e "
        f"WHERE {SCOPE} AND (hy_e.content_tsv @@ {tsquery}) "
        "ORDER BY score DESC, hy_e.id LIMIT 20) AS matched)"
    ) in text
    assert params[config] == "english"
    assert params["text"] == "cats -dogs"
    # fused by reciprocal rank over a full join, k rows, then joined to the documents
    assert "FROM vector_leg FULL OUTER JOIN text_leg ON vector_leg.id = text_leg.id" in text
    assert "coalesce(vector_leg.id, text_leg.id) AS id" in text
    assert "ORDER BY score DESC, id LIMIT 4) AS fused" in text
    assert text.endswith(
        f"AS fused JOIN hy_e ON {SCOPE} AND hy_e.id = fused.id ORDER BY fused.score DESC, hy_e.id"
    )


def test_the_weights_and_rrf_k_are_bound_floats() -> None:
    text, params = hybrid(weights=(0.7, 0.3), rrf_k=10)
    match = re.search(
        r"SELECT coalesce\(vector_leg\.id, text_leg\.id\) AS id, "
        r"coalesce\(%\((\w+)\)s / CAST\(\(%\((\w+)\)s \+ vector_leg\.rank\) AS DOUBLE PRECISION\), "
        r"%\((\w+)\)s\) \+ "
        r"coalesce\(%\((\w+)\)s / CAST\(\(%\((\w+)\)s \+ text_leg\.rank\) AS DOUBLE PRECISION\), "
        r"%\((\w+)\)s\) AS score",
        text,
    )
    assert match is not None, text
    vector_weight, rrf, vector_zero, text_weight, rrf_again, text_zero = match.groups()
    assert rrf == rrf_again  # one rrf_k for both legs
    assert params[vector_weight] == 0.7 and params[text_weight] == 0.3
    assert params[rrf] == 10.0 and isinstance(params[rrf], float)
    assert params[vector_zero] == params[text_zero] == 0.0


def test_each_row_carries_the_vector_legs_row_count() -> None:
    statement = _hybrid.hybrid(
        FT, CID, COSINE, VECTOR, "q", k=4, fetch_k=20, rrf_k=60, weights=(1, 1), where=None
    )
    text, _ = compiled(statement)
    assert "(SELECT count(*) AS count_1 FROM vector_leg) AS vector_rows" in text
    assert [c.name for c in statement.selected_columns] == [
        "id",
        "content",
        "metadata",
        "score",
        "vector_rows",
    ]


def test_the_filter_scopes_both_legs() -> None:
    where = compile_filter({"lang": "en"}, FT.embedding.c.metadata)
    text, params = hybrid(where=where)
    filtered = rf"WHERE {re.escape(SCOPE)} AND \(hy_e\.metadata @> %\((\w+)\)s::JSONB\)"
    in_vector_leg = re.search(filtered + " ORDER BY distance", vector_leg(text))
    text_leg = text.split("text_leg AS (", 1)[1].split(") SELECT", 1)[0]
    in_text_leg = re.search(filtered + r" AND \(hy_e\.content_tsv @@", text_leg)
    assert in_vector_leg is not None and in_text_leg is not None, text
    # the one filter, bound once
    assert in_vector_leg.group(1) == in_text_leg.group(1)
    assert params[in_vector_leg.group(1)] == {"lang": "en"}


def test_a_halfvec_vector_leg_casts_the_query() -> None:
    text, params = hybrid(tables=HALF)
    assert "hy_he.embedding <=> CAST(%(query)s AS HALFVEC(3)) AS distance" in vector_leg(text)
    exact, _ = hybrid(Leg(fetch=20, exact=True), tables=HALF)
    assert "cosine_distance(hy_he.embedding, CAST(%(query)s AS HALFVEC(3)))" in exact
    assert params[config_param(text)] == "simple"


# ---------------------------------------------------------------------- full text


def test_full_text_ranks_the_k_best_matches() -> None:
    statement = _hybrid.full_text(FT, CID, "fast cars", 7, None)
    text, params = compiled(statement)
    config = config_param(text)
    tsquery = f"websearch_to_tsquery(CAST(%({config})s::VARCHAR AS REGCONFIG), %(text)s::VARCHAR)"
    assert text == (
        "SELECT hy_e.id, hy_e.content, hy_e.metadata, ranked.score FROM ("
        f"SELECT hy_e.id AS id, ts_rank_cd(hy_e.content_tsv, {tsquery}) AS score FROM hy_e "
        f"WHERE {SCOPE} AND (hy_e.content_tsv @@ {tsquery}) ORDER BY score DESC, hy_e.id "
        f"LIMIT 7) AS ranked JOIN hy_e ON {SCOPE} AND hy_e.id = ranked.id "
        "ORDER BY ranked.score DESC, hy_e.id"
    )
    assert params == {config: "english", "text": "fast cars"}
    assert [c.name for c in statement.selected_columns] == ["id", "content", "metadata", "score"]


def test_statements_need_the_full_text_column() -> None:
    with pytest.raises(SchemaError, match="full_text=True"):
        _hybrid.full_text(PLAIN, CID, "q", 4, None)
    with pytest.raises(SchemaError, match="content_tsv"):
        _hybrid.hybrid(
            PLAIN, CID, COSINE, VECTOR, "q", k=4, fetch_k=20, rrf_k=60, weights=(1, 1), where=None
        )


# ---------------------------------------------------------------------- check_search


def test_check_search_accepts_a_string_on_a_full_text_store() -> None:
    _hybrid.check_search(FT, 'anything at all: -not "a phrase" or é')
    _hybrid.check_search(FT, "")


def test_check_search_without_full_text() -> None:
    with pytest.raises(SchemaError) as error:
        _hybrid.check_search(PLAIN, "q")
    message = str(error.value)
    assert "not enabled" in message and "full_text=True" in message and "'hy_pe'" in message
    # the schema is checked before the text
    with pytest.raises(SchemaError):
        _hybrid.check_search(PLAIN, 5)


def test_check_search_when_the_table_lacks_the_column() -> None:
    with pytest.raises(SchemaError) as error:
        _hybrid.check_search(FT, "q", present=False)
    message = str(error.value)
    assert "'hy_e' has no full-text column" in message
    assert "create_tables()" in message and "pgvec init --full-text" in message


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (None, ["must be a string", "NoneType"]),
        (b"bytes", ["must be a string", "bytes"]),
        (["a"], ["must be a string", "list"]),
        ("a\x00b", ["NUL"]),
        ("\udc80", ["surrogate"]),
    ],
)
def test_check_search_rejects_what_is_not_a_storable_string(text: object, words: list[str]) -> None:
    with pytest.raises(InvalidInputError) as error:
        _hybrid.check_search(FT, text)
    for word in words:
        assert word in str(error.value)
