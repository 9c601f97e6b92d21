"""Vector and metadata indexes, EXPLAIN and the missing-index warning, on a real PostgreSQL.

Every test makes its own tables (``ix_e<dim>_<hex>``), so indexes built here never
change another test's plans, and drops them afterwards.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import numpy as np
import pytest
import support.twins
from langchain_core.embeddings import DeterministicFakeEmbedding
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.ext.asyncio import create_async_engine
from support.modes import autovacuum_off, concurrent_builds_only, partial_indexes_only
from support.own_tables import analyze, drop_tables, own_tables, vector_indexes
from support.twins import Runner

from langchain_pgvec import (
    HNSW,
    DatabaseError,
    DistanceStrategy,
    FilterError,
    InvalidInputError,
    IVFFlat,
    PerformanceWarning,
    PGVecStore,
    SchemaError,
    SearchSettings,
)

DIM = 8
SMALL_HNSW = HNSW(m=8, ef_construction=32)  # builds fast; plenty for a few thousand rows


@pytest.fixture
def make_store(engine: Engine, collection_name: str) -> Iterator[Any]:
    """Stores on tables of their own: ``make_store(dim, tables=None, **kwargs)``."""
    with own_tables(engine, collection_name, "ix", DIM) as make:
        yield make


def unit_rows(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    normed: np.ndarray = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return normed


async def load(
    run: Runner, store: PGVecStore, n: int, *, seed: int = 0, metadatas: Any = None
) -> np.ndarray:
    vectors = unit_rows(n, seed=seed)
    ids = [f"{seed}-{i}" for i in range(n)]
    await run(store, "add_embeddings", [f"doc {i}" for i in range(n)], vectors, metadatas, ids)
    return vectors


# ---------------------------------------------------------------------- create, list, drop

SUFFIX = {
    DistanceStrategy.COSINE: ("cosine", "cosine_ops"),
    DistanceStrategy.EUCLIDEAN: ("l2", "l2_ops"),
    DistanceStrategy.INNER_PRODUCT: ("ip", "ip_ops"),
}


@pytest.mark.parametrize("strategy", list(DistanceStrategy))
@pytest.mark.parametrize("spec", [HNSW(m=8, ef_construction=32), IVFFlat(lists=2)], ids=repr)
async def test_create_list_drop_with_the_strategys_opclass(
    make_store: Any, run: Runner, strategy: DistanceStrategy, spec: Any
) -> None:
    store = make_store(distance_strategy=strategy)
    vectors = await load(run, store, 200)
    tag, opclass = SUFFIX[strategy]
    table = store._spec.embedding_table

    name = await run(store, "create_index", spec)
    assert name == f"{table}_{spec.method}_{tag}"
    (index,) = vector_indexes(await run(store, "list_indexes"))
    assert (index.name, index.method, index.opclass) == (name, spec.method, f"vector_{opclass}")
    assert index.columns == ("embedding",) and index.valid and not index.partial
    assert index.parameters == {k: str(v) for k, v in spec.with_options(0).items()}
    assert index.size_bytes > 0 and f"USING {spec.method}" in index.definition

    # the same index again is no error and no second index
    assert await run(store, "create_index", spec) == name
    assert len(vector_indexes(await run(store, "list_indexes"))) == 1
    # searches still return exact neighbours' ids through the index
    hits = await run(store, "similarity_search_by_vector", vectors[3].tolist(), k=1)
    assert hits[0].id == "0-3"

    await run(store, "drop_index", name)
    assert vector_indexes(await run(store, "list_indexes")) == []
    await run(store, "drop_index", name)  # a name that does not exist is ignored


async def test_list_indexes_covers_every_kind(make_store: Any, run: Runner) -> None:
    store = make_store()
    assert await run(store, "list_indexes") == []  # no table yet
    await load(run, store, 20, metadatas=[{"year": i} for i in range(20)])
    await run(store, "create_index", HNSW())
    await run(store, "create_metadata_index", "year", "number")
    by_method = {i.method: i for i in await run(store, "list_indexes")}
    table = store._spec.embedding_table
    assert set(by_method) == {"btree", "gin", "hnsw"}
    indexes = {i.name: i for i in await run(store, "list_indexes")}
    pkey = indexes[f"{table}_pkey"]
    assert pkey.primary and pkey.unique and pkey.columns == ("collection_id", "id")
    gin = indexes[f"{table}_metadata_gin"]
    assert (gin.method, gin.opclass) == ("gin", "jsonb_path_ops")
    meta = indexes[f"{table}_meta_year_number"]
    assert meta.expression and meta.method == "btree" and "jsonb_typeof" in meta.columns[0]


@partial_indexes_only
async def test_ivfflat_lists_follow_the_row_count(make_store: Any, run: Runner) -> None:
    store = make_store()
    await load(run, store, 2100)
    other = make_store(tables=store._spec.embedding_table.split("_")[-1], collection_name="o")
    await load(run, other, 1100, seed=1)
    name = await run(store, "create_index", IVFFlat())
    partial = await run(other, "create_index", IVFFlat(), per_collection=True)
    indexes = {i.name: i for i in await run(store, "list_indexes")}
    assert indexes[name].parameters == {"lists": "3"}  # 3,200 rows in the table
    assert indexes[partial].parameters == {"lists": "1"}  # 1,100 in the collection
    await run(other, "delete_collection")


# ---------------------------------------------------------------------- EXPLAIN


async def test_explain_seq_scan_then_hnsw_with_progress(
    make_store: Any, run: Runner, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    store = make_store()
    vectors = await load(run, store, 2000)
    analyze(engine, store)
    before = await run(store, "explain", vectors[0].tolist())
    assert "Seq Scan" in before and "Index Scan" not in before

    name = await run(store, "create_index", SMALL_HNSW, show_progress=True)
    err = capsys.readouterr().err
    assert f"CREATE INDEX {name}" in err and "done" in err
    analyze(engine, store)
    assert f"Index Scan using {name}" in await run(store, "explain", vectors[0].tolist())
    assert f"Index Scan using {name}" in await run(store, "explain", "a text query", k=2)

    analyzed = await run(store, "explain", vectors[0].tolist(), analyze=True)
    assert "actual time" in analyzed and "Buffers" in analyzed
    mmr = await run(store, "explain", vectors[0].tolist(), mmr=True, fetch_k=37, analyze=True)
    assert "rows=37" in mmr


async def test_filtered_hnsw_search_returns_k_in_exact_distance_order(
    make_store: Any,
    run: Runner,
    engine: Engine,
    needs_pgvector: Any,
) -> None:
    needs_pgvector(0, 8)
    store = make_store()
    metadatas = [{"g": i % 50} for i in range(2500)]
    vectors = await load(run, store, 2500, metadatas=metadatas)
    name = await run(store, "create_index", SMALL_HNSW)
    analyze(engine, store)
    query = unit_rows(1, seed=9)[0]
    rare = {"g": {"$lt": 1}}  # 2% of the rows; no index serves the filter itself
    index = {"exact_below": 0}  # the vector index whatever the filter's selectivity

    plan = await run(store, "explain", query.tolist(), 10, rare, analyze=True, **index)
    assert f"Index Scan using {name}" in plan
    # the iterative scan went on until 10 rows passed the filter
    assert re.search(r"actual time=\S+ rows=10\b", plan.splitlines()[0]), plan

    pairs = await run(
        store, "similarity_search_with_score_by_vector", query.tolist(), 10, rare, **index
    )
    assert len(pairs) == 10
    assert all(doc.metadata["g"] == 0 for doc, _ in pairs)
    scores = [score for _, score in pairs]
    rows = [int(doc.id.split("-")[1]) for doc, _ in pairs]
    exact = 1.0 - vectors[rows] @ query
    np.testing.assert_allclose(scores, exact, atol=1e-5)
    # and equality filters (GIN) too
    docs = await run(store, "similarity_search_by_vector", query.tolist(), 10, {"g": 7}, **index)
    assert len(docs) == 10 and {d.metadata["g"] for d in docs} == {7}


async def test_selective_filters_are_answered_exactly_without_the_index(
    make_store: Any, run: Runner, engine: Engine
) -> None:
    store = make_store()
    metadatas = [{"g": i % 50, "half": i % 2} for i in range(2500)]
    vectors = await load(run, store, 2500, metadatas=metadatas)
    name = await run(store, "create_index", SMALL_HNSW)
    analyze(engine, store)
    queries = unit_rows(20, seed=11)
    rare = {"g": 3}  # 50 rows: the planner knows they are few

    plan = await run(store, "explain", queries[0].tolist(), 10, rare)
    assert name not in plan and "Sort" in plan  # the filter's rows, ranked exactly
    for query in queries:  # every answer is the exact one
        found = await run(store, "similarity_search_by_vector", query.tolist(), 10, rare)
        rows = [i for i in range(2500) if i % 50 == 3]
        best = sorted(rows, key=lambda i: float(1.0 - vectors[i] @ query))[:10]
        assert [d.id for d in found] == [f"0-{i}" for i in best]
        picked = await run(
            store, "max_marginal_relevance_search_by_vector", query.tolist(), 3, 20, 0.5, rare
        )
        assert len(picked) == 3 and {d.metadata["g"] for d in picked} == {3}

    # the threshold is a setting, per call or per store: half the rows (1,250) are
    # more than 100, so the index serves them
    half = {"half": 1}
    assert name not in await run(store, "explain", queries[0].tolist(), 10, half)
    assert name in await run(store, "explain", queries[0].tolist(), 10, half, exact_below=100)
    # near the threshold the rows are counted, not estimated: 1,250 match exactly
    q = queries[0].tolist()
    assert name in await run(store, "explain", q, 10, half, exact_below=1249)
    assert name not in await run(store, "explain", q, 10, half, exact_below=1250)
    suffix = store._spec.embedding_table.split("_")[-1]
    strict = make_store(tables=suffix, search_settings=SearchSettings(exact_below=100))
    assert name in await run(strict, "explain", queries[0].tolist(), 10, half)
    # a count stopped at its cap (1,001: "more than 1,000") does not decide for a
    # higher threshold: that call counts again
    counted = make_store(tables=suffix)
    assert name in await run(counted, "explain", q, 10, half, exact_below=1000)
    assert name not in await run(counted, "explain", q, 10, half)


async def test_search_settings_reassigned_apply_to_the_next_search(
    make_store: Any, run: Runner, engine: Engine
) -> None:
    store = make_store()
    vectors = await load(run, store, 300)
    await run(store, "create_index", SMALL_HNSW)
    query = vectors[0].tolist()
    first_line = re.compile(r"actual time=\S+ rows=(\d+)")

    def scanned(plan: str) -> int:
        found = first_line.search(plan.splitlines()[0])
        assert found, plan
        return int(found.group(1))

    assert scanned(await run(store, "explain", query, 10, analyze=True)) == 10
    store.search_settings = SearchSettings(ef_search=1)  # the index yields one candidate
    assert scanned(await run(store, "explain", query, 10, analyze=True)) == 1
    # the search itself never comes back short: the one row is completed exactly
    found = await run(store, "similarity_search_by_vector", query, 10)
    exact = np.argsort(1.0 - vectors @ vectors[0])[:10]
    assert [d.id for d in found] == [f"0-{i}" for i in exact]
    store.search_settings = SearchSettings()
    assert scanned(await run(store, "explain", query, 10, analyze=True)) == 10


async def test_filtered_search_sorts_again_by_exact_distance(
    make_store: Any,
    run: Runner,
    engine: Engine,
    needs_pgvector: Any,
) -> None:
    needs_pgvector(0, 8)
    store = make_store()
    await load(run, store, 300, metadatas=[{"g": i % 50} for i in range(300)])
    name = await run(store, "create_index", SMALL_HNSW)
    analyze(engine, store)
    plan = await run(
        store,
        "explain",
        [1.0] * DIM,
        10,
        {"g": {"$lt": 1}},
        ef_search=10,
        overfetch=1,
        exact_below=0,
    )
    lines = plan.splitlines()
    scan = next(i for i, line in enumerate(lines) if f"Index Scan using {name}" in line)
    # relaxed_order returns the index's rows nearly in order; a Sort must follow the scan
    assert any("Sort" in line for line in lines[:scan]), plan
    pairs = await run(
        store,
        "similarity_search_with_score_by_vector",
        [1.0] * DIM,
        10,
        {"g": {"$lt": 1}},
        exact_below=0,
    )
    scores = [score for _, score in pairs]
    assert scores == sorted(scores)


def test_filtered_searches_are_planned_with_their_filter_values(
    make_store: Any, pg_url: str
) -> None:
    """A search with a filter is never a prepared statement (whose generic plan cannot
    see the filter's selectivity); the unfiltered top-k, with only the vector bound,
    is prepared once psycopg has seen it a few times."""
    one = create_engine(pg_url, pool_size=1, max_overflow=0)
    try:
        store = make_store(connection=one)
        vectors = unit_rows(60)
        tags = [{"tag": "a" if i % 3 else "b"} for i in range(60)]
        store.add_embeddings([f"d{i}" for i in range(60)], vectors, tags)
        for i in range(8):
            assert len(store.similarity_search_by_vector(vectors[i].tolist(), k=5)) == 5
            found = store.similarity_search_by_vector(vectors[i].tolist(), k=5, filter={"tag": "b"})
            assert [d.metadata for d in found] == [{"tag": "b"}] * 5
        with one.connect() as conn:  # the pool's only connection: the one searches used
            prepared = conn.exec_driver_sql("SELECT statement FROM pg_prepared_statements")
            statements = list(prepared.scalars())
        assert [s for s in statements if "cosine_distance(" in s and "@>" not in s]
        assert not [s for s in statements if "@>" in s]
    finally:
        one.dispose()


@partial_indexes_only
async def test_per_collection_partial_index_serves_only_its_collection(
    make_store: Any, run: Runner, engine: Engine
) -> None:
    first = make_store(collection_name=f"a_{uuid.uuid4().hex[:6]}")
    suffix = first._spec.embedding_table.split("_")[-1]
    second = make_store(tables=suffix, collection_name=f"b_{uuid.uuid4().hex[:6]}")
    vectors = await load(run, first, 2000)
    await load(run, second, 2000, seed=1)

    name = await run(first, "create_index", SMALL_HNSW, per_collection=True)
    state = first._ensure()
    assert state is not None and state.collection_id is not None
    assert name.endswith(state.collection_id.hex[:12])
    (index,) = vector_indexes(await run(first, "list_indexes"))
    assert index.partial and index.collection_id == state.collection_id
    assert str(state.collection_id) in (index.predicate or "")

    analyze(engine, first)
    second._state = None
    assert f"Index Scan using {name}" in await run(first, "explain", vectors[0].tolist())
    assert name not in await run(second, "explain", vectors[0].tolist())
    other = await run(second, "create_index", SMALL_HNSW, per_collection=True)
    assert other != name and len(vector_indexes(await run(first, "list_indexes"))) == 2
    # a deleted collection takes its partial index with it; the other's stays
    await run(first, "delete_collection")
    assert [i.name for i in vector_indexes(await run(second, "list_indexes"))] == [other]
    assert len(await run(second, "similarity_search_by_vector", vectors[0].tolist(), k=3)) == 3


async def test_metadata_indexes_serve_range_filters(
    make_store: Any, run: Runner, engine: Engine
) -> None:
    store = make_store()
    metadatas = [{"year": i, "name": f"n{i:05d}", "a": {"b": i}} for i in range(2000)]
    vectors = await load(run, store, 2000, metadatas=metadatas)
    table = store._spec.embedding_table
    number = await run(store, "create_metadata_index", "year", "number")
    words = await run(store, "create_metadata_index", "name", "text")
    nested = await run(store, "create_metadata_index", "a.b", "number")
    assert (number, words) == (f"{table}_meta_year_number", f"{table}_meta_name_text")
    assert nested.startswith(f"{table}_meta_a_b_number_")
    assert await run(store, "create_metadata_index", "year", "number") == number
    analyze(engine, store)

    query = vectors[0].tolist()
    cases = [
        ({"year": {"$gte": 1990}}, number),
        ({"year": {"$between": [10, 20]}}, number),
        ({"name": {"$gt": "n01990"}}, words),
        ({"a.b": {"$lt": 5}}, nested),
    ]
    for filter, index in cases:
        plan = await run(store, "explain", query, 4, filter)
        assert index in plan, (filter, plan)
    docs = await run(store, "similarity_search_by_vector", query, 4, {"year": {"$gte": 1990}})
    assert len(docs) == 4 and all(d.metadata["year"] >= 1990 for d in docs)

    with pytest.raises(FilterError, match="kind"):
        await run(store, "create_metadata_index", "year", "boolean")


async def test_halfvec_store_with_hnsw(
    make_store: Any, run: Runner, engine: Engine, needs_pgvector: Any
) -> None:
    needs_pgvector(0, 7)
    store = make_store(vector_type="halfvec")
    vectors = await load(run, store, 2000)
    name = await run(store, "create_index", SMALL_HNSW)
    (index,) = vector_indexes(await run(store, "list_indexes"))
    assert index.opclass == "halfvec_cosine_ops"
    analyze(engine, store)
    assert f"Index Scan using {name}" in await run(store, "explain", vectors[5].tolist())
    (doc,) = await run(store, "similarity_search_by_vector", vectors[5].tolist(), k=1)
    assert doc.id == "0-5"


# ---------------------------------------------------------------------- limits and errors


async def test_dimension_limits(make_store: Any, run: Runner, needs_pgvector: Any) -> None:
    needs_pgvector(0, 7)
    wide = make_store(2001, embedding_length=2001)
    await run(wide, "create_tables")
    with pytest.raises(SchemaError, match=r"vector_type='halfvec'.*reduce the dimensions"):
        await run(wide, "create_index", HNSW())
    with pytest.raises(SchemaError, match="2,001 dimensions"):
        await run(wide, "create_index", IVFFlat(lists=1))

    half = make_store(2001, embedding_length=2001, vector_type="halfvec")
    await run(half, "create_tables")
    assert await run(half, "create_index", HNSW())

    wider = make_store(4001, embedding_length=4001, vector_type="halfvec")
    await run(wider, "create_tables")
    with pytest.raises(SchemaError, match="at most 4,000"):
        await run(wider, "create_index", HNSW())


@partial_indexes_only
async def test_errors_say_what_to_do(make_store: Any, run: Runner, engine: Engine) -> None:
    store = make_store()
    with pytest.raises(SchemaError, match="does not exist yet"):
        await run(store, "create_index", HNSW())
    with pytest.raises(SchemaError, match="does not exist yet"):
        await run(store, "explain", [0.0] * DIM)
    with pytest.raises(InvalidInputError, match=r"HNSW\(\)"):
        await run(store, "create_index", HNSW)
    with pytest.raises(InvalidInputError, match="HNSW"):
        await run(store, "create_index", "hnsw")
    with pytest.raises(InvalidInputError, match="maintenance_work_mem"):
        await run(store, "create_index", HNSW(), maintenance_work_mem="lots")
    with pytest.raises(InvalidInputError, match="63 bytes"):
        await run(store, "create_index", HNSW(), name="x" * 64)

    await load(run, store, 50)
    with pytest.raises(InvalidInputError, match="k must be"):
        await run(store, "explain", [0.0] * DIM, k=0)
    for bad in (-1, True, 2.5):
        with pytest.raises(
            InvalidInputError, match=r"exact_below \(0: never\) must be an integer from 0"
        ):
            await run(store, "similarity_search_by_vector", [0.0] * DIM, 2, exact_below=bad)
    await run(store, "create_index", HNSW(m=16), name="custom")
    with pytest.raises(SchemaError, match=r"another definition.*drop_index\('custom'\)"):
        await run(store, "create_index", HNSW(m=8, ef_construction=64), name="custom")
    with pytest.raises(SchemaError, match="another definition"):
        await run(store, "create_index", IVFFlat(), name="custom")
    taken = store._spec.collection_table
    with pytest.raises(SchemaError, match="another relation"):
        await run(store, "create_index", HNSW(), name=taken)
    with pytest.raises(SchemaError, match="primary key"):
        await run(store, "drop_index", f"{store._spec.embedding_table}_pkey")
    with pytest.raises(SchemaError, match="another relation"):
        await run(store, "drop_index", taken)

    stranger = make_store(collection_name="other")
    await load(run, stranger, 5)
    foreign = await run(stranger, "create_index", HNSW())
    with pytest.raises(SchemaError, match="an index on table"):
        await run(store, "drop_index", foreign)

    missing = make_store(tables=store._spec.embedding_table.split("_")[-1], collection_name="n")
    with pytest.raises(SchemaError, match="add its documents"):
        await run(missing, "create_index", HNSW(), per_collection=True)
    with pytest.raises(SchemaError, match="add documents before explain"):
        await run(missing, "explain", [0.0] * DIM)


async def test_invalid_leftover_is_reported_and_droppable(
    make_store: Any, run: Runner, engine: Engine
) -> None:
    store = make_store()
    await load(run, store, 50)
    name = await run(store, "create_index", HNSW())
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE pg_index SET indisvalid = false WHERE indexrelid = CAST(:n AS regclass)"
                ),
                {"n": name},
            )
    except Exception:  # pragma: no cover - a server where we are not superuser
        pytest.skip("needs a superuser to mark an index invalid")
    (index,) = vector_indexes(await run(store, "list_indexes"))
    assert not index.valid
    with pytest.raises(SchemaError, match=r"invalid.*drop_index"):
        await run(store, "create_index", HNSW())
    await run(store, "drop_index", name)
    assert await run(store, "create_index", HNSW()) == name


@concurrent_builds_only
async def test_failed_concurrent_build_leaves_no_invalid_index(
    make_store: Any, run: Runner, engine: Engine
) -> None:
    store = make_store()
    await load(run, store, 50)
    table = store._spec.embedding_table
    quoted = engine.dialect.identifier_preparer.quote(table)
    # an open write keeps CREATE INDEX CONCURRENTLY waiting, until it is cancelled
    blocker = engine.connect()
    blocker.execute(text("UPDATE " + quoted + " SET content = content WHERE id = '0-1'"))

    def cancel_the_build_then_commit() -> None:
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            pid = None
            for _ in range(200):
                pid = conn.execute(
                    text(
                        "SELECT pid FROM pg_stat_progress_create_index "
                        "WHERE relid = CAST(:t AS regclass)"
                    ),
                    {"t": table},
                ).scalar()
                if pid is not None:
                    break
                time.sleep(0.02)
            conn.execute(text("SELECT pg_cancel_backend(:pid)"), {"pid": pid})
        time.sleep(0.2)  # the failed build's cleanup now waits for this transaction
        blocker.commit()
        blocker.close()

    helper = threading.Thread(target=cancel_the_build_then_commit)
    helper.start()
    try:
        with pytest.raises(DatabaseError, match="cancel"):
            await run(store, "create_index", HNSW(), concurrently=True)
    finally:
        helper.join()
    assert vector_indexes(await run(store, "list_indexes")) == []  # no invalid leftover
    assert await run(store, "create_index", HNSW(), concurrently=True)


@concurrent_builds_only
async def test_concurrently_and_maintenance_work_mem_do_not_leak(
    make_store: Any, run: Runner, pg_url: str
) -> None:
    # one pooled connection, so a leaked session setting would show on the next checkout
    if run.mode == "sync":
        own: Any = create_engine(pg_url, pool_size=1, max_overflow=0)
    else:
        own = create_async_engine(pg_url, pool_size=1, max_overflow=0)

    async def setting() -> str:
        if run.mode == "sync":
            with own.connect() as conn:
                return str(conn.execute(text("SHOW maintenance_work_mem")).scalar_one())
        async with own.connect() as conn:
            return str((await conn.execute(text("SHOW maintenance_work_mem"))).scalar_one())

    try:
        store = make_store(connection=own)
        await load(run, store, 300, metadatas=[{"year": i} for i in range(300)])
        default = await setting()
        assert default != "77MB"
        name = await run(
            store, "create_index", HNSW(), concurrently=True, maintenance_work_mem="77MB"
        )
        assert await setting() == default
        ivf = await run(store, "create_index", IVFFlat(), maintenance_work_mem="77MB")
        assert await setting() == default
        meta = await run(store, "create_metadata_index", "year", "number", concurrently=True)
        assert {name, ivf, meta} <= {i.name for i in await run(store, "list_indexes")}
        assert all(i.valid for i in await run(store, "list_indexes"))
        await run(store, "drop_index", name, concurrently=True)
        await run(store, "drop_index", meta, concurrently=True)
        assert {i.name for i in await run(store, "list_indexes")}.isdisjoint({name, meta})
    finally:
        if run.mode == "sync":
            own.dispose()
        else:
            await own.dispose()


# ---------------------------------------------------------------------- the missing-index warning

BIG = 51_000


@pytest.fixture(scope="module")
async def big_table(engine: Engine) -> AsyncIterator[dict[str, Any]]:
    """~51k tiny 2-dimensional vectors, analyzed: reltuples is past the warning threshold."""
    suffix = uuid.uuid4().hex[:8]
    config: dict[str, Any] = {
        "connection": engine,
        "collection_name": "big",
        "embedding_table": f"ix_e2_{suffix}",
        "collection_table": f"ix_c2_{suffix}",
    }
    loader = PGVecStore(DeterministicFakeEmbedding(size=2), embedding_length=2, **config)
    loader.create_tables()
    with engine.begin() as conn:  # our ANALYZE alone sets reltuples; DROP never waits
        autovacuum_off(conn, config["embedding_table"])
    vectors = np.random.default_rng(3).standard_normal((BIG, 2)).astype(np.float32)
    loader.add_embeddings([""] * BIG, vectors)
    analyze(engine, loader)
    yield config
    drop_tables(engine, [(config["embedding_table"], config["collection_table"])])


def fresh(config: dict[str, Any], **kwargs: Any) -> PGVecStore:
    return PGVecStore(DeterministicFakeEmbedding(size=2), **{**config, **kwargs})


async def test_unindexed_large_table_warns_once_per_store(
    big_table: dict[str, Any], run: Runner
) -> None:
    store = fresh(big_table)
    with pytest.warns(PerformanceWarning) as record:
        await run(store, "similarity_search_by_vector", [1.0, 0.0], k=1)
    (warning,) = record
    message = str(warning.message)
    assert "about 51," in message and big_table["embedding_table"] in message
    assert "vector_cosine_ops" in message and "store.create_index(HNSW())" in message
    # points at the caller (the runner that called the store), not into the package
    assert warning.filename == support.twins.__file__
    # once per store: a second search is silent (filterwarnings=error would raise)
    await run(store, "similarity_search_by_vector", [1.0, 0.0], k=1)
    with pytest.warns(PerformanceWarning):  # another store warns for itself
        await run(fresh(big_table), "similarity_search_by_vector", [1.0, 0.0], k=1)


async def test_table_that_grows_past_the_threshold_warns(
    make_store: Any, run: Runner, engine: Engine
) -> None:
    """The estimate read when the store first met the table (empty) counts the rows the
    store writes afterwards, without another catalog read."""
    store = make_store(2)
    await run(store, "similarity_search_by_vector", [1.0, 0.0], k=1)  # no table yet: silent
    await run(store, "add_embeddings", ["a"], [[1.0, 0.0]])
    await run(store, "similarity_search_by_vector", [1.0, 0.0], k=1)  # one row: silent
    vectors = np.random.default_rng(4).standard_normal((BIG, 2)).astype(np.float32)
    await run(store, "add_embeddings", [""] * BIG, vectors)
    with pytest.warns(PerformanceWarning, match=f"about {BIG + 1:,} rows"):
        await run(store, "similarity_search_by_vector", [1.0, 0.0], k=1)


async def test_warning_names_the_mismatched_opclass(big_table: dict[str, Any], run: Runner) -> None:
    l2 = fresh(big_table, distance_strategy=DistanceStrategy.EUCLIDEAN)
    name = await run(l2, "create_index", IVFFlat(lists=10))
    try:
        with pytest.warns(PerformanceWarning, match="vector_l2_ops") as record:
            await run(fresh(big_table), "similarity_search_by_vector", [1.0, 0.0], k=1)
        message = str(record[0].message)
        assert "euclidean distance (<->)" in message and "vector_cosine_ops" in message
        # the store whose distance the index serves is silent
        await run(fresh(big_table, distance_strategy="euclidean"), "similarity_search", "q", k=1)
    finally:
        await run(l2, "drop_index", name)


@partial_indexes_only
async def test_indexed_large_table_is_silent(big_table: dict[str, Any], run: Runner) -> None:
    store = fresh(big_table)
    name = await run(store, "create_index", IVFFlat(lists=10), per_collection=True)
    try:
        await run(fresh(big_table), "similarity_search_by_vector", [1.0, 0.0], k=1)
        # a partial index of another collection does not count
        other = fresh(big_table, collection_name="other")
        await run(other, "add_embeddings", ["x"], [[1.0, 0.0]])
        with pytest.warns(PerformanceWarning):
            await run(other, "similarity_search_by_vector", [1.0, 0.0], k=1)
        await run(other, "delete_collection")
    finally:
        await run(store, "drop_index", name)


def test_a_build_outlives_the_sessions_statement_timeout(make_store: Any, pg_url: str) -> None:
    """A role's or the engine's statement_timeout bounds searches, not create_index."""
    loader = make_store(tables="timeout")
    rows = 20_000
    vectors = np.random.default_rng(3).standard_normal((rows, DIM)).astype(np.float32)
    loader.add_embeddings([f"t{i}" for i in range(rows)], vectors)
    timed = create_engine(pg_url, connect_args={"options": "-c statement_timeout=100"})
    try:
        store = make_store(tables="timeout", connection=timed)
        table = store._spec.embedding_table
        with timed.connect() as conn, pytest.raises(Exception, match="statement timeout"):
            conn.execute(  # the same build by hand, under the session's timeout
                text(f"CREATE INDEX timeout_probe ON {table} USING hnsw (embedding vector_l2_ops)")
            )
        name = store.create_index(HNSW())
        assert name in [index.name for index in store.list_indexes()]
    finally:
        timed.dispose()
