"""Index DDL, names, checks, catalog facts and guidance, without a database."""

from __future__ import annotations

import uuid
import warnings
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex

from langchain_pgvec import HNSW, DistanceStrategy, InvalidInputError, IVFFlat, PGVecStore
from langchain_pgvec._bootstrap import State
from langchain_pgvec._catalog import IndexInfo
from langchain_pgvec._errors import FilterError, PerformanceWarning, SchemaError
from langchain_pgvec._filters import compile_filter
from langchain_pgvec._index_specs import (
    UNINDEXED_ROWS,
    Wanted,
    already_built,
    check_index_name,
    check_indexable,
    check_memory,
    check_spec,
    create_statement,
    drop_statement,
    metadata_index,
    metadata_index_name,
    progress_of,
    unindexed_advice,
    vector_index,
    vector_index_name,
)
from langchain_pgvec._progress import BuildBar as _Bar
from langchain_pgvec._schema import MAX_NAME_BYTES, TableSpec, fit_name, mapped_tables
from langchain_pgvec._sql import Explain

DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]
TABLES = mapped_tables(TableSpec(schema="s", embedding_table="emb", dimension=3))
CID = uuid.UUID("12345678-1234-5678-1234-567812345678")


def ddl(statement: Any) -> str:
    return str(statement.compile(dialect=DIALECT)).strip()


# ---------------------------------------------------------------------- DDL


@pytest.mark.parametrize(
    ("strategy", "vector_type", "opclass"),
    [
        (DistanceStrategy.COSINE, "vector", "vector_cosine_ops"),
        (DistanceStrategy.EUCLIDEAN, "vector", "vector_l2_ops"),
        (DistanceStrategy.INNER_PRODUCT, "vector", "vector_ip_ops"),
        (DistanceStrategy.COSINE, "halfvec", "halfvec_cosine_ops"),
        (DistanceStrategy.EUCLIDEAN, "halfvec", "halfvec_l2_ops"),
        (DistanceStrategy.INNER_PRODUCT, "halfvec", "halfvec_ip_ops"),
    ],
)
def test_vector_index_ddl_has_the_strategys_opclass(
    strategy: DistanceStrategy, vector_type: Any, opclass: str
) -> None:
    index = vector_index("ix", TABLES.embedding, HNSW(), strategy, vector_type)
    assert ddl(create_statement(index)) == (
        f"CREATE INDEX IF NOT EXISTS ix ON s.emb USING hnsw (embedding {opclass}) "
        "WITH (m = 16, ef_construction = 64)"
    )


def test_ivfflat_lists_default_from_rows_and_partial_predicate_is_a_literal() -> None:
    index = vector_index(
        "ix",
        TABLES.embedding,
        IVFFlat(),
        DistanceStrategy.EUCLIDEAN,
        "vector",
        row_count=5_000,
        collection_id=CID,
        concurrently=True,
    )
    assert ddl(create_statement(index)) == (
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix ON s.emb USING ivfflat "
        "(embedding vector_l2_ops) WITH (lists = 5) "
        f"WHERE collection_id = '{CID}'"
    )


def test_index_builders_never_attach_to_the_shared_table() -> None:
    before = set(TABLES.embedding.indexes)
    vector_index("ix", TABLES.embedding, HNSW(), DistanceStrategy.COSINE, "vector")
    metadata_index("mx", TABLES.embedding, "year", "number")
    assert set(TABLES.embedding.indexes) == before


def test_metadata_index_is_exactly_the_filter_expression() -> None:
    index = ddl(create_statement(metadata_index("mx", TABLES.embedding, "a.b", "text")))
    expression = index.split(" ON s.emb ")[1]
    assert expression.startswith("((CASE WHEN") and expression.endswith('COLLATE "C"))')
    where = compile_filter({"a.b": {"$gt": "x"}}, TABLES.embedding.c.metadata)
    query = str(
        select(TABLES.embedding.c.id)
        .where(where)
        .compile(dialect=DIALECT, compile_kwargs={"render_postcompile": True})
    )
    assert expression[1:-1].replace("emb.", "") in query.replace("s.emb.", "")
    with pytest.raises(FilterError, match="kind"):
        metadata_index("mx", TABLES.embedding, "a", "boolean")  # type: ignore[arg-type]


def test_drop_statement_is_schema_qualified_and_quoted() -> None:
    assert ddl(drop_statement("s", "emb", "My Index")) == 'DROP INDEX IF EXISTS s."My Index"'
    assert ddl(drop_statement(None, "emb", "ix", concurrently=True)) == (
        "DROP INDEX CONCURRENTLY IF EXISTS ix"
    )


