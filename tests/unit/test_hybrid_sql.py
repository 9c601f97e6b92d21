"""Keyword (BM25) and hybrid search: the query's parts, statements, ranking and fusion,
without a database."""

from __future__ import annotations

import math
import uuid
from typing import Any

import pytest
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.sql import ClauseElement

from langchain_pgvec import _hybrid
from langchain_pgvec._driver import DriverStatement
from langchain_pgvec._errors import InvalidInputError, SchemaError
from langchain_pgvec._filters import compile_filter
from langchain_pgvec._schema import TableSpec, mapped_tables

DIALECT = PGDialect_psycopg()  # type: ignore[no-untyped-call]
CID = uuid.UUID("00000000-0000-4000-8000-0000000000c1")
FT = mapped_tables(
    TableSpec(
        embedding_table="hy_e", collection_table="hy_c", dimension=3, text_search_config="english"
    )
)
PLAIN = mapped_tables(TableSpec(embedding_table="hy_pe", collection_table="hy_pc", dimension=3))
SCOPE = f"hy_e.collection_id = '{CID}'::UUID"


def compiled(statement: ClauseElement) -> str:
    result = statement.compile(dialect=DIALECT, compile_kwargs={"render_postcompile": True})
    return " ".join(result.string.split())


# ---------------------------------------------------------------------- the query's parts


@pytest.mark.parametrize(
    ("text", "words", "constraint"),
    [
        ("fast cars", "fast cars", ""),
        ('a "quick fox" b', "a quick fox b", '"quick fox"'),
        ("cats -dogs", "cats", "-dogs"),
        ('cats -"big dogs"', "cats", '-"big dogs"'),
        ("cats or dogs OR birds", "cats dogs birds", ""),
        ("well-known x-ray", "well-known x-ray", ""),  # a "-" inside a word is the word's
        ('"unterminated phrase', "unterminated phrase", '"unterminated phrase"'),
        ("- lone dash", "- lone dash", ""),
        ("", "", ""),
    ],
)
def test_parse_reads_websearch_syntax(text: str, words: str, constraint: str) -> None:
    assert _hybrid.parse(text) == _hybrid.TextQuery(words, constraint)


# ---------------------------------------------------------------------- statements


def test_the_terms_statement_reads_the_querys_lexemes_and_the_totals() -> None:
    text = compiled(_hybrid.terms(FT, CID))
    assert text.startswith(
        "SELECT hy_e_terms.lexeme, CAST(sum(hy_e_terms.df) AS BIGINT) AS sum_1, "
        "CAST(sum(hy_e_terms.len) AS BIGINT) AS sum_2 FROM hy_e_terms "
    )
    assert f"hy_e_terms.collection_id = '{CID}'::UUID" in text
    assert "tsvector_to_array(to_tsvector(CAST(" in text and "%(bm25_words)s" in text
    assert "GROUP BY hy_e_terms.lexeme" in text


def test_the_ranked_statement_scores_bm25_in_sql() -> None:
    where = compile_filter({"year": {"$gte": 2020}}, FT.embedding.c.metadata)
    plain = compiled(_hybrid.ranked(FT, CID, None, 7, terms=2, constrained=False))
    assert plain.startswith("SELECT hy_e.id, hy_e.content, hy_e.metadata, ")
    for i in range(2):
        rank = (
            f"CAST(ts_rank('{{1,1,1,1}}'::float4[], hy_e.content_tsv, "
            f"CAST(%(bm25_term_{i})s::VARCHAR AS TSQUERY)) AS FLOAT(53))"
        )
        assert rank in plain  # the term frequency is read back from the one-term rank
        assert f"%(bm25_idf_{i})s" in plain
    assert "round(1.0::float8 / " in plain and "1.64493406685::float8" in plain
    assert "bm25_term_2" not in plain
    assert "%(bm25_norm)s + %(bm25_norm_per_lexeme)s" in plain
    assert SCOPE in plain and "hy_e.content_tsv @@ CAST(%(bm25_candidates)s" in plain
    assert plain.endswith("ORDER BY score DESC, hy_e.id LIMIT 7")
    assert "websearch_to_tsquery" not in plain
    narrowed = compiled(_hybrid.ranked(FT, CID, where, 7, terms=1, constrained=True))
    assert "metadata" in narrowed and "numnode(websearch_to_tsquery(" in narrowed
    assert "%(bm25_constraint)s" in narrowed
    assert _hybrid.ranked_params(1, True) == (
        "bm25_candidates",
        "bm25_norm",
        "bm25_norm_per_lexeme",
        "bm25_term_0",
        "bm25_idf_0",
        "bm25_constraint",
    )


def test_the_statements_have_no_fixed_parameters() -> None:
    """Constants are in the SQL text, so psycopg may prepare the statements."""
    names = _hybrid.ranked_params(1, True)
    ranked = DriverStatement.compile(
        _hybrid.ranked(FT, CID, None, 4, terms=1, constrained=True), DIALECT, names
    )
    assert ranked.fixed == {} and ranked.prepare is None
    params = ranked.params(("'cat'", 0.3, 0.09, "'cat'", 2.0, "-dog"))
    assert params["bm25_term_0"] == "'cat'" and params["bm25_idf_0"] == 2.0
    assert params["bm25_constraint"] == "-dog"
    with pytest.raises(ValueError):
        ranked.params(("'cat'",))
    terms = DriverStatement.compile(_hybrid.terms(FT, CID), DIALECT, _hybrid.WORDS)
    assert terms.fixed == {}


