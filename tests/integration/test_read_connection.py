"""The store's own read connection (``_engine.ReadConnection``).

A store that created its engine runs its searches on one autocommit connection of its
own, outside the pool: no checkout, check-in or autocommit switches per search. These
tests pin what that must not change: which backend runs a search, what happens when
that backend is gone, busy or forked, which stores get one, and that ``close()``
closes it.
"""

from __future__ import annotations

import asyncio
import os
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.pool import NullPool

from langchain_pgvec import PGVecStore, QueryTimeoutError
from langchain_pgvec.embeddings import HashingEmbeddings

DIM = 16
TEXTS = [f"document number {i} about {'cats' if i % 2 else 'dogs'}" for i in range(40)]


@pytest.fixture
def store(pg_url: str, collection_name: str) -> Iterator[PGVecStore]:
    store = PGVecStore(
        HashingEmbeddings(DIM),
        connection=pg_url,
        collection_name=collection_name,
        embedding_table="rel_reads_emb_16",
        collection_table="rel_reads_col_16",
    )
    store.add_texts(TEXTS, ids=[str(i) for i in range(len(TEXTS))])
    yield store
    store.delete_collection()
    store.close()


def backend_of_search(store: PGVecStore) -> int:
    """The backend pid of the store's own connection (opening it if needed)."""
    reads = store._engines.reads
    assert reads is not None
    driver = reads.take()
    assert driver is not None
    try:
        return int(driver.info.backend_pid)
    finally:
        reads.give_back(driver)


def last_statement(pg_url: str, pid: int) -> str:
    admin = create_engine(pg_url, poolclass=NullPool)
    try:
        with admin.connect() as conn:
            return str(
                conn.execute(
                    text("SELECT query FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
                ).scalar_one()
            )
    finally:
        admin.dispose()


def terminate(pg_url: str, pid: int) -> None:
    admin = create_engine(pg_url, poolclass=NullPool)
    try:
        with admin.connect() as conn:
            assert conn.execute(
                text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid}
            ).scalar()
    finally:
        admin.dispose()


def test_searches_run_on_the_own_connection_and_leave_the_pool_alone(
    store: PGVecStore, pg_url: str
) -> None:
    store.similarity_search("cats", k=3)
    pid = backend_of_search(store)
    checkouts: list[Any] = []
    pool = store.engine.pool

    def checkout(*args: Any) -> None:
        checkouts.append(args)

    event.listen(store.engine, "checkout", checkout)
    try:
        mmr = store.max_marginal_relevance_search("dogs", k=2, fetch_k=50)  # with settings
        filtered = store.similarity_search("cats", k=2, filter={"nothing": "matches"})
        found = store.similarity_search("cats", k=3)  # last: its statement is seen below
    finally:
        event.remove(store.engine, "checkout", checkout)
    assert len(found) == 3 and len(mmr) == 2 and filtered == []
    assert checkouts == []  # neither search took a pooled connection
    assert pool.checkedout() == 0  # type: ignore[attr-defined]
    assert backend_of_search(store) == pid
    assert "ORDER BY" in last_statement(pg_url, pid)  # the last search ran there


def test_a_terminated_own_connection_is_replaced_silently(store: PGVecStore, pg_url: str) -> None:
    expected = store.similarity_search("cats", k=5)
    pid = backend_of_search(store)
    terminate(pg_url, pid)
    assert store.similarity_search("cats", k=5) == expected
    assert backend_of_search(store) != pid


def test_a_busy_own_connection_sends_the_search_to_the_pool(store: PGVecStore) -> None:
    expected = store.similarity_search("dogs", k=4)
    reads = store._engines.reads
    assert reads is not None
    held = reads.take()  # as another thread in the middle of a search would
    assert held is not None
    try:
        assert reads.take() is None
        result: list[Any] = []
        worker = threading.Thread(
            target=lambda: result.append(store.similarity_search("dogs", k=4))
        )
        worker.start()
        worker.join(timeout=30)
        assert result == [expected]
        assert store.similarity_search("dogs", k=4) == expected  # this thread too
    finally:
        reads.give_back(held)
    assert store.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_a_search_that_fails_leaves_the_own_connection_usable(
    store: PGVecStore, pg_url: str
) -> None:
    expected = store.similarity_search("cats", k=3)
    pid = backend_of_search(store)
    locker = create_engine(pg_url, poolclass=NullPool)
    try:
        with locker.begin() as conn:  # the search waits for this lock until its timeout
            conn.execute(text('LOCK TABLE "rel_reads_emb_16" IN ACCESS EXCLUSIVE MODE'))
            with pytest.raises(QueryTimeoutError):
                store.similarity_search("cats", k=3, statement_timeout_ms=200)
    finally:
        locker.dispose()
    assert store.similarity_search("cats", k=3) == expected
    assert backend_of_search(store) == pid  # rolled back, kept, not replaced


def test_only_engines_the_store_made_with_a_queue_pool_get_one(
    pg_url: str, engine: Any, collection_name: str
) -> None:
    kwargs: dict[str, Any] = {
        "collection_name": collection_name,
        "embedding_table": "rel_reads_emb_16",
        "collection_table": "rel_reads_col_16",
    }
    given = PGVecStore(HashingEmbeddings(DIM), connection=engine, **kwargs)
    unpooled = PGVecStore(
        HashingEmbeddings(DIM),
        connection=pg_url,
        engine_kwargs={"poolclass": NullPool},
        **kwargs,
    )
    try:
        given.add_texts(TEXTS[:5])
        for other in (given, unpooled):
            assert len(other.similarity_search("cats", k=2)) == 2
            assert other._engines.reads is None
    finally:
        given.delete_collection()
        given.close()
        unpooled.close()


