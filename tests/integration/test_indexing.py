"""LangChain's indexing API on PGVecStore, PGVecRecordManager, and store transactions, on
a real PostgreSQL + pgvector, sync and async.

- ``index()`` and ``aindex()`` in every cleanup mode, with langchain-core's
  InMemoryRecordManager and with ours (each call its own transaction, and through
  ``store.index()``, one transaction), re-run over unchanged, changed, shrunk and
  duplicated sources: after every run, the same IndexingResult and the same documents
  and records as langchain-core's own in-memory store and record manager given the same
  sources (the reference), and records that name exactly the store's documents;
- PGVecRecordManager's methods, their checks, the server's clock, schema options;
- ``store.transaction()``: one commit at the end; nothing on a rollback (the store's
  caches and statistics bookkeeping included); reads and searches inside see its writes
  (search settings do not outlive the search); other threads and tasks keep their own
  transactions; nesting; a call that failed inside; what cannot run inside;
- faults: an indexing run whose backend is terminated midway, or whose source raises
  midway, leaves the records and the vectors as they were, and agreeing.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings
from langchain_core.indexing import InMemoryRecordManager, aindex, index
from langchain_core.vectorstores import InMemoryVectorStore
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.pool import NullPool
from support.twins import Runner

from langchain_pgvec import (
    HNSW,
    ConnectionLostError,
    DatabaseError,
    InvalidInputError,
    PGVecError,
    PGVecRecordManager,
    PGVecStore,
    SchemaError,
)

DIM = 8
EMB, COL, REC = "ix_emb_8", "ix_col_8", "ix_record"
KEYS = {"key_encoder": "sha256"}  # langchain-core warns about its default, sha1


@pytest.fixture
def make_store(engine: Any, collection_name: str) -> Iterator[Any]:
    made: list[PGVecStore] = []

    def factory(**kwargs: Any) -> PGVecStore:
        kwargs.setdefault("connection", engine)
        kwargs.setdefault("collection_name", collection_name)
        kwargs.setdefault("embedding_table", EMB)
        kwargs.setdefault("collection_table", COL)
        embeddings = kwargs.pop("embeddings", None) or DeterministicFakeEmbedding(size=DIM)
        store = PGVecStore(embeddings, **kwargs)
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


@pytest.fixture
def records(store: PGVecStore, collection_name: str) -> PGVecRecordManager:
    manager = PGVecRecordManager(f"ns/{collection_name}", store=store, table=REC)
    manager.create_schema()
    return manager


def doc(content: str, source: str) -> Document:
    return Document(page_content=content, metadata={"source": source})


def contents(store: PGVecStore) -> dict[str, tuple[str, dict[str, Any]]]:
    return {d.id or "": (d.page_content, d.metadata) for d in store.get()}


def committed_ids(engine: Engine, collection: str) -> set[str]:
    """The collection's ids as another connection sees them (what is committed)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                f'SELECT e.id FROM "{EMB}" e JOIN "{COL}" c ON c.id = e.collection_id '
                "WHERE c.name = :name"
            ),
            {"name": collection},
        )
        return set(rows.scalars())


def committed_keys(engine: Engine, namespace: str) -> set[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(f'SELECT key FROM "{REC}" WHERE namespace = :ns'), {"ns": namespace}
        )
        return set(rows.scalars())


@contextlib.asynccontextmanager
async def transaction(store: PGVecStore, mode: str) -> AsyncIterator[Any]:
    """``store.transaction()`` or ``store.atransaction()``, per the test's mode."""
    if mode == "sync":
        with store.transaction() as conn:
            yield conn
    else:
        async with store.atransaction() as conn:
            yield conn


# ---------------------------------------------------------------------- the indexing API

