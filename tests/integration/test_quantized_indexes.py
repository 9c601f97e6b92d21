"""Quantized HNSW indexes (halfvec and binary) with exact re-ranking, on a real PostgreSQL.

Every test makes its own tables (``qx_e<dim>_<hex>``) and drops them afterwards, so
the indexes built here never change another test's plans.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine
from support.modes import PARTITIONED, partial_indexes_only
from support.own_tables import analyze, own_tables, vector_indexes
from support.twins import Runner

from langchain_pgvec import (
    HNSW,
    DistanceStrategy,
    ExtensionError,
    InvalidInputError,
    PGVecStore,
    SchemaError,
    SearchSettings,
)
from langchain_pgvec._quantize import Quantization
from langchain_pgvec.cli import main

DIM = 64
KINDS: list[Quantization] = ["halfvec", "binary"]
OPCLASS = {"halfvec": "halfvec_cosine_ops", "binary": "bit_hamming_ops"}


@pytest.fixture
def make_store(engine: Engine, collection_name: str) -> Iterator[Any]:
    """Stores on tables of their own: ``make_store(dim, tables=None, **kwargs)``."""
    with own_tables(engine, collection_name, "qx", DIM) as make:
        yield make


def small(quantization: Quantization | None = None) -> HNSW:
    """An HNSW index that builds fast; plenty for a few thousand rows."""
    return HNSW(m=8, ef_construction=32, quantization=quantization)


@pytest.fixture
def quantized(needs_pgvector: Any) -> None:
    """Quantized indexes need pgvector 0.7 (halfvec, binary_quantize, bit HNSW)."""
    needs_pgvector(0, 7)


def unit_rows(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    normed: np.ndarray = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return normed


def clustered(n: int, dim: int, clusters: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` unit vectors around ``clusters`` centres, and queries drawn the same way.

    Within a cluster the cosine similarity is about 0.7, as in embeddings of related
    texts: the neighbours of a query are its cluster's, in a fine order.
    """
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)

    def draw(count: int) -> np.ndarray:
        noise = rng.standard_normal((count, dim)).astype(np.float32) * (0.6 / np.sqrt(dim))
        out: np.ndarray = centres[rng.integers(0, clusters, size=count)] + noise
        normed: np.ndarray = out / np.linalg.norm(out, axis=1, keepdims=True)
        return normed

    return draw(n), draw(40)


async def load(
    run: Runner, store: PGVecStore, vectors: np.ndarray, metadatas: Any = None
) -> list[str]:
    ids = [f"d{i}" for i in range(len(vectors))]
    texts = [f"doc {i}" for i in range(len(vectors))]
    await run(store, "add_embeddings", texts, vectors, metadatas, ids)
    return ids


def exact_ids(vectors: np.ndarray, query: np.ndarray, k: int, rows: Any = None) -> list[str]:
    candidates = np.arange(len(vectors)) if rows is None else np.asarray(rows)
    order = np.argsort(1.0 - vectors[candidates] @ query, kind="stable")[:k]
    return [f"d{i}" for i in candidates[order]]


def assert_exact_order(pairs: list[Any], vectors: np.ndarray, query: np.ndarray) -> None:
    """The scores are the exact cosine distances of the documents, in increasing order."""
    scores = [score for _, score in pairs]
    rows = [int(doc.id[1:]) for doc, _ in pairs]
    np.testing.assert_allclose(scores, 1.0 - vectors[rows] @ query, atol=1e-5)
    assert scores == sorted(scores)


# ---------------------------------------------------------------------- create, list, search, drop