def test_explain_wraps_the_statement_and_keeps_its_parameters() -> None:
    statement = select(TABLES.embedding.c.id).where(TABLES.embedding.c.content == "x")
    compiled = Explain(statement).compile(dialect=DIALECT)
    assert str(compiled).startswith("EXPLAIN SELECT s.emb.id")
    assert list(compiled.params.values()) == ["x"]
    analyzed = str(Explain(statement, analyze=True).compile(dialect=DIALECT))
    assert analyzed.startswith("EXPLAIN (ANALYZE, BUFFERS) SELECT")
    as_json = str(Explain(statement, json=True).compile(dialect=DIALECT))
    assert as_json.startswith("EXPLAIN (FORMAT JSON) SELECT")


# ---------------------------------------------------------------------- names and checks


def test_default_names_are_deterministic_and_fit() -> None:
    assert vector_index_name("emb", HNSW(), DistanceStrategy.COSINE) == "emb_hnsw_cosine"
    assert vector_index_name("emb", IVFFlat(), DistanceStrategy.INNER_PRODUCT) == "emb_ivfflat_ip"
    assert vector_index_name("emb", HNSW(), DistanceStrategy.EUCLIDEAN, CID) == (
        "emb_hnsw_l2_123456781234"
    )
    long = "t" * 48
    names = {
        vector_index_name(long, IVFFlat(), strategy, cid)
        for strategy in DistanceStrategy
        for cid in (None, CID, uuid.UUID(int=1))
    }
    assert len(names) == 9 and all(len(n.encode()) <= MAX_NAME_BYTES for n in names)
    assert metadata_index_name("emb", "year", "number") == "emb_meta_year_number"
    dotted, underscored = (metadata_index_name("emb", f, "text") for f in ("a.b", "a_b"))
    assert dotted != underscored and dotted.startswith("emb_meta_a_b_text_")
    unicode = fit_name("ü" * 40)
    assert len(unicode.encode()) <= MAX_NAME_BYTES and unicode == fit_name("ü" * 40)


def test_checks_reject_bad_arguments_with_the_fix() -> None:
    assert check_spec(HNSW()) == HNSW()
    with pytest.raises(InvalidInputError, match=r"create_index\(IVFFlat\(\)\)"):
        check_spec(IVFFlat)
    with pytest.raises(InvalidInputError, match="HNSW"):
        check_spec({"m": 16})
    assert check_memory(None) is None and check_memory(" 1GB ") == "1GB"
    assert check_memory("65536") == "65536"
    for bad in ("1 gigabyte", "", "1.5GB", 10):
        with pytest.raises(InvalidInputError, match="maintenance_work_mem"):
            check_memory(bad)
    assert check_index_name("ok") == "ok"
    for bad_name in ("", "x" * 64, "a\x00b", 3):
        with pytest.raises(InvalidInputError, match="63 bytes"):
            check_index_name(bad_name)


def test_dimension_limits_per_vector_type() -> None:
    check_indexable("t", "vector", 2000, "hnsw")
    check_indexable("t", "halfvec", 4000, "hnsw")
    with pytest.raises(SchemaError, match=r"2,001 dimensions.*vector_type='halfvec'"):
        check_indexable("t", "vector", 2001, "hnsw")
    with pytest.raises(SchemaError, match=r"at most 4,000.*reduce the dimensions"):
        check_indexable("t", "halfvec", 4001, "ivfflat")
    with pytest.raises(SchemaError, match="fixed dimension"):
        check_indexable("t", "vector", None, "hnsw")


# ---------------------------------------------------------------------- catalog facts


def info(**overrides: Any) -> IndexInfo:
    fields: dict[str, Any] = {
        "name": "ix",
        "method": "hnsw",
        "columns": ("embedding",),
        "opclass": "vector_cosine_ops",
        "size_bytes": 8192,
        "definition": "CREATE INDEX ix ...",
        "partial": False,
        "options": ("m=16", "ef_construction=64"),
    }
    fields.update(overrides)
    if fields.get("predicate"):
        fields["partial"] = True
    return IndexInfo(**fields)


def test_index_info_parses_collection_and_parameters() -> None:
    partial = info(predicate=f"(collection_id = '{CID}'::uuid)")
    assert partial.partial and partial.collection_id == CID
    assert info(predicate="(metadata IS NOT NULL)").collection_id is None
    assert info().parameters == {"m": "16", "ef_construction": "64"}
    assert info().is_vector and not info(method="gin").is_vector


def test_already_built_compares_shape() -> None:
    wanted = Wanted("hnsw", "vector_cosine_ops", {"m": 16, "ef_construction": 64})
    assert already_built(None, wanted, "t") is False
    assert already_built(info(), wanted, "t") is True
    assert already_built(info(method="ivfflat", options=("lists=7",)), Wanted("ivfflat"), "t")
    for different in (
        info(options=("m=8", "ef_construction=64")),
        info(opclass="vector_l2_ops"),
        info(method="ivfflat"),
        info(predicate=f"(collection_id = '{CID}'::uuid)"),
    ):
        with pytest.raises(SchemaError, match=r"another definition.*drop_index\('ix'\)"):
            already_built(different, wanted, "t")
    with pytest.raises(SchemaError, match="invalid"):
        already_built(info(valid=False), wanted, "t")