A1, A2 = doc("apples are red", "a"), doc("apricots are orange", "a")
B1, B2 = doc("bananas are yellow", "b"), doc("blueberries are blue", "b")
A1_CHANGED, C1 = doc("apples are green", "a"), doc("cherries are dark red", "c")
#: (what changed, the sources of the run, extra keywords)
RUNS: list[tuple[str, list[Document], dict[str, Any]]] = [
    ("first", [A1, A2, B1, B2], {}),
    ("unchanged", [A1, A2, B1, B2], {}),
    ("changed, b removed, c added", [A1_CHANGED, A2, C1], {}),
    ("a shrunk", [A2, C1], {}),
    ("duplicates", [A2, A2, C1, C1], {}),
    ("forced", [A2, C1], {"force_update": True}),
]
CLEANUPS = [None, "incremental", "full", "scoped_full"]
#: the third run's deletions, so that the reference is not trusted blindly
DELETED_BY_THE_CHANGE = {None: 0, "incremental": 1, "full": 3, "scoped_full": 1}


async def lc_index(mode: str, docs: list[Document], manager: Any, store: Any, **kw: Any) -> Any:
    if mode == "sync":
        return index(docs, manager, store, **kw)
    return await aindex(docs, manager, store, **kw)


@pytest.mark.parametrize("cleanup", CLEANUPS)
@pytest.mark.parametrize("manager_kind", ["in-memory", "pgvec", "pgvec, one transaction"])
async def test_indexing_matches_langchains_reference_in_every_cleanup_mode(
    store: PGVecStore, run: Runner, collection_name: str, cleanup: str | None, manager_kind: str
) -> None:
    namespace = f"ns/{collection_name}"
    reference = InMemoryVectorStore(DeterministicFakeEmbedding(size=DIM))
    reference_records = InMemoryRecordManager(namespace)
    manager: Any
    if manager_kind == "in-memory":
        manager = InMemoryRecordManager(namespace)
    else:
        manager = PGVecRecordManager(namespace, store=store, table=REC)
        await run(manager, "create_schema")
    options: dict[str, Any] = {"cleanup": cleanup, "batch_size": 2, **KEYS}
    if cleanup in ("incremental", "scoped_full"):
        options["source_id_key"] = "source"
    for number, (what, docs, extra) in enumerate(RUNS):
        kwargs = {**options, **extra}
        expected = index(docs, reference_records, reference, **kwargs)
        if manager_kind == "pgvec, one transaction":
            result = await run(store, "index", docs, manager, **kwargs)
        else:
            result = await lc_index(run.mode, docs, manager, store, **kwargs)
        assert result == expected, what
        if number == 2:
            assert result["num_deleted"] == DELETED_BY_THE_CHANGE[cleanup]
        kept = {i: (d["text"], d["metadata"]) for i, d in reference.store.items()}
        assert contents(store) == kept, what
        keys = set(await run(manager, "list_keys"))
        assert keys == set(reference_records.list_keys()) == set(kept), what


async def test_index_refuses_bad_arguments_before_writing_anything(
    store: PGVecStore, records: PGVecRecordManager, make_store: Any, run: Runner, engine: Engine
) -> None:
    other = PGVecRecordManager(records.namespace, store=make_store(), table=REC)
    source = [A1, B1]
    cases: list[tuple[Any, Any, dict[str, Any], str]] = [
        (source, InMemoryRecordManager("x"), {}, "PGVecRecordManager of this store"),
        (source, other, {}, "PGVecRecordManager of this store"),
        (source, records, {"clean_up": "full"}, "no keyword 'clean_up'"),
        (source, records, {"cleanup": "everything"}, "cleanup must be"),
        (source, records, {"cleanup": "incremental"}, "needs source_id_key"),
        (source, records, {"cleanup": "scoped_full"}, "needs source_id_key"),
        (source, records, {"batch_size": 0}, "batch_size"),
        (source, records, {"cleanup_batch_size": "10"}, "cleanup_batch_size"),
        (42, records, {}, "docs_source must be"),
        ("a text", records, {}, "docs_source must be"),
    ]
    for docs, manager, kwargs, match in cases:
        with pytest.raises(InvalidInputError, match=match):
            await run(store, "index", docs, manager, **{**KEYS, **kwargs})
    assert committed_ids(engine, store.collection_name) == set()
    assert committed_keys(engine, records.namespace) == set()