def test_statements_need_full_text() -> None:
    with pytest.raises(SchemaError, match="full_text=True"):
        _hybrid.ranked(PLAIN, CID, None, 4, terms=1, constrained=False)
    with pytest.raises(SchemaError, match="full_text=True"):
        _hybrid.terms(PLAIN, CID)


# ---------------------------------------------------------------------- ranking


def test_quote_keeps_every_character_an_operand() -> None:
    assert _hybrid.quote("cat") == "'cat'"
    assert _hybrid.quote("it's") == "'it''s'"
    assert _hybrid.quote("a\\b") == "'a\\\\b'"


def test_weigh_takes_the_rarest_terms_within_the_budget_and_the_conjunction() -> None:
    rows = [("", 100, 1000), ("common", 60, 0), ("rare", 2, 0), ("mid", 30, 0)]
    weights = _hybrid.weigh(rows, budget=40)
    assert weights is not None
    assert weights.terms == ["rare", "mid", "common"]
    assert weights.candidates == "'rare' | 'mid' | ('rare' & 'mid' & 'common')"
    assert weights.avgdl == 10.0
    assert weights.idf["rare"] == pytest.approx(math.log(1 + (100 - 2 + 0.5) / 2.5))
    assert weights.idf["rare"] > weights.idf["mid"] > weights.idf["common"] > 0
    # the rarest term is always a candidate source, however common
    only = _hybrid.weigh([("", 10, 50), ("a", 9, 0), ("b", 8, 0)], budget=1)
    assert only is not None and only.candidates == "'b' | ('b' & 'a')"
    # every term within the budget: no conjunction
    every = _hybrid.weigh(rows, budget=1000)
    assert every is not None and every.candidates == "'rare' | 'mid' | 'common'"


def test_weigh_without_known_terms() -> None:
    assert _hybrid.weigh([("", 10, 50)]) is None
    assert _hybrid.weigh([]) is None
    assert _hybrid.weigh([("", 0, 0), ("a", 1, 0)]) is None


def test_weights_give_the_ranked_statements_values() -> None:
    weights = _hybrid.Weights({"cat": 2.0, "dog": 1.0}, "'cat' | 'dog'", 10.0)
    norm, per_lexeme, *terms = weights.values(1.2, 0.75)
    assert norm == pytest.approx(1.2 * 0.25) and per_lexeme == pytest.approx(1.2 * 0.75 / 10)
    assert terms == ["'cat'", pytest.approx(2.0 * 2.2), "'dog'", pytest.approx(2.2)]
    # k1 = 0: every present term scores its idf; the constant stays above 0
    assert weights.values(0.0, 0.75)[0] > 0


def test_only_the_rarest_terms_are_scored() -> None:
    idf = {f"t{i}": 100.0 - i for i in range(40)}
    assert _hybrid.Weights(idf, "", 1.0).terms == [f"t{i}" for i in range(_hybrid.MAX_TERMS)]


def test_fuse_by_reciprocal_rank() -> None:
    vector = [("a", 0.9), ("b", 0.5), ("c", 0.1)]
    text = [("c", 7.0), ("d", 1.0)]
    fused = dict(_hybrid.fuse(vector, text, 10, fusion="rrf", rrf_k=60, weights=(1.0, 0.5)))
    assert fused["a"] == pytest.approx(1 / 61)
    assert fused["c"] == pytest.approx(1 / 63 + 0.5 / 61)
    assert fused["d"] == pytest.approx(0.5 / 62)
    best = _hybrid.fuse(vector, text, 2, fusion="rrf", rrf_k=60, weights=(1.0, 0.5))
    assert [doc for doc, _ in best] == ["c", "a"]


def test_fuse_by_standardised_scores() -> None:
    vector = [("a", 3.0), ("b", 2.0), ("c", 1.0)]  # z: 1.2247, 0, -1.2247
    text = [("c", 10.0), ("d", 0.0)]  # z: 1, -1
    fused = dict(_hybrid.fuse(vector, text, 10, fusion="convex", rrf_k=60, weights=(1.0, 1.0)))
    z = math.sqrt(1.5)
    assert fused["a"] == pytest.approx(0.5 * z + 0.5 * -1.0)  # missing from text: its lowest
    assert fused["c"] == pytest.approx(0.5 * -z + 0.5 * 1.0)
    assert fused["d"] == pytest.approx(0.5 * -z + 0.5 * -1.0)
    # the weights are shares: (3, 1) is (0.75, 0.25)
    weighted = dict(_hybrid.fuse(vector, text, 10, fusion="convex", rrf_k=1, weights=(3.0, 1.0)))
    assert weighted["c"] == pytest.approx(0.75 * -z + 0.25 * 1.0)
    # one leg alone, and a leg whose scores are all equal
    assert [
        d for d, _ in _hybrid.fuse(vector, [], 2, fusion="convex", rrf_k=1, weights=(1, 1))
    ] == [
        "a",
        "b",
    ]
    flat = _hybrid.fuse([("x", 1.0), ("y", 1.0)], [], 2, fusion="convex", rrf_k=1, weights=(1, 1))
    assert flat == [("x", 0.0), ("y", 0.0)]


@pytest.mark.parametrize(
    ("k1", "b"), [(-1, 0.5), (math.inf, 0.5), (1.2, 1.5), (1.2, -0.1), ("1", 0.5), (True, 0.5)]
)
def test_check_bm25_rejects_out_of_range(k1: Any, b: Any) -> None:
    with pytest.raises(InvalidInputError, match="BM25's"):
        _hybrid.check_bm25(k1, b)
    assert _hybrid.check_bm25(0, 1) == (0.0, 1.0)


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
    assert "'hy_e' lacks what full-text search needs" in message and "hy_e_terms" in message
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