# ---------------------------------------------------------------------- guidance

BIG = UNINDEXED_ROWS + 1


def advice(indexes: list[IndexInfo], rows: int = BIG, **kwargs: Any) -> str | None:
    settings: dict[str, Any] = {
        "table": "emb",
        "approx_rows": rows,
        "indexes": indexes,
        "strategy": DistanceStrategy.COSINE,
        "vector_type": "vector",
        "collection_id": CID,
    }
    settings.update(kwargs)
    return unindexed_advice(**settings)


def test_advice_only_for_large_tables_without_a_serving_index() -> None:
    assert advice([], rows=UNINDEXED_ROWS) is None
    assert advice([info()]) is None
    assert advice([info(predicate=f"(collection_id = '{CID}'::uuid)")]) is None
    message = advice([])
    assert message is not None
    assert "about 50,001 rows" in message and "vector_cosine_ops" in message
    assert "store.create_index(HNSW())" in message
    # an index of another collection, an invalid one, or a GIN index does not serve
    other = info(predicate=f"(collection_id = '{uuid.UUID(int=1)}'::uuid)")
    for useless in (other, info(valid=False), info(method="gin", opclass="jsonb_path_ops")):
        assert advice([useless]) is not None


def test_advice_names_the_mismatched_opclass() -> None:
    message = advice([info(name="old", opclass="vector_l2_ops")])
    assert message is not None
    assert "'old' has vector_l2_ops, which serves only euclidean distance (<->)" in message
    assert "vector_cosine_ops" in message
    halfvec = advice([info()], vector_type="halfvec")
    assert halfvec is not None and "halfvec_cosine_ops" in halfvec
    assert "vector_cosine_ops, which serves only cosine distance (<=>) on vector" in halfvec


def test_warning_fires_once_per_store_and_points_at_the_caller() -> None:
    def state(rows: int) -> State:
        return State(TABLES, CID, "0.8.0", approx_rows=rows, indexes=())

    store = PGVecStore(  # no connection is made until the store needs one
        embeddings=None,  # type: ignore[arg-type]
        connection="postgresql://nobody@localhost/none",
        embedding_table="emb",
        schema="s",
    )
    store._warn_if_unindexed(state(10))
    with pytest.warns(PerformanceWarning) as record:
        store._warn_if_unindexed(state(BIG))
    assert record[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        store._warn_if_unindexed(state(BIG))  # once per store


def test_progress_prefers_partitions_then_blocks_then_tuples(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def row(
        bt: int | None, bd: int | None, tt: int | None, td: int | None, pt: int = 0, pd: int = 0
    ) -> Any:
        return SimpleNamespace(
            phase="building index: loading tuples",
            blocks_total=bt,
            blocks_done=bd,
            tuples_total=tt,
            tuples_done=td,
            partitions_total=pt,
            partitions_done=pd,
        )

    # the index of a partitioned table: one build per partition, counted in partitions
    assert progress_of(row(10, 4, 100, 7, pt=1000, pd=12))[1:] == (12, 1000, "partition")

    assert progress_of(row(10, 4, 100, 7)) == ("building index: loading tuples", 4, 10, "block")
    assert progress_of(row(0, 0, 100, 7))[1:] == (7, 100, "tuple")
    assert progress_of(row(None, None, None, None))[1:] == (0, None, "block")
    bar = _Bar("ix")
    for r in (row(None, None, None, None), row(10, 4, 0, 0), row(10, 2, 0, 0), row(0, 0, 50, 9)):
        bar.show(r)
    bar.close(True)
    err = capsys.readouterr().err
    assert "CREATE INDEX ix" in err and "done" in err


def test_every_index_name_of_the_tables_fits_postgres() -> None:
    """The longest table name a spec takes, with full text on: the GIN indexes' names
    (the table's name plus a suffix) are cut to 63 bytes, kept distinct by a hash."""
    longest = "t" * 48
    tables = mapped_tables(
        TableSpec(embedding_table=longest, dimension=3, text_search_config="english")
    )
    names = [index.name for index in tables.embedding.indexes]
    assert len(names) == 2 and len(set(names)) == 2
    for index in tables.embedding.indexes:
        assert index.name is not None and len(index.name.encode()) <= MAX_NAME_BYTES
        ddl = str(CreateIndex(index).compile(dialect=DIALECT))
        assert ddl.startswith(f"CREATE INDEX {index.name} ON {longest}")
