"""Quantized HNSW indexes without a database: DDL, search statements, catalog, planner."""

from __future__ import annotations

import re
import uuid
from typing import Any

import numpy as np
import pytest
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

from langchain_pgvec import (
    HNSW,
    DistanceStrategy,
    InvalidInputError,
    IVFFlat,
    SearchSettings,
    _quantize,
    _sql,
)
from langchain_pgvec._bootstrap import State
from langchain_pgvec._catalog import IndexInfo
from langchain_pgvec._errors import SchemaError
from langchain_pgvec._index_specs import (
    Wanted,
    already_built,
    check_indexable,
    create_statement,
    unindexed_advice,
    vector_index,
    vector_index_name,
)
from langchain_pgvec._quantize import Quantization
from langchain_pgvec._schema import TableSpec, mapped_tables
from langchain_pgvec._search import make_plan, serving

DIALECT = PGDialect_psycopg()  # type: ignore[no-untyped-call]
DIM = 3
CID = uuid.UUID("00000000-0000-4000-8000-00000000000c")
TABLES = mapped_tables(TableSpec(embedding_table="qz_e", collection_table="qz_c", dimension=DIM))
HALF = mapped_tables(
    TableSpec(
        embedding_table="qz_he", collection_table="qz_hc", dimension=DIM, vector_type="halfvec"
    )
)
VECTOR = np.array([0.5, -1.0, 2.0], np.float32)
COSINE = DistanceStrategy.COSINE


def sql(statement: Any) -> str:
    compiled = statement.compile(dialect=DIALECT, compile_kwargs={"render_postcompile": True})
    return " ".join(compiled.string.split())


# ---------------------------------------------------------------------- the spec


def test_hnsw_takes_two_quantizations_and_nothing_else() -> None:
    assert HNSW().quantization is None and IVFFlat().quantization is None
    assert HNSW(quantization="binary").with_options(0) == {"m": 16, "ef_construction": 64}
    for bad in ("int8", "HALFVEC", True, 1):
        with pytest.raises(InvalidInputError, match="None \\(full precision\\), 'halfvec' or"):
            HNSW(quantization=bad)  # type: ignore[arg-type]


def test_default_names_say_the_quantization() -> None:
    assert vector_index_name("t", HNSW(quantization="halfvec"), COSINE) == "t_hnsw_halfvec_cosine"
    euclidean = DistanceStrategy.EUCLIDEAN
    assert vector_index_name("t", HNSW(quantization="halfvec"), euclidean) == "t_hnsw_halfvec_l2"
    # hamming serves every distance: one binary index per table
    assert vector_index_name("t", HNSW(quantization="binary"), euclidean) == "t_hnsw_binary"
    assert vector_index_name("t", HNSW(quantization="binary"), COSINE, CID) == (
        f"t_hnsw_binary_{CID.hex[:12]}"
    )


@pytest.mark.parametrize(
    ("strategy", "kind", "key"),
    [
        (COSINE, "halfvec", "CAST(embedding AS HALFVEC(3)) halfvec_cosine_ops"),
        (DistanceStrategy.EUCLIDEAN, "halfvec", "CAST(embedding AS HALFVEC(3)) halfvec_l2_ops"),
        (DistanceStrategy.INNER_PRODUCT, "halfvec", "CAST(embedding AS HALFVEC(3)) halfvec_ip_ops"),
        (COSINE, "binary", "CAST(binary_quantize(embedding) AS BIT(3)) bit_hamming_ops"),
        (DistanceStrategy.INNER_PRODUCT, "binary", "CAST(binary_quantize(embedding) AS BIT(3))"),
    ],
)
def test_the_index_is_an_expression_with_its_opclass(
    strategy: DistanceStrategy, kind: Quantization, key: str
) -> None:
    index = vector_index(
        "ix", TABLES.embedding, HNSW(quantization=kind), strategy, "vector", dimension=DIM
    )
    text = sql(create_statement(index))
    assert text.startswith("CREATE INDEX IF NOT EXISTS ix ON qz_e USING hnsw (" + key)
    assert text.endswith("WITH (m = 16, ef_construction = 64)")
    partial = vector_index(
        "ix",
        TABLES.embedding,
        HNSW(quantization=kind),
        strategy,
        "vector",
        dimension=DIM,
        collection_id=CID,
    )
    assert sql(create_statement(partial)).endswith(f"WHERE collection_id = '{CID}'")
    with pytest.raises(SchemaError, match="dimension"):
        vector_index("ix", TABLES.embedding, HNSW(quantization=kind), strategy, "vector")