@pytest.mark.parametrize("kind", KINDS)
async def test_create_list_search_drop(
    make_store: Any, run: Runner, engine: Engine, quantized: None, kind: Quantization
) -> None:
    store = make_store()
    vectors = unit_rows(2000)
    await load(run, store, vectors)
    table = store._spec.embedding_table

    name = await run(store, "create_index", small(kind))
    assert name == (f"{table}_hnsw_binary" if kind == "binary" else f"{table}_hnsw_halfvec_cosine")
    (index,) = vector_indexes(await run(store, "list_indexes"))
    assert (index.name, index.method, index.opclass) == (name, "hnsw", OPCLASS[kind])
    assert index.quantization == kind and index.expression and index.valid
    expected = "binary_quantize(embedding)::bit(64)" if kind == "binary" else "::halfvec(64)"
    assert expected in index.columns[0] and index.size_bytes > 0
    assert index.parameters == {"m": "8", "ef_construction": "32"}
    # the same index again is no error and no second index
    assert await run(store, "create_index", small(kind)) == name
    assert len(vector_indexes(await run(store, "list_indexes"))) == 1

    analyze(engine, store)
    query = unit_rows(1, seed=5)[0]
    plan = await run(store, "explain", query.tolist(), 10)
    assert f"Index Scan using {name}" in plan, plan
    # the candidates are ranked again by exact distance: the index orders by the
    # quantized expression, the top of the plan sorts by the exact one
    assert "Sort" in plan and ("<~>" in plan if kind == "binary" else "halfvec" in plan), plan

    pairs = await run(store, "similarity_search_with_score_by_vector", query.tolist(), 10)
    assert len(pairs) == 10
    assert_exact_order(pairs, vectors, query)
    # a stored vector finds itself first, at distance 0
    itself = await run(store, "similarity_search_with_score_by_vector", vectors[7].tolist(), 3)
    assert itself[0][0].id == "d7" and itself[0][1] == pytest.approx(0.0, abs=1e-5)
    # MMR reads its candidates (with their vectors) through the same index
    picked = await run(store, "max_marginal_relevance_search_by_vector", query.tolist(), 4, 20)
    assert len(picked) == 4

    await run(store, "drop_index", name)
    assert vector_indexes(await run(store, "list_indexes")) == []
    assert name not in await run(store, "explain", query.tolist(), 10)


@pytest.mark.parametrize("kind", KINDS)
async def test_filtered_search_through_a_quantized_index(
    make_store: Any, run: Runner, engine: Engine, needs_pgvector: Any, kind: Quantization
) -> None:
    needs_pgvector(0, 8)  # the iterative scan keeps going until enough rows pass
    store = make_store()
    vectors = unit_rows(2500)
    await load(run, store, vectors, [{"g": i % 50} for i in range(2500)])
    name = await run(store, "create_index", small(kind))
    analyze(engine, store)
    query = unit_rows(1, seed=9)[0]
    rare = {"g": {"$lt": 1}}  # 2% of the rows
    # through the vector index whatever the selectivity; and 40 candidates, not the
    # default 200 (of 50 matching rows PostgreSQL would rather sort them all)
    index = {"exact_below": 0, "overfetch": 4}

    plan = await run(store, "explain", query.tolist(), 10, rare, analyze=True, **index)
    assert f"Index Scan using {name}" in plan, plan
    assert re.search(r"actual time=\S+ rows=10\b", plan.splitlines()[0]), plan

    pairs = await run(
        store, "similarity_search_with_score_by_vector", query.tolist(), 10, rare, **index
    )
    assert len(pairs) == 10 and all(doc.metadata["g"] == 0 for doc, _ in pairs)
    assert_exact_order(pairs, vectors, query)
    rows = [i for i in range(2500) if i % 50 == 0]
    found = {doc.id for doc, _ in pairs}
    assert len(found & set(exact_ids(vectors, query, 10, rows))) >= 8


@pytest.mark.parametrize("kind", KINDS)
def test_recall_against_exact_search_on_clustered_vectors(
    make_store: Any, engine: Engine, quantized: None, kind: Quantization
) -> None:
    """With the default overfetch, recall@10 (and @4) after re-ranking is at least 0.95."""
    dim = 384
    store = make_store(dim)
    vectors, queries = clustered(4000, dim, clusters=40)
    store.add_embeddings(
        [f"doc {i}" for i in range(4000)], vectors, ids=[f"d{i}" for i in range(4000)]
    )
    name = store.create_index(HNSW(quantization=kind))
    analyze(engine, store)
    assert f"Index Scan using {name}" in store.explain(queries[0].tolist(), 10)

    for k in (10, 4):
        hits = 0
        for query in queries:
            found = store.similarity_search_by_vector(query.tolist(), k)
            hits += len({d.id for d in found} & set(exact_ids(vectors, query, k)))
        recall = hits / (k * len(queries))
        assert recall >= 0.95, (k, recall)

    # overfetch is the candidates per result asked of the index: the inner LIMIT
    plan = store.explain(queries[0].tolist(), 10, analyze=True, overfetch=3)
    limits = [int(m) for m in re.findall(r"Limit .*actual time=\S+ rows=(\d+)", plan)]
    assert limits == [10, 30], plan