def test_close_closes_the_own_connection(store: PGVecStore, pg_url: str) -> None:
    store.similarity_search("cats", k=1)
    pid = backend_of_search(store)
    store.close()
    admin = create_engine(pg_url, poolclass=NullPool)
    try:
        with admin.connect() as conn:
            gone = conn.execute(
                text("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
            ).scalar()
    finally:
        admin.dispose()
    assert gone
    assert len(store.similarity_search("cats", k=1)) == 1  # a closed store reopens


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_opens_its_own_connection(store: PGVecStore) -> None:
    expected = [d.id for d in store.similarity_search("cats", k=3)]
    parent_pid = backend_of_search(store)
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads, 3.12+
        child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            ids = [d.id for d in store.similarity_search("cats", k=3)]
            report = f"{backend_of_search(store)} {','.join(str(i) for i in ids)}"
            os.write(write_end, report.encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        report = pipe.read()
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    child_backend, child_ids = report.split(" ")
    assert child_ids.split(",") == expected
    assert int(child_backend) != parent_pid  # the child did not talk over the parent's socket
    assert [d.id for d in store.similarity_search("cats", k=3)] == expected
    assert backend_of_search(store) == parent_pid  # and the parent's connection lives on


# ------------------------------------------------------------------ the async twin


async def abackend_of_search(store: PGVecStore) -> int:
    reads = store._engines.areads
    assert reads is not None
    driver = await reads.take()
    assert driver is not None
    try:
        return int(driver.info.backend_pid)
    finally:
        reads.give_back(driver)


async def test_async_searches_run_on_their_own_connection(store: PGVecStore, pg_url: str) -> None:
    expected = await store.asimilarity_search("cats", k=3)
    assert expected == store.similarity_search("cats", k=3)
    pid = await abackend_of_search(store)
    checkouts: list[Any] = []

    def checkout(*args: Any) -> None:
        checkouts.append(args)

    pool_events = store.async_engine.sync_engine
    event.listen(pool_events, "checkout", checkout)
    try:
        mmr = await store.amax_marginal_relevance_search("dogs", k=2, fetch_k=50)
        filtered = await store.asimilarity_search("cats", k=2, filter={"nothing": "matches"})
        found = await store.asimilarity_search("cats", k=3)
    finally:
        event.remove(pool_events, "checkout", checkout)
    assert found == expected and len(mmr) == 2 and filtered == []
    assert checkouts == []
    assert await abackend_of_search(store) == pid
    assert "ORDER BY" in last_statement(pg_url, pid)
    assert pid != backend_of_search(store)  # the sync searches' connection is another


async def test_a_terminated_async_connection_is_replaced_silently(
    store: PGVecStore, pg_url: str
) -> None:
    expected = await store.asimilarity_search("dogs", k=5)
    pid = await abackend_of_search(store)
    terminate(pg_url, pid)
    assert await store.asimilarity_search("dogs", k=5) == expected
    assert await abackend_of_search(store) != pid


def test_each_event_loop_in_turn_gets_the_connection(store: PGVecStore) -> None:
    """One ``asyncio.run`` after another (a closed loop's connection is replaced), and a
    loop in another thread while the first still runs (it uses the pool)."""
    expected = store.similarity_search("cats", k=3)
    first = asyncio.run(store.asimilarity_search("cats", k=3))
    reads = store._engines.areads
    assert reads is not None
    old = reads._driver
    assert asyncio.run(store.asimilarity_search("cats", k=3)) == first == expected
    assert old is not None and old.closed and reads._driver is not old

    async def while_another_loop_runs() -> list[Any]:
        await store.asimilarity_search("cats", k=3)  # this loop now has the connection
        mine = reads._driver
        result: list[Any] = []
        thread = threading.Thread(
            target=lambda: result.append(asyncio.run(store.asimilarity_search("cats", k=3)))
        )
        thread.start()
        thread.join(timeout=30)
        assert reads._driver is mine  # not taken over by the other loop
        return result

    assert asyncio.run(while_another_loop_runs()) == [expected]
    assert store.async_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    asyncio.run(store.aclose())  # the pooled connection the other thread's loop made


async def test_closing_an_async_connection_in_use_waits_for_its_search(
    store: PGVecStore,
) -> None:
    await store.asimilarity_search("cats", k=1)
    reads = store._engines.areads
    assert reads is not None
    driver = await reads.take()
    assert driver is not None
    reads.close()  # never blocks the loop: the search in flight keeps the connection
    assert not driver.closed
    assert len(await (await driver.execute("SELECT 1")).fetchall()) == 1
    reads.give_back(driver)
    assert driver.closed
    assert len(await store.asimilarity_search("cats", k=1)) == 1  # and the next reopens


def test_close_also_closes_the_async_pool_the_store_made(store: PGVecStore) -> None:
    expected = asyncio.run(store.asimilarity_search("dogs", k=2, filter={"nothing": "x"}))
    pool = store.async_engine.pool
    assert pool.checkedin() >= 1  # type: ignore[attr-defined]  # the filter's judging used it

    async def close_from_a_running_loop() -> None:
        store.close()  # sync close, called where a loop runs

    asyncio.run(close_from_a_running_loop())
    assert pool.checkedin() == 0  # type: ignore[attr-defined]  # its connections closed
    assert store._engines.areads is not None and store._engines.areads._driver is None
    assert asyncio.run(store.asimilarity_search("dogs", k=2, filter={"nothing": "x"})) == expected
    asyncio.run(store.aclose())