def test_limits_and_refusals() -> None:
    check_indexable("t", "vector", 4000, "hnsw", "halfvec")
    check_indexable("t", "vector", 16000, "hnsw", "binary")
    check_indexable("t", "halfvec", 64000, "hnsw", "binary")
    with pytest.raises(SchemaError, match=r"4,001 dimensions.*at most 4,000.*'binary'"):
        check_indexable("t", "vector", 4001, "hnsw", "halfvec")
    with pytest.raises(SchemaError, match=r"bit values of at most 64,000"):
        check_indexable("t", "vector", 64001, "hnsw", "binary")
    with pytest.raises(InvalidInputError, match=r"'t' stores its vectors as halfvec already"):
        check_indexable("t", "halfvec", 100, "hnsw", "halfvec")
    with pytest.raises(SchemaError, match="without a fixed dimension"):
        check_indexable("t", "vector", None, "hnsw", "binary")
    # a float index over 2,000 dimensions points at the halfvec quantization
    with pytest.raises(SchemaError, match=r"HNSW\(quantization='halfvec'\)"):
        check_indexable("t", "vector", 3072, "hnsw")


# ---------------------------------------------------------------------- the search statement


@pytest.mark.parametrize("kind", ["halfvec", "binary"])
def test_the_search_orders_by_the_index_expression_then_by_exact_distance(
    kind: Quantization,
) -> None:
    statement = _sql.search(TABLES, CID, COSINE, VECTOR, 4, fetch=40, quantization=kind)
    text = sql(statement)
    inner = re.search(r"ORDER BY (.*) LIMIT 40\) AS nearest", text)
    assert inner, text
    expression = sql(
        create_statement(
            vector_index(
                "ix", TABLES.embedding, HNSW(quantization=kind), COSINE, "vector", dimension=DIM
            )
        )
    )
    key = re.search(r"USING hnsw \((.*) (halfvec_cosine_ops|bit_hamming_ops)\)", expression)
    assert key, expression
    # textually the index's expression (PostgreSQL matches an index by its expression)
    assert inner.group(1).startswith(key.group(1).replace("embedding", "qz_e.embedding", 1))
    if kind == "binary":
        assert inner.group(1).endswith(
            "<~> CAST(binary_quantize(CAST(%(query)s AS VECTOR(3))) AS BIT(3))"
        )
    else:
        assert inner.group(1).endswith("<=> CAST(CAST(%(query)s AS VECTOR(3)) AS HALFVEC(3))")
    # the exact distance, computed for the candidates only, ranks them
    assert "qz_e.embedding <=> %(query)s AS distance" in text
    assert text.endswith("ORDER BY nearest.distance + 0.0 LIMIT 4")
    assert f"WHERE qz_e.collection_id = '{CID}'::UUID ORDER BY" in text


def test_a_halfvec_table_quantizes_its_halfvec_query() -> None:
    text = sql(_sql.search(HALF, CID, COSINE, VECTOR, 4, fetch=40, quantization="binary"))
    assert "CAST(binary_quantize(CAST(%(query)s AS HALFVEC(3))) AS BIT(3))" in text


def test_the_exact_route_ignores_the_quantization() -> None:
    exact = _sql.search(TABLES, CID, COSINE, VECTOR, 4, exact=True, quantization="binary")
    assert sql(exact) == sql(_sql.search(TABLES, CID, COSINE, VECTOR, 4, exact=True))