async def test_sync_index_points_an_async_source_to_aindex(
    store: PGVecStore, records: PGVecRecordManager
) -> None:
    async def source() -> AsyncIterator[Document]:
        yield A1

    with pytest.raises(InvalidInputError, match="call aindex"):
        store.index(source(), records, **KEYS)
    result = await store.aindex(source(), records, **KEYS)
    assert result["num_added"] == 1


async def test_index_without_the_record_table_says_to_create_it(
    store: PGVecStore, run: Runner, engine: Engine, collection_name: str
) -> None:
    manager = PGVecRecordManager("ns", store=store, table=f"ix_missing_{uuid.uuid4().hex[:8]}")
    with pytest.raises(SchemaError, match=r"does not exist: call the record manager's create_"):
        await run(store, "index", [A1, B1], manager, **KEYS)
    assert committed_ids(engine, collection_name) == set()


async def test_a_document_without_a_source_fails_the_run_and_commits_nothing(
    store: PGVecStore, records: PGVecRecordManager, run: Runner, engine: Engine
) -> None:
    kwargs = {"cleanup": "incremental", "source_id_key": "source", "batch_size": 1, **KEYS}
    await run(store, "index", [A1], records, **kwargs)
    before = committed_ids(engine, store.collection_name)
    with pytest.raises(ValueError, match="Source IDs are required"):
        await run(
            store,
            "index",
            [B1, Document(page_content="orphan", metadata={"source": None})],
            records,
            **kwargs,
        )
    assert committed_ids(engine, store.collection_name) == before
    assert committed_keys(engine, records.namespace) == before


# ---------------------------------------------------------------------- the record manager


async def test_records_are_updated_listed_and_deleted(
    records: PGVecRecordManager, store: PGVecStore, run: Runner
) -> None:
    assert await run(records, "exists", []) == []
    await run(records, "update", ["a", "b", "c"], group_ids=["g1", "g2", None])
    assert await run(records, "exists", ["a", "x", "b", "a"]) == [True, False, True, True]
    middle = await run(records, "get_time")
    await run(records, "update", ["b"], group_ids=["g2"], time_at_least=middle)
    assert set(await run(records, "list_keys")) == {"a", "b", "c"}
    assert set(await run(records, "list_keys", before=middle)) == {"a", "c"}
    assert await run(records, "list_keys", after=middle) == ["b"]
    assert await run(records, "list_keys", group_ids=["g1", "g2"], before=middle) == ["a"]
    assert set(await run(records, "list_keys", group_ids=[])) == {"a", "b", "c"}
    assert len(await run(records, "list_keys", limit=2)) == 2
    assert len(await run(records, "list_keys", limit=0)) == 3
    elsewhere = PGVecRecordManager(records.namespace + "/other", store=store, table=REC)
    assert await run(elsewhere, "list_keys") == []
    assert await run(elsewhere, "exists", ["a"]) == [False]
    await run(elsewhere, "delete_keys", ["a"])  # another namespace's: untouched
    await run(records, "delete_keys", ["a", "never"])
    assert await run(records, "exists", ["a", "b"]) == [False, True]
    await run(records, "delete_keys", [])


async def test_the_first_indexing_run_in_a_database_without_the_extension(
    engine: Engine, pg_url: str, run: Runner
) -> None:
    """The run's first call creates the vector extension and the tables inside its one
    transaction: the block must not need the vector type before that."""
    name = f"ix_fresh_{uuid.uuid4().hex[:6]}"
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(pg_url).set(database=name).render_as_string(False)
    fresh = PGVecStore(DeterministicFakeEmbedding(size=DIM), connection=url, collection_name="c")
    try:
        records = PGVecRecordManager("ns", store=fresh)
        await run(records, "create_schema")
        docs = [doc("one", "a"), doc("two", "b")]
        result = await run(fresh, "index", docs, records, cleanup="full", key_encoder="sha256")
        assert (result["num_added"], result["num_deleted"]) == (2, 0)
        assert {d.page_content for d in await run(fresh, "similarity_search", "one", k=2)} == {
            "one",
            "two",
        }
    finally:
        fresh.close()
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))