# ---------------------------------------------------------------------- which index serves


async def test_the_float_index_is_preferred_unless_the_setting_says_otherwise(
    make_store: Any, run: Runner, engine: Engine, quantized: None
) -> None:
    store = make_store()
    vectors = unit_rows(2000)
    await load(run, store, vectors)
    binary = await run(store, "create_index", small("binary"))
    halfvec = await run(store, "create_index", small("halfvec"))
    analyze(engine, store)
    query = vectors[3].tolist()

    # of two quantized indexes, halfvec (the closer approximation)
    assert f"Index Scan using {halfvec}" in await run(store, "explain", query)
    assert f"Index Scan using {binary}" in await run(store, "explain", query, quantization="binary")

    plain = await run(store, "create_index", small())
    analyze(engine, store)
    # an index of the vectors as stored wins: exact distances, nothing to rank again
    plan = await run(store, "explain", query)
    assert f"Index Scan using {plain}" in plan and binary not in plan and halfvec not in plan
    # unless the call, or the store, asks for a quantized one
    assert f"Index Scan using {binary}" in await run(store, "explain", query, quantization="binary")
    suffix = store._spec.embedding_table.split("_")[-1]
    prefers = make_store(tables=suffix, search_settings=SearchSettings(quantization="halfvec"))
    assert f"Index Scan using {halfvec}" in await run(prefers, "explain", query)
    found = await run(prefers, "similarity_search_by_vector", query, 3)
    assert found[0].id == "d3"

    # "off": never a quantized index
    await run(store, "drop_index", plain)
    plan = await run(store, "explain", query, quantization="off")
    assert binary not in plan and halfvec not in plan
    with pytest.raises(InvalidInputError, match="quantization must be one of"):
        await run(store, "similarity_search_by_vector", query, 3, quantization="int8")


# ---------------------------------------------------------------------- refusals


async def test_halfvec_quantization_of_a_halfvec_table_is_refused(
    make_store: Any, run: Runner, engine: Engine, quantized: None
) -> None:
    store = make_store(vector_type="halfvec")
    vectors = unit_rows(1000)
    await load(run, store, vectors)
    with pytest.raises(InvalidInputError, match=r"halfvec already.*HNSW\(\)"):
        await run(store, "create_index", HNSW(quantization="halfvec"))
    assert vector_indexes(await run(store, "list_indexes")) == []

    # binary quantization of halfvec vectors works, re-ranked on the halfvecs
    name = await run(store, "create_index", small("binary"))
    analyze(engine, store)
    query = vectors[11].tolist()
    assert f"Index Scan using {name}" in await run(store, "explain", query)
    pairs = await run(store, "similarity_search_with_score_by_vector", query, 5)
    assert pairs[0][0].id == "d11" and pairs[0][1] == pytest.approx(0.0, abs=1e-3)


async def test_dimension_limits_of_quantized_indexes(
    make_store: Any, run: Runner, quantized: None
) -> None:
    wide = make_store(4001, embedding_length=4001)
    await run(wide, "create_tables")
    with pytest.raises(SchemaError, match=r"4,001 dimensions.*at most 4,000"):
        await run(wide, "create_index", HNSW(quantization="halfvec"))
    # bits go further; and 2,001 to 4,000 float dimensions are indexable in half precision
    assert await run(wide, "create_index", HNSW(quantization="binary"))
    half = make_store(3000, embedding_length=3000)
    await run(half, "create_tables")
    assert await run(half, "create_index", HNSW(quantization="halfvec"))