def test_even_one_candidate_per_result_is_ranked_again() -> None:
    text = sql(_sql.search(TABLES, CID, COSINE, VECTOR, 4, fetch=4, quantization="halfvec"))
    assert text.endswith("ORDER BY nearest.distance + 0.0") and "LIMIT 4) AS nearest" in text


# ---------------------------------------------------------------------- the catalog


def info(columns: tuple[str, ...], opclass: str, **overrides: Any) -> IndexInfo:
    row = {
        "name": "ix",
        "method": "hnsw",
        "columns": list(columns),
        "opclass": opclass,
        "size_bytes": 1,
        "partitioned": False,
        "definition": "CREATE INDEX ...",
        "predicate": None,
        "expression": columns != ("embedding",),
        "is_unique": False,
        "is_primary": False,
        "valid": True,
        "options": ["m=16", "ef_construction=64"],
        **overrides,
    }
    return IndexInfo.from_row(type("Row", (), row))


HALFVEC_IX = info(("(embedding::halfvec(3))",), "halfvec_cosine_ops")
BINARY_IX = info(("(binary_quantize(embedding)::bit(3))",), "bit_hamming_ops")
FLOAT_IX = info(("embedding",), "vector_cosine_ops")


def test_the_catalog_recognises_quantized_indexes() -> None:
    assert (HALFVEC_IX.quantization, HALFVEC_IX.quantized_dimension) == ("halfvec", 3)
    assert (BINARY_IX.quantization, BINARY_IX.quantized_dimension) == ("binary", 3)
    assert FLOAT_IX.quantization is None and FLOAT_IX.quantized_dimension is None
    assert _quantize.parse("((embedding)::halfvec(384))") == ("halfvec", 384)
    assert _quantize.parse("(subvector(embedding, 1, 3)::halfvec(3))") is None
    assert info(("lower(content)",), "text_ops", method="btree").quantization is None
    # a quantized index never passes for an index of the vectors as stored
    assert not HALFVEC_IX.serves("halfvec_cosine_ops", CID)
    assert HALFVEC_IX.serves_quantized("halfvec", "halfvec_cosine_ops", CID, 3)
    assert not HALFVEC_IX.serves_quantized("halfvec", "halfvec_l2_ops", CID, 3)
    assert not BINARY_IX.serves_quantized("binary", "bit_hamming_ops", CID, 4)
    assert not info(BINARY_IX.columns, "bit_hamming_ops", valid=False).serves_quantized(
        "binary", "bit_hamming_ops", CID
    )


def test_already_built_compares_the_quantization() -> None:
    wanted = Wanted("hnsw", "halfvec_cosine_ops", {"m": 16}, quantization="halfvec")
    assert already_built(HALFVEC_IX, wanted, "t")
    plain_half = info(("embedding",), "halfvec_cosine_ops")
    with pytest.raises(SchemaError, match="another definition"):
        already_built(plain_half, wanted, "t")


def test_a_quantized_index_silences_the_missing_index_warning() -> None:
    kwargs: dict[str, Any] = {
        "table": "t",
        "approx_rows": 10**6,
        "strategy": COSINE,
        "vector_type": "vector",
        "collection_id": CID,
    }
    assert unindexed_advice(indexes=[BINARY_IX], **kwargs) is None
    assert unindexed_advice(indexes=[HALFVEC_IX], **kwargs) is None
    l2 = {**kwargs, "strategy": DistanceStrategy.EUCLIDEAN}
    advice = unindexed_advice(indexes=[HALFVEC_IX], **l2)
    assert advice is not None and "halfvec_cosine_ops" in advice


# ---------------------------------------------------------------------- the planner


def state(*indexes: IndexInfo, version: str = "0.8.5") -> State:
    return State(tables=TABLES, collection_id=CID, extension_version=version, indexes=indexes)