async def test_listing_is_never_a_prepared_statement(
    records: PGVecRecordManager, store: PGVecStore, run: Runner
) -> None:
    """psycopg prepares a statement from its fifth run on a connection; a prepared
    listing soon runs one generic plan for every ``before`` and group, which scanned
    every older record per batch of an indexing run. Listings run unprepared."""
    await run(records, "update", ["a", "b"], group_ids=["g1", "g2"])
    listing = "SELECT statement FROM pg_prepared_statements"
    async with transaction(store, run.mode) as conn:
        for _ in range(8):
            assert await run(records, "list_keys", group_ids=["g1"], before=1e12) == ["a"]
        if run.mode == "sync":
            prepared = list(conn.execute(text(listing)).scalars())
        else:
            prepared = list((await conn.execute(text(listing))).scalars())
    assert not [s for s in prepared if REC in s], prepared


async def test_get_time_is_the_servers_clock_and_updates_stamp_with_it(
    records: PGVecRecordManager, run: Runner, engine: Engine
) -> None:
    def server_now() -> float:
        with engine.connect() as conn:
            return float(
                conn.execute(text("SELECT extract(epoch FROM clock_timestamp())")).scalar_one()
            )

    low = server_now()
    first = await run(records, "get_time")
    await run(records, "update", ["k"], time_at_least=first)
    second = await run(records, "get_time")
    high = server_now()
    assert low <= first < second <= high
    with engine.connect() as conn:
        stamped = conn.execute(
            text(f"SELECT updated_at FROM \"{REC}\" WHERE namespace = :ns AND key = 'k'"),
            {"ns": records.namespace},
        ).scalar_one()
    assert first <= stamped <= second
    assert await run(records, "list_keys", before=stamped) == []
    assert await run(records, "list_keys", after=stamped) == []


async def test_a_clock_behind_time_at_least_writes_nothing(
    records: PGVecRecordManager, run: Runner
) -> None:
    future = await run(records, "get_time") + 3600
    with pytest.raises(InvalidInputError, match="clock reads earlier than time_at_least"):
        await run(records, "update", ["a", "b"], time_at_least=future)
    assert await run(records, "exists", ["a", "b"]) == [False, False]


async def test_record_manager_input_is_checked_before_any_statement(
    records: PGVecRecordManager, run: Runner
) -> None:
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
        ("update", ("ab",), {}),
        ("update", (["a"],), {"group_ids": ["g", "h"]}),
        ("update", (["a", "b\x00"],), {}),
        ("update", (["a"],), {"time_at_least": "yesterday"}),
        ("exists", ([1],), {}),
        ("delete_keys", ("a",), {}),
        ("list_keys", (), {"limit": -1}),
        ("list_keys", (), {"group_ids": "g"}),
        ("list_keys", (), {"before": float("nan")}),
    ]
    for method, args, kwargs in calls:
        with pytest.raises(InvalidInputError):
            await run(records, method, *args, **kwargs)
    assert await run(records, "list_keys") == []


async def test_record_manager_arguments_are_checked(store: PGVecStore) -> None:
    with pytest.raises(InvalidInputError, match="store must be a PGVecStore"):
        PGVecRecordManager("ns", store=InMemoryVectorStore(DeterministicFakeEmbedding(size=2)))  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="namespace"):
        PGVecRecordManager("", store=store)
    with pytest.raises(SchemaError, match="cannot be the store's table"):
        PGVecRecordManager("ns", store=store, table=EMB)
    manager = PGVecRecordManager("ns", store=store)
    assert manager.store is store and manager.table.name == "pgvec_record"
    assert "PGVecRecordManager(namespace='ns', table='pgvec_record'" in repr(manager)


async def test_the_record_table_follows_the_stores_schema(
    make_store: Any, run: Runner, engine: Engine, collection_name: str
) -> None:
    schema = f"ix_schema_{run.mode}"
    store = make_store(schema=schema)
    manager = PGVecRecordManager("ns/" + collection_name, store=store, table="Records Of Mine")
    await run(manager, "create_schema")
    await run(manager, "create_schema")  # again: nothing to do
    await run(store, "index", [A1, B1], manager, **KEYS)
    with engine.connect() as conn:
        keys = conn.execute(
            text(f'SELECT key FROM "{schema}"."Records Of Mine" WHERE namespace = :ns'),
            {"ns": manager.namespace},
        )
        assert set(keys.scalars()) == {d.id for d in store.get()}
        indexes = conn.execute(
            text("SELECT indexname FROM pg_indexes WHERE schemaname = :s AND tablename = :t"),
            {"s": schema, "t": "Records Of Mine"},
        )
        assert set(indexes.scalars()) == {
            "Records Of Mine_pkey",
            "Records Of Mine_updated_at",
            "Records Of Mine_group_id",
        }


