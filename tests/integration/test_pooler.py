"""The store behind a real PgBouncer, in transaction and in session pooling: every
operation works, sync and async, and no search ever returns another collection's rows.

In transaction pooling, clients take turns on a few server connections. psycopg names
the statements it prepares per client connection (``_pg3_0``, ...), so a prepared
statement of one client, run by another on a shared server connection, returns the
first client's rows or fails; the store detects the pooler and prepares nothing.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from support.modes import concurrent_builds_only
from support.pgbouncer import PgBouncer, find_pgbouncer, start_pgbouncer
from support.twins import Runner

from langchain_pgvec import HNSW, DatabaseError, HashingEmbeddings, InvalidInputError, PGVecStore
from langchain_pgvec._driver import POOLED, PREPARE_OFF, proxied

DIM = 32
SEARCHES = 60  # per worker: well past psycopg's prepare threshold (5)


@pytest.fixture(scope="module", params=["transaction", "session"])
def bouncer(request: pytest.FixtureRequest, pg_url: str) -> Iterator[PgBouncer]:
    """PgBouncer in front of the test server, in each pool mode; transaction pooling
    with two server connections, so that clients really share them."""
    if find_pgbouncer() is None and os.environ.get("PGVEC_REQUIRE_PGBOUNCER"):
        pytest.fail("pgbouncer is not installed, and PGVEC_REQUIRE_PGBOUNCER is set")
    size = 2 if request.param == "transaction" else 50
    with start_pgbouncer(pg_url, request.param, default_pool_size=size) as running:
        yield running


def make(url: str, table: str, collection: str, **kwargs: Any) -> PGVecStore:
    return PGVecStore(
        HashingEmbeddings(dimension=DIM),
        connection=url,
        collection_name=collection,
        embedding_table=table,
        collection_table=f"{table}_c",
        **kwargs,
    )


def drop(engine: Engine, table: str) -> None:
    with engine.begin() as conn:
        for name in (table, f"{table}_c"):
            conn.execute(text(f'DROP TABLE IF EXISTS "{name}" CASCADE'))


def texts(collection: str, n: int) -> tuple[list[str], list[dict[str, Any]]]:
    words = ["postgres", "vectors", "pooler", "index", "search", "tenant"]
    docs = [f"{collection} {words[i % 6]} {words[(i * 7) % 6]} number {i}" for i in range(n)]
    return docs, [{"owner": collection, "n": i % 10} for i in range(n)]


# ---------------------------------------------------------------------- unit: detection


@pytest.mark.parametrize(
    ("host", "port", "server", "expected"),
    [
        ("/tmp/pg", 5432, ("5432", None), False),  # Unix socket, straight to the server
        ("127.0.0.1", 5432, ("5432", 5432), False),  # TCP, straight to the server
        ("127.0.0.1", 6432, ("5432", None), True),  # a pooler reaching it over a socket
        ("127.0.0.1", 6432, ("5432", 5432), True),  # a pooler on another port
        ("/var/run/pgbouncer", 6432, ("5432", None), True),  # a pooler's own socket
        ("/tmp/pg", 5432, ("5432", 5432), True),  # socket to us, TCP to the server
        ("db.example", 5432, None, False),
    ],
)
def test_a_pooler_is_told_by_the_endpoints(
    host: str, port: int, server: tuple[str, int | None] | None, expected: bool
) -> None:
    assert proxied(host, port, server) is expected


def prepare_thresholds(store: PGVecStore) -> set[Any]:
    with store.engine.connect() as conn:
        driver: Any = conn.connection.driver_connection
        return {driver.prepare_threshold, conn.connection.info.get(PREPARE_OFF)}


def test_a_direct_connection_keeps_prepared_statements(pg_url: str, engine: Engine) -> None:
    table = f"pb_{uuid.uuid4().hex[:6]}"
    store = make(pg_url, table, "direct", share_engines=False)
    try:
        assert prepare_thresholds(store) == {5, None}
        never = make(pg_url, table, "direct", prepared_statements=False, share_engines=False)
        assert prepare_thresholds(never) == {None, "prepared_statements=False"}
        never.close()
    finally:
        store.close()
        drop(engine, table)


# ---------------------------------------------------------------------- through the pooler


async def test_every_operation_through_the_pooler(
    bouncer: PgBouncer, run: Runner, engine: Engine
) -> None:
    table = f"pb_{uuid.uuid4().hex[:6]}"
    store = make(bouncer.url, table, "ops", full_text=True, share_engines=False)
    try:
        assert prepare_thresholds(store) == {None, POOLED}
        docs, metas = texts("ops", 400)
        ids = [f"o{i}" for i in range(400)]
        await run(store, "add_texts", docs, metas, ids=ids)  # COPY
        await run(store, "add_texts", docs, [{**m, "v": 2} for m in metas], ids=ids)  # staging
        for _ in range(8):  # past the prepare threshold
            assert len(await run(store, "similarity_search", "postgres vectors", 5)) == 5
            found = await run(store, "similarity_search", "pooler", 5, {"n": 3})
            assert len(found) == 5 and {d.metadata["n"] for d in found} == {3}
            assert len(await run(store, "max_marginal_relevance_search", "index", 3, 20)) == 3
            assert len(await run(store, "hybrid_search", "tenant search", 4)) == 4
            assert await run(store, "full_text_search", "postgres", 3)
            assert await run(store, "count", {"n": 1}) == 40
            assert len(await run(store, "get_by_ids", ["o1", "o2"])) == 2
        name = await run(store, "create_index", HNSW(m=8, ef_construction=32))
        assert name in await run(store, "explain", "postgres")
        assert len(await run(store, "similarity_search", "postgres", 10)) == 10
        assert [i.name for i in await run(store, "list_indexes") if i.is_vector] == [name]
        await run(store, "drop_index", name)
        await run(store, "delete", ["o1"])
        await run(store, "delete", filter={"n": 9})
        assert await run(store, "count") == 400 - 1 - 40  # o1 has n=1
        await run(store, "delete_collection")
        assert await run(store, "count") == 0
    finally:
        await run(store, "close")
        drop(engine, table)


def _worker(
    store: PGVecStore, collection: str, errors: list[BaseException], foreign: Counter[str]
) -> None:
    for i in range(SEARCHES):
        try:
            where = {"n": i % 10} if i % 2 else None
            for doc in store.similarity_search(f"{collection} postgres {i}", 4, where):
                if doc.metadata.get("owner") != collection:
                    foreign[collection] += 1
        except BaseException as exc:  # every failure is counted, not just PGVecErrors
            errors.append(exc)


def load_two_collections(url: str, table: str) -> dict[str, PGVecStore]:
    stores = {}
    for collection in ("alpha", "beta"):
        store = make(url, table, collection)
        docs, metas = texts(collection, 300)
        store.add_texts(docs, metas)
        stores[collection] = store
    return stores


def test_two_collections_many_threads_no_foreign_rows(bouncer: PgBouncer, engine: Engine) -> None:
    table = f"pb_{uuid.uuid4().hex[:6]}"
    stores = load_two_collections(bouncer.url, table)
    errors: list[BaseException] = []
    foreign: Counter[str] = Counter()
    try:
        threads = [
            threading.Thread(target=_worker, args=(stores[c], c, errors, foreign))
            for c in ("alpha", "beta")
            for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not any(t.is_alive() for t in threads), "a worker is stuck"
        assert errors == [], Counter(f"{type(e).__name__}: {e}"[:120] for e in errors)
        assert foreign == Counter()
    finally:
        for store in stores.values():
            store.close()
        drop(engine, table)


async def test_two_collections_many_tasks_no_foreign_rows(
    bouncer: PgBouncer, engine: Engine
) -> None:
    table = f"pb_{uuid.uuid4().hex[:6]}"
    stores = load_two_collections(bouncer.url, table)
    errors: list[BaseException] = []
    foreign: Counter[str] = Counter()

    async def worker(collection: str) -> None:
        store = stores[collection]
        for i in range(SEARCHES):
            try:
                where = {"n": i % 10} if i % 2 else None
                docs = await store.asimilarity_search(f"{collection} vectors {i}", 4, where)
                foreign[collection] += sum(d.metadata.get("owner") != collection for d in docs)
            except Exception as exc:
                errors.append(exc)

    try:
        await asyncio.wait_for(
            asyncio.gather(*(worker(c) for c in ("alpha", "beta") for _ in range(4))), 120
        )
        assert errors == [], Counter(f"{type(e).__name__}: {e}"[:120] for e in errors)
        assert sum(foreign.values()) == 0
    finally:
        for store in stores.values():
            await store.aclose()
        drop(engine, table)


def test_through_the_pooler_the_server_holds_no_prepared_statements(
    bouncer: PgBouncer, engine: Engine
) -> None:
    """What psycopg would have prepared, it did not: nothing of ours is prepared on any
    server connection behind the pooler."""
    table = f"pb_{uuid.uuid4().hex[:6]}"
    stores = load_two_collections(bouncer.url, table)
    try:
        for _ in range(10):
            for store in stores.values():
                store.similarity_search("postgres", 3)
        direct = create_engine(bouncer.url)  # a client of the pooler like any other
        with direct.connect() as conn:
            prepared = conn.execute(text("SELECT count(*) FROM pg_prepared_statements"))
            assert prepared.scalar_one() == 0
        direct.dispose()
    finally:
        for store in stores.values():
            store.close()
        drop(engine, table)


@concurrent_builds_only
def test_a_session_setting_is_refused_behind_a_pooler(bouncer: PgBouncer, engine: Engine) -> None:
    table = f"pb_{uuid.uuid4().hex[:6]}"
    store = make(bouncer.url, table, "idx", share_engines=False)
    try:
        docs, metas = texts("idx", 300)
        store.add_texts(docs, metas)
        with pytest.raises(InvalidInputError, match="direct connection"):
            store.create_index(HNSW(), concurrently=True, maintenance_work_mem="64MB")
        assert [i for i in store.list_indexes() if i.is_vector] == []
        assert store.create_index(HNSW(m=8, ef_construction=32), concurrently=True)
    finally:
        store.close()
        drop(engine, table)


def test_prepared_statements_forced_on_behind_a_pooler_fail_clearly(
    pg_url: str, engine: Engine
) -> None:
    """What the store avoids by default, shown: with one server connection shared by two
    clients that both prepare, the second one's _pg3_0 already exists there. The error
    is a DatabaseError that says what to do."""
    if find_pgbouncer() is None:
        pytest.skip("pgbouncer is not installed")
    table = f"pb_{uuid.uuid4().hex[:6]}"
    with start_pgbouncer(pg_url, "transaction", default_pool_size=1) as one:
        first = make(one.url, table, "first", prepared_statements=True, share_engines=False)
        second = make(one.url, table, "second", prepared_statements=True, share_engines=False)
        try:
            first.add_texts(*texts("first", 10))
            for _ in range(8):
                first.similarity_search("postgres", 3)
            with pytest.raises(DatabaseError, match="prepared_statements=False"):
                second.add_texts(*texts("second", 10))
                for _ in range(8):
                    second.similarity_search_with_score("vectors", 4, {"n": 1}, exact_below=0)
                    second.count()
        finally:
            first.close()
            second.close()
            drop(engine, table)