async def test_older_pgvector_refuses_before_any_ddl(
    make_store: Any, run: Runner, pgvector: tuple[int, ...]
) -> None:
    if pgvector >= (0, 7):
        pytest.skip(f"the server's pgvector {pgvector} has quantized indexes")
    store = make_store()
    await load(run, store, unit_rows(50))
    for kind in KINDS:
        with pytest.raises(ExtensionError, match=r"need pgvector 0\.7\.0.*has pgvector 0\.6"):
            await run(store, "create_index", HNSW(quantization=kind))
    assert vector_indexes(await run(store, "list_indexes")) == []


# ---------------------------------------------------------------------- partitions, partial


async def test_partitioned_table_has_a_quantized_graph_per_collection(
    make_store: Any, run: Runner, engine: Engine, quantized: None
) -> None:
    first = make_store(partitioned=True)
    suffix = first._spec.embedding_table.split("_")[-1]
    second = make_store(tables=suffix, collection_name="second", partitioned=True)
    vectors = unit_rows(1500)
    await load(run, first, vectors)
    await load(run, second, unit_rows(500, seed=1))

    name = await run(first, "create_index", small("binary"))
    (index,) = vector_indexes(await run(first, "list_indexes"))
    assert index.partitioned and index.quantization == "binary"
    analyze(engine, first)
    query = vectors[21].tolist()
    plan = await run(first, "explain", query)
    assert f"Index Scan using {name}_" in plan, plan  # the partition's own graph
    found = await run(first, "similarity_search_by_vector", query, 4)
    assert found[0].id == "d21" and len(found) == 4
    # a collection created afterwards gets its graph with its partition
    third = make_store(tables=suffix, collection_name="third", partitioned=True)
    await load(run, third, unit_rows(300, seed=2))
    assert (await run(third, "similarity_search_by_vector", query, 2))[0].id.startswith("d")
    await run(first, "drop_index", name)
    assert vector_indexes(await run(first, "list_indexes")) == []


@partial_indexes_only
async def test_a_collections_own_quantized_index(
    make_store: Any, run: Runner, engine: Engine, quantized: None
) -> None:
    store = make_store()
    suffix = store._spec.embedding_table.split("_")[-1]
    other = make_store(tables=suffix, collection_name="other")
    vectors = unit_rows(1500)
    await load(run, store, vectors)
    await load(run, other, unit_rows(1500, seed=1))
    name = await run(store, "create_index", small("halfvec"), per_collection=True)
    (index,) = vector_indexes(await run(store, "list_indexes"))
    assert index.collection_id is not None and index.quantization == "halfvec"
    analyze(engine, store)
    query = vectors[8].tolist()
    assert f"Index Scan using {name}" in await run(store, "explain", query)
    assert name not in await run(other, "explain", query)
    assert (await run(store, "similarity_search_by_vector", query, 1))[0].id == "d8"


# ---------------------------------------------------------------------- the CLI


@pytest.mark.skipif(PARTITIONED, reason="builds its table through the CLI's own store")
def test_cli_creates_and_lists_a_quantized_index(
    make_store: Any, pg_url: str, quantized: None, capsys: pytest.CaptureFixture[str]
) -> None:
    store = make_store(distance_strategy=DistanceStrategy.EUCLIDEAN)
    store.add_embeddings(["a", "b", "c"], unit_rows(3).tolist(), ids=["a", "b", "c"])
    table = store._spec.embedding_table
    own = ["--url", pg_url, "--embedding-table", table, "--collection-table"]
    own.append(store._spec.collection_table)
    argv = ["index", "create", "hnsw", "--quantization", "halfvec", "--distance", "euclidean"]
    assert main([*own, *argv]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"index {table}_hnsw_halfvec_l2 (hnsw, halfvec, halfvec_l2_ops")
    assert main([*own, "index", "list"]) == 0
    assert "halfvec quantization" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exited:
        main([*own, "index", "create", "ivfflat", "--quantization", "binary"])
    assert exited.value.code == 2 and "--quantization" in capsys.readouterr().err