async def test_every_record_method_without_the_table_says_to_create_it(
    store: PGVecStore, run: Runner
) -> None:
    manager = PGVecRecordManager("ns", store=store, table=f"ix_absent_{uuid.uuid4().hex[:8]}")
    calls: list[tuple[str, tuple[Any, ...]]] = [
        ("update", (["a"],)),
        ("exists", (["a"],)),
        ("list_keys", ()),
        ("delete_keys", (["a"],)),
    ]
    for method, args in calls:
        with pytest.raises(SchemaError, match="create_schema"):
            await run(manager, method, *args)


# ---------------------------------------------------------------------- transactions


async def test_a_transaction_commits_once_at_its_end(
    store: PGVecStore, records: PGVecRecordManager, run: Runner, engine: Engine
) -> None:
    await run(store, "add_texts", ["old"], ids=["old"])
    async with transaction(store, run.mode):
        await run(store, "add_texts", ["new"], ids=["new"])
        await run(store, "delete", ["old"])
        await run(records, "update", ["new"])
        assert committed_ids(engine, store.collection_name) == {"old"}
        assert committed_keys(engine, records.namespace) == set()
    assert committed_ids(engine, store.collection_name) == {"new"}
    assert committed_keys(engine, records.namespace) == {"new"}


async def test_a_transaction_that_raises_commits_nothing_and_the_store_forgets_it(
    make_store: Any, run: Runner, engine: Engine, collection_name: str
) -> None:
    store = make_store(collection_name=collection_name + "_fresh")  # created inside
    changed = store._changed
    with pytest.raises(RuntimeError, match="stop"):
        async with transaction(store, run.mode):
            await run(store, "add_texts", ["a", "b"], ids=["a", "b"])
            assert await run(store, "count") == 2
            raise RuntimeError("stop")
    assert committed_ids(engine, store.collection_name) == set()
    assert store._changed == changed  # rows of a rollback never count towards ANALYZE
    assert store._state is None
    assert await run(store, "count") == 0
    assert await run(store, "similarity_search", "a", k=2) == []
    await run(store, "add_texts", ["c"], ids=["c"])  # the collection is made again
    assert committed_ids(engine, store.collection_name) == {"c"}


async def test_rows_are_counted_towards_statistics_once_committed(
    store: PGVecStore, run: Runner
) -> None:
    await run(store, "add_texts", ["first"])
    changed = store._changed
    async with transaction(store, run.mode):
        await run(store, "add_texts", ["a", "b", "c"])
        await run(store, "delete", [(await run(store, "get", limit=1))[0].id])
        assert store._changed == changed
    assert store._changed == changed + 4


async def test_reads_and_searches_inside_see_the_transactions_writes(
    store: PGVecStore, run: Runner, engine: Engine
) -> None:
    await run(store, "add_texts", ["committed before"], [{"n": 0}], ids=["before"])
    vector = DeterministicFakeEmbedding(size=DIM).embed_query("written inside")
    async with transaction(store, run.mode):
        await run(store, "add_texts", ["written inside"], [{"n": 1}], ids=["inside"])
        assert [d.id for d in await run(store, "get_by_ids", ["inside"])] == ["inside"]
        assert await run(store, "count", {"n": 1}) == 1
        assert [d.id for d in await run(store, "get", {"n": 1})] == ["inside"]
        found = await run(store, "similarity_search_by_vector", vector, k=1)
        assert [d.id for d in found] == ["inside"]
        chosen = await run(store, "max_marginal_relevance_search_by_vector", vector, k=2)
        assert {d.id for d in chosen} == {"inside", "before"}
        assert "Scan" in await run(store, "explain", vector, k=1)
        assert committed_ids(engine, store.collection_name) == {"before"}


