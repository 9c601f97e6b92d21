"""PGVecStore against a real PostgreSQL + pgvector: every method, sync and async."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import inspect
import math
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.ext.asyncio import create_async_engine
from support.twins import Runner

from langchain_pgvec import (
    DimensionMismatchError,
    DistanceStrategy,
    InvalidInputError,
    PGVecError,
    PGVecStore,
    SchemaError,
)

DIM = 16


@pytest.fixture
def make_store(engine: Any, collection_name: str) -> Iterator[Any]:
    made: list[PGVecStore] = []

    def factory(dim: int = DIM, **kwargs: Any) -> PGVecStore:
        kwargs.setdefault("connection", engine)
        kwargs.setdefault("collection_name", collection_name)
        kwargs.setdefault("embedding_table", f"it_emb_{dim}")
        kwargs.setdefault("collection_table", f"it_col_{dim}")
        store = PGVecStore(DeterministicFakeEmbedding(size=dim), **kwargs)
        made.append(store)
        return store

    yield factory
    for store in made:
        with contextlib.suppress(PGVecError):
            store.delete_collection()


@pytest.fixture
def store(make_store: Any) -> PGVecStore:
    result: PGVecStore = make_store()
    return result


def unit_rows(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    normed: np.ndarray = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return normed


# ---------------------------------------------------------------------- writing


async def test_add_texts_get_by_ids_roundtrip(store: PGVecStore, run: Runner) -> None:
    metadatas = [{"a": 1, "nested": {"x": [1, "two", None]}}, {}, {"ü": "ñ"}]
    ids = await run(store, "add_texts", ["one", "two", "three"], metadatas, ids=["1", "2", "3"])
    assert ids == ["1", "2", "3"]
    got = await run(store, "get_by_ids", ["3", "missing", "1", "2"])
    assert got == [
        Document(id="3", page_content="three", metadata={"ü": "ñ"}),
        Document(id="1", page_content="one", metadata=metadatas[0]),
        Document(id="2", page_content="two", metadata={}),
    ]


async def test_generated_ids_are_unique_strings(store: PGVecStore, run: Runner) -> None:
    ids = await run(store, "add_texts", ["a", "b", "c"])
    assert len(set(ids)) == 3 and all(isinstance(i, str) and i for i in ids)
    assert await run(store, "count") == 3


async def test_upsert_replaces_content_metadata_and_vector(store: PGVecStore, run: Runner) -> None:
    vectors = unit_rows(2)
    await run(store, "add_embeddings", ["old", "keep"], vectors, [{"v": 1}, {"v": 2}], ["x", "y"])
    await run(store, "add_embeddings", ["new"], vectors[1:], [{"v": 3}], ["x"])
    assert await run(store, "count") == 2
    (doc,) = await run(store, "get_by_ids", ["x"])
    assert doc == Document(id="x", page_content="new", metadata={"v": 3})
    pairs = await run(store, "similarity_search_with_score_by_vector", vectors[1].tolist(), k=2)
    assert sorted(d.id for d, s in pairs if s < 1e-6) == ["x", "y"]


@pytest.mark.parametrize("n", [5, 300], ids=["multi-row", "staging"])
async def test_upsert_leaves_unchanged_rows_alone_and_changes_the_rest_exactly(
    store: PGVecStore, run: Runner, engine: Any, n: int
) -> None:
    ids = [f"u{i}" for i in range(n)]
    vectors = unit_rows(n)
    vectors[3] = 0.0  # -0.0 vs 0.0 below: equal for =, different bits
    vectors[3][0] = 1.0
    texts = [f"t{i}" for i in range(n)]
    metadatas: list[dict[str, Any]] = [{"n": 1, "i": i} for i in range(n)]
    await run(store, "add_embeddings", texts, vectors, metadatas, ids)
    table = store.engine.dialect.identifier_preparer.quote(store._spec.embedding_table)

    def versions() -> dict[str, str]:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(f"SELECT id, xmin::text FROM {table} WHERE id = ANY(:ids)"), {"ids": ids}
            )
            return dict(rows.all())

    before = versions()
    await run(store, "add_embeddings", texts, vectors, metadatas, ids)  # the same again
    assert versions() == before  # no row rewritten

    texts[0] = "t0 changed"
    metadatas[1] = {"n": 1.0, "i": 1}  # jsonb says 1 = 1.0; the stored type must follow
    vectors[2] = unit_rows(1, seed=9)[0]
    vectors[3][1] = -0.0
    await run(store, "add_embeddings", texts, vectors, metadatas, ids)
    after = versions()
    assert {i for i in ids if after[i] != before[i]} == {"u0", "u1", "u2", "u3"}
    docs = {d.id: d for d in await run(store, "get_by_ids", ids[:4])}
    assert docs["u0"].page_content == "t0 changed"
    assert isinstance(docs["u1"].metadata["n"], float)
    (hit,) = await run(store, "similarity_search_by_vector", vectors[2].tolist(), k=1)
    assert hit.id == "u2"


async def test_add_documents_honours_document_ids(store: PGVecStore, run: Runner) -> None:
    docs = [Document(id="d1", page_content="a", metadata={"k": 1}), Document(page_content="b")]
    before = copy.deepcopy(docs)
    ids = await run(store, "add_documents", docs)
    assert ids[0] == "d1" and ids[1] and ids[1] != "d1"
    assert docs == before  # inputs are never mutated
    assert [d.page_content for d in await run(store, "get_by_ids", ids)] == ["a", "b"]


async def test_two_collections_same_id_never_touch(make_store: Any, run: Runner) -> None:
    first = make_store(collection_name="col_a_" + run.mode)
    second = make_store(collection_name="col_b_" + run.mode)
    await run(first, "add_texts", ["from a"], [{"c": "a"}], ids=["shared"])
    await run(second, "add_texts", ["from b"], [{"c": "b"}], ids=["shared"])
    assert [d.page_content for d in await run(first, "get_by_ids", ["shared"])] == ["from a"]
    assert [d.page_content for d in await run(second, "get_by_ids", ["shared"])] == ["from b"]
    await run(first, "delete", ["shared"])
    assert await run(first, "get_by_ids", ["shared"]) == []
    assert [d.page_content for d in await run(second, "get_by_ids", ["shared"])] == ["from b"]
    await run(second, "delete_collection")
    assert await run(second, "count") == 0
    assert await run(first, "count") == 0


async def test_bulk_path_counts_contents_and_upserts(store: PGVecStore, run: Runner) -> None:
    n = 2500  # above the COPY threshold and more than one COPY chunk
    vectors = unit_rows(n, seed=1)
    ids = [f"id-{i}" for i in range(n)]
    metas = [{"i": i, "even": i % 2 == 0, "s": f"é{i}"} for i in range(n)]
    await run(store, "add_embeddings", [f"text {i}" for i in range(n)], vectors, metas, ids)
    assert await run(store, "count") == n
    # mixed: half existing ids (updated), half new
    mixed_ids = [f"id-{i}" for i in range(n // 2, n + n // 2)]
    await run(
        store,
        "add_embeddings",
        [f"v2 {i}" for i in mixed_ids],
        unit_rows(n, seed=2),
        [{"v": 2} for _ in mixed_ids],
        mixed_ids,
    )
    assert await run(store, "count") == n + n // 2
    got = await run(store, "get_by_ids", ["id-0", f"id-{n - 1}", f"id-{n + 10}"])
    assert [(d.page_content, d.metadata) for d in got] == [
        ("text 0", metas[0]),
        (f"v2 id-{n - 1}", {"v": 2}),
        (f"v2 id-{n + 10}", {"v": 2}),
    ]
    pairs = await run(store, "similarity_search_with_score_by_vector", vectors[7].tolist(), k=1)
    assert pairs[0][0].id == "id-7" and pairs[0][1] < 1e-5


async def test_failed_bulk_write_leaves_data_as_it_was(
    store: PGVecStore, run: Runner, engine: Any
) -> None:
    await run(store, "add_texts", ["before"], ids=["keep"])
    with engine.begin() as conn:  # a constraint the database enforces mid-COPY
        conn.execute(
            text(
                "ALTER TABLE it_emb_16 ADD CONSTRAINT no_poison "
                "CHECK (content <> 'poison') NOT VALID"
            )
        )
    try:
        for n in (50, 1200):  # the multi-row path and the COPY path
            texts = [f"t{i}" for i in range(n)]
            texts[n // 2] = "poison"
            with pytest.raises(Exception, match="no_poison"):
                await run(store, "add_embeddings", texts, unit_rows(n), None, None)
            assert await run(store, "count") == 1
    finally:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE it_emb_16 DROP CONSTRAINT no_poison"))


# ---------------------------------------------------------------------- bad input

BAD_INPUTS = [
    ("texts/ids length", dict(texts=["a", "b"], ids=["1"]), "ids"),
    ("texts/metadatas length", dict(texts=["a", "b"], metadatas=[{}]), "metadatas"),
    ("texts/embeddings length", dict(texts=["a", "b"], embeddings=1), "embeddings"),
    ("duplicate ids", dict(texts=["a", "b"], ids=["x", "x"]), "more than once"),
    ("wrong dimension", dict(texts=["a"], embeddings=[[0.1] * (DIM + 1)]), "16-dimensional"),
    ("nan", dict(texts=["a"], embeddings=[[math.nan] * DIM]), "NaN"),
    ("infinity", dict(texts=["a"], embeddings=[[math.inf] * DIM]), "NaN or infinity"),
    ("metadata not dict", dict(texts=["a"], metadatas=[["x"]]), "must be a dict"),
    ("metadata not json", dict(texts=["a"], metadatas=[{"o": object()}]), "JSON"),
    ("metadata nan", dict(texts=["a"], metadatas=[{"f": math.nan}]), "JSON cannot hold"),
    ("metadata int key", dict(texts=["a"], metadatas=[{1: "x"}]), "keys"),
    ("NUL in text", dict(texts=["a\x00b"]), "NUL"),
    ("NUL in metadata", dict(texts=["a"], metadatas=[{"k": "v\x00"}]), "NUL"),
    ("NUL in metadata key", dict(texts=["a"], metadatas=[{"k\x00": 1}]), "NUL"),
    ("NUL in id", dict(texts=["a"], ids=["x\x00"]), "NUL"),
    ("non-string id", dict(texts=["a"], ids=[7]), "strings"),
    ("non-string text", dict(texts=[b"bytes"]), "strings"),
    ("ragged embeddings", dict(texts=["a", "b"], embeddings=[[1.0], [1.0, 2.0]]), "2-D|equal"),
]


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
async def test_bad_input_raises_before_writing(
    store: PGVecStore, run: Runner, case: tuple[str, dict[str, Any], str]
) -> None:
    _, arguments, message = case
    await run(store, "add_texts", ["existing"], ids=["e"])
    texts = arguments["texts"]
    embeddings = arguments.get("embeddings")
    if embeddings is None:
        embeddings = unit_rows(len(texts)).tolist()
    elif embeddings == 1:
        embeddings = unit_rows(len(texts) + 1).tolist()
    with pytest.raises(InvalidInputError, match=message):
        await run(
            store,
            "add_embeddings",
            texts,
            embeddings,
            arguments.get("metadatas"),
            arguments.get("ids"),
        )
    assert await run(store, "count") == 1
    assert isinstance(InvalidInputError("x"), ValueError)


async def test_add_texts_rejects_bad_metadata_before_embedding(store: PGVecStore) -> None:
    calls: list[int] = []

    class Counting(DeterministicFakeEmbedding):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            calls.append(len(texts))
            return super().embed_documents(texts)

    store._embeddings = Counting(size=DIM)
    with pytest.raises(InvalidInputError):
        store.add_texts(["a", "b"], metadatas=[{}])
    assert calls == []


async def test_dimension_mismatch_names_table_and_fix(make_store: Any, run: Runner) -> None:
    first = make_store()
    await run(first, "add_texts", ["a"])
    wrong = make_store(dim=DIM, embedding_length=DIM * 2)
    with pytest.raises(DimensionMismatchError) as info:
        await run(wrong, "add_texts", ["b"])
    message = str(info.value)
    assert "it_emb_16" in message and str(DIM) in message and str(DIM * 2) in message
    assert "embedding_table" in message


BAD_QUERIES = [
    (
        "wrong dimension",
        [0.1] * (DIM + 3),
        "stores 16-dimensional vectors, but the embedding has 19",
    ),
    ("nan", [0.1] * (DIM - 1) + [math.nan], "NaN or infinity"),
    ("infinity", np.full(DIM, np.inf, dtype=np.float32), "NaN or infinity"),
    ("inf minus inf", [math.inf, -math.inf] + [0.0] * (DIM - 2), "NaN or infinity"),
    ("2-D", [[0.1] * DIM], "but the embedding has 1"),
    ("empty", [], "but the embedding has 0"),
    ("text", ["a"] * DIM, "sequence of numbers"),
]


@pytest.mark.parametrize("case", BAD_QUERIES, ids=[c[0] for c in BAD_QUERIES])
async def test_bad_query_vectors_are_rejected(
    store: PGVecStore, run: Runner, case: tuple[str, Any, str]
) -> None:
    _, query, message = case
    await run(store, "add_texts", ["a"])
    for method in ("similarity_search_by_vector", "max_marginal_relevance_search_by_vector"):
        with pytest.raises(InvalidInputError, match=message):
            await run(store, method, query)
    # the largest float32 values are finite, and fine
    big = np.full(DIM, np.finfo(np.float32).max, dtype=np.float32)
    assert len(await run(store, "similarity_search_by_vector", big, k=1)) == 1


async def test_query_dimension_mismatch(store: PGVecStore, run: Runner) -> None:
    await run(store, "add_texts", ["a"])
    with pytest.raises(DimensionMismatchError):
        await run(store, "similarity_search_by_vector", [0.1] * (DIM + 3))


async def test_vector_type_mismatch_is_schema_error(
    make_store: Any, run: Runner, needs_pgvector: Any
) -> None:
    needs_pgvector(0, 7)
    await run(make_store(), "add_texts", ["a"])
    with pytest.raises(SchemaError, match="halfvec"):
        await run(make_store(vector_type="halfvec"), "add_texts", ["b"])


# ---------------------------------------------------------------------- searching


@pytest.mark.parametrize("strategy", list(DistanceStrategy))
async def test_search_matches_numpy_brute_force(
    make_store: Any, run: Runner, strategy: DistanceStrategy
) -> None:
    store = make_store(
        distance_strategy=strategy, collection_name=f"bf_{strategy.value}_{run.mode}"
    )
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((300, DIM)).astype(np.float32)
    ids = [str(i) for i in range(300)]
    await run(store, "add_embeddings", ids, vectors, None, ids)
    query = rng.standard_normal(DIM).astype(np.float32)
    if strategy is DistanceStrategy.COSINE:
        expected = 1 - (vectors @ query) / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(query))
    elif strategy is DistanceStrategy.EUCLIDEAN:
        expected = np.linalg.norm(vectors - query, axis=1)
    else:
        expected = -(vectors @ query)
    order = np.argsort(expected, kind="stable")[:7]
    pairs = await run(store, "similarity_search_with_score_by_vector", query.tolist(), k=7)
    assert [d.id for d, _ in pairs] == [str(i) for i in order]
    np.testing.assert_allclose([s for _, s in pairs], expected[order], rtol=1e-4, atol=1e-4)
    relevance = await run(store, "similarity_search_with_relevance_scores", "anything", k=5)
    scores = [s for _, s in relevance]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores == sorted(scores, reverse=True)


async def test_filter_by_metadata_in_search_count_get_delete(
    store: PGVecStore, run: Runner
) -> None:
    texts = [f"doc {i}" for i in range(20)]
    metas = [{"year": 2000 + i, "kind": "even" if i % 2 == 0 else "odd"} for i in range(20)]
    await run(store, "add_texts", texts, metas, ids=[str(i) for i in range(20)])
    found = await run(store, "similarity_search", "doc", k=20, filter={"kind": "odd"})
    assert len(found) == 10 and all(d.metadata["kind"] == "odd" for d in found)
    assert await run(store, "count", {"kind": "even"}) == 10
    got = await run(store, "get", {"kind": "even"}, limit=3)
    assert [d.id for d in got] == ["0", "10", "12"]
    await run(store, "delete", filter={"kind": "even"})
    assert await run(store, "count") == 10
    await run(store, "delete", ["1", "3"], filter={"kind": "nope"})  # both must hold
    assert await run(store, "count") == 10


async def test_empty_store_and_k_zero(store: PGVecStore, run: Runner) -> None:
    assert await run(store, "similarity_search", "x") == []
    assert await run(store, "max_marginal_relevance_search", "x") == []
    assert await run(store, "get_by_ids", ["a"]) == []
    assert await run(store, "count") == 0
    await run(store, "add_texts", ["a"])
    assert await run(store, "similarity_search", "x", k=0) == []
    with pytest.raises(InvalidInputError, match="k must be"):
        await run(store, "similarity_search", "x", k=-1)
    with pytest.raises(InvalidInputError, match="ids or a filter"):
        await run(store, "delete")


# ---------------------------------------------------------------------- MMR


async def test_mmr_uses_fetch_k_and_diversifies(store: PGVecStore, run: Runner) -> None:
    base = unit_rows(1, seed=9)[0]
    rng = np.random.default_rng(3)
    near_copies = np.stack([base + 0.001 * rng.standard_normal(DIM) for _ in range(5)])
    other = unit_rows(1, seed=10)[0]
    vectors = np.vstack([near_copies, other[None, :]]).astype(np.float32)
    ids = [f"copy{i}" for i in range(5)] + ["other"]
    await run(store, "add_embeddings", ids, vectors, None, ids)
    plain = await run(store, "similarity_search_by_vector", base.tolist(), k=2)
    assert all(d.id.startswith("copy") for d in plain)
    mmr = await run(
        store,
        "max_marginal_relevance_search_by_vector",
        base.tolist(),
        k=2,
        fetch_k=6,
        lambda_mult=0.3,
    )
    assert mmr[0].id.startswith("copy") and mmr[1].id == "other"
    narrow = await run(
        store,
        "max_marginal_relevance_search_by_vector",
        base.tolist(),
        k=2,
        fetch_k=2,
        lambda_mult=0.3,
    )
    assert all(d.id.startswith("copy") for d in narrow)  # only fetch_k candidates considered
    pure = await run(
        store,
        "max_marginal_relevance_search_by_vector",
        base.tolist(),
        k=3,
        fetch_k=6,
        lambda_mult=1.0,
    )
    assert [d.id for d in pure] == [
        d.id for d in await run(store, "similarity_search_by_vector", base.tolist(), k=3)
    ]


# ---------------------------------------------------------------------- retrievers & constructors


async def test_retrievers(store: PGVecStore, run: Runner) -> None:
    await run(store, "add_texts", [f"text {i}" for i in range(10)], [{"i": i} for i in range(10)])
    similarity = store.as_retriever(search_kwargs={"k": 3, "filter": {"i": {"$lt": 5}}})
    mmr = store.as_retriever(search_type="mmr", search_kwargs={"k": 2, "fetch_k": 10})
    threshold = store.as_retriever(
        search_type="similarity_score_threshold",
        search_kwargs={"score_threshold": 0.0, "k": 4},
    )
    for retriever, count in ((similarity, 3), (mmr, 2), (threshold, 4)):
        if run.mode == "sync":
            docs = retriever.invoke("text 1")
        else:
            docs = await retriever.ainvoke("text 1")
        assert len(docs) == count
    assert all(d.metadata["i"] < 5 for d in similarity.invoke("text 3"))


async def test_from_texts_and_documents(engine: Any, collection_name: str) -> None:
    embedding = DeterministicFakeEmbedding(size=DIM)
    common = dict(connection=engine, embedding_table="it_emb_16", collection_table="it_col_16")
    one = PGVecStore.from_texts(
        ["a", "b"],
        embedding,
        [{"n": 1}, {"n": 2}],
        ids=["1", "2"],
        collection_name=collection_name + "_1",
        **common,
    )
    two = await PGVecStore.afrom_texts(
        ["c"], embedding, collection_name=collection_name + "_2", **common
    )
    three = PGVecStore.from_documents(
        [Document(page_content="d", id="x")],
        embedding,
        collection_name=collection_name + "_3",
        **common,
    )
    try:
        assert one.count() == 2 and two.count() == 1
        assert three.get_by_ids(["x"])[0].page_content == "d"
    finally:
        for store in (one, two, three):
            store.delete_collection()


# ---------------------------------------------------------------------- connections


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


@pytest.mark.parametrize("kind", ["url", "plain-url", "engine", "async-engine", "env"])
async def test_every_connection_kind_serves_sync_and_async(
    pg_url: str, collection_name: str, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    owned: list[Any] = []
    connection: Any
    if kind == "url":
        connection = pg_url
    elif kind == "plain-url":
        connection = _plain(pg_url)
    elif kind == "engine":
        connection = create_engine(pg_url)
        owned.append(connection)
    elif kind == "async-engine":
        connection = create_async_engine(pg_url)
        owned.append(connection)
    else:
        monkeypatch.setenv("PGVEC_URL", _plain(pg_url))
        connection = None
    store = PGVecStore(
        DeterministicFakeEmbedding(size=DIM),
        connection=connection,
        collection_name=collection_name,
        embedding_table="it_emb_16",
        collection_table="it_col_16",
    )
    try:
        store.add_texts(["sync write"], ids=["s"])
        await store.aadd_texts(["async write"], ids=["a"])
        assert {d.id for d in await store.aget_by_ids(["s", "a"])} == {"s", "a"}
        assert {d.id for d in store.get_by_ids(["s", "a"])} == {"s", "a"}
    finally:
        store.delete_collection()
        await store.aclose()
        for item in owned:
            result = item.dispose()
            if inspect.isawaitable(result):
                await result
        from langchain_pgvec import _engine

        for item in owned:
            derived = _engine._DERIVED.pop(item, None)
            if derived is not None:
                result = derived.dispose()
                if inspect.isawaitable(result):
                    await result


def test_bad_connection_is_rejected() -> None:
    embedding = DeterministicFakeEmbedding(size=DIM)
    with pytest.raises(PGVecError, match="PostgreSQL URL"):
        PGVecStore(embedding, connection="mysql://localhost/db")
    with pytest.raises(PGVecError, match="URL string"):
        PGVecStore(embedding, connection=42)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="collection_name"):
        PGVecStore(embedding, connection="postgresql://x/y", collection_name="")


# ---------------------------------------------------------------------- halfvec


async def test_halfvec_store_roundtrip(make_store: Any, run: Runner, needs_pgvector: Any) -> None:
    needs_pgvector(0, 7)
    store = make_store(
        vector_type="halfvec", embedding_table="it_half_16", collection_table="it_halfcol_16"
    )
    vectors = unit_rows(300, seed=4)
    ids = [str(i) for i in range(300)]
    await run(store, "add_embeddings", ids, vectors, None, ids)
    pairs = await run(store, "similarity_search_with_score_by_vector", vectors[42].tolist(), k=1)
    assert pairs[0][0].id == "42" and pairs[0][1] < 1e-3
    mmr = await run(store, "max_marginal_relevance_search_by_vector", vectors[42].tolist(), k=3)
    assert mmr[0].id == "42"


# ---------------------------------------------------------------------- batched add_texts


class FlakyEmbeddings(DeterministicFakeEmbedding):
    """Counts embedding calls and fails on the call numbered ``fail_on`` (1-based)."""

    calls: int = 0
    fail_on: int = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError("embedding service down")
        return super().embed_documents(texts)

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_documents(texts)


async def test_add_texts_in_batches_with_progress(store: PGVecStore, run: Runner) -> None:
    flaky = FlakyEmbeddings(size=DIM)
    store._embeddings = flaky
    texts = [f"text number {i}" for i in range(1050)]
    ids = await run(
        store,
        "add_texts",
        texts,
        [{"i": i} for i in range(1050)],
        batch_size=100,
        show_progress=True,
    )
    assert flaky.calls == 11 and len(ids) == 1050
    assert await run(store, "count") == 1050
    docs = await run(store, "get_by_ids", [ids[0], ids[-1]])
    assert [d.metadata["i"] for d in docs] == [0, 1049]
    hits = await run(store, "similarity_search", "text number 977", k=1)
    assert hits[0].page_content == "text number 977"


async def test_add_texts_is_all_or_nothing_when_a_batch_fails(
    store: PGVecStore, run: Runner
) -> None:
    await run(store, "add_texts", ["already here"], ids=["keep"])
    store._embeddings = FlakyEmbeddings(size=DIM, fail_on=3)
    with pytest.raises(RuntimeError, match="embedding service down"):
        await run(store, "add_texts", [f"t{i}" for i in range(500)], batch_size=100)
    assert await run(store, "count") == 1


async def test_add_texts_validates_batch_size(store: PGVecStore, run: Runner) -> None:
    with pytest.raises(InvalidInputError, match="batch_size"):
        await run(store, "add_texts", ["a"], batch_size=0)


async def test_write_after_another_store_deleted_the_collection(
    make_store: Any, run: Runner
) -> None:
    mine = make_store()
    other = make_store()  # same collection, another instance
    await run(mine, "add_texts", ["first"], ids=["1"])  # caches the collection id
    await run(other, "delete_collection")
    await run(mine, "add_texts", ["second"], ids=["2"])  # must not hit a stale id
    assert [d.id for d in await run(other, "get", None)] == ["2"]
    assert [d.id for d in await run(mine, "get", None)] == ["2"]


async def test_batched_upsert_uses_the_staging_path_more_than_once(
    store: PGVecStore, run: Runner
) -> None:
    texts = [f"text {i}" for i in range(600)]
    ids = [f"id-{i}" for i in range(600)]
    await run(store, "add_texts", texts, ids=ids, batch_size=300)
    # every batch now holds existing ids: each takes the staging route in one transaction
    await run(store, "add_texts", [t + " v2" for t in texts], ids=ids, batch_size=300)
    assert await run(store, "count") == 600
    (doc,) = await run(store, "get_by_ids", ["id-599"])
    assert doc.page_content == "text 599 v2"


async def test_a_failed_write_stops_the_next_batchs_embedding(store: PGVecStore) -> None:
    """aadd_texts embeds the next batch while it writes this one: when the write fails,
    that embedding is cancelled, not left running after the call has raised."""

    class Stalling(DeterministicFakeEmbedding):
        calls: int = 0
        cancelled: bool = False

        async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
            self.calls += 1
            if self.calls == 1:  # the first batch: vectors the write refuses
                return [[float("nan")] * DIM for _ in texts]
            try:
                await asyncio.Event().wait()  # the next batch: never done by itself
            except asyncio.CancelledError:
                self.cancelled = True
                raise
            return []

    stalling = Stalling(size=DIM)
    store._embeddings = stalling
    with pytest.raises(InvalidInputError, match="NaN"):
        await asyncio.wait_for(
            store.aadd_texts([f"t{i}" for i in range(30)], batch_size=10), timeout=30
        )
    assert stalling.calls == 2 and stalling.cancelled
    assert await store.acount() == 0


async def test_the_longest_table_name_with_full_text(engine: Engine, run: Runner) -> None:
    name = "l" * 44 + uuid.uuid4().hex[:4]  # 48 bytes, the most a spec takes
    store = PGVecStore(
        DeterministicFakeEmbedding(size=DIM),
        connection=engine,
        embedding_table=name,
        collection_table="c" + name[1:],
        full_text=True,
    )
    try:
        await run(store, "add_texts", ["postgres keeps vectors", "and full text"])
        assert len(await run(store, "hybrid_search", "postgres", 2)) == 2
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP TABLE IF EXISTS "{name}", "c{name[1:]}" CASCADE'))
