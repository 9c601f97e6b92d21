"""One error tree: every public method, given hostile input, either works or raises the
PGVecError that names the problem, before anything is written; and the server's
refusals (no such database or role, no connection slot left) say what they are.

The first tests are the rows of the table that issue 14 measured, one by one; the last
walks every public method, sync and async, with arguments that are wrong in the ways
users get them wrong.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.indexing import InMemoryRecordManager
from sqlalchemy import Engine, make_url, text
from support.twins import Runner

from langchain_pgvec import (
    HNSW,
    ConnectError,
    ExtensionError,
    FilterError,
    HashingEmbeddings,
    InvalidInputError,
    IVFFlat,
    PGVecError,
    PGVecStore,
    SchemaError,
)
from langchain_pgvec._filters import MAX_DEPTH
from langchain_pgvec._validate import MAX_KEY_BYTES, MAX_ROWS

DIM = 16


@pytest.fixture
def store(engine: Engine, collection_name: str) -> Iterator[PGVecStore]:
    table = f"et_{uuid.uuid4().hex[:8]}"
    made = PGVecStore(
        HashingEmbeddings(dimension=DIM),
        connection=engine,
        collection_name=collection_name,
        embedding_table=table,
        collection_table=f"{table}_c",
        full_text=True,
    )
    made.add_texts(
        [f"document {i} about postgres" for i in range(30)], [{"n": i} for i in range(30)]
    )
    yield made
    with engine.begin() as conn:
        conn.execute(text(f'DROP TABLE IF EXISTS "{table}", "{table}_c" CASCADE'))


def count(store: PGVecStore) -> int:
    return store.count()


# ---------------------------------------------------------------------- the measured rows


async def test_k_beyond_the_range(store: PGVecStore, run: Runner) -> None:
    for k in (2**63, MAX_ROWS + 1, -1, True, "3", 2.0):
        with pytest.raises(InvalidInputError, match="k must be an integer"):
            await run(store, "similarity_search", "postgres", k)
    assert len(await run(store, "similarity_search", "postgres", MAX_ROWS)) == 30


async def test_a_text_too_large_for_full_text_search(store: PGVecStore, run: Runner) -> None:
    rng = np.random.default_rng(1)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = {"".join(rng.choice(letters, 14)) for _ in range(90_000)}  # > 1 MB of words
    huge = " ".join(sorted(words))
    before = count(store)
    with pytest.raises(InvalidInputError, match="full-text index"):
        await run(store, "add_texts", ["fine", huge])
    assert count(store) == before  # nothing was written
    # the same text fits a store without full-text search
    plain = PGVecStore(
        HashingEmbeddings(dimension=DIM),
        connection=store.engine,
        collection_name="plain",
        embedding_table=store._spec.embedding_table + "_p",
        collection_table=store._spec.collection_table + "_p",
    )
    assert len(await run(plain, "add_embeddings", [huge], [V])) == 1
    await run(plain, "delete_collection")
    with store.engine.begin() as conn:
        for name in (plain._spec.embedding_table, plain._spec.collection_table):
            conn.execute(text(f'DROP TABLE "{name}" CASCADE'))


async def test_keys_too_long_for_the_index(store: PGVecStore, run: Runner, engine: Engine) -> None:
    before = count(store)
    for length in (MAX_KEY_BYTES + 1, 3_000_000):
        with pytest.raises(InvalidInputError, match="at most 2,000 bytes"):
            await run(store, "add_texts", ["x"], ids=["i" * length])
    assert count(store) == before
    assert len(await run(store, "add_texts", ["x"], ids=["i" * MAX_KEY_BYTES])) == 1
    with pytest.raises(InvalidInputError, match="collection_name"):
        PGVecStore(HashingEmbeddings(), connection=engine, collection_name="c" * 1_000_000)
    with pytest.raises(InvalidInputError, match="at most 2,000 bytes"):
        await run(store, "get_by_ids", ["i" * 3_000_000])


async def test_a_filter_nested_too_deep(store: PGVecStore, run: Runner) -> None:
    deep: dict[str, Any] = {"n": 1}
    for _ in range(1_000):
        deep = {"$not": deep}
    with pytest.raises(FilterError, match=f"more than {MAX_DEPTH} levels"):
        await run(store, "similarity_search", "postgres", 3, deep)
    nested: dict[str, Any] = {"n": 1}
    for _ in range(MAX_DEPTH // 2):
        nested = {"$not": {"$not": nested}}
    assert len(await run(store, "similarity_search", "postgres", 3, nested)) == 1


def test_index_specs_out_of_range() -> None:
    for make in (lambda: HNSW(m=1), lambda: HNSW(ef_construction=2), lambda: IVFFlat(lists=0)):
        with pytest.raises(InvalidInputError):
            make()
    with pytest.raises(InvalidInputError, match="HNSW m must be an integer"):
        HNSW(m="16")  # type: ignore[arg-type]


async def test_in_with_a_hundred_thousand_values(store: PGVecStore, run: Runner) -> None:
    values = list(range(100_000))
    found = await run(store, "similarity_search", "postgres", 50, {"n": {"$in": values}})
    assert len(found) == 30
    assert await run(store, "count", {"n": {"$nin": values[5:]}}) == 5
    assert await run(store, "get", {"n": {"$in": [str(v) for v in values]}}) == []
    assert await run(store, "delete", filter={"n": {"$in": values[:10]}}) is True
    assert await run(store, "count") == 20


def test_refused_connections_say_what_they_are(pg_url: str, engine: Engine) -> None:
    url = make_url(pg_url)
    no_database = url.set(database=f"no_such_db_{uuid.uuid4().hex[:6]}")
    with pytest.raises(ConnectError, match="database does not exist") as refused:
        PGVecStore(HashingEmbeddings(), connection=no_database, share_engines=False).count()
    assert "reconnects" not in str(refused.value)
    no_role = url.set(username=f"no_such_role_{uuid.uuid4().hex[:6]}", password=None)
    with pytest.raises(ConnectError, match="role does not exist"):
        PGVecStore(HashingEmbeddings(), connection=no_role, share_engines=False).count()

    role = f"et_limited_{uuid.uuid4().hex[:6]}"
    with engine.begin() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 1'))
    try:
        limited = url.set(username=role, password=None)
        store = PGVecStore(HashingEmbeddings(), connection=limited, share_engines=False)
        # the role's one connection, held
        with (
            store.engine.connect(),
            pytest.raises(ConnectError, match="no connection slot left") as full,
        ):
            PGVecStore(HashingEmbeddings(), connection=limited, share_engines=False).count()
        assert "max_connections" in str(full.value) and "reconnects" not in str(full.value)
        store.close()
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP ROLE "{role}"'))


# ---------------------------------------------------------------------- the walk

V = [0.1] * DIM
BAD_FILTERS = [{"$bad": 1}, {"n": {"$gt": [1]}}, "not a filter", {"n": {"$in": 3}}]
#: method name -> calls that must raise the error given (all before any write)
WALK: dict[str, list[tuple[tuple[Any, ...], dict[str, Any], type[PGVecError]]]] = {
    "add_texts": [
        ((["a", 1],), {}, InvalidInputError),
        ((["a"], [1]), {}, InvalidInputError),
        ((["a"], [{"x": float("nan")}]), {}, InvalidInputError),
        ((["a\x00"],), {}, InvalidInputError),
        ((["a", "b"],), {"ids": ["same", "same"]}, InvalidInputError),
        ((["a"],), {"ids": [1]}, InvalidInputError),
        ((["a"],), {"batch_size": 0}, InvalidInputError),
    ],
    "add_embeddings": [
        ((["a"], [[0.1] * (DIM + 1)]), {}, InvalidInputError),
        ((["a"], [[float("inf")] * DIM]), {}, InvalidInputError),
        ((["a"], "vectors"), {}, InvalidInputError),
        ((["a", "b"], [V]), {}, InvalidInputError),
    ],
    "add_documents": [(([object()],), {}, InvalidInputError)],
    "similarity_search": [
        ((None,), {}, InvalidInputError),
        ((b"bytes",), {}, InvalidInputError),
        (("q", -1), {}, InvalidInputError),
        *((("q", 3, f), {}, FilterError) for f in BAD_FILTERS),
        (("q",), {"ef_search": 0}, InvalidInputError),
        (("q",), {"iterative_scan": "sideways"}, InvalidInputError),
        (("q",), {"exact_below": -1}, InvalidInputError),
        (("q",), {"search_settings": "fast"}, InvalidInputError),
    ],
    "similarity_search_by_vector": [
        (([0.1] * (DIM - 1),), {}, InvalidInputError),
        (([float("nan")] * DIM,), {}, InvalidInputError),
        (("text",), {}, InvalidInputError),
        (([],), {}, InvalidInputError),
    ],
    "similarity_search_with_score": [((42,), {}, InvalidInputError)],
    "similarity_search_with_relevance_scores": [(("q",), {"k": "4"}, InvalidInputError)],
    "max_marginal_relevance_search": [
        (("q",), {"lambda_mult": 2.0}, InvalidInputError),
        (("q",), {"lambda_mult": "half"}, InvalidInputError),
        (("q",), {"fetch_k": -3}, InvalidInputError),
        ((None,), {}, InvalidInputError),
    ],
    "max_marginal_relevance_search_by_vector": [((V,), {"k": 2**64}, InvalidInputError)],
    "hybrid_search": [
        (("q",), {"weights": (1.0,)}, InvalidInputError),
        (("q",), {"weights": (1.0, float("nan"))}, InvalidInputError),
        (("q",), {"rrf_k": -1}, InvalidInputError),
        (("q\x00",), {}, InvalidInputError),
        ((7,), {}, InvalidInputError),
    ],
    "full_text_search": [((["q"],), {}, InvalidInputError), (("q", 3, "x"), {}, FilterError)],
    "full_text_search_with_score": [((None,), {}, InvalidInputError)],
    "hybrid_search_with_score": [(("q",), {"fetch_k": -1}, InvalidInputError)],
    "max_marginal_relevance_search_with_score_by_vector": [
        ((V,), {"lambda_mult": -0.5}, InvalidInputError)
    ],
    "get_by_ids": [(("one",), {}, InvalidInputError), (([1],), {}, InvalidInputError)],
    "get": [
        ((), {"limit": -1}, InvalidInputError),
        ((), {"offset": "2"}, InvalidInputError),
        (({"$or": []},), {}, FilterError),
    ],
    "count": [(({"n": {"$between": [1]}},), {}, FilterError)],
    "delete": [
        ((), {}, InvalidInputError),
        (("one",), {}, InvalidInputError),
        ((), {"filter": {"$not": 1}}, FilterError),
    ],
    "create_index": [
        (("hnsw",), {}, InvalidInputError),
        ((HNSW,), {}, InvalidInputError),
        ((HNSW(),), {"name": ""}, InvalidInputError),
        ((HNSW(),), {"maintenance_work_mem": "lots"}, InvalidInputError),
    ],
    "create_metadata_index": [(("n", "date"), {}, FilterError), (("", "number"), {}, FilterError)],
    "drop_index": [((1,), {}, InvalidInputError), (("x" * 100,), {}, InvalidInputError)],
    "explain": [((object(),), {}, InvalidInputError), (("q", 0), {}, InvalidInputError)],
    "grant": [(("",), {}, InvalidInputError), ((None,), {}, InvalidInputError)],
    # a record manager that is not one of this store's (langchain-core's in-memory one)
    "index": [
        (([], InMemoryRecordManager("walk")), {}, InvalidInputError),
        (([], None), {}, InvalidInputError),
        (([Document("a")], object()), {"cleanup": "bogus"}, InvalidInputError),
    ],
}
#: public methods that take no hostile input worth walking (or none at all)
UNWALKED = {
    "as_retriever",
    "transaction",  # no arguments; tests/integration/test_indexing.py covers its failures
    "close",
    "create_tables",
    "delete_collection",
    "from_documents",
    "from_embeddings",
    "from_texts",
    "list_indexes",
    "refresh",
    "search",
    "similarity_search_with_score_by_vector",
}


def public_methods() -> set[str]:
    names = set()
    for name, member in inspect.getmembers(PGVecStore):
        if name.startswith("_") or (name.startswith("a") and name[1:] in dir(PGVecStore)):
            continue
        if callable(member) and not isinstance(member, type):
            names.add(name)
    return names


def test_the_walk_covers_every_public_method() -> None:
    missing = public_methods() - set(WALK) - UNWALKED
    assert not missing, f"walk these too: {sorted(missing)}"


@pytest.mark.parametrize("method", sorted(WALK))
async def test_hostile_arguments_raise_the_right_error_and_write_nothing(
    store: PGVecStore, run: Runner, method: str
) -> None:
    before = count(store)
    for args, kwargs, expected in WALK[method]:
        with pytest.raises(expected) as raised:
            await run(store, method, *args, **kwargs)
        assert isinstance(raised.value, PGVecError), (method, args, kwargs)
        assert str(raised.value), (method, args, kwargs)
    assert count(store) == before


async def test_methods_on_a_store_without_tables(engine: Engine, run: Runner) -> None:
    """Reads find nothing, index calls say to add documents first."""
    table = f"et_none_{uuid.uuid4().hex[:6]}"
    empty = PGVecStore(
        HashingEmbeddings(dimension=DIM),
        connection=engine,
        embedding_table=table,
        collection_table=f"{table}_c",
    )
    assert await run(empty, "similarity_search", "q") == []
    assert await run(empty, "count") == 0
    assert await run(empty, "get_by_ids", ["a"]) == []
    assert await run(empty, "list_indexes") == []
    for method, args in (("create_index", (HNSW(),)), ("explain", ("q",)), ("grant", ("r",))):
        with pytest.raises(SchemaError, match="does not exist yet"):
            await run(empty, method, *args)


# ---------------------------------------------------------------------- an older pgvector


async def test_features_of_a_newer_pgvector_say_which_version(
    engine: Engine, collection_name: str, run: Runner, pgvector: tuple[int, ...]
) -> None:
    """On a server whose pgvector lacks halfvec (0.7) or iterative scans (0.8), asking
    for them is an ExtensionError naming the version; what needs them only by default
    (filtered searches) still returns its k rows, completed exactly."""
    if pgvector >= (0, 8):
        pytest.skip(f"pgvector {pgvector} has every feature the store uses")
    table = f"et_old_{uuid.uuid4().hex[:6]}"
    store = PGVecStore(
        HashingEmbeddings(dimension=DIM),
        connection=engine,
        collection_name=collection_name,
        embedding_table=table,
        collection_table=f"{table}_c",
    )
    try:
        await run(
            store,
            "add_texts",
            [f"doc {i}" for i in range(2_000)],
            [{"g": i % 20} for i in range(2_000)],
        )
        await run(store, "create_index", HNSW(m=8, ef_construction=32))
        with pytest.raises(ExtensionError, match=r"iterative scans need pgvector 0\.8\.0"):
            await run(
                store, "similarity_search", "doc", 10, {"g": 1}, iterative_scan="relaxed_order"
            )
        found = await run(store, "similarity_search", "doc", 10, {"g": 1}, exact_below=0)
        assert len(found) == 10 and {d.metadata["g"] for d in found} == {1}
        if pgvector < (0, 7):
            half = PGVecStore(
                HashingEmbeddings(dimension=DIM),
                connection=engine,
                collection_name=collection_name,
                embedding_table=f"{table}_h",
                collection_table=f"{table}_hc",
                vector_type="halfvec",
            )
            with pytest.raises(ExtensionError, match=r"halfvec needs pgvector 0\.7\.0"):
                await run(half, "add_texts", ["x"])
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP TABLE IF EXISTS "{table}", "{table}_c" CASCADE'))


# ---------------------------------------------------------------------- the constructor


@pytest.mark.parametrize(
    "kwargs",
    [
        {"distance_strategy": "manhattan"},
        {"embedding_length": "384"},
        {"embedding_length": 0},
        {"embedding_length": 20_000},
        {"statement_timeout": 0},
        {"statement_timeout": -1.5},
        {"statement_timeout": "2s"},
        {"statement_timeout": float("nan")},
        {"connection": "not a url at all ::"},
        {"connection": "mysql://user@host/db"},
        {"connection": 42},
        {"collection_name": ""},
    ],
    ids=lambda kwargs: ",".join(f"{k}={v!r}" for k, v in kwargs.items()),
)
def test_bad_constructor_arguments(kwargs: dict[str, Any], engine: Engine) -> None:
    kwargs.setdefault("connection", engine)
    with pytest.raises(InvalidInputError):
        PGVecStore(HashingEmbeddings(dimension=DIM), **kwargs)


def test_an_engine_of_another_driver(tmp_path: Any) -> None:
    from sqlalchemy import create_engine

    other = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(InvalidInputError, match="psycopg 3"):
        PGVecStore(HashingEmbeddings(), connection=other)
    other.dispose()


async def test_nothing_to_search_still_checks_the_filter(engine: Engine, run: Runner) -> None:
    table = f"et_empty_{uuid.uuid4().hex[:6]}"
    empty = PGVecStore(
        HashingEmbeddings(dimension=DIM),
        connection=engine,
        embedding_table=table,
        collection_table=f"{table}_c",
        full_text=True,
    )
    for method, args in (
        ("similarity_search", ("q", 4, {"$bad": 1})),
        ("max_marginal_relevance_search", ("q", 4, 20, 0.5, {"n": {"$gt": []}})),
        ("hybrid_search", ("q", 4, {"$or": []})),
        ("count", ({"$not": 3},)),
        ("get", ({"n": {"$in": 1}},)),
    ):
        with pytest.raises(FilterError):
            await run(empty, method, *args)


async def test_hybrid_arguments_are_checked_before_the_query_is_embedded(
    store: PGVecStore, run: Runner
) -> None:
    calls = []
    embed = store._embeddings.embed_query

    def counting(text: str) -> list[float]:
        calls.append(text)
        return embed(text)

    store._embeddings.embed_query = counting  # type: ignore[method-assign]
    store._embeddings.aembed_query = None  # type: ignore[method-assign,assignment]
    for kwargs in ({"weights": (1.0,)}, {"rrf_k": -1}, {"fetch_k": "many"}, {"k": -2}):
        with pytest.raises(InvalidInputError):
            await run(store, "hybrid_search", "postgres", **kwargs)
    assert calls == []


def test_closing_a_store_twice_releases_its_engines_once(pg_url: str) -> None:
    first = PGVecStore(HashingEmbeddings(), connection=pg_url, embedding_table="et_twice")
    second = PGVecStore(HashingEmbeddings(), connection=pg_url, embedding_table="et_twice")
    assert first.engine is second.engine
    first.close()
    first.close()  # no second release: the other store's pools stay open
    assert second._engines._users == 1
    second.close()
    assert second._engines._users == 0