async def test_a_searchs_settings_end_with_it_inside_a_transaction(
    store: PGVecStore, run: Runner
) -> None:
    await run(store, "add_texts", [f"text {i}" for i in range(20)])
    shown = text("SELECT current_setting('statement_timeout')")

    async def timeout(conn: Any) -> Any:
        result = conn.execute(shown) if run.mode == "sync" else await conn.execute(shown)
        return result.scalar()

    async with transaction(store, run.mode) as conn:
        before = await timeout(conn)
        found = await run(store, "similarity_search", "text 3", k=2, statement_timeout_ms=12345)
        assert len(found) == 2
        assert await timeout(conn) == before != "12345ms"


async def test_other_threads_and_tasks_keep_their_own_transactions(
    store: PGVecStore, run: Runner, engine: Engine
) -> None:
    go = asyncio.Event()

    async def outside() -> None:  # a task made before the block: its context has no pin
        await go.wait()
        await store.aadd_texts(["from a task"], ids=["task"])

    # the collection exists: a writer outside would wait for a transaction creating it
    await run(store, "add_texts", ["before"], ids=["before"])
    task = asyncio.ensure_future(outside())
    async with transaction(store, run.mode):
        await run(store, "add_texts", ["inside"], ids=["inside"])
        if run.mode == "sync":
            thread = threading.Thread(
                target=store.add_texts, args=(["from a thread"],), kwargs={"ids": ["thread"]}
            )
            thread.start()
            thread.join()
            outsider = "thread"
        else:
            go.set()
            await task
            outsider = "task"
        assert committed_ids(engine, store.collection_name) == {"before", outsider}
    assert committed_ids(engine, store.collection_name) == {"before", outsider, "inside"}
    go.set()
    await task


async def test_a_task_started_inside_an_async_transaction_joins_it(
    store: PGVecStore, engine: Engine
) -> None:
    async with store.atransaction():
        await asyncio.gather(
            store.aadd_texts(["one"], ids=["one"]),
            store.aadd_texts(["two"], ids=["two"]),
            asyncio.ensure_future(store.aadd_texts(["three"], ids=["three"])),
        )
        assert committed_ids(engine, store.collection_name) == set()
    assert committed_ids(engine, store.collection_name) == {"one", "two", "three"}


async def test_statements_of_your_own_commit_and_roll_back_with_the_block(
    store: PGVecStore, run: Runner, engine: Engine
) -> None:
    notes = f"ix_notes_{run.mode}"
    with engine.begin() as conn:
        conn.execute(text(f'CREATE TABLE IF NOT EXISTS "{notes}" (id text)'))
        conn.execute(text(f'TRUNCATE "{notes}"'))
    insert = text(f'INSERT INTO "{notes}" VALUES (:id)')

    async def note(conn: Any, value: str) -> None:
        if run.mode == "sync":
            conn.execute(insert, {"id": value})
        else:
            await conn.execute(insert, {"id": value})

    async with transaction(store, run.mode) as conn:
        await note(conn, "kept")
        await run(store, "add_texts", ["kept"], ids=["kept"])
    with contextlib.suppress(RuntimeError):
        async with transaction(store, run.mode) as conn:
            await note(conn, "dropped")
            await run(store, "add_texts", ["dropped"], ids=["dropped"])
            raise RuntimeError
    with engine.connect() as conn:
        assert set(conn.execute(text(f'SELECT id FROM "{notes}"')).scalars()) == {"kept"}
    assert committed_ids(engine, store.collection_name) == {"kept"}


async def test_a_nested_block_joins_the_outer_one(
    store: PGVecStore, run: Runner, engine: Engine
) -> None:
    async with transaction(store, run.mode):
        await run(store, "add_texts", ["outer"], ids=["outer"])
        async with transaction(store, run.mode):
            await run(store, "add_texts", ["inner"], ids=["inner"])
        assert committed_ids(engine, store.collection_name) == set()
    assert committed_ids(engine, store.collection_name) == {"outer", "inner"}
    with pytest.raises(DatabaseError, match="was rolled back"):
        async with transaction(store, run.mode):
            await run(store, "add_texts", ["second outer"], ids=["second"])
            with contextlib.suppress(RuntimeError):
                async with transaction(store, run.mode):
                    raise RuntimeError("inner failure, caught")
    assert committed_ids(engine, store.collection_name) == {"outer", "inner"}