def test_which_index_serves() -> None:
    both = state(BINARY_IX, HALFVEC_IX, FLOAT_IX)
    assert serving(both, COSINE) is FLOAT_IX  # the vectors as stored first
    assert serving(both, COSINE, "binary") is BINARY_IX
    assert serving(both, COSINE, "halfvec") is HALFVEC_IX
    assert serving(state(BINARY_IX, HALFVEC_IX), COSINE) is HALFVEC_IX
    assert serving(state(BINARY_IX), COSINE) is BINARY_IX
    assert serving(state(BINARY_IX), COSINE, "halfvec") is BINARY_IX  # none: as None
    assert serving(state(BINARY_IX), COSINE, "off") is None
    # binary serves every distance (its candidates are ranked by the store's own)
    assert serving(state(BINARY_IX, HALFVEC_IX), DistanceStrategy.EUCLIDEAN) is BINARY_IX
    own = info(BINARY_IX.columns, "bit_hamming_ops", predicate=f"(collection_id = '{CID}'::uuid)")
    assert serving(state(BINARY_IX, own), COSINE) is own
    other = info(
        BINARY_IX.columns, "bit_hamming_ops", predicate=f"(collection_id = '{uuid.uuid4()}'::uuid)"
    )
    assert serving(state(other), COSINE) is None


def test_a_quantized_plan_overfetches_on_every_route_with_ef_search_to_match() -> None:
    plain = make_plan("index", 10, SearchSettings(), state(BINARY_IX), BINARY_IX)
    assert (plain.fetch, plain.resort, plain.quantization) == (100, True, "binary")
    assert dict(plain.gucs) == {"hnsw.ef_search": "100"}
    half = make_plan("index", 10, SearchSettings(), state(HALFVEC_IX), HALFVEC_IX)
    assert (half.fetch, half.quantization, dict(half.gucs)) == (20, "halfvec", {})  # 40
    # a filter leaves the matching neighbours further out: twice the candidates
    filtered = make_plan("iterative", 10, SearchSettings(), state(BINARY_IX), BINARY_IX, 0.02)
    gucs = dict(filtered.gucs)
    assert filtered.fetch == 200 and gucs["hnsw.iterative_scan"] == "relaxed_order"
    assert gucs["hnsw.ef_search"] == "200"
    assert make_plan("iterative", 4, SearchSettings(), state(), HALFVEC_IX).fetch == 16
    asked = make_plan("iterative", 10, SearchSettings(overfetch=5), state(), BINARY_IX)
    assert asked.fetch == 50
    # ef_search below the candidates would make the index return fewer: raised to them
    low = make_plan("index", 10, SearchSettings(ef_search=50, overfetch=8), state(), BINARY_IX)
    assert low.fetch == 80 and dict(low.gucs)["hnsw.ef_search"] == "80"
    high = make_plan("index", 10, SearchSettings(ef_search=300), state(), BINARY_IX)
    assert dict(high.gucs)["hnsw.ef_search"] == "300"
    # by default at least 100 binary candidates, whatever k; as asked when asked
    few = make_plan("index", 4, SearchSettings(), state(), BINARY_IX)
    assert few.fetch == 100 and dict(few.gucs)["hnsw.ef_search"] == "100"
    assert make_plan("index", 4, SearchSettings(overfetch=10), state(), BINARY_IX).fetch == 40
    assert make_plan("index", 4, SearchSettings(), state(), HALFVEC_IX).fetch == 8
    capped = make_plan("index", 200, SearchSettings(), state(), BINARY_IX)
    assert capped.fetch == 2000 and dict(capped.gucs)["hnsw.ef_search"] == "1000"
    # the exact route is the exact route
    exact = make_plan("exact", 10, SearchSettings(), state(BINARY_IX), BINARY_IX)
    assert exact.quantization is None and exact.fetch == 10


def test_the_quantization_setting_is_checked() -> None:
    assert SearchSettings(quantization="off").quantization == "off"
    with pytest.raises(InvalidInputError, match="quantization must be one of halfvec, binary, off"):
        SearchSettings(quantization="int8")  # type: ignore[arg-type]