class FailingEmbeddings(Embeddings):
    """Fails on the text "poison"."""

    def __init__(self) -> None:
        self.inner = DeterministicFakeEmbedding(size=DIM)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if "poison" in texts:
            raise RuntimeError("the embedding model failed")
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


async def test_a_failed_call_inside_leaves_the_transaction_to_roll_back(
    make_store: Any, run: Runner, engine: Engine
) -> None:
    store = make_store(embeddings=FailingEmbeddings())
    with pytest.raises(DatabaseError, match="was rolled back"):
        async with transaction(store, run.mode):
            await run(store, "add_texts", ["before"], ids=["before"])
            with pytest.raises(RuntimeError, match="embedding model failed"):
                # the first batch is written, the second's embedding fails
                await run(store, "add_texts", ["fine", "poison"], batch_size=1)
            with pytest.raises(DatabaseError, match="failed"):
                await run(store, "count")
    assert committed_ids(engine, store.collection_name) == set()
    assert await run(store, "count") == 0


async def test_what_cannot_run_inside_a_transaction_is_refused_and_harmless(
    store: PGVecStore, run: Runner, engine: Engine
) -> None:
    await run(store, "add_texts", ["a"], ids=["a"])
    async with transaction(store, run.mode):
        await run(store, "add_texts", ["b"], ids=["b"])
        with pytest.raises(InvalidInputError, match=r"cannot run inside store\.transaction"):
            await run(store, "create_index", HNSW())
        with pytest.raises(InvalidInputError, match=r"cannot run inside store\.transaction"):
            await run(store, "drop_index", "whatever")
        with pytest.raises(InvalidInputError, match=r"cannot run inside store\.transaction"):
            await run(store, "create_metadata_index", "n", "number")
        with pytest.raises(InvalidInputError, match=r"call the (async|sync) methods"):
            if run.mode == "sync":
                await store.aadd_texts(["c"], ids=["c"])
            else:
                store.add_texts(["c"], ids=["c"])
        store.refresh()  # the next call reads the state: on the transaction's connection
        assert await run(store, "count") == 2
    assert committed_ids(engine, store.collection_name) == {"a", "b"}


async def test_a_deadlock_inside_a_transaction_fails_it_at_once_and_whole(
    store: PGVecStore, run: Runner, engine: Engine
) -> None:
    await run(store, "add_texts", ["a0", "b0"], ids=["A", "B"])
    table = f'"{EMB}"'
    other_holds_b, ours_waits = threading.Event(), threading.Event()

    def other() -> None:  # holds B, then wants A, which the transaction holds
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL deadlock_timeout = '20s'"))  # ours detects it
            conn.execute(text(f"UPDATE {table} SET content = 'b2' WHERE id = 'B'"))
            other_holds_b.set()
            assert ours_waits.wait(10)
            time.sleep(0.3)
            conn.execute(text(f"UPDATE {table} SET content = 'a2' WHERE id = 'A'"))

    thread = threading.Thread(target=other)
    thread.start()
    started = 0.0
    with pytest.raises(DatabaseError, match="deadlock"):
        async with transaction(store, run.mode):
            await run(store, "add_texts", ["a1"], ids=["A"])
            assert await asyncio.to_thread(other_holds_b.wait, 10)
            ours_waits.set()
            started = time.monotonic()
            await run(store, "add_texts", ["b1"], ids=["B"])  # waits for B: a cycle
    waited = time.monotonic() - started
    await asyncio.to_thread(thread.join)
    assert waited < 4  # one deadlock_timeout (1 s), not one per retry
    assert {d.page_content for d in await run(store, "get_by_ids", ["A", "B"])} == {"a2", "b2"}


# ---------------------------------------------------------------------- faults


def sources(count: int, version: str) -> list[Document]:
    return [doc(f"{version} document {i}", f"source {i % 7}") for i in range(count)]


@pytest.fixture
async def fault_store(pg_url: str, collection_name: str) -> AsyncIterator[tuple[Any, str]]:
    app = f"ix_fault_{uuid.uuid4().hex[:8]}"
    store = PGVecStore(
        DeterministicFakeEmbedding(size=DIM),
        connection=pg_url,
        collection_name=collection_name,
        embedding_table=EMB,
        collection_table=COL,
        engine_kwargs={"connect_args": {"application_name": app}},
        share_engines=False,
    )
    try:
        yield store, app
    finally:
        with contextlib.suppress(PGVecError):
            await store.adelete_collection()
        await store.aclose()


@pytest.fixture
def admin(pg_url: str) -> Iterator[Engine]:
    made = create_engine(pg_url, poolclass=NullPool)
    yield made
    made.dispose()


def pinned_backend(admin: Engine, app: str) -> int:
    """The backend of the store's transaction, idle in it while the source pauses."""
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        pids = conn.execute(
            text(
                "SELECT pid FROM pg_stat_activity WHERE application_name = :app "
                "AND state = 'idle in transaction'"
            ),
            {"app": app},
        ).scalars()
        (pid,) = list(pids)
        return int(pid)


def terminate(admin: Engine, pid: int) -> None:
    with admin.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()


@pytest.mark.parametrize("fault", ["backend terminated", "source raises"])
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_an_indexing_run_that_fails_midway_leaves_records_and_vectors_as_they_were(
    fault_store: tuple[PGVecStore, str], admin: Engine, mode: str, fault: str
) -> None:
    store, app = fault_store
    records = PGVecRecordManager(f"ns/{store.collection_name}", store=store, table=REC)
    records.create_schema()
    kwargs = {"cleanup": "full", "batch_size": 10, **KEYS}
    first, second = sources(40, "v1"), sources(25, "v1")[:20] + sources(45, "v2")
    await Runner(mode)(store, "index", first, records, **kwargs)
    vectors = committed_ids(admin, store.collection_name)
    keys = committed_keys(admin, records.namespace)
    assert len(vectors) == 40 and keys == vectors
    before = contents(store)

    pause_at = 37  # three batches of the second run written, one more read
    reached, resume = threading.Event(), threading.Event()
    seen_midway: list[set[str]] = []

    def at_the_pause() -> None:
        reached.set()
        if fault == "source raises":
            raise RuntimeError("the source failed")
        assert resume.wait(30)

    def source() -> Iterator[Document]:
        for number, document in enumerate(second):
            if number == pause_at:
                at_the_pause()
            yield document

    async def asource() -> AsyncIterator[Document]:
        for number, document in enumerate(second):
            if number == pause_at:
                await asyncio.to_thread(at_the_pause)
            yield document

    failures: list[BaseException] = []

    def index_in_a_thread() -> None:
        try:
            store.index(source(), records, **kwargs)
        except BaseException as exc:
            failures.append(exc)

    if mode == "sync":
        runner = threading.Thread(target=index_in_a_thread)
        runner.start()
        done: Any = asyncio.to_thread(runner.join)
    else:
        done = asyncio.ensure_future(store.aindex(asource(), records, **kwargs))
    assert await asyncio.to_thread(reached.wait, 30)
    if fault == "backend terminated":
        seen_midway.append(committed_ids(admin, store.collection_name))
        terminate(admin, pinned_backend(admin, app))
        resume.set()
    try:
        await done
    except BaseException as exc:
        failures.append(exc)
    (failure,) = failures
    expected = ConnectionLostError if fault == "backend terminated" else RuntimeError
    assert isinstance(failure, expected), repr(failure)

    assert seen_midway in ([], [vectors])  # readers never saw half a run
    assert committed_ids(admin, store.collection_name) == vectors
    assert committed_keys(admin, records.namespace) == keys == vectors
    assert contents(store) == before

    result = await Runner(mode)(store, "index", second, records, **kwargs)  # the store heals
    assert result["num_added"] == 45 and result["num_skipped"] == 20
    assert result["num_deleted"] == 20
    final = committed_ids(admin, store.collection_name)
    assert len(final) == 65 and committed_keys(admin, records.namespace) == final
